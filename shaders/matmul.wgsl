// matmul.wgsl: tiled matrix product with a fused epilogue (bias + activation
// forward, or an activation's derivative backward) and optional row sums of A.
//
// Math
//   S[m, n] = Σ_k A(m, k) · B(k, n)                        for m < M, n < N
//   C[m, n] = epilogue(S[m, n]):
//     mode 0  act(S)                     (no bias)
//     mode 1  act(S + aux[n])            (aux = bias)
//     mode 2  S · act'(aux[m, n])        (aux = y = act(z) of the layer below,
//                                         laid out as C: dz = dx ⊙ act'(y))
//   with has_rows = 1 also R[m] = Σ_k A(m, k), written by the workgroups of
//   the first column tile (wid.x = 0), each summing its rows in a fixed order
//   (no atomics: the same bits every run).
// A and B are read through strides, so one kernel serves the three
// products a dense layer y = act(x·Wᵀ + b) needs (W is [out, in], as in nn.Linear):
//   forward  y  = act(x·Wᵀ + b)   A = x  [M,K] (a_rs=K, a_cs=1)   B(k,n) = W[n,k]  (b_rs=1, b_cs=K)
//   input    dx = dz·W            A = dz [M,N'] (a_rs=N', a_cs=1)  B(k,n) = W[k,n]  (b_rs=N, b_cs=1)
//            (mode 2 turns dx into the layer below's dz in the same dispatch)
//   weight   dW = dzᵀ·x           A(m,k) = dz[k,m] (a_rs=1, a_cs=M) B(k,n) = x[k,n] (b_rs=N, b_cs=1)
//            (has_rows = 1 gives the bias gradient db[m] = Σ_k dz[k,m] = R[m])
// act ∈ {0 identity, 1 relu, 2 leaky_relu(slope), 3 tanh, 4 sigmoid}; the same
// definitions (and derivatives through the output) as activation.wgsl
// (repeated here because WGSL has no includes).
//
// Buffers (f32, element offsets in the uniform)
//   binding 0  uniform Params
//   binding 1  a     read         A(m,k) = a[a_off + m·a_rs + k·a_cs]
//   binding 2  b     read         B(k,n) = b[b_off + k·b_rs + n·b_cs]
//   binding 3  aux   read         mode 1: bias aux[aux_off + n]; mode 2: y aux[aux_off + m·N + n]
//                                 (mode 0 never reads it)
//   binding 4  c     read_write   C row-major: c[c_off + m·N + n];
//                                 R (has_rows = 1): c[rows_off + m], in C's buffer
//
// Dispatch
//   workgroup 16×16 threads computes a 64×64 tile of C; each thread a 4×4 block
//   at rows ty + 16i, cols tx + 16j (strided, so stores coalesce);
//   grid (ceil(N/64), ceil(M/64), 1). K is walked in slabs of 16 staged in
//   workgroup memory; out-of-range elements load as zero, so any M, N, K works.
//   The 4×4 accumulators are four vec4 registers, never an indexed local array:
//   NVIDIA's Vulkan compiler spills dynamically indexed arrays to local memory,
//   which measured 28× slower on an H100 (examples/matmul_study.rs).

// The first 14 words keep the layout of examples/matmul_naive.wgsl
// (mode 0/1 is its has_bias). stretch: split launches (the 128-tile kernels);
// a_scale: the power of two matmul_coop.wgsl scales A by (the f32 kernels
// ignore it).
struct Params {
    M: u32, N: u32, K: u32,
    a_off: u32, a_rs: u32, a_cs: u32,
    b_off: u32, b_rs: u32, b_cs: u32,
    c_off: u32, aux_off: u32, mode: u32,
    act: u32, slope: f32, has_rows: u32, rows_off: u32,
    stretch: u32, a_scale: f32, _s1: u32, _s2: u32,
}

// Seed-batched plans (src/plan/seeds.rs): a launch can run the same op for
// up to MAX_SEEDS independent GANs, one uniform block each (their offsets
// into the stacked buffers). SEEDS (a pipeline constant, 1 unless batched)
// is how many: workgroup z = split·SEEDS + seed, and each entry point first
// takes its seed's block.
const MAX_SEEDS: u32 = 64u;
override SEEDS: u32 = 1u;
var<private> seed: u32;
@group(0) @binding(0) var<uniform> p_seeds: array<Params, MAX_SEEDS>;
var<private> p: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read> aux: array<f32>;
@group(0) @binding(4) var<storage, read_write> c: array<f32>;

const TILE: u32 = 64u;
const SLAB: u32 = 16u;

var<workgroup> a_tile: array<f32, 1024>; // [SLAB][TILE]: a_tile[k·64 + m]
var<workgroup> b_tile: array<f32, 1024>; // [SLAB][TILE]: b_tile[k·64 + n]

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

fn activate(x: f32, act: u32, slope: f32) -> f32 {
    switch act {
        case 1u: { return max(x, 0.0); }
        case 2u: { return select(slope * x, x, x > 0.0); }
        case 3u: { return accurate_tanh(x); }
        case 4u: { return 1.0 / (1.0 + exp(-x)); }
        default: { return x; }
    }
}

// act'(z) written through the output y = act(z), as activation.wgsl's.
fn derivative_from_output(y: f32, act: u32, slope: f32) -> f32 {
    switch act {
        case 1u: { return select(0.0, 1.0, y > 0.0); }
        case 2u: { return select(slope, 1.0, y > 0.0); }
        case 3u: { return (1.0 - y) * (1.0 + y); }
        case 4u: { return y * (1.0 - y); }
        default: { return 1.0; }
    }
}

// C[row, col] from the accumulated S[row, col] (modes in the header); row, col in range.
fn store_c(row: u32, col: u32, v: f32) {
    let at = row * p.N + col;
    if (p.mode == 2u) {
        c[p.c_off + at] = v * derivative_from_output(aux[p.aux_off + at], p.act, p.slope);
        return;
    }
    var s = v;
    if (p.mode == 1u) {
        s += aux[p.aux_off + col];
    }
    c[p.c_off + at] = activate(s, p.act, p.slope);
}

// Whether this workgroup sums the rows of A (the first column tile, when asked).
fn sums_rows(wid: vec3<u32>) -> bool {
    return p.has_rows == 1u && wid.x == 0u;
}

