// gather.wgsl: minibatch gather, dst[r, :] = src[indices[r], :].
//
// The dataset is uploaded once; each step draws row indices on the device
// (random.wgsl) and this kernel copies those rows into the batch.
//
// Math, for r < rows, c < cols:
//   gather_rows_f32: dst[r, c] = src[indices[r]·cols + c]
//   gather_rows_u8:  dst[r, c] = (byte(indices[r]·cols + c) − center)·scale
//                    bytes packed four to a u32, little-endian; 8-bit images map
//                    to [−1, 1] with center = 127.5, scale = 2/255 (byte − center
//                    is exact, so the result has a single rounding on any backend)
//
// Buffers (element offsets in the uniform; src_off in words)
//   gather_rows_f32: binding 0 uniform Params, 1 src f32 read, 2 indices u32 read, 3 dst f32 read_write
//   gather_rows_u8:  binding 4 uniform Params, 5 src u32 read, 6 indices u32 read, 7 dst f32 read_write
//
// Dispatch
//   one thread per output element (rows·cols), workgroups of 256,
//   grid (min(G, 65535), ceil(G/65535), 1), G = ceil(rows·cols/256).

struct Params {
    rows: u32, cols: u32, src_off: u32, idx_off: u32,
    dst_off: u32, center: f32, scale: f32, _pad0: u32,
}

// Seed-batched plans (src/plan/seeds.rs): a launch can run the same op for
// up to MAX_SEEDS independent GANs, one uniform block each (their offsets
// into the stacked buffers); workgroup z is the seed, and each entry point
// first takes its seed's block.
const MAX_SEEDS: u32 = 64u;
@group(0) @binding(0) var<uniform> pf_seeds: array<Params, MAX_SEEDS>;
var<private> pf: Params;
@group(0) @binding(1) var<storage, read> src_f32: array<f32>;
@group(0) @binding(2) var<storage, read> idx_f32: array<u32>;
@group(0) @binding(3) var<storage, read_write> dst_f32: array<f32>;

@group(0) @binding(4) var<uniform> pb_seeds: array<Params, MAX_SEEDS>;
var<private> pb: Params;
@group(0) @binding(5) var<storage, read> src_u8: array<u32>;
@group(0) @binding(6) var<storage, read> idx_u8: array<u32>;
@group(0) @binding(7) var<storage, read_write> dst_u8: array<f32>;

fn linear_index(wid: vec3<u32>, nwg: vec3<u32>, lid: vec3<u32>) -> u32 {
    return (wid.y * nwg.x + wid.x) * 256u + lid.x;
}

@compute @workgroup_size(256)
fn gather_rows_f32(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                   @builtin(local_invocation_id) lid: vec3<u32>) {
    pf = pf_seeds[wid.z];
    let e = linear_index(wid, nwg, lid);
    if (e >= pf.rows * pf.cols) {
        return;
    }
    let r = e / pf.cols;
    let c = e % pf.cols;
    let row = idx_f32[pf.idx_off + r];
    dst_f32[pf.dst_off + e] = src_f32[pf.src_off + row * pf.cols + c];
}

@compute @workgroup_size(256)
fn gather_rows_u8(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                  @builtin(local_invocation_id) lid: vec3<u32>) {
    pb = pb_seeds[wid.z];
    let e = linear_index(wid, nwg, lid);
    if (e >= pb.rows * pb.cols) {
        return;
    }
    let r = e / pb.cols;
    let c = e % pb.cols;
    let byte_index = idx_u8[pb.idx_off + r] * pb.cols + c;
    let word = src_u8[pb.src_off + byte_index / 4u];
    let byte = (word >> (8u * (byte_index % 4u))) & 0xffu;
    dst_u8[pb.dst_off + e] = (f32(byte) - pb.center) * pb.scale;
}
