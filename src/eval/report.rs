//! Evaluating a generator: draws its samples and applies the protocol that
//! fits its data (mode coverage for 2-D mixtures; classifier scores and, for
//! MNIST, the Parzen log-likelihood for images).

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::classifier::{self, Classifier};
use super::{frechet, modes, parzen};
use crate::backend::Executor;
use crate::data::{self, Mixture};
use crate::gan::bn_stats::{BnStats, sampling_state};
use crate::gan::{Architecture, SettingError, build_sampler_plan, fixed_noise};
use crate::gpu::GpuContext;
use crate::plan::Slice;

/// Generated samples for the image protocols.
pub const IMAGE_SAMPLES: usize = 10_000;
/// Rows the generator draws per launch.
const SAMPLE_CHUNK: usize = 2500;

/// The generator ready to draw: its sampling plan built once on a backend,
/// then run over as many noise draws as asked.
pub struct Sampler {
    exec: Executor,
    z_slice: Slice,
    out: Slice,
    rows: usize,
    z_dim: usize,
    data_dim: usize,
}

impl Sampler {
    /// A sampler for draws of up to `max_rows` rows per launch (at most [`SAMPLE_CHUNK`]).
    pub fn new(
        gpu: Option<&GpuContext>,
        model: &Architecture,
        g_params: &[f32],
        max_rows: usize,
    ) -> anyhow::Result<Sampler> {
        let rows = SAMPLE_CHUNK.min(max_rows.max(1));
        let (plan, out) =
            build_sampler_plan(model, g_params.to_vec(), vec![0.0; rows * model.z_dim()])?;
        let z_slice = plan.find_buffer("z").expect("the sampler declares z");
        Ok(Sampler {
            exec: Executor::new(gpu.cloned(), plan, vec![])?,
            z_slice,
            out,
            rows,
            z_dim: model.z_dim(),
            data_dim: model.data_dim(),
        })
    }

    /// `n` samples drawn with noise from `seed` (one fixed-noise draw for
    /// all n rows, run through G in chunks).
    pub fn draw(&mut self, n: usize, seed: u64) -> anyhow::Result<Vec<f32>> {
        let z = fixed_noise(seed, n, self.z_dim);
        let mut samples = Vec::with_capacity(n * self.data_dim);
        for start in (0..n).step_by(self.rows) {
            let count = self.rows.min(n - start);
            let mut chunk = z[start * self.z_dim..(start + count) * self.z_dim].to_vec();
            chunk.resize(self.rows * self.z_dim, 0.0);
            self.exec.write(self.z_slice, &chunk)?;
            self.exec.run(&["sample"], None)?;
            samples.extend_from_slice(&self.exec.read(self.out)?[..count * self.data_dim]);
        }
        Ok(samples)
    }
}

/// `n` samples of the generator, drawn with noise from `seed`.
pub fn generate(
    gpu: Option<&GpuContext>,
    model: &Architecture,
    g_params: &[f32],
    n: usize,
    seed: u64,
) -> anyhow::Result<Vec<f32>> {
    Sampler::new(gpu, model, g_params, n)?.draw(n, seed)
}

/// Classifier-based scores of generated images against real ones.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClassifierScores {
    pub classifier_dataset: String,
    pub classifier_test_accuracy: f64,
    /// Fréchet distance between the classifier's features of generated and real test images.
    pub frechet_distance: f64,
    pub inception_score: f64,
    pub inception_score_std: f64,
    /// The floor: real test images against real training images (None without the training set).
    pub real_frechet_distance: Option<f64>,
    /// The inception score of the real test images.
    pub real_inception_score: f64,
}

