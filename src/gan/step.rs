//! One GAN training step as a plan with two phases.
//!
//! `d_step` (the discriminator update), on a batch of B real and B fake rows
//! stacked into one 2B-row D input (with PacGAN packing, each D row holds
//! `pack` samples side by side: G makes B·pack samples, and since rows are
//! contiguous, B·pack rows of `dim` are exactly B rows of `pack·dim`):
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
//! `[L_D, L_G, mean D(x), mean D(G(z))]`. The `check_params` phase writes
//! sums over each network's parameters into `param_sums`: a NaN or Inf
//! anywhere in a network makes its sums non-finite, even where a ReLU's
//! `max(x, 0)` would hide it from the losses.

use rand::SeedableRng;

use super::model::ModelSpec;

use crate::nn::mlp::{Dropout, backward_with_dropout, forward_with_dropout};
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
/// D's dropout masks: layer l draws from stream base + l, one base per phase.
const STREAM_D_DROPOUT_IN_D_STEP: u32 = 16;
const STREAM_D_DROPOUT_IN_G_STEP: u32 = 48;
/// The fixed noise that sample grids are drawn from (drawn once, on the host).
pub const STREAM_FIXED_NOISE: u32 = 3;

/// Settings of the two networks and their training.
#[derive(Clone, Debug, PartialEq)]
pub struct GanConfig {
    pub model: ModelSpec,
    pub batch: usize,
    pub seed: u64,
    pub d_adam: AdamHyper,
    pub g_adam: AdamHyper,
    /// Target for real rows in the D loss (1.0, or 0.9 for one-sided smoothing).
    pub real_label: f32,
    /// Rows the `sample` phase draws from fixed noise.
    pub sample_rows: usize,
    /// Dropout rate on D's hidden layers while training (0: none).
    pub d_dropout: f32,
    /// Decay β of an exponential moving average of G's weights, updated after
    /// each G step and used by the `sample` phase (0: no average).
    pub g_ema: f32,
}

impl Default for GanConfig {
    /// The seed tutorial's model and optimiser: Adam 2e-4, β1 0.5, batch 64.
    fn default() -> Self {
        GanConfig {
            model: ModelSpec::seed_images(),
            batch: 64,
            seed: 0,
            d_adam: AdamHyper::default(),
            g_adam: AdamHyper::default(),
            real_label: 1.0,
            sample_rows: 64,
            d_dropout: 0.0,
            g_ema: 0.0,
        }
    }
}

/// Starting parameters, when not freshly initialised (a checkpoint).
#[derive(Clone, Debug, Default)]
pub struct InitialParams {
    pub generator: Option<Vec<f32>>,
    pub discriminator: Option<Vec<f32>>,
    /// The average of G's weights (with `g_ema`; else it starts at G's weights).
    pub generator_ema: Option<Vec<f32>>,
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
    /// G's output on the fixed noise, `sample_rows × data_dim`, written by the `sample` phase.
    pub samples: Slice,
    /// The moving average of G's weights (in G's flat layout), with `g_ema`.
    pub generator_ema: Option<Slice>,
    /// Four sums over the parameters, `[G, D, G's tail, D's tail]` (see
    /// [`param_sum_ops`]), written by the `check_params` phase; all are finite
    /// exactly when every parameter is.
    pub param_sums: Slice,
}

/// `rows × z_dim` standard normals from the fixed-noise stream of `seed`.
pub fn fixed_noise(seed: u64, rows: usize, z_dim: usize) -> Vec<f32> {
    let mut z = vec![0.0; rows * z_dim];
    crate::cpu::philox::fill_normal(&mut z, seed, STREAM_FIXED_NOISE, 0);
    z
}

/// Checks that `init` fits `mlp`'s layout, or draws fresh parameters.
fn initial(
    name: &str,
    mlp: &Mlp,
    given: Option<Vec<f32>>,
    rng: &mut rand::rngs::StdRng,
) -> anyhow::Result<Vec<f32>> {
    let fresh = mlp.init_params(rng);
    match given {
        None => Ok(fresh),
        Some(p) if p.len() == fresh.len() => Ok(p),
        Some(p) => anyhow::bail!(
            "{name} parameters have {} words but the architecture needs {}",
            p.len(),
            fresh.len()
        ),
    }
}

