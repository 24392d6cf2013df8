// mlp_forward.wgsl: a whole dense network forward in one dispatch.
//
// Math (L ≤ 6 layers, a_{−1} = x, W_l is [outputs_l, inputs_l] as in nn.Linear)
//   a_l[r, j] = act_l( Σ_k a_{l−1}[r, k] · W_l[j, k] + b_l[j] )   r < rows, j < outputs_l
// act ids as in activation.wgsl: 0 identity, 1 relu, 2 leaky_relu(slope),
// 3 tanh, 4 sigmoid (the definitions are repeated: WGSL has no includes).
// The same numbers as one matmul_bias_act per layer, summed in another order,
// so the last bits can differ from the tiled matmul kernels.
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
// the hidden ones also stay in workgroup memory as the next layer's input, so
// hidden widths (outputs_l for l < L−1) must be ≤ 256; the input and output
// widths can be anything (784 for images), any of them odd.
//
// Dispatch
//   A workgroup of 256 threads owns 8 consecutive rows and runs every layer;
//   grid (min(B, 65535), ceil(B/65535), 1), B = ceil(rows/8), block index
//   wid.y·num_workgroups.x + wid.x. Rows past the end compute on copies of
//   row rows−1 and are never stored.
//   Thread t is lane t%8 of slot t/8 (32 slots). A layer runs in passes of
//   128 outputs: slot s computes outputs j = 128·pass + s + 32·q (q < 4) for
//   all 8 rows, and lane e of the slot takes the inputs k = 32·i + 4·e .. +3
//   (i = 0, 1, …): eight lanes read 32 consecutive weights of a row (coalesced)
//   and four vec4s of the input rows from workgroup memory, 128 multiply-adds
//   per 16 weights. The eight lanes' partial sums then meet in workgroup memory
//   (one q at a time, summed in lane order: deterministic), and thread
//   (s, r) = (t/8, t%8) adds the bias, applies the activation and writes
//   a_l[r, j] to global memory and, for a hidden layer, to the next layer's
//   input tile.
//   Workgroup memory: two input tiles of 8 rows × 256 (one holds the layer's
//   input, the other receives its output; the first layer's input is staged
//   from x 256 columns at a time), zero past the layer's width, and the
//   8 × 256 partial sums: 24 KiB.

struct Layer {
    inputs: u32, outputs: u32, act: u32, slope: f32,
    w_off: u32, b_off: u32, y_off: u32, _pad: u32,
}

struct Params {
    rows: u32, layers: u32, x_off: u32, _pad: u32,
    layer: array<Layer, 6>,
}

// Seed-batched plans (src/plan/seeds.rs): a launch can run the same op for
// up to MAX_SEEDS independent GANs, one uniform block each (their offsets
// into the stacked buffers); workgroup z is the seed, and each entry point
// first takes its seed's block.
const MAX_SEEDS: u32 = 64u;
var<private> seed: u32;
@group(0) @binding(0) var<uniform> p_seeds: array<Params, MAX_SEEDS>;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> params: array<f32>;
@group(0) @binding(3) var<storage, read_write> y0: array<f32>;
@group(0) @binding(4) var<storage, read_write> y1: array<f32>;
@group(0) @binding(5) var<storage, read_write> y2: array<f32>;
@group(0) @binding(6) var<storage, read_write> y3: array<f32>;
@group(0) @binding(7) var<storage, read_write> y4: array<f32>;
@group(0) @binding(8) var<storage, read_write> y5: array<f32>;

const ROWS: u32 = 8u;
const WIDTH: u32 = 256u;        // columns of an input tile
const SLOTS: u32 = 32u;
const LANES: u32 = 8u;
const PER_SLOT: u32 = 4u;       // outputs per slot per pass
const PASS: u32 = SLOTS * PER_SLOT;

// Input tiles [tile][row][k/4] as vec4 over k (tile = 0 or 1), and partial sums [slot][row][lane].
var<workgroup> tiles: array<vec4<f32>, 1024>;
var<workgroup> partial: array<f32, 2048>;

