// activation.wgsl: elementwise activations and their gradients.
//
// Math (act ids as in the host's Activation::id)
//   forward   y = f(x)
//     0 identity  f(x) = x
//     1 relu      f(x) = max(x, 0)
//     2 leaky     f(x) = x if x > 0 else slope·x      (slope > 0)
//     3 tanh      f(x) = tanh(x)
//     4 sigmoid   f(x) = 1 / (1 + e^{-x})
//   backward  dx = dy · f'(x), written through the output y = f(x):
//     identity 1;  relu [y > 0];  leaky 1 if y > 0 else slope;
//     tanh (1 − y)(1 + y);  sigmoid y·(1 − y)
//
// Buffers (f32, element offsets in the uniform)
//   activation_forward:   binding 0 uniform Params, 1 x read, 2 y read_write
//   activation_backward:  binding 3 uniform Params, 4 y read, 5 dy read, 6 dx read_write
//   x[x_off + i], y[y_off + i], dy[dy_off + i], dx[dx_off + i] for i < len
//
// Dispatch
//   one thread per element, workgroups of 256, grid (min(G, 65535), ceil(G/65535), 1)
//   with G = ceil(len/256); i = (wid.y·num_workgroups.x + wid.x)·256 + lid.x.

struct Params {
    len: u32, in_off: u32, out_off: u32, grad_off: u32,
    act: u32, slope: f32, _pad0: u32, _pad1: u32,
}

// Seed-batched plans (src/plan/seeds.rs): a launch can run the same op for
// up to MAX_SEEDS independent GANs, one uniform block each (their offsets
// into the stacked buffers); workgroup z is the seed, and each entry point
// first takes its seed's block.
const MAX_SEEDS: u32 = 64u;
@group(0) @binding(0) var<uniform> fwd_seeds: array<Params, MAX_SEEDS>;
var<private> fwd: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;

@group(0) @binding(3) var<uniform> bwd_seeds: array<Params, MAX_SEEDS>;
var<private> bwd: Params;
@group(0) @binding(4) var<storage, read> y_in: array<f32>;
@group(0) @binding(5) var<storage, read> dy: array<f32>;
@group(0) @binding(6) var<storage, read_write> dx: array<f32>;

// tanh with a small relative error everywhere: drivers' builtin tanh can be
// off by ~1e-4 relative near zero (llvmpipe) or overflow past |x| ≈ 44.
// |x| < 0.625: Cephes' tanhf odd polynomial; else 1 − 2/(e^{2|x|} + 1), clamped.
fn accurate_tanh(x: f32) -> f32 {
    let a = abs(x);
    if (a < 0.625) {
        let z = x * x;
        let p = (((-5.70498872745e-3 * z + 2.06390887954e-2) * z - 5.37397155531e-2) * z
                 + 1.33314422036e-1) * z - 3.33332819422e-1;
        return x + x * z * p;
    }
    let t = 1.0 - 2.0 / (exp(2.0 * min(a, 15.0)) + 1.0);
    return select(t, -t, x < 0.0);
}

fn activate(v: f32, act: u32, slope: f32) -> f32 {
    switch act {
        case 1u: { return max(v, 0.0); }
        case 2u: { return select(slope * v, v, v > 0.0); }
        case 3u: { return accurate_tanh(v); }
        case 4u: { return 1.0 / (1.0 + exp(-v)); }
        default: { return v; }
    }
}

fn derivative_from_output(out: f32, act: u32, slope: f32) -> f32 {
    switch act {
        case 1u: { return select(0.0, 1.0, out > 0.0); }
        case 2u: { return select(slope, 1.0, out > 0.0); }
        case 3u: { return (1.0 - out) * (1.0 + out); } // no cancellation near |y| = 1
        case 4u: { return out * (1.0 - out); }
        default: { return 1.0; }
    }
}

fn linear_index(wid: vec3<u32>, nwg: vec3<u32>, lid: vec3<u32>) -> u32 {
    return (wid.y * nwg.x + wid.x) * 256u + lid.x;
}

// in_off = x offset, out_off = y offset.
@compute @workgroup_size(256)
fn activation_forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                      @builtin(local_invocation_id) lid: vec3<u32>) {
    fwd = fwd_seeds[wid.z];
    let i = linear_index(wid, nwg, lid);
    if (i >= fwd.len) {
        return;
    }
    y[fwd.out_off + i] = activate(x[fwd.in_off + i], fwd.act, fwd.slope);
}

// in_off = y offset, grad_off = dy offset, out_off = dx offset.
@compute @workgroup_size(256)
fn activation_backward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                       @builtin(local_invocation_id) lid: vec3<u32>) {
    bwd = bwd_seeds[wid.z];
    let i = linear_index(wid, nwg, lid);
    if (i >= bwd.len) {
        return;
    }
    let d = derivative_from_output(y_in[bwd.in_off + i], bwd.act, bwd.slope);
    dx[bwd.out_off + i] = dy[bwd.grad_off + i] * d;
}
