//! The training loop: alternating D and G updates, losses, sample grids,
//! a loss plot and the checkpoint, all written into one run folder.
//!
//! ```text
//! runs/<dataset>-<time>/
//!   config.json              every setting, the seed, the backend and adapter
//!   losses.csv               step, d_loss, g_loss, d_real, d_fake
//!   losses.png               the loss curves and mean D outputs
//!   samples/step-NNNNNN.png  G on fixed noise (a grid, or a scatter over the data)
//!   checkpoint.safetensors   both networks (and G's average), loadable by PyTorch
//! ```
//! Every file is written atomically (temporary file, fsync, rename).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::Serialize;

use super::Architecture;
use super::observer::Observer;
use super::recipe::d_updates_in_step;
use super::run_nets::RunNets;
use super::seq_step::{SeqGanConfig, build_seq_gan_plan};
use super::step::{GanConfig, GanPlan, InitialParams, build_gan_plan};
use crate::backend::Executor;
use crate::data::{DataKind, Dataset};
use crate::gpu::GpuContext;
use crate::io::{atomic::write_atomic, checkpoint, grid, plot, step_csv};
use crate::plan::Slice;

mod seeds;
pub use seeds::{SeedRun, train_recipe_seeds};

/// Everything a run is configured by (saved as `config.json`).
#[derive(Clone, Debug, Serialize)]
pub struct RunConfig {
    pub dataset: String,
    pub data_source: String,
    pub model: Architecture,
    pub batch: usize,
    pub steps: u64,
    pub d_steps: u32,
    /// Steps before this one took one D update (0: `d_steps` throughout).
    #[serde(skip_serializing_if = "super::recipe::is_zero")]
    pub d_steps_from: u64,
    pub d_adam: crate::plan::AdamHyper,
    pub g_adam: crate::plan::AdamHyper,
    pub real_label: f32,
    /// Dropout rate on D's hidden layers.
    pub d_dropout: f32,
    /// Decay of the moving average of G's weights (0: none).
    pub g_ema: f32,
    pub seed: u64,
    pub backend: String,
    pub sample_every: u64,
    pub log_every: u64,
    /// Checkpoint every this many steps (0: only at the end).
    pub checkpoint_every: u64,
    /// Mode coverage every this many steps (0: only at the end).
    pub eval_every: u64,
    /// The run's id, also in each checkpoint: `--resume` refuses a checkpoint of another run.
    pub run_id: String,
    pub shadergan_version: &'static str,
}

/// The last scalars of a run.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Stats {
    pub d_loss: f32,
    pub g_loss: f32,
    pub d_real: f32,
    pub d_fake: f32,
}

impl Stats {
    fn from_report(v: &[f32]) -> Stats {
        Stats {
            d_loss: v[super::step::STAT_D_LOSS],
            g_loss: v[super::step::STAT_G_LOSS],
            d_real: v[super::step::STAT_D_REAL],
            d_fake: v[super::step::STAT_D_FAKE],
        }
    }

    fn all_finite(&self) -> bool {
        [self.d_loss, self.g_loss, self.d_real, self.d_fake]
            .iter()
            .all(|v| v.is_finite())
    }
}

/// What a finished run reports.
#[derive(Clone, Debug)]
pub struct Summary {
    /// The step the run reached, and the one it started from (0, or a resume's).
    pub steps: u64,
    pub first_step: u64,
    pub seconds: f64,
    pub last: Stats,
    pub backend: String,
    pub out: PathBuf,
    /// The run stopped early on [`super::stop::request`] (a signal), after a checkpoint.
    pub interrupted: bool,
    /// The run folder's lock, held while the summary lives, so the caller
    /// stays the folder's one writer while it adds to it (scores, say).
    pub lock: crate::io::run_lock::RunLock,
}

/// Whether a stop was asked for ([`super::stop::request`], a signal).
fn stop_requested() -> bool {
    super::stop::requested().is_some()
}

