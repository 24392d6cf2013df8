//! The matmul ladder, in the style of llm.c's dev/cuda: every matmul kernel
//! of the project, one rung each from the simplest up, each checked against
//! the CPU backend and timed, one line per rung and shape.
//!
//!     cargo run --release --example matmul_study -- [--quick] [variant.wgsl ...]
//!
//! 1 naive (examples/matmul_naive.wgsl): one thread per output, no reuse.
//! 2 64-tile `matmul_bias_act`: 4×4 outputs per thread, K in slabs staged in
//!   workgroup memory. 3 128-tile `matmul_bias_act_128`: 8×8 per thread, for
//!   large outputs. 4 split-K `matmul_bias_act_splitk`: 32×32 tiles, K split
//!   four ways inside a workgroup, for small outputs over a long K.
//! `*` marks the kernel the lowering picks (`gpu::lowering::matmul_entry`).
//! Each .wgsl argument adds a rung: an edited copy of shaders/matmul.wgsl,
//! its `matmul_bias_act` on 64-tiles. Times are device times from timestamp
//! queries where the adapter has them, else the wall clock. `--quick`: three
//! small shapes, seconds on llvmpipe; the default goes up to 4096³.

use std::time::Instant;

use rand::{Rng, SeedableRng, rngs::StdRng};
use shadergan::cpu::CpuPlan;
use shadergan::gpu::lowering::{lower, matmul_entry};
use shadergan::gpu::{GpuContext, GpuPlan};
use shadergan::plan::{Activation, Elem, Init, Op, Plan};
use shadergan::shaders::Shader;
use wgpu::util::DeviceExt;

type Shape = (usize, usize, usize);
pub const SHAPES: [Shape; 5] = [
    (64, 128, 784),
    (128, 128, 128),
    (1024, 1024, 1024),
    (4096, 4096, 4096),
    (8192, 128, 784),
];
pub const QUICK_SHAPES: [Shape; 3] = [(64, 128, 784), (333, 257, 129), (2048, 2048, 32)];

/// One kernel of the ladder; the grid is ⌈N/tile⌉ × ⌈M/tile⌉ workgroups.
pub struct Rung {
    pub name: String,
    pub source: String,
    pub entry: &'static str,
    pub tile: u32,
    /// One of the kernels the lowering picks from.
    pub lowered: bool,
}

/// The four rungs, then one per variant file.
pub fn rungs(variants: &[String]) -> anyhow::Result<Vec<Rung>> {
    let rung = |name: &str, source: &str, entry, tile, lowered| {
        let (name, source) = (name.to_string(), source.to_string());
        Rung {
            name,
            source,
            entry,
            tile,
            lowered,
        }
    };
    let project = Shader::Matmul.source();
    let mut all = vec![
        rung(
            "1 naive",
            include_str!("matmul_naive.wgsl"),
            "matmul_naive",
            16,
            false,
        ),
        rung("2 64-tile", project, "matmul_bias_act", 64, true),
        rung("3 128-tile", project, "matmul_bias_act_128", 128, true),
        rung("4 split-K", project, "matmul_bias_act_splitk", 32, true),
    ];
    for path in variants {
        let source = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("cannot read {path}: {e}"))?;
        all.push(rung(path, &source, "matmul_bias_act", 64, false));
    }
    Ok(all)
}

/// One line of the ladder.
pub struct Line {
    pub shape: Shape,
    pub rung: String,
    /// The kernel the lowering picks for this shape.
    pub picked: bool,
    pub seconds: f64,
    /// `‖gpu − cpu‖ / ‖cpu‖`.
    pub rel_err: f64,
}

/// Every rung at every shape, each timed over about `budget` seconds of
/// launches; `each` sees every line as it is measured.
pub fn ladder(
    ctx: &GpuContext,
    shapes: &[Shape],
    rungs: &[Rung],
    budget: f64,
    mut each: impl FnMut(&Line),
) -> anyhow::Result<Vec<Line>> {
    let pipelines: Vec<_> = rungs.iter().map(|r| compile(ctx, r)).collect();
    let mut lines = Vec::new();
    for (seed, &shape) in shapes.iter().enumerate() {
        let product = Product::new(ctx, shape, seed as u64)?;
        for (rung, pipeline) in rungs.iter().zip(&pipelines) {
            let line = product.measure(ctx, rung, pipeline, budget)?;
            each(&line);
            lines.push(line);
        }
    }
    Ok(lines)
}

