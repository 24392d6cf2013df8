//! The classifier behind the image scores: an MLP trained with our own
//! kernels (softmax cross-entropy, Adam), whose penultimate features give
//! the Fréchet distance and whose class probabilities give the classifier
//! "inception score".
//!
//! `784 → 256 → 256 → 10`, ReLU, inputs in [−1, 1] exactly as the GAN sees
//! images. Trained weights are committed under `src/eval/classifiers/` and
//! embedded, so scores compare across runs and machines; rebuild them with
//! `shadergan train-classifier --dataset mnist --data DIR --out FILE`.

use std::collections::HashMap;

use anyhow::Context;
use safetensors::SafeTensors;

use crate::backend::Executor;
use crate::gpu::GpuContext;
use crate::io::checkpoint;
use crate::nn::{BackwardTargets, Mlp, NetworkBuffers, Workspace, backward, forward};
use crate::plan::{Activation, AdamHyper, Elem, Init, Op, Plan, RandomSource, RowFormat};

pub const FORMAT: &str = "shadergan-classifier-1";
pub const HIDDEN: [usize; 2] = [256, 256];
pub const CLASSES: usize = 10;
/// Rows per inference launch (bounded so buffers fit llvmpipe's 128 MiB bindings).
const CHUNK: usize = 2000;

/// The committed classifiers, by dataset name.
pub fn embedded(dataset: &str) -> Option<&'static [u8]> {
    match dataset {
        "mnist" => Some(include_bytes!("classifiers/mnist.safetensors")),
        "fashion-mnist" => Some(include_bytes!("classifiers/fashion-mnist.safetensors")),
        _ => None,
    }
}

/// The classifier network for `inputs`-pixel images.
pub fn network(inputs: usize) -> Mlp {
    Mlp::new(
        inputs,
        &HIDDEN,
        CLASSES,
        Activation::Relu,
        Activation::Identity,
    )
}

/// Labelled 8-bit images.
pub struct Labelled<'a> {
    pub pixels: &'a [u8],
    pub labels: &'a [u8],
    pub dim: usize,
}

/// Training settings.
#[derive(Clone, Debug)]
pub struct TrainSettings {
    pub steps: u64,
    pub batch: usize,
    pub adam: AdamHyper,
    pub seed: u64,
}

/// Trains a fresh classifier; returns its flat parameters.
pub fn train(
    gpu: Option<GpuContext>,
    data: &Labelled,
    s: &TrainSettings,
    mut progress: impl FnMut(u64, f32),
) -> anyhow::Result<Vec<f32>> {
    let rows = data.labels.len();
    anyhow::ensure!(
        rows * data.dim == data.pixels.len(),
        "images and labels disagree"
    );
    anyhow::ensure!(
        s.batch > 0 && s.batch <= rows,
        "batch must be in 1..={rows}"
    );
    let mlp = network(data.dim);
    let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(s.seed);
    let mut plan = Plan::default();
    let net = NetworkBuffers::declare(&mut plan, "C", &mlp, mlp.init_params(&mut rng));
    let ws = Workspace::declare(&mut plan, "C", &mlp, s.batch);
    let words = crate::cpu::kernels::pack_bytes(data.pixels);
    let images = plan.buffer("images", Elem::U32, words.len(), Init::U32(words));
    let labels: Vec<f32> = data.labels.iter().map(|&l| f32::from(l)).collect();
    let labels = plan.buffer("labels", Elem::F32, rows, Init::F32(labels));
    let idx = plan.buffer("idx", Elem::U32, s.batch, Init::Zeros);
    let x = plan.f32_buffer("x", s.batch * data.dim);
    let y = plan.f32_buffer("y", s.batch);
    let loss = plan.f32_buffer("loss", s.batch);
    let dlogits = plan.f32_buffer("dlogits", s.batch * CLASSES);
    let mean_loss = plan.f32_buffer("mean_loss", 1);
    let logits = ws.output(&mlp, mlp.layers.len() - 1, s.batch);
    let mut ops = vec![
        Op::RandomIndex {
            out: idx,
            bound: u32::try_from(rows)?,
            source: RandomSource {
                seed: s.seed,
                stream: 10,
                counter: net.step,
            },
        },
        Op::GatherRows {
            src: images,
            format: RowFormat::U8 {
                center: 127.5,
                scale: 2.0 / 255.0,
            },
            indices: idx,
            dst: x,
            cols: data.dim,
        },
        Op::GatherRows {
            src: labels,
            format: RowFormat::F32,
            indices: idx,
            dst: y,
            cols: 1,
        },
    ];
    ops.extend(forward(&net, &ws, x, s.batch, None));
    ops.push(Op::SoftmaxCrossEntropy {
        logits,
        labels: y,
        loss,
        grad: dlogits,
        classes: CLASSES,
        grad_scale: 1.0 / s.batch as f32,
    });
    ops.push(Op::Mean {
        x: loss,
        out: mean_loss,
        scale: 1.0,
    });
    ops.extend(backward(
        &net,
        &ws,
        x,
        logits,
        dlogits,
        s.batch,
        BackwardTargets {
            weight_grads: true,
            input_grad: None,
            input_act: None,
        },
    ));
    ops.extend(net.adam_step(s.adam));
    plan.add_phase("train_step", ops);
    let mut exec = Executor::new(gpu, plan, vec![mean_loss])?;
    let chunk = 100u64;
    let mut step = 0;
    while step < s.steps {
        let n = chunk.min(s.steps - step);
        let phases = vec!["train_step"; n as usize];
        exec.run(&phases, Some(step + n))?;
        step += n;
        for (tag, v) in exec.reports(false)? {
            anyhow::ensure!(
                v[0].is_finite(),
                "classifier loss is not finite at step {tag}"
            );
            progress(tag, v[0]);
        }
    }
    for (tag, v) in exec.reports(true)? {
        progress(tag, v[0]);
    }
    exec.read(net.params)
}