/// Options of the loop itself.
#[derive(Clone, Debug)]
pub struct LoopOptions {
    pub steps: u64,
    pub d_steps: u32,
    /// Steps before this one take a single D update (0: `d_steps` throughout).
    pub d_steps_from: u64,
    pub sample_every: u64,
    /// Call the observer every this many steps and where the run ends (0: never).
    pub eval_every: u64,
    /// Watches the sampling generator at those steps (the mode trace of `--eval-every`).
    pub observer: Option<Observer>,
    pub log_every: u64,
    pub progress: bool,
    /// After training, time each kernel of a step over this many extra steps
    /// and print its share (`train --profile`); 0: no profile.
    pub profile_steps: usize,
    /// Also write the checkpoint every this many steps (0: only at the end).
    pub checkpoint_every: u64,
    /// Continue from this checkpoint (which must hold its training state) in
    /// its run folder, appending to its losses.
    pub resume: Option<checkpoint::Checkpoint>,
    /// The recipe as JSON, saved in checkpoints so `train --resume` can continue.
    pub recipe_json: Option<String>,
}

impl LoopOptions {
    /// The loop `recipe` asks for (its steps and D updates per step), logging
    /// every 100 steps, with no sample grids, evals, progress bar, profile or
    /// checkpoints before the last; set the others by struct update.
    pub fn for_recipe(recipe: &super::recipe::Recipe) -> LoopOptions {
        LoopOptions {
            steps: recipe.steps,
            d_steps: recipe.d_steps,
            d_steps_from: recipe.d_steps_from,
            sample_every: 0,
            eval_every: 0,
            observer: None,
            log_every: 100,
            progress: false,
            profile_steps: 0,
            checkpoint_every: 0,
            resume: None,
            recipe_json: None,
        }
    }

    /// Steps from `step` to the next log, sample, checkpoint or eval point,
    /// or to the last step, whichever comes first.
    fn steps_to_next_point(&self, step: u64) -> u64 {
        let mut n = self.log_every - step % self.log_every;
        for every in [self.sample_every, self.checkpoint_every, self.eval_every] {
            if every > 0 {
                n = n.min(every - step % every);
            }
        }
        n.min(self.steps - step)
    }
}

/// Trains `recipe` with `seed` on `dataset` into the (new, empty) folder `out`.
pub fn train_recipe(
    recipe: &super::recipe::Recipe,
    dataset: &Dataset,
    seed: u64,
    gpu: Option<GpuContext>,
    opts: &LoopOptions,
    out: &Path,
) -> anyhow::Result<Summary> {
    let with_recipe = with_recipe_json(recipe, opts)?;
    let built = build_recipe(recipe, dataset, seed, gpu.as_ref(), &with_recipe)?;
    train_built(built, dataset, gpu, &with_recipe, out)
}

/// `opts` with the recipe's JSON for the checkpoints, unless it has one.
fn with_recipe_json(
    recipe: &super::recipe::Recipe,
    opts: &LoopOptions,
) -> anyhow::Result<LoopOptions> {
    let mut with_recipe = opts.clone();
    if opts.recipe_json.is_none() {
        with_recipe.recipe_json = Some(serde_json::to_string(recipe)?);
    }
    Ok(with_recipe)
}

/// The plan and handles of `recipe` with `seed` on `dataset`: an MLP pair or layer lists.
fn build_recipe(
    recipe: &super::recipe::Recipe,
    dataset: &Dataset,
    seed: u64,
    gpu: Option<&GpuContext>,
    opts: &LoopOptions,
) -> anyhow::Result<Built> {
    let points = matches!(dataset.kind, DataKind::Points(_));
    if recipe.layers.is_some() {
        let cfg = recipe.seq_gan_config(&dataset.kind, seed)?;
        return build_layers(&cfg, dataset, gpu, opts);
    }
    let cfg = recipe.gan_config(dataset.data.cols(), points, seed);
    build_mlp(&cfg, dataset, gpu, opts)
}

/// Trains `cfg` on `dataset` into the (new, empty) folder `out`.
pub fn train(
    cfg: &GanConfig,
    dataset: &Dataset,
    gpu: Option<GpuContext>,
    opts: &LoopOptions,
    out: &Path,
) -> anyhow::Result<Summary> {
    let built = build_mlp(cfg, dataset, gpu.as_ref(), opts)?;
    train_built(built, dataset, gpu, opts, out)
}

