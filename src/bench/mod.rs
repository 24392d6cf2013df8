//! `shadergan bench`: every case of [`cases::suite`] on the GPU and on the CPU
//! backend, side by side, with their ratio.
//!
//! - **GPU kernels** are timed with timestamp queries when the adapter has them
//!   (device time of the kernel alone, mean of [`PROFILE_REPEATS`] launches), and
//!   always also by the wall clock over many launches recorded into one submit
//!   (what a caller sees, barriers and submit included).
//! - **GPU steps** are timed by the wall clock, [`STEPS_PER_SUBMIT`] steps per
//!   submit, as `train` records them.
//! - **CPU** runs the same plan with the reference kernels (multi-threaded SGEMM).
//! - **The dispatch floor** ([`crate::gpu::floor`]): µs per trivial launch, N of
//!   them in one submit, recorded in several ways; GPU only.

pub mod cases;
pub mod conv;

use std::time::Instant;

use crate::cpu::CpuPlan;
use crate::gpu::floor::{self, FloorFigure};
use crate::gpu::{GpuContext, GpuPlan, profile};
use cases::{Case, Unit};

/// Steps recorded into one submit when timing whole GAN steps (as `train` does).
pub const STEPS_PER_SUBMIT: usize = 25;
/// Timestamped launches averaged per kernel case.
pub const PROFILE_REPEATS: usize = 10;

/// One backend's figure for one case.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Figure {
    /// In the case's unit (GFLOP/s, GB/s or steps/s).
    pub value: f64,
    /// Seconds per run of the case's phases behind `value`.
    pub seconds_per_run: f64,
    /// `timestamps` (device time of the kernels) or `wall` (host clock).
    pub timing: &'static str,
    /// The wall-clock figure too, when `value` comes from timestamps.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wall_value: Option<f64>,
}

/// A line of the table.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Row {
    pub group: &'static str,
    pub name: String,
    pub unit: Unit,
    pub gpu: Option<Figure>,
    pub cpu: Option<Figure>,
    /// GPU figure / CPU figure.
    pub ratio: Option<f64>,
}

impl Row {
    pub fn new(case: &Case, gpu: Option<Figure>, cpu: Option<Figure>) -> Row {
        let ratio = match (&gpu, &cpu) {
            (Some(g), Some(c)) if c.value > 0.0 => Some(g.value / c.value),
            _ => None,
        };
        Row {
            group: case.group,
            name: case.name.clone(),
            unit: case.unit,
            gpu,
            cpu,
            ratio,
        }
    }
}

fn figure(case: &Case, seconds_per_run: f64, timing: &'static str) -> Figure {
    Figure {
        value: case.work / seconds_per_run / case.unit.scale(),
        seconds_per_run,
        timing,
        wall_value: None,
    }
}

/// Runs `case` on the CPU backend until `min_seconds` have passed (after one warm-up run).
pub fn measure_cpu(case: &Case, min_seconds: f64) -> anyhow::Result<Figure> {
    let mut plan = CpuPlan::new(case.plan.clone())?;
    let t = Instant::now();
    plan.run(&case.phases)?;
    let first = t.elapsed().as_secs_f64();
    if first >= min_seconds {
        return Ok(figure(case, first, "wall"));
    }
    let mut runs = 0u32;
    let t = Instant::now();
    while runs == 0 || t.elapsed().as_secs_f64() < min_seconds {
        plan.run(&case.phases)?;
        runs += 1;
    }
    Ok(figure(
        case,
        t.elapsed().as_secs_f64() / f64::from(runs),
        "wall",
    ))
}

/// Times `reps` repetitions of the case's phases recorded into each submit,
/// until `min_seconds` have passed; seconds per repetition.
fn wall_per_run(
    ctx: &GpuContext,
    plan: &GpuPlan,
    case: &Case,
    reps: usize,
    min_seconds: f64,
) -> anyhow::Result<f64> {
    let phases: Vec<&str> = case
        .phases
        .iter()
        .copied()
        .cycle()
        .take(reps * case.phases.len())
        .collect();
    plan.run(ctx, &phases)?;
    ctx.wait_idle()?;
    let mut submits = 0u32;
    let t = Instant::now();
    while submits == 0 || t.elapsed().as_secs_f64() < min_seconds {
        plan.run(ctx, &phases)?;
        submits += 1;
        // Keep a few submits in flight, as training does, without queueing unboundedly.
        if submits.is_multiple_of(4) {
            ctx.wait_idle()?;
        }
    }
    ctx.wait_idle()?;
    Ok(t.elapsed().as_secs_f64() / f64::from(submits) / reps as f64)
}

