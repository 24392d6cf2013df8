// ema.wgsl: an exponential moving average of a flat parameter buffer
// (Polyak averaging of the generator's weights, as in Yazıcı et al. 2019,
// "The unusual effectiveness of averaging in GAN training"). It runs after
// each Adam step; the average is what sampling and evaluation use.
//
// Math      avg[a_off + i] ← β·avg[a_off + i] + (1 − β)·params[p_off + i],  i < len
// Buffers   binding 0 uniform Params
//           binding 1 params f32 read         (the network's current weights)
//           binding 2 avg    f32 read_write   (the average, same flat layout)
// Dispatch  one thread per parameter, workgroups of 256,
//           grid (min(G, 65535), ceil(G/65535), 1), G = ceil(len/256).

struct Params { len: u32, p_off: u32, a_off: u32, beta: f32 }

// Seed-batched plans (src/plan/seeds.rs): a launch can run the same op for
// up to MAX_SEEDS independent GANs, one uniform block each (their offsets
// into the stacked buffers); workgroup z is the seed, and each entry point
// first takes its seed's block.
const MAX_SEEDS: u32 = 64u;
@group(0) @binding(0) var<uniform> hp_seeds: array<Params, MAX_SEEDS>;
var<private> hp: Params;
@group(0) @binding(1) var<storage, read> params: array<f32>;
@group(0) @binding(2) var<storage, read_write> avg: array<f32>;

@compute @workgroup_size(256)
fn ema(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
       @builtin(local_invocation_id) lid: vec3<u32>) {
    hp = hp_seeds[wid.z];
    let i = (wid.y * nwg.x + wid.x) * 256u + lid.x;
    if (i >= hp.len) {
        return;
    }
    avg[hp.a_off + i] = hp.beta * avg[hp.a_off + i] + (1.0 - hp.beta) * params[hp.p_off + i];
}
