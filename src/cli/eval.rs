//! `shadergan eval`: score a checkpoint with the published protocols, train
//! and score several seeds of a preset and report mean ± standard error, or
//! summarize seeds already scored (a sweep split over several runs).

use std::path::PathBuf;

use clap::Args;
use shadergan::data;
use shadergan::eval::report::{Report, Request, evaluate};
use shadergan::eval::sweep;
use shadergan::eval::{draws, mode_trace, modes};
use shadergan::gan::recipe::Recipe;
use shadergan::gan::trainer::{LoopOptions, train_recipe};
use shadergan::io::atomic::write_atomic;
use shadergan::io::checkpoint;

use super::DeviceArgs;
use shadergan::gpu::GpuContext;

#[derive(Args, Clone, Debug)]
pub struct EvalArgs {
    /// A checkpoint.safetensors to score.
    #[arg(long, value_name = "FILE", required_unless_present_any = ["seeds", "summarize"])]
    pub checkpoint: Option<PathBuf>,
    /// Score as this dataset [default: the checkpoint's].
    #[arg(long)]
    pub dataset: Option<String>,
    /// Folder with the dataset's train-* and t10k-* files (MNIST format).
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// Train and score this many seeds (S..S+K, S = --first-seed) of --preset or --recipe instead of one checkpoint.
    #[arg(long, value_name = "K", conflicts_with = "checkpoint")]
    pub seeds: Option<u64>,
    /// Report mean ± standard error over the seeds already scored in these folders
    /// (runs, or sweeps holding seed-* runs) instead of training; they must share one configuration.
    #[arg(long, value_name = "DIR", num_args = 1.., conflicts_with_all = ["checkpoint", "seeds", "preset", "recipe", "steps"])]
    pub summarize: Vec<PathBuf>,
    /// The first seed of a --seeds sweep (to split one sweep over several machines).
    #[arg(long, value_name = "S", default_value_t = 0, requires = "seeds")]
    pub first_seed: u64,
    /// Train this many seeds of a --seeds sweep at once, in threads: on the CPU backend one
    /// core each; with --adapter 0,1,… the threads take the adapters in turn
    /// [default: 1, or one per adapter listed].
    #[arg(long, value_name = "J", requires = "seeds")]
    pub jobs: Option<usize>,
    /// The preset trained with --seeds.
    #[arg(long, value_name = "NAME", conflicts_with = "recipe")]
    pub preset: Option<String>,
    /// A recipe file (JSON) trained with --seeds.
    #[arg(long, value_name = "FILE")]
    pub recipe: Option<PathBuf>,
    /// Override the preset's steps.
    #[arg(long)]
    pub steps: Option<u64>,
    /// Folder for the --seeds runs [default: runs/eval-<preset>-<time>].
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Seed of the noise the samples are drawn from.
    #[arg(long, default_value_t = 1)]
    pub noise_seed: u64,
    /// Score K draws of a mixture checkpoint's modes (noise seeds S..S+K, S = --noise-seed)
    /// and report mean ± standard error over the draws; the published protocol is one draw.
    /// With --seeds, each run's final checkpoint (kept in its draws.json).
    #[arg(long, value_name = "K", conflicts_with = "summarize")]
    pub noise_seeds: Option<u64>,
    /// With --seeds on the mixtures: trace each run's mode coverage every N steps
    /// (`train --eval-every`); the summary adds the mean coverage over each run's last quarter.
    #[arg(long, value_name = "N", default_value_t = 0, requires = "seeds")]
    pub eval_every: u64,
    /// Skip the Parzen estimate (the slowest protocol).
    #[arg(long)]
    pub no_parzen: bool,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub device: DeviceArgs,
}

