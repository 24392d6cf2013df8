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
// Sums are per-thread strided sums (four loads in flight at a time, added in
// order), then a fixed tree over the channel's threads: the same bits every run.
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
//   workgroups of 256 threads, each for `group` channels (a power of two up
//   to 32: 32 when inner = 1, so that a warp reads 32 neighbouring channels
//   of one row of a BatchNorm1d; 1 otherwise): thread t takes channel
//   w·group + t % group (w = wid.y·num_workgroups.x + wid.x) and its
//   elements k ≡ t / group (mod 256 / group); grid (min(W, 65535), ⌈W/65535⌉,
//   1), W = ⌈C/group⌉.

struct Params {
    outer: u32, channels: u32, inner: u32, eps: f32,
    x_off: u32, gamma_off: u32, beta_off: u32, y_off: u32,
    saved_off: u32, act: u32, slope: f32, has_running: u32,
    rmean_off: u32, rvar_off: u32, batches_off: u32, momentum: f32,
    dy_off: u32, dx_off: u32, dgamma_off: u32, dbeta_off: u32,
    act_grad: u32, yact_off: u32, mean_off: u32, var_off: u32,
    group: u32, _p0: u32, _p1: u32, _p2: u32,
}

// Seed-batched plans (src/plan/seeds.rs): a launch can run the same op for
// up to MAX_SEEDS independent GANs, one uniform block each (their offsets
// into the stacked buffers); workgroup z is the seed, and each entry point
// first takes its seed's block.
const MAX_SEEDS: u32 = 64u;
@group(0) @binding(0) var<uniform> p_seeds: array<Params, MAX_SEEDS>;
var<private> p: Params;
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

// The total of v over the threads of each channel, in a fixed tree order
// (for one channel per workgroup, the whole workgroup's tree).
fn channel_sum(v: f32, tid: u32) -> f32 {
    red[tid] = v;
    workgroupBarrier();
    for (var s = THREADS / 2u; s >= p.group; s >>= 1u) {
        if (tid < s) {
            red[tid] += red[tid + s];
        }
        workgroupBarrier();
    }
    let total = red[tid % p.group];
    workgroupBarrier();
    return total;
}

// A thread's channel and its share of the channel's elements: k = first,
// first + stride, … below n (n = 0 for a thread past the last channel).
struct Lane {
    c: u32,
    first: u32,
    stride: u32,
    n: u32,
    // The channel's first thread, which writes its per-channel results.
    lead: bool,
}

fn lane_of(wid: vec3<u32>, nwg: vec3<u32>, tid: u32) -> Lane {
    let c = (wid.y * nwg.x + wid.x) * p.group + tid % p.group;
    let live = c < p.channels;
    let n = select(0u, p.outer * p.inner, live);
    return Lane(min(c, p.channels - 1u), tid / p.group, THREADS / p.group, n, live && tid < p.group);
}

// Σ x − shift, or with `square` Σ (x − shift)², over the lane's elements.
fn lane_sum(l: Lane, shift: f32, square: bool) -> f32 {
    var s = 0.0;
    var k = l.first;
    let st = l.stride;
    for (; k + 3u * st < l.n; k += 4u * st) {
        let d0 = x[p.x_off + at(l.c, k)] - shift;
        let d1 = x[p.x_off + at(l.c, k + st)] - shift;
        let d2 = x[p.x_off + at(l.c, k + 2u * st)] - shift;
        let d3 = x[p.x_off + at(l.c, k + 3u * st)] - shift;
        if (square) {
            s += d0 * d0; s += d1 * d1; s += d2 * d2; s += d3 * d3;
        } else {
            s += d0; s += d1; s += d2; s += d3;
        }
    }
    for (; k < l.n; k += st) {
        let d = x[p.x_off + at(l.c, k)] - shift;
        s += select(d, d * d, square);
    }
    return s;
}

// y = act(g·((x − mean)·inv_std) + b) over the lane's elements.
fn lane_normalize(l: Lane, mean: f32, inv_std: f32, g: f32, b: f32) {
    var k = l.first;
    let st = l.stride;
    for (; k + 3u * st < l.n; k += 4u * st) {
        let e0 = at(l.c, k);
        let e1 = at(l.c, k + st);
        let e2 = at(l.c, k + 2u * st);
        let e3 = at(l.c, k + 3u * st);
        let v0 = x[p.x_off + e0];
        let v1 = x[p.x_off + e1];
        let v2 = x[p.x_off + e2];
        let v3 = x[p.x_off + e3];
        y[p.y_off + e0] = activate(g * ((v0 - mean) * inv_std) + b);
        y[p.y_off + e1] = activate(g * ((v1 - mean) * inv_std) + b);
        y[p.y_off + e2] = activate(g * ((v2 - mean) * inv_std) + b);
        y[p.y_off + e3] = activate(g * ((v3 - mean) * inv_std) + b);
    }
    for (; k < l.n; k += st) {
        let e = at(l.c, k);
        y[p.y_off + e] = activate(g * ((x[p.x_off + e] - mean) * inv_std) + b);
    }
}

