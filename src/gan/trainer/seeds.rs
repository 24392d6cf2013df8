//! Many seeds of one recipe trained at once: their plans stacked into one
//! seed-batched plan ([`crate::plan::batch_seeds`]), so each launch does the
//! work of every seed, driven by one loop, with a run folder per seed that
//! holds what a run of that seed alone would write.
//!
//! Seed s computes what it would alone (bit for bit on the CPU backend). A
//! seed whose losses or parameters go non-finite is stopped there (its
//! folder keeps its last checkpoint, as a lone run's would) and the others
//! go on; its error comes back in its place.

use std::path::PathBuf;

use super::*;
use crate::plan::{SeedLayout, batch_seeds};

/// One seed of a batched run: its seed, data, loop options and folder.
pub struct SeedRun<'a> {
    pub seed: u64,
    pub dataset: &'a Dataset,
    pub opts: LoopOptions,
    pub out: PathBuf,
}

/// A seed's run in the batched loop.
struct SeedState<'a> {
    run: Run<'a>,
    history: Vec<(u64, Stats)>,
    lock: crate::io::run_lock::RunLock,
    /// Why the seed stopped early (a divergence), if it did.
    failed: Option<anyhow::Error>,
}

/// Trains `recipe` for every seed of `runs` at once on one backend: one
/// summary per seed, in order, or that seed's error. The loop options must
/// agree on everything but the observer (one loop drives every seed);
/// an error that is no one seed's (building, the device) is the outer one.
pub fn train_recipe_seeds(
    recipe: &super::super::recipe::Recipe,
    runs: &[SeedRun],
    gpu: Option<GpuContext>,
) -> anyhow::Result<Vec<anyhow::Result<Summary>>> {
    anyhow::ensure!(!runs.is_empty(), "no seeds to train");
    let opts: Vec<LoopOptions> = runs
        .iter()
        .map(|r| with_recipe_json(recipe, &r.opts))
        .collect::<anyhow::Result<_>>()?;
    check_one_loop(&opts)?;
    let mut plans = Vec::with_capacity(runs.len());
    let mut handles = Vec::with_capacity(runs.len());
    for (r, o) in runs.iter().zip(&opts) {
        let mut built = build_recipe(recipe, r.dataset, r.seed, gpu.as_ref(), o)?;
        plans.push(std::mem::take(&mut built.plan));
        handles.push(built);
    }
    let (plan, layout) = batch_seeds(plans)?;
    let moved: Vec<Built> = handles
        .into_iter()
        .enumerate()
        .map(|(s, b)| moved_to_seed(b, &layout, s))
        .collect();
    let watched = moved.iter().flat_map(|b| [b.stats, b.param_sums]).collect();
    let mut exec = Executor::new(gpu, plan, watched)?;
    let backend = format!("{}, {} seeds in one plan", exec.describe(), runs.len());
    let mut states = Vec::with_capacity(runs.len());
    let mut start_step = None;
    for ((b, r), o) in moved.into_iter().zip(runs).zip(&opts) {
        let (step, state) = start_seed(&mut exec, b, r, o, &backend)?;
        anyhow::ensure!(
            start_step.is_none_or(|s| s == step),
            "the seeds resume from different steps"
        );
        start_step = Some(step);
        states.push(state);
    }
    let start_step = start_step.unwrap_or(0);
    let start = Instant::now();
    let (step, interrupted) = train_all(&mut exec, &mut states, &opts[0], start_step)?;
    absorb_all(&mut exec, &mut states, true)?;
    let seconds = start.elapsed().as_secs_f64();
    Ok(states
        .into_iter()
        .map(|mut st| {
            if let Some(e) = st.failed.take() {
                return Err(e);
            }
            st.run.write_final(&mut exec, &st.history, step)?;
            Ok(Summary {
                steps: step,
                first_step: start_step,
                seconds,
                last: st.history.last().map(|(_, s)| *s).unwrap_or_default(),
                backend: backend.clone(),
                out: st.run.out.to_path_buf(),
                interrupted,
                lock: st.lock,
            })
        })
        .collect())
}