/// Measures `case` on the GPU (see the module documentation for how).
pub fn measure_gpu(ctx: &GpuContext, case: &Case, min_seconds: f64) -> anyhow::Result<Figure> {
    let plan = GpuPlan::new(ctx, case.plan.clone())?;
    if matches!(case.unit, Unit::StepsPerSecond | Unit::SeedStepsPerSecond) {
        let s = wall_per_run(ctx, &plan, case, STEPS_PER_SUBMIT, min_seconds)?;
        return Ok(figure(case, s, "wall"));
    }
    // Enough launches per submit that one submit takes a few milliseconds.
    let single = wall_per_run(ctx, &plan, case, 1, 0.0)?;
    let reps = ((0.005 / single).ceil() as usize).clamp(1, 1024);
    let wall = wall_per_run(ctx, &plan, case, reps, min_seconds)?;
    let mut out = figure(case, wall, "wall");
    if ctx.features.contains(wgpu::Features::TIMESTAMP_QUERY) {
        let times = profile(ctx, &plan, &case.phases, PROFILE_REPEATS)?;
        let device_seconds: f64 = times.iter().map(|k| k.mean_ns).sum::<f64>() * 1e-9;
        if device_seconds > 0.0 {
            let wall_value = out.value;
            out = figure(case, device_seconds, "timestamps");
            out.wall_value = Some(wall_value);
        }
    }
    Ok(out)
}

/// Launch counts of the dispatch floor: per submit, for each variant.
pub fn floor_sizes(quick: bool) -> &'static [usize] {
    if quick { &[100] } else { &[100, 1000, 10_000] }
}

/// Every floor variant whose name (or "dispatch floor") contains `only`, at each
/// of [`floor_sizes`]: medians of 5 submits (3 when `quick`).
pub fn measure_floor(
    ctx: &GpuContext,
    quick: bool,
    only: Option<&str>,
) -> anyhow::Result<Vec<FloorFigure>> {
    let repeats = if quick { 3 } else { 5 };
    let mut out = Vec::new();
    for v in &floor::VARIANTS {
        if let Some(text) = only
            && !v.name.contains(text)
            && !"dispatch floor".contains(text)
        {
            continue;
        }
        eprintln!("measuring the dispatch floor: {} …", v.name);
        for &n in floor_sizes(quick) {
            out.push(floor::measure(ctx, v, n, repeats)?);
        }
    }
    Ok(out)
}

/// The floor as a table: one line per variant, µs per launch at each N, then
/// the wall clock and the host's recording time per launch at the largest N.
pub fn format_floor(figures: &[FloorFigure]) -> String {
    let Some(first) = figures.first() else {
        return String::new();
    };
    let sizes: Vec<usize> = figures
        .iter()
        .filter(|f| f.variant == first.variant)
        .map(|f| f.dispatches)
        .collect();
    let largest = sizes.iter().copied().max().unwrap_or(0);
    let mut s = format!(
        "dispatch floor: µs per launch of a 1-thread kernel (increment, counter.wgsl), N in one submit, {}\n",
        if first.device_us.is_some() {
            "device time from timestamp queries"
        } else {
            "wall clock (the adapter has no timestamp queries)"
        }
    );
    s += &format!("{:<48}", "variant");
    for n in &sizes {
        s += &format!(" {:>9}", format!("N={n}"));
    }
    s += &format!(" {:>8} {:>8}\n", "wall¹", "record¹");
    let mut names: Vec<&str> = figures.iter().map(|f| f.variant).collect();
    names.dedup();
    for name in names {
        s += &format!("{name:<48}");
        let mine: Vec<&FloorFigure> = figures.iter().filter(|f| f.variant == name).collect();
        for f in &mine {
            s += &format!(" {:>9}", format_value(f.us_per_dispatch()));
        }
        if let Some(f) = mine.iter().find(|f| f.dispatches == largest) {
            s += &format!(
                " {:>8} {:>8}",
                format_value(f.wall_us),
                format_value(f.encode_us)
            );
        }
        s += "\n";
    }
    s += &format!(
        "¹ at N={largest}: wall clock from submit to idle, and host time to record the commands, per launch\n"
    );
    s
}

/// Where the numbers came from, for the report's header.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Machine {
    pub gpu: Option<String>,
    pub cpu_threads: usize,
    pub shadergan: &'static str,
    pub unix_time: u64,
}

impl Machine {
    pub fn here(gpu: Option<&GpuContext>) -> Machine {
        Machine {
            gpu: gpu.map(|c| c.describe()),
            cpu_threads: crate::cpu::kernels::cpu_threads(),
            shadergan: env!("CARGO_PKG_VERSION"),
            unix_time: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
        }
    }
}

/// The table, one line per case: GPU, CPU, GPU/CPU.
pub fn format_table(machine: &Machine, rows: &[Row]) -> String {
    let mut s = format!(
        "GPU: {}\nCPU backend: {} thread(s)\n",
        machine.gpu.as_deref().unwrap_or("none"),
        machine.cpu_threads
    );
    s += &format!(
        "{:<44} {:>8} {:>12} {:>12} {:>9}\n",
        "case", "unit", "gpu", "cpu", "gpu/cpu"
    );
    let cell = |f: &Option<Figure>| {
        f.as_ref()
            .map_or("—".to_string(), |f| format_value(f.value))
    };
    for r in rows {
        s += &format!(
            "{:<44} {:>8} {:>12} {:>12} {:>9}\n",
            r.name,
            r.unit.label(),
            cell(&r.gpu),
            cell(&r.cpu),
            r.ratio
                .map_or("—".to_string(), |x| format!("{}×", format_value(x)))
        );
    }
    s += "gpu: device time from timestamp queries for single kernels (wall clock where the adapter has none), wall clock with 25 steps per submit for steps\n";
    s
}

fn format_value(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else if v >= 0.1 {
        format!("{v:.2}")
    } else {
        format!("{v:.4}")
    }
}