@compute @workgroup_size(16, 16)
fn matmul_bias_act(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    p = p_seeds[wid.z % SEEDS];
    let tid = lid.y * 16u + lid.x;
    let m0 = wid.y * TILE;
    let n0 = wid.x * TILE;

    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);
    // Row sums of A: thread tid < 64 sums row m0 + tid, slab by slab in k order.
    let row_sum = sums_rows(wid) && tid < TILE;
    var rsum = 0.0;

    for (var k0 = 0u; k0 < p.K; k0 += SLAB) {
        // Stage A(m0.., k0..) and B(k0.., n0..): 1024 elements each, 4 per thread.
        for (var r = 0u; r < 4u; r++) {
            let e = tid + r * 256u;
            // A: consecutive threads walk k first (contiguous for row-major x).
            let am = e / SLAB;
            let ak = e % SLAB;
            let gm = m0 + am;
            let gk = k0 + ak;
            var av = 0.0;
            if (gm < p.M && gk < p.K) {
                av = a[p.a_off + gm * p.a_rs + gk * p.a_cs];
            }
            a_tile[ak * TILE + am] = av;
            // B: consecutive threads walk n first.
            let bn = e % TILE;
            let bk = e / TILE;
            let gn = n0 + bn;
            let gk2 = k0 + bk;
            var bv = 0.0;
            if (gn < p.N && gk2 < p.K) {
                bv = b[p.b_off + gk2 * p.b_rs + gn * p.b_cs];
            }
            b_tile[bk * TILE + bn] = bv;
        }
        workgroupBarrier();

        for (var kk = 0u; kk < SLAB; kk++) {
            let base = kk * TILE;
            let bv = vec4<f32>(b_tile[base + lid.x], b_tile[base + lid.x + 16u],
                               b_tile[base + lid.x + 32u], b_tile[base + lid.x + 48u]);
            acc0 += a_tile[base + lid.y] * bv;
            acc1 += a_tile[base + lid.y + 16u] * bv;
            acc2 += a_tile[base + lid.y + 32u] * bv;
            acc3 += a_tile[base + lid.y + 48u] * bv;
        }
        if (row_sum) {
            for (var kk = 0u; kk < SLAB; kk++) {
                rsum += a_tile[kk * TILE + tid];
            }
        }
        workgroupBarrier();
    }

    if (row_sum && m0 + tid < p.M) {
        c[p.rows_off + m0 + tid] = rsum;
    }
    let acc = array<vec4<f32>, 4>(acc0, acc1, acc2, acc3);
    for (var i = 0u; i < 4u; i++) {
        let row = m0 + lid.y + 16u * i;
        if (row >= p.M) {
            continue;
        }
        for (var j = 0u; j < 4u; j++) {
            let col = n0 + lid.x + 16u * j;
            if (col >= p.N) {
                continue;
            }
            store_c(row, col, acc[i][j]);
        }
    }
}

// ---------------------------------------------------------------------------
// matmul_bias_act_128: the same product for large outputs.
//   workgroup 16×16 threads computes a 128×128 tile of C; each thread an 8×8
//   block at rows ty + 16i, cols tx + 16j (i, j < 8), held in sixteen vec4
//   registers (row i: acc_i_lo = cols j 0..3, acc_i_hi = cols j 4..7);
//   grid (ceil(N/128), ceil(M/128), 1); K in slabs of 16 through 16 KiB of
//   workgroup memory (WebGPU's default limit). Each k step reads 8 + 8 values
//   from workgroup memory for 64 multiply-adds, against 8 for 16 in the 64-tile
//   kernel. Chosen by the lowering when the output has enough 128-tiles to fill
//   the GPU (see `MATMUL_BIG_MIN_TILES` in src/gpu/lowering.rs). Row sums:
//   thread tid < 128 of a first-column-tile workgroup sums row m0 + tid.
//   Split (stretch > 0, grid z = splits; a weight gradient's long K over a
//   small output): workgroup z walks only k in [z·stretch, (z + 1)·stretch)
//   and writes its raw sums, no epilogue, to split z's partials
//   c[c_off + z·M·N + m·N + n] and row sums to c[rows_off + z·M + m];
//   sum_splits.wgsl adds the splits up.

const BIG: u32 = 128u;

var<workgroup> a_big: array<f32, 2048>; // [SLAB][BIG]: a_big[k·128 + m]
var<workgroup> b_big: array<f32, 2048>; // [SLAB][BIG]: b_big[k·128 + n]

// S[row, col]: raw into split `split`'s partials in a split launch
// (stretch > 0), else through the epilogue; row, col in range.
fn store_split_or_c(split: u32, row: u32, col: u32, v: f32) {
    if (p.stretch > 0u) {
        c[p.c_off + split * p.M * p.N + row * p.N + col] = v;
    } else {
        store_c(row, col, v);
    }
}

fn store_row(split: u32, row: u32, n0: u32, tx: u32, lo: vec4<f32>, hi: vec4<f32>) {
    if (row >= p.M) {
        return;
    }
    let vals = array<f32, 8>(lo.x, lo.y, lo.z, lo.w, hi.x, hi.y, hi.z, hi.w);
    for (var j = 0u; j < 8u; j++) {
        let col = n0 + tx + 16u * j;
        if (col < p.N) {
            store_split_or_c(split, row, col, vals[j]);
        }
    }
}

@compute @workgroup_size(16, 16)
fn matmul_bias_act_128(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    p = p_seeds[wid.z % SEEDS];
    let tid = lid.y * 16u + lid.x;
    let m0 = wid.y * BIG;
    let n0 = wid.x * BIG;
    let tx = lid.x;
    let ty = lid.y;
    var acc0_lo = vec4<f32>(0.0);
    var acc0_hi = vec4<f32>(0.0);
    var acc1_lo = vec4<f32>(0.0);
    var acc1_hi = vec4<f32>(0.0);
    var acc2_lo = vec4<f32>(0.0);
    var acc2_hi = vec4<f32>(0.0);
    var acc3_lo = vec4<f32>(0.0);
    var acc3_hi = vec4<f32>(0.0);
    var acc4_lo = vec4<f32>(0.0);
    var acc4_hi = vec4<f32>(0.0);
    var acc5_lo = vec4<f32>(0.0);
    var acc5_hi = vec4<f32>(0.0);
    var acc6_lo = vec4<f32>(0.0);
    var acc6_hi = vec4<f32>(0.0);
    var acc7_lo = vec4<f32>(0.0);
    var acc7_hi = vec4<f32>(0.0);
    // Row sums of A: thread tid < 128 sums row m0 + tid, slab by slab in k order.
    let row_sum = sums_rows(wid) && tid < BIG;
    var rsum = 0.0;
    // All of K, or split z's stretch of it.
    let split = wid.z / SEEDS;
    let k_begin = select(0u, min(split * p.stretch, p.K), p.stretch > 0u);
    let k_end = select(p.K, min(k_begin + p.stretch, p.K), p.stretch > 0u);

    for (var k0 = k_begin; k0 < k_end; k0 += SLAB) {
        // Stage A(m0.., k0..) and B(k0.., n0..): 2048 elements each, 8 per thread.
        for (var r = 0u; r < 8u; r++) {
            let e = tid + r * 256u;
            let am = e / SLAB;
            let ak = e % SLAB;
            let gm = m0 + am;
            let gk = k0 + ak;
            var av = 0.0;
            if (gm < p.M && gk < k_end) {
                av = a[p.a_off + gm * p.a_rs + gk * p.a_cs];
            }
            a_big[ak * BIG + am] = av;
            let bn = e % BIG;
            let bk = e / BIG;
            let gn = n0 + bn;
            let gk2 = k0 + bk;
            var bv = 0.0;
            if (gn < p.N && gk2 < k_end) {
                bv = b[p.b_off + gk2 * p.b_rs + gn * p.b_cs];
            }
            b_big[bk * BIG + bn] = bv;
        }
        workgroupBarrier();

        for (var kk = 0u; kk < SLAB; kk++) {
            let base = kk * BIG;
            let b_lo = vec4<f32>(b_big[base + tx], b_big[base + tx + 16u],
                                 b_big[base + tx + 32u], b_big[base + tx + 48u]);
            let b_hi = vec4<f32>(b_big[base + tx + 64u], b_big[base + tx + 80u],
                                 b_big[base + tx + 96u], b_big[base + tx + 112u]);
            let a0 = a_big[base + ty + 0u];
            let a1 = a_big[base + ty + 16u];
            let a2 = a_big[base + ty + 32u];
            let a3 = a_big[base + ty + 48u];
            let a4 = a_big[base + ty + 64u];
            let a5 = a_big[base + ty + 80u];
            let a6 = a_big[base + ty + 96u];
            let a7 = a_big[base + ty + 112u];
            acc0_lo += a0 * b_lo;
            acc0_hi += a0 * b_hi;
            acc1_lo += a1 * b_lo;
            acc1_hi += a1 * b_hi;
            acc2_lo += a2 * b_lo;
            acc2_hi += a2 * b_hi;
            acc3_lo += a3 * b_lo;
            acc3_hi += a3 * b_hi;
            acc4_lo += a4 * b_lo;
            acc4_hi += a4 * b_hi;
            acc5_lo += a5 * b_lo;
            acc5_hi += a5 * b_hi;
            acc6_lo += a6 * b_lo;
            acc6_hi += a6 * b_hi;
            acc7_lo += a7 * b_lo;
            acc7_hi += a7 * b_hi;
        }
        if (row_sum) {
            for (var kk = 0u; kk < SLAB; kk++) {
                rsum += a_big[kk * BIG + tid];
            }
        }
        workgroupBarrier();
    }

    if (row_sum && m0 + tid < p.M) {
        c[p.rows_off + split * p.M + m0 + tid] = rsum;
    }
    store_row(split, m0 + ty + 0u, n0, tx, acc0_lo, acc0_hi);
    store_row(split, m0 + ty + 16u, n0, tx, acc1_lo, acc1_hi);
    store_row(split, m0 + ty + 32u, n0, tx, acc2_lo, acc2_hi);
    store_row(split, m0 + ty + 48u, n0, tx, acc3_lo, acc3_hi);
    store_row(split, m0 + ty + 64u, n0, tx, acc4_lo, acc4_hi);
    store_row(split, m0 + ty + 80u, n0, tx, acc5_lo, acc5_hi);
    store_row(split, m0 + ty + 96u, n0, tx, acc6_lo, acc6_hi);
    store_row(split, m0 + ty + 112u, n0, tx, acc7_lo, acc7_hi);
}

