//! `shadergan sweep`: train and score K seeds of a preset or a recipe file,
//! keep each run and its `eval.json`, and report mean ± standard error over
//! the seeds (also in the sweep's `summary.json`).

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use clap::{ArgGroup, Args};
use shadergan::data::{self, DatasetName};
use shadergan::eval::report::{Report, Request, evaluate};
use shadergan::eval::{draws, mode_trace, sweep};
use shadergan::gan::recipe::Recipe;
use shadergan::gan::stop;
use shadergan::gan::trainer::{LoopOptions, SeedRun, Summary, train_recipe, train_recipe_seeds};
use shadergan::gpu::GpuContext;
use shadergan::io::atomic::write_atomic;
use shadergan::io::checkpoint;
use shadergan::plan::MAX_SEEDS;

use super::DeviceArgs;
use super::report::print_report;
use super::run_folder::check_creatable;
use super::train::Interrupted;

#[derive(Args, Clone, Debug)]
#[command(group(ArgGroup::new("trained").required(true).args(["preset", "recipe"])))]
pub struct SweepArgs {
    /// Train and score this many seeds: S..S+K, S = --first-seed.
    #[arg(long, value_name = "K")]
    pub seeds: u64,
    /// The first seed (to split one sweep over several machines; `summarize` joins the parts).
    #[arg(long, value_name = "S", default_value_t = 0)]
    pub first_seed: u64,
    /// Train this many seeds at once, in threads: on the CPU backend one core each;
    /// with --adapter 0,1,… the threads take the adapters in turn
    /// [default: 1, or one per adapter listed].
    #[arg(long, value_name = "J")]
    pub jobs: Option<usize>,
    /// Train at most N seeds in one seed-batched plan (each launch does every
    /// seed's work; memory grows with N); 1 trains the seeds one after
    /// another. Used when one device trains with one job [default: 64].
    #[arg(long, value_name = "N")]
    pub batched_seeds: Option<usize>,
    /// The preset to train.
    #[arg(long, value_name = "NAME", conflicts_with = "recipe")]
    pub preset: Option<String>,
    /// The recipe file (JSON, as `train --dump-recipe` prints it) to train.
    #[arg(long, value_name = "FILE")]
    pub recipe: Option<PathBuf>,
    /// Override the recipe's steps.
    #[arg(long)]
    pub steps: Option<u64>,
    /// Folder for the runs (seed-S each) and summary.json [default: runs/sweep-<preset>-<time>].
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Folder with the dataset's train-* and t10k-* files (MNIST format).
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// Seed of the noise each run's samples are scored from.
    #[arg(long, default_value_t = 1)]
    pub noise_seed: u64,
    /// On the mixtures, also score each run's final checkpoint over K noise draws
    /// (noise seeds S..S+K, S = --noise-seed) into its draws.json.
    #[arg(long, value_name = "K")]
    pub noise_seeds: Option<u64>,
    /// On the mixtures: trace each run's mode coverage every N steps (`train --eval-every`);
    /// the summary adds the mean coverage over each run's last quarter.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub eval_every: u64,
    /// Skip the Parzen estimate (the slowest protocol).
    #[arg(long)]
    pub no_parzen: bool,
    /// BatchNorm statistics of a layer-list generator's samples.
    #[arg(long, value_enum, default_value_t = super::BnStatsArg::Running)]
    pub bn_stats: super::BnStatsArg,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub device: DeviceArgs,
}

/// What a sweep trains: the recipe (with `--steps` applied), the name its
/// default folder takes (the preset, or the recipe file's stem) and the
/// label its summary is printed under.
struct Trained {
    recipe: Recipe,
    stem: String,
    label: String,
}