/// `y = relu(x·Wᵀ + b)` at one shape as a plan: its buffers on the GPU, and
/// the reference computed by the CPU backend.
struct Product {
    op: Op,
    gpu: GpuPlan,
    cpu: CpuPlan,
}

impl Product {
    fn new(ctx: &GpuContext, (m, n, k): Shape, seed: u64) -> anyhow::Result<Product> {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut plan = Plan::default();
        let mut input = |name: &str, len: usize| {
            let v = (0..len).map(|_| rng.random_range(-1.0..1.0)).collect();
            plan.buffer(name, Elem::F32, len, Init::F32(v))
        };
        let (x, w, b) = (input("x", m * k), input("w", n * k), input("b", n));
        let (y, act) = (plan.f32_buffer("y", m * n), Activation::Relu);
        let op = Op::MatmulBiasAct {
            x,
            w,
            b: Some(b),
            y,
            m,
            n,
            k,
            act,
        };
        let gpu = GpuPlan::new(ctx, plan.clone())?;
        plan.add_phase("forward", vec![op.clone()]);
        let mut cpu = CpuPlan::new(plan)?;
        cpu.run(&["forward"])?;
        Ok(Product { op, gpu, cpu })
    }

    /// One launch of `rung` into a NaN-poisoned y, checked against the CPU, then the timed launches.
    fn measure(
        &self,
        ctx: &GpuContext,
        rung: &Rung,
        pipeline: &wgpu::ComputePipeline,
        budget: f64,
    ) -> anyhow::Result<Line> {
        let Op::MatmulBiasAct { y, m, n, k, .. } = self.op else {
            unreachable!("a matmul")
        };
        // The lowering gives the uniform block and the bindings; every rung shares them.
        let call = lower(&self.op);
        let contents = bytemuck::cast_slice(&call.params);
        let usage = wgpu::BufferUsages::UNIFORM;
        let params = ctx
            .device
            .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: None,
                contents,
                usage,
            });
        let mut bound = vec![(call.uniform_binding, &params)];
        bound.extend(
            call.storage
                .iter()
                .map(|(i, s)| (*i, self.gpu.buffer(s.buffer))),
        );
        let entries: Vec<_> = bound
            .iter()
            .map(|(i, b)| wgpu::BindGroupEntry {
                binding: *i,
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
        let grid = [n, m].map(|d| (d as u32).div_ceil(rung.tile));
        self.gpu.write(ctx, y, &vec![f32::NAN; m * n]);
        let once = time(ctx, pipeline, &bind_group, grid, 1)?;
        let (got, want) = (self.gpu.read_f32(ctx, y)?, self.cpu.f32s(y));
        let sq = |v: f32| f64::from(v).powi(2);
        let diff: f64 = got.iter().zip(want).map(|(g, w)| sq(g - w)).sum();
        let reps = (budget / once.max(1e-9)).clamp(1.0, 200.0) as u32;
        Ok(Line {
            shape: (m, n, k),
            rung: rung.name.clone(),
            picked: rung.lowered && matmul_entry(m, n, k).0 == rung.entry,
            seconds: time(ctx, pipeline, &bind_group, grid, reps)?,
            rel_err: (diff / want.iter().map(|w| sq(*w)).sum::<f64>()).sqrt(),
        })
    }
}

fn compile(ctx: &GpuContext, rung: &Rung) -> wgpu::ComputePipeline {
    let (name, source) = (rung.name.as_str(), rung.source.as_str());
    let source = wgpu::ShaderSource::Wgsl(source.into());
    let module = ctx
        .device
        .create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some(name),
            source,
        });
    ctx.device
        .create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some(name),
            layout: None,
            module: &module,
            entry_point: Some(rung.entry),
            compilation_options: Default::default(),
            cache: None,
        })
}

