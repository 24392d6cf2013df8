//! One GAN training step as a plan with two phases.
//!
//! `d_step` (the discriminator update), on a batch of B real and B fake rows
//! stacked into one 2B-row D input (with PacGAN packing, each D row holds
//! `pack` samples side by side: G makes B·pack samples, and since rows are
//! contiguous, B·pack rows of `dim` are exactly B rows of `pack·dim`):
//! ```text
//!   idx  ~ U{0..N}, real = data[idx], z ~ N(0, I)   (draw_batch: one launch)
//!   z_g  ~ N(0, I)            (the G step's noise, from G's step counter)
//!   [fake; fake_g] = G([z; z_g])   (one G forward over both, into rows B..3B)
//!   s    = D([real; fake])    (D forward)
//!   L_D  = mean_real BCE(s, t_real) + mean_fake BCE(s, 0)  (bce_means, grad scale 1/B,
//!          with mean σ(s) over each half: one launch)
//!   D   ← Adam(D, ∂L_D/∂D)    (D backward with weight gradients, adam)
//! ```
//! `g_step` (the generator update, non-saturating loss), on the fake batch
//! the D step made from z_g (the D step does not change G, so it is the
//! batch this phase would make):
//! ```text
//!   s = D(fake_g)
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

use super::model::{Architecture, ModelSpec};

use crate::nn::mlp::{Dropout, backward_from_preact, backward_with_dropout, forward_with_dropout};
use crate::nn::{BackwardTargets, Mlp, NetworkBuffers, Workspace, backward, forward};
use crate::plan::{
    AdamHyper, Elem, Init, Op, Plan, ProbMeans, RandomSource, RowFormat, Slice,
    fuse_adam_into_weight_grads, fuse_loss_heads,
};

/// Index of each monitoring scalar in the `stats` buffer.
pub const STAT_D_LOSS: usize = 0;
pub const STAT_G_LOSS: usize = 1;
pub const STAT_D_REAL: usize = 2;
pub const STAT_D_FAKE: usize = 3;

/// Philox stream ids (with the network's step counter as the other counter word).
pub(super) const STREAM_D_INDEX: u32 = 0;
pub(super) const STREAM_D_NOISE: u32 = 1;
const STREAM_G_NOISE: u32 = 2;
/// D's dropout masks: layer l draws from stream base + l, one base per phase.
pub(super) const STREAM_D_DROPOUT_IN_D_STEP: u32 = 16;
pub(super) const STREAM_D_DROPOUT_IN_G_STEP: u32 = 48;
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

/// Builds the `d_step`, `g_step`, `sample` and `check_params` phases for `cfg` over `data`.
pub fn build_gan_plan(
    cfg: &GanConfig,
    data: &TrainingData,
    init: InitialParams,
) -> anyhow::Result<GanPlan> {
    let (gb, bound) = check_shapes(cfg, data)?;
    let g_mlp = cfg.model.generator();
    let d_mlp = cfg.model.discriminator();
    let start = starting_params(cfg, &g_mlp, &d_mlp, init)?;
    check_dropout(cfg, &d_mlp)?;

    let mut plan = Plan::default();
    let nets = declare_networks(&mut plan, cfg, g_mlp, d_mlp, start, gb);
    let bufs = declare_step_buffers(&mut plan, cfg, data, gb, bound);
    let d_ops = d_step_ops(cfg, &nets, &bufs);
    let g_ops = g_step_ops(cfg, &nets, &bufs);
    let (samples, sample_ops) = sample_phase(&mut plan, cfg, &nets);
    let (param_sums, check_ops) = check_params_phase(
        &mut plan,
        [nets.generator.params, nets.discriminator.params],
    );

    plan.add_phase("d_step", d_ops);
    plan.add_phase("g_step", g_ops);
    plan.add_phase("sample", sample_ops);
    plan.add_phase("check_params", check_ops);
    plan.validate()?;
    Ok(GanPlan {
        plan,
        generator: nets.generator,
        discriminator: nets.discriminator,
        stats: bufs.stats,
        d_input: bufs.d_input,
        samples,
        generator_ema: nets.generator_ema,
        param_sums,
    })
}

