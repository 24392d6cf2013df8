// matmul_coop.wgsl: matmul.wgsl's product on tensor cores, through WGSL
// cooperative matrices (wgpu's EXPERIMENTAL_COOPERATIVE_MATRIX): f16 inputs,
// f32 accumulation, the same epilogue, split launches and row sums.
//
// Math
//   S[m, n] = 2^-e · Σ_k f16(2^e · A(m, k)) · f16(B(k, n))   (f32 accumulate)
//   then C = epilogue(S) exactly as matmul.wgsl (modes 0/1/2, act, row sums
//   R[m] = Σ_k A(m, k) summed in f32 from the f32 inputs, split partials when
//   stretch > 0). 2^e = a_scale (a power of two, word 17 of the uniform): the
//   lowering sets it for the backward products, whose A is a batch-mean
//   gradient too small for f16 (6e-5 is its smallest normal); scaling by a
//   power of two and back is exact, so only the f16 roundings of the scaled
//   A and of B remain (relative 2^-11 each).
//
// This file is not a module alone: the module is this file followed by
// matmul.wgsl (src/shaders.rs joins them), which holds Params, the bindings,
// the epilogue (store_split_or_c) and sums_rows. Its `enable` lines come
// first, as WGSL requires.
//
// Buffers: matmul.wgsl's bindings 0–4 and uniform layout (f32 in memory; the
//   f16 copies live only in workgroup memory).
//
// Dispatch
//   workgroup 256 threads = 8 subgroups of 32 (NVIDIA's subgroup size; the
//   lowering only picks this kernel where the adapter reports 32), computing
//   a 128×128 tile of C, the same tiles and grid as matmul_bias_act_128:
//   (ceil(N/128), ceil(M/128), splits or 1). Subgroup w holds the 32×64
//   block at rows 32·(w/2), cols 64·(w%2): 2×4 fragments of 16×16, each
//   K step of 16 two A loads, four B loads and eight coopMultiplyAdd.
//   K is walked in slabs of 32: every thread converts 16 elements of A and 16
//   of B to f16 into workgroup memory (row-major, rows padded by 8 halves so
//   the fragments' rows fall in different banks), the next slab's f32 loads
//   in flight in registers while this slab is multiplied. Loads walk whichever
//   index of the operand has stride 1, four at a time, so a subgroup reads
//   whole 128-byte lines; in a tile wholly inside the product, a slab wholly
//   inside K loads without bounds tests from precomputed addresses
//   (a4_inside/b4_inside: 18% faster at 4096³ than testing every element).
//   At the end each subgroup stores its fragments, one at a time, into its
//   own 16×16 f32 scratch, and its 32 lanes put them through the epilogue
//   (bounds checked), so any M, N, K works.
enable f16;
enable wgpu_cooperative_matrix;

const CT: u32 = 128u;       // output tile edge
const CK: u32 = 32u;        // K slab
const A_ROW: u32 = 40u;     // a_half row stride (CK + 8 halves = 80 bytes)
const B_ROW: u32 = 136u;    // b_half row stride (CT + 8 halves = 272 bytes)

var<workgroup> a_half: array<f16, 5120>;  // [CT][A_ROW]: A(m0 + r, k0 + k) at r·A_ROW + k
var<workgroup> b_half: array<f16, 4352>;  // [CK][B_ROW]: B(k0 + k, n0 + c) at k·B_ROW + c
var<workgroup> c_frag: array<f32, 2048>;  // [8][16·16]: subgroup w's fragment, row-major

// A(m, k) (scaled by a_scale) and B(k, n), zero outside the product or past k_end.
fn a_at(m: u32, k: u32, k_end: u32) -> f32 {
    if (m < p.M && k < k_end) {
        return a[p.a_off + m * p.a_rs + k * p.a_cs] * p.a_scale;
    }
    return 0.0;
}

fn b_at(k: u32, n: u32, k_end: u32) -> f32 {
    if (n < p.N && k < k_end) {
        return b[p.b_off + k * p.b_rs + n * p.b_cs];
    }
    return 0.0;
}

