//! `shadergan train`.

use std::path::{Path, PathBuf};

use clap::{Args, ValueEnum};
use shadergan::data::{self, DatasetName};
use shadergan::eval::mode_trace;
use shadergan::eval::report::{Request, evaluate};
use shadergan::gan::Architecture;
use shadergan::gan::bn_stats::BnStats;
use shadergan::gan::recipe::Recipe;
use shadergan::gan::stop;
use shadergan::gan::trainer::{LoopOptions, train_recipe};
use shadergan::io::atomic::{remove_stale_temporaries, write_atomic};
use shadergan::io::checkpoint;
use shadergan::io::run_lock::RunLock;
use shadergan::plan::Activation;

use super::DeviceArgs;
use super::run_folder::check_creatable;

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
    /// Start from a preset (default, seed, ring, grid, mnist); flags given override it.
    /// Without one, Fashion-MNIST gets `default` and other datasets `seed`.
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
    /// Adam learning rate of both networks [default: the preset's; 5e-4 in `default`, 2e-4 in `seed`].
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
    /// Write a sample grid every N steps (0: only at the end) [default: steps/10;
    /// a resumed run keeps its own].
    #[arg(long, value_name = "N")]
    pub sample_every: Option<u64>,
    /// On the mixtures, score the mode coverage every N steps (eval's 2-D protocol)
    /// into modes.csv and modes.png [default: 0, only at the end; a resumed run keeps its own].
    #[arg(long, value_name = "N")]
    pub eval_every: Option<u64>,
    /// Record losses every N steps [default: 10; a resumed run keeps its own].
    #[arg(long, value_name = "N")]
    pub log_every: Option<u64>,
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
    /// Target of real samples in the D loss (0.9 = one-sided label smoothing) [default: the
    /// preset's; 0.9 in `default`, 1 in `seed`].
    #[arg(long)]
    pub real_label: Option<f32>,
    /// PacGAN packing: D judges this many samples at once [default: 1].
    #[arg(long)]
    pub pack: Option<usize>,
    /// Decay both learning rates linearly to zero over the run.
    #[arg(long)]
    pub lr_decay: bool,
    /// Dropout rate on D's hidden layers while training [default: the preset's; 0.3 in
    /// `default`, 0 in `seed`].
    #[arg(long, value_name = "P")]
    pub d_dropout: Option<f32>,
    /// Keep a moving average of G's weights with this decay (e.g. 0.999) and
    /// sample, evaluate and checkpoint it beside G [default: the preset's; 0.999 in
    /// `default`, 0 (none) in `seed`].
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
    /// Also write the checkpoint every N steps, so a crash loses at most N steps
    /// [default: 0, only at the end; a resumed run keeps its own].
    #[arg(long, value_name = "N")]
    pub checkpoint_every: Option<u64>,
    /// After training, time every kernel of a step (timestamp queries on the GPU,
    /// the host clock on the CPU backend) over 20 extra steps, and print each one's
    /// share; also written to profile.txt. The checkpoint is saved before them.
    #[arg(long)]
    pub profile: bool,
    /// Start from a recipe file (JSON, as --dump-recipe prints it; examples/recipes/
    /// holds some); flags given override it.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["preset", "resume"])]
    pub recipe: Option<PathBuf>,
    /// Print the recipe (the preset or --recipe, with the flags given applied) as JSON
    /// and exit, training and writing nothing; --recipe reads it back. Give --steps,
    /// not --epochs (which needs the dataset's size).
    #[arg(long, conflicts_with_all = ["resume", "epochs"])]
    pub dump_recipe: bool,
}

pub fn dataset_name(d: DatasetArg) -> DatasetName {
    match d {
        DatasetArg::FashionMnist => DatasetName::FashionMnist,
        DatasetArg::Mnist => DatasetName::Mnist,
        DatasetArg::Ring => DatasetName::Ring,
        DatasetArg::Grid => DatasetName::Grid,
    }
}

