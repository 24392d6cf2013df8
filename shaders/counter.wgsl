// counter.wgsl: advance a step counter on the device.
//
// Step counters (Adam's t, the random streams' step) live in u32 buffers so a
// training step needs no upload; this kernel runs once at the end of a step.
//
// Math      counter[off] = counter[off] + 1
// Buffers   binding 0 uniform Params, binding 1 counter u32 read_write
// Dispatch  a single thread: grid (1, 1, 1), workgroup size 1.

struct Params { off: u32, _pad0: u32, _pad1: u32, _pad2: u32 }

// Seed-batched plans (src/plan/seeds.rs): a launch can run the same op for
// up to MAX_SEEDS independent GANs, one uniform block each (their offsets
// into the stacked buffers); workgroup z is the seed, and each entry point
// first takes its seed's block.
const MAX_SEEDS: u32 = 64u;
@group(0) @binding(0) var<uniform> p_seeds: array<Params, MAX_SEEDS>;
var<private> p: Params;
@group(0) @binding(1) var<storage, read_write> counter: array<u32>;

@compute @workgroup_size(1)
fn increment(@builtin(workgroup_id) wid: vec3<u32>) {
    p = p_seeds[wid.z];
    counter[p.off] = counter[p.off] + 1u;
}
