//! `shadergan train-classifier`: trains the MLP classifier behind the image
//! scores (Fréchet distance, classifier inception score) with our kernels.
//! The committed weights in `src/eval/classifiers/` were made with
//! `shadergan train-classifier --dataset mnist --data ../shared/data/mnist --out src/eval/classifiers/mnist.safetensors`
//! (and the same for fashion-mnist).

use std::path::PathBuf;

use clap::{Args, ValueEnum};
use shadergan::data;
use shadergan::eval::classifier::{self, Classifier, Labelled, TrainSettings};
use shadergan::io::atomic::write_atomic;
use shadergan::plan::AdamHyper;

use super::DeviceArgs;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ImageSet {
    Mnist,
    FashionMnist,
}

#[derive(Args, Clone, Debug)]
pub struct ClassifierArgs {
    #[arg(long, value_enum)]
    pub dataset: ImageSet,
    /// Folder with train-* and t10k-* images and labels (IDX, gzip or raw).
    #[arg(long, value_name = "DIR")]
    pub data: PathBuf,
    #[arg(long, default_value_t = 20.0)]
    pub epochs: f64,
    #[arg(long, default_value_t = 128)]
    pub batch: usize,
    #[arg(long, default_value_t = 1e-3)]
    pub lr: f32,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Where to write the weights (refused if it exists, unless --overwrite).
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    #[arg(long)]
    pub overwrite: bool,
    #[command(flatten)]
    pub device: DeviceArgs,
}

pub fn run(a: &ClassifierArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        a.overwrite || !a.out.exists(),
        "{} already exists; choose another --out or pass --overwrite",
        a.out.display()
    );
    anyhow::ensure!(
        a.epochs.is_finite() && a.epochs > 0.0,
        "--epochs must be positive"
    );
    anyhow::ensure!(a.lr.is_finite() && a.lr > 0.0, "--lr must be positive");
    let name = match a.dataset {
        ImageSet::Mnist => "mnist",
        ImageSet::FashionMnist => "fashion-mnist",
    };
    let (train, train_labels) = data::read_split(&a.data, "train")?;
    let (test, test_labels) = data::read_split(&a.data, "t10k")?;
    let dim = train.rows * train.cols;
    let steps = (a.epochs * train.count as f64 / a.batch as f64).ceil() as u64;
    let selected = a.device.select()?;
    let gpu = selected.gpu.clone();
    eprintln!(
        "training a {name} classifier: {steps} steps of batch {}",
        a.batch
    );
    let start = std::time::Instant::now();
    let params = classifier::train(
        selected.gpu,
        &Labelled {
            pixels: &train.pixels,
            labels: &train_labels,
            dim,
        },
        &TrainSettings {
            steps,
            batch: a.batch,
            adam: AdamHyper {
                lr: a.lr,
                beta1: 0.9,
                beta2: 0.999,
                ..AdamHyper::default()
            },
            seed: a.seed,
        },
        |step, loss| {
            if step % 2000 == 0 {
                eprintln!("  step {step}: loss {loss:.4}");
            }
        },
    )?;
    let mut c = Classifier {
        inputs: dim,
        params,
        dataset: name.into(),
        test_accuracy: 0.0,
    };
    c.test_accuracy = c.accuracy(
        gpu.as_ref(),
        &classifier::to_unit_range(&test.pixels),
        &test_labels,
    )?;
    write_atomic(&a.out, &c.to_bytes()?)?;
    println!(
        "{name} classifier: test accuracy {:.2}% after {steps} steps ({:.1} s); wrote {}",
        100.0 * c.test_accuracy,
        start.elapsed().as_secs_f64(),
        a.out.display()
    );
    Ok(())
}