/// The plan and handles of the MLP pair `cfg`, checked to fit first.
fn build_mlp(
    cfg: &GanConfig,
    dataset: &Dataset,
    gpu: Option<&GpuContext>,
    opts: &LoopOptions,
) -> anyhow::Result<Built> {
    check_options(opts)?;
    check_fits(cfg, dataset, opts, gpu)?;
    let GanPlan {
        plan,
        generator,
        discriminator,
        stats,
        samples,
        generator_ema,
        param_sums,
        ..
    } = build_gan_plan(cfg, &dataset.data, initial_params(cfg, opts)?)?;
    Ok(Built {
        plan,
        nets: RunNets::Mlp {
            generator,
            discriminator,
            generator_ema,
        },
        stats,
        samples,
        param_sums,
        settings: RunSettings {
            model: Architecture::Mlp(cfg.model.clone()),
            batch: cfg.batch,
            d_adam: cfg.d_adam,
            g_adam: cfg.g_adam,
            real_label: cfg.real_label,
            d_dropout: cfg.d_dropout,
            g_ema: cfg.g_ema,
            seed: cfg.seed,
        },
    })
}

/// Trains the layer-list GAN `cfg` (the DCGAN) on `dataset` into the (new,
/// empty) folder `out`.
pub fn train_layers(
    cfg: &SeqGanConfig,
    dataset: &Dataset,
    gpu: Option<GpuContext>,
    opts: &LoopOptions,
    out: &Path,
) -> anyhow::Result<Summary> {
    let built = build_layers(cfg, dataset, gpu.as_ref(), opts)?;
    train_built(built, dataset, gpu, opts, out)
}

/// The plan and handles of the layer-list GAN `cfg`, checked to fit first.
fn build_layers(
    cfg: &SeqGanConfig,
    dataset: &Dataset,
    gpu: Option<&GpuContext>,
    opts: &LoopOptions,
) -> anyhow::Result<Built> {
    check_options(opts)?;
    let model = Architecture::Layers(cfg.model.clone());
    if let Some(ck) = &opts.resume {
        anyhow::ensure!(
            ck.model == model,
            "the checkpoint's architecture ({}) differs from this run's ({})",
            ck.model.describe(),
            model.describe()
        );
    }
    check_layers_fit(cfg, dataset, gpu)?;
    let p = build_seq_gan_plan(cfg, &dataset.data)?;
    Ok(Built {
        plan: p.plan,
        nets: RunNets::Layers {
            generator: p.generator,
            discriminator: p.discriminator,
            generator_ema: p.generator_ema,
        },
        stats: p.stats,
        samples: p.samples,
        param_sums: p.param_sums,
        settings: RunSettings {
            model,
            batch: cfg.batch,
            d_adam: cfg.d_adam,
            g_adam: cfg.g_adam,
            real_label: cfg.real_label,
            d_dropout: 0.0,
            g_ema: cfg.g_ema,
            seed: cfg.seed,
        },
    })
}

/// What a run trains, built: its plan, its networks, the slices the loop
/// reads back, and the settings its files record.
struct Built {
    plan: crate::plan::Plan,
    nets: RunNets,
    stats: Slice,
    samples: Slice,
    param_sums: Slice,
    settings: RunSettings,
}

/// The settings of a run's networks that `config.json` and the checkpoint record.
#[derive(Clone, Debug)]
struct RunSettings {
    model: Architecture,
    batch: usize,
    d_adam: crate::plan::AdamHyper,
    g_adam: crate::plan::AdamHyper,
    real_label: f32,
    d_dropout: f32,
    g_ema: f32,
    seed: u64,
}

/// Runs the loop of a built GAN: resumes its state, trains, writes the folder.
fn train_built(
    built: Built,
    dataset: &Dataset,
    gpu: Option<GpuContext>,
    opts: &LoopOptions,
    out: &Path,
) -> anyhow::Result<Summary> {
    // Each report: the four stats, then the four parameter sums.
    let mut exec = Executor::new(gpu, built.plan, vec![built.stats, built.param_sums])?;
    let backend = exec.describe();
    let (start_step, mut history) = match &opts.resume {
        None => (0, Vec::new()),
        Some(ck) => {
            restore_training_state(&mut exec, ck, &built.nets)?;
            (ck.step, read_losses(out, ck.step)?)
        }
    };
    let lock = lock_run_folder(out, opts.resume.is_none())?;
    std::fs::create_dir_all(out.join("samples"))
        .map_err(|e| anyhow::anyhow!("cannot create run folder {}: {e}", out.display()))?;
    let run = Run {
        settings: built.settings,
        dataset,
        opts,
        out,
        nets: built.nets,
        samples: built.samples,
        run_id: run_id(opts),
    };
    run.write_config(&backend)?;
    let bar = progress_bar(opts, start_step);
    let start = Instant::now();
    let (step, interrupted) = run.train_steps(&mut exec, &mut history, start_step, bar.as_ref())?;
    run.absorb_reports(&mut exec, &mut history, true)?;
    let seconds = start.elapsed().as_secs_f64();
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    run.write_final(&mut exec, &history, step)?;
    if opts.profile_steps > 0 && !interrupted {
        // After the checkpoint: the profiled steps are real steps and must not reach it.
        write_profile(&mut exec, opts, &backend, out)?;
    }
    Ok(Summary {
        steps: step,
        first_step: start_step,
        seconds,
        last: history.last().map(|(_, s)| *s).unwrap_or_default(),
        backend,
        out: out.to_path_buf(),
        interrupted,
        lock,
    })
}

