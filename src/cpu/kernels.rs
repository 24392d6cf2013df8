//! CPU reference kernels: the same math as the WGSL files, one function per
//! kernel, over plain slices. They define what every GPU kernel must compute;
//! the CPU backend runs them, and the tests compare the GPU against them.

use crate::plan::{Activation, AdamHyper};

/// Multiply-adds below which one thread does the whole product: spawning
/// threads costs tens of µs, more than a small layer's product takes.
const PARALLEL_MIN_MACS: usize = 1 << 24;
/// Multiply-adds each extra thread must get.
const MACS_PER_THREAD: usize = 1 << 23;

/// Threads the CPU backend's SGEMM may use: `MATMUL_NUM_THREADS` if set, else
/// every core.
pub fn cpu_threads() -> usize {
    static THREADS: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *THREADS.get_or_init(|| {
        std::env::var("MATMUL_NUM_THREADS")
            .ok()
            .and_then(|v| v.parse().ok())
            .filter(|&t: &usize| t > 0)
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
    })
}

/// `C[m,n] = Σ_k A(m,k)·B(k,n)` with A(i,j) = a[i·rsa + j·csa], B(i,j) = b[i·rsb + j·csb],
/// C row-major. The `matrixmultiply` crate's single-threaded SGEMM on blocks of
/// C's rows; large products split their rows over up to [`cpu_threads`] scoped
/// threads (the crate's own threading stops at 4 threads and slowed the seed
/// step's small products down by a quarter on a 16-core host).
#[allow(clippy::too_many_arguments)]
fn sgemm_strided(
    m: usize,
    n: usize,
    k: usize,
    a: &[f32],
    rsa: usize,
    csa: usize,
    b: &[f32],
    rsb: usize,
    csb: usize,
    c: &mut [f32],
) {
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        c[..m * n].fill(0.0);
        return;
    }
    // Each block checks its own bounds (`sgemm_block`).
    let macs = m * n * k;
    let threads = if macs < PARALLEL_MIN_MACS {
        1
    } else {
        cpu_threads().min(macs / MACS_PER_THREAD).min(m).max(1)
    };
    let c = &mut c[..m * n];
    if threads == 1 {
        sgemm_block(m, n, k, a, rsa, csa, b, rsb, csb, c);
        return;
    }
    let rows_per = m.div_ceil(threads);
    std::thread::scope(|scope| {
        for (i, c_rows) in c.chunks_mut(rows_per * n).enumerate() {
            let rows = c_rows.len() / n;
            let a_rows = &a[i * rows_per * rsa..];
            scope.spawn(move || sgemm_block(rows, n, k, a_rows, rsa, csa, b, rsb, csb, c_rows));
        }
    });
}

/// One single-threaded SGEMM (the caller has checked the bounds).
#[allow(clippy::too_many_arguments)]
fn sgemm_block(
    m: usize,
    n: usize,
    k: usize,
    a: &[f32],
    rsa: usize,
    csa: usize,
    b: &[f32],
    rsb: usize,
    csb: usize,
    c: &mut [f32],
) {
    assert!(c.len() >= m * n);
    assert!(a.len() > (m - 1) * rsa + (k - 1) * csa);
    assert!(b.len() > (k - 1) * rsb + (n - 1) * csb);
    // SAFETY: the asserts above keep every strided access inside the slices.
    unsafe {
        matrixmultiply::sgemm(
            m,
            k,
            n,
            1.0,
            a.as_ptr(),
            rsa as isize,
            csa as isize,
            b.as_ptr(),
            rsb as isize,
            csb as isize,
            0.0,
            c.as_mut_ptr(),
            n as isize,
            1,
        );
    }
}

