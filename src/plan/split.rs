//! How the GPU splits GEMMs along their inner sums: the split counts and
//! stretches the plan's split ops ([`Op::ConvGemmSplit`],
//! [`Op::Conv2dWeightGradSplit`], [`Op::MatmulDwSplit`]) carry, chosen from
//! the output's tile count so that a launch fills a 132-SM card.

use super::ConvGeom;
#[cfg(doc)]
use super::Op;

/// The forward or the input-gradient GEMM of a convolution, as an
/// [`Op::ConvGemmSplit`] computes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConvGemm {
    /// `y = conv(x, w)`: rows `(b, p, q)`, columns `o`, inner `(c, i, j)`.
    Forward,
    /// `dx` from `dy`: rows `(b, h, v)`, columns `c`, inner `(o, i, j)`.
    InputGrad,
}

impl ConvGemm {
    /// (length of the operand `a`, length of the output).
    pub fn lens(self, g: &ConvGeom) -> (usize, usize) {
        match self {
            ConvGemm::Forward => (g.x_len(), g.y_len()),
            ConvGemm::InputGrad => (g.y_len(), g.x_len()),
        }
    }

    /// The output's channel count (what a bias is indexed by).
    pub fn channels(self, g: &ConvGeom) -> usize {
        match self {
            ConvGemm::Forward => g.out_ch,
            ConvGemm::InputGrad => g.in_ch,
        }
    }

    /// The output's plane `(height · width)`.
    pub fn plane(self, g: &ConvGeom) -> usize {
        match self {
            ConvGemm::Forward => g.out_h * g.out_w,
            ConvGemm::InputGrad => g.in_h * g.in_w,
        }
    }
}

/// `[M, N, K]` of a convolution's forward or input-gradient GEMM.
pub fn conv_gemm_mnk(gemm: ConvGemm, g: &ConvGeom) -> [usize; 3] {
    let per_tap = g.kernel.0 * g.kernel.1;
    match gemm {
        ConvGemm::Forward => [g.batch * g.out_h * g.out_w, g.out_ch, g.in_ch * per_tap],
        ConvGemm::InputGrad => [g.batch * g.in_h * g.in_w, g.in_ch, g.out_ch * per_tap],
    }
}

/// Input gradients with fewer input channels than this run one thread per
/// element on the GPU (`conv2d_input_grad_direct`): the GEMM's N is the
/// channel count, and a 64-wide tile would compute one useful column in 64
/// at the DCGAN's one-channel layers (29 GFLOP/s on an H200, 2026-12-02).
pub const DIRECT_MAX_CHANNELS: usize = 8;

/// How many splits of its inner sum a convolution's forward or input
/// gradient takes on the GPU ([`Op::ConvGemmSplit`]; 1: none): as
/// [`conv_weight_splits`], about two workgroups per SM of a 132-SM card
/// (four of the narrow 128×64 tiles), each split walking at least 256 of
/// the inner sum. The workgroups are
/// counted as the GPU lowering tiles the output: 128 rows by 128 columns
/// (by 64 for outputs at most 64 wide) where both sides reach 64, else
/// 64×64; a strided input gradient runs one GEMM per parity class, each
/// split alike. The direct input gradients (few channels) do not split.
pub fn conv_gemm_splits(gemm: ConvGemm, g: &ConvGeom) -> usize {
    if gemm == ConvGemm::InputGrad && g.in_ch < DIRECT_MAX_CHANNELS {
        return 1;
    }
    let [m, n, k] = conv_gemm_mnk(gemm, g);
    let (rows, classes, inner) = match parity_classes(gemm, g) {
        Some((sh, sw)) => {
            let (kh, kw) = g.kernel;
            let inner = g.out_ch * kh.div_ceil(sh) * kw.div_ceil(sw);
            (parity_class_rows(g), sh * sw, inner)
        }
        None => (m, 1, k),
    };
    let (tile_rows, tile_cols) = match (rows.min(n) >= 64, n <= 64) {
        (true, true) => (128, 64),
        (true, false) => (128, 128),
        (false, _) => (64, 64),
    };
    let tiles = rows.div_ceil(tile_rows) * n.div_ceil(tile_cols) * classes;
    // The narrow tiles hold half the registers: aim for twice as many.
    let target = if tile_cols == 64 && tile_rows == 128 {
        528
    } else {
        264
    };
    (target / tiles).min(inner / 256).max(1)
}

/// The input pixels of the largest parity class of `g`'s input gradient,
/// class (0, 0): `batch·⌈in_h/sh⌉·⌈in_w/sw⌉`, the rows the GPU's
/// class-by-class launches are sized for.
pub fn parity_class_rows(g: &ConvGeom) -> usize {
    let (sh, sw) = g.stride;
    g.batch * g.in_h.div_ceil(sh) * g.in_w.div_ceil(sw)
}

