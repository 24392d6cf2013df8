//! CPU reference kernels of BatchNorm (the formulas of `Op::BatchNorm`,
//! `Op::BatchNormEval` and `Op::BatchNormBackward`), channel by channel,
//! statistics summed in f64. `shaders/batchnorm.wgsl` is tested against them.

use super::kernels::{activate, derivative_from_output};
use crate::plan::{Activation, NormShape};

/// A channel's batch statistics: (mean, biased variance), summed in f64.
fn channel_stats(x: &[f32], s: &NormShape, c: usize) -> (f64, f64) {
    let n = s.per_channel() as f64;
    let mean = (0..s.per_channel())
        .map(|k| f64::from(x[s.at(c, k)]))
        .sum::<f64>()
        / n;
    let var = (0..s.per_channel())
        .map(|k| (f64::from(x[s.at(c, k)]) - mean).powi(2))
        .sum::<f64>()
        / n;
    (mean, var)
}

/// The affine normalisation and activation of channel `c` with the given statistics.
#[allow(clippy::too_many_arguments)]
fn normalize_channel(
    x: &[f32],
    y: &mut [f32],
    s: &NormShape,
    c: usize,
    mean: f32,
    inv_std: f32,
    gamma: f32,
    beta: f32,
    act: Activation,
) {
    for k in 0..s.per_channel() {
        let e = s.at(c, k);
        y[e] = activate(gamma * ((x[e] - mean) * inv_std) + beta, act);
    }
}

/// Training mode: y, `saved = [mean.., inv_std..]`, and the batch variance
/// of each channel (biased) for the running statistics.
#[allow(clippy::too_many_arguments)]
pub fn batchnorm(
    x: &[f32],
    gamma: &[f32],
    beta: &[f32],
    y: &mut [f32],
    saved: &mut [f32],
    s: &NormShape,
    eps: f32,
    act: Activation,
) -> Vec<f32> {
    let mut vars = Vec::with_capacity(s.channels);
    for c in 0..s.channels {
        let (mean, var) = channel_stats(x, s, c);
        let (mean, var) = (mean as f32, var as f32);
        let inv_std = 1.0 / (var + eps).sqrt();
        saved[c] = mean;
        saved[s.channels + c] = inv_std;
        normalize_channel(x, y, s, c, mean, inv_std, gamma[c], beta[c], act);
        vars.push(var);
    }
    vars
}

/// PyTorch's update of the running statistics from a batch's `saved` means
/// and biased variances `vars` over `n` elements per channel.
pub fn update_running(
    mean: &mut [f32],
    var: &mut [f32],
    saved: &[f32],
    vars: &[f32],
    n: usize,
    momentum: f32,
) {
    let unbias = n as f32 / (n - 1) as f32;
    for c in 0..mean.len() {
        mean[c] = (1.0 - momentum) * mean[c] + momentum * saved[c];
        var[c] = (1.0 - momentum) * var[c] + momentum * (vars[c] * unbias);
    }
}

/// Evaluation mode: the running statistics in place of the batch's.
#[allow(clippy::too_many_arguments)]
pub fn batchnorm_eval(
    x: &[f32],
    gamma: &[f32],
    beta: &[f32],
    mean: &[f32],
    var: &[f32],
    y: &mut [f32],
    s: &NormShape,
    eps: f32,
    act: Activation,
) {
    for c in 0..s.channels {
        let inv_std = 1.0 / (var[c] + eps).sqrt();
        normalize_channel(x, y, s, c, mean[c], inv_std, gamma[c], beta[c], act);
    }
}

/// The backward pass: dx, and per channel dgamma and dbeta (sums in f64).
/// `act_grad`: the forward's output and activation, to take dy through act′.
#[allow(clippy::too_many_arguments)]
pub fn batchnorm_backward(
    dy: &[f32],
    x: &[f32],
    gamma: &[f32],
    saved: &[f32],
    dx: &mut [f32],
    dgamma: &mut [f32],
    dbeta: &mut [f32],
    s: &NormShape,
    act_grad: Option<(&[f32], Activation)>,
) {
    let g = |e: usize| match act_grad {
        Some((y, act)) => dy[e] * derivative_from_output(y[e], act),
        None => dy[e],
    };
    let n = s.per_channel() as f32;
    for c in 0..s.channels {
        let (mean, inv_std) = (saved[c], saved[s.channels + c]);
        let xhat = |e: usize| (x[e] - mean) * inv_std;
        let (mut sum_g, mut sum_gx) = (0.0f64, 0.0f64);
        for k in 0..s.per_channel() {
            let e = s.at(c, k);
            sum_g += f64::from(g(e));
            sum_gx += f64::from(g(e) * xhat(e));
        }
        let (db, dg) = (sum_g as f32, sum_gx as f32);
        dbeta[c] = db;
        dgamma[c] = dg;
        let scale = gamma[c] * inv_std;
        for k in 0..s.per_channel() {
            let e = s.at(c, k);
            dx[e] = scale * (g(e) - db / n - xhat(e) * (dg / n));
        }
    }
}