/// The recipe the flags ask for: the preset or the recipe file (or, with
/// neither, `Recipe::without_preset` for the dataset), with every flag given applied on top.
/// `--epochs` is applied once the dataset's size is known.
pub fn recipe_from_args(a: &TrainArgs) -> anyhow::Result<Recipe> {
    let mut r = match super::settings::named(a.preset.as_deref(), a.recipe.as_deref())? {
        Some(r) => r,
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
    r.check().map_err(super::settings::in_flags)?;
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

/// A run stopped by a signal after writing its checkpoint (exit status 128 + signal).
#[derive(Debug)]
pub struct Interrupted {
    pub signal: i32,
    pub message: String,
}

impl std::fmt::Display for Interrupted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Interrupted {}

/// The settings a resumed run keeps unless they are given again: not
/// training hyper-parameters, but what is written and how often (crash
/// protection among them). Read from the run folder's `config.json`.
#[derive(Clone, Copy, Debug, Default, serde::Deserialize)]
struct KeptSettings {
    sample_every: Option<u64>,
    log_every: Option<u64>,
    checkpoint_every: Option<u64>,
    eval_every: Option<u64>,
}

/// A run to resume: its recipe (with the new total of steps), checkpoint,
/// folder, the lock held on it, and the settings it keeps.
struct Resumed {
    recipe: Recipe,
    ck: checkpoint::Checkpoint,
    dir: PathBuf,
    _lock: RunLock,
    kept: KeptSettings,
    /// The run folder's `config.json`, if readable.
    config: Option<serde_json::Value>,
}

/// `config.json` of a run folder as JSON, if it is there: `Null` when it is
/// not JSON, so the checks that need its fields refuse it by name.
fn read_config(dir: &Path) -> Option<serde_json::Value> {
    let text = std::fs::read_to_string(dir.join("config.json")).ok()?;
    Some(serde_json::from_str(&text).unwrap_or(serde_json::Value::Null))
}

/// Locks the run in `dir` (one writer per folder), removes what killed
/// writers left there, and reads what resuming needs; `steps` is the new total.
fn resume_from(dir: &Path, steps: Option<u64>) -> anyhow::Result<Resumed> {
    anyhow::ensure!(
        dir.is_dir(),
        "--resume {}: no such run folder",
        dir.display()
    );
    let lock = RunLock::acquire(dir)?;
    remove_stale_temporaries(dir, &["samples"])?;
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
    check_update_counters(&recipe, &ck, &path)?;
    let config = read_config(dir);
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
    let kept = config
        .clone()
        .and_then(|c| serde_json::from_value(c).ok())
        .unwrap_or_default();
    Ok(Resumed {
        recipe,
        ck,
        dir: dir.to_path_buf(),
        _lock: lock,
        kept,
        config,
    })
}

/// Refuses a checkpoint whose update counters (Adam's t, the random
/// streams' step) are not the ones its step count implies: one G update a
/// step, and the recipe's D updates.
fn check_update_counters(
    recipe: &Recipe,
    ck: &checkpoint::Checkpoint,
    path: &Path,
) -> anyhow::Result<()> {
    let Some(t) = &ck.training else {
        return Ok(());
    };
    let done = Recipe {
        steps: ck.step,
        ..recipe.clone()
    };
    // The device counters are u32 words: compare modulo 2^32.
    let (g, d) = (ck.step as u32, done.d_updates() as u32);
    anyhow::ensure!(
        t.generator_updates == g && t.discriminator_updates == d,
        "{}: metadata 'updates' says {},{} (G, D) but step {} of its recipe means {g},{d}; \
         the checkpoint is corrupt",
        path.display(),
        t.generator_updates,
        t.discriminator_updates,
        ck.step
    );
    Ok(())
}

/// Refuses a checkpoint that another run wrote: its run id (and seed) must be
/// the ones in the run folder's `config.json`.
fn check_identity(
    ck: &checkpoint::Checkpoint,
    config: Option<&serde_json::Value>,
    dir: &Path,
) -> anyhow::Result<()> {
    let Some(config) = config else {
        return Ok(());
    };
    let path = dir.join("checkpoint.safetensors");
    let config_path = dir.join("config.json");
    let ours = config.get("run_id").and_then(|v| v.as_str());
    let theirs = ck.training.as_ref().and_then(|t| t.run_id.as_deref());
    anyhow::ensure!(
        ours == theirs,
        "--resume {}: {} was written by run {}, but {} is run {} (a checkpoint from another run?)",
        dir.display(),
        path.display(),
        theirs.unwrap_or("(no id)"),
        config_path.display(),
        ours.unwrap_or("(no id)")
    );
    let seed = config.get("seed").and_then(|v| v.as_u64());
    anyhow::ensure!(
        seed.is_none_or(|s| s == ck.seed),
        "--resume {}: {} has seed {}, but {} says seed {} (a checkpoint from another run?)",
        dir.display(),
        path.display(),
        ck.seed,
        config_path.display(),
        seed.unwrap_or_default()
    );
    Ok(())
}

/// `path` as a shell word: as it is when it is plain, else single-quoted.
fn shell_word(path: &Path) -> String {
    let text = path.display().to_string();
    let plain = !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-./+:=,@%".contains(c));
    if plain {
        text
    } else {
        format!("'{}'", text.replace('\'', "'\\''"))
    }
}

/// Names the flags behind a run that does not fit in memory (rows of the
/// data are `data_dim` values wide).
fn with_flags(e: anyhow::Error, resumed: bool, layers: bool, data_dim: usize) -> anyhow::Error {
    use shadergan::gan::footprint::{FootprintError, Part};
    let Some(fe) = e.downcast_ref::<FootprintError>() else {
        return e;
    };
    let flags = match fe {
        _ if resumed => "the resumed run's recipe (in its checkpoint)".to_string(),
        FootprintError::TooLarge { part, .. } if layers => match part {
            Part::Parameters => "the recipe's layer lists".into(),
            Part::Activations => "--batch and the recipe's layer lists".into(),
            Part::Dataset => "--data".into(),
        },
        FootprintError::TooLarge { part, .. } => match part {
            Part::Parameters => {
                format!("--hidden and --z-dim, over data rows of {data_dim} values")
            }
            Part::Activations => "--batch, --pack, --hidden and --z-dim".into(),
            Part::Dataset => "--data".into(),
        },
        FootprintError::TooManyDSteps { .. } => "--d-steps".into(),
        FootprintError::Overflow => "--hidden and --z-dim".into(),
    };
    anyhow::anyhow!("{e}; set by {flags}")
}

/// Refuses to resume a checkpoint whose architecture is not the run's: not
/// the one its own recipe builds on `dataset`, or not the one in the run
/// folder's `config.json`, `config` (a checkpoint copied in from another run).
/// `; generator layer i is … against …` when both are layer lists, else nothing.
fn layer_detail(ours: &Architecture, theirs: &Architecture) -> String {
    match (ours, theirs) {
        (Architecture::Layers(_), Architecture::Layers(_)) => {
            format!("; {}", ours.difference(theirs))
        }
        _ => String::new(),
    }
}

fn check_resumed_architecture(
    recipe: &Recipe,
    ck: &checkpoint::Checkpoint,
    dir: &Path,
    config: Option<&serde_json::Value>,
    dataset: &data::Dataset,
) -> anyhow::Result<()> {
    let path = dir.join("checkpoint.safetensors");
    let built = recipe.architecture(&dataset.kind, dataset.data.cols())?;
    anyhow::ensure!(
        built == ck.model,
        "--resume {}: {} holds the architecture {}, but its recipe builds {}{}",
        dir.display(),
        path.display(),
        ck.model.describe(),
        built.describe(),
        layer_detail(&ck.model, &built)
    );
    if let Some(run_config) = config {
        let config = dir.join("config.json");
        let model = run_config
            .get("model")
            .and_then(|m| serde_json::from_value::<Architecture>(m.clone()).ok())
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "--resume {}: {} has no readable model",
                    dir.display(),
                    config.display()
                )
            })?;
        anyhow::ensure!(
            model == ck.model,
            "--resume {}: {} holds the architecture {}, but the run's {} says {}{} \
             (a checkpoint from another run?)",
            dir.display(),
            path.display(),
            ck.model.describe(),
            config.display(),
            model.describe(),
            layer_detail(&ck.model, &model)
        );
    }
    Ok(())
}

