// random.wgsl: counter-based random numbers (Philox 4x32-10).
//
// Math
//   Philox 4x32-10 (Salmon et al. 2011, as in Random123 and cuRAND) maps a
//   128-bit counter c = (c0, c1, c2, c3) and a 64-bit key k = (k0, k1) to four
//   u32 words in 10 rounds. One round, with (hi, lo) = mulhilo(a, b) the high
//   and low halves of the 64-bit product a*b:
//       (hi0, lo0) = mulhilo(0xD2511F53, c0)
//       (hi1, lo1) = mulhilo(0xCD9E8D57, c2)
//       c = (hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0)
//   and between rounds k += (0x9E3779B9, 0xBB67AE85) (wrapping).
//   WGSL has no 64-bit integers, so mulhi is built from 16-bit limbs; lo is
//   the plain wrapping product a*b.
//
//   Key = (seed_lo, seed_hi). Block t (0-based) uses the counter
//   (t, stream, step, 0), step = counter[counter_offset], and produces
//   outputs 4t .. 4t+3 (those < len). Conversions from a word x:
//     uniform in [0, 1): f32(x >> 8) * 2^-24 (exact in f32)
//     normal: Box-Muller on (x0, x1) and (x2, x3):
//       u1 = f32((x0 >> 8) + 1) * 2^-24 in (0, 1], u2 = f32(x1 >> 8) * 2^-24,
//       r = sqrt(-2 ln u1), theta = 2 pi u2 -> r cos(theta), r sin(theta)
//     index in [0, bound): mulhi(x, bound)
//     dropout: out_i = x_i · (1/keep) if uniform(x_i's word) < keep, else 0
//       (inverted dropout; applying the same op, with the same stream and step,
//       to a gradient applies the same mask: its backward pass)
//   The integer parts match src/cpu/philox.rs bit for bit; the normal outputs
//   match it up to the precision of the GPU's log/sqrt/cos/sin.
//
// Buffers
//   binding 0  uniform Params (below)
//   binding 1  counter: u32 array; step = counter[p.counter_offset]
//   binding 2  out_f32: f32 array; random_normal / random_uniform write
//              out_f32[p.out_offset + i] for i < p.len
//   binding 3  out_u32: u32 array; random_index writes out_u32[p.out_offset + i]
//   binding 4  dropout_in: f32 array; dropout reads dropout_in[p.in_offset + i]
//              and writes out_f32[p.out_offset + i]
//   Each entry point statically uses only its own bindings (normal/uniform:
//   0, 1, 2; index: 0, 1, 3; dropout: 0, 1, 2, 4), so auto pipeline layouts
//   stay minimal.
//
// Dispatch
//   One thread per block of 4 outputs: blocks = ceil(len / 4),
//   groups = ceil(blocks / 256), dispatched as
//   (min(groups, 65535), ceil(groups / 65535), 1). Thread block index
//   t = (wid.y * num_workgroups.x + wid.x) * 256 + lid.x; threads with
//   4t >= len return at once.