/// Dense layer forward: `y[m,n] = act(Σ_k x[m,k]·w[n,k] + b[n])`.
#[allow(clippy::too_many_arguments)]
pub fn matmul_bias_act(
    x: &[f32],
    w: &[f32],
    b: Option<&[f32]>,
    y: &mut [f32],
    m: usize,
    n: usize,
    k: usize,
    act: Activation,
) {
    sgemm_strided(m, n, k, x, k, 1, w, 1, k, y);
    for row in y.chunks_exact_mut(n.max(1)).take(m) {
        if let Some(b) = b {
            for (v, bias) in row.iter_mut().zip(b) {
                *v += bias;
            }
        }
        for v in row.iter_mut() {
            *v = activate(*v, act);
        }
    }
}

/// Input gradient: `dx[m,k] = Σ_n dy[m,n]·w[n,k]`.
pub fn matmul_dx(dy: &[f32], w: &[f32], dx: &mut [f32], m: usize, n: usize, k: usize) {
    sgemm_strided(m, k, n, dy, n, 1, w, k, 1, dx);
}

/// Weight gradient: `dw[n,k] = Σ_m dy[m,n]·x[m,k]`.
pub fn matmul_dw(dy: &[f32], x: &[f32], dw: &mut [f32], m: usize, n: usize, k: usize) {
    sgemm_strided(n, k, m, dy, 1, n, x, k, 1, dw);
}

/// `f(x)` for one element.
pub fn activate(x: f32, act: Activation) -> f32 {
    match act {
        Activation::Identity => x,
        Activation::Relu => x.max(0.0),
        Activation::LeakyRelu(slope) => {
            if x > 0.0 {
                x
            } else {
                slope * x
            }
        }
        Activation::Tanh => tanh(x),
        Activation::Sigmoid => 1.0 / (1.0 + (-x).exp()),
    }
}

/// tanh as `matmul.wgsl` and `activation.wgsl` compute it: Cephes' tanhf odd
/// polynomial for |x| < 0.625, else 1 − 2/(e^{2|x|} + 1) (clamped at 15, where
/// it is 1 in f32). Within 2e-7 relative of the exact value (tested), and ~3×
/// faster than libm's `tanhf`, which took 41% of a CPU seed step on G's output.
pub fn tanh(x: f32) -> f32 {
    let a = x.abs();
    if a < 0.625 {
        let z = x * x;
        let p = (((-5.704_988_7e-3 * z + 2.063_909e-2) * z - 5.373_971_6e-2) * z + 1.333_144_2e-1)
            * z
            - 3.333_328e-1;
        return x + x * z * p;
    }
    let t = 1.0 - 2.0 / ((2.0 * a.min(15.0)).exp() + 1.0);
    if x < 0.0 { -t } else { t }
}

/// `f'(x)` written through the output `y = f(x)`.
pub fn derivative_from_output(y: f32, act: Activation) -> f32 {
    match act {
        Activation::Identity => 1.0,
        Activation::Relu => {
            if y > 0.0 {
                1.0
            } else {
                0.0
            }
        }
        Activation::LeakyRelu(slope) => {
            if y > 0.0 {
                1.0
            } else {
                slope
            }
        }
        Activation::Tanh => (1.0 - y) * (1.0 + y),
        Activation::Sigmoid => y * (1.0 - y),
    }
}

pub fn activation_forward(x: &[f32], y: &mut [f32], act: Activation) {
    for (y, x) in y.iter_mut().zip(x) {
        *y = activate(*x, act);
    }
}

pub fn activation_backward(y: &[f32], dy: &[f32], dx: &mut [f32], act: Activation) {
    for ((dx, dy), y) in dx.iter_mut().zip(dy).zip(y) {
        *dx = dy * derivative_from_output(*y, act);
    }
}

/// `out[i] = Σ_{s < splits} partials[s·len + i]`, added in f32 in the order
/// s = 0, 1, …: the splits of a split-K product (`sum_splits.wgsl`).
pub fn sum_splits(partials: &[f32], splits: usize, len: usize) -> Vec<f32> {
    (0..len)
        .map(|i| (0..splits).fold(0.0f32, |acc, s| acc + partials[s * len + i]))
        .collect()
}