/// Refuses a batch, dataset or model that cannot make a step; returns the
/// rows G makes per step (B·pack) and the dataset's row count as an index bound.
fn check_shapes(cfg: &GanConfig, data: &TrainingData) -> anyhow::Result<(usize, u32)> {
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
    Ok((gb, bound))
}

/// The parameters a plan starts from: G, D and G's average.
struct StartingParams {
    generator: Vec<f32>,
    discriminator: Vec<f32>,
    generator_ema: Vec<f32>,
}

/// Checks the given parameters against the architecture and draws the rest.
fn starting_params(
    cfg: &GanConfig,
    g_mlp: &Mlp,
    d_mlp: &Mlp,
    init: InitialParams,
) -> anyhow::Result<StartingParams> {
    // Both inits are always drawn, so a given seed gives the same D whether or not G was given.
    let mut rng = rand::rngs::StdRng::seed_from_u64(cfg.seed);
    let generator = initial("generator", g_mlp, init.generator, &mut rng)?;
    let discriminator = initial("discriminator", d_mlp, init.discriminator, &mut rng)?;
    anyhow::ensure!(
        cfg.g_ema.is_finite() && (0.0..1.0).contains(&cfg.g_ema),
        "g_ema must be in [0, 1) (got {})",
        cfg.g_ema
    );
    let generator_ema = match init.generator_ema {
        Some(avg) if avg.len() != generator.len() => anyhow::bail!(
            "the generator average has {} words but the architecture needs {}",
            avg.len(),
            generator.len()
        ),
        Some(avg) => avg,
        None => generator.clone(),
    };
    Ok(StartingParams {
        generator,
        discriminator,
        generator_ema,
    })
}

/// Refuses a dropout rate outside [0, 1) and more layers than D has dropout streams.
fn check_dropout(cfg: &GanConfig, d_mlp: &Mlp) -> anyhow::Result<()> {
    anyhow::ensure!(
        cfg.d_dropout.is_finite() && (0.0..1.0).contains(&cfg.d_dropout),
        "d_dropout must be in [0, 1) (got {})",
        cfg.d_dropout
    );
    anyhow::ensure!(
        d_mlp.layers.len() <= 32,
        "at most 31 hidden layers (dropout streams)"
    );
    Ok(())
}

/// The two networks in the plan: parameters, G's average, and the
/// activations of a training step.
struct Networks {
    g_mlp: Mlp,
    d_mlp: Mlp,
    generator: NetworkBuffers,
    generator_ema: Option<Slice>,
    discriminator: NetworkBuffers,
    /// G's activations over 2·B·pack rows: the D step's fake batch, then the
    /// G step's (G's forward runs once, in the D step, over both).
    g_ws: Workspace,
    /// D's activations over the 2B-row `[real; fake]` input.
    d_ws: Workspace,
}

impl Networks {
    /// D's output logits over the first `rows` rows of its input.
    fn d_logits(&self, rows: usize) -> Slice {
        self.d_ws
            .output(&self.d_mlp, self.d_mlp.layers.len() - 1, rows)
    }
}

/// Declares both networks' buffers (G, G's average, D) and their workspaces.
fn declare_networks(
    plan: &mut Plan,
    cfg: &GanConfig,
    g_mlp: Mlp,
    d_mlp: Mlp,
    start: StartingParams,
    gb: usize,
) -> Networks {
    let StartingParams {
        generator,
        discriminator,
        generator_ema,
    } = start;
    let generator = NetworkBuffers::declare(plan, "G", &g_mlp, generator);
    let generator_ema = (cfg.g_ema > 0.0).then(|| {
        let len = generator_ema.len();
        plan.buffer("G.ema", Elem::F32, len, Init::F32(generator_ema))
    });
    let discriminator = NetworkBuffers::declare(plan, "D", &d_mlp, discriminator);
    // G runs once per step over both noise batches: the D step's and the G step's.
    let g_ws = Workspace::declare(plan, "G", &g_mlp, 2 * gb);
    let d_rows = 2 * cfg.batch;
    let d_ws = if cfg.d_dropout > 0.0 {
        Workspace::with_dropout(plan, "D", &d_mlp, d_rows)
    } else {
        Workspace::declare(plan, "D", &d_mlp, d_rows)
    };
    Networks {
        g_mlp,
        d_mlp,
        generator,
        generator_ema,
        discriminator,
        g_ws,
        d_ws,
    }
}