// tanh with a small relative error everywhere: drivers' builtin tanh can be
// off by ~1e-4 relative near zero (llvmpipe) or overflow past |x| ≈ 44.
// |x| < 0.625: Cephes' tanhf odd polynomial; else 1 − 2/(e^{2|x|} + 1), clamped.
fn accurate_tanh(v: f32) -> f32 {
    let a = abs(v);
    if (a < 0.625) {
        let z = v * v;
        let q = (((-5.70498872745e-3 * z + 2.06390887954e-2) * z - 5.37397155531e-2) * z
                 + 1.33314422036e-1) * z - 3.33332819422e-1;
        return v + v * z * q;
    }
    let t = 1.0 - 2.0 / (exp(2.0 * min(a, 15.0)) + 1.0);
    return select(t, -t, v < 0.0);
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

// Zeroes input tile `tile` (then nothing past a layer's width can leak into a sum).
fn clear_tile(tile: u32, t: u32) {
    for (var i = t; i < 512u; i += 256u) {
        tiles[tile * 512u + i] = vec4<f32>(0.0);
    }
}

// Stages x[row0.., k0..k0+256) into input tile 0 (rows past the end copy the last row).
fn stage_x(ly: Layer, row0: u32, k0: u32, t: u32) {
    for (var e = t; e < ROWS * WIDTH; e += 256u) {
        let r = e / WIDTH;
        let k = e % WIDTH;
        var v = 0.0;
        if (k0 + k < ly.inputs) {
            v = x[p_seeds[seed].x_off + min(row0 + r, p_seeds[seed].rows - 1u) * ly.inputs + k0 + k];
        }
        tiles[r * 64u + k / 4u][k % 4u] = v;
    }
}

// Four weights W[j, k..k+3] (zero past the row's end; j is in range). The
// loads past the end read the next row or, at the buffer's end, an index the
// bounds checks clamp; select() drops them. (Assigning w[u] in a loop would
// index a local vector dynamically, which NVIDIA's compiler puts in slow
// local memory.)
fn weights(ly: Layer, j: u32, k: u32) -> vec4<f32> {
    let at = ly.w_off + j * ly.inputs + k;
    let w = vec4<f32>(params[at], params[at + 1u], params[at + 2u], params[at + 3u]);
    let inside = vec4<u32>(k) + vec4<u32>(0u, 1u, 2u, 3u) < vec4<u32>(ly.inputs);
    return select(vec4<f32>(0.0), w, inside);
}

// The 8 rows' sums for one output (rows 0..3 and 4..7).
struct Sums {
    lo: vec4<f32>,
    hi: vec4<f32>,
}

// The 8 rows' inputs [k_tile, k_tile + 4) from input tile `tile`.
struct Inputs {
    r0: vec4<f32>, r1: vec4<f32>, r2: vec4<f32>, r3: vec4<f32>,
    r4: vec4<f32>, r5: vec4<f32>, r6: vec4<f32>, r7: vec4<f32>,
}

fn inputs(tile: u32, k_tile: u32) -> Inputs {
    let at = tile * 512u + k_tile / 4u;
    return Inputs(tiles[at], tiles[at + 64u], tiles[at + 128u], tiles[at + 192u],
                  tiles[at + 256u], tiles[at + 320u], tiles[at + 384u], tiles[at + 448u]);
}

// The sums plus the inputs times w (the weights at the same four inputs).
fn accumulate(s: Sums, v: Inputs, w: vec4<f32>) -> Sums {
    let lo = vec4<f32>(dot(w, v.r0), dot(w, v.r1), dot(w, v.r2), dot(w, v.r3));
    let hi = vec4<f32>(dot(w, v.r4), dot(w, v.r5), dot(w, v.r6), dot(w, v.r7));
    return Sums(s.lo + lo, s.hi + hi);
}

// One slot's four outputs.
struct Outputs {
    q0: Sums,
    q1: Sums,
    q2: Sums,
    q3: Sums,
}

// This lane's part of the sums over the input columns [k0, k0 + 256) held in `tile`.
fn sweep(acc: Outputs, ly: Layer, tile: u32, j0: u32, k0: u32, lane: u32) -> Outputs {
    var o = acc;
    let last = ly.outputs - 1u;
    let span = min(WIDTH, ly.inputs - k0);
    for (var kt = 4u * lane; kt < span; kt += 4u * LANES) {
        let k = k0 + kt;
        let w0 = weights(ly, min(j0, last), k);
        let w1 = weights(ly, min(j0 + SLOTS, last), k);
        let w2 = weights(ly, min(j0 + 2u * SLOTS, last), k);
        let w3 = weights(ly, min(j0 + 3u * SLOTS, last), k);
        let v = inputs(tile, kt);
        o.q0 = accumulate(o.q0, v, w0);
        o.q1 = accumulate(o.q1, v, w1);
        o.q2 = accumulate(o.q2, v, w2);
        o.q3 = accumulate(o.q3, v, w3);
    }
    return o;
}

// The lanes' partial sums of output j = base + s (for slot s) meet; thread (s, r)
// finishes a_l[row0 + r, j]: into global memory, and into tile `next` when hidden.
fn finish(l: u32, ly: Layer, s: Sums, base: u32, row0: u32, next: u32, t: u32) {
    let slot = t / LANES;
    let lane = t % LANES;
    let at = slot * 64u + lane;
    partial[at] = s.lo.x;
    partial[at + 8u] = s.lo.y;
    partial[at + 16u] = s.lo.z;
    partial[at + 24u] = s.lo.w;
    partial[at + 32u] = s.hi.x;
    partial[at + 40u] = s.hi.y;
    partial[at + 48u] = s.hi.z;
    partial[at + 56u] = s.hi.w;
    workgroupBarrier();
    let r = t % ROWS;
    let j = base + t / ROWS;
    if (j < ly.outputs) {
        var v = 0.0;
        for (var e = 0u; e < LANES; e++) {
            v += partial[(t / ROWS) * 64u + r * 8u + e];
        }
        v = activate(v + params[ly.b_off + j], ly.act, ly.slope);
        if (row0 + r < p_seeds[seed].rows) {
            store(l, ly.y_off + (row0 + r) * ly.outputs + j, v);
        }
        if (l + 1u < p_seeds[seed].layers) {
            tiles[next * 512u + r * 64u + j / 4u][j % 4u] = v;
        }
    }
    workgroupBarrier();
}

// Layer l from input tile `tile` (layer 0: staged from x here) into tile 1 − tile.
fn run_layer(l: u32, row0: u32, tile: u32, t: u32) {
    let ly = p_seeds[seed].layer[l];
    let slot = t / LANES;
    let lane = t % LANES;
    let next = 1u - tile;
    clear_tile(next, t);
    let zero = Sums(vec4<f32>(0.0), vec4<f32>(0.0));
    for (var base = 0u; base < ly.outputs; base += PASS) {
        var o = Outputs(zero, zero, zero, zero);
        let j0 = base + slot;
        if (l == 0u) {
            for (var k0 = 0u; k0 < ly.inputs; k0 += WIDTH) {
                workgroupBarrier();
                stage_x(ly, row0, k0, t);
                workgroupBarrier();
                o = sweep(o, ly, tile, j0, k0, lane);
            }
        } else {
            o = sweep(o, ly, tile, j0, 0u, lane);
        }
        finish(l, ly, o.q0, base, row0, next, t);
        finish(l, ly, o.q1, base + SLOTS, row0, next, t);
        finish(l, ly, o.q2, base + 2u * SLOTS, row0, next, t);
        finish(l, ly, o.q3, base + 3u * SLOTS, row0, next, t);
    }
}

@compute @workgroup_size(256)
fn mlp_forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
               @builtin(local_invocation_index) t: u32) {
    seed = wid.z;
    let row0 = (wid.y * nwg.x + wid.x) * ROWS;
    if (row0 >= p_seeds[seed].rows) {
        return;
    }
    var tile = 0u;
    for (var l = 0u; l < p_seeds[seed].layers; l++) {
        run_layer(l, row0, tile, t);
        tile = 1u - tile;
    }
}
