//! One GAN training step for networks given as layer lists (the DCGAN),
//! as a plan with the phases of [`super::step`]: `d_step`, `g_step`,
//! `sample` and `check_params`.
//!
//! The loop of PyTorch's DCGAN example, which a PyTorch peer reproduces:
//! ```text
//!   d_step: idx ~ U{0..N}, real = data[idx], z ~ N(0, I)        (draw_batch)
//!           fake = G(z)          (training mode: batch statistics, running ones updated)
//!           s = D([real; fake]); L_D = mean_real BCE(s, t_real) + mean_fake BCE(s, 0)
//!           D ← Adam(D, ∂L_D/∂D)
//!   g_step: s = D(fake)          (the same fake batch, through the updated D)
//!           L_G = mean BCE(s, 1); ∂L_G/∂fake by D's input gradient (G's output
//!           activation's derivative in its epilogue), G backward from there
//!           G ← Adam(G, ∂L_G/∂G)
//! ```
//! D sees real and fake rows as one batch, so a BatchNorm in D would mix
//! their statistics (PyTorch's example runs them separately): D's layer
//! list is refused if it has one. `sample` runs G in evaluation mode
//! (running statistics), as `model.eval()`.

use rand::SeedableRng;

use super::model::LayerModel;
use super::step::{
    STAT_D_FAKE, STAT_D_LOSS, STAT_D_REAL, STAT_G_LOSS, STREAM_D_DROPOUT_IN_D_STEP,
    STREAM_D_DROPOUT_IN_G_STEP, STREAM_D_INDEX, STREAM_D_NOISE, TrainingData, check_params_phase,
    declare_dataset, fixed_noise,
};
use crate::nn::layers::Layer;
use crate::nn::sequential::{
    InputGrad, Mode, SeqBuffers, SeqWorkspace, Sequential, UnitKind, backward, forward,
};
use crate::plan::{
    AdamHyper, Elem, Init, Op, Plan, ProbMeans, RandomSource, Slice, fuse_adam_into_weight_grads,
    fuse_loss_heads,
};

/// PyTorch's BatchNorm momentum, for the running statistics.
pub const BN_MOMENTUM: f32 = 0.1;

/// The settings of a layer-list GAN and its training.
#[derive(Clone, Debug, PartialEq)]
pub struct SeqGanConfig {
    pub model: LayerModel,
    pub batch: usize,
    pub seed: u64,
    pub d_adam: AdamHyper,
    pub g_adam: AdamHyper,
    pub real_label: f32,
    pub sample_rows: usize,
    /// Decay β of a moving average of G's state, its parameters and its
    /// BatchNorm running statistics, taken after each G update; samples
    /// come from it (0: none, samples from G).
    pub g_ema: f32,
}

/// A layer-list GAN's plan and the handles a trainer needs.
#[derive(Clone, Debug)]
pub struct SeqGanPlan {
    pub plan: Plan,
    pub g_net: Sequential,
    pub d_net: Sequential,
    pub generator: SeqBuffers,
    pub discriminator: SeqBuffers,
    /// `[L_D, L_G, mean D(x), mean D(G(z))]`.
    pub stats: Slice,
    pub samples: Slice,
    pub param_sums: Slice,
    /// G's moving average (parameters and running statistics), with `g_ema`.
    pub generator_ema: Option<SeqBuffers>,
}

/// The two networks, checked against each other and the data.
fn networks(cfg: &SeqGanConfig, data: &TrainingData) -> anyhow::Result<(Sequential, Sequential)> {
    let m = &cfg.model;
    let (g, d) = m.networks().map_err(|e| anyhow::anyhow!(e))?;
    let dim = m.data_dim();
    anyhow::ensure!(
        g.output_len() == dim,
        "the generator makes {} values per sample but the data has {dim} ({:?})",
        g.output_len(),
        m.data_shape
    );
    anyhow::ensure!(
        d.output_len() == 1,
        "the discriminator must end in one logit, not {}",
        d.output_len()
    );
    anyhow::ensure!(
        data.cols() == dim,
        "the data has {} values per row, the model {dim}",
        data.cols()
    );
    anyhow::ensure!(
        cfg.batch > 0 && data.rows() > 0,
        "a batch and a dataset of at least one row"
    );
    if let Some(i) = m
        .discriminator
        .iter()
        .position(|l| matches!(l, Layer::BatchNorm1d | Layer::BatchNorm2d))
    {
        anyhow::bail!(
            "discriminator: layer {i} (BatchNorm): not supported in D, which sees real and fake rows as one batch"
        );
    }
    let last = g.units.last().map(|u| u.kind);
    anyhow::ensure!(
        !matches!(last, Some(UnitKind::Dropout { .. } | UnitKind::View) | None),
        "the generator must end in a layer with an output (not a view or a dropout)"
    );
    Ok((g, d))
}

