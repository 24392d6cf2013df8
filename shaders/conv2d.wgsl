// conv2d.wgsl: a 2-d convolution, its input gradient and its weight gradient
// as implicit GEMMs (no im2col buffer: each tile gathers its operands from
// the images as it stages them), with the matmul kernels' fused epilogues.
//
// Math (NCHW, as PyTorch; x [B, C, H, W], w [O, C, KH, KW], y [B, O, P, Q],
// P = ⌊(H + 2·ph − KH)/sh⌋ + 1, Q likewise; x is zero outside the image)
//   conv2d             y[b,o,p,q]  = Σ_{c,i,j} x[b, c, p·sh + i − ph, q·sw + j − pw] · w[o,c,i,j]
//                      GEMM: rows m = (b,p,q), cols n = o, inner k = (c,i,j)
//   conv2d_input_grad  dx[b,c,h,v] = Σ_{o,i,j} dy[b, o, (h + ph − i)/sh, (v + pw − j)/sw] · w[o,c,i,j]
//                      over the taps whose divisions are exact and inside dy
//                      (ConvTranspose2d's forward: its input as dy)
//                      GEMM: rows m = (b,h,v), cols n = c, inner k = (o,i,j)
//   conv2d_weight_grad dw[o,c,i,j] = Σ_{b,p,q} dy[b,o,p,q] · x[b, c, p·sh + i − ph, q·sw + j − pw]
//                      db[o] = Σ_{b,p,q} dy[b,o,p,q] (the GEMM's row sums of A)
//                      GEMM: rows m = o, cols n = (c,i,j), inner k = (b,p,q)
//   split launches (splits > 0, grid z = splits): workgroup z sums only k in
//                      [z·stretch, (z + 1)·stretch) and writes the raw sums to
//                      split z's partials, out[out_off + z·M·N + e] (e the
//                      output element; for dw e = m·N + n, with db at
//                      out[rows_off + z·M + m]). The strided input gradient
//                      (kind 3, below) splits each parity class's own inner
//                      range, z = class·splits + split. sum_splits.wgsl adds
//                      up the weight gradient's, conv2d_sum_splits the others'
//                      through the epilogue, in the order z = 0, 1, …
// Epilogue of conv2d and conv2d_input_grad on each sum v at output element e
// of channel n: mode 0 act(v); mode 1 act(v + aux[n]) (bias); mode 2
// v·act'(aux[e]) (aux = the output of the activation the gradient flows into).
// act ∈ {0 identity, 1 relu, 2 leaky_relu(slope), 3 tanh, 4 sigmoid}, as
// activation.wgsl (repeated here: WGSL has no includes).
//
// Buffers (f32, element offsets in the uniform)
//   binding 0  uniform Params (the geometry, offsets, epilogue, GEMM sizes)
//   binding 1  a     read        conv2d: x; conv2d_input_grad: dy; conv2d_weight_grad: dy
//   binding 2  b     read        conv2d, conv2d_input_grad: w; conv2d_weight_grad: x
//   binding 3  aux   read        the bias or the activation's output (mode 1, 2; else unread)
//   binding 4  out   read_write  y, dx, or dw (with db at rows_off, in the same buffer)
//
// Dispatch
//   workgroup 16×16 threads computes a 64×64 tile of the GEMM's output, each
//   thread the 4×4 block at rows ty + 16i, cols tx + 16j; grid (⌈N/64⌉,
//   ⌈M/64⌉, splits). K is walked in slabs of 16 staged in workgroup memory; each
//   thread stages 4 elements of A and 4 of B per slab, decoding its row's
//   (b, p, q) once and each element's tap from its k. Elements outside the
//   image or the GEMM load as zero, so any sizes work. Row sums (db): thread
//   tid < 64 of a first-column-tile workgroup sums row m0 + tid in k order.
//   conv2d_sum_splits: one thread per output element (M·N of them), workgroups
//   of 256, grid (min(G, 65535), ⌈G/65535⌉, 1), G = ⌈M·N/256⌉; reads the
//   partials from binding 1 at a_off, `splits` of them, and the channel of
//   element e as (e / plane) % N.

struct Params {
    batch: u32, in_ch: u32, in_h: u32, in_w: u32,
    out_ch: u32, out_h: u32, out_w: u32, kh: u32,
    kw: u32, sh: u32, sw: u32, ph: u32,
    pw: u32, a_off: u32, b_off: u32, out_off: u32,
    aux_off: u32, mode: u32, act: u32, slope: f32,
    has_rows: u32, rows_off: u32, M: u32, N: u32,
    K: u32, stretch: u32, splits: u32, plane: u32,
}

// Seed-batched plans (src/plan/seeds.rs): a launch can run the same op for
// up to MAX_SEEDS independent GANs, one uniform block each (their offsets
// into the stacked buffers). SEEDS (a pipeline constant, 1 unless batched)
// is how many: workgroup z = split·SEEDS + seed, and each entry point first
// takes its seed's block.
const MAX_SEEDS: u32 = 64u;
override SEEDS: u32 = 1u;
@group(0) @binding(0) var<uniform> p_seeds: array<Params, MAX_SEEDS>;
var<private> p: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read> aux: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

const TILE: u32 = 64u;
const SLAB: u32 = 16u;