/// FD and IS of `generated` (n × dim in [−1, 1]) against `real_test`, and the
/// real-vs-real floor when `real_train` is given.
pub fn classifier_scores(
    gpu: Option<&GpuContext>,
    classifier: &Classifier,
    generated: &[f32],
    real_test: &[f32],
    real_train: Option<&[f32]>,
) -> anyhow::Result<ClassifierScores> {
    let c = classifier::CLASSES;
    let gen_out = classifier.run(gpu, generated)?;
    let test_out = classifier.run(gpu, real_test)?;
    let d = gen_out.feature_dim();
    let fd = frechet::frechet_distance_of_features(
        &gen_out.features,
        gen_out.n,
        &test_out.features,
        test_out.n,
        d,
    );
    let (is, is_std) = frechet::inception_score(&gen_out.probs, gen_out.n, c, 10);
    let (real_is, _) = frechet::inception_score(&test_out.probs, test_out.n, c, 10);
    let real_fd = match real_train {
        Some(train) => {
            let train_out = classifier.run(gpu, train)?;
            Some(frechet::frechet_distance_of_features(
                &train_out.features,
                train_out.n,
                &test_out.features,
                test_out.n,
                d,
            ))
        }
        None => None,
    };
    Ok(ClassifierScores {
        classifier_dataset: classifier.dataset.clone(),
        classifier_test_accuracy: classifier.test_accuracy,
        frechet_distance: fd,
        inception_score: is,
        inception_score_std: is_std,
        real_frechet_distance: real_fd,
        real_inception_score: real_is,
    })
}

/// Everything `eval` reports for one generator.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Report {
    pub dataset: String,
    pub step: u64,
    pub modes: Option<modes::ModeScore>,
    pub classifier: Option<ClassifierScores>,
    pub parzen: Option<parzen::ParzenScore>,
    /// Protocols skipped, and why (naming the [`Request`] field that would
    /// run them: `data_dir`).
    pub skipped: Vec<String>,
    /// The BatchNorm statistics G sampled with (None: G has no BatchNorm).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bn_stats: Option<BnStats>,
}

/// Where the real images for the image protocols come from.
pub struct RealImages {
    /// Test images in [−1, 1] (10,000 × 784).
    pub test: Vec<f32>,
    /// The first 10,000 training images in [−1, 1], for the floor.
    pub train_head: Option<Vec<f32>>,
    /// MNIST train[50000:51000] in [0, 1], the Parzen validation set.
    pub parzen_validation: Option<Vec<f32>>,
}

/// Loads the real images of `dataset` from `data_dir` (or the embedded set).
pub fn real_images(dataset: &str, data_dir: Option<&Path>) -> anyhow::Result<RealImages> {
    let dir = data_dir
        .map(Path::to_path_buf)
        .or_else(|| (dataset == "fashion-mnist").then(|| data::SYSTEM_FASHION_MNIST.into()));
    let test = match (dataset, dir.as_deref()) {
        (_, Some(d)) if d.is_dir() => data::read_split(d, "t10k")?.0.pixels,
        ("fashion-mnist", _) => data::idx::parse_images(data::EMBEDDED_IMAGES, "embedded")?.pixels,
        _ => {
            return Err(SettingError {
                field: "data_dir",
                problem: format!(
                    "is needed to evaluate '{dataset}': the folder with its t10k and train files"
                ),
                mentions: &[],
            }
            .into());
        }
    };
    let train = match dir.as_deref() {
        Some(d) if d.is_dir() => Some(data::read_split(d, "train")?.0),
        _ => None,
    };
    let dim = 784;
    let train_head = train
        .as_ref()
        .map(|t| classifier::to_unit_range(&t.pixels[..10_000.min(t.count) * dim]));
    let parzen_validation = train.as_ref().filter(|t| t.count >= 51_000).map(|t| {
        t.pixels[50_000 * dim..51_000 * dim]
            .iter()
            .map(|&b| f32::from(b) / 255.0)
            .collect()
    });
    Ok(RealImages {
        test: classifier::to_unit_range(&test),
        train_head,
        parzen_validation,
    })
}

