// matmul_naive.wgsl: the first rung of examples/matmul_study.rs's ladder, the
// product with no reuse at all, to measure the tiled kernels against.
//
// Math: C[m, n] = act( Σ_k A(m, k) · B(k, n) + bias[n] ), with act identity or
// relu (the study's activation); the Params and bindings of shaders/matmul.wgsl.
//
// Dispatch: workgroup 16×16 threads, one thread per output element,
// grid (ceil(N/16), ceil(M/16), 1). Each thread walks its row of A and column
// of B straight from global memory: two loads per multiply-add, against one
// per 32 in the 64-tile kernel (whose 64×16 slabs of A and B, staged in
// workgroup memory, feed 64×64×16 multiply-adds).

struct Params {
    M: u32, N: u32, K: u32,
    a_off: u32, a_rs: u32, a_cs: u32,
    b_off: u32, b_rs: u32, b_cs: u32,
    c_off: u32, bias_off: u32, has_bias: u32,
    act: u32, slope: f32, _pad0: u32, _pad1: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> c: array<f32>;

@compute @workgroup_size(16, 16)
fn matmul_naive(@builtin(global_invocation_id) gid: vec3<u32>) {
    let row = gid.y;
    let col = gid.x;
    if (row >= p.M || col >= p.N) {
        return;
    }
    var acc = 0.0;
    for (var k = 0u; k < p.K; k++) {
        acc += a[p.a_off + row * p.a_rs + k * p.a_cs] * b[p.b_off + k * p.b_rs + col * p.b_cs];
    }
    if (p.has_bias == 1u) {
        acc += bias[p.bias_off + col];
    }
    c[p.c_off + row * p.N + col] = select(acc, max(acc, 0.0), p.act == 1u);
}
