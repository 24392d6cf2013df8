//! `shadergan train`.

use std::path::{Path, PathBuf};

use clap::{Args, ValueEnum};
use shadergan::backend;
use shadergan::data::{self, DataKind, DatasetName};
use shadergan::gan::trainer::{LoopOptions, train};
use shadergan::gan::{GanConfig, ModelSpec};
use shadergan::plan::{Activation, AdamHyper};

use super::BackendArg;

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
    /// The training data.
    #[arg(long, value_enum, default_value_t = DatasetArg::FashionMnist)]
    pub dataset: DatasetArg,
    /// Folder holding train-images-idx3-ubyte.gz (MNIST format).
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// Passes over the data (a step is one D update and one G update on a batch).
    #[arg(long, conflicts_with = "steps")]
    pub epochs: Option<f64>,
    /// Training steps [default: 15000 for images, 4000 for 2-D points].
    #[arg(long)]
    pub steps: Option<u64>,
    #[arg(long, default_value_t = 64)]
    pub batch: usize,
    /// Adam learning rate of both networks.
    #[arg(long, default_value_t = 2e-4)]
    pub lr: f32,
    /// Adam β1.
    #[arg(long, default_value_t = 0.5)]
    pub beta1: f32,
    /// Adam β2.
    #[arg(long, default_value_t = 0.999)]
    pub beta2: f32,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    #[arg(long, value_enum, default_value_t = BackendArg::Auto)]
    pub backend: BackendArg,
    /// Use the GPU adapter whose name contains this text.
    #[arg(long, value_name = "NAME")]
    pub adapter: Option<String>,
    /// Run folder [default: runs/<dataset>-<time>]; must not already hold files.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Write a sample grid every N steps (0: only at the end) [default: steps/10].
    #[arg(long, value_name = "N")]
    pub sample_every: Option<u64>,
    /// Record losses every N steps.
    #[arg(long, value_name = "N", default_value_t = 10)]
    pub log_every: u64,
    /// Hidden layer sizes of both networks, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "128,128")]
    pub hidden: Vec<usize>,
    /// Nonlinearity of the hidden layers.
    #[arg(long, value_enum, default_value_t = ActivationArg::Relu)]
    pub activation: ActivationArg,
    /// Slope of leaky_relu for negative inputs.
    #[arg(long, default_value_t = 0.2)]
    pub leaky_slope: f32,
    /// Size of the generator's noise input.
    #[arg(long, default_value_t = 100)]
    pub z_dim: usize,
    /// D updates per G update.
    #[arg(long, default_value_t = 1)]
    pub d_steps: u32,
    /// Target of real samples in the D loss (0.9 = one-sided label smoothing).
    #[arg(long, default_value_t = 1.0)]
    pub real_label: f32,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
}

fn dataset_name(d: DatasetArg) -> DatasetName {
    match d {
        DatasetArg::FashionMnist => DatasetName::FashionMnist,
        DatasetArg::Mnist => DatasetName::Mnist,
        DatasetArg::Ring => DatasetName::Ring,
        DatasetArg::Grid => DatasetName::Grid,
    }
}

/// Refuses flags that cannot train before anything is loaded or written.
fn check_flags(a: &TrainArgs) -> anyhow::Result<()> {
    anyhow::ensure!(a.batch > 0, "--batch must be at least 1");
    for (flag, v) in [("--lr", a.lr), ("--beta1", a.beta1), ("--beta2", a.beta2)] {
        anyhow::ensure!(
            v.is_finite() && v >= 0.0,
            "{flag} must be a finite number ≥ 0 (got {v})"
        );
    }
    anyhow::ensure!(a.lr > 0.0, "--lr must be positive (got {})", a.lr);
    anyhow::ensure!(
        a.beta1 < 1.0 && a.beta2 < 1.0,
        "--beta1 and --beta2 must be below 1"
    );
    anyhow::ensure!(
        a.real_label.is_finite() && (0.0..=1.0).contains(&a.real_label),
        "--real-label must be in [0, 1] (got {})",
        a.real_label
    );
    if let Some(e) = a.epochs {
        anyhow::ensure!(
            e.is_finite() && e > 0.0,
            "--epochs must be positive (got {e})"
        );
    }
    anyhow::ensure!(a.steps != Some(0), "--steps must be at least 1");
    anyhow::ensure!(!a.hidden.is_empty(), "--hidden needs at least one size");
    anyhow::ensure!(
        a.hidden.iter().all(|&h| h > 0),
        "--hidden sizes must be at least 1 (got {:?})",
        a.hidden
    );
    anyhow::ensure!(a.z_dim > 0, "--z-dim must be at least 1");
    anyhow::ensure!(a.d_steps > 0, "--d-steps must be at least 1");
    Ok(())
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
        return Ok(out.to_path_buf());
    }
    let base = format!("runs/{}-{}", dataset.as_str(), utc_timestamp());
    let mut path = PathBuf::from(&base);
    let mut n = 2;
    while path.exists() {
        path = PathBuf::from(format!("{base}-{n}"));
        n += 1;
    }
    Ok(path)
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
    check_flags(a)?;
    let name = dataset_name(a.dataset);
    let out = run_folder(a.out.as_deref(), name)?;
    let loaded = data::load(name, a.data.as_deref(), a.seed)?;
    if let Some(notice) = &loaded.notice {
        eprintln!("note: {notice}");
    }
    let dataset = loaded.dataset;
    let rows = dataset.data.rows();
    anyhow::ensure!(
        a.batch <= rows,
        "--batch {} is larger than the dataset ({rows} rows)",
        a.batch
    );
    let is_points = matches!(dataset.kind, DataKind::Points(_));
    let steps = match (a.steps, a.epochs) {
        (Some(s), _) => s,
        (None, Some(e)) => ((e * rows as f64) / a.batch as f64).ceil().max(1.0) as u64,
        (None, None) if is_points => 4000,
        (None, None) => 15_000,
    };
    let hidden_act = match a.activation {
        ActivationArg::Relu => Activation::Relu,
        ActivationArg::LeakyRelu => Activation::LeakyRelu(a.leaky_slope),
    };
    let adam = AdamHyper {
        lr: a.lr,
        beta1: a.beta1,
        beta2: a.beta2,
        ..AdamHyper::default()
    };
    let cfg = GanConfig {
        model: ModelSpec {
            z_dim: a.z_dim,
            data_dim: dataset.data.cols(),
            hidden: a.hidden.clone(),
            hidden_act,
            output_act: if is_points {
                Activation::Identity
            } else {
                Activation::Tanh
            },
        },
        batch: a.batch,
        seed: a.seed,
        d_adam: adam,
        g_adam: adam,
        real_label: a.real_label,
        sample_rows: if is_points { 512 } else { 64 },
    };
    cfg.model.check()?;

    let selected = backend::select(a.backend.into(), a.adapter.as_deref())?;
    if let Some(notice) = &selected.notice {
        eprintln!("note: {notice}");
    }
    let opts = LoopOptions {
        steps,
        d_steps: a.d_steps,
        sample_every: a.sample_every.unwrap_or((steps / 10).max(1)),
        log_every: a.log_every.max(1),
        progress: !a.quiet,
    };
    eprintln!(
        "training on {} ({}), {steps} steps of batch {}, into {}",
        dataset.name.as_str(),
        dataset.source,
        a.batch,
        out.display()
    );
    let s = train(&cfg, &dataset, selected.gpu, &opts, &out)?;
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
