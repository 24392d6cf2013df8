//! Choosing where a plan runs, and running it there: the GPU (WGSL kernels
//! through wgpu) or the CPU backend (the reference kernels in Rust).

use std::collections::VecDeque;

use crate::cpu::CpuPlan;
use crate::fault::Fault;
use crate::gpu::{GpuContext, GpuError, GpuPlan, MatmulPrecision, ScalarReadback};
use crate::plan::{Plan, Slice};

/// The generator's parameter buffer in GAN and sampler plans (`nn::NetworkBuffers` of "G").
const GENERATOR_PARAMS: &str = "G.params";

/// What `--backend` asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BackendChoice {
    /// A hardware GPU if there is one, else the CPU backend (with a notice).
    Auto,
    Gpu,
    Cpu,
}

/// A GPU context, or the reason the CPU backend runs instead.
pub struct Selected {
    pub gpu: Option<GpuContext>,
    /// One line for the user when the choice was not the obvious one.
    pub notice: Option<String>,
}

/// Opens the backend `choice` asks for; `adapter` is `--adapter` (else
/// `SHADERGAN_ADAPTER`); dense products in f32.
pub fn select(choice: BackendChoice, adapter: Option<&str>) -> Result<Selected, GpuError> {
    select_at(choice, adapter, MatmulPrecision::F32)
}

/// [`select`] with the dense products at `precision`. The tensor-core
/// precision needs the GPU: with it, `Auto` opens the GPU or fails, as `Gpu`
/// does (the CPU backend has no such path).
pub fn select_at(
    choice: BackendChoice,
    adapter: Option<&str>,
    precision: MatmulPrecision,
) -> Result<Selected, GpuError> {
    let wanted = adapter.map(str::to_string).or_else(|| {
        std::env::var(crate::gpu::ADAPTER_ENV)
            .ok()
            .filter(|s| !s.is_empty())
    });
    if precision != MatmulPrecision::F32 && choice != BackendChoice::Cpu {
        return Ok(Selected {
            gpu: Some(GpuContext::with_precision(wanted.as_deref(), precision)?),
            notice: None,
        });
    }
    match choice {
        BackendChoice::Cpu => Ok(Selected {
            gpu: None,
            notice: None,
        }),
        BackendChoice::Gpu => Ok(Selected {
            gpu: Some(GpuContext::with_adapter(wanted.as_deref())?),
            notice: None,
        }),
        BackendChoice::Auto => match GpuContext::with_adapter(wanted.as_deref()) {
            Ok(ctx)
                if ctx.adapter_info.device_type == wgpu::DeviceType::Cpu && wanted.is_none() =>
            {
                Ok(Selected {
                    notice: Some(format!(
                        "only a software GPU adapter was found ({}): training on the CPU backend, \
                         which is much faster there; the GPU backend runs the shaders on it anyway",
                        ctx.adapter_info.name
                    )),
                    gpu: None,
                })
            }
            Ok(ctx) => Ok(Selected {
                gpu: Some(ctx),
                notice: None,
            }),
            Err(e) => Ok(Selected {
                gpu: None,
                notice: Some(format!(
                    "no usable GPU adapter ({e}): training on the CPU backend; for the shader path \
                     install mesa-vulkan-drivers (software Vulkan) or run on a machine with a GPU"
                )),
            }),
        },
    }
}

/// Steps in flight on the GPU before the host waits: enough to keep it busy,
/// few enough that a Ctrl-C or an error is noticed promptly.
const MAX_SUBMITS_IN_FLIGHT: usize = 3;

/// A plan on one backend, with a watched set of scalars read back after runs.
pub enum Executor {
    Cpu {
        plan: CpuPlan,
        watched: Vec<Slice>,
        reports: Vec<(u64, Vec<f32>)>,
    },
    Gpu {
        ctx: Box<GpuContext>,
        plan: GpuPlan,
        readback: Box<ScalarReadback>,
        in_flight: VecDeque<wgpu::SubmissionIndex>,
    },
}

impl Executor {
    /// Builds `plan` on the GPU when `gpu` is given, else on the CPU, watching `watched`.
    pub fn new(
        gpu: Option<GpuContext>,
        plan: Plan,
        watched: Vec<Slice>,
    ) -> anyhow::Result<Executor> {
        Ok(match gpu {
            None => Executor::Cpu {
                plan: CpuPlan::new(plan)?,
                watched,
                reports: Vec::new(),
            },
            Some(ctx) => {
                let gpu_plan = GpuPlan::new(&ctx, plan)?;
                let readback = Box::new(ScalarReadback::new(&ctx, watched, 8));
                Executor::Gpu {
                    ctx: Box::new(ctx),
                    plan: gpu_plan,
                    readback,
                    in_flight: VecDeque::new(),
                }
            }
        })
    }

    /// `"cpu"`, or the adapter's description.
    pub fn describe(&self) -> String {
        match self {
            Executor::Cpu { .. } => "cpu".into(),
            Executor::Gpu { ctx, .. } => format!("gpu: {}", ctx.describe()),
        }
    }

    pub fn is_gpu(&self) -> bool {
        matches!(self, Executor::Gpu { .. })
    }

