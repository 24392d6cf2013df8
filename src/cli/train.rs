//! `shadergan train`.

use std::path::{Path, PathBuf};

use clap::{Args, ValueEnum};
use shadergan::data::{self, DatasetName};
use shadergan::eval::report::{Request, evaluate};
use shadergan::gan::ModelSpec;
use shadergan::gan::recipe::{PRESETS, Recipe};
use shadergan::gan::trainer::{LoopOptions, train_recipe};
use shadergan::io::{atomic::write_atomic, checkpoint};
use shadergan::plan::Activation;

use super::DeviceArgs;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum DatasetArg {
    /// Fashion-MNIST: the 60k set if installed or given with --data, else the embedded 10k.
    FashionMnist,
    /// MNIST from --data DIR.
    Mnist,
    /// 8 Gaussians on the unit circle (std 0.01).
    Ring,
    /// 25 Gaussians on a 5×5 grid (std 0.05).
    Grid,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ActivationArg {
    Relu,
    LeakyRelu,
}

#[derive(Args, Clone, Debug)]
pub struct TrainArgs {
    /// Start from a preset (seed, ring, grid, mnist); flags given override it.
    #[arg(long, value_name = "NAME")]
    pub preset: Option<String>,
    /// The training data [default: fashion-mnist, or the preset's].
    #[arg(long, value_enum)]
    pub dataset: Option<DatasetArg>,
    /// Folder holding train-images-idx3-ubyte.gz (MNIST format).
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// Passes over the data (a step is one D update and one G update on a batch).
    #[arg(long, conflicts_with = "steps")]
    pub epochs: Option<f64>,
    /// Training steps [default: 15000 for images, 4000 for 2-D points].
    #[arg(long)]
    pub steps: Option<u64>,
    /// Batch size [default: 64].
    #[arg(long)]
    pub batch: Option<usize>,
    /// Adam learning rate of both networks [default: 2e-4].
    #[arg(long)]
    pub lr: Option<f32>,
    /// Adam β1 [default: 0.5].
    #[arg(long)]
    pub beta1: Option<f32>,
    /// Adam β2 [default: 0.999].
    #[arg(long)]
    pub beta2: Option<f32>,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    #[command(flatten)]
    pub device: DeviceArgs,
    /// Run folder [default: runs/<dataset>-<time>]; must not already hold files.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Write a sample grid every N steps (0: only at the end) [default: steps/10].
    #[arg(long, value_name = "N")]
    pub sample_every: Option<u64>,
    /// On the mixtures, score the mode coverage every N steps (eval's 2-D protocol)
    /// into modes.csv and modes.png [default: 0, only at the end].
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub eval_every: u64,
    /// Record losses every N steps.
    #[arg(long, value_name = "N", default_value_t = 10)]
    pub log_every: u64,
    /// Hidden layer sizes of both networks, comma-separated [default: 128,128].
    #[arg(long, value_delimiter = ',')]
    pub hidden: Option<Vec<usize>>,
    /// Nonlinearity of the hidden layers [default: relu].
    #[arg(long, value_enum)]
    pub activation: Option<ActivationArg>,
    /// Slope of leaky_relu for negative inputs.
    #[arg(long, default_value_t = 0.2)]
    pub leaky_slope: f32,
    /// Size of the generator's noise input [default: 100].
    #[arg(long)]
    pub z_dim: Option<usize>,
    /// D updates per G update [default: 1].
    #[arg(long)]
    pub d_steps: Option<u32>,
    /// Take one D update per step before step N and --d-steps from N on [default: 0, --d-steps throughout].
    #[arg(long, value_name = "N")]
    pub d_steps_from: Option<u64>,
    /// Target of real samples in the D loss (0.9 = one-sided label smoothing) [default: 1].
    #[arg(long)]
    pub real_label: Option<f32>,
    /// PacGAN packing: D judges this many samples at once [default: 1].
    #[arg(long)]
    pub pack: Option<usize>,
    /// Decay both learning rates linearly to zero over the run.
    #[arg(long)]
    pub lr_decay: bool,
    /// Dropout rate on D's hidden layers while training [default: 0, none].
    #[arg(long, value_name = "P")]
    pub d_dropout: Option<f32>,
    /// Keep a moving average of G's weights with this decay (e.g. 0.999) and
    /// sample, evaluate and checkpoint it beside G [default: 0, none].
    #[arg(long, value_name = "BETA")]
    pub g_ema: Option<f32>,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
    /// Continue the run in DIR from its checkpoint (optimizer state, step counters
    /// and recipe included) up to --steps in all; training flags come from the run.
    #[arg(long, value_name = "DIR", conflicts_with_all = [
        "preset", "dataset", "epochs", "batch", "lr", "beta1", "beta2", "seed", "out",
        "hidden", "activation", "z_dim", "d_steps", "d_steps_from", "real_label", "pack", "lr_decay", "d_dropout",
        "g_ema",
    ])]
    pub resume: Option<PathBuf>,
    /// Also write the checkpoint every N steps, so a crash loses at most N steps.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub checkpoint_every: u64,
    /// After training, time every kernel of a step (timestamp queries on the GPU,
    /// the host clock on the CPU backend) over 20 extra steps, and print each one's
    /// share; also written to profile.txt. The checkpoint is saved before them.
    #[arg(long)]
    pub profile: bool,
}