/// Builds the `d_step`, `g_step` and `sample` phases for `cfg` over `data`.
pub fn build_gan_plan(
    cfg: &GanConfig,
    data: &TrainingData,
    init: InitialParams,
) -> anyhow::Result<GanPlan> {
    let b = cfg.batch;
    let dim = data.cols();
    cfg.model.check()?;
    anyhow::ensure!(b > 0, "batch must be at least 1");
    anyhow::ensure!(data.rows() > 0, "the training data is empty");
    // With packing, D sees B rows of `pack` samples each: G makes B·pack samples.
    let gb = b * cfg.model.pack;
    anyhow::ensure!(
        gb <= data.rows(),
        "batch {b} (× pack {}) is larger than the dataset ({} rows)",
        cfg.model.pack,
        data.rows()
    );
    anyhow::ensure!(
        dim == cfg.model.data_dim,
        "the data has {dim} columns but the model expects {}",
        cfg.model.data_dim
    );
    let bound = u32::try_from(data.rows())
        .map_err(|_| anyhow::anyhow!("{} training rows is more than 2^32", data.rows()))?;

    let g_mlp = cfg.model.generator();
    let d_mlp = cfg.model.discriminator();
    // Both inits are always drawn, so a given seed gives the same D whether or not G was given.
    let mut rng = rand::rngs::StdRng::seed_from_u64(cfg.seed);
    let g_init = initial("generator", &g_mlp, init.generator, &mut rng)?;
    let d_init = initial("discriminator", &d_mlp, init.discriminator, &mut rng)?;
    anyhow::ensure!(
        cfg.g_ema.is_finite() && (0.0..1.0).contains(&cfg.g_ema),
        "g_ema must be in [0, 1) (got {})",
        cfg.g_ema
    );
    let g_ema_init = match init.generator_ema {
        Some(avg) if avg.len() != g_init.len() => anyhow::bail!(
            "the generator average has {} words but the architecture needs {}",
            avg.len(),
            g_init.len()
        ),
        Some(avg) => avg,
        None => g_init.clone(),
    };

    let mut plan = Plan::default();
    let generator = NetworkBuffers::declare(&mut plan, "G", &g_mlp, g_init);
    let generator_ema = (cfg.g_ema > 0.0)
        .then(|| plan.buffer("G.ema", Elem::F32, g_ema_init.len(), Init::F32(g_ema_init)));
    let discriminator = NetworkBuffers::declare(&mut plan, "D", &d_mlp, d_init);
    let g_ws = Workspace::declare(&mut plan, "G", &g_mlp, gb);
    anyhow::ensure!(
        cfg.d_dropout.is_finite() && (0.0..1.0).contains(&cfg.d_dropout),
        "d_dropout must be in [0, 1) (got {})",
        cfg.d_dropout
    );
    anyhow::ensure!(
        d_mlp.layers.len() <= 32,
        "at most 31 hidden layers (dropout streams)"
    );
    let d_ws = if cfg.d_dropout > 0.0 {
        Workspace::with_dropout(&mut plan, "D", &d_mlp, 2 * b)
    } else {
        Workspace::declare(&mut plan, "D", &d_mlp, 2 * b)
    };

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
    let indices = plan.buffer("batch_indices", Elem::U32, gb, Init::Zeros);
    let z = plan.f32_buffer("z", gb * cfg.model.z_dim);
    let d_input = plan.f32_buffer("d_input", 2 * gb * dim);
    let d_fake_grad = plan.f32_buffer("d_fake_grad", gb * dim);
    let mut d_targets = vec![cfg.real_label; b];
    d_targets.extend(std::iter::repeat_n(0.0, b));
    let d_targets = plan.buffer("d_targets", Elem::F32, 2 * b, Init::F32(d_targets));
    let g_targets = plan.buffer("g_targets", Elem::F32, b, Init::F32(vec![1.0; b]));
    let loss_rows = plan.f32_buffer("loss_rows", 2 * b);
    let logit_grad = plan.f32_buffer("logit_grad", 2 * b);
    let probs = plan.f32_buffer("d_probs", 2 * b);
    let stats = plan.f32_buffer("stats", 4);

    let real = d_input.rows(0, gb, dim);
    let fake = d_input.rows(gb, gb, dim);
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
    d_ops.extend(forward(&generator, &g_ws, z, gb, Some(fake)));
    // D's dropout: fresh masks each step (the counters advance once per step),
    // the same mask for a forward pass and its backward pass.
    let d_dropout = |stream, counter| {
        (cfg.d_dropout > 0.0).then_some(Dropout {
            keep: 1.0 - cfg.d_dropout,
            seed: cfg.seed,
            stream,
            counter,
        })
    };
    let d_dropout_d = d_dropout(STREAM_D_DROPOUT_IN_D_STEP, discriminator.step);
    let d_dropout_g = d_dropout(STREAM_D_DROPOUT_IN_G_STEP, generator.step);
    d_ops.extend(forward_with_dropout(
        &discriminator,
        &d_ws,
        d_input,
        2 * b,
        None,
        d_dropout_d.as_ref(),
    ));
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
    d_ops.extend(backward_with_dropout(
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
        d_dropout_d.as_ref(),
    ));
    d_ops.extend(discriminator.adam_step(cfg.d_adam));

    // --- g_step ---
    let g_logits = d_ws.output(&d_mlp, d_mlp.layers.len() - 1, b);
    let mut g_ops = vec![Op::RandomNormal {
        out: z,
        source: source(STREAM_G_NOISE, &generator),
    }];
    g_ops.extend(forward(&generator, &g_ws, z, gb, Some(fake)));
    g_ops.extend(forward_with_dropout(
        &discriminator,
        &d_ws,
        fake,
        b,
        None,
        d_dropout_g.as_ref(),
    ));
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
    g_ops.extend(backward_with_dropout(
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
        d_dropout_g.as_ref(),
    ));
    g_ops.extend(backward(
        &generator,
        &g_ws,
        z,
        fake,
        d_fake_grad,
        gb,
        BackwardTargets {
            weight_grads: true,
            input_grad: None,
        },
    ));
    g_ops.extend(generator.adam_step(cfg.g_adam));
    if let Some(avg) = generator_ema {
        g_ops.push(Op::Ema {
            params: generator.params,
            avg,
            beta: cfg.g_ema,
        });
    }

    // --- sample: G on the fixed noise ---
    let s = cfg.sample_rows.max(1);
    let z_fixed = plan.buffer(
        "z_fixed",
        Elem::F32,
        s * cfg.model.z_dim,
        Init::F32(fixed_noise(cfg.seed, s, cfg.model.z_dim)),
    );
    let sample_ws = Workspace::declare(&mut plan, "G_sample", &g_mlp, s);
    let samples = plan.f32_buffer("samples", s * dim);
    // Samples come from the average of G's weights when there is one.
    let sampled = NetworkBuffers {
        params: generator_ema.unwrap_or(generator.params),
        ..generator.clone()
    };
    let sample_ops = forward(&sampled, &sample_ws, z_fixed, s, Some(samples));

    let param_sums = plan.f32_buffer("param_sums", 4);
    let mut check_ops = Vec::new();
    for (i, net) in [&generator, &discriminator].into_iter().enumerate() {
        let partials = plan.f32_buffer(&format!("param_sums.partials{i}"), PARAM_SUM_COLS);
        check_ops.extend(param_sum_ops(
            net.params,
            partials,
            param_sums.sub(i, 1),
            param_sums.sub(2 + i, 1),
        ));
    }

    plan.add_phase("d_step", d_ops);
    plan.add_phase("g_step", g_ops);
    plan.add_phase("sample", sample_ops);
    plan.add_phase("check_params", check_ops);
    plan.validate()?;
    Ok(GanPlan {
        plan,
        generator,
        discriminator,
        stats,
        d_input,
        samples,
        generator_ema,
        param_sums,
    })
}