/// Completes the error of a run stopped by a lost GPU device or a failed
/// write with the checkpoint that survives it (every write is atomic, so the
/// last one written is intact), as a divergence error does; the note names
/// flags (a divergence error's own note, from the library, names fields).
fn with_kept_checkpoint(e: anyhow::Error, out: &Path) -> anyhow::Error {
    let lost = e.chain().any(|c| {
        matches!(
            c.downcast_ref::<shadergan::gpu::GpuError>(),
            Some(shadergan::gpu::GpuError::DeviceLost(_))
        )
    });
    let io = e.chain().any(|c| c.is::<std::io::Error>());
    let note = checkpoint::kept_note(out);
    let said = super::settings::note_in_flags(&note, &["checkpoint_every"]);
    if lost || io {
        return anyhow::anyhow!("{e:#}; {said}");
    }
    match format!("{e:#}").strip_suffix(&note) {
        Some(head) if said != note => anyhow::anyhow!("{head}{said}"),
        _ => e,
    }
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
    if a.dump_recipe {
        return super::settings::dump(&recipe_from_args(a)?);
    }
    super::signals::install()?;
    anyhow::ensure!(a.log_every != Some(0), "--log-every must be at least 1");
    let resume = match &a.resume {
        None => None,
        Some(dir) => Some(resume_from(dir, a.steps)?),
    };
    let (mut recipe, out, seed) = match &resume {
        Some(r) => (r.recipe.clone(), r.dir.clone(), r.ck.seed),
        None => {
            let recipe = recipe_from_args(a)?;
            let out = run_folder(a.out.as_deref(), recipe.dataset_name()?)?;
            (recipe, out, a.seed)
        }
    };
    let kept = resume.as_ref().map(|r| r.kept).unwrap_or_default();
    let eval_every = a.eval_every.or(kept.eval_every).unwrap_or(0);
    let name = recipe.dataset_name()?;
    let loaded =
        data::load(name, a.data.as_deref(), seed).map_err(super::settings::any_in_flags)?;
    if let Some(notice) = &loaded.notice {
        eprintln!(
            "note: {}",
            super::settings::note_in_flags(notice, &["data_dir"])
        );
    }
    let dataset = loaded.dataset;
    let resume_step = resume.as_ref().map(|r| r.ck.step);
    super::settings::check_eval_every(eval_every, &dataset.kind)?;
    let observer = mode_trace::observer(eval_every, &dataset, &out, resume_step)?;
    if let Some(r) = &resume {
        check_resumed_architecture(&recipe, &r.ck, &r.dir, r.config.as_ref(), &dataset)?;
        check_identity(&r.ck, r.config.as_ref(), &r.dir)?;
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
        sample_every: a
            .sample_every
            .or(kept.sample_every)
            .unwrap_or((recipe.steps / 10).max(1)),
        eval_every,
        log_every: a.log_every.or(kept.log_every).unwrap_or(10),
        observer,
        progress: !a.quiet,
        profile_steps: if a.profile { 20 } else { 0 },
        checkpoint_every: a.checkpoint_every.or(kept.checkpoint_every).unwrap_or(0),
        recipe_json: Some(serde_json::to_string(&recipe)?),
        resume: resume.as_ref().map(|r| r.ck.clone()),
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
    let s = train_recipe(&recipe, &dataset, seed, gpu.clone(), &opts, &out).map_err(|e| {
        with_kept_checkpoint(
            with_flags(
                e,
                resume.is_some(),
                recipe.layers.is_some(),
                dataset.data.cols(),
            ),
            &out,
        )
    })?;
    let resume_command = format!(
        "shadergan train --resume {} --steps {}",
        shell_word(&out),
        recipe.steps
    );
    if let Some(signal) = stop::requested() {
        let signal_name = super::signals::name(signal);
        let message = if s.interrupted {
            format!(
                "stopped by {signal_name} at step {} of {}: checkpoint written; resume with `{resume_command}`",
                s.steps, recipe.steps
            )
        } else {
            format!(
                "stopped by {signal_name} after the last step ({}): checkpoint written, final scores skipped",
                s.steps
            )
        };
        anyhow::bail!(Interrupted { signal, message });
    }
    // A resumed run's rate counts the steps this process ran.
    let ran = s.steps - s.first_step;
    let which = match s.first_step {
        0 => format!("{ran} steps"),
        from => format!("steps {}–{} ({ran} steps)", from + 1, s.steps),
    };
    println!(
        "trained {which} in {:.1} s ({:.1} steps/s) on {}; D loss {:.3}, G loss {:.3}, D(x) {:.2}, D(G(z)) {:.2}; run folder {}",
        s.seconds,
        ran as f64 / s.seconds.max(1e-9),
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
        bn_stats: BnStats::default(),
    };
    match evaluate(gpu.as_ref(), &ck.model, ck.sampling_generator(), &request) {
        Ok(report) => {
            write_atomic(
                &out.join("eval.json"),
                serde_json::to_string_pretty(&report)?.as_bytes(),
            )?;
            super::report::print_report(&report);
        }
        Err(e) => eprintln!(
            "note: no evaluation at the end of training: {:#}",
            super::settings::any_in_flags(e)
        ),
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
