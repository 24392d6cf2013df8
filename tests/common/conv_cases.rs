//! The convolution cases both conv test binaries run: awkward geometries,
//! random operands, and each op's GPU kernel against the CPU reference with
//! the outputs poisoned (`tests/conv.rs` with the lowering's own tile
//! choice, `tests/conv_big.rs` with the 128-tile kernels forced).

use super::*;
use shadergan::plan::{Activation, ConvEpilogue, ConvGeom, Op, Plan, Slice};

pub const CONV_TOL: f64 = 1e-4;

/// ([batch, in_ch, in_h, in_w], out_ch, kernel, stride, pad).
pub type Case = (
    [usize; 4],
    usize,
    (usize, usize),
    (usize, usize),
    (usize, usize),
);

/// Convolutions: 1s, odd sizes,
/// strides 1 and 2, pads 0–2, kernels 3×3, 4×4, 5×5 and a 1×3 one, outputs
/// and GEMM sides that are not multiples of the 64-tile, and the DCGAN
/// discriminator's first layer.
pub fn geometries() -> Vec<ConvGeom> {
    let cases: [Case; 13] = [
        ([1, 1, 1, 1], 1, (1, 1), (1, 1), (0, 0)),
        ([1, 1, 5, 5], 1, (3, 3), (1, 1), (0, 0)),
        ([2, 3, 7, 9], 5, (3, 3), (2, 2), (1, 1)),
        ([3, 7, 9, 7], 4, (4, 4), (2, 2), (1, 1)),
        ([1, 2, 13, 11], 3, (5, 5), (1, 1), (2, 2)),
        ([2, 1, 28, 28], 7, (5, 5), (2, 2), (2, 2)),
        ([1, 3, 6, 10], 2, (1, 3), (1, 2), (0, 1)),
        ([3, 5, 8, 8], 65, (3, 3), (1, 1), (1, 1)),
        ([1, 67, 4, 4], 3, (4, 4), (2, 2), (2, 2)),
        // At least 8 input channels: the tiled input gradient (fewer: the direct one).
        ([2, 9, 7, 5], 4, (3, 3), (2, 2), (1, 1)),
        ([1, 8, 6, 6], 3, (5, 5), (1, 1), (2, 2)),
        // Strided, 8+ channels (the parity-class input gradient): a 1×1
        // kernel at stride 2 (classes with no tap), uneven strides and kernels.
        ([1, 8, 5, 5], 3, (1, 1), (2, 2), (0, 0)),
        ([2, 10, 9, 8], 4, (2, 3), (3, 2), (1, 0)),
    ];
    cases
        .iter()
        .map(|&(x, o, k, s, p)| ConvGeom::conv(x, o, k, s, p).expect("a valid geometry"))
        .collect()
}

/// ConvTranspose2d geometries: the DCGAN generator's three layers (7→7,
/// 7→14, 14→28, 5×5 kernels, output_padding 1 where the stride is 2) at
/// small channel counts, and an odd one.
pub fn transposed_geometries() -> Vec<ConvGeom> {
    let t = |x, o, k, s, p, op| ConvGeom::transposed(x, o, k, s, p, op).expect("valid");
    vec![
        t([2, 5, 7, 7], 3, (5, 5), (1, 1), (2, 2), (0, 0)),
        t([1, 3, 7, 7], 4, (5, 5), (2, 2), (2, 2), (1, 1)),
        t([2, 4, 14, 14], 1, (5, 5), (2, 2), (2, 2), (1, 1)),
        t([3, 2, 5, 3], 3, (4, 3), (3, 2), (1, 0), (2, 1)),
    ]
}

pub struct Operands {
    pub x: Slice,
    pub w: Slice,
    pub dy: Slice,
    pub bias_out: Slice,
    pub bias_in: Slice,
    pub act_out: Slice,
    pub act_in: Slice,
}

pub fn operands(plan: &mut Plan, g: &ConvGeom, seed: u64) -> Operands {
    let mut r = rng(seed);
    let tanh_outputs = |r: &mut rand::rngs::StdRng, n| uniform(r, n, -0.95, 0.95);
    Operands {
        x: input_f32(plan, "x", &uniform(&mut r, g.x_len(), -1.0, 1.0)),
        w: input_f32(plan, "w", &uniform(&mut r, g.w_len(), -1.0, 1.0)),
        dy: input_f32(plan, "dy", &uniform(&mut r, g.y_len(), -1.0, 1.0)),
        bias_out: input_f32(plan, "bias_out", &uniform(&mut r, g.out_ch, -1.0, 1.0)),
        bias_in: input_f32(plan, "bias_in", &uniform(&mut r, g.in_ch, -1.0, 1.0)),
        act_out: input_f32(plan, "act_out", &tanh_outputs(&mut r, g.y_len())),
        act_in: input_f32(plan, "act_in", &tanh_outputs(&mut r, g.x_len())),
    }
}

