// adam.wgsl: one Adam step over a whole flat parameter buffer (all tensors of a
// network at once), with bias correction and decoupled weight decay (AdamW).
//
// Math, with t = step[step_off] + 1 (`adam` leaves the counter to another op;
// `adam_advance` advances it, below),
// and lr_t = lr·max(0, 1 − (t − 1)/decay_steps) when decay_steps > 0 (linear
// decay to zero; lr_t = lr otherwise):
//   p ← p − lr_t·wd·p
//   m ← β1·m + (1 − β1)·g
//   v ← β2·v + (1 − β2)·g²
//   p ← p − (lr_t / (1 − β1^t)) · m / (sqrt(v) / sqrt(1 − β2^t) + ε)
// (the same arithmetic as torch.optim.Adam / AdamW, so runs compare).
//
// Buffers (element offsets in the uniform)
//   binding 0 uniform Params
//   binding 1 params  f32 read_write   params[p_off + i]
//   binding 2 grads   f32 read         grads[g_off + i]
//   binding 3 m       f32 read_write   m[m_off + i]
//   binding 4 v       f32 read_write   v[v_off + i]
//   binding 5 step    u32 read         step[step_off]   (adam_advance: read_write, atomic)
//   binding 6 arrivals u32 read_write  arrivals[arr_off] (adam_advance only; 0 between launches)
//
// Dispatch
//   one thread per parameter, workgroups of 256,
//   grid (min(G, 65535), ceil(G/65535), 1), G = ceil(len/256).

struct Params {
    len: u32, p_off: u32, g_off: u32, m_off: u32,
    v_off: u32, step_off: u32, lr: f32, beta1: f32,
    beta2: f32, eps: f32, weight_decay: f32, decay_steps: u32,
    arr_off: u32, _p0: u32, _p1: u32, _p2: u32,
}

// Seed-batched plans (src/plan/seeds.rs): a launch can run the same op for
// up to MAX_SEEDS independent GANs, one uniform block each (their offsets
// into the stacked buffers); workgroup z is the seed, and each entry point
// first takes its seed's block.
const MAX_SEEDS: u32 = 64u;
@group(0) @binding(0) var<uniform> hp_seeds: array<Params, MAX_SEEDS>;
var<private> hp: Params;
@group(0) @binding(1) var<storage, read_write> params: array<f32>;
@group(0) @binding(2) var<storage, read> grads: array<f32>;
@group(0) @binding(3) var<storage, read_write> m: array<f32>;
@group(0) @binding(4) var<storage, read_write> v: array<f32>;
@group(0) @binding(5) var<storage, read> step: array<u32>;

// The update of parameter i at step t.
fn update(i: u32, t: f32) {
    var lr = hp.lr;
    if (hp.decay_steps > 0u) {
        lr = lr * max(1.0 - (t - 1.0) / f32(hp.decay_steps), 0.0);
    }
    let bias1 = 1.0 - pow(hp.beta1, t);
    let bias2 = 1.0 - pow(hp.beta2, t);

    let g = grads[hp.g_off + i];
    var w = params[hp.p_off + i];
    w -= lr * hp.weight_decay * w;
    let mi = hp.beta1 * m[hp.m_off + i] + (1.0 - hp.beta1) * g;
    let vi = hp.beta2 * v[hp.v_off + i] + (1.0 - hp.beta2) * g * g;
    m[hp.m_off + i] = mi;
    v[hp.v_off + i] = vi;
    let denom = sqrt(vi) / sqrt(bias2) + hp.eps;
    params[hp.p_off + i] = w - (lr / bias1) * mi / denom;
}

@compute @workgroup_size(256)
fn adam(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_id) lid: vec3<u32>) {
    hp = hp_seeds[wid.z];
    let i = (wid.y * nwg.x + wid.x) * 256u + lid.x;
    if (i >= hp.len) {
        return;
    }
    update(i, f32(step[hp.step_off] + 1u));
}

// adam_advance: the same update, and the step counter advanced by one in the
// same launch. Thread 0 of each workgroup reads the counter once (the others
// take it from workgroup memory), then counts its workgroup in `arrivals`;
// the add's operand depends on the value read, so it cannot happen before
// the read. The workgroup that arrives last (it sees every other workgroup's
// arrival, each after that workgroup's read) writes the counter + 1 and
// resets `arrivals` to 0 for the next launch. No workgroup reads the counter
// after it is written, so every parameter sees the same t.
@group(0) @binding(5) var<storage, read_write> step_counter: array<atomic<u32>>;
@group(0) @binding(6) var<storage, read_write> arrivals: array<atomic<u32>>;

var<workgroup> step_read: u32;

@compute @workgroup_size(256)
fn adam_advance(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_id) lid: vec3<u32>) {
    hp = hp_seeds[wid.z];
    if (lid.x == 0u) {
        step_read = atomicLoad(&step_counter[hp.step_off]);
    }
    let before = workgroupUniformLoad(&step_read);
    let i = (wid.y * nwg.x + wid.x) * 256u + lid.x;
    if (i < hp.len) {
        update(i, f32(before + 1u));
    }
    if (lid.x == 0u) {
        let groups = nwg.x * nwg.y;
        // before | 1u ≠ 0: always one arrival, issued only once `before` is known.
        let one = min(before | 1u, 1u);
        if (atomicAdd(&arrivals[hp.arr_off], one) == groups - 1u) {
            atomicStore(&step_counter[hp.step_off], before + 1u);
            atomicStore(&arrivals[hp.arr_off], 0u);
        }
    }
}
