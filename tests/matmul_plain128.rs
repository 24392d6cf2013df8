//! `matmul_bias_act_128` (the 128-tile kernel without prefetching, which the
//! lowering no longer picks by default: the matmul ladder's rung 3 and
//! `bench --matmul-128 plain`) forced for every 128-tile product
//! ([`set_matmul_big`]): the split weight gradients of `tests/matmul_split.rs`,
//! and unsplit products with every epilogue at shapes of several 128-tiles
//! none of them whole, against the CPU reference. One test in this binary:
//! the kernel choice is process-wide.

mod common;

use common::matmul_cases::{SHAPES, check_split_dw};
use common::*;
use shadergan::gpu::lowering::{MatmulBig, lower, set_matmul_big};
use shadergan::plan::{Activation, Op, Plan};

#[test]
fn the_plain_128_tile_kernel_matches_the_cpu_reference() {
    set_matmul_big(MatmulBig::Plain);
    for (i, &mnk) in SHAPES.iter().enumerate() {
        for splits in [1, 3, 7] {
            check_split_dw(mnk, splits, 80 + i as u64);
        }
    }
    // 17 × 17 128-tiles (289 ≥ 256): the 128-tile kernel without splits.
    let (m, n, k) = (2113, 2119, 19);
    let mut r = rng(7);
    let mut plan = Plan::default();
    let x = input_f32(&mut plan, "x", &uniform(&mut r, m * k, -1.0, 1.0));
    let w = input_f32(&mut plan, "w", &uniform(&mut r, n * k, -1.0, 1.0));
    let b = input_f32(&mut plan, "b", &uniform(&mut r, n, -1.0, 1.0));
    let y = output_f32(&mut plan, "y", m * n);
    let op = Op::MatmulBiasAct {
        x,
        w,
        b: Some(b),
        y,
        m,
        n,
        k,
        act: Activation::LeakyRelu(0.2),
    };
    assert_eq!(lower(&op).entry, "matmul_bias_act_128");
    plan.add_phase("ops", vec![op]);
    let Some((cpu, gpu)) = run_both(plan, &["ops"]) else {
        return;
    };
    let err = norm_rel_err(&read_gpu(&gpu, y), cpu.f32s(y));
    assert_close(err, 1e-4, "forward with bias and leaky ReLU");
}