/// Refuses loop options that cannot run a step.
fn check_options(opts: &LoopOptions) -> anyhow::Result<()> {
    anyhow::ensure!(opts.steps > 0, "steps must be at least 1");
    anyhow::ensure!(opts.d_steps > 0, "d_steps must be at least 1");
    anyhow::ensure!(opts.log_every > 0, "log_every must be at least 1");
    Ok(())
}

/// The networks a run starts from: the resumed checkpoint's (whose
/// architecture must be the run's), else fresh ones.
fn initial_params(cfg: &GanConfig, opts: &LoopOptions) -> anyhow::Result<InitialParams> {
    let Some(ck) = &opts.resume else {
        return Ok(InitialParams::default());
    };
    anyhow::ensure!(
        ck.model == Architecture::Mlp(cfg.model.clone()),
        "the checkpoint's architecture differs from this run's"
    );
    Ok(InitialParams {
        generator: Some(ck.generator.clone()),
        discriminator: Some(ck.discriminator.clone()),
        generator_ema: ck.generator_ema.clone(),
    })
}

/// Puts a resumed checkpoint's state into the executor's buffers: a layer
/// list's running statistics, then both networks' Adam moments and update counters.
fn restore_training_state(
    exec: &mut Executor,
    ck: &checkpoint::Checkpoint,
    nets: &RunNets,
) -> anyhow::Result<()> {
    let t = ck.training.as_ref().ok_or_else(|| {
        anyhow::anyhow!("the checkpoint has no optimizer state (not written by `train`)")
    })?;
    nets.write_states(
        exec,
        [&ck.generator, &ck.discriminator],
        ck.generator_ema.as_deref(),
    )?;
    nets.restore_training(exec, t)
}

/// The run's id: the resumed run's, else a fresh one.
fn run_id(opts: &LoopOptions) -> String {
    opts.resume
        .as_ref()
        .and_then(|ck| ck.training.as_ref()?.run_id.clone())
        .unwrap_or_else(new_run_id)
}

/// What a run reads as it trains and writes its folder: its settings, the
/// device buffers it reads back, the folder and the run's id.
struct Run<'a> {
    settings: RunSettings,
    dataset: &'a Dataset,
    opts: &'a LoopOptions,
    out: &'a Path,
    nets: RunNets,
    /// G's output on the fixed noise, written by the `sample` phase.
    samples: Slice,
    run_id: String,
}