// ---------------------------------------------------------------------------
// matmul_bias_act_128_prefetch: matmul_bias_act_128 restaged as the 128-tile
// convolutions (conv2d.wgsl's implicit_gemm_128), a rung of the matmul ladder
// (examples/matmul_study.rs) until measured against it.
//   workgroup 16×16 threads computes a 128×128 tile; thread (tx, ty) the 8×8
//   block at rows ty·4 + {0..3} and 64 + ty·4 + {0..3}, cols tx·4 + {0..3}
//   and 64 + tx·4 + {0..3}, in sixteen vec4 registers: each k step reads two
//   vec4 of A and two of B from workgroup memory for 64 multiply-adds.
//   Staging: K in slabs of 16, A and B as [16][32] vec4 (k-major); thread t
//   stages the vec4 of rows (and columns) 4q..4q+3, q = t % 32, at slab
//   k = t / 32 and t / 32 + 8, so a warp writes 32 consecutive vec4. The
//   next slab is fetched into registers while the current one is multiplied.
//   Split launches (stretch > 0) as matmul_bias_act_128. Row sums: thread
//   tid < 128 of a first-column-tile workgroup sums row m0 + tid.
//   grid (ceil(N/128), ceil(M/128), splits or 1).

var<workgroup> a_pre: array<vec4<f32>, 512>; // [SLAB][32]: element (k, m) at [k·32 + m/4][m%4]
var<workgroup> b_pre: array<vec4<f32>, 512>; // [SLAB][32]: element (k, n) at [k·32 + n/4][n%4]

// A(m..m+3, k) and B(k, n..n+3), zero outside the product or past k_end.
fn pre_a(m: u32, k: u32, k_end: u32) -> vec4<f32> {
    var v = vec4<f32>(0.0);
    if (k >= k_end) {
        return v;
    }
    let base = p.a_off + k * p.a_cs;
    if (m < p.M) { v.x = a[base + m * p.a_rs]; }
    if (m + 1u < p.M) { v.y = a[base + (m + 1u) * p.a_rs]; }
    if (m + 2u < p.M) { v.z = a[base + (m + 2u) * p.a_rs]; }
    if (m + 3u < p.M) { v.w = a[base + (m + 3u) * p.a_rs]; }
    return v;
}

fn pre_b(n: u32, k: u32, k_end: u32) -> vec4<f32> {
    var v = vec4<f32>(0.0);
    if (k >= k_end) {
        return v;
    }
    let base = p.b_off + k * p.b_rs;
    if (n < p.N) { v.x = b[base + n * p.b_cs]; }
    if (n + 1u < p.N) { v.y = b[base + (n + 1u) * p.b_cs]; }
    if (n + 2u < p.N) { v.z = b[base + (n + 2u) * p.b_cs]; }
    if (n + 3u < p.N) { v.w = b[base + (n + 3u) * p.b_cs]; }
    return v;
}

// One output row's eight columns c0 + {0..3} (lo) and c0 + 64 + {0..3} (hi).
fn pre_store_row(split: u32, row: u32, c0: u32, lo: vec4<f32>, hi: vec4<f32>) {
    if (row >= p.M) {
        return;
    }
    let vals = array<f32, 8>(lo.x, lo.y, lo.z, lo.w, hi.x, hi.y, hi.z, hi.w);
    for (var j = 0u; j < 8u; j++) {
        let col = c0 + (j % 4u) + 64u * (j / 4u);
        if (col < p.N) {
            store_split_or_c(split, row, col, vals[j]);
        }
    }
}

