//! CPU reference kernels of the 2-d convolution ops, written as the
//! formulas of [`ConvGeom`] read (one output element at a time, taps in
//! order). `shaders/conv2d.wgsl` is tested against them.

use std::ops::Range;

use crate::plan::ConvGeom;

/// The input position `p·stride + i − pad` of output position `p` and tap
/// `i`, if it lies inside an input of `size`.
fn source(p: usize, i: usize, stride: usize, pad: usize, size: usize) -> Option<usize> {
    (p * stride + i).checked_sub(pad).filter(|&h| h < size)
}

/// The output position `p` with `p·stride + i − pad = h`, if there is one
/// inside an output of `size`.
fn target(h: usize, i: usize, stride: usize, pad: usize, size: usize) -> Option<usize> {
    let t = (h + pad).checked_sub(i)?;
    (t % stride == 0 && t / stride < size).then_some(t / stride)
}

/// `y = conv(x, w)`: the raw sums of [`ConvGeom`]'s formula.
pub fn conv2d(x: &[f32], w: &[f32], y: &mut [f32], g: &ConvGeom) {
    conv2d_range(x, w, y, g, 0..g.in_ch * g.kernel.0 * g.kernel.1);
}

/// The flattened taps `k = row·width + col` in `range`, one row at a time:
/// (row, its columns inside the range), rows ascending. Walking taps this
/// way keeps the divisions to one per row.
fn tap_rows(range: Range<usize>, width: usize) -> impl Iterator<Item = (usize, Range<usize>)> {
    let (start, end) = (range.start, range.end);
    let rows = if width == 0 || start >= end {
        0..0
    } else {
        start / width..end.div_ceil(width)
    };
    rows.map(move |row| {
        let first = row * width;
        (
            row,
            first.max(start) - first..((row + 1) * width).min(end) - first,
        )
    })
}

/// Split `s` of a forward `Op::ConvGemmSplit`: [`conv2d`]'s sums over the
/// flattened taps `k = (c·kh + i)·kw + j` in `range` only, in that order.
pub fn conv2d_range(x: &[f32], w: &[f32], y: &mut [f32], g: &ConvGeom, range: Range<usize>) {
    let (kh, kw) = g.kernel;
    let taps = g.in_ch * kh * kw;
    let x_at =
        |b: usize, c: usize, h: usize, v: usize| x[((b * g.in_ch + c) * g.in_h + h) * g.in_w + v];
    let mut out = y.iter_mut();
    for b in 0..g.batch {
        for o in 0..g.out_ch {
            for p in 0..g.out_h {
                for q in 0..g.out_w {
                    let mut s = 0.0f32;
                    // Row c·kh + i of the taps: channel c, kernel row i.
                    for (row, js) in tap_rows(range.clone(), kw) {
                        let (c, i) = (row / kh, row % kh);
                        let Some(h) = source(p, i, g.stride.0, g.pad.0, g.in_h) else {
                            continue;
                        };
                        for j in js {
                            if let Some(v) = source(q, j, g.stride.1, g.pad.1, g.in_w) {
                                s += x_at(b, c, h, v) * w[o * taps + row * kw + j];
                            }
                        }
                    }
                    *out.next().expect("y holds the output") = s;
                }
            }
        }
    }
}

/// `dx = ∂⟨conv(x, w), dy⟩/∂x`: for every input element, the sum over the
/// taps that read it.
pub fn conv2d_input_grad(dy: &[f32], w: &[f32], dx: &mut [f32], g: &ConvGeom) {
    conv2d_input_grad_split(dy, w, dx, g, (0, 1));
}

/// The taps `i0, i0 + s, …` below `k` that can reach position `h` of an
/// axis of stride `s` and pad `pad` (its parity class): `(i0, count)`.
fn class_taps(h: usize, k: usize, s: usize, pad: usize) -> (usize, usize) {
    let i0 = (h + pad) % s;
    (i0, k.saturating_sub(i0).div_ceil(s))
}

