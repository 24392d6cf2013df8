// parzen.wgsl: Parzen-window (Gaussian kernel density) log-likelihood of test
// rows under a set of generated samples, for one bandwidth σ.
//
// Math, for test row x_r and samples s_j (j < N), dimension d:
//   ‖x_r − s_j‖² = ‖x_r‖² + ‖s_j‖² − 2·x_r·s_j       (x·s from matmul.wgsl: G = X·Sᵀ)
//   log p(x_r) = log (1/N) Σ_j exp(−‖x_r − s_j‖² / (2σ²)) − (d/2)·log(2πσ²)
//   computed as an online log-sum-exp over j (running max and scaled sum),
//   so no exponential overflows or underflows to a wrong answer.
//
// Buffers (f32, element offsets in the uniform)
//   binding 0 uniform Params
//   binding 1 gram     read         gram[gram_off + r·N + j] = x_r·s_j
//   binding 2 x_norms  read         x_norms[x_off + r] = ‖x_r‖²
//   binding 3 s_norms  read         s_norms[s_off + j] = ‖s_j‖²
//   binding 4 out      read_write   out[out_off + r] = log p(x_r)
//
// Dispatch: one thread per test row walks all N samples; workgroups of 256,
// grid (min(G, 65535), ceil(G/65535), 1), G = ceil(rows/256).

struct Params {
    rows: u32, samples: u32, dim: u32, gram_off: u32,
    x_off: u32, s_off: u32, out_off: u32, sigma: f32,
}

// Seed-batched plans (src/plan/seeds.rs): a launch can run the same op for
// up to MAX_SEEDS independent GANs, one uniform block each (their offsets
// into the stacked buffers); workgroup z is the seed, and each entry point
// first takes its seed's block.
const MAX_SEEDS: u32 = 64u;
@group(0) @binding(0) var<uniform> p_seeds: array<Params, MAX_SEEDS>;
var<private> p: Params;
@group(0) @binding(1) var<storage, read> gram: array<f32>;
@group(0) @binding(2) var<storage, read> x_norms: array<f32>;
@group(0) @binding(3) var<storage, read> s_norms: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(256)
fn parzen_log_density(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                      @builtin(local_invocation_id) lid: vec3<u32>) {
    p = p_seeds[wid.z];
    let r = (wid.y * nwg.x + wid.x) * 256u + lid.x;
    if (r >= p.rows) {
        return;
    }
    let inv_two_var = 1.0 / (2.0 * p.sigma * p.sigma);
    let xx = x_norms[p.x_off + r];
    var running_max = -3.0e38;
    var scaled_sum = 0.0;
    for (var j = 0u; j < p.samples; j++) {
        let dist2 = max(xx + s_norms[p.s_off + j] - 2.0 * gram[p.gram_off + r * p.samples + j], 0.0);
        let a = -dist2 * inv_two_var;
        if (a > running_max) {
            scaled_sum = scaled_sum * exp(running_max - a) + 1.0;
            running_max = a;
        } else {
            scaled_sum += exp(a - running_max);
        }
    }
    let log_mean = running_max + log(scaled_sum) - log(f32(p.samples));
    let log_norm = 0.5 * f32(p.dim) * log(6.2831855 * p.sigma * p.sigma);
    out[p.out_off + r] = log_mean - log_norm;
}