@compute @workgroup_size(16, 16)
fn matmul_bias_act_128_prefetch(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    p = p_seeds[wid.z % SEEDS];
    let tid = lid.y * 16u + lid.x;
    let m0 = wid.y * BIG;
    let n0 = wid.x * BIG;
    let split = wid.z / SEEDS;
    let k_begin = select(0u, min(split * p.stretch, p.K), p.stretch > 0u);
    let k_end = select(p.K, min(k_begin + p.stretch, p.K), p.stretch > 0u);
    let q = tid % 32u;
    let k_lane = tid / 32u;
    let m = m0 + 4u * q;
    let n = n0 + 4u * q;
    let row_sum = sums_rows(wid) && tid < BIG;
    var rsum = 0.0;
    var acc0 = vec4<f32>(0.0); var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0); var acc3 = vec4<f32>(0.0);
    var acc4 = vec4<f32>(0.0); var acc5 = vec4<f32>(0.0);
    var acc6 = vec4<f32>(0.0); var acc7 = vec4<f32>(0.0);
    var acc8 = vec4<f32>(0.0); var acc9 = vec4<f32>(0.0);
    var acc10 = vec4<f32>(0.0); var acc11 = vec4<f32>(0.0);
    var acc12 = vec4<f32>(0.0); var acc13 = vec4<f32>(0.0);
    var acc14 = vec4<f32>(0.0); var acc15 = vec4<f32>(0.0);
    var a_lo = pre_a(m, k_begin + k_lane, k_end);
    var a_hi = pre_a(m, k_begin + k_lane + 8u, k_end);
    var b_lo = pre_b(n, k_begin + k_lane, k_end);
    var b_hi = pre_b(n, k_begin + k_lane + 8u, k_end);
    for (var k0 = k_begin; k0 < k_end; k0 += SLAB) {
        a_pre[k_lane * 32u + q] = a_lo;
        a_pre[(k_lane + 8u) * 32u + q] = a_hi;
        b_pre[k_lane * 32u + q] = b_lo;
        b_pre[(k_lane + 8u) * 32u + q] = b_hi;
        workgroupBarrier();
        a_lo = pre_a(m, k0 + SLAB + k_lane, k_end);
        a_hi = pre_a(m, k0 + SLAB + k_lane + 8u, k_end);
        b_lo = pre_b(n, k0 + SLAB + k_lane, k_end);
        b_hi = pre_b(n, k0 + SLAB + k_lane + 8u, k_end);
        for (var kk = 0u; kk < SLAB; kk++) {
            let lo_a = a_pre[kk * 32u + lid.y];
            let hi_a = a_pre[kk * 32u + 16u + lid.y];
            let lo_b = b_pre[kk * 32u + lid.x];
            let hi_b = b_pre[kk * 32u + 16u + lid.x];
            acc0 += lo_a.x * lo_b; acc1 += lo_a.x * hi_b;
            acc2 += lo_a.y * lo_b; acc3 += lo_a.y * hi_b;
            acc4 += lo_a.z * lo_b; acc5 += lo_a.z * hi_b;
            acc6 += lo_a.w * lo_b; acc7 += lo_a.w * hi_b;
            acc8 += hi_a.x * lo_b; acc9 += hi_a.x * hi_b;
            acc10 += hi_a.y * lo_b; acc11 += hi_a.y * hi_b;
            acc12 += hi_a.z * lo_b; acc13 += hi_a.z * hi_b;
            acc14 += hi_a.w * lo_b; acc15 += hi_a.w * hi_b;
        }
        if (row_sum) {
            for (var kk = 0u; kk < SLAB; kk++) {
                rsum += a_pre[kk * 32u + tid / 4u][tid % 4u];
            }
        }
        workgroupBarrier();
    }
    if (row_sum && m0 + tid < p.M) {
        c[p.rows_off + split * p.M + m0 + tid] = rsum;
    }
    let r0 = m0 + lid.y * 4u;
    let c0 = n0 + lid.x * 4u;
    pre_store_row(split, r0, c0, acc0, acc1);
    pre_store_row(split, r0 + 1u, c0, acc2, acc3);
    pre_store_row(split, r0 + 2u, c0, acc4, acc5);
    pre_store_row(split, r0 + 3u, c0, acc6, acc7);
    pre_store_row(split, r0 + 64u, c0, acc8, acc9);
    pre_store_row(split, r0 + 65u, c0, acc10, acc11);
    pre_store_row(split, r0 + 66u, c0, acc12, acc13);
    pre_store_row(split, r0 + 67u, c0, acc14, acc15);
}

// ---------------------------------------------------------------------------
// matmul_bias_act_splitk: the same product for small outputs with a long K
// (a dense layer's forward at a small batch, e.g. 64×784 → 128).
//   A workgroup of 256 threads computes a 32×32 tile of C as 4 K-groups of 64
//   threads. K-group g takes the slabs k0 = (4s + g)·16, so the four walk K
//   side by side, each a quarter as far; each thread holds a 4×4 block (rows
//   ty + 8i, cols tx + 8j, tx, ty < 8) in four vec4 registers. At the end the
//   four partial tiles meet in workgroup memory (in a fixed order, so results
//   are deterministic) and the epilogue runs; the K-groups' row sums of A
//   meet the same way, through the first 128 words of that memory.
//   grid (ceil(N/32), ceil(M/32), 1); 16 KiB of workgroup memory, reused:
//   four [16][32] A and B slabs while walking K, then four 32×32 partials.
//   Chosen by the lowering when the 64-tile kernel would launch few workgroups
//   over a long K (see `matmul_entry` in src/gpu/lowering.rs).

const SK_TILE: u32 = 32u;
const SK_GROUPS: u32 = 4u;

// Walking K: group g's A slab at [g·1024, g·1024 + 512) as a[k·32 + m], its B
// slab at [g·1024 + 512, (g+1)·1024) as b[k·32 + n]. Reducing: partial tile g at
// [g·1024, (g+1)·1024) as [row·32 + col].
var<workgroup> sk_mem: array<f32, 4096>;

fn sk_store(base: u32, v: vec4<f32>) {
    sk_mem[base] = v.x;
    sk_mem[base + 8u] = v.y;
    sk_mem[base + 16u] = v.z;
    sk_mem[base + 24u] = v.w;
}

@compute @workgroup_size(256)
fn matmul_bias_act_splitk(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) tid: u32) {
    p = p_seeds[wid.z % SEEDS];
    let g = tid / 64u;
    let t = tid % 64u;
    let tx = t % 8u;
    let ty = t / 8u;
    let m0 = wid.y * SK_TILE;
    let n0 = wid.x * SK_TILE;
    let a_base = g * 1024u;
    let b_base = g * 1024u + 512u;

    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);
    // Row sums of A: thread t < 32 of K-group g sums row m0 + t over g's slabs.
    let row_sum = sums_rows(wid) && t < SK_TILE;
    var rsum = 0.0;

    for (var k0 = 0u; k0 < p.K; k0 += SK_GROUPS * SLAB) {
        let kg = k0 + g * SLAB;
        // Stage this group's A(m0.., kg..) and B(kg.., n0..): 512 elements each, 8 per thread.
        for (var r = 0u; r < 8u; r++) {
            let e = t + r * 64u;
            let am = e / SLAB;
            let ak = e % SLAB;
            var av = 0.0;
            if (m0 + am < p.M && kg + ak < p.K) {
                av = a[p.a_off + (m0 + am) * p.a_rs + (kg + ak) * p.a_cs];
            }
            sk_mem[a_base + ak * SK_TILE + am] = av;
            let bn = e % SK_TILE;
            let bk = e / SK_TILE;
            var bv = 0.0;
            if (n0 + bn < p.N && kg + bk < p.K) {
                bv = b[p.b_off + (kg + bk) * p.b_rs + (n0 + bn) * p.b_cs];
            }
            sk_mem[b_base + bk * SK_TILE + bn] = bv;
        }
        workgroupBarrier();
        for (var kk = 0u; kk < SLAB; kk++) {
            let ab = a_base + kk * SK_TILE + ty;
            let bb = b_base + kk * SK_TILE + tx;
            let bv = vec4<f32>(sk_mem[bb], sk_mem[bb + 8u], sk_mem[bb + 16u], sk_mem[bb + 24u]);
            acc0 += sk_mem[ab] * bv;
            acc1 += sk_mem[ab + 8u] * bv;
            acc2 += sk_mem[ab + 16u] * bv;
            acc3 += sk_mem[ab + 24u] * bv;
        }
        if (row_sum) {
            for (var kk = 0u; kk < SLAB; kk++) {
                rsum += sk_mem[a_base + kk * SK_TILE + t];
            }
        }
        workgroupBarrier();
    }

    // Partial tiles into workgroup memory (the slabs are no longer needed).
    let row0 = g * 1024u + ty * SK_TILE + tx;
    sk_store(row0, acc0);
    sk_store(row0 + 8u * SK_TILE, acc1);
    sk_store(row0 + 16u * SK_TILE, acc2);
    sk_store(row0 + 24u * SK_TILE, acc3);
    workgroupBarrier();
    for (var q = 0u; q < 4u; q++) {
        let o = tid + 256u * q;
        let row = m0 + o / SK_TILE;
        let col = n0 + o % SK_TILE;
        if (row < p.M && col < p.N) {
            let v = ((sk_mem[o] + sk_mem[o + 1024u]) + sk_mem[o + 2048u]) + sk_mem[o + 3072u];
            store_c(row, col, v);
        }
    }
    // The four K-groups' row sums meet in workgroup memory in the same fixed order.
    if (sums_rows(wid)) {
        workgroupBarrier();
        if (t < SK_TILE) {
            sk_mem[g * SK_TILE + t] = rsum;
        }
        workgroupBarrier();
        if (tid < SK_TILE && m0 + tid < p.M) {
            let r = ((sk_mem[tid] + sk_mem[tid + 32u]) + sk_mem[tid + 64u]) + sk_mem[tid + 96u];
            c[p.rows_off + m0 + tid] = r;
        }
    }
}