/// Every op with each epilogue at `g`, GPU against CPU, outputs poisoned.
pub fn check_against_cpu(g: &ConvGeom, seed: u64) {
    let mut plan = Plan::default();
    let v = operands(&mut plan, g, seed);
    let leaky = Activation::LeakyRelu(0.2);
    let mut outs = Vec::new();
    let mut ops = Vec::new();
    let forward_epilogues = [
        ("plain", ConvEpilogue::NONE),
        (
            "bias+leaky",
            ConvEpilogue::BiasAct {
                bias: Some(v.bias_out),
                act: leaky,
            },
        ),
        (
            "tanh'",
            ConvEpilogue::ActGrad {
                y: v.act_out,
                act: Activation::Tanh,
            },
        ),
    ];
    for (i, (name, epilogue)) in forward_epilogues.into_iter().enumerate() {
        let y = output_f32(&mut plan, &format!("y{i}"), g.y_len());
        ops.push(Op::Conv2d {
            x: v.x,
            w: v.w,
            y,
            geom: *g,
            epilogue,
        });
        outs.push((format!("conv2d {name}"), y));
    }
    let input_epilogues = [
        ("plain", ConvEpilogue::NONE),
        (
            "bias+tanh",
            ConvEpilogue::BiasAct {
                bias: Some(v.bias_in),
                act: Activation::Tanh,
            },
        ),
        (
            "tanh'",
            ConvEpilogue::ActGrad {
                y: v.act_in,
                act: Activation::Tanh,
            },
        ),
    ];
    for (i, (name, epilogue)) in input_epilogues.into_iter().enumerate() {
        let dx = output_f32(&mut plan, &format!("dx{i}"), g.x_len());
        ops.push(Op::Conv2dInputGrad {
            dy: v.dy,
            w: v.w,
            dx,
            geom: *g,
            epilogue,
        });
        outs.push((format!("input grad {name}"), dx));
    }
    let grads = output_f32(&mut plan, "grads", g.w_len() + 1 + g.out_ch);
    let (dw, db) = (grads.sub(0, g.w_len()), grads.sub(g.w_len() + 1, g.out_ch));
    ops.push(Op::Conv2dWeightGrad {
        dy: v.dy,
        x: v.x,
        dw,
        db: Some(db),
        geom: *g,
    });
    outs.extend([
        ("weight grad dw".to_string(), dw),
        ("weight grad db".to_string(), db),
    ]);
    plan.add_phase("ops", ops);
    let Some((cpu, gpu)) = run_both(plan, &["ops"]) else {
        return;
    };
    for (name, s) in outs {
        let err = norm_rel_err(&read_gpu(&gpu, s), cpu.f32s(s));
        assert_close(err, CONV_TOL, &format!("{name} at {g:?}"));
    }
}

/// The split weight gradient at `g`: `splits` partial sums over stretches
/// of the flattened (b, p, q), added up by `SumSplits`, equal the unsplit
/// gradient (CPU, within rounding) and match between backends.
pub fn check_split_weight_grad(g: &ConvGeom, splits_list: &[usize]) {
    use shadergan::plan::conv_split_stretch;
    for &splits in splits_list {
        let mut plan = Plan::default();
        let v = operands(&mut plan, g, 600 + splits as u64);
        let per = g.w_len() + g.out_ch;
        let partials = output_f32(&mut plan, "partials", splits * per);
        let grads = output_f32(&mut plan, "grads", 2 * (g.w_len() + g.out_ch));
        let (dw, db) = (grads.sub(0, g.w_len()), grads.sub(g.w_len(), g.out_ch));
        let whole = grads.sub(per, g.w_len());
        let whole_db = grads.sub(per + g.w_len(), g.out_ch);
        let weights = splits * g.w_len();
        plan.add_phase(
            "ops",
            vec![
                Op::Conv2dWeightGradSplit {
                    dy: v.dy,
                    x: v.x,
                    partials,
                    splits,
                    with_db: true,
                    geom: *g,
                },
                Op::SumSplits {
                    partials: partials.sub(0, weights),
                    out: dw,
                    splits,
                },
                Op::SumSplits {
                    partials: partials.sub(weights, splits * g.out_ch),
                    out: db,
                    splits,
                },
                Op::Conv2dWeightGrad {
                    dy: v.dy,
                    x: v.x,
                    dw: whole,
                    db: Some(whole_db),
                    geom: *g,
                },
            ],
        );
        assert!(conv_split_stretch(g, splits).is_multiple_of(16));
        let mut cpu = shadergan::cpu::CpuPlan::new(plan.clone()).unwrap();
        cpu.run(&["ops"]).unwrap();
        for (split, unsplit) in [(dw, whole), (db, whole_db)] {
            let err = norm_rel_err(cpu.f32s(split), cpu.f32s(unsplit));
            assert_close(
                err,
                1e-5,
                &format!("{splits} splits against the whole, on the CPU"),
            );
        }
        let Some((cpu, gpu)) = run_both(plan, &["ops"]) else {
            return;
        };
        for (name, s) in [("partials", partials), ("dw", dw), ("db", db)] {
            let err = norm_rel_err(&read_gpu(&gpu, s), cpu.f32s(s));
            assert_close(err, CONV_TOL, &format!("{splits} splits: {name}"));
        }
    }
}