/// Width of the matrix a parameter buffer is viewed as by [`param_sum_ops`].
const PARAM_SUM_COLS: usize = 1024;

/// Ops that write `body = mean of the column sums of params[..rows·1024]`
/// viewed as a `rows × 1024` matrix (`column_sum` spreads the reads over 32
/// workgroups; one `mean` workgroup would walk millions of values alone) and
/// `tail = mean of the rest`. Both are finite exactly when
/// every value is (barring overflow past 3.4e38).
fn param_sum_ops(params: Slice, partials: Slice, body: Slice, tail: Slice) -> Vec<Op> {
    let rows = params.len / PARAM_SUM_COLS;
    let head = rows * PARAM_SUM_COLS;
    let mut ops = Vec::new();
    if rows > 0 {
        ops.push(Op::ColumnSum {
            x: params.sub(0, head),
            out: partials,
            rows,
            cols: PARAM_SUM_COLS,
        });
    }
    // With no full row, `partials` keeps its initial zeros.
    ops.push(Op::Mean {
        x: partials,
        out: body,
        scale: 1.0,
    });
    if params.len > head {
        ops.push(Op::Mean {
            x: params.sub(head, params.len - head),
            out: tail,
            scale: 1.0,
        });
    }
    ops
}

/// A generator-only plan: phase `sample` maps `z` (rows × z_dim) to the returned slice.
pub fn build_sampler_plan(
    model: &ModelSpec,
    g_params: Vec<f32>,
    z: Vec<f32>,
) -> anyhow::Result<(Plan, Slice)> {
    model.check()?;
    let g_mlp = model.generator();
    anyhow::ensure!(
        g_params.len() == g_mlp.layout().total,
        "generator parameters have {} words but the architecture needs {}",
        g_params.len(),
        g_mlp.layout().total
    );
    let rows = z.len() / model.z_dim;
    anyhow::ensure!(
        rows > 0 && rows * model.z_dim == z.len(),
        "noise of the wrong size"
    );
    let mut plan = Plan::default();
    let net = NetworkBuffers::declare(&mut plan, "G", &g_mlp, g_params);
    let ws = Workspace::declare(&mut plan, "G", &g_mlp, rows);
    let z = plan.buffer("z", Elem::F32, z.len(), Init::F32(z));
    let out = plan.f32_buffer("samples", rows * model.data_dim);
    let ops = forward(&net, &ws, z, rows, Some(out));
    plan.add_phase("sample", ops);
    plan.validate()?;
    Ok((plan, out))
}
