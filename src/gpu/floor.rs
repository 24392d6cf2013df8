//! The dispatch floor: what one trivial kernel launch costs on the adapter,
//! however little it computes. A GAN step of small layers is dozens of such
//! launches, so this, not arithmetic, bounds its speed.
//!
//! The trivial kernel is `increment` (counter.wgsl: one thread adds 1 to one
//! u32). A [`Variant`] says how N of them are recorded into one submit: as a
//! dependent chain on one buffer or independent, in one compute pass or a pass
//! each, with one pipeline or two alternating, with a bind group each (as the
//! executor records a step) or one shared, with timestamps around every pass
//! (as the profiler records) or only around the whole. The counters are read
//! back afterwards: every launch must have landed.
//!
//! wgpu tracks usage per whole buffer: a storage buffer written again inserts a
//! pipeline barrier before that dispatch, so only [`Dependence::Distinct`]
//! records dispatches with no barrier between them.

use std::time::Instant;

use wgpu::util::DeviceExt;

use super::context::{GpuContext, GpuError};
use super::executor::GpuPlan;
use crate::shaders::Shader;

/// How the trivial launches depend on each other.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum Dependence {
    /// Every launch increments the one counter the previous launch wrote.
    Chain,
    /// Launch i increments counter i mod 16 of 16 buffers.
    Rotate16,
    /// Every launch has a counter buffer of its own: no barrier anywhere.
    Distinct,
}

/// One way of recording N trivial launches into one submit.
#[derive(Clone, Copy, Debug, serde::Serialize)]
pub struct Variant {
    pub name: &'static str,
    pub dependence: Dependence,
    /// A compute pass per launch, rather than all launches in one pass.
    pub pass_each: bool,
    /// Timestamp writes at every pass's start and end (needs `pass_each`).
    pub timestamps_each: bool,
    /// Alternate between two pipelines (the same kernel built twice).
    pub two_pipelines: bool,
    /// One bind group set once, rather than a bind group and uniform buffer per launch.
    pub shared_bind_group: bool,
}

const fn chain(name: &'static str) -> Variant {
    Variant {
        name,
        dependence: Dependence::Chain,
        pass_each: false,
        timestamps_each: false,
        two_pipelines: false,
        shared_bind_group: false,
    }
}

/// The variants `shadergan bench` measures; the first is how a step is recorded.
pub const VARIANTS: [Variant; 7] = [
    chain("chain, one pass, a bind group each (as train)"),
    Variant {
        shared_bind_group: true,
        ..chain("chain, one pass, one bind group")
    },
    Variant {
        two_pipelines: true,
        ..chain("chain, one pass, two pipelines alternating")
    },
    Variant {
        pass_each: true,
        ..chain("chain, a pass each")
    },
    Variant {
        pass_each: true,
        timestamps_each: true,
        ..chain("chain, a pass each, timestamped (as --profile)")
    },
    Variant {
        dependence: Dependence::Rotate16,
        ..chain("independent, 16 buffers, one pass")
    },
    Variant {
        dependence: Dependence::Distinct,
        ..chain("independent, a buffer each, one pass")
    },
];

/// Launches in the in-process floor measured beside a profiled step.
pub const QUICK_FLOOR_DISPATCHES: usize = 200;

/// The figures of one variant at one N, medians over the repeats.
#[derive(Clone, Debug, serde::Serialize)]
pub struct FloorFigure {
    pub variant: &'static str,
    pub dispatches: usize,
    /// Device time per launch, first pass's start to last pass's end (timestamp queries).
    pub device_us: Option<f64>,
    /// Wall clock per launch from submit until the queue is idle.
    pub wall_us: f64,
    /// Host time per launch to record the command buffer.
    pub encode_us: f64,
}

impl FloorFigure {
    /// Device time where the adapter has timestamps, else the wall clock.
    pub fn us_per_dispatch(&self) -> f64 {
        self.device_us.unwrap_or(self.wall_us)
    }

    pub fn timing(&self) -> &'static str {
        if self.device_us.is_some() {
            "timestamps"
        } else {
            "wall"
        }
    }
}