pub fn run(a: &SweepArgs) -> anyhow::Result<()> {
    super::signals::install()?;
    anyhow::ensure!(a.seeds > 0, "--seeds must be at least 1");
    let end = a.first_seed.checked_add(a.seeds).ok_or_else(|| {
        anyhow::anyhow!(
            "--first-seed {} + --seeds {} passes the largest seed",
            a.first_seed,
            a.seeds
        )
    })?;
    let trained = trained(a)?;
    let name = trained.recipe.dataset_name()?;
    if let Some(count) = a.noise_seeds {
        draws::check(name.as_str(), a.noise_seed, count).map_err(super::settings::in_flags)?;
    }
    let root = root_folder(a.out.as_deref(), &trained.stem)?;
    let gpus = a.device.select_each()?;
    let jobs = a.jobs.unwrap_or(gpus.len());
    anyhow::ensure!(jobs > 0, "--jobs must be at least 1");
    let seeds: Vec<u64> = (a.first_seed..end).collect();
    let batch = batch_size(a, jobs, gpus.len())?.min(seeds.len());
    let result = if batch > 1 {
        eprintln!(
            "training {} seeds in plans of up to {batch} (--batched-seeds)",
            seeds.len()
        );
        batched(a, &trained.recipe, name, &root, &seeds, batch, &gpus[0])
    } else {
        spread(&seeds, jobs, &gpus, |seed, gpu| {
            train_and_score(a, &trained.recipe, name, &root, seed, gpu)
        })
    };
    if let Some(signal) = stop::requested() {
        anyhow::bail!(stopped(signal, &root, result.err()));
    }
    result?;
    write_summary(a, &trained, &root)
}

/// A sweep stopped by a signal: no seed is started after it, a seed in
/// training writes its checkpoint, and the finished seeds keep their scores.
fn stopped(signal: i32, root: &Path, in_flight: Option<anyhow::Error>) -> Interrupted {
    let detail = in_flight.map_or(String::new(), |e| format!("; {e:#}"));
    Interrupted {
        signal,
        message: format!(
            "stopped by {}: the finished seeds are in {} (`shadergan summarize {}`){detail}",
            super::signals::name(signal),
            root.display(),
            root.display()
        ),
    }
}

/// The recipe `--preset` or `--recipe` names, with `--steps` applied.
fn trained(a: &SweepArgs) -> anyhow::Result<Trained> {
    let mut recipe = super::settings::named(a.preset.as_deref(), a.recipe.as_deref())?
        .ok_or_else(|| anyhow::anyhow!("sweep needs --preset NAME or --recipe FILE"))?;
    if let Some(s) = a.steps {
        recipe.steps = s;
    }
    recipe.check().map_err(super::settings::in_flags)?;
    let (stem, label) = match (&a.preset, &a.recipe) {
        (_, Some(file)) => (
            file.file_stem()
                .map_or("recipe".into(), |s| s.to_string_lossy().into_owned()),
            format!("recipe {}", file.display()),
        ),
        (preset, None) => {
            let preset = preset.clone().unwrap_or_default();
            (preset.clone(), format!("preset {preset}"))
        }
    };
    Ok(Trained {
        recipe,
        stem,
        label,
    })
}

/// `--out`, or `runs/sweep-<stem>-<seconds since 1970>`: a folder that must
/// not exist yet and can be created (refused now, not after the first seed).
fn root_folder(out: Option<&Path>, stem: &str) -> anyhow::Result<PathBuf> {
    let root = out.map(Path::to_path_buf).unwrap_or_else(|| {
        PathBuf::from(format!(
            "runs/sweep-{stem}-{}",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs())
        ))
    });
    anyhow::ensure!(
        !root.exists(),
        "{} already exists; choose another --out",
        root.display()
    );
    check_creatable(&root)?;
    Ok(root)
}

/// How many seeds share one plan: `--batched-seeds`, else up to
/// [`MAX_SEEDS`] when one device trains with one job; 1 otherwise.
fn batch_size(a: &SweepArgs, jobs: usize, devices: usize) -> anyhow::Result<usize> {
    let single = jobs == 1 && devices == 1;
    match a.batched_seeds {
        Some(0) => anyhow::bail!("--batched-seeds must be at least 1"),
        Some(n) if n > MAX_SEEDS => {
            anyhow::bail!("--batched-seeds {n} is past the most one plan holds ({MAX_SEEDS})")
        }
        Some(n) if n > 1 && !single => anyhow::bail!(
            "--batched-seeds {n} needs one job on one device (not --jobs or several adapters)"
        ),
        Some(n) => Ok(n),
        None if single => Ok(MAX_SEEDS),
        None => Ok(1),
    }
}