/// A trained classifier.
#[derive(Clone, Debug, PartialEq)]
pub struct Classifier {
    pub inputs: usize,
    pub params: Vec<f32>,
    pub dataset: String,
    pub test_accuracy: f64,
}

/// What the classifier says about a set of images.
pub struct Outputs {
    /// Penultimate activations, n × 256.
    pub features: Vec<f32>,
    /// Class probabilities, n × 10.
    pub probs: Vec<f32>,
    pub n: usize,
}

impl Outputs {
    pub fn feature_dim(&self) -> usize {
        HIDDEN[HIDDEN.len() - 1]
    }

    /// The most likely class of each row.
    pub fn predictions(&self) -> Vec<usize> {
        self.probs
            .chunks_exact(CLASSES)
            .map(|p| {
                p.iter()
                    .enumerate()
                    .fold((0, f32::MIN), |a, (i, &v)| if v > a.1 { (i, v) } else { a })
                    .0
            })
            .collect()
    }
}

impl Classifier {
    /// Runs the classifier over `images` (n × inputs, values in [−1, 1]).
    pub fn run(&self, gpu: Option<&GpuContext>, images: &[f32]) -> anyhow::Result<Outputs> {
        let n = images.len() / self.inputs;
        let mlp = network(self.inputs);
        let rows = CHUNK.min(n.max(1));
        let mut plan = Plan::default();
        let net = NetworkBuffers::declare(&mut plan, "C", &mlp, self.params.clone());
        let ws = Workspace::declare(&mut plan, "C", &mlp, rows);
        let x = plan.f32_buffer("x", rows * self.inputs);
        let ops = forward(&net, &ws, x, rows, None);
        plan.add_phase("infer", ops);
        let mut exec = Executor::new(gpu.cloned(), plan, vec![])?;
        let feature_layer = mlp.layers.len() - 2;
        let dim = HIDDEN[HIDDEN.len() - 1];
        let mut features = Vec::with_capacity(n * dim);
        let mut probs = Vec::with_capacity(n * CLASSES);
        for start in (0..n).step_by(rows) {
            let count = rows.min(n - start);
            let mut chunk = images[start * self.inputs..(start + count) * self.inputs].to_vec();
            chunk.resize(rows * self.inputs, 0.0);
            exec.write(x, &chunk)?;
            exec.run(&["infer"], None)?;
            let f = exec.read(ws.output(&mlp, feature_layer, rows))?;
            features.extend_from_slice(&f[..count * dim]);
            let logits = exec.read(ws.output(&mlp, mlp.layers.len() - 1, rows))?;
            for z in logits.chunks_exact(CLASSES).take(count) {
                let m = z.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                let e: Vec<f32> = z.iter().map(|v| (v - m).exp()).collect();
                let total: f32 = e.iter().sum();
                probs.extend(e.iter().map(|v| v / total));
            }
        }
        Ok(Outputs { features, probs, n })
    }

    /// Fraction of `labels` predicted correctly.
    pub fn accuracy(
        &self,
        gpu: Option<&GpuContext>,
        images: &[f32],
        labels: &[u8],
    ) -> anyhow::Result<f64> {
        let out = self.run(gpu, images)?;
        let correct = out
            .predictions()
            .iter()
            .zip(labels)
            .filter(|(p, l)| **p == usize::from(**l))
            .count();
        Ok(correct as f64 / labels.len().max(1) as f64)
    }

    /// Safetensors bytes: tensors named as an `nn.Sequential` (`0.weight`, ...).
    pub fn to_bytes(&self) -> anyhow::Result<Vec<u8>> {
        let meta = HashMap::from([
            ("format".to_string(), FORMAT.to_string()),
            ("dataset".to_string(), self.dataset.clone()),
            ("inputs".to_string(), self.inputs.to_string()),
            (
                "test_accuracy".to_string(),
                format!("{:.4}", self.test_accuracy),
            ),
        ]);
        checkpoint::networks_to_bytes(&[("", &network(self.inputs), &self.params)], meta)
    }

    pub fn from_bytes(bytes: &[u8]) -> anyhow::Result<Classifier> {
        let (_, header) = SafeTensors::read_metadata(bytes)
            .map_err(|e| anyhow::anyhow!("not a safetensors file ({e})"))?;
        let meta = header.metadata().clone().unwrap_or_default();
        anyhow::ensure!(
            meta.get("format").map(String::as_str) == Some(FORMAT),
            "not a shadergan classifier"
        );
        let inputs: usize = meta.get("inputs").context("no 'inputs'")?.parse()?;
        let tensors = SafeTensors::deserialize(bytes).map_err(|e| anyhow::anyhow!("{e}"))?;
        let params = checkpoint::read_network(&tensors, "", &network(inputs), &mut Vec::new())?;
        Ok(Classifier {
            inputs,
            params,
            dataset: meta.get("dataset").cloned().unwrap_or_default(),
            test_accuracy: meta
                .get("test_accuracy")
                .and_then(|a| a.parse().ok())
                .unwrap_or(0.0),
        })
    }
}

/// 8-bit images to the [−1, 1] floats the networks see.
pub fn to_unit_range(pixels: &[u8]) -> Vec<f32> {
    pixels
        .iter()
        .map(|&b| (f32::from(b) - 127.5) * (2.0 / 255.0))
        .collect()
}
