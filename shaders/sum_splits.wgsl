// sum_splits.wgsl: the splits of a split-K product added up, in a fixed order.
//
// Math
//   out[i] = Σ_{s < splits} partials[s·len + i]   for i < len
//   With lanes = 1, s = 0, 1, … in order (as the CPU reference). With lanes
//   = 8 (many splits of a short output: conv2d_weight_grad's one-channel
//   layers split 49–196 ways), lane l sums s = l, l + 8, … in order and the
//   eight lane sums are added in lane order. Either way the same bits every
//   run.
//
// Buffers (f32, element offsets in the uniform)
//   binding 0  uniform Params: len, splits, partials offset, out offset, lanes
//   binding 1  partials  read        [splits][len]
//   binding 2  out       read_write
//
// Dispatch
//   workgroups of 256 threads: 256 / lanes outputs × lanes (thread t: output
//   t % (256 / lanes), lane t / (256 / lanes));
//   grid (min(G, 65535), ceil(G/65535), 1), G = ceil(len·lanes/256).

struct Params {
    len: u32, splits: u32, p_off: u32, out_off: u32,
    lanes: u32, _p0: u32, _p1: u32, _p2: u32,
}

// Seed-batched plans (src/plan/seeds.rs): a launch can run the same op for
// up to MAX_SEEDS independent GANs, one uniform block each (their offsets
// into the stacked buffers); workgroup z is the seed, and each entry point
// first takes its seed's block.
const MAX_SEEDS: u32 = 64u;
@group(0) @binding(0) var<uniform> p_seeds: array<Params, MAX_SEEDS>;
var<private> p: Params;
@group(0) @binding(1) var<storage, read> partials: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

var<workgroup> lane_sums: array<f32, 256>;

@compute @workgroup_size(256)
fn sum_splits(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
              @builtin(local_invocation_id) lid: vec3<u32>) {
    p = p_seeds[wid.z];
    let per_group = 256u / p.lanes;
    let slot = lid.x % per_group;
    let lane = lid.x / per_group;
    let i = (wid.y * nwg.x + wid.x) * per_group + slot;
    var v = 0.0;
    if (i < p.len) {
        for (var s = lane; s < p.splits; s += p.lanes) {
            v += partials[p.p_off + s * p.len + i];
        }
    }
    lane_sums[lid.x] = v;
    workgroupBarrier();
    if (lane != 0u || i >= p.len) {
        return;
    }
    var total = 0.0;
    for (var l = 0u; l < p.lanes; l++) {
        total += lane_sums[l * per_group + slot];
    }
    out[p.out_off + i] = total;
}