impl Run<'_> {
    /// Writes `config.json`: every setting, the backend and the run's id.
    fn write_config(&self, backend: &str) -> anyhow::Result<()> {
        let (cfg, opts) = (&self.settings, self.opts);
        let config = RunConfig {
            dataset: self.dataset.name.as_str().into(),
            data_source: self.dataset.source.clone(),
            model: cfg.model.clone(),
            batch: cfg.batch,
            steps: opts.steps,
            d_steps: opts.d_steps,
            d_steps_from: opts.d_steps_from,
            d_adam: cfg.d_adam,
            g_adam: cfg.g_adam,
            real_label: cfg.real_label,
            d_dropout: cfg.d_dropout,
            g_ema: cfg.g_ema,
            seed: cfg.seed,
            backend: backend.into(),
            sample_every: opts.sample_every,
            log_every: opts.log_every,
            checkpoint_every: opts.checkpoint_every,
            eval_every: opts.eval_every,
            run_id: self.run_id.clone(),
            shadergan_version: env!("CARGO_PKG_VERSION"),
        };
        write_atomic(
            &self.out.join("config.json"),
            serde_json::to_string_pretty(&config)?.as_bytes(),
        )
    }

    /// Trains from `step` to the last step, one stretch between log,
    /// sample, checkpoint or eval points at a time, doing each point's
    /// writes; stops early when a stop is asked for. Returns the step
    /// reached and whether a stop cut the run short.
    fn train_steps(
        &self,
        exec: &mut Executor,
        history: &mut Vec<(u64, Stats)>,
        mut step: u64,
        bar: Option<&indicatif::ProgressBar>,
    ) -> anyhow::Result<(u64, bool)> {
        let opts = self.opts;
        let mut phases = Vec::new();
        while step < opts.steps {
            if stop_requested() {
                return Ok((step, true));
            }
            let n = opts.steps_to_next_point(step);
            stretch_phases(opts, step, n, &mut phases);
            exec.run(&phases, Some(step + n))?;
            step += n;
            self.absorb_reports(exec, history, false)?;
            self.write_at_point(exec, history, step)?;
            if let Some(bar) = bar {
                show_progress(bar, step, history);
            }
        }
        Ok((step, false))
    }

    /// The writes due at `step` before the last: a sample grid (with the
    /// losses), the observer's look, a checkpoint (with the losses).
    fn write_at_point(
        &self,
        exec: &mut Executor,
        history: &mut Vec<(u64, Stats)>,
        step: u64,
    ) -> anyhow::Result<()> {
        let opts = self.opts;
        let due = |every: u64| every > 0 && step.is_multiple_of(every) && step < opts.steps;
        if due(opts.sample_every) {
            exec.run(&["sample"], None)?;
            self.write_step_samples(exec, step)?;
            write_losses(history, self.out)?;
        }
        if due(opts.eval_every)
            && let Some(observer) = &opts.observer
        {
            observer.observe(exec, self.nets.sampling(), &self.settings.model, step)?;
        }
        if due(opts.checkpoint_every) {
            self.absorb_reports(exec, history, true)?;
            write_losses(history, self.out)?;
            self.save_checkpoint(exec, step)?;
        }
        Ok(())
    }

    /// The writes where the run ends at `step`: the last sample grid, the
    /// losses, the observer's last look and the checkpoint.
    fn write_final(
        &self,
        exec: &mut Executor,
        history: &[(u64, Stats)],
        step: u64,
    ) -> anyhow::Result<()> {
        exec.run(&["sample"], None)?;
        self.write_step_samples(exec, step)?;
        write_losses(history, self.out)?;
        if self.opts.eval_every > 0
            && let Some(observer) = &self.opts.observer
        {
            observer.observe(exec, self.nets.sampling(), &self.settings.model, step)?;
        }
        self.save_checkpoint(exec, step)
    }

    /// Writes `samples/step-NNNNNNN.png` from the last `sample` phase.
    fn write_step_samples(&self, exec: &Executor, step: u64) -> anyhow::Result<()> {
        let name = format!("step-{step:07}");
        write_samples(exec, self.samples, self.dataset, self.out, &name)
    }

    /// Takes the executor's reports into the history (`wait`: all of them,
    /// waiting for the device); a divergence says which network went bad.
    fn absorb_reports(
        &self,
        exec: &mut Executor,
        history: &mut Vec<(u64, Stats)>,
        wait: bool,
    ) -> anyhow::Result<()> {
        absorb_reports(history, exec.reports(wait)?).map_err(|e| self.diverged(e, exec))
    }

    /// [`diverged`] for this run's networks and folder.
    fn diverged(&self, e: anyhow::Error, exec: &Executor) -> anyhow::Error {
        diverged(e, exec, &self.nets, self.out)
    }

    /// Writes `checkpoint.safetensors` at `step`: both networks, G's average,
    /// and (with a recipe) the optimizer state `--resume` continues from.
    /// Refuses non-finite parameters, writing nothing.
    fn save_checkpoint(&self, exec: &Executor, step: u64) -> anyhow::Result<()> {
        let training = self
            .opts
            .recipe_json
            .clone()
            .map(|recipe| self.nets.training_state(exec, recipe, self.run_id.clone()))
            .transpose()?;
        let [generator, discriminator] = self.nets.read_states(exec)?;
        let ck = checkpoint::Checkpoint {
            model: self.settings.model.clone(),
            step,
            dataset: self.dataset.name.as_str().into(),
            seed: self.settings.seed,
            generator,
            discriminator,
            generator_ema: self.nets.read_generator_ema(exec)?,
            training,
        };
        // A NaN or Inf the losses never saw (a ReLU's max can drop it) stops the run here.
        if ck
            .generator
            .iter()
            .chain(&ck.discriminator)
            .any(|v| !v.is_finite())
        {
            let e =
                anyhow::anyhow!("training diverged: non-finite parameters found at step {step}");
            return Err(self.diverged(e, exec));
        }
        checkpoint::save(&self.out.join("checkpoint.safetensors"), &ck)
    }
}