    /// Runs `phases`; when `report` is given, the watched scalars after them
    /// are queued as a report with that tag (collected by [`Executor::reports`]).
    pub fn run(&mut self, phases: &[&str], report: Option<u64>) -> anyhow::Result<()> {
        match self {
            Executor::Cpu {
                plan,
                watched,
                reports,
            } => {
                plan.run(phases)?;
                if let Some(tag) = report {
                    let values = watched
                        .iter()
                        .flat_map(|s| plan.f32s(*s).to_vec())
                        .collect();
                    reports.push((tag, values));
                }
            }
            Executor::Gpu {
                ctx,
                plan,
                readback,
                in_flight,
            } => {
                let index =
                    plan.run_with_readback(ctx, phases, report.map(|tag| (&mut **readback, tag)))?;
                in_flight.push_back(index);
                while in_flight.len() > MAX_SUBMITS_IN_FLIGHT {
                    let oldest = in_flight.pop_front().expect("non-empty");
                    ctx.device
                        .poll(wgpu::PollType::Wait {
                            submission_index: Some(oldest),
                            timeout: None,
                        })
                        .map_err(|e| GpuError::Validation(e.to_string()))?;
                    ctx.check_lost()?;
                }
            }
        }
        self.inject_fault()
    }

    /// The `SHADERGAN_FAULT` testing hook ([`crate::fault`]): after the N-th run,
    /// destroy the GPU device (a no-op on the CPU backend), or write a NaN
    /// into the generator's first parameter.
    fn inject_fault(&mut self) -> anyhow::Result<()> {
        match crate::fault::after_run() {
            Some(Fault::LoseDeviceAfterRuns(_)) => {
                if let Executor::Gpu { ctx, .. } = self {
                    ctx.device.destroy();
                }
            }
            Some(Fault::NanInParamsAtRun(_)) => {
                if let Some(params) = self.buffer_named(GENERATOR_PARAMS).filter(|p| p.len > 0) {
                    self.write(params.sub(0, 1), &[f32::NAN])?;
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// The whole of the plan's buffer called `name`, if it has one.
    fn buffer_named(&self, name: &str) -> Option<Slice> {
        match self {
            Executor::Cpu { plan, .. } => plan.plan.find_buffer(name),
            Executor::Gpu { plan, .. } => plan.plan.find_buffer(name),
        }
    }

    /// Per-kernel times of `repeats` runs of `phases`: device times from timestamp
    /// queries on the GPU, host-clock times on the CPU. The runs change the
    /// plan's state (they are real steps), so profile after saving what matters.
    pub fn profile(
        &mut self,
        phases: &[&str],
        repeats: usize,
    ) -> anyhow::Result<Vec<crate::profile::KernelTime>> {
        match self {
            Executor::Cpu { plan, .. } => plan.profile(phases, repeats),
            Executor::Gpu { ctx, plan, .. } => {
                ctx.wait_idle()?;
                Ok(crate::gpu::profile(ctx, plan, phases, repeats)?)
            }
        }
    }

    /// On the GPU, the dispatch floor of a step of `phases` beside the time of
    /// one (over `steps` real steps, so call it after saving what matters);
    /// `None` on the CPU backend, which has no dispatches.
    pub fn step_floor(
        &mut self,
        phases: &[&str],
        steps: usize,
    ) -> anyhow::Result<Option<crate::profile::StepFloor>> {
        match self {
            Executor::Cpu { .. } => Ok(None),
            Executor::Gpu { ctx, plan, .. } => {
                ctx.wait_idle()?;
                Ok(Some(crate::gpu::floor::step_floor(
                    ctx, plan, phases, steps,
                )?))
            }
        }
    }

    /// Reports that have arrived (all of them when `wait`), oldest first.
    pub fn reports(&mut self, wait: bool) -> anyhow::Result<Vec<(u64, Vec<f32>)>> {
        Ok(match self {
            Executor::Cpu { reports, .. } => std::mem::take(reports),
            Executor::Gpu { ctx, readback, .. } => readback.collect(ctx, wait)?,
        })
    }

    /// Overwrites a slice (inputs between runs: inference chunks, say).
    pub fn write(&mut self, s: Slice, data: &[f32]) -> anyhow::Result<()> {
        anyhow::ensure!(
            data.len() == s.len,
            "write of {} values into {} slots",
            data.len(),
            s.len
        );
        match self {
            Executor::Cpu { plan, .. } => plan.write(s, data),
            Executor::Gpu { ctx, plan, .. } => plan.write(ctx, s, data),
        }
        Ok(())
    }

    /// The GPU context the plan runs on (`None` on the CPU backend).
    pub fn gpu(&self) -> Option<&GpuContext> {
        match self {
            Executor::Cpu { .. } => None,
            Executor::Gpu { ctx, .. } => Some(ctx),
        }
    }

    /// Reads a slice (blocking until the device is done with earlier work).
    pub fn read(&self, s: Slice) -> anyhow::Result<Vec<f32>> {
        Ok(match self {
            Executor::Cpu { plan, .. } => plan.f32s(s).to_vec(),
            Executor::Gpu { ctx, plan, .. } => plan.read_f32(ctx, s)?,
        })
    }
}
