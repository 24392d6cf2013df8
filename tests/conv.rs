//! The convolution ops (`Op::Conv2d`, `Op::Conv2dInputGrad`,
//! `Op::Conv2dWeightGrad`, and ConvTranspose2d through them): the GPU kernels
//! of conv2d.wgsl against the CPU reference at awkward geometries with
//! poisoned outputs; the reference's gradients against its forward (the
//! adjoint identities, exact for these bilinear maps); a hand-computed case;
//! and the geometry checks.

mod common;

use common::conv_cases::*;
use common::*;
use shadergan::cpu::conv;
use shadergan::plan::{ConvEpilogue, ConvGeom, Op, Plan};

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

/// The split weight gradient at 1, 3 and 7 splits and a stretch that does
/// not divide the sum, and at 19 (summed in eight lanes on the GPU, the
/// last splits empty).
#[test]
fn split_weight_gradients_add_up_to_the_whole() {
    let g = ConvGeom::conv([3, 2, 13, 11], 5, (5, 5), (2, 2), (2, 2)).unwrap();
    check_split_weight_grad(&g, &[1, 3, 7, 19]);
}

/// Split forwards and input gradients: 1, 2, 3 and 7 splits of inner sums
/// of 27 to 1,072 taps (stretches that do not divide them, and a last split
/// with nothing left to sum), strided and not, and a transposed layer.
#[test]
fn split_forwards_and_input_gradients_add_up_to_the_whole() {
    let c = |x, o, k, s, p| ConvGeom::conv(x, o, k, s, p).unwrap();
    let cases = [
        c([2, 3, 7, 9], 5, (3, 3), (2, 2), (1, 1)),
        c([3, 5, 8, 8], 65, (3, 3), (1, 1), (1, 1)),
        c([1, 67, 4, 4], 3, (4, 4), (2, 2), (2, 2)),
        ConvGeom::transposed([2, 9, 7, 7], 11, (5, 5), (1, 1), (2, 2), (0, 0)).unwrap(),
    ];
    for g in &cases {
        check_split_gemms(g, &[1, 2, 3, 7]);
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

/// The kernels the DCGAN's layers take, as the training step emits them
/// (`nn::sequential::conv_gemm`, `conv_weight_splits`): the 128-tiles, split
/// where too few tiles would fill a 132-SM card, and the 128×64 tiles for
/// the 64-channel strided input gradient and launches of fewer than
/// `CONV_SQUARE_MIN_WORKGROUPS` 128-tiles.
#[test]
fn large_convolutions_take_the_large_tile_kernels() {
    use shadergan::gpu::lowering::lower;
    use shadergan::nn::sequential::conv_gemm;
    use shadergan::plan::{ConvGemm, conv_gemm_partials_len, conv_weight_splits};
    let entries = |geom: ConvGeom| {
        let mut plan = Plan::default();
        let x = plan.f32_buffer("x", geom.x_len());
        let w = plan.f32_buffer("w", geom.w_len());
        let y = plan.f32_buffer("y", geom.y_len());
        let splits = conv_weight_splits(&geom);
        let partials = plan.f32_buffer("partials", splits * geom.w_len());
        let gemm_partials = plan.f32_buffer("gemm partials", 1 << 22);
        let epilogue = ConvEpilogue::NONE;
        let mut ops = Vec::new();
        for (gemm, operands) in [
            (ConvGemm::InputGrad, [y, w, x]),
            (ConvGemm::Forward, [x, w, y]),
        ] {
            assert!(conv_gemm_partials_len(gemm, &geom) <= 1 << 22);
            ops.extend(conv_gemm(
                gemm,
                operands,
                geom,
                epilogue,
                Some(gemm_partials),
            ));
        }
        ops.push(Op::Conv2dWeightGradSplit {
            dy: y,
            x,
            partials,
            splits,
            with_db: false,
            geom,
        });
        let names: Vec<_> = ops.iter().map(|op| lower(op).entry).collect();
        (names, splits)
    };
    let convt1 = |batch| {
        ConvGeom::transposed([batch, 256, 7, 7], 128, (5, 5), (1, 1), (2, 2), (0, 0)).unwrap()
    };
    let convt2 = |batch| {
        ConvGeom::transposed([batch, 128, 7, 7], 64, (5, 5), (2, 2), (2, 2), (1, 1)).unwrap()
    };
    // Batch 256: 196 128-tiles, so 128×64 ones, but for the weight gradient's 250.
    assert_eq!(
        entries(convt1(256)),
        (
            vec![
                "conv2d_input_grad_128x64",
                "conv2d_sum_splits",
                "conv2d_128x64",
                "conv2d_weight_grad_128"
            ],
            5
        )
    );
    // Batch 64: each GEMM split to 250 128-tiles.
    assert_eq!(
        entries(convt1(64)),
        (
            vec![
                "conv2d_input_grad_128",
                "conv2d_sum_splits",
                "conv2d_128",
                "conv2d_sum_splits",
                "conv2d_weight_grad_128"
            ],
            5
        )
    );
    // The 64 columns of the strided input gradient; 150 and 156 128-tiles.
    assert_eq!(
        entries(convt2(64)),
        (
            vec![
                "conv2d_input_grad_parity_128x64",
                "conv2d_sum_splits",
                "conv2d_128x64",
                "conv2d_sum_splits",
                "conv2d_weight_grad_128x64"
            ],
            12
        )
    );
}