/// The phases of steps `step..step + n` (each step's D updates, then its G
/// update), then the parameter check, into `phases`.
fn stretch_phases(opts: &LoopOptions, step: u64, n: u64, phases: &mut Vec<&'static str>) {
    phases.clear();
    for s in step..step + n {
        let d_updates = d_updates_in_step(s, opts.d_steps, opts.d_steps_from);
        phases.extend(std::iter::repeat_n("d_step", d_updates as usize));
        phases.push("g_step");
    }
    phases.push("check_params");
}

/// Shows `step` and the last losses on the progress bar.
fn show_progress(bar: &indicatif::ProgressBar, step: u64, history: &[(u64, Stats)]) {
    bar.set_position(step);
    if let Some((_, s)) = history.last() {
        bar.set_message(format!(
            "D {:.3} G {:.3} D(x) {:.2} D(G(z)) {:.2}",
            s.d_loss, s.g_loss, s.d_real, s.d_fake
        ));
    }
}

/// `train --profile`: times each kernel of one step over `opts.profile_steps`
/// extra steps, prints the table and writes it as `profile.txt`.
fn write_profile(
    exec: &mut Executor,
    opts: &LoopOptions,
    backend: &str,
    out: &Path,
) -> anyhow::Result<()> {
    let mut step_phases: Vec<&str> = vec!["d_step"; opts.d_steps as usize];
    step_phases.push("g_step");
    let times = exec.profile(&step_phases, opts.profile_steps)?;
    let what = format!(
        "profile of one step ({} backend, mean of {} steps{})",
        backend,
        opts.profile_steps,
        if exec.is_gpu() {
            ", device time per kernel from timestamp queries"
        } else {
            ", host clock per op"
        }
    );
    let mut table = crate::profile::format_profile(&times, &what);
    let floor = exec.step_floor(&step_phases, opts.profile_steps)?;
    table += &crate::profile::format_dispatch_summary(&times, floor.as_ref());
    eprint!("{table}");
    write_atomic(&out.join("profile.txt"), table.as_bytes())
}

/// Refuses, before anything is allocated, a run past this machine's memory
/// or the GPU adapter's buffer limits, and a D-updates count past the limit.
fn check_fits(
    cfg: &GanConfig,
    dataset: &Dataset,
    opts: &LoopOptions,
    gpu: Option<&GpuContext>,
) -> anyhow::Result<()> {
    use super::footprint;
    footprint::check_d_steps(opts.d_steps)?;
    let shape = footprint::RunShape {
        model: &cfg.model,
        batch: cfg.batch,
        g_average: cfg.g_ema > 0.0,
        data_rows: dataset.data.rows(),
        data_value_bytes: value_bytes(&dataset.data),
        sample_rows: cfg.sample_rows,
    };
    check_footprint(&footprint::estimate(&shape)?, gpu)
}

/// Bytes one value of `data` takes on the device.
fn value_bytes(data: &super::TrainingData) -> usize {
    match data {
        super::TrainingData::U8 { .. } => 1,
        super::TrainingData::F32 { .. } => 4,
    }
}

/// Refuses a footprint past this machine's memory or, on a GPU, past the
/// adapter's largest buffer.
fn check_footprint(
    f: &super::footprint::Footprint,
    gpu: Option<&GpuContext>,
) -> anyhow::Result<()> {
    super::footprint::check_host(f, gpu.is_none())?;
    if let Some(ctx) = gpu {
        let (part, bytes) = f.largest_buffer;
        let bytes = u64::try_from(bytes).unwrap_or(u64::MAX);
        ctx.check_buffer_size(&format!("a buffer of {}", part.describe()), bytes)?;
    }
    Ok(())
}

