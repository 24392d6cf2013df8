// reduce.wgsl: column sums (bias gradients) and the mean of a vector.
//
// Math
//   column_sum   out[c] = Σ_{r < rows} x[r, c]                 (x row-major, cols wide)
//   mean         out[0] = scale · (1/len) · Σ_{i < len} x[i]
//   row_sq_norm  out[r] = Σ_{c < cols} x[r, c]²              (Parzen distances)
//
// Buffers (f32, element offsets in the uniform)
//   column_sum:  binding 0 uniform Params, 1 x read, 2 out read_write
//   mean:        binding 3 uniform Params, 4 x read, 5 out read_write
//   row_sq_norm: binding 6 uniform Params, 7 x read, 8 out read_write
//   x[in_off + ...], out[out_off + ...]
//
// Dispatch
//   column_sum: workgroups of 32 columns × 8 row lanes, grid (ceil(cols/32), 1, 1).
//               Lane l sums rows l, l+8, l+16, … with four accumulators (so the
//               loads are independent and overlap); the 32 threads of a lane read
//               32 neighbouring columns, so loads coalesce; the 8 lane sums meet in
//               workgroup memory. (One thread per column walking all rows measured
//               10 GB/s on an H100: 3.2 ms for the 4096×1024 bias gradient.)
//   mean:       one workgroup of 256 threads: each thread sums a strided share,
//               then a tree reduction in workgroup memory; grid (1, 1, 1).
//   row_sq_norm: one thread per row, workgroups of 256, grid (min(G, 65535),
//               ceil(G/65535), 1), G = ceil(rows/256).

struct Params {
    rows: u32, cols: u32, in_off: u32, out_off: u32,
    scale: f32, _pad0: u32, _pad1: u32, _pad2: u32,
}

// Seed-batched plans (src/plan/seeds.rs): a launch can run the same op for
// up to MAX_SEEDS independent GANs, one uniform block each (their offsets
// into the stacked buffers); workgroup z is the seed, and each entry point
// first takes its seed's block.
const MAX_SEEDS: u32 = 64u;
@group(0) @binding(0) var<uniform> cs_seeds: array<Params, MAX_SEEDS>;
var<private> cs: Params;
@group(0) @binding(1) var<storage, read> cs_x: array<f32>;
@group(0) @binding(2) var<storage, read_write> cs_out: array<f32>;

@group(0) @binding(3) var<uniform> mp_seeds: array<Params, MAX_SEEDS>;
var<private> mp: Params; // rows = len, cols unused
@group(0) @binding(4) var<storage, read> m_x: array<f32>;
@group(0) @binding(5) var<storage, read_write> m_out: array<f32>;

const CS_COLS: u32 = 32u;
const CS_LANES: u32 = 8u;

var<workgroup> cs_partial: array<f32, 256>; // [CS_LANES][CS_COLS]

fn cs_load(r: u32, col: u32) -> f32 {
    if (r < cs.rows) {
        return cs_x[cs.in_off + r * cs.cols + col];
    }
    return 0.0;
}

@compute @workgroup_size(32, 8)
fn column_sum(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    cs = cs_seeds[wid.z];
    let col = wid.x * CS_COLS + lid.x;
    var s0 = 0.0;
    var s1 = 0.0;
    var s2 = 0.0;
    var s3 = 0.0;
    if (col < cs.cols) {
        for (var r = lid.y; r < cs.rows; r += 4u * CS_LANES) {
            s0 += cs_x[cs.in_off + r * cs.cols + col];
            s1 += cs_load(r + CS_LANES, col);
            s2 += cs_load(r + 2u * CS_LANES, col);
            s3 += cs_load(r + 3u * CS_LANES, col);
        }
    }
    cs_partial[lid.y * CS_COLS + lid.x] = (s0 + s1) + (s2 + s3);
    workgroupBarrier();
    if (lid.y == 0u && col < cs.cols) {
        var total = 0.0;
        for (var l = 0u; l < CS_LANES; l++) {
            total += cs_partial[l * CS_COLS + lid.x];
        }
        cs_out[cs.out_off + col] = total;
    }
}

var<workgroup> partial: array<f32, 256>;

@compute @workgroup_size(256)
fn mean(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    mp = mp_seeds[wid.z];
    let len = mp.rows;
    var s = 0.0;
    for (var i = lid.x; i < len; i += 256u) {
        s += m_x[mp.in_off + i];
    }
    partial[lid.x] = s;
    workgroupBarrier();
    for (var stride = 128u; stride > 0u; stride >>= 1u) {
        if (lid.x < stride) {
            partial[lid.x] += partial[lid.x + stride];
        }
        workgroupBarrier();
    }
    if (lid.x == 0u) {
        m_out[mp.out_off] = mp.scale * partial[0] / f32(max(len, 1u));
    }
}

@group(0) @binding(6) var<uniform> rn_seeds: array<Params, MAX_SEEDS>;
var<private> rn: Params;
@group(0) @binding(7) var<storage, read> rn_x: array<f32>;
@group(0) @binding(8) var<storage, read_write> rn_out: array<f32>;

@compute @workgroup_size(256)
fn row_sq_norm(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
               @builtin(local_invocation_id) lid: vec3<u32>) {
    rn = rn_seeds[wid.z];
    let r = (wid.y * nwg.x + wid.x) * 256u + lid.x;
    if (r >= rn.rows) {
        return;
    }
    var s = 0.0;
    for (var c = 0u; c < rn.cols; c++) {
        let v = rn_x[rn.in_off + r * rn.cols + c];
        s = fma(v, v, s);
    }
    rn_out[rn.out_off + r] = s;
}
