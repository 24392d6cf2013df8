//! The 128×128- and 128×64-tile implicit GEMMs (`conv2d_128`,
//! `conv2d_input_grad_128`, `conv2d_input_grad_parity_128`,
//! `conv2d_weight_grad_128` and their `_128x64` twins) against the CPU
//! reference: every case of `tests/conv.rs` with each tile forced
//! ([`set_conv_tiles`]), so shapes of 1, odd sizes and outputs far
//! from whole tiles run through them, plus shapes of several tiles on each
//! side. One test in this binary: the tile policy is process-wide.

mod common;

use common::conv_cases::*;
use shadergan::gpu::lower_conv::{ConvTiles, set_conv_tiles};
use shadergan::plan::ConvGeom;

/// Several 128-tiles along each side of each GEMM, none of them whole:
/// 3·37·41 = 4,551 output pixels, 130 and 131 channels, 5×5 and 3×3 taps at
/// strides 1 and 2 (the parity classes of the strided input gradient).
fn multi_tile_geometries() -> Vec<ConvGeom> {
    let c = |x, o, k, s, p| ConvGeom::conv(x, o, k, s, p).expect("valid");
    let t = |x, o, k, s, p, op| ConvGeom::transposed(x, o, k, s, p, op).expect("valid");
    vec![
        c([3, 3, 37, 41], 131, (3, 3), (1, 1), (1, 1)),
        c([2, 130, 19, 17], 9, (3, 3), (1, 1), (1, 1)),
        c([2, 131, 23, 21], 5, (5, 5), (2, 2), (2, 2)),
        c([1, 17, 21, 19], 130, (3, 3), (2, 2), (1, 1)),
        t([3, 9, 7, 7], 130, (5, 5), (1, 1), (2, 2), (0, 0)),
        t([2, 5, 7, 7], 129, (5, 5), (2, 2), (2, 2), (1, 1)),
    ]
}

#[test]
fn the_128_tile_kernels_match_the_cpu_reference() {
    for tiles in [ConvTiles::Always128, ConvTiles::Always128x64] {
        set_conv_tiles(tiles);
        check_every_case();
    }
}

fn check_every_case() {
    let all = geometries()
        .into_iter()
        .chain(transposed_geometries())
        .chain(multi_tile_geometries());
    for (i, g) in all.enumerate() {
        check_against_cpu(&g, 700 + i as u64);
    }
    let g = ConvGeom::conv([3, 2, 13, 11], 5, (5, 5), (2, 2), (2, 2)).unwrap();
    check_split_weight_grad(&g, &[1, 3, 7]);
    let wide = ConvGeom::conv([2, 9, 15, 13], 130, (3, 3), (2, 2), (1, 1)).unwrap();
    check_split_weight_grad(&wide, &[2, 5]);
    check_split_gemms(&wide, &[2, 5]);
    check_split_gemms(&multi_tile_geometries()[4], &[3]);
}
