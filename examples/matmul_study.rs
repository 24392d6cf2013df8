//! A matmul study: time a WGSL matmul kernel with the binding layout of
//! `shaders/matmul.wgsl` at several shapes, on the device (timestamp queries),
//! and check it against the CPU reference.
//!
//!     cargo run --release --example matmul_study -- [kernel.wgsl ...]
//!
//! With no argument it studies `shaders/matmul.wgsl`; give edited copies to
//! compare variants side by side in one run.

use std::time::Instant;

use rand::{Rng, SeedableRng, rngs::StdRng};
use shadergan::gpu::GpuContext;
use shadergan::gpu::lowering::{MATMUL_TILE, lower};
use shadergan::plan::{Activation, BufferId, Op, Slice};

const SHAPES: [(usize, usize, usize); 5] = [
    (64, 128, 784),
    (128, 128, 128),
    (1024, 1024, 1024),
    (4096, 4096, 4096),
    (8192, 128, 784),
];

fn random(n: usize, seed: u64) -> Vec<f32> {
    let mut r = StdRng::seed_from_u64(seed);
    (0..n).map(|_| r.random_range(-1.0..1.0)).collect()
}

fn slice(id: usize, len: usize) -> Slice {
    Slice {
        buffer: BufferId(id),
        offset: 0,
        len,
    }
}

fn storage(ctx: &GpuContext, data: &[f32]) -> wgpu::Buffer {
    use wgpu::util::DeviceExt;
    ctx.device
        .create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: None,
            contents: bytemuck::cast_slice(data),
            usage: wgpu::BufferUsages::STORAGE
                | wgpu::BufferUsages::COPY_SRC
                | wgpu::BufferUsages::COPY_DST,
        })
}

fn study(ctx: &GpuContext, path: &str, source: &str) -> anyhow::Result<()> {
    use wgpu::util::DeviceExt;
    let module = ctx
        .device
        .create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some(path),
            source: wgpu::ShaderSource::Wgsl(source.into()),
        });
    let pipeline = ctx
        .device
        .create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some(path),
            layout: None,
            module: &module,
            entry_point: Some("matmul_bias_act"),
            compilation_options: Default::default(),
            cache: None,
        });
    for (m, n, k) in SHAPES {
        let x = random(m * k, 1);
        let w = random(n * k, 2);
        let b = random(n, 3);
        let op = Op::MatmulBiasAct {
            x: slice(0, m * k),
            w: slice(1, n * k),
            b: Some(slice(2, n)),
            y: slice(3, m * n),
            m,
            n,
            k,
            act: Activation::Relu,
        };
        let call = lower(&op);
        let buffers = [
            storage(ctx, &x),
            storage(ctx, &w),
            storage(ctx, &b),
            storage(ctx, &vec![f32::NAN; m * n]),
        ];
        let uniform = ctx
            .device
            .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: None,
                contents: bytemuck::cast_slice(&call.params),
                usage: wgpu::BufferUsages::UNIFORM,
            });
        let mut entries = vec![wgpu::BindGroupEntry {
            binding: call.uniform_binding,
            resource: uniform.as_entire_binding(),
        }];
        for (binding, s) in &call.storage {
            entries.push(wgpu::BindGroupEntry {
                binding: *binding,
                resource: buffers[s.buffer.0].as_entire_binding(),
            });
        }
        let bind_group = ctx.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: None,
            layout: &pipeline.get_bind_group_layout(0),
            entries: &entries,
        });
        let reps = if m * n * k >= 1 << 30 { 5 } else { 50 };
        let run = |reps: usize| -> anyhow::Result<f64> {
            let mut encoder = ctx.device.create_command_encoder(&Default::default());
            {
                let mut pass = encoder.begin_compute_pass(&Default::default());
                pass.set_pipeline(&pipeline);
                pass.set_bind_group(0, &bind_group, &[]);
                for _ in 0..reps {
                    let [x, y, z] = call.workgroups;
                    pass.dispatch_workgroups(x, y, z);
                }
            }
            let t = Instant::now();
            ctx.queue.submit([encoder.finish()]);
            ctx.wait_idle()?;
            Ok(t.elapsed().as_secs_f64() / reps as f64)
        };
        run(1)?;
        let secs = run(reps)?;
        // Check one result against the CPU reference.
        let mut want = vec![0.0; m * n];
        shadergan::cpu::kernels::matmul_bias_act(
            &x,
            &w,
            Some(&b),
            &mut want,
            m,
            n,
            k,
            Activation::Relu,
        );
        let plan_read = read(ctx, &buffers[3], m * n)?;
        let (mut diff, mut norm) = (0.0f64, 0.0f64);
        for (g, w) in plan_read.iter().zip(&want) {
            diff += f64::from(g - w).powi(2);
            norm += f64::from(*w).powi(2);
        }
        println!(
            "{path:32} {m:5}x{n:5}x{k:5}  {:9.1} us  {:8.1} GFLOP/s  rel.err {:.1e}  (tile {MATMUL_TILE})",
            secs * 1e6,
            2.0 * (m * n * k) as f64 / secs / 1e9,
            (diff / norm).sqrt()
        );
    }
    Ok(())
}

fn read(ctx: &GpuContext, buffer: &wgpu::Buffer, len: usize) -> anyhow::Result<Vec<f32>> {
    let staging = ctx.device.create_buffer(&wgpu::BufferDescriptor {
        label: None,
        size: (len * 4) as u64,
        usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    let mut encoder = ctx.device.create_command_encoder(&Default::default());
    encoder.copy_buffer_to_buffer(buffer, 0, &staging, 0, (len * 4) as u64);
    ctx.queue.submit([encoder.finish()]);
    staging.map_async(wgpu::MapMode::Read, .., |_| {});
    ctx.wait_idle()?;
    let view = staging.get_mapped_range(..)?;
    Ok(bytemuck::cast_slice(&view).to_vec())
}

fn main() -> anyhow::Result<()> {
    let ctx = GpuContext::new()?;
    println!("adapter: {}", ctx.describe());
    let mut paths: Vec<String> = std::env::args().skip(1).collect();
    if paths.is_empty() {
        paths.push(concat!(env!("CARGO_MANIFEST_DIR"), "/shaders/matmul.wgsl").to_string());
    }
    for path in paths {
        let source = std::fs::read_to_string(&path)?;
        study(&ctx, &path, &source)?;
    }
    Ok(())
}
