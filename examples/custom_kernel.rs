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
use wgpu::util::DeviceExt;

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

/// Compiles the kernel (the bind group layout is derived from its bindings).
pub fn compile(ctx: &GpuContext) -> wgpu::ComputePipeline {
    let module = ctx
        .device
        .create_shader_module(wgpu::include_wgsl!("scale_add.wgsl"));
    let descriptor = wgpu::ComputePipelineDescriptor {
        label: Some("scale_add"),
        layout: None,
        module: &module,
        entry_point: Some("scale_add"),
        compilation_options: Default::default(),
        cache: None,
    };
    ctx.device.create_compute_pipeline(&descriptor)
}

/// One launch over `x` and `y`; returns the new `y` followed by the guard words.
pub fn scale_add_gpu(
    ctx: &GpuContext,
    pipeline: &wgpu::ComputePipeline,
    a: f32,
    x: &[f32],
    y: &[f32],
) -> anyhow::Result<Vec<f32>> {
    let buffer = |contents: &[u8], usage| {
        let desc = wgpu::util::BufferInitDescriptor {
            label: None,
            contents,
            usage,
        };
        ctx.device.create_buffer_init(&desc)
    };
    let params: [u32; 4] = [u32::try_from(x.len())?, a.to_bits(), 0, 0];
    let params = buffer(bytemuck::bytes_of(&params), wgpu::BufferUsages::UNIFORM);
    let x_buf = buffer(bytemuck::cast_slice(x), wgpu::BufferUsages::STORAGE);
    let y_guarded = [y, &[GUARD_VALUE; GUARD]].concat();
    let y_usage = wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC;
    let y_buf = buffer(bytemuck::cast_slice(&y_guarded), y_usage);
    let entries: Vec<_> = [&params, &x_buf, &y_buf]
        .iter()
        .enumerate()
        .map(|(i, b)| wgpu::BindGroupEntry {
            binding: i as u32,
            resource: b.as_entire_binding(),
        })
        .collect();
    let layout = pipeline.get_bind_group_layout(0);
    let desc = wgpu::BindGroupDescriptor {
        label: None,
        layout: &layout,
        entries: &entries,
    };
    let bind_group = ctx.device.create_bind_group(&desc);
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
    let pipeline = compile(ctx);
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