/// The dataset and the scratch buffers of a training step.
struct StepBuffers {
    dataset: Slice,
    format: RowFormat,
    /// Rows of the dataset: batch indices are drawn below it.
    bound: u32,
    /// Rows G makes per step: B·pack.
    fake_rows: usize,
    indices: Slice,
    /// The noise of both batches, `[z_d; z_g]`, and its two halves.
    z: Slice,
    z_d: Slice,
    z_g: Slice,
    /// `[real; fake]` (D's input in the D step), and its two halves.
    d_input: Slice,
    real: Slice,
    fake: Slice,
    /// The G step's fake batch (D's input in the G step), right after
    /// `d_input` in its buffer, so that G writes both fake batches at once.
    fake_g: Slice,
    d_fake_grad: Slice,
    d_targets: Slice,
    g_targets: Slice,
    loss_rows: Slice,
    logit_grad: Slice,
    stats: Slice,
}

/// Uploads the dataset and declares the buffers a step works in.
fn declare_step_buffers(
    plan: &mut Plan,
    cfg: &GanConfig,
    data: &TrainingData,
    gb: usize,
    bound: u32,
) -> StepBuffers {
    let b = cfg.batch;
    let dim = data.cols();
    let (dataset, format) = declare_dataset(plan, data);
    let indices = plan.buffer("batch_indices", Elem::U32, gb, Init::Zeros);
    let z_dim = cfg.model.z_dim;
    let z = plan.f32_buffer("z", 2 * gb * z_dim);
    // [real; fake; fake_g]: the D step's input, then the G step's.
    let inputs = plan.f32_buffer("d_input", 3 * gb * dim);
    let d_fake_grad = plan.f32_buffer("d_fake_grad", gb * dim);
    let mut d_targets = vec![cfg.real_label; b];
    d_targets.extend(std::iter::repeat_n(0.0, b));
    let d_targets = plan.buffer("d_targets", Elem::F32, 2 * b, Init::F32(d_targets));
    let g_targets = plan.buffer("g_targets", Elem::F32, b, Init::F32(vec![1.0; b]));
    StepBuffers {
        dataset,
        format,
        bound,
        fake_rows: gb,
        indices,
        z,
        z_d: z.rows(0, gb, z_dim),
        z_g: z.rows(gb, gb, z_dim),
        d_input: inputs.rows(0, 2 * gb, dim),
        real: inputs.rows(0, gb, dim),
        fake: inputs.rows(gb, gb, dim),
        fake_g: inputs.rows(2 * gb, gb, dim),
        d_fake_grad,
        d_targets,
        g_targets,
        loss_rows: plan.f32_buffer("loss_rows", 2 * b),
        logit_grad: plan.f32_buffer("logit_grad", 2 * b),
        stats: plan.f32_buffer("stats", 4),
    }
}

/// The training rows as a device buffer, and how the gather reads them.
pub(super) fn declare_dataset(plan: &mut Plan, data: &TrainingData) -> (Slice, RowFormat) {
    match data {
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
    }
}

/// Philox stream `stream` of the seed, countered by `net`'s step counter.
fn random_source(cfg: &GanConfig, stream: u32, net: &NetworkBuffers) -> RandomSource {
    RandomSource {
        seed: cfg.seed,
        stream,
        counter: net.step,
    }
}

/// D's dropout: fresh masks each step (the counters advance once per step),
/// the same mask for a forward pass and its backward pass.
fn d_dropout(cfg: &GanConfig, stream: u32, counter: Slice) -> Option<Dropout> {
    (cfg.d_dropout > 0.0).then_some(Dropout {
        keep: 1.0 - cfg.d_dropout,
        seed: cfg.seed,
        stream,
        counter,
    })
}