/// Scratch buffers of a step.
struct StepBuffers {
    dataset: Slice,
    format: crate::plan::RowFormat,
    bound: u32,
    indices: Slice,
    z: Slice,
    d_input: Slice,
    real: Slice,
    fake: Slice,
    d_targets: Slice,
    g_targets: Slice,
    loss_rows: Slice,
    logit_grad: Slice,
    fake_grad: Slice,
    stats: Slice,
}

fn step_buffers(
    plan: &mut Plan,
    cfg: &SeqGanConfig,
    data: &TrainingData,
) -> anyhow::Result<StepBuffers> {
    let (b, dim) = (cfg.batch, data.cols());
    let (dataset, format) = declare_dataset(plan, data);
    let inputs = plan.f32_buffer("d_input", 2 * b * dim);
    let mut d_targets = vec![cfg.real_label; b];
    d_targets.extend(std::iter::repeat_n(0.0, b));
    Ok(StepBuffers {
        dataset,
        format,
        bound: u32::try_from(data.rows())?,
        indices: plan.buffer("batch_indices", Elem::U32, b, Init::Zeros),
        z: plan.f32_buffer("z", b * cfg.model.z_dim),
        d_input: inputs,
        real: inputs.rows(0, b, dim),
        fake: inputs.rows(b, b, dim),
        d_targets: plan.buffer("d_targets", Elem::F32, 2 * b, Init::F32(d_targets)),
        g_targets: plan.buffer("g_targets", Elem::F32, b, Init::F32(vec![1.0; b])),
        loss_rows: plan.f32_buffer("loss_rows", 2 * b),
        logit_grad: plan.f32_buffer("logit_grad", 2 * b),
        fake_grad: plan.f32_buffer("fake_grad", b * dim),
        stats: plan.f32_buffer("stats", 4),
    })
}

/// The loss over `rows` logits into `slot` (with D's means when `split`).
fn bce(
    bufs: &StepBuffers,
    logits: Slice,
    targets: Slice,
    b: usize,
    slot: usize,
    split: bool,
) -> Op {
    let rows = logits.len;
    Op::BceMeans {
        logits,
        targets,
        loss: bufs.loss_rows.sub(0, rows),
        grad: bufs.logit_grad.sub(0, rows),
        grad_scale: 1.0 / b as f32,
        stats: bufs.stats,
        loss_slot: slot,
        loss_scale: rows as f32 / b as f32,
        prob_means: split.then_some(ProbMeans {
            split: b,
            first_slot: STAT_D_REAL,
            second_slot: STAT_D_FAKE,
        }),
        head: None,
    }
}

struct Nets {
    g: Sequential,
    d: Sequential,
    gb: SeqBuffers,
    db: SeqBuffers,
    g_ws: SeqWorkspace,
    d_ws: SeqWorkspace,
}

fn d_step(cfg: &SeqGanConfig, n: &Nets, bufs: &StepBuffers) -> Vec<Op> {
    let b = cfg.batch;
    let source = |stream| RandomSource {
        seed: cfg.seed,
        stream,
        counter: n.db.step,
    };
    let mut ops = vec![Op::DrawBatch {
        src: bufs.dataset,
        format: bufs.format,
        cols: bufs.real.len / b,
        bound: bufs.bound,
        source: source(STREAM_D_INDEX),
        noise_stream: STREAM_D_NOISE,
        indices: bufs.indices,
        dst: bufs.real,
        noise: bufs.z,
        more_noise: None,
    }];
    let g_train = Mode::Train {
        running_momentum: Some(BN_MOMENTUM),
        dropout: None,
    };
    ops.extend(forward(&n.g, &n.gb, &n.g_ws, bufs.z, b, g_train));
    let dropout = Some((cfg.seed, STREAM_D_DROPOUT_IN_D_STEP, n.db.step));
    let d_train = Mode::Train {
        running_momentum: None,
        dropout,
    };
    ops.extend(forward(&n.d, &n.db, &n.d_ws, bufs.d_input, 2 * b, d_train));
    let logits = n.d_ws.output(&n.d, n.d.units.len() - 1, 2 * b);
    ops.push(bce(bufs, logits, bufs.d_targets, b, STAT_D_LOSS, true));
    let grad = bufs.logit_grad.sub(0, 2 * b);
    ops.extend(backward(
        &n.d,
        &n.db,
        &n.d_ws,
        bufs.d_input,
        2 * b,
        grad,
        false,
        true,
        None,
        dropout,
    ));
    ops.push(n.db.adam_step(cfg.d_adam));
    fuse_adam_into_weight_grads(fuse_loss_heads(ops))
}