/// `out[c] = Σ_r x[r,c]` (summed in f64, rounded once).
pub fn column_sum(x: &[f32], out: &mut [f32], rows: usize, cols: usize) {
    for (c, o) in out.iter_mut().enumerate().take(cols) {
        let s: f64 = (0..rows).map(|r| f64::from(x[r * cols + c])).sum();
        *o = s as f32;
    }
}

/// `scale · mean(x)` (summed in f64).
pub fn mean(x: &[f32], scale: f32) -> f32 {
    let s: f64 = x.iter().map(|&v| f64::from(v)).sum();
    (f64::from(scale) * s / x.len().max(1) as f64) as f32
}

/// σ(z), evaluated on the side where the exponential cannot overflow.
pub fn stable_sigmoid(z: f32) -> f32 {
    if z >= 0.0 {
        1.0 / (1.0 + (-z).exp())
    } else {
        let e = z.exp();
        e / (1.0 + e)
    }
}

/// Binary cross-entropy on logits: per-row loss (written as two non-negative
/// terms, see `loss.wgsl`) and `grad_scale·(σ(z) − t)`.
pub fn bce_with_logits(
    logits: &[f32],
    targets: &[f32],
    loss: &mut [f32],
    grad: &mut [f32],
    grad_scale: f32,
) {
    for i in 0..logits.len() {
        let (z, t) = (logits[i], targets[i]);
        let linear = if z >= 0.0 { z * (1.0 - t) } else { -z * t };
        loss[i] = linear + (-z.abs()).exp().ln_1p();
        let residual = if t == 1.0 {
            -stable_sigmoid(-z)
        } else {
            stable_sigmoid(z) - t
        };
        grad[i] = grad_scale * residual;
    }
}

/// Softmax cross-entropy against integer labels: per-row loss and
/// `grad_scale·(softmax − onehot)`; the arithmetic of `loss.wgsl`.
pub fn softmax_cross_entropy(
    logits: &[f32],
    labels: &[f32],
    loss: &mut [f32],
    grad: &mut [f32],
    classes: usize,
    grad_scale: f32,
) {
    for (i, &label) in labels.iter().enumerate() {
        let label = label as usize;
        let z = &logits[i * classes..(i + 1) * classes];
        let m = z.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let total: f32 = z.iter().map(|&v| (v - m).exp()).sum();
        let lse = m + total.ln();
        loss[i] = lse - z[label];
        for (c, g) in grad[i * classes..(i + 1) * classes].iter_mut().enumerate() {
            let onehot = if c == label { 1.0 } else { 0.0 };
            *g = grad_scale * ((z[c] - lse).exp() - onehot);
        }
    }
}

/// `out[r] = Σ_c x[r,c]²` (summed in f64).
pub fn row_sq_norm(x: &[f32], out: &mut [f32], rows: usize, cols: usize) {
    for (r, o) in out.iter_mut().enumerate().take(rows) {
        *o = x[r * cols..(r + 1) * cols]
            .iter()
            .map(|&v| f64::from(v) * f64::from(v))
            .sum::<f64>() as f32;
    }
}

/// Parzen-window log-density of each row `r` (see `parzen.wgsl`), in f64.
pub fn parzen_log_density(
    gram: &[f32],
    x_norms: &[f32],
    s_norms: &[f32],
    out: &mut [f32],
    dim: usize,
    sigma: f32,
) {
    let n = s_norms.len();
    let inv_two_var = 1.0 / (2.0 * f64::from(sigma) * f64::from(sigma));
    let log_norm = 0.5 * dim as f64 * (std::f64::consts::TAU * f64::from(sigma).powi(2)).ln();
    for (r, o) in out.iter_mut().enumerate() {
        let xx = f64::from(x_norms[r]);
        let exponents: Vec<f64> = (0..n)
            .map(|j| {
                let d2 = (xx + f64::from(s_norms[j]) - 2.0 * f64::from(gram[r * n + j])).max(0.0);
                -d2 * inv_two_var
            })
            .collect();
        let m = exponents.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let sum: f64 = exponents.iter().map(|a| (a - m).exp()).sum();
        *o = (m + sum.ln() - (n as f64).ln() - log_norm) as f32;
    }
}