/// The `d_step` phase: a real batch and a fake one through D, the D loss and
/// its statistics, D's backward pass and its Adam step.
fn d_step_ops(cfg: &GanConfig, nets: &Networks, bufs: &StepBuffers) -> Vec<Op> {
    let (b, dim) = (cfg.batch, cfg.model.data_dim);
    let d = &nets.discriminator;
    let dropout = d_dropout(cfg, STREAM_D_DROPOUT_IN_D_STEP, d.step);
    let d_logits = nets.d_logits(2 * b);
    let mut ops = vec![Op::DrawBatch {
        src: bufs.dataset,
        format: bufs.format,
        cols: dim,
        bound: bufs.bound,
        source: random_source(cfg, STREAM_D_INDEX, d),
        noise_stream: STREAM_D_NOISE,
        indices: bufs.indices,
        dst: bufs.real,
        noise: bufs.z_d,
        // The G step's noise, from G's counter: its fake batch is made here too.
        more_noise: Some((
            bufs.z_g,
            random_source(cfg, STREAM_G_NOISE, &nets.generator),
        )),
    }];
    ops.extend(fake_batches(nets, bufs));
    ops.extend(forward_with_dropout(
        d,
        &nets.d_ws,
        bufs.d_input,
        2 * b,
        None,
        dropout.as_ref(),
    ));
    ops.extend(d_loss_ops(b, d_logits, bufs));
    ops.extend(backward_with_dropout(
        d,
        &nets.d_ws,
        bufs.d_input,
        d_logits,
        bufs.logit_grad,
        2 * b,
        BackwardTargets {
            weight_grads: true,
            input_grad: None,
            input_act: None,
        },
        dropout.as_ref(),
    ));
    ops.extend(d.adam_step(cfg.d_adam));
    fuse_adam_into_weight_grads(fuse_loss_heads(ops))
}

/// G's forward over both noise batches (`[z_d; z_g]`, the D step's draw
/// writes both) into `[fake; fake_g]`. The D step does not change G, so computing the G step's
/// fake batch here, before D's update, gives the numbers the G step would:
/// its noise comes from G's step counter, which only G's update advances
/// (with several D steps per G step, each computes the same batch again).
fn fake_batches(nets: &Networks, bufs: &StepBuffers) -> Vec<Op> {
    let g = &nets.generator;
    let gb = bufs.fake_rows;
    let both = Slice {
        len: bufs.fake.len + bufs.fake_g.len,
        ..bufs.fake
    };
    forward(g, &nets.g_ws, bufs.z, 2 * gb, Some(both))
}

/// The D loss over the 2B logits with its gradient, and the `stats` it
/// writes: the loss, mean D(x) and mean D(G(z)), in one launch.
fn d_loss_ops(b: usize, d_logits: Slice, bufs: &StepBuffers) -> [Op; 1] {
    [Op::BceMeans {
        logits: d_logits,
        targets: bufs.d_targets,
        loss: bufs.loss_rows,
        grad: bufs.logit_grad,
        grad_scale: 1.0 / b as f32,
        stats: bufs.stats,
        // mean over 2B rows × 2 = mean over the real rows + mean over the fake rows.
        loss_slot: STAT_D_LOSS,
        loss_scale: 2.0,
        prob_means: Some(ProbMeans {
            split: b,
            first_slot: STAT_D_REAL,
            second_slot: STAT_D_FAKE,
        }),
        head: None,
    }]
}

/// The `g_step` phase: a fake batch through D, the G loss, its gradient back
/// through D (input gradient only) and G, G's Adam step and G's average.
fn g_step_ops(cfg: &GanConfig, nets: &Networks, bufs: &StepBuffers) -> Vec<Op> {
    let b = cfg.batch;
    let gb = bufs.fake_rows;
    let (g, d) = (&nets.generator, &nets.discriminator);
    let dropout = d_dropout(cfg, STREAM_D_DROPOUT_IN_G_STEP, g.step);
    let g_logits = nets.d_logits(b);
    // G's forward on this step's noise ran in the D step (`fake_batches`):
    // its activations are G's workspace from row B·pack on.
    let g_ws = nets.g_ws.rows_from(&nets.g_mlp, gb);
    let mut ops = forward_with_dropout(d, &nets.d_ws, bufs.fake_g, b, None, dropout.as_ref());
    ops.extend(g_loss_ops(b, g_logits, bufs));
    // With an output activation, D's input-gradient matmul runs its
    // derivative in the epilogue and writes G's last dz directly.
    let g_last = g.mlp.layers.len() - 1;
    let g_act = g.mlp.layers[g_last].act;
    let g_dz = g_ws.preact_grads[g_last].map(|buf| buf.sub(0, bufs.fake_g.len));
    ops.extend(backward_with_dropout(
        d,
        &nets.d_ws,
        bufs.fake_g,
        g_logits,
        bufs.logit_grad.sub(0, b),
        b,
        BackwardTargets {
            weight_grads: false,
            input_grad: Some(g_dz.unwrap_or(bufs.d_fake_grad)),
            input_act: g_dz.map(|_| (bufs.fake_g, g_act)),
        },
        dropout.as_ref(),
    ));
    let g_targets = BackwardTargets {
        weight_grads: true,
        input_grad: None,
        input_act: None,
    };
    ops.extend(match g_dz {
        Some(dz) => backward_from_preact(g, &g_ws, bufs.z_g, dz, gb, g_targets),
        None => backward(
            g,
            &g_ws,
            bufs.z_g,
            bufs.fake_g,
            bufs.d_fake_grad,
            gb,
            g_targets,
        ),
    });
    ops.extend(g.adam_step(cfg.g_adam));
    if let Some(avg) = nets.generator_ema {
        ops.push(Op::Ema {
            params: g.params,
            avg,
            beta: cfg.g_ema,
        });
    }
    fuse_adam_into_weight_grads(fuse_loss_heads(ops))
}