var<workgroup> a_tile: array<f32, 1024>; // [SLAB][TILE]
var<workgroup> b_tile: array<f32, 1024>; // [SLAB][TILE]

// tanh with a small relative error everywhere: drivers' builtin tanh can be
// off by ~1e-4 relative near zero (llvmpipe) or overflow past |x| ≈ 44.
fn accurate_tanh(x: f32) -> f32 {
    let ax = abs(x);
    if (ax < 0.625) {
        let z = x * x;
        let q = (((-5.70498872745e-3 * z + 2.06390887954e-2) * z - 5.37397155531e-2) * z
                 + 1.33314422036e-1) * z - 3.33332819422e-1;
        return x + x * z * q;
    }
    let t = 1.0 - 2.0 / (exp(2.0 * min(ax, 15.0)) + 1.0);
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

fn derivative_from_output(y: f32, act: u32, slope: f32) -> f32 {
    switch act {
        case 1u: { return select(0.0, 1.0, y > 0.0); }
        case 2u: { return select(slope, 1.0, y > 0.0); }
        case 3u: { return (1.0 - y) * (1.0 + y); }
        case 4u: { return y * (1.0 - y); }
        default: { return 1.0; }
    }
}

// A position of an image plane: (batch, row, column).
struct Pixel {
    b: u32,
    r: u32,
    c: u32,
}

fn pixel(m: u32, rows: u32, cols: u32) -> Pixel {
    let plane = rows * cols;
    let rest = m % plane;
    return Pixel(m / plane, rest / cols, rest % cols);
}

// A tap: (channel, kernel row, kernel column) of inner index k.
fn tap(k: u32) -> Pixel {
    return pixel(k, p.kh, p.kw);
}

// x[b, c, r·sh + i − ph, col·sw + j − pw] from buffer `which` (1: a, 2: b), 0 outside the image.
fn image_at(which: u32, bb: u32, c: u32, r: u32, col: u32, i: u32, j: u32) -> f32 {
    let h = i32(r * p.sh + i) - i32(p.ph);
    let v = i32(col * p.sw + j) - i32(p.pw);
    if (h < 0 || v < 0 || u32(h) >= p.in_h || u32(v) >= p.in_w) {
        return 0.0;
    }
    let at = ((bb * p.in_ch + c) * p.in_h + u32(h)) * p.in_w + u32(v);
    if (which == 1u) {
        return a[p.a_off + at];
    }
    return b[p.b_off + at];
}

// dy[b, o, (h + ph − i)/sh, (v + pw − j)/sw] where both divisions are exact and inside dy, else 0.
fn gradient_at(bb: u32, o: u32, h: u32, v: u32, i: u32, j: u32) -> f32 {
    let th = i32(h + p.ph) - i32(i);
    let tv = i32(v + p.pw) - i32(j);
    if (th < 0 || tv < 0) {
        return 0.0;
    }
    var uh = u32(th);
    var uv = u32(tv);
    // Stride 1 (ConvTranspose2d's and same-size convolutions'): no division.
    if (p.sh != 1u || p.sw != 1u) {
        if (uh % p.sh != 0u || uv % p.sw != 0u) {
            return 0.0;
        }
        uh = uh / p.sh;
        uv = uv / p.sw;
    }
    if (uh >= p.out_h || uv >= p.out_w) {
        return 0.0;
    }
    return a[p.a_off + ((bb * p.out_ch + o) * p.out_h + uh) * p.out_w + uv];
}

// conv2d_input_grad_parity (kind 3): the strided input gradient one parity
// class at a time. Workgroup z takes the input pixels (h, v) with
// h ≡ rh (mod sh), v ≡ rv (mod sw), (rh, rv) = (z / sw, z % sw); only the
// taps i ≡ rh + ph (mod sh), j likewise, reach dy from them, so the class is
// a GEMM over rows (b, hh, vv) = (b, h / sh, v / sw) and inner (o, ii, jj)
// with i = i0 + ii·sh, j = j0 + jj·sw: no tap is loaded to be a zero. Rows
// and taps stay in these class coordinates, so dy's position needs no
// division: (h + ph − i)/sh = oh0 + hh − ii, oh0 = (rh + ph − i0)/sh.
struct Class {
    rows: u32, inner: u32, rh: u32, rv: u32,
    i0: u32, j0: u32, ki: u32, kj: u32,
    hc: u32, wc: u32, oh0: u32, ow0: u32,
}

var<private> parity: Class;

fn parity_class(z: u32) -> Class {
    let rh = z / p.sw;
    let rv = z % p.sw;
    let hc = select(0u, (p.in_h - 1u - rh) / p.sh + 1u, rh < p.in_h);
    let wc = select(0u, (p.in_w - 1u - rv) / p.sw + 1u, rv < p.in_w);
    let i0 = (rh + p.ph) % p.sh;
    let j0 = (rv + p.pw) % p.sw;
    let ki = select(0u, (p.kh - i0 + p.sh - 1u) / p.sh, i0 < p.kh);
    let kj = select(0u, (p.kw - j0 + p.sw - 1u) / p.sw, j0 < p.kw);
    let oh0 = (rh + p.ph - i0) / p.sh;
    let ow0 = (rv + p.pw - j0) / p.sw;
    return Class(p.batch * hc * wc, p.out_ch * ki * kj, rh, rv, i0, j0, ki, kj, hc, wc, oh0, ow0);
}

// Kind 3's inner index k as the class tap (o, ii, jj) it stands for.
fn class_tap(k: u32) -> Pixel {
    return pixel(k, parity.ki, parity.kj);
}

// dy at class row (b, hh, vv) and class tap (o, ii, jj): position
// (oh0 + hh − ii, ow0 + vv − jj), 0 outside dy.
fn class_gradient_at(row: Pixel, t: Pixel) -> f32 {
    let oh = i32(parity.oh0 + row.r) - i32(t.r);
    let ow = i32(parity.ow0 + row.c) - i32(t.c);
    if (oh < 0 || ow < 0 || u32(oh) >= p.out_h || u32(ow) >= p.out_w) {
        return 0.0;
    }
    return a[p.a_off + ((row.b * p.out_ch + t.b) * p.out_h + u32(oh)) * p.out_w + u32(ow)];
}

// Inner index k of A decoded once per slab: a tap (c or o, i, j) for kinds
// 0 and 1, an output pixel (b, p, q) for kind 2.
fn decode_a_k(kind: u32, k: u32) -> Pixel {
    if (kind == 2u) {
        return pixel(k, p.out_h, p.out_w);
    }
    if (kind == 3u) {
        return class_tap(k);
    }
    return tap(k);
}

// A(m, k) of the GEMM `kind` (0 conv2d, 1 input grad, 2 weight grad), with
// `row` GEMM row m's pixel and `t` k decoded; m, k in range.
fn load_a(kind: u32, row: Pixel, m: u32, t: Pixel) -> f32 {
    switch kind {
        case 0u: {
            return image_at(1u, row.b, t.b, row.r, row.c, t.r, t.c);
        }
        case 1u: {
            return gradient_at(row.b, t.b, row.r, row.c, t.r, t.c);
        }
        case 3u: {
            return class_gradient_at(row, t);
        }
        default: {
            return a[p.a_off + ((t.b * p.out_ch + m) * p.out_h + t.r) * p.out_w + t.c];
        }
    }
}

// B(k, n) of the GEMM `kind`, with k decoded (`kt`, as decode_a_k) and, for
// kind 2, column n's tap `nt`; k, n in range.
fn load_b_decoded(kind: u32, k: u32, kt: Pixel, n: u32, nt: Pixel) -> f32 {
    switch kind {
        case 0u: {
            return b[p.b_off + n * p.K + k];
        }
        case 1u: {
            return b[p.b_off + ((kt.b * p.in_ch + n) * p.kh + kt.r) * p.kw + kt.c];
        }
        case 3u: {
            let i = parity.i0 + kt.r * p.sh;
            let j = parity.j0 + kt.c * p.sw;
            return b[p.b_off + ((kt.b * p.in_ch + n) * p.kh + i) * p.kw + j];
        }
        default: {
            return image_at(2u, kt.b, nt.b, kt.r, kt.c, nt.r, nt.c);
        }
    }
}

// B(k, n) of the GEMM `kind`; k, n in range.
fn load_b(kind: u32, k: u32, n: u32) -> f32 {
    return load_b_decoded(kind, k, decode_a_k(kind, k), n, tap(n));
}

// Where GEMM row m's outputs go: the offset of (row, column 0) and the
// stride between columns (NCHW: one plane per channel; dw: row-major).
fn out_index(kind: u32, m: u32, n: u32) -> u32 {
    switch kind {
        case 0u: {
            let px = pixel(m, p.out_h, p.out_w);
            return ((px.b * p.out_ch + n) * p.out_h + px.r) * p.out_w + px.c;
        }
        case 1u: {
            let px = row_pixel(kind, m);
            return ((px.b * p.in_ch + n) * p.in_h + px.r) * p.in_w + px.c;
        }
        case 3u: {
            let px = row_pixel(kind, m);
            let h = parity.rh + px.r * p.sh;
            let v = parity.rv + px.c * p.sw;
            return ((px.b * p.in_ch + n) * p.in_h + h) * p.in_w + v;
        }
        default: {
            return m * p.N + n; // plus the split's offset, added in implicit_gemm
        }
    }
}

// The epilogue on sum v of output element e, of channel n (modes above).
fn epilogue(e: u32, n: u32, v: f32) -> f32 {
    if (p.mode == 2u) {
        return v * derivative_from_output(aux[p.aux_off + e], p.act, p.slope);
    }
    var s = v;
    if (p.mode == 1u) {
        s += aux[p.aux_off + n];
    }
    return activate(s, p.act, p.slope);
}

// Sum v of GEMM element (m, n): raw into split `split`'s partials for the
// weight gradient and any split launch, else through the epilogue.
fn store(kind: u32, split: u32, m: u32, n: u32, v: f32) {
    let e = out_index(kind, m, n);
    if (kind == 2u || p.splits > 0u) {
        out[p.out_off + split * p.M * p.N + e] = v;
        return;
    }
    out[p.out_off + e] = epilogue(e, n, v);
}

// GEMM row m as a pixel of the output (conv2d) or of the input (input
// gradient); decoded once per staged row, outside the K loop (the weight
// gradient's rows are channels and do not use it).
fn row_pixel(kind: u32, m: u32) -> Pixel {
    if (kind == 0u) {
        return pixel(m, p.out_h, p.out_w);
    }
    if (kind == 3u) {
        return pixel(m, parity.hc, parity.wc); // class coordinates (b, hh, vv)
    }
    return pixel(m, p.in_h, p.in_w);
}

// The stretch of the GEMM a workgroup walks: its rows (the whole op's, or
// kind 3's class's, whose geometry it leaves in `parity`), its inner range
// (all of K, or its split's stretch of it) and its split (0 unsplit). A
// split launch (splits > 0) has z = split, or for kind 3 z = class·splits +
// split, each class split in stretches of ⌈inner/splits⌉ rounded up to 16.
struct Walk {
    rows: u32,
    k_begin: u32,
    k_end: u32,
    split: u32,
}

fn gemm_walk(kind: u32, z: u32) -> Walk {
    if (kind == 3u) {
        let splits = max(p.splits, 1u);
        parity = parity_class(z / splits);
        let split = z % splits;
        let stretch = ((parity.inner + splits - 1u) / splits + 15u) / 16u * 16u;
        let k_begin = min(split * stretch, parity.inner);
        return Walk(parity.rows, k_begin, min(k_begin + stretch, parity.inner), split);
    }
    if (p.splits > 0u) {
        let k_begin = min(z * p.stretch, p.K);
        return Walk(p.M, k_begin, min(k_begin + p.stretch, p.K), z);
    }
    return Walk(p.M, 0u, p.K, 0u);
}

fn implicit_gemm(kind: u32, wid: vec3<u32>, lid: vec3<u32>) {
    let tid = lid.y * 16u + lid.x;
    let m0 = wid.y * TILE;
    let n0 = wid.x * TILE;
    let walk = gemm_walk(kind, wid.z / SEEDS);
    let rows_m = walk.rows;
    let k_begin = walk.k_begin;
    let k_end = walk.k_end;
    if (rows_m == 0u) {
        return;
    }
    // A element e = tid + 256r of a slab: row e / 16, k e % 16 (the row is fixed per r).
    var rows: array<Pixel, 4>;
    for (var r = 0u; r < 4u; r++) {
        rows[r] = row_pixel(kind, min(m0 + (tid + r * 256u) / SLAB, rows_m - 1u));
    }
    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);
    let row_sum = kind == 2u && p.has_rows == 1u && wid.x == 0u && tid < TILE;
    var rsum = 0.0;

    for (var k0 = k_begin; k0 < k_end; k0 += SLAB) {
        // A element e = tid + 256r sits at k = k0 + tid % 16 for every r: decode it once.
        let ak = tid % SLAB;
        let a_tap = decode_a_k(kind, min(k0 + ak, k_end - 1u));
        for (var r = 0u; r < 4u; r++) {
            let e = tid + r * 256u;
            let am = e / SLAB;
            var av = 0.0;
            if (m0 + am < rows_m && k0 + ak < k_end) {
                av = load_a(kind, rows[r], m0 + am, a_tap);
            }
            a_tile[ak * TILE + am] = av;
            let bn = e % TILE;
            let bk = e / TILE;
            var bv = 0.0;
            if (n0 + bn < p.N && k0 + bk < k_end) {
                bv = load_b(kind, k0 + bk, n0 + bn);
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
        out[p.rows_off + walk.split * p.M + m0 + tid] = rsum;
    }
    let acc = array<vec4<f32>, 4>(acc0, acc1, acc2, acc3);
    for (var i = 0u; i < 4u; i++) {
        let row = m0 + lid.y + 16u * i;
        for (var j = 0u; j < 4u; j++) {
            let col = n0 + lid.x + 16u * j;
            if (row < rows_m && col < p.N) {
                store(kind, walk.split, row, col, acc[i][j]);
            }
        }
    }
}

@compute @workgroup_size(16, 16)
fn conv2d(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    p = p_seeds[wid.z % SEEDS];
    implicit_gemm(0u, wid, lid);
}

@compute @workgroup_size(16, 16)
fn conv2d_input_grad(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    p = p_seeds[wid.z % SEEDS];
    implicit_gemm(1u, wid, lid);
}

@compute @workgroup_size(16, 16)
fn conv2d_input_grad_parity(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    p = p_seeds[wid.z % SEEDS];
    implicit_gemm(3u, wid, lid);
}

@compute @workgroup_size(16, 16)
fn conv2d_weight_grad(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    p = p_seeds[wid.z % SEEDS];
    implicit_gemm(2u, wid, lid);
}

// The splits of a split conv2d or conv2d_input_grad added up in order, then
// the epilogue: out[e] = epilogue(Σ_z a[a_off + z·M·N + e]).
@compute @workgroup_size(256)
fn conv2d_sum_splits(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                     @builtin(local_invocation_id) lid: vec3<u32>) {
    p = p_seeds[wid.z % SEEDS];
    let e = (wid.y * nwg.x + wid.x) * 256u + lid.x;
    let len = p.M * p.N;
    if (e >= len) {
        return;
    }
    var v = 0.0;
    for (var z = 0u; z < p.splits; z++) {
        v += a[p.a_off + z * len + e];
    }
    out[p.out_off + e] = epilogue(e, (e / p.plane) % p.N, v);
}

// ---------------------------------------------------------------------------
// The 128-tile implicit GEMMs: conv2d_128, conv2d_input_grad_128,
// conv2d_input_grad_parity_128 and conv2d_weight_grad_128 compute the same
// four GEMMs (kinds 0, 1, 3, 2) and epilogues as the 64-tile entries above,
// for outputs large enough to fill the card with 128×128 tiles.
//   workgroup 16×16 threads computes a 128×128 tile; thread (tx, ty) the 8×8
//   block at rows ty·4 + {0..3} and 64 + ty·4 + {0..3}, cols tx·4 + {0..3}
//   and 64 + tx·4 + {0..3}, in sixteen vec4 registers. Each k step reads two
//   vec4 of A and two of B from workgroup memory for 64 multiply-adds (the
//   64-tile kernel: 8 scalars for 16). grid (⌈N/128⌉, ⌈M/128⌉, splits or
//   parity classes).
//   Staging: K in slabs of 16 through 16 KiB of workgroup memory, A as
//   [16][128] (k-major), B as [16][128]. Thread t stages one vec4 of A (tile
//   rows 4q..4q+3, q = t % 32) and one of B (cols 4q..4q+3) at each of slab
//   k = t / 32 and t / 32 + 8: a warp writes 32 consecutive vec4 (no bank
//   conflicts); each thread decodes its four rows and columns once and two
//   taps (or output pixels) per slab. The next slab's four vec4 are fetched
//   into registers while the current one is multiplied, so global latency
//   overlaps the arithmetic.
//   Row sums (db, kind 2): thread tid < 128 of a first-column-tile workgroup
//   sums row m0 + tid in k order, as the 64-tile kernel.

const BIG: u32 = 128u;

var<workgroup> a_big: array<vec4<f32>, 512>; // [SLAB][BIG / 4]: element (k, m) at [k·32 + m/4][m%4]
var<workgroup> b_big: array<vec4<f32>, 512>; // [SLAB][BIG / 4]: element (k, n) at [k·32 + n/4][n%4]

// The thread's fixed operands of the walk: the pixels of its four staged
// GEMM rows m, m+1, m+2, m+3 and (kind 2) the taps of its four staged
// columns n..n+3. Named fields, not arrays: NVIDIA's compiler puts
// dynamically indexed private arrays in local memory.
struct Lanes {
    r0: Pixel, r1: Pixel, r2: Pixel, r3: Pixel,
    c0: Pixel, c1: Pixel, c2: Pixel, c3: Pixel,
    m: u32,
    n: u32,
    rows_m: u32,
}

fn a_at(kind: u32, row: Pixel, m: u32, rows_m: u32, kt: Pixel) -> f32 {
    if (m < rows_m) {
        return load_a(kind, row, m, kt);
    }
    return 0.0;
}

fn b_at(kind: u32, k: u32, kt: Pixel, n: u32, col: Pixel) -> f32 {
    if (n < p.N) {
        return load_b_decoded(kind, k, kt, n, col);
    }
    return 0.0;
}

// The vec4 of A (rows m..m+3) and of B (cols n..n+3) at slab index k; zero past K.
struct Quad {
    a: vec4<f32>,
    b: vec4<f32>,
}

// A at the lanes' rows m..m+3 and B at their columns n..n+3, at inner index
// k (decoded as kt); k < K.
fn quad_a(kind: u32, l: Lanes, kt: Pixel) -> vec4<f32> {
    return vec4<f32>(a_at(kind, l.r0, l.m, l.rows_m, kt), a_at(kind, l.r1, l.m + 1u, l.rows_m, kt),
                     a_at(kind, l.r2, l.m + 2u, l.rows_m, kt), a_at(kind, l.r3, l.m + 3u, l.rows_m, kt));
}

fn quad_b(kind: u32, l: Lanes, k: u32, kt: Pixel) -> vec4<f32> {
    return vec4<f32>(b_at(kind, k, kt, l.n, l.c0), b_at(kind, k, kt, l.n + 1u, l.c1),
                     b_at(kind, k, kt, l.n + 2u, l.c2), b_at(kind, k, kt, l.n + 3u, l.c3));
}

fn fetch_quad(kind: u32, l: Lanes, k: u32, k_end: u32) -> Quad {
    if (k >= k_end) {
        return Quad(vec4<f32>(0.0), vec4<f32>(0.0));
    }
    let kt = decode_a_k(kind, k);
    return Quad(quad_a(kind, l, kt), quad_b(kind, l, k, kt));
}

// The epilogue of one output row's eight columns c0 + {0..3} (lo) and
// c0 + 64 + {0..3} (hi).
fn store_big_row(kind: u32, split: u32, row: u32, rows_m: u32, c0: u32, lo: vec4<f32>, hi: vec4<f32>) {
    if (row >= rows_m) {
        return;
    }
    let n = p.N;
    if (c0 < n) { store(kind, split, row, c0, lo.x); }
    if (c0 + 1u < n) { store(kind, split, row, c0 + 1u, lo.y); }
    if (c0 + 2u < n) { store(kind, split, row, c0 + 2u, lo.z); }
    if (c0 + 3u < n) { store(kind, split, row, c0 + 3u, lo.w); }
    if (c0 + 64u < n) { store(kind, split, row, c0 + 64u, hi.x); }
    if (c0 + 65u < n) { store(kind, split, row, c0 + 65u, hi.y); }
    if (c0 + 66u < n) { store(kind, split, row, c0 + 66u, hi.z); }
    if (c0 + 67u < n) { store(kind, split, row, c0 + 67u, hi.w); }
}

// The lanes of a thread staging rows m..m+3 and columns n..n+3.
fn lanes(kind: u32, m: u32, n: u32, rows_m: u32) -> Lanes {
    let last_m = rows_m - 1u;
    let last_n = p.N - 1u;
    return Lanes(
        row_pixel(kind, min(m, last_m)), row_pixel(kind, min(m + 1u, last_m)),
        row_pixel(kind, min(m + 2u, last_m)), row_pixel(kind, min(m + 3u, last_m)),
        tap(min(n, last_n)), tap(min(n + 1u, last_n)),
        tap(min(n + 2u, last_n)), tap(min(n + 3u, last_n)),
        m, n, rows_m);
}

fn implicit_gemm_128(kind: u32, wid: vec3<u32>, lid: vec3<u32>) {
    let tid = lid.y * 16u + lid.x;
    let m0 = wid.y * BIG;
    let n0 = wid.x * BIG;
    let walk = gemm_walk(kind, wid.z / SEEDS);
    let rows_m = walk.rows;
    let k_begin = walk.k_begin;
    let k_end = walk.k_end;
    if (rows_m == 0u) {
        return;
    }
    // Thread t stages the vec4 of rows (and columns) 4q..4q+3, q = t % 32,
    // at slab k = t / 32 and t / 32 + 8.
    let q = tid % 32u;
    let k_lane = tid / 32u;
    let m = m0 + 4u * q;
    let n = n0 + 4u * q;
    let l = lanes(kind, m, n, rows_m);
    let row_sum = kind == 2u && p.has_rows == 1u && wid.x == 0u && tid < BIG;
    var rsum = 0.0;
    var acc0 = vec4<f32>(0.0); var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0); var acc3 = vec4<f32>(0.0);
    var acc4 = vec4<f32>(0.0); var acc5 = vec4<f32>(0.0);
    var acc6 = vec4<f32>(0.0); var acc7 = vec4<f32>(0.0);
    var acc8 = vec4<f32>(0.0); var acc9 = vec4<f32>(0.0);
    var acc10 = vec4<f32>(0.0); var acc11 = vec4<f32>(0.0);
    var acc12 = vec4<f32>(0.0); var acc13 = vec4<f32>(0.0);
    var acc14 = vec4<f32>(0.0); var acc15 = vec4<f32>(0.0);
    var lo = fetch_quad(kind, l, k_begin + k_lane, k_end);
    var hi = fetch_quad(kind, l, k_begin + k_lane + 8u, k_end);
    for (var k0 = k_begin; k0 < k_end; k0 += SLAB) {
        a_big[k_lane * 32u + q] = lo.a;
        a_big[(k_lane + 8u) * 32u + q] = hi.a;
        b_big[k_lane * 32u + q] = lo.b;
        b_big[(k_lane + 8u) * 32u + q] = hi.b;
        workgroupBarrier();
        lo = fetch_quad(kind, l, k0 + SLAB + k_lane, k_end);
        hi = fetch_quad(kind, l, k0 + SLAB + k_lane + 8u, k_end);
        for (var kk = 0u; kk < SLAB; kk++) {
            let lo_a = a_big[kk * 32u + lid.y];
            let hi_a = a_big[kk * 32u + 16u + lid.y];
            let lo_b = b_big[kk * 32u + lid.x];
            let hi_b = b_big[kk * 32u + 16u + lid.x];
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
                rsum += a_big[kk * 32u + tid / 4u][tid % 4u];
            }
        }
        workgroupBarrier();
    }
    if (row_sum && m0 + tid < p.M) {
        out[p.rows_off + walk.split * p.M + m0 + tid] = rsum;
    }
    let r0 = m0 + lid.y * 4u;
    let c0 = n0 + lid.x * 4u;
    store_big_row(kind, walk.split, r0, rows_m, c0, acc0, acc1);
    store_big_row(kind, walk.split, r0 + 1u, rows_m, c0, acc2, acc3);
    store_big_row(kind, walk.split, r0 + 2u, rows_m, c0, acc4, acc5);
    store_big_row(kind, walk.split, r0 + 3u, rows_m, c0, acc6, acc7);
    store_big_row(kind, walk.split, r0 + 64u, rows_m, c0, acc8, acc9);
    store_big_row(kind, walk.split, r0 + 65u, rows_m, c0, acc10, acc11);
    store_big_row(kind, walk.split, r0 + 66u, rows_m, c0, acc12, acc13);
    store_big_row(kind, walk.split, r0 + 67u, rows_m, c0, acc14, acc15);
}