struct Params {
    out_offset: u32,
    len: u32,
    seed_lo: u32,
    seed_hi: u32,
    stream: u32,
    counter_offset: u32,
    bound: u32,
    keep: f32,
    in_offset: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

// Seed-batched plans (src/plan/seeds.rs): a launch can run the same op for
// up to MAX_SEEDS independent GANs, one uniform block each (their offsets
// into the stacked buffers); workgroup z is the seed, and each entry point
// first takes its seed's block.
const MAX_SEEDS: u32 = 64u;
@group(0) @binding(0) var<uniform> p_seeds: array<Params, MAX_SEEDS>;
var<private> p: Params;
@group(0) @binding(1) var<storage, read> counter: array<u32>;
@group(0) @binding(2) var<storage, read_write> out_f32: array<f32>;
@group(0) @binding(3) var<storage, read_write> out_u32: array<u32>;
@group(0) @binding(4) var<storage, read> dropout_in: array<f32>;

const PHILOX_M0: u32 = 0xD2511F53u;
const PHILOX_M1: u32 = 0xCD9E8D57u;
const PHILOX_W0: u32 = 0x9E3779B9u;
const PHILOX_W1: u32 = 0xBB67AE85u;
const INV_2_24: f32 = 1.0 / 16777216.0; // 2^-24
const TAU: f32 = 6.2831855;

// High 32 bits of the 64-bit product a*b, from 16-bit limbs
// a = a1*2^16 + a0, b = b1*2^16 + b0 (every partial product fits in u32).
fn mulhi(a: u32, b: u32) -> u32 {
    let a0 = a & 0xFFFFu;
    let a1 = a >> 16u;
    let b0 = b & 0xFFFFu;
    let b1 = b >> 16u;
    let p00 = a0 * b0;
    let p01 = a0 * b1;
    let p10 = a1 * b0;
    let p11 = a1 * b1;
    // Bits 16..47 of the product: the carry into the high word.
    let mid = (p00 >> 16u) + (p01 & 0xFFFFu) + (p10 & 0xFFFFu);
    return p11 + (p01 >> 16u) + (p10 >> 16u) + (mid >> 16u);
}

fn philox4x32_10(counter_in: vec4<u32>, key_in: vec2<u32>) -> vec4<u32> {
    var c = counter_in;
    var k = key_in;
    for (var round = 0u; round < 10u; round++) {
        if (round > 0u) {
            k += vec2<u32>(PHILOX_W0, PHILOX_W1);
        }
        let hi0 = mulhi(PHILOX_M0, c.x);
        let lo0 = PHILOX_M0 * c.x;
        let hi1 = mulhi(PHILOX_M1, c.z);
        let lo1 = PHILOX_M1 * c.z;
        c = vec4<u32>(hi1 ^ c.y ^ k.x, lo1, hi0 ^ c.w ^ k.y, lo0);
    }
    return c;
}

// This thread's block index t (see "Dispatch" above).
fn block_index(wid: vec3<u32>, lid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return (wid.y * nwg.x + wid.x) * 256u + lid.x;
}

// The four Philox words of block t for this op's seed, stream and step.
fn block_words(t: u32) -> vec4<u32> {
    let step = counter[p.counter_offset];
    return philox4x32_10(vec4<u32>(t, p.stream, step, 0u), vec2<u32>(p.seed_lo, p.seed_hi));
}

fn to_uniform(x: u32) -> f32 {
    return f32(x >> 8u) * INV_2_24;
}

// Box-Muller: two standard normal numbers from two words.
fn box_muller(x0: u32, x1: u32) -> vec2<f32> {
    let u1 = f32((x0 >> 8u) + 1u) * INV_2_24; // (0, 1]: log never sees 0
    let u2 = f32(x1 >> 8u) * INV_2_24;
    let r = sqrt(-2.0 * log(u1));
    let theta = TAU * u2;
    return vec2<f32>(r * cos(theta), r * sin(theta));
}

// Writes outputs 4t .. 4t+3 that fall below len.
fn store_f32(t: u32, v: vec4<f32>) {
    let n = min(4u, p.len - 4u * t);
    for (var i = 0u; i < n; i++) {
        out_f32[p.out_offset + 4u * t + i] = v[i];
    }
}

fn store_u32(t: u32, v: vec4<u32>) {
    let n = min(4u, p.len - 4u * t);
    for (var i = 0u; i < n; i++) {
        out_u32[p.out_offset + 4u * t + i] = v[i];
    }
}

@compute @workgroup_size(256)
fn random_normal(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
) {
    p = p_seeds[wid.z];
    let t = block_index(wid, lid, nwg);
    if (4u * t >= p.len) {
        return;
    }
    let w = block_words(t);
    store_f32(t, vec4<f32>(box_muller(w.x, w.y), box_muller(w.z, w.w)));
}

@compute @workgroup_size(256)
fn random_uniform(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
) {
    p = p_seeds[wid.z];
    let t = block_index(wid, lid, nwg);
    if (4u * t >= p.len) {
        return;
    }
    let w = block_words(t);
    store_f32(t, vec4<f32>(to_uniform(w.x), to_uniform(w.y), to_uniform(w.z), to_uniform(w.w)));
}

@compute @workgroup_size(256)
fn random_index(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
) {
    p = p_seeds[wid.z];
    let t = block_index(wid, lid, nwg);
    if (4u * t >= p.len) {
        return;
    }
    let w = block_words(t);
    store_u32(t, vec4<u32>(mulhi(w.x, p.bound), mulhi(w.y, p.bound), mulhi(w.z, p.bound), mulhi(w.w, p.bound)));
}

@compute @workgroup_size(256)
fn dropout(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
) {
    p = p_seeds[wid.z];
    let t = block_index(wid, lid, nwg);
    if (4u * t >= p.len) {
        return;
    }
    let w = block_words(t);
    let scale = 1.0 / p.keep;
    let n = min(4u, p.len - 4u * t);
    for (var i = 0u; i < n; i++) {
        let x = dropout_in[p.in_offset + 4u * t + i];
        out_f32[p.out_offset + 4u * t + i] = select(0.0, x * scale, to_uniform(w[i]) < p.keep);
    }
}

// ---------------------------------------------------------------------------
// draw_batch: a minibatch in one dispatch, the same numbers as random_index,
// gather.wgsl's gather_rows_{f32,u8} and random_normal run one after another.
//
// Math, with step = counter[d.counter_offset] and Philox words as above:
//   indices[r]  = mulhi(word r%4 of block (r/4, index_stream, step), bound)   r < rows
//   dst[r, c]   = src row indices[r], column c, read as
//                   format 0 (f32): the word src[src_off + indices[r]·cols + c], copied
//                   format 1 (u8):  (byte(indices[r]·cols + c) − center)·scale, bytes
//                                   packed four to a word, little-endian
//   noise[i]    = random_normal's output i on stream noise_stream       i < noise_len
//   noise[more_off + i] = random_normal's output i on stream more_stream at
//                 step counter2[more_counter_offset], seed more_seed     i < more_len
//                 (a second noise batch with its own counter: 0 long when unused)
//   The gather computes each row's index itself (it cannot read indices:
//   other workgroups write them in the same dispatch).
//
// Buffers (element offsets in the uniform)
//   binding 5  uniform DrawParams
//   binding 1  counter u32 read
//   binding 6  src     u32 read (f32 rows are copied by their bits)
//   binding 7  indices u32 read_write     indices[idx_off + r]
//   binding 8  dst     u32 read_write     dst[dst_off + r·cols + c] (f32 bits)
//   binding 9  noise   f32 read_write     noise[noise_off + i], noise[more_off + i]
//   binding 10 counter2 u32 read          the second noise's step counter
//
// Dispatch
//   Workgroups of 256, linear workgroup id g = wid.y·num_workgroups.x + wid.x,
//   grid folded as (min(G, 65535), ceil(G/65535), 1) with
//   G = gather_groups + ceil((ceil(rows/4) + ceil(noise_len/4) + ceil(more_len/4))/256)
//   and gather_groups = ceil(rows·cols/256).
//   g < gather_groups: the workgroup copies elements 256g .. 256g+255 of dst;
//     the rows those span (at most 256) get their indices drawn by the first
//     threads into workgroup memory, then every thread copies one element.
//   otherwise thread t = (g − gather_groups)·256 + lid.x draws index block t
//     (t < ceil(rows/4)), then noise blocks, then the second noise's blocks;
//     the rest return.

struct DrawParams {
    rows: u32, cols: u32, src_off: u32, idx_off: u32,
    dst_off: u32, noise_off: u32, noise_len: u32, bound: u32,
    seed_lo: u32, seed_hi: u32, index_stream: u32, noise_stream: u32,
    counter_offset: u32, format: u32, center: f32, scale: f32,
    gather_groups: u32, more_off: u32, more_len: u32, more_stream: u32,
    more_counter_offset: u32, more_seed_lo: u32, more_seed_hi: u32, _pad0: u32,
}

@group(0) @binding(5) var<uniform> d_seeds: array<DrawParams, MAX_SEEDS>;
var<private> d: DrawParams;
@group(0) @binding(6) var<storage, read> draw_src: array<u32>;
@group(0) @binding(7) var<storage, read_write> draw_indices: array<u32>;
@group(0) @binding(8) var<storage, read_write> draw_dst: array<u32>;
@group(0) @binding(9) var<storage, read_write> draw_noise: array<f32>;
@group(0) @binding(10) var<storage, read> draw_counter2: array<u32>;

var<workgroup> draw_rows: array<u32, 256>;

fn draw_words(t: u32, stream: u32) -> vec4<u32> {
    let step = counter[d.counter_offset];
    return philox4x32_10(vec4<u32>(t, stream, step, 0u), vec2<u32>(d.seed_lo, d.seed_hi));
}

// The dataset row of batch row r (random_index's output r).
fn draw_row_index(r: u32) -> u32 {
    return mulhi(draw_words(r / 4u, d.index_stream)[r % 4u], d.bound);
}

// Element e = r·cols + c of the batch, as the bits of an f32.
fn draw_element(row: u32, c: u32) -> u32 {
    if (d.format == 0u) {
        return draw_src[d.src_off + row * d.cols + c];
    }
    let byte_index = row * d.cols + c;
    let word = draw_src[d.src_off + byte_index / 4u];
    let byte = (word >> (8u * (byte_index % 4u))) & 0xffu;
    return bitcast<u32>((f32(byte) - d.center) * d.scale);
}

fn draw_gather(g: u32, lane: u32) {
    let total = d.rows * d.cols;
    let first = 256u * g;
    let first_row = first / d.cols;
    let span = (min(first + 256u, total) - 1u) / d.cols - first_row + 1u;
    if (lane < span) {
        draw_rows[lane] = draw_row_index(first_row + lane);
    }
    workgroupBarrier();
    let e = first + lane;
    if (e < total) {
        let r = e / d.cols;
        draw_dst[d.dst_off + e] = draw_element(draw_rows[r - first_row], e % d.cols);
    }
}

fn draw_random(t: u32) {
    let index_blocks = (d.rows + 3u) / 4u;
    if (t < index_blocks) {
        let w = draw_words(t, d.index_stream);
        for (var i = 0u; i < min(4u, d.rows - 4u * t); i++) {
            draw_indices[d.idx_off + 4u * t + i] = mulhi(w[i], d.bound);
        }
        return;
    }
    let b = t - index_blocks;
    let noise_blocks = (d.noise_len + 3u) / 4u;
    if (b < noise_blocks) {
        let w = draw_words(b, d.noise_stream);
        draw_normals(w, d.noise_off + 4u * b, d.noise_len - 4u * b);
        return;
    }
    let c = b - noise_blocks;
    if (4u * c >= d.more_len) {
        return;
    }
    let key = vec2<u32>(d.more_seed_lo, d.more_seed_hi);
    let step = draw_counter2[d.more_counter_offset];
    let w = philox4x32_10(vec4<u32>(c, d.more_stream, step, 0u), key);
    draw_normals(w, d.more_off + 4u * c, d.more_len - 4u * c);
}

// Four normals from one Philox block (Box–Muller on its two word pairs), the
// first `left` of them written from noise[at] on.
fn draw_normals(w: vec4<u32>, at: u32, left: u32) {
    let v = vec4<f32>(box_muller(w.x, w.y), box_muller(w.z, w.w));
    for (var i = 0u; i < min(4u, left); i++) {
        draw_noise[at + i] = v[i];
    }
}

@compute @workgroup_size(256)
fn draw_batch(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
) {
    d = d_seeds[wid.z];
    let g = wid.y * nwg.x + wid.x;
    if (g < d.gather_groups) {
        draw_gather(g, lid.x);
    } else {
        draw_random((g - d.gather_groups) * 256u + lid.x);
    }
}
