// sum_splits.wgsl: the splits of a split-K product added up, in a fixed order.
//
// Math
//   out[i] = Σ_{s < splits} partials[s·len + i]   for i < len, s = 0, 1, … in order
//   (the same bits every run; conv2d_weight_grad's splits feed it).
//
// Buffers (f32, element offsets in the uniform)
//   binding 0  uniform Params: len, splits, partials offset, out offset
//   binding 1  partials  read        [splits][len]
//   binding 2  out       read_write
//
// Dispatch
//   one thread per output element, workgroups of 256,
//   grid (min(G, 65535), ceil(G/65535), 1), G = ceil(len/256).

struct Params {
    len: u32, splits: u32, p_off: u32, out_off: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> partials: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(256)
fn sum_splits(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
              @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = (wid.y * nwg.x + wid.x) * 256u + lid.x;
    if (i >= p.len) {
        return;
    }
    var v = 0.0;
    for (var s = 0u; s < p.splits; s++) {
        v += partials[p.p_off + s * p.len + i];
    }
    out[p.out_off + i] = v;
}