@compute @workgroup_size(16, 16)
fn conv2d_128(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    p = p_seeds[wid.z % SEEDS];
    implicit_gemm_128(0u, wid, lid);
}

@compute @workgroup_size(16, 16)
fn conv2d_input_grad_128(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    p = p_seeds[wid.z % SEEDS];
    implicit_gemm_128(1u, wid, lid);
}

@compute @workgroup_size(16, 16)
fn conv2d_input_grad_parity_128(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    p = p_seeds[wid.z % SEEDS];
    implicit_gemm_128(3u, wid, lid);
}

@compute @workgroup_size(16, 16)
fn conv2d_weight_grad_128(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    p = p_seeds[wid.z % SEEDS];
    implicit_gemm_128(2u, wid, lid);
}

// ---------------------------------------------------------------------------
// The 128×64-tile implicit GEMMs (conv2d_128x64, conv2d_input_grad_128x64,
// conv2d_input_grad_parity_128x64, conv2d_weight_grad_128x64): the same
// GEMMs for outputs at most 64 columns wide (the strided input gradients of
// 64-channel layers), where half of a 128-wide tile would be idle.
//   workgroup 16×16 threads computes a 128×64 tile; thread (tx, ty) the 8×4
//   block at rows ty·4 + {0..3} and 64 + ty·4 + {0..3}, cols tx·4 + {0..3},
//   in eight vec4 registers: two vec4 of A and one of B per k step for 32
//   multiply-adds. grid (⌈N/64⌉, ⌈M/128⌉, splits or parity classes × splits).
//   Staging: A as the 128-tile kernel's; B as [16][64] in b_big's first
//   half, thread t staging the vec4 of columns 4(t % 16)..+3 at slab k =
//   t / 16. The next slab is fetched into registers during the current one.