fn g_step(cfg: &SeqGanConfig, n: &Nets, bufs: &StepBuffers) -> Vec<Op> {
    let b = cfg.batch;
    let dropout = Some((cfg.seed, STREAM_D_DROPOUT_IN_G_STEP, n.gb.step));
    let d_train = Mode::Train {
        running_momentum: None,
        dropout,
    };
    let mut ops = forward(&n.d, &n.db, &n.d_ws, bufs.fake, b, d_train);
    let logits = n.d_ws.output(&n.d, n.d.units.len() - 1, b);
    ops.push(bce(bufs, logits, bufs.g_targets, b, STAT_G_LOSS, false));
    // D's input gradient carries G's output activation when G's last unit
    // wants its pre-activation gradient.
    let last = n.g.units.len() - 1;
    let g_last = &n.g.units[last];
    let wants_dz = g_last.wants_dz();
    let input_grad = InputGrad {
        dx: bufs.fake_grad,
        act_grad: wants_dz.then_some((bufs.fake, g_last.act)),
    };
    let grad = bufs.logit_grad.sub(0, b);
    ops.extend(backward(
        &n.d,
        &n.db,
        &n.d_ws,
        bufs.fake,
        b,
        grad,
        false,
        false,
        Some(input_grad),
        dropout,
    ));
    ops.extend(backward(
        &n.g,
        &n.gb,
        &n.g_ws,
        bufs.z,
        b,
        bufs.fake_grad,
        wants_dz,
        true,
        None,
        None,
    ));
    ops.push(n.gb.adam_step(cfg.g_adam));
    fuse_adam_into_weight_grads(fuse_loss_heads(ops))
}

/// Builds the phases of a layer-list GAN over `data`.
pub fn build_seq_gan_plan(cfg: &SeqGanConfig, data: &TrainingData) -> anyhow::Result<SeqGanPlan> {
    let (g, d) = networks(cfg, data)?;
    let mut rng = rand::rngs::StdRng::seed_from_u64(cfg.seed);
    let (g_init, d_init) = (g.init_params(&mut rng), d.init_params(&mut rng));
    let mut plan = Plan::default();
    let bufs = step_buffers(&mut plan, cfg, data)?;
    anyhow::ensure!(
        cfg.g_ema.is_finite() && (0.0..1.0).contains(&cfg.g_ema),
        "g_ema must be in [0, 1) (got {})",
        cfg.g_ema
    );
    let g_ema =
        (cfg.g_ema > 0.0).then(|| SeqBuffers::declare(&mut plan, "G_ema", &g, g_init.clone()));
    let gb = SeqBuffers::declare(&mut plan, "G", &g, g_init);
    let db = SeqBuffers::declare(&mut plan, "D", &d, d_init);
    let g_ws = SeqWorkspace::declare(&mut plan, "G", &g, cfg.batch, bufs.z, Some(bufs.fake));
    let d_ws = SeqWorkspace::declare(&mut plan, "D", &d, 2 * cfg.batch, bufs.d_input, None);
    let nets = Nets {
        g,
        d,
        gb,
        db,
        g_ws,
        d_ws,
    };
    let d_ops = d_step(cfg, &nets, &bufs);
    let mut g_ops = g_step(cfg, &nets, &bufs);
    if let Some(avg) = &g_ema {
        g_ops.extend(ema_ops(&nets.gb, avg, cfg.g_ema));
    }

    let s = cfg.sample_rows.max(1);
    let z_fixed = plan.buffer(
        "z_fixed",
        Elem::F32,
        s * cfg.model.z_dim,
        Init::F32(fixed_noise(cfg.seed, s, cfg.model.z_dim)),
    );
    let samples = plan.f32_buffer("samples", s * nets.g.output_len());
    let sample_ws =
        SeqWorkspace::declare(&mut plan, "G_sample", &nets.g, s, z_fixed, Some(samples));
    let sampling = g_ema.as_ref().unwrap_or(&nets.gb);
    let sample_ops = forward(&nets.g, sampling, &sample_ws, z_fixed, s, Mode::Eval);

    let (param_sums, check_ops) = check_params_phase(&mut plan, [nets.gb.params, nets.db.params]);
    plan.add_phase("d_step", d_ops);
    plan.add_phase("g_step", g_ops);
    plan.add_phase("sample", sample_ops);
    plan.add_phase("check_params", check_ops);
    plan.validate()?;
    Ok(SeqGanPlan {
        plan,
        g_net: nets.g,
        d_net: nets.d,
        generator: nets.gb,
        discriminator: nets.db,
        stats: bufs.stats,
        samples,
        param_sums,
        generator_ema: g_ema,
    })
}

