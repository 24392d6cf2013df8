// batchnorm.wgsl: BatchNorm (1-d over features, 2-d over channels) in
// training mode with its running statistics, in evaluation mode, and its
// backward pass; the activation after it fused in.
//
// Math, per channel c over its n = outer·inner elements
// x[(o·channels + c)·inner + i] (o < outer, i < inner):
//   batchnorm        mean = Σx/n, var = Σ(x − mean)²/n (biased), inv_std = 1/sqrt(var + eps)
//                    y = act(gamma[c]·((x − mean)·inv_std) + beta[c])
//                    saved[c] = mean, saved[channels + c] = inv_std
//                    running (has_running = 1): rmean ← (1 − m)·rmean + m·mean,
//                    rvar ← (1 − m)·rvar + m·var·n/(n − 1), batches += 1 (PyTorch's update)
//   batchnorm_eval   y = act(gamma[c]·((x − mean[c])·inv_std) + beta[c]), inv_std = 1/sqrt(var[c] + eps)
//   batchnorm_backward
//                    g = dy (act_grad = 1: g = dy·act'(yact), yact the forward's output)
//                    x̂ = (x − mean)·inv_std (from saved), dbeta = Σg, dgamma = Σg·x̂
//                    dx = gamma[c]·inv_std·(g − dbeta/n − x̂·(dgamma/n))
// act as activation.wgsl: 0 identity, 1 relu, 2 leaky_relu(slope), 3 tanh, 4 sigmoid.
// Sums are per-thread strided sums, then a fixed tree over the workgroup:
// the same bits every run.
//
// Buffers (f32 unless said, element offsets in the uniform)
//   binding 0  uniform Params
//   all:       1 x read, 2 gamma read; batchnorm and eval: 3 beta read
//   batchnorm: 4 y, 5 saved, 6 running mean, 7 running var (read_write),
//              8 batches (u32, read_write; bound but untouched when has_running = 0)
//   eval:      4 y (read_write), 9 mean, 10 var (read)
//   backward:  11 dy, 12 saved, 13 yact (read; yact unread when act_grad = 0),
//              14 dx (read_write), 15 grads (read_write: dgamma and dbeta)
//
// Dispatch
//   one workgroup of 256 threads per channel: grid (min(C, 65535), ⌈C/65535⌉, 1),
//   channel wid.y·num_workgroups.x + wid.x.