// A(m, k + i) (along_k) or A(m + i, k) for i = 0..3. Written out element by
// element, as every 4-wide access here: a vector indexed by a loop variable
// is spilled to local memory by NVIDIA's compiler (this kernel ran at a
// quarter of its speed with loops).
fn coop_a4(m: u32, k: u32, along_k: bool, k_end: u32) -> vec4<f32> {
    let dm = select(1u, 0u, along_k);
    let dk = 1u - dm;
    return vec4<f32>(
        a_at(m, k, k_end),
        a_at(m + dm, k + dk, k_end),
        a_at(m + 2u * dm, k + 2u * dk, k_end),
        a_at(m + 3u * dm, k + 3u * dk, k_end),
    );
}

// B(k + i, n) (along_k) or B(k, n + i).
fn coop_b4(k: u32, n: u32, along_k: bool, k_end: u32) -> vec4<f32> {
    let dn = select(1u, 0u, along_k);
    let dk = 1u - dn;
    return vec4<f32>(
        b_at(k, n, k_end),
        b_at(k + dk, n + dn, k_end),
        b_at(k + 2u * dk, n + 2u * dn, k_end),
        b_at(k + 3u * dk, n + 3u * dn, k_end),
    );
}

// Four elements from `at` on, `step` apart, with no bounds checks: the loads
// of a slab wholly inside the product (the interior tiles' common case).
fn a4_inside(at: u32, step: u32) -> vec4<f32> {
    return vec4<f32>(a[at], a[at + step], a[at + 2u * step], a[at + 3u * step]) * p.a_scale;
}

fn b4_inside(at: u32, step: u32) -> vec4<f32> {
    return vec4<f32>(b[at], b[at + step], b[at + 2u * step], b[at + 3u * step]);
}

// Where thread `tid`'s group g (0..3) of four elements sits in the slab, as
// (row, k) of A or (k, col) of B: along k (8 groups per row of 32 k) when
// that operand is contiguous in k, else along the rows (32 groups per k).
fn a_place(tid: u32, g: u32, along_k: bool) -> vec2<u32> {
    let e = g * 256u + tid;
    return select(vec2<u32>(4u * (e % 32u), e / 32u), vec2<u32>(e / 8u, 4u * (e % 8u)), along_k);
}

fn b_place(tid: u32, g: u32, along_k: bool) -> vec2<u32> {
    let e = g * 256u + tid;
    return select(vec2<u32>(e / 32u, 4u * (e % 32u)), vec2<u32>(4u * (e % 8u), e / 8u), along_k);
}

fn put_a(at: vec2<u32>, along_k: bool, v: vec4<f32>) {
    let base = at.x * A_ROW + at.y;
    let step = select(A_ROW, 1u, along_k);
    a_half[base] = f16(v.x);
    a_half[base + step] = f16(v.y);
    a_half[base + 2u * step] = f16(v.z);
    a_half[base + 3u * step] = f16(v.w);
}

fn put_b(at: vec2<u32>, along_k: bool, v: vec4<f32>) {
    let base = at.x * B_ROW + at.y;
    let step = select(1u, B_ROW, along_k);
    b_half[base] = f16(v.x);
    b_half[base + step] = f16(v.y);
    b_half[base + 2u * step] = f16(v.z);
    b_half[base + 3u * step] = f16(v.w);
}

// One 16×16 accumulator through the epilogue: stored row-major into the
// subgroup's scratch, then 8 elements per lane.
fn emit(acc: coop_mat16x16<f32, C>, w: u32, lane: u32, split: u32, row0: u32, col0: u32) {
    let base = w * 256u;
    coopStoreT(acc, &c_frag[base], 16u);
    workgroupBarrier();
    let unscale = 1.0 / p.a_scale;
    for (var i = 0u; i < 8u; i++) {
        let e = i * 32u + lane;
        let row = row0 + e / 16u;
        let col = col0 + e % 16u;
        if (row < p.M && col < p.N) {
            store_split_or_c(split, row, col, c_frag[base + e] * unscale);
        }
    }
    workgroupBarrier();
}