/// `avg ← β·avg + (1−β)·G` over G's parameters and running statistics.
fn ema_ops(g: &SeqBuffers, avg: &SeqBuffers, beta: f32) -> Vec<Op> {
    let pairs = [
        (g.params, avg.params),
        (g.stats_mean, avg.stats_mean),
        (g.stats_var, avg.stats_var),
    ];
    pairs
        .into_iter()
        .map(|(params, avg)| Op::Ema { params, avg, beta })
        .collect()
}

impl SeqGanConfig {
    /// The TensorFlow DCGAN tutorial's model ([`LayerModel::tf_dcgan`]) with
    /// Adam 1e-4 (β1 0.5 as PyTorch's DCGAN example; the tutorial keeps
    /// Keras's 0.9) and 64 sample rows.
    pub fn tf_dcgan(batch: usize, seed: u64) -> SeqGanConfig {
        let adam = AdamHyper {
            lr: 1e-4,
            ..AdamHyper::default()
        };
        SeqGanConfig {
            model: LayerModel::tf_dcgan(),
            batch,
            seed,
            d_adam: adam,
            g_adam: adam,
            real_label: 1.0,
            sample_rows: 64,
            g_ema: 0.0,
        }
    }
}

/// `model`'s generator, checked to have the size of `g_state` (a
/// checkpoint's flat state: `Sequential::state_words`).
pub fn generator_for_state(model: &LayerModel, g_state: &[f32]) -> anyhow::Result<Sequential> {
    let (g, _) = model.networks().map_err(|e| anyhow::anyhow!(e))?;
    anyhow::ensure!(
        g_state.len() == g.state_words(),
        "the generator's state has {} words but the architecture needs {}",
        g_state.len(),
        g.state_words()
    );
    Ok(g)
}

/// A generator-only plan for a layer list: phase `sample` maps `z` (rows ×
/// z_dim, a buffer named `z`) through G in evaluation mode, BatchNorm on the
/// running statistics of `g_state` (the flat state a checkpoint holds:
/// `Sequential::state_words`), to the returned slice.
pub fn build_seq_sampler_plan(
    model: &LayerModel,
    g_state: &[f32],
    z: Vec<f32>,
) -> anyhow::Result<(Plan, Slice)> {
    let g = generator_for_state(model, g_state)?;
    let rows = z.len() / model.z_dim;
    anyhow::ensure!(
        rows > 0 && rows * model.z_dim == z.len(),
        "noise of the wrong size"
    );
    let mut plan = Plan::default();
    let bufs = SeqBuffers::declare_from_state(&mut plan, "G", &g, g_state);
    let z = plan.buffer("z", Elem::F32, z.len(), Init::F32(z));
    let out = plan.f32_buffer("samples", rows * g.output_len());
    let ws = SeqWorkspace::declare(&mut plan, "G", &g, rows, z, Some(out));
    plan.add_phase("sample", forward(&g, &bufs, &ws, z, rows, Mode::Eval));
    plan.validate()?;
    Ok((plan, out))
}