/// Refuses seeds whose loops differ (steps, D updates, log, sample,
/// checkpoint or eval points) or that ask for a profile.
fn check_one_loop(opts: &[LoopOptions]) -> anyhow::Result<()> {
    let shape = |o: &LoopOptions| {
        (
            o.steps,
            o.d_steps,
            o.d_steps_from,
            o.log_every,
            o.sample_every,
            o.checkpoint_every,
            o.eval_every,
        )
    };
    anyhow::ensure!(
        opts.iter().all(|o| shape(o) == shape(&opts[0])),
        "seeds trained in one plan must share their loop options"
    );
    anyhow::ensure!(
        opts.iter().all(|o| o.profile_steps == 0),
        "a profile is of one seed's step: train the seed alone"
    );
    Ok(())
}

/// `b`'s handles (its plan taken) moved to seed `seed`'s copies of the
/// batched plan's buffers.
fn moved_to_seed(b: Built, layout: &SeedLayout, seed: usize) -> Built {
    let at = |s: Slice| layout.at(seed, s);
    Built {
        plan: b.plan,
        nets: b.nets.moved(at),
        stats: at(b.stats),
        samples: at(b.samples),
        param_sums: at(b.param_sums),
        settings: b.settings,
    }
}

/// Opens seed `r`'s run: its resumed state and losses, its folder (locked)
/// and its `config.json`. Returns the step it starts from.
fn start_seed<'a>(
    exec: &mut Executor,
    b: Built,
    r: &'a SeedRun<'a>,
    opts: &'a LoopOptions,
    backend: &str,
) -> anyhow::Result<(u64, SeedState<'a>)> {
    let out = r.out.as_path();
    let (step, history) = match &opts.resume {
        None => (0, Vec::new()),
        Some(ck) => {
            restore_training_state(exec, ck, &b.nets)?;
            (ck.step, read_losses(out, ck.step)?)
        }
    };
    let lock = lock_run_folder(out, opts.resume.is_none())?;
    std::fs::create_dir_all(out.join("samples"))
        .map_err(|e| anyhow::anyhow!("cannot create run folder {}: {e}", out.display()))?;
    let run = Run {
        settings: b.settings,
        dataset: r.dataset,
        opts,
        out: r.out.as_path(),
        nets: b.nets,
        samples: b.samples,
        run_id: run_id(opts),
    };
    run.write_config(backend)?;
    let state = SeedState {
        run,
        history,
        lock,
        failed: None,
    };
    Ok((step, state))
}

/// The loop of [`Run::train_steps`] for every seed at once: one submit per
/// stretch between points, then each live seed's reports and writes.
fn train_all(
    exec: &mut Executor,
    states: &mut [SeedState],
    opts: &LoopOptions,
    mut step: u64,
) -> anyhow::Result<(u64, bool)> {
    let bar = progress_bar(opts, step);
    let mut phases = Vec::new();
    while step < opts.steps {
        if stop_requested() {
            return Ok((step, true));
        }
        let n = opts.steps_to_next_point(step);
        stretch_phases(opts, step, n, &mut phases);
        exec.run(&phases, Some(step + n))?;
        step += n;
        // A checkpoint needs every report up to it first.
        let checkpoint_due = opts.checkpoint_every > 0
            && step.is_multiple_of(opts.checkpoint_every)
            && step < opts.steps;
        absorb_all(exec, states, checkpoint_due)?;
        for st in states.iter_mut().filter(|st| st.failed.is_none()) {
            if let Err(e) = st.run.write_at_point(exec, &mut st.history, step) {
                st.failed = Some(e);
            }
        }
        if let (Some(bar), Some(st)) = (&bar, states.iter().find(|st| st.failed.is_none())) {
            show_progress(bar, step, &st.history);
        }
        anyhow::ensure!(
            states.iter().any(|st| st.failed.is_none()),
            "every seed diverged; the first: {:#}",
            states[0].failed.as_ref().expect("failed")
        );
    }
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    Ok((step, false))
}

/// Hands each live seed its part of the executor's reports (all of them
/// when `wait`); a seed whose report is non-finite stops with its error.
fn absorb_all(exec: &mut Executor, states: &mut [SeedState], wait: bool) -> anyhow::Result<()> {
    let reports = exec.reports(wait)?;
    let words = reports.first().map_or(0, |(_, v)| v.len() / states.len());
    for (s, st) in states.iter_mut().enumerate() {
        if st.failed.is_some() {
            continue;
        }
        let own = reports
            .iter()
            .map(|(tag, v)| (*tag, v[s * words..(s + 1) * words].to_vec()))
            .collect();
        if let Err(e) = absorb_reports(&mut st.history, own) {
            st.failed = Some(st.run.diverged(e, exec));
        }
    }
    Ok(())
}