/// Split `s` of `(s, splits)` of an input-gradient `Op::ConvGemmSplit`:
/// for every input element, [`conv2d_input_grad`]'s sum over the taps of
/// its parity class ranked `(o, ii, jj)` (`i = i0 + ii·stride.0`, `j`
/// likewise) in split `s`'s stretch of them, in that order. With one split,
/// the whole gradient: the taps of other classes only ever add zeros.
pub fn conv2d_input_grad_split(
    dy: &[f32],
    w: &[f32],
    dx: &mut [f32],
    g: &ConvGeom,
    (s, splits): (usize, usize),
) {
    let (kh, kw) = g.kernel;
    let (sh, sw) = g.stride;
    let dy_at = |b: usize, o: usize, p: usize, q: usize| {
        dy[((b * g.out_ch + o) * g.out_h + p) * g.out_w + q]
    };
    let mut out = dx.iter_mut();
    for b in 0..g.batch {
        for c in 0..g.in_ch {
            for h in 0..g.in_h {
                for v in 0..g.in_w {
                    let (i0, ki) = class_taps(h, kh, sh, g.pad.0);
                    let (j0, kj) = class_taps(v, kw, sw, g.pad.1);
                    let terms = g.out_ch * ki * kj;
                    let stretch = crate::plan::split_stretch(terms, splits);
                    let ranked = (s * stretch).min(terms)..((s + 1) * stretch).min(terms);
                    let mut sum = 0.0f32;
                    // Row o·ki + ii of the class's taps: channel o, kernel row i0 + ii·sh.
                    for (row, jjs) in tap_rows(ranked, kj) {
                        let (o, i) = (row / ki, i0 + row % ki * sh);
                        let Some(p) = target(h, i, sh, g.pad.0, g.out_h) else {
                            continue;
                        };
                        for jj in jjs {
                            let j = j0 + jj * sw;
                            if let Some(q) = target(v, j, sw, g.pad.1, g.out_w) {
                                sum += dy_at(b, o, p, q) * w[((o * g.in_ch + c) * kh + i) * kw + j];
                            }
                        }
                    }
                    *out.next().expect("dx holds the input") = sum;
                }
            }
        }
    }
}

/// `dw = ∂⟨conv(x, w), dy⟩/∂w`, and with `db` the sums of dy per channel
/// (in f64, rounded once, as `column_sum`).
pub fn conv2d_weight_grad(
    dy: &[f32],
    x: &[f32],
    dw: &mut [f32],
    db: Option<&mut [f32]>,
    g: &ConvGeom,
) {
    let plane = g.out_h * g.out_w;
    // The whole sum over (b, p, q), in that order: the split reference's one stretch.
    conv2d_weight_grad_range(dy, x, dw, None, g, 0..g.batch * plane);
    if let Some(db) = db {
        for (o, d) in db.iter_mut().enumerate() {
            let sum: f64 = (0..g.batch)
                .flat_map(|b| {
                    let at = (b * g.out_ch + o) * plane;
                    dy[at..at + plane].iter().map(|&v| f64::from(v))
                })
                .sum();
            *d = sum as f32;
        }
    }
}

/// `out[e] += bias[c]` for every element `e` of channel `c` of an NCHW tensor
/// of `channels` channels with `plane` elements each.
pub fn add_channel_bias(out: &mut [f32], bias: &[f32], channels: usize, plane: usize) {
    for (e, v) in out.iter_mut().enumerate() {
        *v += bias[(e / plane) % channels];
    }
}

/// Split `s` of an `Op::Conv2dWeightGradSplit`: the weight gradient (and
/// with `db` the sums of dy per channel) over the flattened `(b, p, q)` in
/// `range`, summed in that order.
pub fn conv2d_weight_grad_range(
    dy: &[f32],
    x: &[f32],
    dw: &mut [f32],
    db: Option<&mut [f32]>,
    g: &ConvGeom,
    range: Range<usize>,
) {
    let (kh, kw) = g.kernel;
    let dy_at = |b: usize, o: usize, p: usize, q: usize| {
        dy[((b * g.out_ch + o) * g.out_h + p) * g.out_w + q]
    };
    // Row b·out_h + p of the flattened (b, p, q): sample b, output row p.
    let rows =
        || tap_rows(range.clone(), g.out_w).map(|(row, qs)| (row / g.out_h, row % g.out_h, qs));
    let mut out = dw.iter_mut();
    for o in 0..g.out_ch {
        for c in 0..g.in_ch {
            for i in 0..kh {
                for j in 0..kw {
                    let mut s = 0.0f32;
                    for (b, p, qs) in rows() {
                        let Some(h) = source(p, i, g.stride.0, g.pad.0, g.in_h) else {
                            continue;
                        };
                        for q in qs {
                            if let Some(v) = source(q, j, g.stride.1, g.pad.1, g.in_w) {
                                s += dy_at(b, o, p, q)
                                    * x[((b * g.in_ch + c) * g.in_h + h) * g.in_w + v];
                            }
                        }
                    }
                    *out.next().expect("dw holds the weights") = s;
                }
            }
        }
    }
    if let Some(db) = db {
        for (o, d) in db.iter_mut().enumerate() {
            *d = rows()
                .flat_map(|(b, p, qs)| qs.map(move |q| (b, p, q)))
                .map(|(b, p, q)| dy_at(b, o, p, q))
                .sum();
        }
    }
}