@compute @workgroup_size(256)
fn matmul_coop_f16(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) tid: u32) {
    p = p_seeds[wid.z % SEEDS];
    let m0 = wid.y * CT;
    let n0 = wid.x * CT;
    let split = wid.z / SEEDS;
    let k_begin = select(0u, min(split * p.stretch, p.K), p.stretch > 0u);
    let k_end = select(p.K, min(k_begin + p.stretch, p.K), p.stretch > 0u);
    let a_k = p.a_cs == 1u;
    let b_k = p.b_rs == 1u;
    let w = tid / 32u;
    let lane = tid % 32u;
    let wr = 32u * (w / 2u);
    let wc = 64u * (w % 2u);
    let row_sum = sums_rows(wid) && tid < CT;
    var rsum = 0.0;
    var c00 = coop_mat16x16<f32, C>(); var c01 = coop_mat16x16<f32, C>();
    var c02 = coop_mat16x16<f32, C>(); var c03 = coop_mat16x16<f32, C>();
    var c10 = coop_mat16x16<f32, C>(); var c11 = coop_mat16x16<f32, C>();
    var c12 = coop_mat16x16<f32, C>(); var c13 = coop_mat16x16<f32, C>();
    let pa0 = a_place(tid, 0u, a_k); let pa1 = a_place(tid, 1u, a_k);
    let pa2 = a_place(tid, 2u, a_k); let pa3 = a_place(tid, 3u, a_k);
    let pb0 = b_place(tid, 0u, b_k); let pb1 = b_place(tid, 1u, b_k);
    let pb2 = b_place(tid, 2u, b_k); let pb3 = b_place(tid, 3u, b_k);
    // Where each group's first element sits at k = 0, for the inside loads.
    let inside = m0 + CT <= p.M && n0 + CT <= p.N;
    let a_step = select(p.a_rs, p.a_cs, a_k);
    let b_step = select(p.b_cs, p.b_rs, b_k);
    let at_a0 = p.a_off + (m0 + pa0.x) * p.a_rs + pa0.y * p.a_cs;
    let at_a1 = p.a_off + (m0 + pa1.x) * p.a_rs + pa1.y * p.a_cs;
    let at_a2 = p.a_off + (m0 + pa2.x) * p.a_rs + pa2.y * p.a_cs;
    let at_a3 = p.a_off + (m0 + pa3.x) * p.a_rs + pa3.y * p.a_cs;
    let at_b0 = p.b_off + pb0.x * p.b_rs + (n0 + pb0.y) * p.b_cs;
    let at_b1 = p.b_off + pb1.x * p.b_rs + (n0 + pb1.y) * p.b_cs;
    let at_b2 = p.b_off + pb2.x * p.b_rs + (n0 + pb2.y) * p.b_cs;
    let at_b3 = p.b_off + pb3.x * p.b_rs + (n0 + pb3.y) * p.b_cs;
    var ra0 = coop_a4(m0 + pa0.x, k_begin + pa0.y, a_k, k_end);
    var ra1 = coop_a4(m0 + pa1.x, k_begin + pa1.y, a_k, k_end);
    var ra2 = coop_a4(m0 + pa2.x, k_begin + pa2.y, a_k, k_end);
    var ra3 = coop_a4(m0 + pa3.x, k_begin + pa3.y, a_k, k_end);
    var rb0 = coop_b4(k_begin + pb0.x, n0 + pb0.y, b_k, k_end);
    var rb1 = coop_b4(k_begin + pb1.x, n0 + pb1.y, b_k, k_end);
    var rb2 = coop_b4(k_begin + pb2.x, n0 + pb2.y, b_k, k_end);
    var rb3 = coop_b4(k_begin + pb3.x, n0 + pb3.y, b_k, k_end);
    for (var k0 = k_begin; k0 < k_end; k0 += CK) {
        put_a(pa0, a_k, ra0); put_a(pa1, a_k, ra1); put_a(pa2, a_k, ra2); put_a(pa3, a_k, ra3);
        put_b(pb0, b_k, rb0); put_b(pb1, b_k, rb1); put_b(pb2, b_k, rb2); put_b(pb3, b_k, rb3);
        workgroupBarrier();
        let k1 = k0 + CK;
        if (inside && k1 + CK <= k_end) {
            let ka = k1 * p.a_cs;
            let kb = k1 * p.b_rs;
            ra0 = a4_inside(at_a0 + ka, a_step); ra1 = a4_inside(at_a1 + ka, a_step);
            ra2 = a4_inside(at_a2 + ka, a_step); ra3 = a4_inside(at_a3 + ka, a_step);
            rb0 = b4_inside(at_b0 + kb, b_step); rb1 = b4_inside(at_b1 + kb, b_step);
            rb2 = b4_inside(at_b2 + kb, b_step); rb3 = b4_inside(at_b3 + kb, b_step);
        } else {
            ra0 = coop_a4(m0 + pa0.x, k1 + pa0.y, a_k, k_end);
            ra1 = coop_a4(m0 + pa1.x, k1 + pa1.y, a_k, k_end);
            ra2 = coop_a4(m0 + pa2.x, k1 + pa2.y, a_k, k_end);
            ra3 = coop_a4(m0 + pa3.x, k1 + pa3.y, a_k, k_end);
            rb0 = coop_b4(k1 + pb0.x, n0 + pb0.y, b_k, k_end);
            rb1 = coop_b4(k1 + pb1.x, n0 + pb1.y, b_k, k_end);
            rb2 = coop_b4(k1 + pb2.x, n0 + pb2.y, b_k, k_end);
            rb3 = coop_b4(k1 + pb3.x, n0 + pb3.y, b_k, k_end);
        }
        for (var kk = 0u; kk < CK; kk += 16u) {
            // Indices bound with `let` first: naga 30's SPIR-V writer panics on
            // an inline index inside a cooperative load's pointer.
            let ia0 = wr * A_ROW + kk;
            let ia1 = (wr + 16u) * A_ROW + kk;
            let ib = kk * B_ROW + wc;
            let ib1 = ib + 16u;
            let ib2 = ib + 32u;
            let ib3 = ib + 48u;
            let a0 = coopLoadT<coop_mat16x16<f16, A>>(&a_half[ia0], A_ROW);
            let a1 = coopLoadT<coop_mat16x16<f16, A>>(&a_half[ia1], A_ROW);
            let b0 = coopLoadT<coop_mat16x16<f16, B>>(&b_half[ib], B_ROW);
            let b1 = coopLoadT<coop_mat16x16<f16, B>>(&b_half[ib1], B_ROW);
            let b2 = coopLoadT<coop_mat16x16<f16, B>>(&b_half[ib2], B_ROW);
            let b3 = coopLoadT<coop_mat16x16<f16, B>>(&b_half[ib3], B_ROW);
            c00 = coopMultiplyAdd(a0, b0, c00); c01 = coopMultiplyAdd(a0, b1, c01);
            c02 = coopMultiplyAdd(a0, b2, c02); c03 = coopMultiplyAdd(a0, b3, c03);
            c10 = coopMultiplyAdd(a1, b0, c10); c11 = coopMultiplyAdd(a1, b1, c11);
            c12 = coopMultiplyAdd(a1, b2, c12); c13 = coopMultiplyAdd(a1, b3, c13);
        }
        if (row_sum) {
            for (var k = k0; k < min(k0 + CK, k_end); k++) {
                if (m0 + tid < p.M) {
                    rsum += a[p.a_off + (m0 + tid) * p.a_rs + k * p.a_cs];
                }
            }
        }
        workgroupBarrier();
    }
    if (row_sum && m0 + tid < p.M) {
        c[p.rows_off + split * p.M + m0 + tid] = rsum;
    }
    let r = m0 + wr;
    let col = n0 + wc;
    emit(c00, w, lane, split, r, col); emit(c01, w, lane, split, r, col + 16u);
    emit(c02, w, lane, split, r, col + 32u); emit(c03, w, lane, split, r, col + 48u);
    emit(c10, w, lane, split, r + 16u, col); emit(c11, w, lane, split, r + 16u, col + 16u);
    emit(c12, w, lane, split, r + 16u, col + 32u); emit(c13, w, lane, split, r + 16u, col + 48u);
}