// ---------------------------------------------------------------------------
// matmul_bias_act_small: the same product for small outputs (a batch of 64–512
// rows through one of the seed model's layers), where the time is the latency
// of walking K rather than the arithmetic.
//   A workgroup of 256 threads computes a 16×16 tile of C as 16 K-groups of 16
//   threads. K-group g walks its own contiguous stretch of K, [g·L, (g+1)·L)
//   with L = ⌈K/16⌉, four k per iteration; thread q of the group holds the 4×4
//   block at rows 4·(q/4).., cols 4·(q%4).. of the tile in four vec4 registers.
//   A and B are read straight from global memory through the cache: there is
//   no workgroup-memory staging and so no barrier inside the walk, and each
//   thread's walk is a sixteenth of K. Rows and columns past the edge read a
//   clamped (valid) index and are never stored, so any M, N, K works.
//   The 16 partial tiles then meet in workgroup memory, and thread t sums
//   output (t/16, t%16) over g = 0, 1, …, 15 in that order (the same bits
//   every run), then runs the epilogue. Row sums of A (has_rows): every thread
//   sums its four rows over its stretch; the column-0 threads' sums meet the
//   same way.
//   grid (ceil(N/16), ceil(M/16), 1); 17 KiB of workgroup memory.
//   Chosen by the lowering when larger tiles would leave most SMs idle (see
//   `matmul_entry` in src/gpu/lowering.rs).

const SMALL_TILE: u32 = 16u;
const SMALL_SIDE: u32 = SMALL_TILE / 4u;                     // 4×4 blocks per tile side
const SMALL_GROUPS: u32 = 256u / (SMALL_SIDE * SMALL_SIDE);  // K-groups per workgroup
const SMALL_OUTS: u32 = SMALL_TILE * SMALL_TILE;

var<workgroup> small_part: array<f32, 4096>; // [g·SMALL_OUTS + row·SMALL_TILE + col]
var<workgroup> small_rows: array<f32, 512>;  // [g·SMALL_TILE + row]

// A thread's 4×4 block of partial sums (one vec4 per row) and its rows' sums of A.
struct Block {
    r0: vec4<f32>,
    r1: vec4<f32>,
    r2: vec4<f32>,
    r3: vec4<f32>,
    rows: vec4<f32>,
}

// A(rows, k) and B(k, cols) for one k: `ar` are the four rows' offsets into a,
// `bc` the four columns' offsets into b.
struct Pair {
    av: vec4<f32>,
    bv: vec4<f32>,
}

fn small_load(ar: vec4<u32>, bc: vec4<u32>, k: u32) -> Pair {
    let ka = k * p.a_cs;
    let kb = k * p.b_rs;
    return Pair(vec4<f32>(a[ar.x + ka], a[ar.y + ka], a[ar.z + ka], a[ar.w + ka]),
                vec4<f32>(b[bc.x + kb], b[bc.y + kb], b[bc.z + kb], b[bc.w + kb]));
}

fn small_fma(s: Block, v: Pair) -> Block {
    return Block(s.r0 + v.av.x * v.bv, s.r1 + v.av.y * v.bv, s.r2 + v.av.z * v.bv,
                 s.r3 + v.av.w * v.bv, s.rows + v.av);
}

fn small_put(base: u32, v: vec4<f32>) {
    small_part[base] = v.x;
    small_part[base + 1u] = v.y;
    small_part[base + 2u] = v.z;
    small_part[base + 3u] = v.w;
}

// The K-groups' blocks meet: K-group g's thread with the block at rows br..,
// columns bcol.. of the tile puts its partial sums (and, in column block 0,
// its rows' sums of A) in workgroup memory; after the barrier any thread may
// read the totals. Shared by the small kernels and the weight-gradient group.
fn small_meet(g: u32, br: u32, bcol: u32, s: Block) {
    let base = g * SMALL_OUTS + br * SMALL_TILE + bcol;
    small_put(base, s.r0);
    small_put(base + SMALL_TILE, s.r1);
    small_put(base + 2u * SMALL_TILE, s.r2);
    small_put(base + 3u * SMALL_TILE, s.r3);
    if (bcol == 0u) {
        let r = g * SMALL_TILE + br;
        small_rows[r] = s.rows.x;
        small_rows[r + 1u] = s.rows.y;
        small_rows[r + 2u] = s.rows.z;
        small_rows[r + 3u] = s.rows.w;
    }
    workgroupBarrier();
}

// Output t (row t/16, column t%16) of the tile: the K-groups' partials summed
// in order g = 0, 1, … (the same bits every run).
fn small_total(t: u32) -> f32 {
    var v = 0.0;
    for (var h = 0u; h < SMALL_GROUPS; h++) {
        v += small_part[h * SMALL_OUTS + t];
    }
    return v;
}

// Row r of the tile's sums of A, over the K-groups in the same order.
fn small_row_total(r: u32) -> f32 {
    var v = 0.0;
    for (var h = 0u; h < SMALL_GROUPS; h++) {
        v += small_rows[h * SMALL_TILE + r];
    }
    return v;
}

// The tile's outputs and row sums through the epilogue of the header.
fn small_store(wid: vec3<u32>, tid: u32) {
    let row = wid.y * SMALL_TILE + tid / SMALL_TILE;
    let col = wid.x * SMALL_TILE + tid % SMALL_TILE;
    if (tid < SMALL_OUTS && row < p.M && col < p.N) {
        store_c(row, col, small_total(tid));
    }
    let sum_row = wid.y * SMALL_TILE + tid;
    if (sums_rows(wid) && tid < SMALL_TILE && sum_row < p.M) {
        c[p.rows_off + sum_row] = small_row_total(tid);
    }
}