/// The data and loop options of seed `seed`'s run in `root/seed-<seed>`.
fn seed_setup(
    a: &SweepArgs,
    recipe: &Recipe,
    name: DatasetName,
    root: &Path,
    seed: u64,
) -> anyhow::Result<(data::Dataset, LoopOptions, PathBuf)> {
    let dataset = data::load(name, a.data.as_deref(), seed)
        .map_err(super::settings::any_in_flags)?
        .dataset;
    let out = root.join(format!("seed-{seed}"));
    super::settings::check_eval_every(a.eval_every, &dataset.kind)?;
    let observer = mode_trace::observer(a.eval_every, &dataset, &out, None)?;
    let opts = LoopOptions {
        eval_every: a.eval_every,
        observer,
        ..LoopOptions::for_recipe(recipe)
    };
    Ok((dataset, opts, out))
}

/// Trains the seeds `batch` at a time in seed-batched plans on `gpu` (or
/// the CPU backend), scoring each seed once its plan is done. A seed that
/// diverges stops alone; the error names the lowest such seed once the
/// others are scored.
fn batched(
    a: &SweepArgs,
    recipe: &Recipe,
    name: DatasetName,
    root: &Path,
    seeds: &[u64],
    batch: usize,
    gpu: &Option<GpuContext>,
) -> anyhow::Result<()> {
    let mut failures = Vec::new();
    for chunk in seeds.chunks(batch) {
        if stop::requested().is_some() {
            break;
        }
        let setups = chunk
            .iter()
            .map(|&seed| seed_setup(a, recipe, name, root, seed))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let runs: Vec<SeedRun> = chunk
            .iter()
            .zip(&setups)
            .map(|(&seed, (dataset, opts, out))| SeedRun {
                seed,
                dataset,
                opts: opts.clone(),
                out: out.clone(),
            })
            .collect();
        let summaries = train_recipe_seeds(recipe, &runs, gpu.clone())?;
        for ((&seed, (_, _, out)), summary) in chunk.iter().zip(&setups).zip(summaries) {
            let scored = summary.and_then(|s| score(a, recipe, name, out, seed, &s, gpu));
            if let Err(e) = scored {
                eprintln!("seed {seed}: {e:#}");
                failures.push((seed, e));
            }
        }
    }
    match failures.into_iter().next() {
        Some((seed, e)) => Err(e.context(format!("seed {seed}"))),
        None => Ok(()),
    }
}

/// Trains seed `seed` into `root/seed-<seed>` and scores its final
/// checkpoint: `eval.json` (and with `--noise-seeds`, `draws.json`) beside it.
fn train_and_score(
    a: &SweepArgs,
    recipe: &Recipe,
    name: DatasetName,
    root: &Path,
    seed: u64,
    gpu: &Option<GpuContext>,
) -> anyhow::Result<Report> {
    let (dataset, opts, out) = seed_setup(a, recipe, name, root, seed)?;
    let summary = train_recipe(recipe, &dataset, seed, gpu.clone(), &opts, &out)?;
    score(a, recipe, name, &out, seed, &summary, gpu)
}