/// Times of one submit, in seconds.
#[derive(Clone, Copy, Debug)]
pub struct SubmitTimes {
    pub encode: f64,
    pub wall: f64,
    pub device: Option<f64>,
}

/// Timestamp query sets for `passes` passes: a pair per pass, or one pair in all.
struct Stamps {
    sets: Vec<wgpu::QuerySet>,
    resolve: wgpu::Buffer,
    queries: u32,
    each: bool,
    period_ns: f64,
}

const PER_SET: u32 = wgpu::QUERY_SET_MAX_QUERIES;

impl Stamps {
    fn new(ctx: &GpuContext, passes: usize, each: bool) -> Result<Option<Stamps>, GpuError> {
        if !ctx.features.contains(wgpu::Features::TIMESTAMP_QUERY) {
            return Ok(None);
        }
        let queries = u32::try_from(if each { 2 * passes } else { 2 })
            .map_err(|_| GpuError::Validation("too many passes to timestamp".into()))?;
        let sets = (0..queries.div_ceil(PER_SET))
            .map(|k| {
                ctx.device.create_query_set(&wgpu::QuerySetDescriptor {
                    label: Some("floor"),
                    ty: wgpu::QueryType::Timestamp,
                    count: (queries - k * PER_SET).min(PER_SET),
                })
            })
            .collect::<Vec<_>>();
        let resolve = ctx.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("floor resolve"),
            size: u64::from(sets.len() as u32 * PER_SET) * 8,
            usage: wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
            mapped_at_creation: false,
        });
        Ok(Some(Stamps {
            sets,
            resolve,
            queries,
            each,
            period_ns: f64::from(ctx.queue.get_timestamp_period()),
        }))
    }

    /// The writes of pass `i` of `passes`.
    fn writes(&self, i: usize, passes: usize) -> Option<wgpu::ComputePassTimestampWrites<'_>> {
        let (first, last) = (i == 0, i + 1 == passes);
        if !self.each && !first && !last {
            return None;
        }
        // A pass's pair never straddles two sets: PER_SET is even.
        let q = if self.each { 2 * i as u32 } else { 0 };
        let (set, base) = ((q / PER_SET) as usize, q % PER_SET);
        Some(wgpu::ComputePassTimestampWrites {
            query_set: &self.sets[set],
            beginning_of_pass_write_index: (self.each || first).then_some(base),
            end_of_pass_write_index: (self.each || last).then_some(base + 1),
        })
    }

    /// Seconds from the first query to the last.
    fn read_span(&self, ctx: &GpuContext) -> Result<f64, GpuError> {
        let mut encoder = ctx.device.create_command_encoder(&Default::default());
        for (k, set) in self.sets.iter().enumerate() {
            let count = (self.queries - k as u32 * PER_SET).min(PER_SET);
            encoder.resolve_query_set(
                set,
                0..count,
                &self.resolve,
                u64::from(k as u32 * PER_SET) * 8,
            );
        }
        let bytes = u64::from(self.queries) * 8;
        let raw = ctx.submit_and_read(encoder, &self.resolve, 0, bytes)?;
        let ticks: Vec<u64> = bytemuck::pod_collect_to_vec(&raw);
        let span = ticks[ticks.len() - 1].saturating_sub(ticks[0]);
        Ok(span as f64 * self.period_ns * 1e-9)
    }
}

/// Records `passes` compute passes (pass `i` filled by `record(i, pass)`) into one
/// command buffer, submits it and waits: encode, wall and device times.
pub fn time_submit(
    ctx: &GpuContext,
    passes: usize,
    timestamps_each: bool,
    record: &dyn Fn(usize, &mut wgpu::ComputePass<'_>),
) -> Result<SubmitTimes, GpuError> {
    let stamps = Stamps::new(ctx, passes, timestamps_each)?;
    ctx.wait_idle()?;
    let t = Instant::now();
    let mut encoder = ctx.device.create_command_encoder(&Default::default());
    for i in 0..passes {
        let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: Some("floor"),
            timestamp_writes: stamps.as_ref().and_then(|s| s.writes(i, passes)),
        });
        record(i, &mut pass);
    }
    let commands = encoder.finish();
    let encode = t.elapsed().as_secs_f64();
    let t = Instant::now();
    ctx.queue.submit([commands]);
    ctx.wait_idle()?;
    let wall = t.elapsed().as_secs_f64();
    let device = stamps.map(|s| s.read_span(ctx)).transpose()?;
    Ok(SubmitTimes {
        encode,
        wall,
        device,
    })
}