/// [`check_fits`] for a layer-list GAN: its networks' sizes, the batch's
/// activations and the data, before anything is allocated.
fn check_layers_fit(
    cfg: &SeqGanConfig,
    dataset: &Dataset,
    gpu: Option<&GpuContext>,
) -> anyhow::Result<()> {
    use super::footprint;
    let (g, d) = cfg.model.networks().map_err(|e| anyhow::anyhow!(e))?;
    let data = &dataset.data;
    let data_bytes = (data.rows() * data.cols() * value_bytes(data)) as u128;
    let f = footprint::estimate_layers(&g, &d, cfg.batch, cfg.sample_rows, data_bytes);
    check_footprint(&f, gpu)
}

/// Creates and locks the run folder `out` ([`RunLock`]: one writer per
/// folder), removes what killed writers left, and refuses a folder that
/// already holds a run when starting one (`fresh`).
///
/// [`RunLock`]: crate::io::run_lock::RunLock
fn lock_run_folder(out: &Path, fresh: bool) -> anyhow::Result<crate::io::run_lock::RunLock> {
    // Refused before the lock file is made, and again once the lock is held
    // (another run may have started in between).
    let refuse_taken = || -> anyhow::Result<()> {
        anyhow::ensure!(
            !(fresh && holds_run_files(out)?),
            "run folder {} already holds files (another run's?); choose an empty folder",
            out.display()
        );
        Ok(())
    };
    if out.exists() {
        refuse_taken()?;
    }
    std::fs::create_dir_all(out)
        .map_err(|e| anyhow::anyhow!("cannot create run folder {}: {e}", out.display()))?;
    let lock = crate::io::run_lock::RunLock::acquire(out)?;
    crate::io::atomic::remove_stale_temporaries(out, &["samples"])?;
    refuse_taken()?;
    Ok(lock)
}

/// Whether `out` holds anything but the run lock's file and stale temporaries.
fn holds_run_files(out: &Path) -> std::io::Result<bool> {
    let lock_name = std::ffi::OsStr::new(crate::io::run_lock::LOCK_FILE);
    Ok(std::fs::read_dir(out)?.flatten().any(|e| {
        e.file_name() != lock_name
            && !crate::io::atomic::is_temporary_name(&e.file_name().to_string_lossy())
    }))
}

/// A fresh run id: 64 random bits in hex.
fn new_run_id() -> String {
    format!("{:016x}", rand::random::<u64>())
}

/// The bar of `opts.progress`, starting at `start_step`.
fn progress_bar(opts: &LoopOptions, start_step: u64) -> Option<indicatif::ProgressBar> {
    if !opts.progress {
        return None;
    }
    let bar = indicatif::ProgressBar::new(opts.steps);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{elapsed_precise} [{bar:30}] {pos}/{len} steps, {per_sec} | {msg}",
        )
        .expect("valid template")
        .progress_chars("=> "),
    );
    bar.set_position(start_step);
    Some(bar)
}

/// Completes a divergence error: which network's parameters went non-finite,
/// and which checkpoint survives (none is written after a divergence).
fn diverged(e: anyhow::Error, exec: &Executor, nets: &RunNets, out: &Path) -> anyhow::Error {
    let mut bad = Vec::new();
    for (name, params) in ["generator", "discriminator"]
        .into_iter()
        .zip(nets.params())
    {
        match exec.read(params) {
            Ok(p) => {
                if let Some(i) = p.iter().position(|v| !v.is_finite()) {
                    bad.push(format!("{name} parameter {i} is {}", p[i]));
                }
            }
            Err(read) => bad.push(format!("{name} parameters unreadable ({read})")),
        }
    }
    let params = if bad.is_empty() {
        "parameters still finite".to_string()
    } else {
        bad.join(", ")
    };
    anyhow::anyhow!("{e}; {params}; {}", checkpoint::kept_note(out))
}

/// Appends reports to the history, refusing NaN or Inf in the scalars or
/// in either network's parameter sums (`[G, D, G tail, D tail]`).
fn absorb_reports(
    history: &mut Vec<(u64, Stats)>,
    reports: Vec<(u64, Vec<f32>)>,
) -> anyhow::Result<()> {
    for (step, values) in reports {
        for (i, network) in ["generator", "discriminator"].iter().enumerate() {
            let (body, tail) = (values[4 + i], values[6 + i]);
            anyhow::ensure!(
                body.is_finite() && tail.is_finite(),
                "training diverged: non-finite {network} parameters at step {step} \
                 (sums over them: {body}, {tail})"
            );
        }
        let s = Stats::from_report(&values);
        if !s.all_finite() {
            anyhow::bail!(
                "training diverged: non-finite loss or D output at step {step} \
                 (D loss {}, G loss {}, D(x) {}, D(G(z)) {})",
                s.d_loss,
                s.g_loss,
                s.d_real,
                s.d_fake
            );
        }
        history.push((step, s));
    }
    Ok(())
}

