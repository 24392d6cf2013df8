//! One GAN training step as a plan with two phases.
//!
//! `d_step` (the discriminator update), on a batch of B real and B fake rows
//! stacked into one 2B-row D input:
//! ```text
//!   idx  ~ U{0..N}            (random_index)     real = data[idx]   (gather_rows)
//!   z    ~ N(0, I)            (random_normal)    fake = G(z)        (G forward, into rows B..2B)
//!   s    = D([real; fake])    (D forward)
//!   L_D  = mean_real BCE(s, t_real) + mean_fake BCE(s, 0)  (bce_with_logits, grad scale 1/B)
//!   D   ← Adam(D, ∂L_D/∂D)    (D backward with weight gradients, adam)
//! ```
//! `g_step` (the generator update, non-saturating loss):
//! ```text
//!   z ~ N(0, I);  fake = G(z);  s = D(fake)
//!   L_G = mean BCE(s, 1)                      ∂L_G/∂fake by D backward (input gradient only)
//!   G  ← Adam(G, ∂L_G/∂G)                     (G backward from ∂L_G/∂fake)
//! ```
//! Random numbers come from Philox streams keyed by the seed and advanced by
//! each network's step counter on the device, so a step needs no upload.
//! Monitoring scalars land in the 4-float `stats` buffer:
//! `[L_D, L_G, mean D(x), mean D(G(z))]`.

use rand::SeedableRng;

use crate::nn::{BackwardTargets, Mlp, NetworkBuffers, Workspace, backward, forward};
use crate::plan::{Activation, AdamHyper, Elem, Init, Op, Plan, RandomSource, RowFormat, Slice};

/// Index of each monitoring scalar in the `stats` buffer.
pub const STAT_D_LOSS: usize = 0;
pub const STAT_G_LOSS: usize = 1;
pub const STAT_D_REAL: usize = 2;
pub const STAT_D_FAKE: usize = 3;

/// Philox stream ids (with the network's step counter as the other counter word).
const STREAM_D_INDEX: u32 = 0;
const STREAM_D_NOISE: u32 = 1;
const STREAM_G_NOISE: u32 = 2;

/// Settings of the two networks and their training.
#[derive(Clone, Debug, PartialEq)]
pub struct GanConfig {
    pub z_dim: usize,
    pub hidden: Vec<usize>,
    pub hidden_act: Activation,
    /// The generator's output nonlinearity: tanh for images in [−1, 1].
    pub output_act: Activation,
    pub batch: usize,
    pub seed: u64,
    pub d_adam: AdamHyper,
    pub g_adam: AdamHyper,
    /// Target for real rows in the D loss (1.0, or 0.9 for one-sided smoothing).
    pub real_label: f32,
}

impl Default for GanConfig {
    /// The seed tutorial's model: z 100, hidden 128-128 ReLU, tanh output, Adam 2e-4 / 0.5.
    fn default() -> Self {
        GanConfig {
            z_dim: 100,
            hidden: vec![128, 128],
            hidden_act: Activation::Relu,
            output_act: Activation::Tanh,
            batch: 64,
            seed: 0,
            d_adam: AdamHyper::default(),
            g_adam: AdamHyper::default(),
            real_label: 1.0,
        }
    }
}

/// Training rows, uploaded to the device once.
#[derive(Clone, Debug, PartialEq)]
pub enum TrainingData {
    /// Rows of f32 (2-D mixtures, already-scaled data).
    F32 {
        rows: usize,
        cols: usize,
        values: Vec<f32>,
    },
    /// Rows of bytes (8-bit images), mapped to [−1, 1] by the gather kernel.
    U8 {
        rows: usize,
        cols: usize,
        bytes: Vec<u8>,
    },
}

impl TrainingData {
    pub fn rows(&self) -> usize {
        match self {
            TrainingData::F32 { rows, .. } | TrainingData::U8 { rows, .. } => *rows,
        }
    }

    pub fn cols(&self) -> usize {
        match self {
            TrainingData::F32 { cols, .. } | TrainingData::U8 { cols, .. } => *cols,
        }
    }
}

/// A GAN step plan and the handles a trainer needs.
#[derive(Clone, Debug)]
pub struct GanPlan {
    pub plan: Plan,
    pub generator: NetworkBuffers,
    pub discriminator: NetworkBuffers,
    /// `[L_D, L_G, mean D(x), mean D(G(z))]`, refreshed by the phases.
    pub stats: Slice,
    /// The D input, `[real; fake]`, 2B rows.
    pub d_input: Slice,
}