/// One launch: its pipeline and bind group.
struct Launch {
    pipeline: usize,
    group: usize,
}

/// The buffers, pipelines and bind groups of `n` launches of `variant`.
struct Recording {
    counters: Vec<wgpu::Buffer>,
    pipelines: Vec<wgpu::ComputePipeline>,
    groups: Vec<wgpu::BindGroup>,
    launches: Vec<Launch>,
}

fn increment_pipeline(ctx: &GpuContext, module: &wgpu::ShaderModule) -> wgpu::ComputePipeline {
    ctx.pipeline("increment", module, "increment")
}

impl Recording {
    fn new(ctx: &GpuContext, v: &Variant, n: usize) -> Recording {
        let module = ctx.shader_module(Shader::Counter.file_name(), Shader::Counter.source());
        let pipelines: Vec<_> = (0..if v.two_pipelines { 2 } else { 1 })
            .map(|_| increment_pipeline(ctx, &module))
            .collect();
        let buffers = match v.dependence {
            Dependence::Chain => 1,
            Dependence::Rotate16 => 16.min(n),
            Dependence::Distinct => n,
        };
        let counters: Vec<_> = (0..buffers)
            .map(|_| {
                ctx.device.create_buffer(&wgpu::BufferDescriptor {
                    label: Some("floor counter"),
                    size: 4,
                    usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC,
                    mapped_at_creation: false,
                })
            })
            .collect();
        let groups_needed = if v.shared_bind_group { 1 } else { n };
        let groups = (0..groups_needed)
            .map(|i| {
                let pipeline = &pipelines[i % pipelines.len()];
                bind_group(ctx, pipeline, &counters[i % buffers])
            })
            .collect();
        let launches = (0..n)
            .map(|i| Launch {
                pipeline: i % pipelines.len(),
                group: i % groups_needed,
            })
            .collect();
        Recording {
            counters,
            pipelines,
            groups,
            launches,
        }
    }

    fn record(&self, pass: &mut wgpu::ComputePass<'_>, launches: std::ops::Range<usize>) {
        for l in &self.launches[launches] {
            pass.set_pipeline(&self.pipelines[l.pipeline]);
            pass.set_bind_group(0, &self.groups[l.group], &[]);
            pass.dispatch_workgroups(1, 1, 1);
        }
    }

    /// Checks that each counter holds what `runs` submits of the launches add.
    fn verify(&self, ctx: &GpuContext, runs: usize) -> Result<(), GpuError> {
        let n = self.launches.len();
        let b = self.counters.len();
        // Distinct counters: the first and the last are enough.
        let check: Vec<usize> = if b > 16 {
            vec![0, b - 1]
        } else {
            (0..b).collect()
        };
        for j in check {
            let raw = ctx.submit_and_read(
                ctx.device.create_command_encoder(&Default::default()),
                &self.counters[j],
                0,
                4,
            )?;
            let got = u32::from_le_bytes([raw[0], raw[1], raw[2], raw[3]]) as usize;
            let want = runs * (n / b + usize::from(j < n % b));
            if got != want {
                return Err(GpuError::Validation(format!(
                    "dispatch floor: counter {j} reads {got} after {runs} submits, expected {want}"
                )));
            }
        }
        Ok(())
    }
}