@compute @workgroup_size(256)
fn batchnorm(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
             @builtin(local_invocation_index) tid: u32) {
    p = p_seeds[wid.z];
    let l = lane_of(wid, nwg, tid);
    let c = l.c;
    let n = p.outer * p.inner;
    let mean = channel_sum(lane_sum(l, 0.0, false), tid) / f32(n);
    let variance = channel_sum(lane_sum(l, mean, true), tid) / f32(n);
    let inv_std = 1.0 / sqrt(variance + p.eps);
    let g = gamma[p.gamma_off + c];
    let b = beta[p.beta_off + c];
    lane_normalize(l, mean, inv_std, g, b);
    if (l.lead) {
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
    p = p_seeds[wid.z];
    let l = lane_of(wid, nwg, tid);
    let mean = eval_mean[p.mean_off + l.c];
    let inv_std = 1.0 / sqrt(eval_var[p.var_off + l.c] + p.eps);
    lane_normalize(l, mean, inv_std, gamma[p.gamma_off + l.c], beta[p.beta_off + l.c]);
}

// The gradient reaching the normalisation's output at element e.
fn incoming(e: u32) -> f32 {
    if (p.act_grad == 1u) {
        return dy[p.dy_off + e] * derivative_from_output(yact[p.yact_off + e]);
    }
    return dy[p.dy_off + e];
}

// Four of the lane's elements from k on, with their incoming gradients
// and inputs, loaded together so that the loads are in flight at once.
struct Four {
    e: vec4<u32>,
    g: vec4<f32>,
    xv: vec4<f32>,
}

fn load_four(l: Lane, k: u32) -> Four {
    let st = l.stride;
    let e = vec4<u32>(at(l.c, k), at(l.c, k + st), at(l.c, k + 2u * st), at(l.c, k + 3u * st));
    let g = vec4<f32>(incoming(e.x), incoming(e.y), incoming(e.z), incoming(e.w));
    let xv = vec4<f32>(x[p.x_off + e.x], x[p.x_off + e.y], x[p.x_off + e.z], x[p.x_off + e.w]);
    return Four(e, g, xv);
}

// (Σ g, Σ g·x̂) over the lane's elements, g the incoming gradient, in order.
fn lane_grad_sums(l: Lane, mean: f32, inv_std: f32) -> vec2<f32> {
    var sg = 0.0;
    var sgx = 0.0;
    var k = l.first;
    let st = l.stride;
    for (; k + 3u * st < l.n; k += 4u * st) {
        let f = load_four(l, k);
        let xhat = (f.xv - vec4<f32>(mean)) * inv_std;
        sg += f.g.x; sgx += f.g.x * xhat.x;
        sg += f.g.y; sgx += f.g.y * xhat.y;
        sg += f.g.z; sgx += f.g.z * xhat.z;
        sg += f.g.w; sgx += f.g.w * xhat.w;
    }
    for (; k < l.n; k += st) {
        let e = at(l.c, k);
        let g = incoming(e);
        sg += g;
        sgx += g * ((x[p.x_off + e] - mean) * inv_std);
    }
    return vec2<f32>(sg, sgx);
}

// dx = scale·(g − dbeta/n − x̂·(dgamma/n)) from element e's g and x.
struct GradTerms {
    mean: f32,
    inv_std: f32,
    scale: f32,
    mb: f32,
    mg: f32,
}

fn input_grad(t: GradTerms, g: f32, xv: f32) -> f32 {
    return t.scale * (g - t.mb - ((xv - t.mean) * t.inv_std) * t.mg);
}

// dx over the lane's elements, four elements' operands loaded before their
// results are stored (the loads cannot move past a store).
fn lane_input_grad(l: Lane, t: GradTerms) {
    var k = l.first;
    let st = l.stride;
    for (; k + 3u * st < l.n; k += 4u * st) {
        let f = load_four(l, k);
        dx[p.dx_off + f.e.x] = input_grad(t, f.g.x, f.xv.x);
        dx[p.dx_off + f.e.y] = input_grad(t, f.g.y, f.xv.y);
        dx[p.dx_off + f.e.z] = input_grad(t, f.g.z, f.xv.z);
        dx[p.dx_off + f.e.w] = input_grad(t, f.g.w, f.xv.w);
    }
    for (; k < l.n; k += st) {
        let e = at(l.c, k);
        dx[p.dx_off + e] = input_grad(t, incoming(e), x[p.x_off + e]);
    }
}

@compute @workgroup_size(256)
fn batchnorm_backward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                      @builtin(local_invocation_index) tid: u32) {
    p = p_seeds[wid.z];
    let l = lane_of(wid, nwg, tid);
    let c = l.c;
    let n = p.outer * p.inner;
    let mean = saved_in[p.saved_off + c];
    let inv_std = saved_in[p.saved_off + p.channels + c];
    let sums = lane_grad_sums(l, mean, inv_std);
    let dbeta = channel_sum(sums.x, tid);
    let dgamma = channel_sum(sums.y, tid);
    let nf = f32(n);
    lane_input_grad(l, GradTerms(mean, inv_std, gamma[p.gamma_off + c] * inv_std, dbeta / nf, dgamma / nf));
    if (l.lead) {
        grads[p.dgamma_off + c] = dgamma;
        grads[p.dbeta_off + c] = dbeta;
    }
}