@compute @workgroup_size(256)
fn matmul_bias_act_small(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) tid: u32) {
    p = p_seeds[wid.z % SEEDS];
    let g = tid / (SMALL_SIDE * SMALL_SIDE);
    let q = tid % (SMALL_SIDE * SMALL_SIDE);
    let br = (q / SMALL_SIDE) * 4u; // the block's first row and column within the tile
    let bcol = (q % SMALL_SIDE) * 4u;
    let lanes = vec4<u32>(0u, 1u, 2u, 3u);
    let rows = min(vec4<u32>(wid.y * SMALL_TILE + br) + lanes, vec4<u32>(p.M - 1u));
    let cols = min(vec4<u32>(wid.x * SMALL_TILE + bcol) + lanes, vec4<u32>(p.N - 1u));
    let ar = vec4<u32>(p.a_off) + rows * p.a_rs;
    let bc = vec4<u32>(p.b_off) + cols * p.b_cs;

    let stretch = (p.K + SMALL_GROUPS - 1u) / SMALL_GROUPS;
    let k_begin = min(g * stretch, p.K);
    let k_end = min(k_begin + stretch, p.K);
    var s = Block(vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0));
    var k = k_begin;
    // Four k per iteration, every load issued before the first multiply-add:
    // 32 independent loads in flight per thread hide the memory latency.
    for (; k + 4u <= k_end; k += 4u) {
        let v0 = small_load(ar, bc, k);
        let v1 = small_load(ar, bc, k + 1u);
        let v2 = small_load(ar, bc, k + 2u);
        let v3 = small_load(ar, bc, k + 3u);
        s = small_fma(small_fma(small_fma(small_fma(s, v0), v1), v2), v3);
    }
    for (; k < k_end; k++) {
        s = small_fma(s, small_load(ar, bc, k));
    }

    small_meet(g, br, bcol, s);
    small_store(wid, tid);
}

// ---------------------------------------------------------------------------
// matmul_bias_act_small_vec4: matmul_bias_act_small with every load a vec4.
//   The same tile, K-groups, partial sums and epilogue; what differs is how a
//   thread reads its 4×4 blocks. Each operand is read as vec4s along the
//   dimension in which it is contiguous, through a4 and b4 (the same buffers
//   as a and b, bound as array<vec4<f32>>):
//     A along k (a_cs = 1: x, dz of the forward and input products): one
//       vec4 per row, A(r, k..k+3);
//     A along m (a_rs = 1: dzᵀ of the weight product): one vec4 per k,
//       A(r..r+3, k);
//     B along k (b_rs = 1: Wᵀ of the forward product): one vec4 per column;
//     B along n (b_cs = 1: W of the input product, x of the weight product):
//       one vec4 per k.
//   Both blocks become mat4x4s whose column j is the vec4 over rows (A) or
//   columns (B) at k + j, so four k cost 8 vec4 loads and one matrix product
//   (64 multiply-adds), against 32 scalar loads in matmul_bias_act_small.
//   The lowering picks this entry only when the vectors are whole: offsets,
//   the strides that step between vectors, and the vector dimension's
//   extent (K, M or N) multiples of 4. Then blocks past the edge of a vector
//   dimension clamp to the last whole vector and are never stored, and each
//   K-group's stretch is a multiple of 4.
//   grid (ceil(N/16), ceil(M/16), 1), as matmul_bias_act_small.

@group(0) @binding(1) var<storage, read> a4: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> b4: array<vec4<f32>>;

// A's block at rows r0..r0+3 (clamped rows `rows`) and k..k+3: column j over rows at k + j.
fn a_block(r0: u32, rows: vec4<u32>, k: u32) -> mat4x4<f32> {
    if (p.a_cs == 1u) {
        let o = (vec4<u32>(p.a_off) + rows * p.a_rs + k) / 4u;
        return transpose(mat4x4<f32>(a4[o.x], a4[o.y], a4[o.z], a4[o.w]));
    }
    let o = (p.a_off + k * p.a_cs + r0) / 4u;
    let step = p.a_cs / 4u;
    return mat4x4<f32>(a4[o], a4[o + step], a4[o + 2u * step], a4[o + 3u * step]);
}

// B's block at k..k+3 and columns c0..c0+3 (clamped columns `cols`): column j over columns at k + j.
fn b_block(c0: u32, cols: vec4<u32>, k: u32) -> mat4x4<f32> {
    if (p.b_rs == 1u) {
        let o = (vec4<u32>(p.b_off) + cols * p.b_cs + k) / 4u;
        return transpose(mat4x4<f32>(b4[o.x], b4[o.y], b4[o.z], b4[o.w]));
    }
    let o = (p.b_off + k * p.b_rs + c0) / 4u;
    let step = p.b_rs / 4u;
    return mat4x4<f32>(b4[o], b4[o + step], b4[o + 2u * step], b4[o + 3u * step]);
}

// The first row (column) of the block that holds r: r itself if the block
// fits, else the last whole block along a vector dimension (any row along
// a scalar one: those use the clamped per-row offsets instead).
fn whole_block_start(r: u32, extent: u32) -> u32 {
    return min(r, max(extent, 4u) - 4u);
}

@compute @workgroup_size(256)
fn matmul_bias_act_small_vec4(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) tid: u32) {
    p = p_seeds[wid.z % SEEDS];
    let g = tid / (SMALL_SIDE * SMALL_SIDE);
    let q = tid % (SMALL_SIDE * SMALL_SIDE);
    let br = (q / SMALL_SIDE) * 4u;
    let bcol = (q % SMALL_SIDE) * 4u;
    let lanes = vec4<u32>(0u, 1u, 2u, 3u);
    let r0 = whole_block_start(wid.y * SMALL_TILE + br, p.M);
    let c0 = whole_block_start(wid.x * SMALL_TILE + bcol, p.N);
    let rows = min(vec4<u32>(wid.y * SMALL_TILE + br) + lanes, vec4<u32>(p.M - 1u));
    let cols = min(vec4<u32>(wid.x * SMALL_TILE + bcol) + lanes, vec4<u32>(p.N - 1u));

    let stretch = ((p.K + SMALL_GROUPS - 1u) / SMALL_GROUPS + 3u) / 4u * 4u;
    let k_begin = min(g * stretch, p.K);
    let k_end = min(k_begin + stretch, p.K);
    var acc = mat4x4<f32>(vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0));
    var row_sums = vec4<f32>(0.0);
    // acc (column c = the vec4 over rows at column c0 + c) += A·Bᵀ over four k.
    for (var k = k_begin; k < k_end; k += 4u) {
        let ab = a_block(r0, rows, k);
        let bb = b_block(c0, cols, k);
        acc += ab * transpose(bb);
        row_sums += ab * vec4<f32>(1.0);
    }

    // The same partial layout as matmul_bias_act_small: [g][row][col].
    let tacc = transpose(acc); // column i = the vec4 over columns at row i
    small_meet(g, br, bcol, Block(tacc[0], tacc[1], tacc[2], tacc[3], row_sums));
    small_store(wid, tid);
}

