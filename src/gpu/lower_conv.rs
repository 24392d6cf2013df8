//! Lowering of the convolution ops to `shaders/conv2d.wgsl`'s implicit GEMMs:
//! the geometry, the GEMM's sizes and the epilogue as uniform words, and the
//! operands at the file's bindings.

use std::sync::atomic::{AtomicU8, Ordering};

use super::lowering::{KernelCall, MATMUL_TILE, w};
use crate::plan::{CONV_BIG_TILE, ConvEpilogue, ConvGeom, Op, Slice, conv_split_stretch};
use crate::shaders::Shader;

/// The 128-tile implicit GEMMs (`conv2d_128` and its kin) run when the
/// launch has at least this many 128×128-tile workgroups (counting splits
/// and parity classes) and both sides of the GEMM's output are at least 64:
/// fewer workgroups would leave many of a large GPU's SMs idle (an H200 has
/// 132). Below that, the 64-tile kernels spread wider. Measured on an H200
/// (2026-12-02, `bench --only conv --conv-tiles 64|128`): at batch 256 the
/// 128-tiles run G's 256→128 layer at 15.7 TFLOP/s against 8.8, and the
/// 64-wide strided input gradients at 7.9 against 6.7; at batch 64 the
/// 25-workgroup forwards run at 3.1 against 4.0.
pub const CONV_BIG_MIN_WORKGROUPS: usize = 96;

/// Which output tiles the implicit GEMMs use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConvTiles {
    /// By the launch's size ([`CONV_BIG_MIN_WORKGROUPS`]): the default.
    BySize,
    /// Always 64×64 (the kernel-study and test override).
    Always64,
    /// Always 128×128 (the kernel-study and test override).
    Always128,
}

static CONV_TILES: AtomicU8 = AtomicU8::new(0);

/// Sets the tile policy of every convolution lowered after the call, in
/// this process: for benchmarks and tests that compare the two kernels at
/// the same shapes. Plans built before keep their kernels.
pub fn set_conv_tiles(tiles: ConvTiles) {
    CONV_TILES.store(tiles as u8, Ordering::Relaxed);
}

fn conv_tiles() -> ConvTiles {
    match CONV_TILES.load(Ordering::Relaxed) {
        1 => ConvTiles::Always64,
        2 => ConvTiles::Always128,
        _ => ConvTiles::BySize,
    }
}

/// Whether a GEMM output of `m`×`n` launched `z` times over (splits or
/// parity classes) takes the 128-tile kernel.
pub fn conv_big_tiles(m: usize, n: usize, z: usize) -> bool {
    let edge = CONV_BIG_TILE as usize;
    match conv_tiles() {
        ConvTiles::Always64 => false,
        ConvTiles::Always128 => true,
        ConvTiles::BySize => {
            m.min(n) >= 64 && m.div_ceil(edge) * n.div_ceil(edge) * z >= CONV_BIG_MIN_WORKGROUPS
        }
    }
}

/// The 128-tile twin of a 64-tile entry point.
fn big_entry(entry: &'static str) -> &'static str {
    match entry {
        "conv2d" => "conv2d_128",
        "conv2d_input_grad" => "conv2d_input_grad_128",
        "conv2d_input_grad_parity" => "conv2d_input_grad_parity_128",
        "conv2d_weight_grad" => "conv2d_weight_grad_128",
        other => other,
    }
}

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
    let (entry, workgroups) = conv_grid(&c);
    KernelCall {
        shader: Shader::Conv2d,
        entry,
        uniform_binding: 0,
        params,
        // Without an aux operand binding 3 still needs a buffer: b's is never read there.
        storage: vec![(1, c.a), (2, c.b), (3, aux.unwrap_or(c.b)), (4, c.out)],
        workgroups,
    }
}

/// The entry point and workgroup grid of a launch: one thread per element
/// for the direct input gradient; else 64- or 128-tiles over the GEMM's
/// output ([`conv_big_tiles`]), with one z per split or parity class.
fn conv_grid(c: &ConvCall) -> (&'static str, [u32; 3]) {
    if c.entry == "conv2d_input_grad_direct" {
        return (c.entry, super::lowering::grid_1d(c.out.len));
    }
    let [m, n, _] = c.mnk;
    let (rows, z) = if c.entry == "conv2d_input_grad_parity" {
        // One z per parity class; the rows of the largest class (0, 0).
        let (g, (sh, sw)) = (c.geom, c.geom.stride);
        (g.batch * g.in_h.div_ceil(sh) * g.in_w.div_ceil(sw), sh * sw)
    } else {
        (m, c.split.0.max(1))
    };
    let big = conv_big_tiles(rows, n, z);
    let (entry, edge) = if big {
        (big_entry(c.entry), CONV_BIG_TILE)
    } else {
        (c.entry, MATMUL_TILE)
    };
    let grid = [
        w(n).div_ceil(edge).max(1),
        w(rows).div_ceil(edge).max(1),
        w(z),
    ];
    (entry, grid)
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