/// The rows of an existing `losses.csv` up to step `upto` (resuming).
fn read_losses(out: &Path, upto: u64) -> anyhow::Result<Vec<(u64, Stats)>> {
    step_csv::read_rows_upto(&out.join("losses.csv"), upto, |line| {
        let v: Vec<&str> = line.split(',').collect();
        if v.len() != 5 {
            return None;
        }
        let stats = Stats {
            d_loss: v[1].parse().ok()?,
            g_loss: v[2].parse().ok()?,
            d_real: v[3].parse().ok()?,
            d_fake: v[4].parse().ok()?,
        };
        Some((v[0].parse().ok()?, stats))
    })
}

fn write_losses(history: &[(u64, Stats)], out: &Path) -> anyhow::Result<()> {
    let mut csv = String::from("step,d_loss,g_loss,d_real,d_fake\n");
    for (step, s) in history {
        writeln!(
            csv,
            "{step},{},{},{},{}",
            s.d_loss, s.g_loss, s.d_real, s.d_fake
        )?;
    }
    write_atomic(&out.join("losses.csv"), csv.as_bytes())?;
    let series = |name: &str, color, f: fn(&Stats) -> f32| plot::Series {
        name: name.into(),
        color,
        points: history
            .iter()
            .map(|(x, s)| (*x as f64, f64::from(f(s))))
            .collect(),
    };
    let img = plot::line_plot(
        "GAN training",
        "step",
        "loss / mean D output",
        &[
            series("D loss", [200, 50, 50], |s| s.d_loss),
            series("G loss", [40, 90, 200], |s| s.g_loss),
            series("D(x)", [60, 160, 60], |s| s.d_real),
            series("D(G(z))", [230, 150, 30], |s| s.d_fake),
        ],
        900,
        500,
    )?;
    write_atomic(&out.join("losses.png"), &grid::png_bytes(&img)?)
}

/// Writes `samples/<name>.png`: an image grid, or a scatter of points over the data.
fn write_samples(
    exec: &Executor,
    samples: Slice,
    dataset: &Dataset,
    out: &Path,
    name: &str,
) -> anyhow::Result<()> {
    let values = exec.read(samples)?;
    let background = match &dataset.data {
        super::TrainingData::F32 { values, .. } => values
            .chunks_exact(2)
            .take(2000)
            .map(|p| [p[0], p[1]])
            .collect(),
        _ => Vec::new(),
    };
    let png = render_samples(&values, &dataset.kind, &background)?;
    write_atomic(&out.join("samples").join(format!("{name}.png")), &png)
}

/// PNG bytes of generated rows: a grid for images, a scatter plot over
/// `background` (data points) for 2-D points.
pub fn render_samples(
    values: &[f32],
    kind: &DataKind,
    background: &[[f32; 2]],
) -> anyhow::Result<Vec<u8>> {
    match kind {
        DataKind::Images { rows, cols } => {
            let count = values.len() / (rows * cols);
            let per_row = (count as f64).sqrt().ceil() as usize;
            grid::png_bytes(&grid::image_grid(values, count, *rows, *cols, per_row, 2))
        }
        DataKind::Points(mixture) => {
            let foreground: Vec<[f32; 2]> = values.chunks_exact(2).map(|p| [p[0], p[1]]).collect();
            let img = plot::scatter_plot(
                &format!("{}: samples (color) over data (grey)", mixture.name),
                background,
                &foreground,
                mixture.plot_bounds(),
                600,
            )?;
            grid::png_bytes(&img)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::LoopOptions;
    use crate::gan::recipe::Recipe;

    #[test]
    fn options_for_a_recipe_take_its_steps_and_d_schedule() {
        let recipe = Recipe {
            steps: 77,
            d_steps: 3,
            d_steps_from: 20,
            ..Recipe::preset("ring").unwrap()
        };
        let opts = LoopOptions::for_recipe(&recipe);
        assert_eq!((opts.steps, opts.d_steps, opts.d_steps_from), (77, 3, 20));
        assert_eq!(opts.log_every, 100);
        assert!(opts.resume.is_none() && opts.observer.is_none() && !opts.progress);
    }
}