// The epilogue of one output row's four columns c0 + {0..3}.
fn store_narrow_row(kind: u32, split: u32, row: u32, rows_m: u32, c0: u32, v: vec4<f32>) {
    if (row >= rows_m) {
        return;
    }
    let n = p.N;
    if (c0 < n) { store(kind, split, row, c0, v.x); }
    if (c0 + 1u < n) { store(kind, split, row, c0 + 1u, v.y); }
    if (c0 + 2u < n) { store(kind, split, row, c0 + 2u, v.z); }
    if (c0 + 3u < n) { store(kind, split, row, c0 + 3u, v.w); }
}

// A's vec4 at inner index k for the lanes' rows, or B's for their columns; zero past k_end.
fn fetch_a(kind: u32, l: Lanes, k: u32, k_end: u32) -> vec4<f32> {
    if (k >= k_end) {
        return vec4<f32>(0.0);
    }
    return quad_a(kind, l, decode_a_k(kind, k));
}

fn fetch_b(kind: u32, l: Lanes, k: u32, k_end: u32) -> vec4<f32> {
    if (k >= k_end) {
        return vec4<f32>(0.0);
    }
    return quad_b(kind, l, k, decode_a_k(kind, k));
}

fn implicit_gemm_128x64(kind: u32, wid: vec3<u32>, lid: vec3<u32>) {
    let tid = lid.y * 16u + lid.x;
    let m0 = wid.y * BIG;
    let n0 = wid.x * 64u;
    let walk = gemm_walk(kind, wid.z / SEEDS);
    let rows_m = walk.rows;
    let k_begin = walk.k_begin;
    let k_end = walk.k_end;
    if (rows_m == 0u) {
        return;
    }
    // A: rows 4q..4q+3 (q = t % 32) at slab k = t / 32 and + 8; B: columns
    // 4qb..4qb+3 (qb = t % 16) at slab k = t / 16.
    let q = tid % 32u;
    let k_lane = tid / 32u;
    let qb = tid % 16u;
    let kb = tid / 16u;
    let la = lanes(kind, m0 + 4u * q, n0, rows_m);
    let lb = lanes(kind, m0, n0 + 4u * qb, rows_m);
    let row_sum = kind == 2u && p.has_rows == 1u && wid.x == 0u && tid < BIG;
    var rsum = 0.0;
    var acc0 = vec4<f32>(0.0); var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0); var acc3 = vec4<f32>(0.0);
    var acc4 = vec4<f32>(0.0); var acc5 = vec4<f32>(0.0);
    var acc6 = vec4<f32>(0.0); var acc7 = vec4<f32>(0.0);
    var a_lo = fetch_a(kind, la, k_begin + k_lane, k_end);
    var a_hi = fetch_a(kind, la, k_begin + k_lane + 8u, k_end);
    var bv = fetch_b(kind, lb, k_begin + kb, k_end);
    for (var k0 = k_begin; k0 < k_end; k0 += SLAB) {
        a_big[k_lane * 32u + q] = a_lo;
        a_big[(k_lane + 8u) * 32u + q] = a_hi;
        b_big[kb * 16u + qb] = bv;
        workgroupBarrier();
        a_lo = fetch_a(kind, la, k0 + SLAB + k_lane, k_end);
        a_hi = fetch_a(kind, la, k0 + SLAB + k_lane + 8u, k_end);
        bv = fetch_b(kind, lb, k0 + SLAB + kb, k_end);
        for (var kk = 0u; kk < SLAB; kk++) {
            let lo_a = a_big[kk * 32u + lid.y];
            let hi_a = a_big[kk * 32u + 16u + lid.y];
            let b4 = b_big[kk * 16u + lid.x];
            acc0 += lo_a.x * b4; acc1 += lo_a.y * b4;
            acc2 += lo_a.z * b4; acc3 += lo_a.w * b4;
            acc4 += hi_a.x * b4; acc5 += hi_a.y * b4;
            acc6 += hi_a.z * b4; acc7 += hi_a.w * b4;
        }
        if (row_sum) {
            for (var kk = 0u; kk < SLAB; kk++) {
                rsum += a_big[kk * 32u + tid / 4u][tid % 4u];
            }
        }
        workgroupBarrier();
    }
    if (row_sum && m0 + tid < p.M) {
        out[p.rows_off + walk.split * p.M + m0 + tid] = rsum;
    }
    let r0 = m0 + lid.y * 4u;
    let c0 = n0 + lid.x * 4u;
    store_narrow_row(kind, walk.split, r0, rows_m, c0, acc0);
    store_narrow_row(kind, walk.split, r0 + 1u, rows_m, c0, acc1);
    store_narrow_row(kind, walk.split, r0 + 2u, rows_m, c0, acc2);
    store_narrow_row(kind, walk.split, r0 + 3u, rows_m, c0, acc3);
    store_narrow_row(kind, walk.split, r0 + 64u, rows_m, c0, acc4);
    store_narrow_row(kind, walk.split, r0 + 65u, rows_m, c0, acc5);
    store_narrow_row(kind, walk.split, r0 + 66u, rows_m, c0, acc6);
    store_narrow_row(kind, walk.split, r0 + 67u, rows_m, c0, acc7);
}

