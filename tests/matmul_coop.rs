//! The tensor-core matmul (`matmul_coop_f16`, `--matmul-precision
//! f16-tensor-cores`) against the CPU's f32 reference, where the adapter has
//! cooperative matrices; elsewhere (llvmpipe in CI) the GPU half is skipped
//! with the reason printed, and only the lowering's choices are checked.
//!
//! Its inputs are rounded to f16 (relative 2^-11), so the tolerance is the
//! f16 one, 4e-3 of the norm, against 1e-4 for the f32 kernels.

mod common;

use common::*;
use shadergan::cpu::CpuPlan;
use shadergan::gpu::tensor_cores::lower_at;
use shadergan::gpu::{GpuContext, GpuPlan, MatmulPrecision};
use shadergan::plan::{Activation, Op, Plan, Slice};

const TC: MatmulPrecision = MatmulPrecision::F16TensorCores;
const F16_TOL: f64 = 4e-3;

/// The context with tensor cores, or `None` with the reason printed.
fn tensor_core_gpu() -> Option<GpuContext> {
    match GpuContext::with_precision(None, TC) {
        Ok(ctx) => Some(ctx),
        Err(e) => {
            use std::io::Write;
            let _ = writeln!(std::io::stderr(), "skipping tensor-core checks: {e}");
            None
        }
    }
}

/// Which product of a dense layer (rows m, outputs n, inputs k) to check.
#[derive(Clone, Copy, Debug)]
enum Product {
    /// y = leaky_relu(x·Wᵀ + b).
    Forward,
    /// dx = (dy·W) ⊙ tanh'(y).
    InputGrad,
    /// dW = dyᵀ·x and db, in `splits` splits (1: the unsplit op).
    WeightGrad { splits: usize },
}

/// One product at (m, n, k) in a plan of its own: the plan and its outputs.
fn product_plan(p: Product, (m, n, k): (usize, usize, usize), seed: u64) -> (Plan, Vec<Slice>) {
    let mut r = rng(seed);
    let mut plan = Plan::default();
    let x = input_f32(&mut plan, "x", &uniform(&mut r, m * k, -1.0, 1.0));
    let w = input_f32(&mut plan, "w", &uniform(&mut r, n * k, -1.0, 1.0));
    // dy is a batch-mean gradient: small, as the tensor-core path expects.
    let dy = input_f32(&mut plan, "dy", &uniform(&mut r, m * n, -1e-4, 1e-4));
    let (op, outputs) = match p {
        Product::Forward => {
            let b = Some(input_f32(&mut plan, "b", &uniform(&mut r, n, -1.0, 1.0)));
            let y = output_f32(&mut plan, "y", m * n);
            let act = Activation::LeakyRelu(0.2);
            (
                Op::MatmulBiasAct {
                    x,
                    w,
                    b,
                    y,
                    m,
                    n,
                    k,
                    act,
                },
                vec![y],
            )
        }
        Product::InputGrad => {
            let y = input_f32(&mut plan, "y", &uniform(&mut r, m * k, -0.99, 0.99));
            let dx = output_f32(&mut plan, "dx", m * k);
            let act_grad = Some((y, Activation::Tanh));
            (
                Op::MatmulDx {
                    dy,
                    w,
                    dx,
                    m,
                    n,
                    k,
                    act_grad,
                },
                vec![dx],
            )
        }
        Product::WeightGrad { splits: 1 } => {
            // db lies in dw's buffer, as the plan requires.
            let grads = output_f32(&mut plan, "grads", n * k + n);
            let (dw, db) = (grads.sub(0, n * k), grads.sub(n * k, n));
            (
                Op::MatmulDw {
                    dy,
                    x,
                    dw,
                    m,
                    n,
                    k,
                    db: Some(db),
                },
                vec![dw, db],
            )
        }
        Product::WeightGrad { splits } => {
            let partials = output_f32(&mut plan, "partials", splits * (n * k + n));
            let op = Op::MatmulDwSplit {
                dy,
                x,
                partials,
                m,
                n,
                k,
                splits,
                with_db: true,
            };
            (op, vec![partials])
        }
    };
    assert_eq!(
        lower_at(&op, TC).entry,
        "matmul_coop_f16",
        "{p:?} at {m}×{n}×{k}"
    );
    plan.add_phase("ops", vec![op]);
    (plan, outputs)
}

