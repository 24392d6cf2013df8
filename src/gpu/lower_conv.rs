//! Lowering of the convolution ops to `shaders/conv2d.wgsl`'s implicit GEMMs:
//! the geometry, the GEMM's sizes and the epilogue as uniform words, and the
//! operands at the file's bindings.

use super::lowering::{KernelCall, MATMUL_TILE, w};
use crate::plan::{ConvEpilogue, ConvGeom, Op, Slice, conv_split_stretch};
use crate::shaders::Shader;

/// (mode, aux slice, act id, slope bits) of an epilogue, as conv2d.wgsl reads them.
fn epilogue_words(e: &ConvEpilogue) -> (u32, Option<Slice>, u32, u32) {
    match *e {
        ConvEpilogue::BiasAct { bias: None, act } => (0, None, act.id(), act.slope().to_bits()),
        ConvEpilogue::BiasAct { bias: Some(b), act } => {
            (1, Some(b), act.id(), act.slope().to_bits())
        }
        ConvEpilogue::ActGrad { y, act } => (2, Some(y), act.id(), act.slope().to_bits()),
    }
}

/// The launch of one GEMM of conv2d.wgsl.
struct ConvCall<'a> {
    entry: &'static str,
    geom: &'a ConvGeom,
    a: Slice,
    b: Slice,
    out: Slice,
    epilogue: ConvEpilogue,
    rows: Option<Slice>,
    mnk: [usize; 3],
    /// (splits, stretch) of a split weight gradient; (1, 0) otherwise.
    split: (usize, usize),
}

/// Input gradients with fewer input channels than this run one thread per
/// element (`conv2d_input_grad_direct`): the GEMM's N is the channel count,
/// and a 64-wide tile would compute one useful column in 64 at the DCGAN's
/// one-channel layers (29 GFLOP/s on an H200, 2026-12-02).
pub const DIRECT_MAX_CHANNELS: usize = 8;

fn conv_call(c: ConvCall) -> KernelCall {
    let g = c.geom;
    let (mode, aux, act, slope) = epilogue_words(&c.epilogue);
    let [m, n, k] = c.mnk;
    let params = vec![
        w(g.batch),
        w(g.in_ch),
        w(g.in_h),
        w(g.in_w),
        w(g.out_ch),
        w(g.out_h),
        w(g.out_w),
        w(g.kernel.0),
        w(g.kernel.1),
        w(g.stride.0),
        w(g.stride.1),
        w(g.pad.0),
        w(g.pad.1),
        w(c.a.offset),
        w(c.b.offset),
        w(c.out.offset),
        w(aux.map_or(0, |s| s.offset)),
        mode,
        act,
        slope,
        u32::from(c.rows.is_some()),
        w(c.rows.map_or(0, |s| s.offset)),
        w(m),
        w(n),
        w(k),
        w(c.split.1),
        0,
        0,
    ];
    let workgroups = if c.entry == "conv2d_input_grad_direct" {
        super::lowering::grid_1d(c.out.len)
    } else if c.entry == "conv2d_input_grad_parity" {
        // One z per parity class; the rows of the largest class (0, 0).
        let (g, (sh, sw)) = (c.geom, c.geom.stride);
        let rows = g.batch * g.in_h.div_ceil(sh) * g.in_w.div_ceil(sw);
        [
            w(n).div_ceil(MATMUL_TILE).max(1),
            w(rows).div_ceil(MATMUL_TILE).max(1),
            w(sh * sw),
        ]
    } else {
        [
            w(n).div_ceil(MATMUL_TILE).max(1),
            w(m).div_ceil(MATMUL_TILE).max(1),
            w(c.split.0).max(1),
        ]
    };
    KernelCall {
        shader: Shader::Conv2d,
        entry: c.entry,
        uniform_binding: 0,
        params,
        // Without an aux operand binding 3 still needs a buffer: b's is never read there.
        storage: vec![(1, c.a), (2, c.b), (3, aux.unwrap_or(c.b)), (4, c.out)],
        workgroups,
    }
}

/// The launch of a convolution op.
///
/// # Panics
/// On any other op (`lowering::lower` sends only these here).
pub fn lower_conv(op: &Op) -> KernelCall {
    match *op {
        Op::Conv2d {
            x,
            w: weights,
            y,
            ref geom,
            epilogue,
        } => conv_call(ConvCall {
            entry: "conv2d",
            geom,
            a: x,
            b: weights,
            out: y,
            epilogue,
            rows: None,
            mnk: [
                geom.batch * geom.out_h * geom.out_w,
                geom.out_ch,
                geom.taps(),
            ],
            split: (1, 0),
        }),
        Op::Conv2dInputGrad {
            dy,
            w: weights,
            dx,
            ref geom,
            epilogue,
        } => conv_call(ConvCall {
            entry: if geom.in_ch < DIRECT_MAX_CHANNELS {
                "conv2d_input_grad_direct"
            } else if geom.stride != (1, 1) {
                "conv2d_input_grad_parity"
            } else {
                "conv2d_input_grad"
            },
            geom,
            a: dy,
            b: weights,
            out: dx,
            epilogue,
            rows: None,
            mnk: [
                geom.batch * geom.in_h * geom.in_w,
                geom.in_ch,
                geom.out_ch * geom.kernel.0 * geom.kernel.1,
            ],
            split: (1, 0),
        }),
        Op::Conv2dWeightGrad {
            dy,
            x,
            dw,
            db,
            ref geom,
        } => conv_call(ConvCall {
            entry: "conv2d_weight_grad",
            geom,
            a: dy,
            b: x,
            out: dw,
            epilogue: ConvEpilogue::NONE,
            rows: db,
            mnk: [
                geom.out_ch,
                geom.taps(),
                geom.batch * geom.out_h * geom.out_w,
            ],
            split: (1, 0),
        }),
        Op::Conv2dWeightGradSplit {
            dy,
            x,
            partials,
            splits,
            with_db,
            ref geom,
        } => {
            let weights = splits * geom.w_len();
            conv_call(ConvCall {
                entry: "conv2d_weight_grad",
                geom,
                a: dy,
                b: x,
                out: partials,
                epilogue: ConvEpilogue::NONE,
                rows: with_db.then(|| partials.sub(weights, splits * geom.out_ch)),
                mnk: [
                    geom.out_ch,
                    geom.taps(),
                    geom.batch * geom.out_h * geom.out_w,
                ],
                split: (splits, conv_split_stretch(geom, splits)),
            })
        }
        Op::SumSplits {
            partials,
            out,
            splits,
        } => KernelCall {
            shader: Shader::SumSplits,
            entry: "sum_splits",
            uniform_binding: 0,
            params: vec![w(out.len), w(splits), w(partials.offset), w(out.offset)],
            storage: vec![(1, partials), (2, out)],
            workgroups: super::lowering::grid_1d(out.len),
        },
        _ => panic!(
            "lower_conv takes the convolution ops, not {}",
            op.kernel_name()
        ),
    }
}
