//! Lowering of the convolution ops to `shaders/conv2d.wgsl`'s implicit GEMMs:
//! the geometry, the GEMM's sizes and the epilogue as uniform words, and the
//! operands at the file's bindings.

use std::sync::atomic::{AtomicU8, Ordering};

use super::lowering::{KernelCall, w};
use crate::plan::{
    ConvEpilogue, ConvGemm, ConvGeom, DIRECT_MAX_CHANNELS, Op, Slice, conv_gemm_mnk,
    conv_gemm_stretch, conv_split_stretch, parity_class_rows,
};
use crate::shaders::Shader;

/// The large-tile implicit GEMMs (`conv2d_128`, `conv2d_128x64` and their
/// kin) run when the launch has at least this many workgroups (counting
/// splits and parity classes) and both sides of the GEMM's output are at
/// least 64: fewer workgroups would leave many of a large GPU's SMs idle
/// (an H200 has 132). Below that, the 64-tile kernels spread wider.
/// Measured on an H200 (2026-12-02, `bench --only conv --conv-tiles
/// 64|128`): at batch 256 the 128-tiles run G's 256→128 layer at 15.7
/// TFLOP/s against 8.8, and the 64-wide strided input gradients at 7.9
/// against 6.7; at batch 64 the 25-workgroup forwards run at 3.1 against 4.0.
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
    /// Always 128×64 (the kernel-study and test override).
    Always128x64,
}

static CONV_TILES: AtomicU8 = AtomicU8::new(0);

/// Sets the tile policy of every convolution lowered after the call, in
/// this process: for benchmarks and tests that compare the kernels at the
/// same shapes. Plans built before keep their kernels.
pub fn set_conv_tiles(tiles: ConvTiles) {
    CONV_TILES.store(tiles as u8, Ordering::Relaxed);
}

fn conv_tiles() -> ConvTiles {
    match CONV_TILES.load(Ordering::Relaxed) {
        1 => ConvTiles::Always64,
        2 => ConvTiles::Always128,
        3 => ConvTiles::Always128x64,
        _ => ConvTiles::BySize,
    }
}

/// An implicit GEMM's output tile: rows × columns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConvTile {
    T64,
    T128,
    /// 128 rows by 64 columns: for outputs at most 64 columns wide.
    T128x64,
}

impl ConvTile {
    /// (rows, columns) of the tile.
    pub fn edges(self) -> (usize, usize) {
        match self {
            ConvTile::T64 => (64, 64),
            ConvTile::T128 => (128, 128),
            ConvTile::T128x64 => (128, 64),
        }
    }
}

/// The 128×128 tiles run only where a launch has at least this many of
/// them (counting splits and parity classes); with fewer, 128×64 tiles,
/// twice as many workgroups with half the registers each, ran faster.
/// Measured on an H200 (2026-12-03, `bench --only conv --conv-tiles
/// 128|128x64`): at 196 128-tiles the DCGAN's 7×7 forward ran at 21.5
/// TFLOP/s on 128×64 against 15.7, and D's 64→128 forward at 19.0 against
/// 14.0; at 250 and more the 128-tiles won (17.5 against 16.2, and the
/// weight gradients 21–24 against 17–19).
pub const CONV_SQUARE_MIN_WORKGROUPS: usize = 224;

/// The tile of a GEMM output of `m`×`n` launched `z` times over (splits or
/// parity classes). Where both sides reach 64: 128×128 if the launch has
/// [`CONV_SQUARE_MIN_WORKGROUPS`] of them and `n` exceeds 64 (else half of
/// each tile's columns would idle), or 128×64 if it has
/// [`CONV_BIG_MIN_WORKGROUPS`] of those; else 64×64.
pub fn conv_tile(m: usize, n: usize, z: usize) -> ConvTile {
    let count = |t: ConvTile| {
        let (rows, cols) = t.edges();
        m.div_ceil(rows) * n.div_ceil(cols) * z
    };
    match conv_tiles() {
        ConvTiles::Always64 => ConvTile::T64,
        ConvTiles::Always128 => ConvTile::T128,
        ConvTiles::Always128x64 => ConvTile::T128x64,
        ConvTiles::BySize if m.min(n) < 64 => ConvTile::T64,
        ConvTiles::BySize => {
            if n > 64 && count(ConvTile::T128) >= CONV_SQUARE_MIN_WORKGROUPS {
                ConvTile::T128
            } else if count(ConvTile::T128x64) >= CONV_BIG_MIN_WORKGROUPS {
                ConvTile::T128x64
            } else {
                ConvTile::T64
            }
        }
    }
}