pub fn dataset_name(d: DatasetArg) -> DatasetName {
    match d {
        DatasetArg::FashionMnist => DatasetName::FashionMnist,
        DatasetArg::Mnist => DatasetName::Mnist,
        DatasetArg::Ring => DatasetName::Ring,
        DatasetArg::Grid => DatasetName::Grid,
    }
}

/// The recipe the flags ask for: the preset (or the seed settings for the
/// dataset), with every flag given applied on top. `--epochs` is applied
/// once the dataset's size is known.
pub fn recipe_from_args(a: &TrainArgs) -> anyhow::Result<Recipe> {
    let mut r = match &a.preset {
        Some(name) => Recipe::preset(name).ok_or_else(|| {
            let names: Vec<&str> = PRESETS.iter().map(|(n, _)| *n).collect();
            anyhow::anyhow!("unknown --preset '{name}' (presets: {})", names.join(", "))
        })?,
        None => Recipe::without_preset(a.dataset.map_or(DatasetName::FashionMnist, dataset_name)),
    };
    if let Some(d) = a.dataset {
        r.dataset = dataset_name(d).as_str().into();
    }
    r.steps = a.steps.unwrap_or(r.steps);
    r.batch = a.batch.unwrap_or(r.batch);
    r.lr = a.lr.unwrap_or(r.lr);
    r.beta1 = a.beta1.unwrap_or(r.beta1);
    r.beta2 = a.beta2.unwrap_or(r.beta2);
    if let Some(h) = &a.hidden {
        r.hidden = h.clone();
    }
    if let Some(act) = a.activation {
        r.hidden_act = match act {
            ActivationArg::Relu => Activation::Relu,
            ActivationArg::LeakyRelu => Activation::LeakyRelu(a.leaky_slope),
        };
    }
    r.z_dim = a.z_dim.unwrap_or(r.z_dim);
    r.d_steps = a.d_steps.unwrap_or(r.d_steps);
    r.d_steps_from = a.d_steps_from.unwrap_or(r.d_steps_from);
    r.real_label = a.real_label.unwrap_or(r.real_label);
    r.pack = a.pack.unwrap_or(r.pack);
    r.lr_decay |= a.lr_decay;
    if let Some(p) = a.d_dropout {
        r.d_dropout = p;
    }
    if let Some(beta) = a.g_ema {
        r.g_ema = beta;
    }
    if let Some(e) = a.epochs {
        anyhow::ensure!(
            e.is_finite() && e > 0.0,
            "--epochs must be positive (got {e})"
        );
    }
    anyhow::ensure!(a.steps != Some(0), "--steps must be at least 1");
    if let Activation::LeakyRelu(s) = r.hidden_act {
        anyhow::ensure!(
            s.is_finite() && s > 0.0,
            "--leaky-slope must be positive (got {s})"
        );
    }
    r.check()?;
    Ok(r)
}

/// A new run folder: `--out` (which must be absent or empty) or `runs/<dataset>-<time>`.
fn run_folder(out: Option<&Path>, dataset: DatasetName) -> anyhow::Result<PathBuf> {
    if let Some(out) = out {
        if out.exists() {
            let empty = std::fs::read_dir(out)
                .map(|mut d| d.next().is_none())
                .unwrap_or(false);
            anyhow::ensure!(
                out.is_dir() && empty,
                "--out {} already exists and is not an empty folder; choose another --out",
                out.display()
            );
        }
        check_creatable(out)?;
        return Ok(out.to_path_buf());
    }
    let base = format!("runs/{}-{}", dataset.as_str(), utc_timestamp());
    let mut path = PathBuf::from(&base);
    let mut n = 2;
    while path.exists() {
        path = PathBuf::from(format!("{base}-{n}"));
        n += 1;
    }
    check_creatable(&path)?;
    Ok(path)
}

