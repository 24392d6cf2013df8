//! The matmul ladder, in the style of llm.c's dev/cuda: every matmul kernel
//! of the project, one rung each from the simplest up (the table `LADDER`),
//! each checked against the CPU backend and timed, one line per rung and shape.
//!
//!     cargo run --release --example matmul_study -- [--quick] [--shape MxNxK ...] [variant.wgsl ...]
//!
//! `*` marks the kernel the lowering picks (`gpu::lowering::lower`). Rung 8,
//! the tensor-core kernel (f16 inputs), runs where the adapter has them.
//! Each .wgsl argument adds a rung: an edited copy of shaders/matmul.wgsl,
//! its `matmul_bias_act` on 64-tiles, or `FILE:ENTRY:TILE` for another entry. Times are device times from timestamp
//! queries where the adapter has them, else the wall clock. `--quick`: three
//! small shapes, seconds on llvmpipe; the default goes up to 4096³.

use std::process::ExitCode;

use shadergan::bench::cases::matmul;
use shadergan::cpu::CpuPlan;
use shadergan::gpu::lowering::lower;
use shadergan::gpu::{GpuContext, GpuPlan, MatmulPrecision, time_launches};
use shadergan::shaders::Shader;

type Shape = (usize, usize, usize);
pub const SHAPES: [Shape; 13] = [
    (64, 128, 100),
    (64, 128, 784),
    (128, 128, 784),
    (64, 784, 128),
    (128, 128, 128),
    (256, 128, 784),
    (1024, 128, 784),
    (2048, 128, 784),
    (1024, 784, 128),
    (2048, 784, 128),
    (1024, 1024, 1024),
    (4096, 4096, 4096),
    (8192, 128, 784),
];
pub const QUICK_SHAPES: [Shape; 3] = [(64, 128, 784), (333, 257, 129), (2048, 2048, 32)];

const NAIVE: &str = include_str!("matmul_naive.wgsl");
const MATMUL: &str = include_str!("../shaders/matmul.wgsl");
/// A rung as data: name, WGSL, entry point, tile, and whether the lowering picks it.
type Row<'a> = (&'a str, &'a str, &'static str, u32, bool);
const LADDER: [Row; 7] = [
    ("1 naive", NAIVE, "matmul_naive", 16, false), // one thread per output, no reuse
    ("2 64-tile", MATMUL, "matmul_bias_act", 64, true), // 4×4 per thread, K staged in slabs
    ("3 128-tile", MATMUL, "matmul_bias_act_128", 128, false), // 8×8 per thread, large outputs
    ("4 split-K", MATMUL, "matmul_bias_act_splitk", 32, false), // K split 4 ways in a 32-tile
    ("5 small", MATMUL, "matmul_bias_act_small", 16, true), // K split 16 ways in a 16-tile, no staging
    (
        "6 small vec4",
        MATMUL,
        "matmul_bias_act_small_vec4",
        16,
        true,
    ), // the same, every load a vec4
    (
        "7 128-tile prefetch",
        MATMUL,
        "matmul_bias_act_128_prefetch",
        128,
        true,
    ), // rung 3 staged as vec4 rows with the next slab in registers
];

/// One kernel of the ladder; the grid is ⌈N/tile⌉ × ⌈M/tile⌉ workgroups.
pub struct Rung {
    pub name: String,
    pub source: String,
    pub entry: String,
    pub tile: u32,
    /// One of the kernels the lowering picks from.
    pub lowered: bool,
}

fn rung((name, source, entry, tile, lowered): Row) -> Rung {
    let (name, source) = (name.to_string(), source.to_string());
    Rung {
        name,
        source,
        entry: entry.to_string(),
        tile,
        lowered,
    }
}

/// The ladder's rungs, the tensor-core kernel where `tensor_cores` (the
/// context has the features), then one per variant: `FILE` (an edited copy of
/// shaders/matmul.wgsl, its `matmul_bias_act` on 64-tiles) or
/// `FILE:ENTRY:TILE` (that entry point on TILE-edged square tiles).
pub fn rungs(variants: &[String], tensor_cores: bool) -> anyhow::Result<Vec<Rung>> {
    let mut all: Vec<Rung> = LADDER.map(rung).into();
    if tensor_cores {
        // f16 inputs, f32 accumulation: `--matmul-precision f16-tensor-cores`.
        let coop = Shader::MatmulCoop.source();
        all.push(rung((
            "8 tensor cores",
            coop,
            "matmul_coop_f16",
            128,
            false,
        )));
    }
    for spec in variants {
        let mut parts = spec.split(':');
        let path = parts.next().unwrap_or_default();
        let entry = parts.next().unwrap_or("matmul_bias_act");
        let tile = parts.next().map_or(Ok(64), str::parse);
        let tile = tile.map_err(|e| anyhow::anyhow!("bad tile in {spec}: {e}"))?;
        let source = std::fs::read_to_string(path);
        let source = source.map_err(|e| anyhow::anyhow!("cannot read {path}: {e}"))?;
        all.push(Rung {
            name: spec.clone(),
            source,
            entry: entry.to_string(),
            tile,
            lowered: false,
        });
    }
    Ok(all)
}