// ---------------------------------------------------------------------------
// matmul_dw_group: the weight and bias gradients of up to three dense layers
// in one launch (every layer's dW = dzᵀ·x and db = Σ dz, the products of
// the header with mode 0, identity, has_rows = 1 for db).
//   Part q (q < parts) is one product C_q = A_q·B_q as matmul_bias_act_small
//   computes it, on its own operands: A_q from a4 (q = 0), a1 or a2, B_q from
//   b4, b1 or b2, C_q and its row sums in c. The grid is one row of
//   workgroups, the parts' 16×16 tiles one after another: part q owns
//   workgroups [first_tile_q, first_tile_q + tiles_q), row-major over its
//   ⌈N_q/16⌉ columns of tiles. Each workgroup runs the small kernel's body
//   (16 K-groups, partials meeting in a fixed order) for its part: the
//   layers' products run side by side instead of one launch each.
//   Loads: every operand is bound as array<vec4<f32>>. A part with vec4 = 1
//   (the lowering's `whole_vectors`: A = dzᵀ is contiguous along m and B = x
//   along n, so offsets, M, N, K and the strides are multiples of 4) reads a
//   vec4 over its block's rows of A and one over its columns of B per k, as
//   matmul_bias_act_small_vec4's "one vec4 per k" branches; the others read
//   scalars as vector components, x4[i / 4][i % 4].
//
// matmul_dw_group_adam: the same gradients, then one Adam step over them in
//   the same launch (adam.wgsl's adam_advance, whose arithmetic `adam_at`
//   repeats): the plan fuses them only where the parts' dW and db are exactly
//   the update's gradients, so every parameter's gradient is final in the
//   workgroup that wrote it. Gradient element i of c (a weight or a bias) has
//   parameter, m and v at p_off + i − g_off, m_off + i − g_off, v_off + i − g_off.
//     t = step + 1, read once per workgroup before anything else;
//     p ← p − lr_t·wd·p; m ← β1·m + (1 − β1)·g; v ← β2·v + (1 − β2)·g²;
//     p ← p − (lr_t / (1 − β1^t)) · m / (sqrt(v) / sqrt(1 − β2^t) + ε)
//   and, as adam_advance, the last workgroup to count itself in `arrivals`
//   writes step + 1 and resets `arrivals` to 0.
//
// Buffers: binding 0 uniform GroupParams (parts, then per part M, N, K,
//   a_off, a_rs, a_cs, b_off, b_rs, b_cs, c_off, rows_off, has_rows,
//   tiles_x, first_tile, vec4; then GroupAdam, read by the _adam entry only);
//   bindings 1, 2 (a4, b4) part 0's operands, 5, 6 part 1's, 7, 8 part 2's
//   (bound to part 0's buffers when unused); binding 4 c (the gradients).
//   _adam only: 9 params, 10 m, 11 v (f32 read_write), 12 step, 13 arrivals
//   (u32, atomic).
// Dispatch: (Σ_q tiles_q, 1, 1).

struct Part {
    M: u32, N: u32, K: u32,
    a_off: u32, a_rs: u32, a_cs: u32,
    b_off: u32, b_rs: u32, b_cs: u32,
    c_off: u32, rows_off: u32, has_rows: u32,
    tiles_x: u32, first_tile: u32, vec4: u32, _p1: u32,
}

struct GroupAdam {
    p_off: u32, g_off: u32, m_off: u32, v_off: u32,
    step_off: u32, arr_off: u32, lr: f32, beta1: f32,
    beta2: f32, eps: f32, weight_decay: f32, decay_steps: u32,
    _a0: u32, _a1: u32, _a2: u32, _a3: u32,
}

struct GroupParams {
    parts: u32, _g0: u32, _g1: u32, _g2: u32,
    part: array<Part, 3>,
    adam: GroupAdam,
}

@group(0) @binding(0) var<uniform> gp_seeds: array<GroupParams, MAX_SEEDS>;
@group(0) @binding(5) var<storage, read> a1: array<vec4<f32>>;
@group(0) @binding(6) var<storage, read> b1: array<vec4<f32>>;
@group(0) @binding(7) var<storage, read> a2: array<vec4<f32>>;
@group(0) @binding(8) var<storage, read> b2: array<vec4<f32>>;
@group(0) @binding(9) var<storage, read_write> opt_params: array<f32>;
@group(0) @binding(10) var<storage, read_write> opt_m: array<f32>;
@group(0) @binding(11) var<storage, read_write> opt_v: array<f32>;
@group(0) @binding(12) var<storage, read_write> opt_step: array<atomic<u32>>;
@group(0) @binding(13) var<storage, read_write> opt_arrivals: array<atomic<u32>>;

// Vector i of part q's A (B).
fn group_a4(q: u32, i: u32) -> vec4<f32> {
    switch q {
        case 1u: { return a1[i]; }
        case 2u: { return a2[i]; }
        default: { return a4[i]; }
    }
}

fn group_b4(q: u32, i: u32) -> vec4<f32> {
    switch q {
        case 1u: { return b1[i]; }
        case 2u: { return b2[i]; }
        default: { return b4[i]; }
    }
}

// Element i of part q's A (B).
fn group_a(q: u32, i: u32) -> f32 {
    switch q {
        case 1u: { return a1[i / 4u][i % 4u]; }
        case 2u: { return a2[i / 4u][i % 4u]; }
        default: { return a4[i / 4u][i % 4u]; }
    }
}

fn group_b(q: u32, i: u32) -> f32 {
    switch q {
        case 1u: { return b1[i / 4u][i % 4u]; }
        case 2u: { return b2[i / 4u][i % 4u]; }
        default: { return b4[i / 4u][i % 4u]; }
    }
}

fn group_load(q: u32, pt: Part, ar: vec4<u32>, bc: vec4<u32>, k: u32) -> Pair {
    let ka = k * pt.a_cs;
    let kb = k * pt.b_rs;
    return Pair(vec4<f32>(group_a(q, ar.x + ka), group_a(q, ar.y + ka),
                          group_a(q, ar.z + ka), group_a(q, ar.w + ka)),
                vec4<f32>(group_b(q, bc.x + kb), group_b(q, bc.y + kb),
                          group_b(q, bc.z + kb), group_b(q, bc.w + kb)));
}

// The part that owns workgroup `w`.
fn group_part(w: u32) -> u32 {
    var q = 0u;
    for (var i = 1u; i < gp_seeds[seed].parts; i++) {
        if (w >= gp_seeds[seed].part[i].first_tile) {
            q = i;
        }
    }
    return q;
}

// Where a workgroup's tile lies: its part, and the tile's column and row.
struct GroupTile {
    q: u32,
    tx: u32,
    ty: u32,
}

fn group_tile(w: u32) -> GroupTile {
    let q = group_part(w);
    let pt = gp_seeds[seed].part[q];
    let tile = w - pt.first_tile;
    return GroupTile(q, tile % pt.tiles_x, tile / pt.tiles_x);
}

// K-group g's stretch of K: [x, y).
fn group_stretch(pt: Part, g: u32) -> vec2<u32> {
    var stretch = (pt.K + SMALL_GROUPS - 1u) / SMALL_GROUPS;
    if (pt.vec4 == 1u) {
        stretch = (stretch + 3u) / 4u * 4u;
    }
    let k_begin = min(g * stretch, pt.K);
    return vec2<u32>(k_begin, min(k_begin + stretch, pt.K));
}