fn bind_group(
    ctx: &GpuContext,
    pipeline: &wgpu::ComputePipeline,
    counter: &wgpu::Buffer,
) -> wgpu::BindGroup {
    // counter.wgsl's Params: { off, _pad0, _pad1, _pad2 }, an array of one
    // per seed (only the first is read).
    let uniform = ctx
        .device
        .create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some("floor params"),
            contents: bytemuck::cast_slice(&[0u32; 4 * crate::plan::MAX_SEEDS]),
            usage: wgpu::BufferUsages::UNIFORM,
        });
    ctx.device.create_bind_group(&wgpu::BindGroupDescriptor {
        label: Some("floor"),
        layout: &pipeline.get_bind_group_layout(0),
        entries: &[
            wgpu::BindGroupEntry {
                binding: 0,
                resource: uniform.as_entire_binding(),
            },
            wgpu::BindGroupEntry {
                binding: 1,
                resource: counter.as_entire_binding(),
            },
        ],
    })
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Times `repeats` submits (after one warm-up) of `n` launches recorded as
/// `variant` says, and checks every launch landed.
pub fn measure(
    ctx: &GpuContext,
    variant: &Variant,
    n: usize,
    repeats: usize,
) -> Result<FloorFigure, GpuError> {
    assert!(n > 0, "a floor needs launches");
    let scope = ctx.device.push_error_scope(wgpu::ErrorFilter::Validation);
    let rec = Recording::new(ctx, variant, n);
    if let Some(err) = pollster::block_on(scope.pop()) {
        return Err(GpuError::Validation(err.to_string()));
    }
    let passes = if variant.pass_each { n } else { 1 };
    let record = |i: usize, pass: &mut wgpu::ComputePass<'_>| {
        if variant.pass_each {
            rec.record(pass, i..i + 1);
        } else {
            rec.record(pass, 0..n);
        }
    };
    let repeats = repeats.max(1);
    time_submit(ctx, passes, variant.timestamps_each, &record)?;
    let mut times = Vec::with_capacity(repeats);
    for _ in 0..repeats {
        times.push(time_submit(ctx, passes, variant.timestamps_each, &record)?);
    }
    rec.verify(ctx, repeats + 1)?;
    let per = |s: f64| s * 1e6 / n as f64;
    let device = times
        .iter()
        .map(|t| t.device)
        .collect::<Option<Vec<f64>>>()
        .map(|d| per(median(d)));
    Ok(FloorFigure {
        variant: variant.name,
        dispatches: n,
        device_us: device,
        wall_us: per(median(times.iter().map(|t| t.wall).collect())),
        encode_us: per(median(times.iter().map(|t| t.encode).collect())),
    })
}

/// The floor a step is held to: [`QUICK_FLOOR_DISPATCHES`] dependent launches
/// recorded as a step is (the first of [`VARIANTS`]).
pub fn quick_floor(ctx: &GpuContext) -> Result<FloorFigure, GpuError> {
    measure(ctx, &VARIANTS[0], QUICK_FLOOR_DISPATCHES, 5)
}

/// Mean times of one step of `phases`, `steps` of them recorded into one
/// compute pass as training records them (timestamps only at the pass's ends).
/// The steps are real: they change the plan's state.
pub fn step_times(
    ctx: &GpuContext,
    plan: &GpuPlan,
    phases: &[&str],
    steps: usize,
) -> Result<SubmitTimes, GpuError> {
    let steps = steps.max(1);
    let record = |_: usize, pass: &mut wgpu::ComputePass<'_>| {
        for _ in 0..steps {
            for p in phases {
                plan.record(pass, p);
            }
        }
    };
    let t = time_submit(ctx, 1, false, &record)?;
    let per = |s: f64| s / steps as f64;
    Ok(SubmitTimes {
        encode: per(t.encode),
        wall: per(t.wall),
        device: t.device.map(per),
    })
}

/// The [`quick_floor`] beside the time of a step of `phases` ([`step_times`],
/// over `steps` real steps): device times where the adapter has timestamps.
pub fn step_floor(
    ctx: &GpuContext,
    plan: &GpuPlan,
    phases: &[&str],
    steps: usize,
) -> Result<crate::profile::StepFloor, GpuError> {
    let floor = quick_floor(ctx)?;
    let step = step_times(ctx, plan, phases, steps)?;
    let step_s = match (floor.device_us, step.device) {
        (Some(_), Some(d)) => d,
        _ => step.wall,
    };
    Ok(crate::profile::StepFloor {
        us_per_dispatch: floor.us_per_dispatch(),
        floor_dispatches: floor.dispatches,
        step_us: step_s * 1e6,
        steps: steps.max(1),
        timing: floor.timing(),
    })
}