impl Rung {
    /// Whether the kernel computes this shape: the vec4 kernels need whole
    /// vectors along K (the lowering never gives them anything else).
    pub fn runs(&self, (_, _, k): Shape) -> bool {
        !self.entry.ends_with("_vec4") || k.is_multiple_of(4)
    }
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
    let compile = |r: &Rung| ctx.compile(&r.name, &r.source, &r.entry);
    let pipelines = rungs.iter().map(compile).collect::<Result<Vec<_>, _>>()?;
    let mut lines = Vec::new();
    for &(m, n, k) in shapes {
        // `shadergan bench`'s case, y = relu(x·Wᵀ + b) on random inputs; the CPU backend's y.
        let case = matmul("", m, n, k);
        let y = case.plan.find_buffer("y").expect("the case's output");
        let mut cpu = CpuPlan::new(case.plan.clone())?;
        cpu.run(&case.phases)?;
        // The lowering gives the uniform block and the bindings; every rung shares them.
        let call = lower(&case.plan.phases[0].ops[0]);
        let mut buffers = case.plan;
        buffers.phases.clear(); // the rungs' pipelines are built here
        let gpu = GpuPlan::new(ctx, buffers)?;
        for (rung, pipeline) in rungs.iter().zip(&pipelines) {
            if !rung.runs((m, n, k)) {
                continue;
            }
            let bind_group = gpu.bind_group(ctx, &call, pipeline);
            let grid = [n, m, 1].map(|d| (d as u32).div_ceil(rung.tile));
            let launches = |reps| time_launches(ctx, pipeline, &bind_group, grid, reps);
            gpu.write(ctx, y, &vec![f32::NAN; m * n]);
            let once = launches(1)?;
            let (got, want) = (gpu.read_f32(ctx, y)?, cpu.f32s(y));
            let sq = |v: f32| f64::from(v).powi(2);
            let diff: f64 = got.iter().zip(want).map(|(g, w)| sq(g - w)).sum();
            let reps = (budget / once.max(1e-9)).clamp(1.0, 200.0) as u32;
            let line = Line {
                shape: (m, n, k),
                rung: rung.name.clone(),
                picked: rung.lowered && call.entry == rung.entry,
                seconds: launches(reps)?,
                rel_err: (diff / want.iter().map(|w| sq(*w)).sum::<f64>()).sqrt(),
            };
            each(&line);
            lines.push(line);
        }
    }
    Ok(lines)
}

fn run() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let quick = args.iter().any(|a| a == "--quick");
    let mut shapes: Vec<Shape> = Vec::new();
    let mut variants = Vec::new();
    let mut words = args.into_iter().filter(|a| a != "--quick");
    while let Some(word) = words.next() {
        if word != "--shape" {
            variants.push(word);
            continue;
        }
        let spec = words.next().unwrap_or_default();
        shapes.push(parse_shape(&spec)?);
    }
    if let Some(flag) = variants.iter().find(|a| a.starts_with('-')) {
        anyhow::bail!(
            "unknown option {flag} (usage: matmul_study [--quick] [--shape MxNxK ...] \
             [variant.wgsl[:entry:tile] ...])"
        );
    }
    // The tensor-core rung where the adapter has them (the f32 rungs run the
    // same on that device), else without it, saying why.
    let ctx = match GpuContext::with_precision(None, MatmulPrecision::F16TensorCores) {
        Ok(ctx) => ctx,
        Err(e) => {
            println!("no tensor-core rung: {e}");
            GpuContext::new()?
        }
    };
    let rungs = rungs(&variants, ctx.matmul_precision != MatmulPrecision::F32)?;
    let clock = match ctx.features.contains(wgpu::Features::TIMESTAMP_QUERY) {
        true => "device time from timestamp queries",
        false => "wall clock",
    };
    println!("adapter: {}; {clock}", ctx.describe());
    println!("    m     n     k  rung             us/launch   GFLOP/s  rel.err");
    let shapes: &[Shape] = match (shapes.is_empty(), quick) {
        (false, _) => &shapes,
        (true, true) => &QUICK_SHAPES,
        (true, false) => &SHAPES,
    };
    let budget = if quick { 0.05 } else { 0.25 };
    ladder(&ctx, shapes, &rungs, budget, |l| {
        let ((m, n, k), us) = (l.shape, l.seconds * 1e6);
        let gflops = 2.0 * (m * n * k) as f64 / l.seconds / 1e9;
        let name = format!("{}{}", l.rung, if l.picked { " *" } else { "" });
        let err = l.rel_err;
        println!("{m:5} {n:5} {k:5}  {name:<14} {us:11.1} {gflops:9.1}  {err:.1e}");
    })?;
    Ok(())
}

/// `MxNxK`, e.g. `4096x4096x4096`.
fn parse_shape(spec: &str) -> anyhow::Result<Shape> {
    let dims: Vec<usize> = spec.split('x').map(str::parse).collect::<Result<_, _>>()?;
    match dims[..] {
        [m, n, k] if m > 0 && n > 0 && k > 0 => Ok((m, n, k)),
        _ => {
            anyhow::bail!("--shape takes MxNxK with each above 0, e.g. 4096x4096x4096 (got {spec})")
        }
    }
}

fn main() -> ExitCode {
    if let Err(e) = run() {
        eprintln!("error: {e:#}");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