@compute @workgroup_size(16, 16)
fn conv2d_128x64(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    p = p_seeds[wid.z % SEEDS];
    implicit_gemm_128x64(0u, wid, lid);
}

@compute @workgroup_size(16, 16)
fn conv2d_input_grad_128x64(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    p = p_seeds[wid.z % SEEDS];
    implicit_gemm_128x64(1u, wid, lid);
}

@compute @workgroup_size(16, 16)
fn conv2d_input_grad_parity_128x64(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    p = p_seeds[wid.z % SEEDS];
    implicit_gemm_128x64(3u, wid, lid);
}

@compute @workgroup_size(16, 16)
fn conv2d_weight_grad_128x64(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    p = p_seeds[wid.z % SEEDS];
    implicit_gemm_128x64(2u, wid, lid);
}

// ---------------------------------------------------------------------------
// conv2d_input_grad_direct: the input gradient for few input channels (the
// DCGAN's one-channel image side), where a 64-wide tile of N = C columns
// would compute one useful column in 64.
//   One parity class per grid z, as conv2d_input_grad_parity: the input
//   pixels (h, v) with h ≡ rh (mod sh), v ≡ rv (mod sw), whose taps are
//   i = i0 + ii·sh, j = j0 + jj·sw, the same for every thread of the class
//   (no warp splits between parities). Eight lanes per element dx[b, c, h, v]:
//   lane l sums the output channels o ≡ l (mod 8), o ascending, over the
//   class's taps (ii, jj) that land inside dy; lane 0 adds the eight sums in
//   lane order, then applies the epilogue of the header.
//   Workgroup of 256 threads: 32 elements × 8 lanes (thread t: element t % 32
//   of the class's (b, h / sh, v / sw, c) in that order, lane t / 32).
//   grid (min(G, 65535), ⌈G/65535⌉, sh·sw), G = ⌈rows·C / 32⌉, rows the
//   largest class's (class (0, 0)) pixel count.
const DIRECT_LANES: u32 = 8u;
var<workgroup> lane_sums: array<f32, 256>;