/// Refuses, before anything runs, a run folder that cannot be created: one
/// under a regular file (ENOTDIR), or in a folder this user may not write.
/// Probes by creating (and removing) a folder in the nearest existing ancestor
/// (or in `out` itself, an empty folder).
pub(super) fn check_creatable(out: &Path) -> anyhow::Result<()> {
    let mut base = Some(out);
    while let Some(b) = base {
        if b.as_os_str().is_empty() || b.exists() || std::fs::symlink_metadata(b).is_ok() {
            break;
        }
        base = b.parent();
    }
    let base = base
        .filter(|b| !b.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let probe = base.join(format!(".shadergan-probe-{}", std::process::id()));
    match std::fs::create_dir(&probe) {
        Ok(()) => {
            let _ = std::fs::remove_dir(&probe);
            Ok(())
        }
        Err(e) => anyhow::bail!("cannot create run folder {}: {e}", out.display()),
    }
}

/// A run stopped by Ctrl-C after writing its checkpoint (exit status 130).
#[derive(Debug)]
pub struct Interrupted(pub String);

impl std::fmt::Display for Interrupted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Interrupted {}

/// The recipe, checkpoint and folder of a run to resume; `steps` is the new total.
fn resume_from(
    dir: &Path,
    steps: Option<u64>,
) -> anyhow::Result<(Recipe, checkpoint::Checkpoint, PathBuf)> {
    let path = dir.join("checkpoint.safetensors");
    anyhow::ensure!(
        path.is_file(),
        "--resume {}: no checkpoint.safetensors there",
        dir.display()
    );
    let ck = checkpoint::load(&path)?;
    let training = ck.training.as_ref().ok_or_else(|| {
        anyhow::anyhow!(
            "--resume {}: the checkpoint has no optimizer state (not written by `train`)",
            dir.display()
        )
    })?;
    let mut recipe: Recipe = serde_json::from_str(&training.recipe).map_err(|e| {
        anyhow::anyhow!("--resume {}: its recipe is unreadable: {e}", dir.display())
    })?;
    if let Some(s) = steps {
        recipe.steps = s;
    }
    anyhow::ensure!(
        recipe.steps > ck.step,
        "--resume {}: the run is at step {} already; give --steps above it (the new total)",
        dir.display(),
        ck.step
    );
    recipe.check()?;
    Ok((recipe, ck, dir.to_path_buf()))
}

/// `z → hidden → data, pack p`: an architecture in a few words.
fn describe(m: &ModelSpec) -> String {
    format!(
        "z {} → hidden {:?} ({:?}) → {}, pack {}",
        m.z_dim, m.hidden, m.hidden_act, m.data_dim, m.pack
    )
}

/// Refuses to resume a checkpoint whose architecture is not the run's: not
/// the one its own recipe builds on `dataset`, or not the one in the run
/// folder's `config.json` (a checkpoint copied in from another run).
fn check_resumed_architecture(
    recipe: &Recipe,
    ck: &checkpoint::Checkpoint,
    dir: &Path,
    dataset: &data::Dataset,
) -> anyhow::Result<()> {
    let path = dir.join("checkpoint.safetensors");
    let points = matches!(dataset.kind, data::DataKind::Points(_));
    let built = recipe
        .gan_config(dataset.data.cols(), points, ck.seed)
        .model;
    anyhow::ensure!(
        built == ck.model,
        "--resume {}: {} holds the architecture {}, but its recipe builds {}",
        dir.display(),
        path.display(),
        describe(&ck.model),
        describe(&built)
    );
    let config = dir.join("config.json");
    if let Ok(text) = std::fs::read_to_string(&config) {
        let model = serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|v| serde_json::from_value::<ModelSpec>(v.get("model")?.clone()).ok())
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "--resume {}: {} has no readable model",
                    dir.display(),
                    config.display()
                )
            })?;
        anyhow::ensure!(
            model == ck.model,
            "--resume {}: {} holds the architecture {}, but the run's {} says {} \
             (a checkpoint from another run?)",
            dir.display(),
            path.display(),
            describe(&ck.model),
            config.display(),
            describe(&model)
        );
    }
    Ok(())
}

/// Completes the error of a run stopped by a lost GPU device or a failed
/// write with the checkpoint that survives it (every write is atomic, so the
/// last one written is intact), as a divergence error does.
fn with_kept_checkpoint(e: anyhow::Error, out: &Path) -> anyhow::Error {
    let lost = e.chain().any(|c| {
        matches!(
            c.downcast_ref::<shadergan::gpu::GpuError>(),
            Some(shadergan::gpu::GpuError::DeviceLost(_))
        )
    });
    let io = e.chain().any(|c| c.is::<std::io::Error>());
    if !lost && !io {
        return e;
    }
    anyhow::anyhow!("{e:#}; {}", checkpoint::kept_note(out))
}

