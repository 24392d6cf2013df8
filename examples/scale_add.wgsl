// scale_add.wgsl: a fused scale-and-add, the kernel of examples/custom_kernel.rs.
//
// Math
//   y[i] = a·x[i] + y[i]        for i < n
//
// Buffers (f32)
//   binding 0  uniform Params { n, a }
//   binding 1  x  read
//   binding 2  y  read_write
//
// Dispatch
//   256 threads per workgroup, one element each; past 65535 workgroups the
//   grid folds into y (`gpu::lowering::grid_1d`), so thread
//   i = (wid.y·num_workgroups.x + wid.x)·256 + lid.x, and threads past n return.

struct Params {
    n: u32,
    a: f32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;

@compute @workgroup_size(256)
fn scale_add(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
             @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = (wid.y * nwg.x + wid.x) * 256u + lid.x;
    if (i < p.n) {
        y[i] = p.a * x[i] + y[i];
    }
}