/// The strides of a strided input gradient, whose GEMM the GPU runs (and
/// an [`Op::ConvGemmSplit`] splits) one parity class at a time.
fn parity_classes(gemm: ConvGemm, g: &ConvGeom) -> Option<(usize, usize)> {
    (gemm == ConvGemm::InputGrad && g.stride != (1, 1)).then_some(g.stride)
}

/// The stretch each split of a `k`-long sum takes: `⌈k / splits⌉` rounded
/// up to a multiple of 16 (the GPU kernels' slab).
pub fn split_stretch(k: usize, splits: usize) -> usize {
    k.div_ceil(splits.max(1)).div_ceil(16) * 16
}

/// The stretch of K each split of an unstrided [`Op::ConvGemmSplit`] takes
/// ([`split_stretch`] of the GEMM's K; a strided input gradient's classes
/// each take [`split_stretch`] of their own inner sum).
pub fn conv_gemm_stretch(gemm: ConvGemm, g: &ConvGeom, splits: usize) -> usize {
    let [_, _, k] = conv_gemm_mnk(gemm, g);
    split_stretch(k, splits)
}

/// The partial sums a split [`Op::ConvGemmSplit`] of `g` writes (0 when
/// it does not split).
pub fn conv_gemm_partials_len(gemm: ConvGemm, g: &ConvGeom) -> usize {
    match conv_gemm_splits(gemm, g) {
        1 => 0,
        s => s * gemm.lens(g).1,
    }
}

/// Output tile edge of the GPU's 128-tile implicit GEMMs (`conv2d_128` …);
/// a weight gradient whose output sides both reach it is split for them.
pub const CONV_BIG_TILE: u32 = 128;

/// How many splits a convolution's weight gradient takes on the GPU: enough
/// workgroups for about two per SM of a 132-SM card, each split walking at
/// least 256 of the `K = batch·out_h·out_w` values (1: no split). The
/// workgroups are 128-tiles where both sides of the `out_ch × taps` output
/// reach 128, else 64-tiles. The DCGAN's 64×25 first-layer weight gradient
/// over 64·14·14 values is one 64-tile: unsplit, one workgroup walks all
/// 12,544; its 256×3200 one at batch 256 is 50 128-tiles, split 5 ways.
pub fn conv_weight_splits(geom: &ConvGeom) -> usize {
    let big = CONV_BIG_TILE as usize;
    let edge = if geom.out_ch.min(geom.taps()) >= big {
        big
    } else {
        64
    };
    let tiles = geom.out_ch.div_ceil(edge) * geom.taps().div_ceil(edge);
    let k = geom.batch * geom.out_h * geom.out_w;
    (264 / tiles).min(k / 256).max(1)
}

/// The stretch of the flattened `(b, p, q)` sum each split of an
/// [`Op::Conv2dWeightGradSplit`] takes: `⌈K / splits⌉` rounded up to a
/// multiple of 16 (the GPU kernel's slab), `K = batch·out_h·out_w`.
pub fn conv_split_stretch(geom: &ConvGeom, splits: usize) -> usize {
    let k = geom.batch * geom.out_h * geom.out_w;
    k.div_ceil(splits.max(1)).div_ceil(16) * 16
}

/// How many splits of its sum over the batch rows a dense layer's weight
/// gradient `dw[n, k] = Σ_m dy[m, n]·x[m, k]` takes on the GPU
/// ([`Op::MatmulDwSplit`]; 1: none): where its `n × k` output has fewer
/// 128-tiles than the 128-tile kernel needs to fill the card
/// (`MATMUL_BIG_MIN_TILES`, 256) but is not small enough for the
/// small-output kernels ([`super::small_matmul_output`]), enough splits for
/// about 264 workgroups, each walking at least 256 rows. The large step's
/// 1024×1024 and 1024×784 weight gradients over 4,096 rows split 4 ways.
pub fn matmul_dw_splits(m: usize, n: usize, k: usize) -> usize {
    let tiles = n.div_ceil(128) * k.div_ceil(128);
    if tiles >= 256 || super::small_matmul_output(n, k) {
        return 1;
    }
    (264 / tiles).min(m / 256).max(1)
}

/// The stretch of the `m` batch rows each split of an [`Op::MatmulDwSplit`]
/// takes ([`split_stretch`]).
pub fn matmul_split_stretch(m: usize, splits: usize) -> usize {
    split_stretch(m, splits)
}
