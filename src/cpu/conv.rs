//! CPU reference kernels of the 2-d convolution ops, written as the
//! formulas of [`ConvGeom`] read (one output element at a time, taps in
//! order). `shaders/conv2d.wgsl` is tested against them.

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
    let (kh, kw) = g.kernel;
    let x_at =
        |b: usize, c: usize, h: usize, v: usize| x[((b * g.in_ch + c) * g.in_h + h) * g.in_w + v];
    let mut out = y.iter_mut();
    for b in 0..g.batch {
        for o in 0..g.out_ch {
            for p in 0..g.out_h {
                for q in 0..g.out_w {
                    let mut s = 0.0f32;
                    for c in 0..g.in_ch {
                        for i in 0..kh {
                            let Some(h) = source(p, i, g.stride.0, g.pad.0, g.in_h) else {
                                continue;
                            };
                            for j in 0..kw {
                                if let Some(v) = source(q, j, g.stride.1, g.pad.1, g.in_w) {
                                    s +=
                                        x_at(b, c, h, v) * w[((o * g.in_ch + c) * kh + i) * kw + j];
                                }
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
    let (kh, kw) = g.kernel;
    let dy_at = |b: usize, o: usize, p: usize, q: usize| {
        dy[((b * g.out_ch + o) * g.out_h + p) * g.out_w + q]
    };
    let mut out = dx.iter_mut();
    for b in 0..g.batch {
        for c in 0..g.in_ch {
            for h in 0..g.in_h {
                for v in 0..g.in_w {
                    let mut s = 0.0f32;
                    for o in 0..g.out_ch {
                        for i in 0..kh {
                            let Some(p) = target(h, i, g.stride.0, g.pad.0, g.out_h) else {
                                continue;
                            };
                            for j in 0..kw {
                                if let Some(q) = target(v, j, g.stride.1, g.pad.1, g.out_w) {
                                    s += dy_at(b, o, p, q)
                                        * w[((o * g.in_ch + c) * kh + i) * kw + j];
                                }
                            }
                        }
                    }
                    *out.next().expect("dx holds the input") = s;
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
    range: std::ops::Range<usize>,
) {
    let (kh, kw) = g.kernel;
    let plane = g.out_h * g.out_w;
    let at = |k: usize| (k / plane, k % plane / g.out_w, k % g.out_w);
    let dy_at = |b: usize, o: usize, p: usize, q: usize| {
        dy[((b * g.out_ch + o) * g.out_h + p) * g.out_w + q]
    };
    let mut out = dw.iter_mut();
    for o in 0..g.out_ch {
        for c in 0..g.in_ch {
            for i in 0..kh {
                for j in 0..kw {
                    let mut s = 0.0f32;
                    for k in range.clone() {
                        let (b, p, q) = at(k);
                        let h = source(p, i, g.stride.0, g.pad.0, g.in_h);
                        let v = source(q, j, g.stride.1, g.pad.1, g.in_w);
                        if let (Some(h), Some(v)) = (h, v) {
                            s += dy_at(b, o, p, q)
                                * x[((b * g.in_ch + c) * g.in_h + h) * g.in_w + v];
                        }
                    }
                    *out.next().expect("dw holds the weights") = s;
                }
            }
        }
    }
    if let Some(db) = db {
        for (o, d) in db.iter_mut().enumerate() {
            *d = range
                .clone()
                .map(|k| {
                    let (b, p, q) = at(k);
                    dy_at(b, o, p, q)
                })
                .sum();
        }
    }
}
