//! The convolution ops (`Op::Conv2d`, `Op::Conv2dInputGrad`,
//! `Op::Conv2dWeightGrad`, and ConvTranspose2d through them): the GPU kernels
//! of conv2d.wgsl against the CPU reference at awkward geometries with
//! poisoned outputs; the reference's gradients against its forward (the
//! adjoint identities, exact for these bilinear maps); a hand-computed case;
//! and the geometry checks.

mod common;

use common::*;
use shadergan::cpu::conv;
use shadergan::plan::{Activation, ConvEpilogue, ConvGeom, Op, Plan, Slice};

const CONV_TOL: f64 = 1e-4;

/// ([batch, in_ch, in_h, in_w], out_ch, kernel, stride, pad).
type Case = (
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
fn geometries() -> Vec<ConvGeom> {
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
fn transposed_geometries() -> Vec<ConvGeom> {
    let t = |x, o, k, s, p, op| ConvGeom::transposed(x, o, k, s, p, op).expect("valid");
    vec![
        t([2, 5, 7, 7], 3, (5, 5), (1, 1), (2, 2), (0, 0)),
        t([1, 3, 7, 7], 4, (5, 5), (2, 2), (2, 2), (1, 1)),
        t([2, 4, 14, 14], 1, (5, 5), (2, 2), (2, 2), (1, 1)),
        t([3, 2, 5, 3], 3, (4, 3), (3, 2), (1, 0), (2, 1)),
    ]
}

struct Operands {
    x: Slice,
    w: Slice,
    dy: Slice,
    bias_out: Slice,
    bias_in: Slice,
    act_out: Slice,
    act_in: Slice,
}

fn operands(plan: &mut Plan, g: &ConvGeom, seed: u64) -> Operands {
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
fn check_against_cpu(g: &ConvGeom, seed: u64) {
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

#[test]
fn convolutions_match_the_cpu_reference() {
    for (i, g) in geometries().iter().enumerate() {
        check_against_cpu(g, 100 + i as u64);
    }
}

#[test]
fn transposed_convolutions_match_the_cpu_reference() {
    for (i, g) in transposed_geometries().iter().enumerate() {
        check_against_cpu(g, 200 + i as u64);
    }
}

fn dot(a: &[f32], b: &[f32]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(&x, &y)| f64::from(x) * f64::from(y))
        .sum()
}

/// ⟨conv(x, w), r⟩ = ⟨x, input_grad(r, w)⟩ = ⟨w, weight_grad(r, x)⟩ and
/// Σ r per channel = db: the gradients are exactly the adjoints of the
/// forward, which is what a finite difference of these bilinear maps checks.
#[test]
fn the_reference_gradients_are_the_forwards_adjoints() {
    for (i, g) in geometries()
        .iter()
        .chain(&transposed_geometries())
        .enumerate()
    {
        let mut r = rng(300 + i as u64);
        let x = uniform(&mut r, g.x_len(), -1.0, 1.0);
        let w = uniform(&mut r, g.w_len(), -1.0, 1.0);
        let dy = uniform(&mut r, g.y_len(), -1.0, 1.0);
        let mut y = vec![f32::NAN; g.y_len()];
        let mut dx = vec![f32::NAN; g.x_len()];
        let mut dw = vec![f32::NAN; g.w_len()];
        let mut db = vec![f32::NAN; g.out_ch];
        conv::conv2d(&x, &w, &mut y, g);
        conv::conv2d_input_grad(&dy, &w, &mut dx, g);
        conv::conv2d_weight_grad(&dy, &x, &mut dw, Some(&mut db), g);
        let forward = dot(&y, &dy);
        // The sums cancel: compare against the size of their terms (f32 sums of up to 1,125 taps).
        let abs = |v: &[f32]| v.iter().map(|x| x.abs()).collect::<Vec<_>>();
        let scale = dot(&abs(&y), &abs(&dy)).max(1.0);
        for (name, adjoint) in [("input", dot(&x, &dx)), ("weight", dot(&w, &dw))] {
            let err = (adjoint - forward).abs() / scale;
            assert!(
                err < 1e-5,
                "{name} gradient at {g:?}: {adjoint} vs {forward}"
            );
        }
        let plane = g.out_h * g.out_w;
        for (o, &got) in db.iter().enumerate() {
            let want: f64 = (0..g.batch)
                .flat_map(|b| &dy[(b * g.out_ch + o) * plane..][..plane])
                .map(|&v| f64::from(v))
                .sum();
            assert!((f64::from(got) - want).abs() < 1e-4, "db[{o}] at {g:?}");
        }
    }
}

/// A 3×3 image, a 2×2 kernel, stride 1, pad 1 (4×4 output), by hand.
#[test]
fn a_small_convolution_by_hand() {
    let g = ConvGeom::conv([1, 1, 3, 3], 1, (2, 2), (1, 1), (1, 1)).unwrap();
    assert_eq!((g.out_h, g.out_w), (4, 4));
    let x = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0];
    let w = [1.0, 10.0, 100.0, 1000.0];
    let mut y = [0.0; 16];
    conv::conv2d(&x, &w, &mut y, &g);
    // y[p][q] = Σ_{i,j} x[p+i−1][q+j−1]·w[i][j]; the corner sees x[0][0] through w[1][1].
    assert_eq!(y[0], 1000.0);
    assert_eq!(y[1], 100.0 + 2000.0);
    assert_eq!(y[5], 1.0 + 20.0 + 400.0 + 5000.0);
    assert_eq!(y[15], 9.0);
}

/// A stride of 0, channels of 0, a kernel larger than the padded input, an
/// output of the wrong size and a slice of the wrong length are refused.
#[test]
fn bad_geometries_are_refused() {
    assert!(ConvGeom::conv([1, 1, 3, 3], 1, (5, 5), (1, 1), (0, 0)).is_none());
    assert!(ConvGeom::conv([1, 1, 3, 3], 1, (3, 3), (0, 1), (0, 0)).is_none());
    assert!(ConvGeom::transposed([1, 1, 7, 7], 1, (5, 5), (2, 2), (2, 2), (2, 0)).is_none());
    let good = ConvGeom::conv([2, 3, 9, 9], 4, (3, 3), (2, 2), (1, 1)).unwrap();
    let refused = |g: ConvGeom, x_len: usize| {
        let mut plan = Plan::default();
        let x = plan.f32_buffer("x", x_len);
        let w = plan.f32_buffer("w", g.w_len().max(1));
        let y = plan.f32_buffer("y", g.y_len().max(1));
        plan.add_phase(
            "op",
            vec![Op::Conv2d {
                x,
                w,
                y,
                geom: g,
                epilogue: ConvEpilogue::NONE,
            }],
        );
        plan.validate().expect_err("a bad convolution").to_string()
    };
    let zero_ch = ConvGeom { in_ch: 0, ..good };
    assert!(
        refused(zero_ch, 1).contains("in_ch 0"),
        "{}",
        refused(zero_ch, 1)
    );
    let zero_stride = ConvGeom {
        stride: (0, 2),
        ..good
    };
    assert!(refused(zero_stride, good.x_len()).contains("stride height 0"));
    let big_kernel = ConvGeom {
        kernel: (13, 3),
        ..good
    };
    assert!(refused(big_kernel, good.x_len()).contains("larger than the 9×9 input"));
    let wrong_out = ConvGeom { out_h: 4, ..good };
    assert!(refused(wrong_out, good.x_len()).contains("gives 5×5"));
    assert!(refused(good, good.x_len() - 1).contains("x"));
}

/// The split weight gradient: `splits` partial sums over stretches of the
/// flattened (b, p, q), added up by `SumSplits`, equal the unsplit gradient
/// (CPU, within rounding) and match between backends, at 1, 3 and 7 splits
/// and a stretch that does not divide the sum.
#[test]
fn split_weight_gradients_add_up_to_the_whole() {
    use shadergan::plan::conv_split_stretch;
    let g = ConvGeom::conv([3, 2, 13, 11], 5, (5, 5), (2, 2), (2, 2)).unwrap();
    for splits in [1, 3, 7] {
        let mut plan = Plan::default();
        let v = operands(&mut plan, &g, 600 + splits as u64);
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
                    geom: g,
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
                    geom: g,
                },
            ],
        );
        assert!(conv_split_stretch(&g, splits).is_multiple_of(16));
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

/// The lowering's input-gradient kernel: one thread per element below 8
/// input channels; from 8, the 64-tile implicit GEMM, by parity class when
/// strided.
#[test]
fn few_input_channels_take_the_direct_input_gradient() {
    use shadergan::gpu::lowering::lower;
    let entry = |in_ch, stride| {
        let geom = ConvGeom::conv([2, in_ch, 9, 9], 4, (3, 3), (stride, stride), (1, 1)).unwrap();
        let mut plan = Plan::default();
        let dy = plan.f32_buffer("dy", geom.y_len());
        let w = plan.f32_buffer("w", geom.w_len());
        let dx = plan.f32_buffer("dx", geom.x_len());
        lower(&Op::Conv2dInputGrad {
            dy,
            w,
            dx,
            geom,
            epilogue: ConvEpilogue::NONE,
        })
        .entry
    };
    assert_eq!(entry(1, 2), "conv2d_input_grad_direct");
    assert_eq!(entry(7, 1), "conv2d_input_grad_direct");
    assert_eq!(entry(8, 2), "conv2d_input_grad_parity");
    assert_eq!(entry(8, 1), "conv2d_input_grad");
}