/// The shapes of the CPU comparison: partial tiles on every side; the
/// awkward sizes (1, 7, 33, 127, 300, 4097) where the lowering still picks a
/// tiled kernel: the inner dimension, or a side of an output with enough
/// 64-tiles.
const CASES: [(Product, (usize, usize, usize)); 8] = [
    (Product::Forward, (1031, 1025, 1)),
    (Product::Forward, (4097, 300, 33)),
    (Product::Forward, (1100, 1000, 127)),
    (Product::InputGrad, (1031, 7, 1025)),
    (Product::InputGrad, (4097, 127, 300)),
    (Product::WeightGrad { splits: 1 }, (1, 1025, 1031)),
    (Product::WeightGrad { splits: 1 }, (33, 1100, 1000)),
    (Product::WeightGrad { splits: 3 }, (4097, 300, 1025)),
];

/// Each product of [`CASES`] on the tensor cores against the CPU.
#[test]
fn the_tensor_core_matmul_matches_the_cpu_reference() {
    let Some(ctx) = tensor_core_gpu() else { return };

    for (i, &(product, mnk)) in CASES.iter().enumerate() {
        let (plan, outputs) = product_plan(product, mnk, 40 + i as u64);
        let mut cpu = CpuPlan::new(plan.clone()).unwrap();
        cpu.run(&["ops"]).unwrap();
        let gpu = GpuPlan::new(&ctx, plan).unwrap();
        gpu.run(&ctx, &["ops"]).unwrap();
        for s in outputs {
            let got = gpu.read_f32(&ctx, s).unwrap();
            let err = norm_rel_err(&got, cpu.f32s(s));
            assert_close(err, F16_TOL, &format!("{product:?} at {mnk:?}"));
        }
    }
}

/// The lowering moves the tiled products (64- and 128-tile, split or not)
/// to `matmul_coop_f16` with the 128-tile grid and the batch-size scale of
/// A on the backward products; the small-output kernels stay f32.
#[test]
fn the_tensor_core_precision_moves_the_tiled_products_only() {
    for (product, mnk) in CASES {
        product_plan(product, mnk, 0); // asserts the kernel
    }
    let products = [
        Product::Forward,
        Product::InputGrad,
        Product::WeightGrad { splits: 1 },
        Product::WeightGrad { splits: 4 },
    ];
    for product in products {
        let (plan, _) = product_plan(product, (4096, 1024, 1024), 1);
        let op = &plan.phase("ops").unwrap().ops[0];
        let call = lower_at(op, TC);
        let (m, n) = (call.params[0], call.params[1]);
        assert_eq!(call.workgroups[..2], [n.div_ceil(128), m.div_ceil(128)]);
        let scale = f32::from_bits(call.params[17]);
        let want = if matches!(product, Product::Forward) {
            1.0
        } else {
            4096.0
        };
        assert_eq!(scale, want, "{product:?}");
        let z = match product {
            Product::WeightGrad { splits } => splits as u32,
            _ => 1,
        };
        assert_eq!(call.workgroups[2], z, "{product:?}");
    }
    // D's first layer at batch 64: the small-output kernel, f32 either way.
    let mut plan = Plan::default();
    let (m, n, k) = (64, 128, 784);
    let x = plan.f32_buffer("x", m * k);
    let w = plan.f32_buffer("w", n * k);
    let y = plan.f32_buffer("y", m * n);
    let act = Activation::Relu;
    let forward = Op::MatmulBiasAct {
        x,
        w,
        b: None,
        y,
        m,
        n,
        k,
        act,
    };
    let f32_entry = lower_at(&forward, MatmulPrecision::F32).entry;
    assert!(
        f32_entry.starts_with("matmul_bias_act_small"),
        "{f32_entry}"
    );
    assert_eq!(lower_at(&forward, TC).entry, f32_entry);
}