/// The split forward and input gradient at `g`: `splits` raw partial sums
/// over stretches of the flattened taps, added up through a bias+activation
/// and an act' epilogue by `ConvSumSplits`, equal the unsplit op (CPU,
/// within rounding) and match between backends, partials included.
pub fn check_split_gemms(g: &ConvGeom, splits_list: &[usize]) {
    use shadergan::plan::{ConvGemm, conv_gemm_stretch};
    for &splits in splits_list {
        for gemm in [ConvGemm::Forward, ConvGemm::InputGrad] {
            let mut plan = Plan::default();
            let v = operands(&mut plan, g, 900 + splits as u64);
            let (a, len, bias, act_y) = match gemm {
                ConvGemm::Forward => (v.x, g.y_len(), v.bias_out, v.act_out),
                ConvGemm::InputGrad => (v.dy, g.x_len(), v.bias_in, v.act_in),
            };
            let epilogues = [
                ConvEpilogue::BiasAct {
                    bias: Some(bias),
                    act: Activation::LeakyRelu(0.2),
                },
                ConvEpilogue::ActGrad {
                    y: act_y,
                    act: Activation::Tanh,
                },
            ];
            let partials = output_f32(&mut plan, "partials", splits * len);
            let mut ops = vec![Op::ConvGemmSplit {
                gemm,
                a,
                w: v.w,
                partials,
                splits,
                geom: *g,
            }];
            let mut pairs = Vec::new();
            for (i, epilogue) in epilogues.into_iter().enumerate() {
                let out = output_f32(&mut plan, &format!("split{i}"), len);
                let whole = output_f32(&mut plan, &format!("whole{i}"), len);
                ops.push(Op::ConvSumSplits {
                    gemm,
                    partials,
                    out,
                    splits,
                    geom: *g,
                    epilogue,
                });
                ops.push(match gemm {
                    ConvGemm::Forward => Op::Conv2d {
                        x: a,
                        w: v.w,
                        y: whole,
                        geom: *g,
                        epilogue,
                    },
                    ConvGemm::InputGrad => Op::Conv2dInputGrad {
                        dy: a,
                        w: v.w,
                        dx: whole,
                        geom: *g,
                        epilogue,
                    },
                });
                pairs.push((out, whole));
            }
            plan.add_phase("ops", ops);
            assert!(conv_gemm_stretch(gemm, g, splits).is_multiple_of(16));
            let what = format!("{gemm:?}, {splits} splits at {g:?}");
            let mut cpu = shadergan::cpu::CpuPlan::new(plan.clone()).unwrap();
            cpu.run(&["ops"]).unwrap();
            for &(split, whole) in &pairs {
                let err = norm_rel_err(cpu.f32s(split), cpu.f32s(whole));
                assert_close(err, 1e-5, &format!("{what}: against the whole, on the CPU"));
            }
            let Some((cpu, gpu)) = run_both(plan, &["ops"]) else {
                return;
            };
            let outs = std::iter::once(partials).chain(pairs.iter().map(|p| p.0));
            for (i, s) in outs.enumerate() {
                let err = norm_rel_err(&read_gpu(&gpu, s), cpu.f32s(s));
                assert_close(err, CONV_TOL, &format!("{what}: output {i}"));
            }
        }
    }
}