/// Builds the `d_step` and `g_step` phases for `cfg` over `data`.
pub fn build_gan_plan(cfg: &GanConfig, data: &TrainingData) -> anyhow::Result<GanPlan> {
    let b = cfg.batch;
    let dim = data.cols();
    anyhow::ensure!(b > 0, "batch size must be at least 1");
    anyhow::ensure!(data.rows() > 0 && dim > 0, "the training data is empty");
    anyhow::ensure!(
        cfg.hidden.iter().all(|&h| h > 0),
        "hidden layer sizes must be at least 1"
    );
    anyhow::ensure!(cfg.z_dim > 0, "z dimension must be at least 1");
    let bound = u32::try_from(data.rows())
        .map_err(|_| anyhow::anyhow!("{} training rows is more than 2^32", data.rows()))?;

    let g_mlp = Mlp::new(cfg.z_dim, &cfg.hidden, dim, cfg.hidden_act, cfg.output_act);
    let d_mlp = Mlp::new(dim, &cfg.hidden, 1, cfg.hidden_act, Activation::Identity);
    let mut rng = rand::rngs::StdRng::seed_from_u64(cfg.seed);
    let g_init = g_mlp.init_params(&mut rng);
    let d_init = d_mlp.init_params(&mut rng);

    let mut plan = Plan::default();
    let generator = NetworkBuffers::declare(&mut plan, "G", &g_mlp, g_init);
    let discriminator = NetworkBuffers::declare(&mut plan, "D", &d_mlp, d_init);
    let g_ws = Workspace::declare(&mut plan, "G", &g_mlp, b);
    let d_ws = Workspace::declare(&mut plan, "D", &d_mlp, 2 * b);

    let (dataset, format) = match data {
        TrainingData::F32 { values, .. } => (
            plan.buffer("data", Elem::F32, values.len(), Init::F32(values.clone())),
            RowFormat::F32,
        ),
        TrainingData::U8 { bytes, .. } => {
            let words = crate::cpu::kernels::pack_bytes(bytes);
            (
                plan.buffer("data", Elem::U32, words.len(), Init::U32(words)),
                RowFormat::U8 {
                    center: 127.5,
                    scale: 2.0 / 255.0,
                },
            )
        }
    };
    let indices = plan.buffer("batch_indices", Elem::U32, b, Init::Zeros);
    let z = plan.f32_buffer("z", b * cfg.z_dim);
    let d_input = plan.f32_buffer("d_input", 2 * b * dim);
    let d_fake_grad = plan.f32_buffer("d_fake_grad", b * dim);
    let mut d_targets = vec![cfg.real_label; b];
    d_targets.extend(std::iter::repeat_n(0.0, b));
    let d_targets = plan.buffer("d_targets", Elem::F32, 2 * b, Init::F32(d_targets));
    let g_targets = plan.buffer("g_targets", Elem::F32, b, Init::F32(vec![1.0; b]));
    let loss_rows = plan.f32_buffer("loss_rows", 2 * b);
    let logit_grad = plan.f32_buffer("logit_grad", 2 * b);
    let probs = plan.f32_buffer("d_probs", 2 * b);
    let stats = plan.f32_buffer("stats", 4);

    let real = d_input.rows(0, b, dim);
    let fake = d_input.rows(b, b, dim);
    let source = |stream, net: &NetworkBuffers| RandomSource {
        seed: cfg.seed,
        stream,
        counter: net.step,
    };
    let inv_b = 1.0 / b as f32;

    // --- d_step ---
    let d_logits = d_ws.output(&d_mlp, d_mlp.layers.len() - 1, 2 * b);
    let mut d_ops = vec![
        Op::RandomIndex {
            out: indices,
            bound,
            source: source(STREAM_D_INDEX, &discriminator),
        },
        Op::GatherRows {
            src: dataset,
            format,
            indices,
            dst: real,
            cols: dim,
        },
        Op::RandomNormal {
            out: z,
            source: source(STREAM_D_NOISE, &discriminator),
        },
    ];
    d_ops.extend(forward(&generator, &g_ws, z, b, Some(fake)));
    d_ops.extend(forward(&discriminator, &d_ws, d_input, 2 * b, None));
    d_ops.extend([
        Op::BceWithLogits {
            logits: d_logits,
            targets: d_targets,
            loss: loss_rows,
            grad: logit_grad,
            grad_scale: inv_b,
        },
        // mean over 2B rows × 2 = mean over the real rows + mean over the fake rows.
        Op::Mean {
            x: loss_rows,
            out: stats.sub(STAT_D_LOSS, 1),
            scale: 2.0,
        },
        Op::ActivationForward {
            x: d_logits,
            y: probs,
            act: Activation::Sigmoid,
        },
        Op::Mean {
            x: probs.sub(0, b),
            out: stats.sub(STAT_D_REAL, 1),
            scale: 1.0,
        },
        Op::Mean {
            x: probs.sub(b, b),
            out: stats.sub(STAT_D_FAKE, 1),
            scale: 1.0,
        },
    ]);
    d_ops.extend(backward(
        &discriminator,
        &d_ws,
        d_input,
        d_logits,
        logit_grad,
        2 * b,
        BackwardTargets {
            weight_grads: true,
            input_grad: None,
        },
    ));
    d_ops.extend(discriminator.adam_step(cfg.d_adam));

    // --- g_step ---
    let g_logits = d_ws.output(&d_mlp, d_mlp.layers.len() - 1, b);
    let mut g_ops = vec![Op::RandomNormal {
        out: z,
        source: source(STREAM_G_NOISE, &generator),
    }];
    g_ops.extend(forward(&generator, &g_ws, z, b, Some(fake)));
    g_ops.extend(forward(&discriminator, &d_ws, fake, b, None));
    g_ops.extend([
        Op::BceWithLogits {
            logits: g_logits,
            targets: g_targets,
            loss: loss_rows.sub(0, b),
            grad: logit_grad.sub(0, b),
            grad_scale: inv_b,
        },
        Op::Mean {
            x: loss_rows.sub(0, b),
            out: stats.sub(STAT_G_LOSS, 1),
            scale: 1.0,
        },
    ]);
    g_ops.extend(backward(
        &discriminator,
        &d_ws,
        fake,
        g_logits,
        logit_grad.sub(0, b),
        b,
        BackwardTargets {
            weight_grads: false,
            input_grad: Some(d_fake_grad),
        },
    ));
    g_ops.extend(backward(
        &generator,
        &g_ws,
        z,
        fake,
        d_fake_grad,
        b,
        BackwardTargets {
            weight_grads: true,
            input_grad: None,
        },
    ));
    g_ops.extend(generator.adam_step(cfg.g_adam));

    plan.add_phase("d_step", d_ops);
    plan.add_phase("g_step", g_ops);
    plan.validate()?;
    Ok(GanPlan {
        plan,
        generator,
        discriminator,
        stats,
        d_input,
    })
}
