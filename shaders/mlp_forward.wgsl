// mlp_forward.wgsl: a whole dense network forward in one dispatch.
//
// Math (L ≤ 6 layers, a_{−1} = x, W_l is [outputs_l, inputs_l] as in nn.Linear)
//   a_l[r, j] = act_l( Σ_k a_{l−1}[r, k] · W_l[j, k] + b_l[j] )   r < rows, j < outputs_l
// act ids as in activation.wgsl: 0 identity, 1 relu, 2 leaky_relu(slope),
// 3 tanh, 4 sigmoid (the definitions are repeated: WGSL has no includes).
// The same numbers as one matmul_bias_act per layer; each output is accumulated
// in k order, so the last bits can differ from the tiled matmul kernels.
//
// Buffers (f32, element offsets in the uniform)
//   binding 0  uniform Params: rows, layer count, x offset, then per layer
//              inputs, outputs, act, slope, w_off, b_off, y_off
//   binding 1  x       read         x[x_off + r·inputs_0 + k]
//   binding 2  params  read         W_l[j, k] = params[w_off + j·inputs_l + k],
//                                   b_l[j] = params[b_off + j] (the network's flat buffer)
//   binding 3+l  y_l   read_write   a_l[r, j] = y_l[y_off + r·outputs_l + j]
//              (bindings past the last layer are bound but never written)
// Every layer's output goes to global memory (the backward pass reads them);
// the hidden ones also stay in workgroup memory as the next layer's input:
//   h[k·2 + 0] = rows 0..3 of column k, h[k·2 + 1] = rows 4..7   (8 KiB)
// so only hidden widths (outputs_l for l < L−1) must be ≤ 256; the input and
// output widths can be anything (784 for images).
//
// Dispatch
//   workgroup of 256 threads owns 8 consecutive rows and runs every layer;
//   grid (min(B, 65535), ceil(B/65535), 1), B = ceil(rows/8), block index
//   wid.y·num_workgroups.x + wid.x. Thread t computes columns j = t, t + 256, …
//   of a layer for all 8 rows (two vec4 accumulators, one weight load per k
//   feeding 8 FMAs); a hidden layer has at most 256 columns, so each thread
//   keeps at most one column in registers across the barrier that separates
//   reading h (this layer's input) from overwriting it (its output). Rows past
//   the end read row rows−1 and are never stored.

struct Layer {
    inputs: u32, outputs: u32, act: u32, slope: f32,
    w_off: u32, b_off: u32, y_off: u32, _pad: u32,
}

struct Params {
    rows: u32, layers: u32, x_off: u32, _pad: u32,
    layer: array<Layer, 6>,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> params: array<f32>;
@group(0) @binding(3) var<storage, read_write> y0: array<f32>;
@group(0) @binding(4) var<storage, read_write> y1: array<f32>;
@group(0) @binding(5) var<storage, read_write> y2: array<f32>;
@group(0) @binding(6) var<storage, read_write> y3: array<f32>;
@group(0) @binding(7) var<storage, read_write> y4: array<f32>;
@group(0) @binding(8) var<storage, read_write> y5: array<f32>;

const ROWS: u32 = 8u;
const THREADS: u32 = 256u;

var<workgroup> h: array<vec4<f32>, 512>;

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

fn activate4(v: vec4<f32>, act: u32, slope: f32) -> vec4<f32> {
    return vec4<f32>(activate(v.x, act, slope), activate(v.y, act, slope),
                     activate(v.z, act, slope), activate(v.w, act, slope));
}

// Rows 0..3 and 4..7 of one output column.
struct Column {
    lo: vec4<f32>,
    hi: vec4<f32>,
}

// Layer 0: the input rows come from x in global memory.
fn column_from_x(ly: Layer, j: u32, row0: u32) -> Column {
    let last = p.rows - 1u;
    let k_len = ly.inputs;
    let r = vec4<u32>(0u, 1u, 2u, 3u) + row0;
    let lo = p.x_off + min(r, vec4<u32>(last)) * k_len;
    let hi = p.x_off + min(r + 4u, vec4<u32>(last)) * k_len;
    let w_row = ly.w_off + j * k_len;
    var c = Column(vec4<f32>(0.0), vec4<f32>(0.0));
    for (var k = 0u; k < k_len; k++) {
        let w = params[w_row + k];
        c.lo += w * vec4<f32>(x[lo.x + k], x[lo.y + k], x[lo.z + k], x[lo.w + k]);
        c.hi += w * vec4<f32>(x[hi.x + k], x[hi.y + k], x[hi.z + k], x[hi.w + k]);
    }
    return c;
}

// Later layers: the input rows are the previous layer's output in h.
fn column_from_h(ly: Layer, j: u32) -> Column {
    let k_len = ly.inputs;
    let w_row = ly.w_off + j * k_len;
    var c = Column(vec4<f32>(0.0), vec4<f32>(0.0));
    for (var k = 0u; k < k_len; k++) {
        let w = params[w_row + k];
        c.lo += w * h[2u * k];
        c.hi += w * h[2u * k + 1u];
    }
    return c;
}

fn store(l: u32, i: u32, v: f32) {
    switch l {
        case 0u: { y0[i] = v; }
        case 1u: { y1[i] = v; }
        case 2u: { y2[i] = v; }
        case 3u: { y3[i] = v; }
        case 4u: { y4[i] = v; }
        default: { y5[i] = v; }
    }
}

// Writes the column's rows that exist: a_l[row0 + r, j] for row0 + r < rows.
fn store_column(l: u32, ly: Layer, j: u32, row0: u32, c: Column) {
    let count = min(ROWS, p.rows - row0);
    for (var r = 0u; r < count; r++) {
        // A vector component, not an indexed local array (which spills on NVIDIA).
        let v = select(c.lo, c.hi, r >= 4u)[r & 3u];
        store(l, ly.y_off + (row0 + r) * ly.outputs + j, v);
    }
}

@compute @workgroup_size(256)
fn mlp_forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
               @builtin(local_invocation_id) lid: vec3<u32>) {
    let row0 = (wid.y * nwg.x + wid.x) * ROWS;
    if (row0 >= p.rows) {
        return;
    }
    let t = lid.x;
    for (var l = 0u; l < p.layers; l++) {
        let ly = p.layer[l];
        var keep = Column(vec4<f32>(0.0), vec4<f32>(0.0));
        for (var j = t; j < ly.outputs; j += THREADS) {
            var c: Column;
            if (l == 0u) {
                c = column_from_x(ly, j, row0);
            } else {
                c = column_from_h(ly, j);
            }
            let b = params[ly.b_off + j];
            c.lo = activate4(c.lo + b, ly.act, ly.slope);
            c.hi = activate4(c.hi + b, ly.act, ly.slope);
            store_column(l, ly, j, row0, c);
            keep = c;
        }
        // Every thread has read h for this layer before any overwrites it.
        workgroupBarrier();
        if (l + 1u < p.layers && t < ly.outputs) {
            h[2u * t] = keep.lo;
            h[2u * t + 1u] = keep.hi;
        }
        workgroupBarrier();
    }
}