@compute @workgroup_size(256)
fn conv2d_input_grad_direct(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                            @builtin(local_invocation_index) lid: u32) {
    p = p_seeds[wid.z % SEEDS];
    let slot = lid % 32u;
    let lane = lid / 32u;
    let cls = parity_class(wid.z / SEEDS);
    let idx = (wid.y * nwg.x + wid.x) * 32u + slot;
    let count = cls.rows * p.in_ch;
    let inside = idx < count;
    let ii_max = select(0u, cls.ki, inside);
    let c = idx % p.in_ch;
    let px = pixel(min(idx, max(count, 1u) - 1u) / p.in_ch, cls.hc, cls.wc);
    let h = cls.rh + px.r * p.sh;
    let v = cls.rv + px.c * p.sw;
    // dy's row for class tap ii is oh0 + hh − ii (no division), likewise its column.
    let oh_top = i32(cls.oh0 + px.r);
    let ow_top = i32(cls.ow0 + px.c);
    var s = 0.0;
    for (var o = lane; o < p.out_ch; o += DIRECT_LANES) {
        let dy_plane = p.a_off + (px.b * p.out_ch + o) * p.out_h * p.out_w;
        let w_plane = p.b_off + (o * p.in_ch + c) * p.kh * p.kw;
        for (var ii = 0u; ii < ii_max; ii++) {
            let oh = oh_top - i32(ii);
            if (oh < 0) {
                break;
            }
            if (u32(oh) >= p.out_h) {
                continue;
            }
            let w_row = w_plane + (cls.i0 + ii * p.sh) * p.kw + cls.j0;
            for (var jj = 0u; jj < cls.kj; jj++) {
                let ow = ow_top - i32(jj);
                if (ow < 0) {
                    break;
                }
                if (u32(ow) < p.out_w) {
                    s += a[dy_plane + u32(oh) * p.out_w + u32(ow)] * b[w_row + jj * p.sw];
                }
            }
        }
    }
    lane_sums[lid] = s;
    workgroupBarrier();
    if (lane != 0u || !inside) {
        return;
    }
    var total = 0.0;
    for (var l = 0u; l < DIRECT_LANES; l++) {
        total += lane_sums[l * 32u + slot];
    }
    // GEMM row m = (b, h, v), column n = c: the tiled kernel's epilogue.
    store(1u, 0u, (px.b * p.in_h + h) * p.in_w + v, c, total);
}