/// `YYYYMMDD-HHMMSS` in UTC.
fn utc_timestamp() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}{month:02}{day:02}-{:02}{:02}{:02}",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

pub fn run(a: &TrainArgs) -> anyhow::Result<()> {
    let resume = match &a.resume {
        None => None,
        Some(dir) => Some(resume_from(dir, a.steps)?),
    };
    let (mut recipe, out, seed) = match &resume {
        Some((recipe, ck, dir)) => (recipe.clone(), dir.clone(), ck.seed),
        None => {
            let recipe = recipe_from_args(a)?;
            let out = run_folder(a.out.as_deref(), recipe.dataset_name()?)?;
            (recipe, out, a.seed)
        }
    };
    let name = recipe.dataset_name()?;
    let loaded = data::load(name, a.data.as_deref(), seed)?;
    if let Some(notice) = &loaded.notice {
        eprintln!("note: {notice}");
    }
    let dataset = loaded.dataset;
    shadergan::gan::mode_trace::check_dataset(a.eval_every, &dataset.kind)?;
    if let Some((_, ck, dir)) = &resume {
        check_resumed_architecture(&recipe, ck, dir, &dataset)?;
    }
    let rows = dataset.data.rows();
    anyhow::ensure!(
        recipe.batch * recipe.pack <= rows,
        "--batch {} is larger than the dataset ({rows} rows)",
        recipe.batch * recipe.pack
    );
    if let Some(e) = a.epochs {
        recipe.steps = ((e * rows as f64) / recipe.batch as f64).ceil().max(1.0) as u64;
    }
    let selected = a.device.select()?;
    let opts = LoopOptions {
        steps: recipe.steps,
        d_steps: recipe.d_steps,
        d_steps_from: recipe.d_steps_from,
        sample_every: a.sample_every.unwrap_or((recipe.steps / 10).max(1)),
        eval_every: a.eval_every,
        log_every: a.log_every.max(1),
        progress: !a.quiet,
        profile_steps: if a.profile { 20 } else { 0 },
        checkpoint_every: a.checkpoint_every,
        recipe_json: Some(serde_json::to_string(&recipe)?),
        resume: resume.map(|(_, ck, _)| ck),
    };
    eprintln!(
        "training on {} ({}), {} steps of batch {}, into {}",
        dataset.name.as_str(),
        dataset.source,
        recipe.steps,
        recipe.batch,
        out.display()
    );
    let gpu = selected.gpu;
    // Ctrl-C: finish the steps in flight, write the checkpoint, say how to resume.
    // A second Ctrl-C exits at once (every file is written atomically, so none is torn).
    let _ = ctrlc::set_handler(|| {
        if shadergan::gan::trainer::request_stop() {
            std::process::exit(130);
        }
    });
    let s = train_recipe(&recipe, &dataset, seed, gpu.clone(), &opts, &out)
        .map_err(|e| with_kept_checkpoint(e, &out))?;
    if s.interrupted {
        anyhow::bail!(Interrupted(format!(
            "interrupted at step {} of {}: checkpoint written; resume with `shadergan train --resume {} --steps {}`",
            s.steps,
            recipe.steps,
            out.display(),
            recipe.steps
        )));
    }
    println!(
        "trained {} steps in {:.1} s ({:.1} steps/s) on {}; D loss {:.3}, G loss {:.3}, D(x) {:.2}, D(G(z)) {:.2}; run folder {}",
        s.steps,
        s.seconds,
        s.steps as f64 / s.seconds.max(1e-9),
        s.backend,
        s.last.d_loss,
        s.last.g_loss,
        s.last.d_real,
        s.last.d_fake,
        s.out.display()
    );
    // The cheap protocols at the end of every run (Parzen only in `eval`).
    let ck = checkpoint::load(&out.join("checkpoint.safetensors"))?;
    let request = Request {
        dataset: name.as_str(),
        step: ck.step,
        noise_seed: 1,
        data_dir: a.data.as_deref(),
        with_parzen: false,
    };
    match evaluate(gpu.as_ref(), &ck.model, ck.sampling_generator(), &request) {
        Ok(report) => {
            write_atomic(
                &out.join("eval.json"),
                serde_json::to_string_pretty(&report)?.as_bytes(),
            )?;
            super::eval::print_report(&report);
        }
        Err(e) => eprintln!("note: no evaluation at the end of training: {e:#}"),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn timestamps_look_like_dates() {
        let t = super::utc_timestamp();
        assert_eq!(t.len(), 15);
        assert!(t.starts_with("20"));
        assert_eq!(&t[8..9], "-");
    }
}