// One thread's 4×4 block (rows br.., columns bcol.. of the tile `at`) over
// K-group g's stretch, read as scalars.
fn group_walk_scalar(at: GroupTile, g: u32, br: u32, bcol: u32) -> Block {
    let pt = gp_seeds[seed].part[at.q];
    let lanes = vec4<u32>(0u, 1u, 2u, 3u);
    let rows = min(vec4<u32>(at.ty * SMALL_TILE + br) + lanes, vec4<u32>(pt.M - 1u));
    let cols = min(vec4<u32>(at.tx * SMALL_TILE + bcol) + lanes, vec4<u32>(pt.N - 1u));
    let ar = vec4<u32>(pt.a_off) + rows * pt.a_rs;
    let bc = vec4<u32>(pt.b_off) + cols * pt.b_cs;
    let ks = group_stretch(pt, g);
    var s = Block(vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0));
    var k = ks.x;
    for (; k + 4u <= ks.y; k += 4u) {
        let v0 = group_load(at.q, pt, ar, bc, k);
        let v1 = group_load(at.q, pt, ar, bc, k + 1u);
        let v2 = group_load(at.q, pt, ar, bc, k + 2u);
        let v3 = group_load(at.q, pt, ar, bc, k + 3u);
        s = small_fma(small_fma(small_fma(small_fma(s, v0), v1), v2), v3);
    }
    for (; k < ks.y; k++) {
        s = small_fma(s, group_load(at.q, pt, ar, bc, k));
    }
    return s;
}

// The same block read as vec4s: A(r0..r0+3, k) and B(k, c0..c0+3), four k at a time.
fn group_walk_vec4(at: GroupTile, g: u32, br: u32, bcol: u32) -> Block {
    let pt = gp_seeds[seed].part[at.q];
    let r0 = whole_block_start(at.ty * SMALL_TILE + br, pt.M);
    let c0 = whole_block_start(at.tx * SMALL_TILE + bcol, pt.N);
    let ks = group_stretch(pt, g);
    var acc = mat4x4<f32>(vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0));
    var row_sums = vec4<f32>(0.0);
    for (var k = ks.x; k < ks.y; k += 4u) {
        let oa = (pt.a_off + k * pt.a_cs + r0) / 4u;
        let sa = pt.a_cs / 4u;
        let ob = (pt.b_off + k * pt.b_rs + c0) / 4u;
        let sb = pt.b_rs / 4u;
        let ab = mat4x4<f32>(group_a4(at.q, oa), group_a4(at.q, oa + sa),
                             group_a4(at.q, oa + 2u * sa), group_a4(at.q, oa + 3u * sa));
        let bb = mat4x4<f32>(group_b4(at.q, ob), group_b4(at.q, ob + sb),
                             group_b4(at.q, ob + 2u * sb), group_b4(at.q, ob + 3u * sb));
        acc += ab * transpose(bb);
        row_sums += ab * vec4<f32>(1.0);
    }
    let tacc = transpose(acc);
    return Block(tacc[0], tacc[1], tacc[2], tacc[3], row_sums);
}

// The workgroup's tile: every K-group walks its stretch, the partials meet
// (after this, small_total and small_row_total give the tile's sums).
fn group_tile_sums(at: GroupTile, tid: u32) {
    let g = tid / (SMALL_SIDE * SMALL_SIDE);
    let bq = tid % (SMALL_SIDE * SMALL_SIDE);
    let br = (bq / SMALL_SIDE) * 4u;
    let bcol = (bq % SMALL_SIDE) * 4u;
    var s: Block;
    if (gp_seeds[seed].part[at.q].vec4 == 1u) {
        s = group_walk_vec4(at, g, br, bcol);
    } else {
        s = group_walk_scalar(at, g, br, bcol);
    }
    small_meet(g, br, bcol, s);
}

// Thread tid's outputs of the tile: the index into c of its dW element
// (tid < 256, inside the part) and of its db element (tid < 16, first
// column of tiles, when the part has biases).
struct GroupOut {
    has_w: bool,
    w_at: u32,
    has_b: bool,
    b_at: u32,
}

fn group_outputs(at: GroupTile, tid: u32) -> GroupOut {
    let pt = gp_seeds[seed].part[at.q];
    let row = at.ty * SMALL_TILE + tid / SMALL_TILE;
    let col = at.tx * SMALL_TILE + tid % SMALL_TILE;
    let sum_row = at.ty * SMALL_TILE + tid;
    let has_w = tid < SMALL_OUTS && row < pt.M && col < pt.N;
    let has_b = pt.has_rows == 1u && at.tx == 0u && tid < SMALL_TILE && sum_row < pt.M;
    return GroupOut(has_w, pt.c_off + row * pt.N + col, has_b, pt.rows_off + sum_row);
}

@compute @workgroup_size(256)
fn matmul_dw_group(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) tid: u32) {
    seed = wid.z % SEEDS;
    let at = group_tile(wid.x);
    group_tile_sums(at, tid);
    let out = group_outputs(at, tid);
    if (out.has_w) {
        c[out.w_at] = small_total(tid);
    }
    if (out.has_b) {
        c[out.b_at] = small_row_total(tid);
    }
}

// Adam on gradient element i (an index into c) with gradient g at step t.
fn adam_at(i: u32, g: f32, t: f32) {
    let h = gp_seeds[seed].adam;
    let e = i - h.g_off;
    var lr = h.lr;
    if (h.decay_steps > 0u) {
        lr = lr * max(1.0 - (t - 1.0) / f32(h.decay_steps), 0.0);
    }
    let bias1 = 1.0 - pow(h.beta1, t);
    let bias2 = 1.0 - pow(h.beta2, t);
    var w = opt_params[h.p_off + e];
    w -= lr * h.weight_decay * w;
    let mi = h.beta1 * opt_m[h.m_off + e] + (1.0 - h.beta1) * g;
    let vi = h.beta2 * opt_v[h.v_off + e] + (1.0 - h.beta2) * g * g;
    opt_m[h.m_off + e] = mi;
    opt_v[h.v_off + e] = vi;
    let denom = sqrt(vi) / sqrt(bias2) + h.eps;
    opt_params[h.p_off + e] = w - (lr / bias1) * mi / denom;
}

var<workgroup> group_step_read: u32;

@compute @workgroup_size(256)
fn matmul_dw_group_adam(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                        @builtin(local_invocation_index) tid: u32) {
    seed = wid.z % SEEDS;
    if (tid == 0u) {
        group_step_read = atomicLoad(&opt_step[gp_seeds[seed].adam.step_off]);
    }
    let before = workgroupUniformLoad(&group_step_read);
    let t = f32(before + 1u);
    let at = group_tile(wid.x);
    group_tile_sums(at, tid);
    let out = group_outputs(at, tid);
    if (out.has_w) {
        let g = small_total(tid);
        c[out.w_at] = g;
        adam_at(out.w_at, g, t);
    }
    if (out.has_b) {
        let g = small_row_total(tid);
        c[out.b_at] = g;
        adam_at(out.b_at, g, t);
    }
    if (tid == 0u) {
        // As adam_advance: one arrival per workgroup, issued once `before` is known.
        let one = min(before | 1u, 1u);
        if (atomicAdd(&opt_arrivals[gp_seeds[seed].adam.arr_off], one) == nwg.x - 1u) {
            atomicStore(&opt_step[gp_seeds[seed].adam.step_off], before + 1u);
            atomicStore(&opt_arrivals[gp_seeds[seed].adam.arr_off], 0u);
        }
    }
}
