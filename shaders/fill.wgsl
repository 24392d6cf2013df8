// fill.wgsl: set every element of a range to one value.
//
// Math      dst[off + i] = value, for i < len
// Buffers   binding 0 uniform Params, binding 1 dst f32 read_write
// Dispatch  one thread per element, workgroups of 256,
//           grid (min(G, 65535), ceil(G/65535), 1), G = ceil(len/256).

struct Params { len: u32, off: u32, value: f32, _pad0: u32 }

// Seed-batched plans (src/plan/seeds.rs): a launch can run the same op for
// up to MAX_SEEDS independent GANs, one uniform block each (their offsets
// into the stacked buffers); workgroup z is the seed, and each entry point
// first takes its seed's block.
const MAX_SEEDS: u32 = 64u;
@group(0) @binding(0) var<uniform> p_seeds: array<Params, MAX_SEEDS>;
var<private> p: Params;
@group(0) @binding(1) var<storage, read_write> dst: array<f32>;

@compute @workgroup_size(256)
fn fill(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_id) lid: vec3<u32>) {
    p = p_seeds[wid.z];
    let i = (wid.y * nwg.x + wid.x) * 256u + lid.x;
    if (i < p.len) {
        dst[p.off + i] = p.value;
    }
}