/// Seconds per launch over `reps` launches in one pass: the device time between
/// timestamps at the pass's start and end, else the wall clock around the submit.
fn time(
    ctx: &GpuContext,
    pipeline: &wgpu::ComputePipeline,
    bind_group: &wgpu::BindGroup,
    [x, y]: [u32; 2],
    reps: u32,
) -> anyhow::Result<f64> {
    let stamps = ctx.features.contains(wgpu::Features::TIMESTAMP_QUERY);
    let ty = wgpu::QueryType::Timestamp;
    let query_set = stamps.then(|| {
        ctx.device.create_query_set(&wgpu::QuerySetDescriptor {
            label: None,
            ty,
            count: 2,
        })
    });
    let (beginning_of_pass_write_index, end_of_pass_write_index) = (Some(0), Some(1));
    let timestamp_writes = query_set
        .as_ref()
        .map(|query_set| wgpu::ComputePassTimestampWrites {
            query_set,
            beginning_of_pass_write_index,
            end_of_pass_write_index,
        });
    let mut encoder = ctx.device.create_command_encoder(&Default::default());
    {
        let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: None,
            timestamp_writes,
        });
        pass.set_pipeline(pipeline);
        pass.set_bind_group(0, bind_group, &[]);
        (0..reps).for_each(|_| pass.dispatch_workgroups(x, y, 1));
    }
    let start = Instant::now();
    let Some(query_set) = query_set else {
        ctx.queue.submit([encoder.finish()]);
        ctx.wait_idle()?;
        return Ok(start.elapsed().as_secs_f64() / f64::from(reps));
    };
    let usage = wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC;
    let resolve = ctx.device.create_buffer(&wgpu::BufferDescriptor {
        label: None,
        size: 16,
        usage,
        mapped_at_creation: false,
    });
    encoder.resolve_query_set(&query_set, 0..2, &resolve, 0);
    let [t0, t1]: [u64; 2] =
        bytemuck::pod_read_unaligned(&ctx.submit_and_read(encoder, &resolve, 0, 16)?);
    let ns = t1.saturating_sub(t0) as f64 * f64::from(ctx.queue.get_timestamp_period());
    Ok(ns * 1e-9 / f64::from(reps))
}

fn run() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let quick = args.iter().any(|a| a == "--quick");
    let variants: Vec<String> = args.into_iter().filter(|a| a != "--quick").collect();
    if let Some(flag) = variants.iter().find(|a| a.starts_with('-')) {
        anyhow::bail!("unknown option {flag} (usage: matmul_study [--quick] [variant.wgsl ...])");
    }
    let ctx = GpuContext::new()?;
    let stamps = ctx.features.contains(wgpu::Features::TIMESTAMP_QUERY);
    let clock = if stamps {
        "device time from timestamp queries"
    } else {
        "wall clock"
    };
    println!("adapter: {}; {clock}", ctx.describe());
    println!(
        "{:>5} {:>5} {:>5}  {:<14} {:>11} {:>9}  rel.err",
        "m", "n", "k", "rung", "us/launch", "GFLOP/s"
    );
    let (shapes, budget): (&[_], _) = if quick {
        (&QUICK_SHAPES, 0.05)
    } else {
        (&SHAPES, 0.25)
    };
    ladder(&ctx, shapes, &rungs(&variants)?, budget, |l| {
        let ((m, n, k), us) = (l.shape, l.seconds * 1e6);
        let gflops = 2.0 * (m * n * k) as f64 / l.seconds / 1e9;
        let name = format!("{}{}", l.rung, if l.picked { " *" } else { "" });
        println!(
            "{m:5} {n:5} {k:5}  {name:<14} {us:11.1} {gflops:9.1}  {:.1e}",
            l.rel_err
        );
    })?;
    Ok(())
}

fn main() -> std::process::ExitCode {
    if let Err(e) = run() {
        eprintln!("error: {e:#}");
        return std::process::ExitCode::FAILURE;
    }
    std::process::ExitCode::SUCCESS
}