struct Params {
    outer: u32, channels: u32, inner: u32, eps: f32,
    x_off: u32, gamma_off: u32, beta_off: u32, y_off: u32,
    saved_off: u32, act: u32, slope: f32, has_running: u32,
    rmean_off: u32, rvar_off: u32, batches_off: u32, momentum: f32,
    dy_off: u32, dx_off: u32, dgamma_off: u32, dbeta_off: u32,
    act_grad: u32, yact_off: u32, mean_off: u32, var_off: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> gamma: array<f32>;
@group(0) @binding(3) var<storage, read> beta: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;
@group(0) @binding(5) var<storage, read_write> saved: array<f32>;
@group(0) @binding(6) var<storage, read_write> running_mean: array<f32>;
@group(0) @binding(7) var<storage, read_write> running_var: array<f32>;
@group(0) @binding(8) var<storage, read_write> batches: array<u32>;
@group(0) @binding(9) var<storage, read> eval_mean: array<f32>;
@group(0) @binding(10) var<storage, read> eval_var: array<f32>;
@group(0) @binding(11) var<storage, read> dy: array<f32>;
@group(0) @binding(12) var<storage, read> saved_in: array<f32>;
@group(0) @binding(13) var<storage, read> yact: array<f32>;
@group(0) @binding(14) var<storage, read_write> dx: array<f32>;
@group(0) @binding(15) var<storage, read_write> grads: array<f32>;

const THREADS: u32 = 256u;

var<workgroup> red: array<f32, 256>;

// tanh with a small relative error everywhere: drivers' builtin tanh can be
// off by ~1e-4 relative near zero (llvmpipe) or overflow past |x| ≈ 44.
fn accurate_tanh(v: f32) -> f32 {
    let a = abs(v);
    if (a < 0.625) {
        let z = v * v;
        let q = (((-5.70498872745e-3 * z + 2.06390887954e-2) * z - 5.37397155531e-2) * z
                 + 1.33314422036e-1) * z - 3.33332819422e-1;
        return v + v * z * q;
    }
    let t = 1.0 - 2.0 / (exp(2.0 * min(a, 15.0)) + 1.0);
    return select(t, -t, v < 0.0);
}

fn activate(v: f32) -> f32 {
    switch p.act {
        case 1u: { return max(v, 0.0); }
        case 2u: { return select(p.slope * v, v, v > 0.0); }
        case 3u: { return accurate_tanh(v); }
        case 4u: { return 1.0 / (1.0 + exp(-v)); }
        default: { return v; }
    }
}

fn derivative_from_output(o: f32) -> f32 {
    switch p.act {
        case 1u: { return select(0.0, 1.0, o > 0.0); }
        case 2u: { return select(p.slope, 1.0, o > 0.0); }
        case 3u: { return (1.0 - o) * (1.0 + o); }
        case 4u: { return o * (1.0 - o); }
        default: { return 1.0; }
    }
}

// Index of element k of channel c.
fn at(c: u32, k: u32) -> u32 {
    return (k / p.inner * p.channels + c) * p.inner + k % p.inner;
}

// The workgroup's total of every thread's v, in a fixed tree order.
fn channel_sum(v: f32, tid: u32) -> f32 {
    red[tid] = v;
    workgroupBarrier();
    for (var s = THREADS / 2u; s > 0u; s >>= 1u) {
        if (tid < s) {
            red[tid] += red[tid + s];
        }
        workgroupBarrier();
    }
    let total = red[0];
    workgroupBarrier();
    return total;
}

fn channel_of(wid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return wid.y * nwg.x + wid.x;
}

@compute @workgroup_size(256)
fn batchnorm(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
             @builtin(local_invocation_index) tid: u32) {
    let c = channel_of(wid, nwg);
    if (c >= p.channels) {
        return;
    }
    let n = p.outer * p.inner;
    var s = 0.0;
    for (var k = tid; k < n; k += THREADS) {
        s += x[p.x_off + at(c, k)];
    }
    let mean = channel_sum(s, tid) / f32(n);
    var q = 0.0;
    for (var k = tid; k < n; k += THREADS) {
        let d = x[p.x_off + at(c, k)] - mean;
        q += d * d;
    }
    let variance = channel_sum(q, tid) / f32(n);
    let inv_std = 1.0 / sqrt(variance + p.eps);
    let g = gamma[p.gamma_off + c];
    let b = beta[p.beta_off + c];
    for (var k = tid; k < n; k += THREADS) {
        let e = at(c, k);
        y[p.y_off + e] = activate(g * ((x[p.x_off + e] - mean) * inv_std) + b);
    }
    if (tid == 0u) {
        saved[p.saved_off + c] = mean;
        saved[p.saved_off + p.channels + c] = inv_std;
        if (p.has_running == 1u) {
            let m = p.momentum;
            let unbias = f32(n) / f32(n - 1u);
            running_mean[p.rmean_off + c] = (1.0 - m) * running_mean[p.rmean_off + c] + m * mean;
            running_var[p.rvar_off + c] = (1.0 - m) * running_var[p.rvar_off + c] + m * (variance * unbias);
            if (c == 0u) {
                batches[p.batches_off] += 1u;
            }
        }
    }
}

@compute @workgroup_size(256)
fn batchnorm_eval(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                  @builtin(local_invocation_index) tid: u32) {
    let c = channel_of(wid, nwg);
    if (c >= p.channels) {
        return;
    }
    let n = p.outer * p.inner;
    let mean = eval_mean[p.mean_off + c];
    let inv_std = 1.0 / sqrt(eval_var[p.var_off + c] + p.eps);
    let g = gamma[p.gamma_off + c];
    let b = beta[p.beta_off + c];
    for (var k = tid; k < n; k += THREADS) {
        let e = at(c, k);
        y[p.y_off + e] = activate(g * ((x[p.x_off + e] - mean) * inv_std) + b);
    }
}

// The gradient reaching the normalisation's output at element e.
fn incoming(e: u32) -> f32 {
    if (p.act_grad == 1u) {
        return dy[p.dy_off + e] * derivative_from_output(yact[p.yact_off + e]);
    }
    return dy[p.dy_off + e];
}

@compute @workgroup_size(256)
fn batchnorm_backward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                      @builtin(local_invocation_index) tid: u32) {
    let c = channel_of(wid, nwg);
    if (c >= p.channels) {
        return;
    }
    let n = p.outer * p.inner;
    let mean = saved_in[p.saved_off + c];
    let inv_std = saved_in[p.saved_off + p.channels + c];
    var sg = 0.0;
    var sgx = 0.0;
    for (var k = tid; k < n; k += THREADS) {
        let e = at(c, k);
        let g = incoming(e);
        sg += g;
        sgx += g * ((x[p.x_off + e] - mean) * inv_std);
    }
    let dbeta = channel_sum(sg, tid);
    let dgamma = channel_sum(sgx, tid);
    let scale = gamma[p.gamma_off + c] * inv_std;
    let nf = f32(n);
    for (var k = tid; k < n; k += THREADS) {
        let e = at(c, k);
        let xhat = (x[p.x_off + e] - mean) * inv_std;
        dx[p.dx_off + e] = scale * (incoming(e) - dbeta / nf - xhat * (dgamma / nf));
    }
    if (tid == 0u) {
        grads[p.dgamma_off + c] = dgamma;
        grads[p.dbeta_off + c] = dbeta;
    }
}