/// What to evaluate and how.
pub struct Request<'a> {
    pub dataset: &'a str,
    /// The checkpoint's training step, for the report.
    pub step: u64,
    /// Seed of the noise the samples are drawn from.
    pub noise_seed: u64,
    /// Folder with the dataset's MNIST-format files.
    pub data_dir: Option<&'a Path>,
    pub with_parzen: bool,
    /// The BatchNorm statistics a layer-list generator samples with.
    pub bn_stats: BnStats,
}

/// The number of values in one row of `dataset` (2 for the mixtures, 784
/// for the 28×28 image sets); `None` for a dataset without a protocol.
pub fn data_dim(dataset: &str) -> Option<usize> {
    match dataset {
        "ring" | "grid" => Some(2),
        "mnist" | "fashion-mnist" => Some(28 * 28),
        _ => None,
    }
}

/// Refuses a generator whose samples do not have `dataset`'s row size.
pub fn check_data_dim(model: &Architecture, dataset: &str) -> anyhow::Result<()> {
    if let Some(dim) = data_dim(dataset) {
        anyhow::ensure!(
            model.data_dim() == dim,
            "its generator makes {}-dimensional samples, but {dataset} rows have {dim} values",
            model.data_dim()
        );
    }
    Ok(())
}

/// The mode protocol on one draw of [`modes::SAMPLES`] samples, with noise
/// from `noise_seed`.
pub fn score_draw(
    sampler: &mut Sampler,
    mixture: &Mixture,
    noise_seed: u64,
) -> anyhow::Result<modes::ModeScore> {
    let samples = sampler.draw(modes::SAMPLES, noise_seed)?;
    Ok(modes::score_modes(&samples, &mixture.centers, mixture.std))
}

/// Runs the protocols for a generator trained on `req.dataset`.
pub fn evaluate(
    gpu: Option<&GpuContext>,
    model: &Architecture,
    g_params: &[f32],
    req: &Request,
) -> anyhow::Result<Report> {
    let (dataset, seed, data_dir, with_parzen) =
        (req.dataset, req.noise_seed, req.data_dir, req.with_parzen);
    let mut report = Report {
        dataset: dataset.into(),
        step: req.step,
        ..Report::default()
    };
    check_data_dim(model, dataset)?;
    let g_state = sampling_state(gpu, model, g_params, req.bn_stats)?;
    let g_params = g_state.as_slice();
    report.bn_stats = model.has_batch_norm().then_some(req.bn_stats);
    match dataset {
        "ring" | "grid" => {
            let m = Mixture::named(dataset).expect("ring and grid are mixtures");
            let mut sampler = Sampler::new(gpu, model, g_params, modes::SAMPLES)?;
            report.modes = Some(score_draw(&mut sampler, &m, seed)?);
        }
        "mnist" | "fashion-mnist" => {
            let real = real_images(dataset, data_dir)?;
            let generated = generate(gpu, model, g_params, IMAGE_SAMPLES, seed)?;
            let bytes = classifier::embedded(dataset).expect("classifiers for both image sets");
            let c = Classifier::from_bytes(bytes)?;
            report.classifier = Some(classifier_scores(
                gpu,
                &c,
                &generated,
                &real.test,
                real.train_head.as_deref(),
            )?);
            if real.train_head.is_none() {
                report
                    .skipped
                    .push("real-vs-real floor: no training set (give data_dir)".into());
            }
            match (with_parzen, dataset, &real.parzen_validation) {
                (true, "mnist", Some(val)) => {
                    let unit = |v: &[f32]| v.iter().map(|x| (x + 1.0) * 0.5).collect::<Vec<f32>>();
                    report.parzen = Some(parzen::score(
                        gpu,
                        &unit(&generated),
                        val,
                        &unit(&real.test),
                        model.data_dim(),
                    )?);
                }
                (true, "mnist", None) => report
                    .skipped
                    .push("Parzen: needs MNIST's 60k training set (data_dir)".into()),
                _ => {}
            }
        }
        other => anyhow::bail!("no evaluation protocol for dataset '{other}'"),
    }
    Ok(report)
}