/// Scores the final checkpoint of the finished run in `out`: `eval.json`
/// (and with `--noise-seeds`, `draws.json`) beside it.
fn score(
    a: &SweepArgs,
    recipe: &Recipe,
    name: DatasetName,
    out: &Path,
    seed: u64,
    summary: &Summary,
    gpu: &Option<GpuContext>,
) -> anyhow::Result<Report> {
    anyhow::ensure!(
        !summary.interrupted,
        "stopped at step {} of {} with its checkpoint in {}",
        summary.steps,
        recipe.steps,
        out.display()
    );
    let ck = checkpoint::load(&out.join("checkpoint.safetensors"))?;
    let report = evaluate(
        gpu.as_ref(),
        &ck.model,
        ck.sampling_generator(),
        &Request {
            dataset: name.as_str(),
            step: ck.step,
            noise_seed: a.noise_seed,
            data_dir: a.data.as_deref(),
            with_parzen: !a.no_parzen,
            bn_stats: a.bn_stats.into(),
        },
    )
    .map_err(super::settings::any_in_flags)?;
    if let Some(count) = a.noise_seeds {
        // Before eval.json, which marks the run finished.
        let draws = draws::score_draws(
            gpu.as_ref(),
            &ck.model,
            ck.sampling_generator(),
            name.as_str(),
            ck.step,
            a.noise_seed,
            count,
        )?;
        write_atomic(
            &out.join(draws::FILE),
            serde_json::to_string_pretty(&draws)?.as_bytes(),
        )?;
    }
    // Each seed's report is kept beside its run, so a long sweep cut short loses nothing.
    write_atomic(
        &out.join("eval.json"),
        serde_json::to_string_pretty(&report)?.as_bytes(),
    )?;
    eprintln!("seed {seed} ({:.1} s of training):", summary.seconds);
    if !a.json {
        print_report(&report);
    }
    Ok(report)
}

/// Runs `run_one` on every seed, `jobs` at once in threads: each worker takes
/// the next seed until none is left, worker w on the w-th device of `gpus`
/// (round robin). The first error stops them all; the error of the lowest
/// seed that failed is returned.
fn spread(
    seeds: &[u64],
    jobs: usize,
    gpus: &[Option<GpuContext>],
    run_one: impl Fn(u64, &Option<GpuContext>) -> anyhow::Result<Report> + Sync,
) -> anyhow::Result<()> {
    let next = AtomicUsize::new(0);
    let failures = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for worker in 0..jobs.min(seeds.len()) {
            let gpu = &gpus[worker % gpus.len()];
            let (next, failures, run_one) = (&next, &failures, &run_one);
            scope.spawn(move || {
                // A stop request (a signal) starts no further seed.
                while stop::requested().is_none() {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(&seed) = seeds.get(i) else { break };
                    if let Err(e) = run_one(seed, gpu) {
                        next.store(seeds.len(), Ordering::Relaxed);
                        failures
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .push((seed, e));
                    }
                }
            });
        }
    });
    let mut failures = failures.into_inner().unwrap_or_else(|e| e.into_inner());
    failures.sort_by_key(|(seed, _)| *seed);
    match failures.into_iter().next() {
        Some((seed, e)) => Err(e.context(format!("seed {seed}"))),
        None => Ok(()),
    }
}

/// Reads the runs back as `summarize` does (so both have one shape), writes
/// `summary.json` with what was trained, and prints the summary.
fn write_summary(a: &SweepArgs, trained: &Trained, root: &Path) -> anyhow::Result<()> {
    let (runs, _) = sweep::gather(std::slice::from_ref(&root.to_path_buf()))?;
    let mut json = sweep::summary_json(&runs);
    json["preset"] = serde_json::json!(a.preset);
    json["recipe_file"] = serde_json::json!(a.recipe);
    // Through text, so f32 settings keep their short form (0.0005, not 0.0005000000237).
    json["recipe"] = serde_json::from_str(&serde_json::to_string(&trained.recipe)?)?;
    json["first_seed"] = serde_json::json!(a.first_seed);
    let text = serde_json::to_string_pretty(&json)?;
    write_atomic(&root.join("summary.json"), text.as_bytes())?;
    if a.json {
        println!("{text}");
        return Ok(());
    }
    println!("{}: {}", trained.label, sweep::heading(&runs));
    println!("  runs in {}", root.display());
    for line in sweep::summary_lines(&runs) {
        println!("{line}");
    }
    Ok(())
}