pub fn print_report(r: &Report) {
    if let Some(m) = &r.modes {
        println!(
            "{} (step {}): {} of {} modes, {:.1}% high-quality samples, reverse KL {:.4} ({} samples)",
            r.dataset,
            r.step,
            m.modes_covered,
            m.modes_total,
            100.0 * m.high_quality_fraction,
            m.reverse_kl,
            m.samples
        );
        if (1..=modes::MISSED_NAMED).contains(&m.missed.len()) {
            let at: Vec<String> = m.missed.iter().map(|&c| modes::center_label(c)).collect();
            println!("  modes missed, by center: {}", at.join(", "));
        }
    }
    if let Some(c) = &r.classifier {
        println!(
            "{} (step {}): Fréchet distance {:.3} (real test vs train: {}), classifier inception score {:.3} ± {:.3} (real test: {:.3}); classifier {} at {:.2}% test accuracy",
            r.dataset,
            r.step,
            c.frechet_distance,
            c.real_frechet_distance
                .map_or("n/a".to_string(), |v| format!("{v:.3}")),
            c.inception_score,
            c.inception_score_std,
            c.real_inception_score,
            c.classifier_dataset,
            100.0 * c.classifier_test_accuracy
        );
    }
    if let Some(p) = &r.parzen {
        println!(
            "{}: Parzen log-likelihood {:.1} ± {:.1} nats (σ = {:.3}, {} samples, {} test images)",
            r.dataset, p.mean, p.standard_error, p.sigma, p.samples, p.test_rows
        );
    }
    for s in &r.skipped {
        println!("skipped {s}");
    }
}

