//! The convolution cases: Conv2d, its input gradient and its weight
//! gradient at the layers of the TensorFlow DCGAN tutorial's model (D: two
//! 5×5 stride-2 convolutions; G: three 5×5 transposed convolutions, each the
//! input gradient of the convolution named beside it), 2·(multiply-adds)
//! flops per launch.

use super::cases::{Case, Unit, random};
use crate::nn::sequential::conv_gemm;
use crate::plan::{
    ConvEpilogue, ConvGemm, ConvGeom, Elem, Init, Op, Plan, Slice, conv_gemm_partials_len,
    conv_gemm_splits, conv_weight_splits,
};

/// (name, geometry) of the DCGAN's layers at `batch`, as convolutions.
pub fn dcgan_layers(batch: usize) -> Vec<(&'static str, ConvGeom)> {
    let conv = |x, o| ConvGeom::conv(x, o, (5, 5), (2, 2), (2, 2)).expect("valid");
    let t = |x, o, s, op| ConvGeom::transposed(x, o, (5, 5), s, (2, 2), op).expect("valid");
    vec![
        ("D conv 1→64, 28→14", conv([batch, 1, 28, 28], 64)),
        ("D conv 64→128, 14→7", conv([batch, 64, 14, 14], 128)),
        (
            "G convT 256→128, 7→7",
            t([batch, 256, 7, 7], 128, (1, 1), (0, 0)),
        ),
        (
            "G convT 128→64, 7→14",
            t([batch, 128, 7, 7], 64, (2, 2), (1, 1)),
        ),
        (
            "G convT 64→1, 14→28",
            t([batch, 64, 14, 14], 1, (2, 2), (1, 1)),
        ),
    ]
}

/// The three ops of one layer's geometry, one case each, split and summed
/// as the training step runs them ([`conv_gemm_splits`],
/// [`conv_weight_splits`]). `cpu_too`: also time the CPU backend.
pub fn conv_cases(label: &str, g: &ConvGeom, cpu_too: bool) -> Vec<Case> {
    let mut plan = Plan::default();
    let x = plan.buffer("x", Elem::F32, g.x_len(), Init::F32(random(g.x_len(), 11)));
    let w = plan.buffer("w", Elem::F32, g.w_len(), Init::F32(random(g.w_len(), 12)));
    let dy = plan.buffer("dy", Elem::F32, g.y_len(), Init::F32(random(g.y_len(), 13)));
    let y = plan.f32_buffer("y", g.y_len());
    let dx = plan.f32_buffer("dx", g.x_len());
    let dw = plan.f32_buffer("dw", g.w_len());
    let geom = *g;
    let splits = conv_weight_splits(g);
    let (weight_label, weight_grad) = if splits == 1 {
        let whole = Op::Conv2dWeightGrad {
            dy,
            x,
            dw,
            db: None,
            geom,
        };
        ("weight grad".to_string(), vec![whole])
    } else {
        let partials = plan.f32_buffer("partials", splits * g.w_len());
        let split = Op::Conv2dWeightGradSplit {
            dy,
            x,
            partials,
            splits,
            with_db: false,
            geom,
        };
        let sum = Op::SumSplits {
            partials,
            out: dw,
            splits,
        };
        (format!("weight grad ({splits} splits)"), vec![split, sum])
    };
    let gemm = |gemm, [a, out]: [Slice; 2], what: &str, plan: &mut Plan| {
        let splits = conv_gemm_splits(gemm, g);
        let partials =
            (splits > 1).then(|| plan.f32_buffer("gemm partials", conv_gemm_partials_len(gemm, g)));
        let label = match splits {
            1 => what.to_string(),
            s => format!("{what} ({s} splits)"),
        };
        let ops = conv_gemm(gemm, [a, w, out], geom, ConvEpilogue::NONE, partials);
        (label, ops)
    };
    let ops = [
        gemm(ConvGemm::Forward, [x, y], "forward", &mut plan),
        gemm(ConvGemm::InputGrad, [dy, dx], "input grad", &mut plan),
        (weight_label, weight_grad),
    ];
    ops.into_iter()
        .map(|(what, ops)| {
            let mut p = plan.clone();
            p.add_phase("op", ops);
            Case {
                group: "conv",
                name: format!("conv {label}, batch {}: {what}", g.batch),
                unit: Unit::Gflops,
                work: 2.0 * g.macs() as f64,
                phases: vec!["op"],
                plan: p,
                cpu_too,
            }
        })
        .collect()
}
