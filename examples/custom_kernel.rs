//! How to add a kernel: `examples/scale_add.wgsl` (`y = a·x + y`) beside its
//! Rust reference, validated by naga, compiled through wgpu, run on random
//! inputs at awkward sizes and checked against the reference, as
//! tests/kernels.rs checks every kernel in shaders/.
//!
//!     cargo run --release --example custom_kernel
//!
//! A kernel of the library proper also gets an `Op` (src/plan.rs), a lowering
//! to its bindings and grid (src/gpu/lowering.rs) and a CPU twin run by the
//! CPU backend (src/cpu/kernels.rs); this is the part every kernel shares.

use std::process::ExitCode;

use rand::{Rng, SeedableRng, rngs::StdRng};
use shadergan::gpu::GpuContext;
use shadergan::gpu::lowering::grid_1d;

pub const SOURCE: &str = include_str!("scale_add.wgsl");
/// Sizes that catch wrong grids: one element, less than a workgroup, not a
/// multiple of 256, one past 2^16.
pub const SIZES: [usize; 4] = [1, 7, 1000, 65537];
/// Words after y that the kernel must leave alone.
const GUARD: usize = 64;
const GUARD_VALUE: f32 = -12345.0;

/// The Rust reference: what the kernel must compute.
pub fn scale_add_reference(a: f32, x: &[f32], y: &mut [f32]) {
    for (y, x) in y.iter_mut().zip(x) {
        *y += a * x;
    }
}

/// Parses and validates the WGSL with naga, as tests/naga.rs does for shaders/.
pub fn validate_with_naga() -> Result<(), String> {
    let module = naga::front::wgsl::parse_str(SOURCE).map_err(|e| e.emit_to_string(SOURCE))?;
    let flags = naga::valid::ValidationFlags::all();
    let mut validator = naga::valid::Validator::new(flags, naga::valid::Capabilities::empty());
    validator
        .validate(&module)
        .map_err(|e| e.emit_to_string(SOURCE))?;
    Ok(())
}

/// One launch over `x` and `y`; returns the new `y` followed by the guard words.
pub fn scale_add_gpu(
    ctx: &GpuContext,
    pipeline: &wgpu::ComputePipeline,
    a: f32,
    x: &[f32],
    y: &[f32],
) -> anyhow::Result<Vec<f32>> {
    use wgpu::BufferUsages as Usage;
    // The uniform block `Params` of the WGSL: n, a (by its bits), padding to 16 bytes.
    let params: [u32; 4] = [u32::try_from(x.len())?, a.to_bits(), 0, 0];
    let params = ctx.buffer_from("params", &params, Usage::UNIFORM);
    let x_buf = ctx.buffer_from("x", x, Usage::STORAGE);
    let y_guarded = [y, &[GUARD_VALUE; GUARD]].concat();
    let y_buf = ctx.buffer_from("y", &y_guarded, Usage::STORAGE | Usage::COPY_SRC);
    let bindings = [(0, &params), (1, &x_buf), (2, &y_buf)];
    let bind_group = ctx.bind_group("scale_add", pipeline, &bindings);
    let mut encoder = ctx.device.create_command_encoder(&Default::default());
    {
        let mut pass = encoder.begin_compute_pass(&Default::default());
        pass.set_pipeline(pipeline);
        pass.set_bind_group(0, &bind_group, &[]);
        let [gx, gy, gz] = grid_1d(x.len());
        pass.dispatch_workgroups(gx, gy, gz);
    }
    let bytes = ctx.submit_and_read(encoder, &y_buf, 0, (y_guarded.len() * 4) as u64)?;
    Ok(bytemuck::pod_collect_to_vec(&bytes))
}

/// `‖gpu − reference‖ / ‖reference‖` at each of `sizes`, on fresh random
/// inputs; an error if the kernel wrote past the end of y.
pub fn check(ctx: &GpuContext, sizes: &[usize], seed: u64) -> anyhow::Result<Vec<(usize, f64)>> {
    // Compiled through wgpu; the bind group layout comes from the WGSL's bindings.
    let pipeline = ctx.compile("scale_add", SOURCE, "scale_add")?;
    let mut rng = StdRng::seed_from_u64(seed);
    let mut errors = Vec::new();
    for &n in sizes {
        let mut draw = || -> Vec<f32> { (0..n).map(|_| rng.random_range(-1.0..1.0)).collect() };
        let (x, y) = (draw(), draw());
        let a = rng.random_range(-2.0..2.0);
        let got = scale_add_gpu(ctx, &pipeline, a, &x, &y)?;
        let guard_kept = got[n..].iter().all(|v| *v == GUARD_VALUE);
        anyhow::ensure!(guard_kept, "n={n}: the kernel wrote past the end of y");
        let mut want = y;
        scale_add_reference(a, &x, &mut want);
        let sq = |v: f32| f64::from(v).powi(2);
        let diff: f64 = got.iter().zip(&want).map(|(g, w)| sq(g - w)).sum();
        errors.push((n, (diff / want.iter().map(|w| sq(*w)).sum::<f64>()).sqrt()));
    }
    Ok(errors)
}

fn run() -> anyhow::Result<()> {
    validate_with_naga().map_err(|e| anyhow::anyhow!("naga: {e}"))?;
    println!("naga: scale_add.wgsl parses and validates");
    let ctx = GpuContext::new()?;
    println!("adapter: {}", ctx.describe());
    for (n, err) in check(&ctx, &SIZES, 0)? {
        println!("scale_add n={n:6}: rel.err {err:.1e}");
        anyhow::ensure!(
            err <= 1e-6,
            "n={n}: the kernel disagrees with its reference"
        );
    }
    Ok(())
}

fn main() -> ExitCode {
    run().map_or_else(
        |e| {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        },
        |()| ExitCode::SUCCESS,
    )
}