pub fn run(a: &EvalArgs) -> anyhow::Result<()> {
    if !a.summarize.is_empty() {
        return summarize(a);
    }
    // A bad checkpoint is reported before anything else is printed.
    let loaded = a.checkpoint.as_deref().map(checkpoint::load).transpose()?;
    if let (Some(path), Some(ck)) = (&a.checkpoint, &loaded) {
        let dataset = a.dataset.as_deref().unwrap_or(&ck.dataset);
        shadergan::eval::report::check_data_dim(&ck.model, dataset)
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    }
    if let Some(ck) = loaded {
        let dataset = a.dataset.clone().unwrap_or(ck.dataset.clone());
        if let Some(count) = a.noise_seeds {
            // Refused before a device is opened.
            draws::check(&dataset, a.noise_seed, count)?;
            let gpu = a.device.select()?.gpu;
            let sweep = draws::score_draws(
                gpu.as_ref(),
                &ck.model,
                ck.sampling_generator(),
                &dataset,
                ck.step,
                a.noise_seed,
                count,
            )?;
            if a.json {
                println!("{}", serde_json::to_string_pretty(&sweep)?);
            } else {
                sweep.lines().iter().for_each(|l| println!("{l}"));
            }
            return Ok(());
        }
        let gpu = a.device.select()?.gpu;
        let report = evaluate(
            gpu.as_ref(),
            &ck.model,
            ck.sampling_generator(),
            &Request {
                dataset: &dataset,
                step: ck.step,
                noise_seed: a.noise_seed,
                data_dir: a.data.as_deref(),
                with_parzen: !a.no_parzen,
            },
        )?;
        if a.json {
            println!("{}", serde_json::to_string_pretty(&report)?);
        } else {
            print_report(&report);
        }
        return Ok(());
    }
    let k = a.seeds.expect("clap requires --checkpoint or --seeds");
    anyhow::ensure!(k > 0, "--seeds must be at least 1");
    // The preset, or the recipe file's stem (for the default --out).
    let (sweep_name, mut recipe) = match (&a.preset, &a.recipe) {
        (Some(p), _) => (
            p.clone(),
            Recipe::preset(p).ok_or_else(|| anyhow::anyhow!("unknown --preset '{p}'"))?,
        ),
        (None, Some(file)) => (
            file.file_stem()
                .map_or("recipe".into(), |s| s.to_string_lossy().into_owned()),
            Recipe::from_file(file)?,
        ),
        (None, None) => anyhow::bail!("--seeds needs --preset NAME or --recipe FILE"),
    };
    let label = match &a.recipe {
        Some(file) => format!("recipe {}", file.display()),
        None => format!("preset {sweep_name}"),
    };
    if let Some(s) = a.steps {
        recipe.steps = s;
    }
    recipe.check()?;
    let name = recipe.dataset_name()?;
    if let Some(count) = a.noise_seeds {
        draws::check(name.as_str(), a.noise_seed, count)?;
    }
    let root = a.out.clone().unwrap_or_else(|| {
        PathBuf::from(format!(
            "runs/eval-{sweep_name}-{}",
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
    // A folder that cannot be created is refused now, not after the first seed's training.
    super::train::check_creatable(&root)?;
    let gpus = a.device.select_each()?;
    let jobs = a.jobs.unwrap_or(gpus.len());
    anyhow::ensure!(jobs > 0, "--jobs must be at least 1");
    let seeds: Vec<u64> = (a.first_seed..a.first_seed + k).collect();
    let next = std::sync::atomic::AtomicUsize::new(0);
    let results = std::sync::Mutex::new(Vec::new());
    let run_one = |seed: u64, gpu: &Option<GpuContext>| -> anyhow::Result<Report> {
        let dataset = data::load(name, a.data.as_deref(), seed)?.dataset;
        let out = root.join(format!("seed-{seed}"));
        let observer = mode_trace::observer(a.eval_every, &dataset, &out, None)?;
        let opts = LoopOptions {
            steps: recipe.steps,
            d_steps: recipe.d_steps,
            d_steps_from: recipe.d_steps_from,
            sample_every: 0,
            eval_every: a.eval_every,
            observer,
            log_every: 100,
            progress: false,
            profile_steps: 0,
            checkpoint_every: 0,
            resume: None,
            recipe_json: None,
        };
        let summary = train_recipe(&recipe, &dataset, seed, gpu.clone(), &opts, &out)?;
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
            },
        )?;
        if let Some(count) = a.noise_seeds {
            // Before eval.json, which marks the run finished.
            let sweep = draws::score_draws(
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
                serde_json::to_string_pretty(&sweep)?.as_bytes(),
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
    };
    // Workers take the next seed until none is left; the first error stops them all.
    std::thread::scope(|scope| {
        for worker in 0..jobs.min(seeds.len()) {
            // Worker w trains on the w-th device of the list, round robin.
            let gpu = &gpus[worker % gpus.len()];
            let (next, results, seeds, run_one) = (&next, &results, &seeds, &run_one);
            scope.spawn(move || {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(&seed) = seeds.get(i) else { break };
                    let result = run_one(seed, gpu);
                    let failed = result.is_err();
                    results
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push((seed, result));
                    if failed {
                        next.store(seeds.len(), std::sync::atomic::Ordering::Relaxed);
                    }
                }
            });
        }
    });
    let mut results = results.into_inner().unwrap_or_else(|e| e.into_inner());
    results.sort_by_key(|(seed, _)| *seed);
    for (seed, result) in results {
        result.map_err(|e| e.context(format!("seed {seed}")))?;
    }
    // The summary reads the runs back as `--summarize` does, so both have one shape.
    let (runs, _) = sweep::gather(std::slice::from_ref(&root))?;
    let mut json = sweep::summary_json(&runs);
    json["preset"] = serde_json::json!(a.preset);
    json["recipe_file"] = serde_json::json!(a.recipe);
    // Through text, so f32 settings keep their short form (0.0005, not 0.0005000000237).
    json["recipe"] = serde_json::from_str(&serde_json::to_string(&recipe)?)?;
    json["first_seed"] = serde_json::json!(a.first_seed);
    let text = serde_json::to_string_pretty(&json)?;
    write_atomic(&root.join("summary.json"), text.as_bytes())?;
    if a.json {
        println!("{text}");
        return Ok(());
    }
    println!("{label}: {}", sweep::heading(&runs));
    println!("  runs in {}", root.display());
    for line in sweep::summary_lines(&runs) {
        println!("{line}");
    }
    Ok(())
}

/// `eval --summarize DIR...`: mean ± standard error over the scored seeds
/// found in the folders; reads only, writes nothing.
fn summarize(a: &EvalArgs) -> anyhow::Result<()> {
    let (runs, unfinished) = sweep::gather(&a.summarize)?;
    for dir in &unfinished {
        eprintln!(
            "note: {} has no eval.json (unfinished); left out",
            dir.display()
        );
    }
    if a.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&sweep::summary_json(&runs))?
        );
        return Ok(());
    }
    println!("{}", sweep::heading(&runs));
    for line in sweep::summary_lines(&runs) {
        println!("{line}");
    }
    Ok(())
}