/// One Adam step at step number `t` (1-based); the arithmetic of `adam.wgsl`.
pub fn adam(
    params: &mut [f32],
    grads: &[f32],
    m: &mut [f32],
    v: &mut [f32],
    t: u32,
    h: &AdamHyper,
) {
    let t = t as f32;
    let lr = if h.decay_steps > 0 {
        h.lr * (1.0 - (t - 1.0) / h.decay_steps as f32).max(0.0)
    } else {
        h.lr
    };
    let bias1 = 1.0 - h.beta1.powf(t);
    let bias2 = 1.0 - h.beta2.powf(t);
    for i in 0..params.len() {
        let g = grads[i];
        let mut w = params[i];
        w -= lr * h.weight_decay * w;
        let mi = h.beta1 * m[i] + (1.0 - h.beta1) * g;
        let vi = h.beta2 * v[i] + (1.0 - h.beta2) * g * g;
        m[i] = mi;
        v[i] = vi;
        let denom = vi.sqrt() / bias2.sqrt() + h.eps;
        params[i] = w - (lr / bias1) * mi / denom;
    }
}

/// `avg[i] = beta·avg[i] + (1 − beta)·params[i]`; the arithmetic of `ema.wgsl`.
pub fn ema(params: &[f32], avg: &mut [f32], beta: f32) {
    for (a, &p) in avg.iter_mut().zip(params) {
        *a = beta * *a + (1.0 - beta) * p;
    }
}

/// `dst[r,:] = src[indices[r],:]` for f32 rows.
pub fn gather_rows_f32(src: &[f32], indices: &[u32], dst: &mut [f32], cols: usize) {
    for (r, &row) in indices.iter().enumerate() {
        let from = row as usize * cols;
        dst[r * cols..(r + 1) * cols].copy_from_slice(&src[from..from + cols]);
    }
}

/// `dst[r,c] = (byte(indices[r]·cols + c) − center)·scale`, bytes packed 4 per little-endian word.
pub fn gather_rows_u8(
    src: &[u32],
    indices: &[u32],
    dst: &mut [f32],
    cols: usize,
    center: f32,
    scale: f32,
) {
    for (r, &row) in indices.iter().enumerate() {
        for c in 0..cols {
            let byte_index = row as usize * cols + c;
            let byte = (src[byte_index / 4] >> (8 * (byte_index % 4))) & 0xff;
            dst[r * cols + c] = (byte as f32 - center) * scale;
        }
    }
}

/// Packs bytes four to a little-endian u32 word (the layout `gather_rows_u8` reads).
pub fn pack_bytes(bytes: &[u8]) -> Vec<u32> {
    bytes
        .chunks(4)
        .map(|c| {
            let mut w = [0u8; 4];
            w[..c.len()].copy_from_slice(c);
            u32::from_le_bytes(w)
        })
        .collect()
}

/// Inverted dropout (`random.wgsl`'s `dropout`): `out[i] = x[i]·(1/keep)` where
/// the Philox uniform `u_i` of (seed, stream, step) is below `keep`, else 0.
pub fn dropout(x: &[f32], out: &mut [f32], keep: f32, seed: u64, stream: u32, step: u32) {
    crate::cpu::philox::fill_uniform(out, seed, stream, step);
    let scale = 1.0 / keep;
    for (o, &v) in out.iter_mut().zip(x) {
        *o = if *o < keep { v * scale } else { 0.0 };
    }
}