/// The twin of a 64-tile entry point for a larger tile.
fn tile_entry(entry: &'static str, tile: ConvTile) -> &'static str {
    match (tile, entry) {
        (ConvTile::T128, "conv2d") => "conv2d_128",
        (ConvTile::T128, "conv2d_input_grad") => "conv2d_input_grad_128",
        (ConvTile::T128, "conv2d_input_grad_parity") => "conv2d_input_grad_parity_128",
        (ConvTile::T128, "conv2d_weight_grad") => "conv2d_weight_grad_128",
        (ConvTile::T128x64, "conv2d") => "conv2d_128x64",
        (ConvTile::T128x64, "conv2d_input_grad") => "conv2d_input_grad_128x64",
        (ConvTile::T128x64, "conv2d_input_grad_parity") => "conv2d_input_grad_parity_128x64",
        (ConvTile::T128x64, "conv2d_weight_grad") => "conv2d_weight_grad_128x64",
        (_, other) => other,
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
    /// (splits, stretch) of a split launch (the stretch unused by the
    /// strided input gradient, whose classes derive their own).
    split: Option<(usize, usize)>,
    /// (splits, plane) of `conv2d_sum_splits`; (0, 0) otherwise.
    sum: (usize, usize),
}

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
        w(c.split.map_or(0, |s| s.1)),
        w(c.split.map_or(c.sum.0, |s| s.0)),
        w(c.sum.1),
    ];
    let (entry, workgroups) = conv_grid(&c);
    // Without an aux operand binding 3 still needs a buffer: b's is never read
    // there. conv2d_sum_splits reads no b (binding 2).
    let mut storage = vec![(1, c.a), (2, c.b), (3, aux.unwrap_or(c.b)), (4, c.out)];
    if entry == "conv2d_sum_splits" {
        storage.remove(1);
    }
    KernelCall {
        shader: Shader::Conv2d,
        entry,
        uniform_binding: 0,
        params,
        storage,
        workgroups,
    }
}

/// The entry point and workgroup grid of a launch: one thread per element
/// for the direct input gradient and the sum of splits; else tiles over the
/// GEMM's output ([`conv_tile`]), with one z per split, parity class, or
/// (class, split) pair.
fn conv_grid(c: &ConvCall) -> (&'static str, [u32; 3]) {
    match c.entry {
        // Eight threads per element (conv2d.wgsl's DIRECT_LANES), one z per
        // parity class, the rows of the largest class (0, 0).
        "conv2d_input_grad_direct" => {
            let (sh, sw) = c.geom.stride;
            let [x, y, _] = super::lowering::grid_1d(8 * parity_class_rows(c.geom) * c.geom.in_ch);
            return (c.entry, [x, y, w(sh * sw)]);
        }
        "conv2d_sum_splits" => return (c.entry, super::lowering::grid_1d(c.out.len)),
        _ => {}
    }
    let [m, n, _] = c.mnk;
    let splits = c.split.map_or(1, |s| s.0);
    let (rows, z) = if c.entry == "conv2d_input_grad_parity" {
        // One z per parity class and split; the rows of the largest class (0, 0).
        let (sh, sw) = c.geom.stride;
        (parity_class_rows(c.geom), sh * sw * splits)
    } else {
        (m, splits)
    };
    let tile = conv_tile(rows, n, z);
    let (tile_rows, tile_cols) = tile.edges();
    let grid = [
        w(n).div_ceil(tile_cols as u32).max(1),
        w(rows).div_ceil(tile_rows as u32).max(1),
        w(z),
    ];
    (tile_entry(c.entry, tile), grid)
}

/// Lanes per output of `sum_splits`: eight for 16 splits or more (each
/// output's chain of dependent loads shortened eightfold), else one.
/// Measured on an H200 (2026-12-03, `train --preset dcgan-mnist --batch 64
/// --profile`): one lane took 25 µs to add 98 splits of 1,600 values.
fn sum_lanes(splits: usize) -> usize {
    if splits >= 16 { 8 } else { 1 }
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
            mnk: conv_gemm_mnk(ConvGemm::Forward, geom),
            split: None,
            sum: (0, 0),
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
            mnk: conv_gemm_mnk(ConvGemm::InputGrad, geom),
            split: None,
            sum: (0, 0),
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
            split: None,
            sum: (0, 0),
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
                split: Some((splits, conv_split_stretch(geom, splits))),
                sum: (0, 0),
            })
        }
        Op::ConvGemmSplit {
            gemm,
            a,
            w: weights,
            partials,
            splits,
            ref geom,
        } => conv_call(ConvCall {
            entry: match gemm {
                ConvGemm::Forward => "conv2d",
                ConvGemm::InputGrad if geom.stride != (1, 1) => "conv2d_input_grad_parity",
                ConvGemm::InputGrad => "conv2d_input_grad",
            },
            geom,
            a,
            b: weights,
            out: partials,
            epilogue: ConvEpilogue::NONE,
            rows: None,
            mnk: conv_gemm_mnk(gemm, geom),
            split: Some((splits, conv_gemm_stretch(gemm, geom, splits))),
            sum: (0, 0),
        }),
        Op::ConvSumSplits {
            gemm,
            partials,
            out,
            splits,
            ref geom,
            epilogue,
        } => conv_call(ConvCall {
            entry: "conv2d_sum_splits",
            geom,
            a: partials,
            b: partials,
            out,
            epilogue,
            rows: None,
            mnk: conv_gemm_mnk(gemm, geom),
            split: None,
            sum: (splits, gemm.plane(geom)),
        }),
        Op::SumSplits {
            partials,
            out,
            splits,
        } => {
            let lanes = sum_lanes(splits);
            KernelCall {
                shader: Shader::SumSplits,
                entry: "sum_splits",
                uniform_binding: 0,
                params: vec![
                    w(out.len),
                    w(splits),
                    w(partials.offset),
                    w(out.offset),
                    w(lanes),
                    0,
                    0,
                    0,
                ],
                storage: vec![(1, partials), (2, out)],
                workgroups: super::lowering::grid_1d(lanes * out.len),
            }
        }
        _ => panic!(
            "lower_conv takes the convolution ops, not {}",
            op.kernel_name()
        ),
    }
}