/// The non-saturating G loss (targets 1) over the B fake logits with its
/// gradient, and its mean into `stats`, in one launch.
fn g_loss_ops(b: usize, g_logits: Slice, bufs: &StepBuffers) -> [Op; 1] {
    [Op::BceMeans {
        logits: g_logits,
        targets: bufs.g_targets,
        loss: bufs.loss_rows.sub(0, b),
        grad: bufs.logit_grad.sub(0, b),
        grad_scale: 1.0 / b as f32,
        stats: bufs.stats,
        loss_slot: STAT_G_LOSS,
        loss_scale: 1.0,
        prob_means: None,
        head: None,
    }]
}

/// The `sample` phase: G (its average, when there is one) on the fixed
/// noise, into the returned `samples` buffer.
fn sample_phase(plan: &mut Plan, cfg: &GanConfig, nets: &Networks) -> (Slice, Vec<Op>) {
    let s = cfg.sample_rows.max(1);
    let z_dim = cfg.model.z_dim;
    let z_fixed = plan.buffer(
        "z_fixed",
        Elem::F32,
        s * z_dim,
        Init::F32(fixed_noise(cfg.seed, s, z_dim)),
    );
    let sample_ws = Workspace::declare(plan, "G_sample", &nets.g_mlp, s);
    let samples = plan.f32_buffer("samples", s * cfg.model.data_dim);
    // Samples come from the average of G's weights when there is one.
    let sampled = NetworkBuffers {
        params: nets.generator_ema.unwrap_or(nets.generator.params),
        ..nets.generator.clone()
    };
    let ops = forward(&sampled, &sample_ws, z_fixed, s, Some(samples));
    (samples, ops)
}

/// The `check_params` phase: sums over each network's parameters into the
/// returned `param_sums` buffer (see [`GanPlan::param_sums`]), G's
/// parameters first.
pub(super) fn check_params_phase(plan: &mut Plan, networks: [Slice; 2]) -> (Slice, Vec<Op>) {
    let param_sums = plan.f32_buffer("param_sums", 4);
    let mut ops = Vec::new();
    for (i, params) in networks.into_iter().enumerate() {
        let partials = plan.f32_buffer(&format!("param_sums.partials{i}"), PARAM_SUM_COLS);
        ops.extend(param_sum_ops(
            params,
            partials,
            param_sums.sub(i, 1),
            param_sums.sub(2 + i, 1),
        ));
    }
    (param_sums, ops)
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

/// A generator-only plan: phase `sample` maps `z` (rows × z_dim) to the
/// returned slice; `g_state` is the generator's flat state as a checkpoint
/// holds it (a layer list runs in evaluation mode, on its running statistics).
pub fn build_sampler_plan(
    model: &Architecture,
    g_state: Vec<f32>,
    z: Vec<f32>,
) -> anyhow::Result<(Plan, Slice)> {
    match model {
        Architecture::Mlp(m) => build_mlp_sampler_plan(m, g_state, z),
        Architecture::Layers(m) => super::seq_step::build_seq_sampler_plan(m, &g_state, z),
    }
}

fn build_mlp_sampler_plan(
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
