//! Plans: what a training step does, independent of where it runs.
//!
//! A [`Plan`] declares named device buffers (flat arrays of 32-bit words, their
//! sizes known up front) and one or more [`Phase`]s, each a flat list of [`Op`]s
//! over slices of those buffers. The GPU executor (`gpu::GpuPlan`) turns every op
//! into a pipeline, a bind group and a dispatch once and then only records them;
//! the CPU executor (`cpu::CpuPlan`) interprets the same ops in plain Rust and
//! is the reference for every kernel.

use std::fmt;

mod conv;
mod norm;
mod seeds;
mod split;
pub use conv::{ConvEpilogue, ConvGeom};
pub use norm::{NormShape, RunningStats};
pub use seeds::{MAX_SEEDS, SeedLayout, batch_seeds};
pub use split::{
    CONV_BIG_TILE, ConvGemm, DIRECT_MAX_CHANNELS, conv_gemm_mnk, conv_gemm_partials_len,
    conv_gemm_splits, conv_gemm_stretch, conv_split_stretch, conv_weight_splits, matmul_dw_splits,
    matmul_split_stretch, parity_class_rows, split_stretch,
};

/// Parameter tensors start at multiples of this many 32-bit words (256 bytes),
/// so every tensor is aligned for vector loads and for buffer binding offsets.
pub const TENSOR_ALIGN_WORDS: usize = 64;

/// Rounds `n` up to the next multiple of [`TENSOR_ALIGN_WORDS`].
pub fn align_words(n: usize) -> usize {
    n.div_ceil(TENSOR_ALIGN_WORDS) * TENSOR_ALIGN_WORDS
}

/// Index of a buffer inside its plan.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BufferId(pub usize);

/// What the 32-bit words of a buffer hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Elem {
    F32,
    U32,
}

/// A contiguous range of a buffer, in 32-bit words.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Slice {
    pub buffer: BufferId,
    pub offset: usize,
    pub len: usize,
}

impl Slice {
    /// The sub-range `[start, start + len)` of this slice.
    pub fn sub(self, start: usize, len: usize) -> Slice {
        assert!(start + len <= self.len, "sub-slice out of range");
        Slice {
            buffer: self.buffer,
            offset: self.offset + start,
            len,
        }
    }

    /// Rows `[first, first + count)` of a row-major matrix with `cols` columns.
    pub fn rows(self, first: usize, count: usize, cols: usize) -> Slice {
        self.sub(first * cols, count * cols)
    }
}

/// Initial contents of a buffer, uploaded once when an executor is built.
#[derive(Clone, Debug, PartialEq)]
pub enum Init {
    Zeros,
    F32(Vec<f32>),
    U32(Vec<u32>),
}

#[derive(Clone, Debug)]
pub struct BufferDecl {
    pub name: String,
    pub elem: Elem,
    pub len: usize,
    pub init: Init,
}

/// Elementwise nonlinearities. Every gradient is written in terms of the
/// activation's *output* y, so backward passes never need the pre-activation.
/// In JSON: `"relu"`, `{"leaky_relu": 0.2}`, ...
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    Identity,
    Relu,
    /// `x` for x > 0, `slope·x` otherwise; the slope must be positive.
    LeakyRelu(f32),
    Tanh,
    Sigmoid,
}

impl Activation {
    /// The id the WGSL kernels switch on (see `shaders/activation.wgsl`).
    pub fn id(self) -> u32 {
        match self {
            Activation::Identity => 0,
            Activation::Relu => 1,
            Activation::LeakyRelu(_) => 2,
            Activation::Tanh => 3,
            Activation::Sigmoid => 4,
        }
    }

    pub fn slope(self) -> f32 {
        match self {
            Activation::LeakyRelu(s) => s,
            _ => 0.0,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Activation::Identity => "identity",
            Activation::Relu => "relu",
            Activation::LeakyRelu(_) => "leaky_relu",
            Activation::Tanh => "tanh",
            Activation::Sigmoid => "sigmoid",
        }
    }
}

/// Adam hyper-parameters. Weight decay is decoupled (AdamW): `p -= lr·wd·p`.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AdamHyper {
    pub lr: f32,
    pub beta1: f32,
    pub beta2: f32,
    pub eps: f32,
    pub weight_decay: f32,
    /// Linear learning-rate decay to zero over this many Adam steps (0: constant).
    #[serde(default)]
    pub decay_steps: u32,
}

impl Default for AdamHyper {
    fn default() -> Self {
        AdamHyper {
            lr: 2e-4,
            beta1: 0.5,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
            decay_steps: 0,
        }
    }
}

/// How the source rows of a gather are stored.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum RowFormat {
    /// One f32 per element, copied as is.
    F32,
    /// Bytes packed four to a word (little-endian), mapped to `(byte − center)·scale`
    /// (one rounding, so every backend gives the same bits; 8-bit images map to
    /// [−1, 1] with center 127.5, scale 2/255).
    U8 { center: f32, scale: f32 },
}

/// Where a random op takes its stream of numbers from: Philox 4x32-10 keyed by
/// `seed`, with counter `(block, stream, counter[0], 0)`. `counter` is a one-word
/// u32 slice that an [`Op::Increment`] advances once per step, so each step
/// draws fresh numbers with no upload.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RandomSource {
    pub seed: u64,
    pub stream: u32,
    pub counter: Slice,
}

/// One kernel launch. Matrices are row-major; shapes are in elements.
#[derive(Clone, Debug, PartialEq)]
pub enum Op {
    /// `y[m,n] = act(Σ_k x[m,k]·w[n,k] + b[n])`: a dense layer forward
    /// (`W[out,in]` as in `nn.Linear`), bias and activation in the epilogue.
    MatmulBiasAct {
        x: Slice,
        w: Slice,
        b: Option<Slice>,
        y: Slice,
        m: usize,
        n: usize,
        k: usize,
        act: Activation,
    },
    /// `dx[m,k] = Σ_n dy[m,n]·w[n,k]`: gradient of a dense layer's input.
    /// With `act_grad = Some((y, act))` the epilogue goes on through the
    /// activation of the layer below, whose output `y[m,k]` is: it writes
    /// `dx[i] = (Σ_n dy·w)[i]·act'(y[i])`, what an [`Op::ActivationBackward`]
    /// after the product would give, in the same dispatch.
    MatmulDx {
        dy: Slice,
        w: Slice,
        dx: Slice,
        m: usize,
        n: usize,
        k: usize,
        act_grad: Option<(Slice, Activation)>,
    },
    /// `dw[n,k] = Σ_m dy[m,n]·x[m,k]`: gradient of a dense layer's weight.
    /// With `db`, the same dispatch also writes the bias gradient
    /// `db[n] = Σ_m dy[m,n]` (what an [`Op::ColumnSum`] of `dy` would give);
    /// `db` must lie in `dw`'s buffer (one binding writes both).
    MatmulDw {
        dy: Slice,
        x: Slice,
        dw: Slice,
        m: usize,
        n: usize,
        k: usize,
        db: Option<Slice>,
    },
    /// [`Op::MatmulDw`] split `splits` ways along its sum over the `m` batch
    /// rows: split `s` sums the rows `[s·L, (s + 1)·L) ∩ [0, m)`, `L` =
    /// [`matmul_split_stretch`], into `partials[s·n·k ..]`, and with
    /// `with_db` its sums of dy per column into `partials[splits·n·k + s·n ..]`.
    /// [`Op::SumSplits`] then adds the splits up ([`matmul_dw_splits`]).
    MatmulDwSplit {
        dy: Slice,
        x: Slice,
        partials: Slice,
        m: usize,
        n: usize,
        k: usize,
        splits: usize,
        with_db: bool,
    },
    /// Several [`Op::MatmulDw`] products in one launch: the weight (and bias)
    /// gradients of up to [`MATMUL_DW_GROUP_MAX`] dense layers, every `dw` and
    /// `db` in one buffer. The same numbers as one `MatmulDw` per part (on the
    /// GPU, summed in the small-output kernel's order). With `adam`, the same
    /// launch then takes one Adam step over the gradients it wrote, which must
    /// be every tensor of the update's `grads` (what is left out may only be
    /// alignment padding, which it leaves as it is): the numbers of the group
    /// followed by that [`Op::Adam`] where the padding holds zeros, one launch
    /// fewer ([`fuse_adam_into_weight_grads`]).
    MatmulDwGroup {
        parts: Vec<WeightGrad>,
        adam: Option<AdamUpdate>,
    },
    /// A 2-d convolution ([`ConvGeom`]'s formula, NCHW) through an
    /// epilogue: `y = epilogue(conv(x, w))`, per output channel for a bias.
    /// Also a ConvTranspose2d's input gradient (its `dy` as `x`).
    Conv2d {
        x: Slice,
        w: Slice,
        y: Slice,
        geom: ConvGeom,
        epilogue: ConvEpilogue,
    },
    /// The input gradient of the convolution `geom` describes, through an
    /// epilogue (per input channel for a bias):
    /// `dx[b,c,h,v] = Σ_{o,i,j} dy[b, o, (h + pad.0 − i)/stride.0, (v + pad.1 − j)/stride.1] · w[o,c,i,j]`
    /// over the taps where both divisions are exact and land inside dy.
    /// Also ConvTranspose2d's forward (its input as `dy`, its output as `dx`,
    /// with its bias and activation in the epilogue).
    Conv2dInputGrad {
        dy: Slice,
        w: Slice,
        dx: Slice,
        geom: ConvGeom,
        epilogue: ConvEpilogue,
    },
    /// The weight gradient of the convolution `geom` describes:
    /// `dw[o,c,i,j] = Σ_{b,p,q} dy[b,o,p,q] · x[b, c, p·stride.0 + i − pad.0, q·stride.1 + j − pad.1]`
    /// and, with `db` (in `dw`'s buffer), `db[o] = Σ_{b,p,q} dy[b,o,p,q]`.
    /// With `x` and `dy` swapped, a ConvTranspose2d's weight gradient.
    Conv2dWeightGrad {
        dy: Slice,
        x: Slice,
        dw: Slice,
        db: Option<Slice>,
        geom: ConvGeom,
    },
    /// BatchNorm in training mode, through an activation: per channel `c`
    /// ([`NormShape`]), over its `n` elements, `mean_c` and the biased
    /// `var_c`, then `y = act(gamma[c]·(x − mean_c)/sqrt(var_c + eps) + beta[c])`.
    /// `saved` gets `[mean_0.., inv_std_0..]` (inv_std = 1/sqrt(var + eps))
    /// for the backward pass; `running`, when given, is updated as PyTorch's.
    BatchNorm {
        x: Slice,
        gamma: Slice,
        beta: Slice,
        y: Slice,
        saved: Slice,
        running: Option<RunningStats>,
        shape: NormShape,
        eps: f32,
        act: Activation,
    },
    /// BatchNorm in evaluation mode: the running statistics instead of the
    /// batch's, `y = act(gamma[c]·(x − mean[c])/sqrt(var[c] + eps) + beta[c])`.
    BatchNormEval {
        x: Slice,
        gamma: Slice,
        beta: Slice,
        mean: Slice,
        var: Slice,
        y: Slice,
        shape: NormShape,
        eps: f32,
        act: Activation,
    },
    /// The backward pass of [`Op::BatchNorm`]: with `g = dy` (or, with
    /// `act_grad = Some((y, act))`, `g = dy·act'(y)`, y the forward's output),
    /// `x̂ = (x − mean)·inv_std` from `saved`, per channel
    /// `dbeta = Σ g`, `dgamma = Σ g·x̂` and
    /// `dx = gamma·inv_std·(g − dbeta/n − x̂·dgamma/n)`.
    /// `dgamma` and `dbeta` lie in one buffer (a network's gradients).
    BatchNormBackward {
        dy: Slice,
        x: Slice,
        gamma: Slice,
        saved: Slice,
        dx: Slice,
        dgamma: Slice,
        dbeta: Slice,
        shape: NormShape,
        act_grad: Option<(Slice, Activation)>,
    },
    /// [`Op::Conv2dWeightGrad`] split `splits` ways along its sum over
    /// `(b, p, q)` (flattened, `K = batch·out_h·out_w`): split `s` sums the
    /// stretch `[s·L, (s + 1)·L) ∩ [0, K)`, `L` = [`conv_split_stretch`], into
    /// `partials[s·len(dw) ..]`, and with `with_db` its sums of dy per channel
    /// into `partials[splits·len(dw) + s·out_ch ..]`. [`Op::SumSplits`] then
    /// adds the splits up: for weight gradients with few outputs and a long
    /// sum, which one tile's walk would otherwise leave to one workgroup.
    Conv2dWeightGradSplit {
        dy: Slice,
        x: Slice,
        partials: Slice,
        splits: usize,
        with_db: bool,
        geom: ConvGeom,
    },
    /// [`Op::Conv2d`] (`gemm` Forward: `a` is x) or [`Op::Conv2dInputGrad`]
    /// (InputGrad: `a` is dy) split `splits` ways along its inner sum, raw
    /// (no epilogue) into `partials[s·len ..]`, `len` the output's length:
    /// split `s` of an output element sums its terms ranked
    /// `[s·L, (s + 1)·L) ∩ [0, T)` in order, `L` = [`split_stretch`]`(T)`.
    /// The forward's terms are its `T = K` taps `(c, i, j)` flattened. An
    /// input-gradient element `(b, c, h, v)` takes the taps of its parity
    /// class, `i ≡ h + pad.0 (mod stride.0)` and `j` likewise, ranked
    /// `(o, ii, jj)` with `i = i0 + ii·stride.0`, `T = out_ch·ki·kj` (at
    /// stride 1 the flattened `(o, i, j)`, `T = K`): the GPU runs one GEMM per
    /// class. [`Op::ConvSumSplits`] then adds them up through the epilogue:
    /// for outputs with too few tiles to fill the GPU ([`conv_gemm_splits`]).
    ConvGemmSplit {
        gemm: ConvGemm,
        a: Slice,
        w: Slice,
        partials: Slice,
        splits: usize,
        geom: ConvGeom,
    },
    /// `out[e] = epilogue(Σ_{s < splits} partials[s·out.len + e])`, summed in
    /// the order s = 0, 1, …; the channel of `e` (for a bias) is the output
    /// channel of the forward, the input channel of the input gradient.
    ConvSumSplits {
        gemm: ConvGemm,
        partials: Slice,
        out: Slice,
        splits: usize,
        geom: ConvGeom,
        epilogue: ConvEpilogue,
    },
    /// `out[i] = Σ_{s < splits} partials[s·out.len + i]`, in the order s = 0,
    /// 1, … (the GPU adds 16 splits or more in eight interleaved lanes, a
    /// fixed order too: `sum_splits.wgsl`).
    SumSplits {
        partials: Slice,
        out: Slice,
        splits: usize,
    },
    /// `y[i] = act(x[i])`.
    ActivationForward { x: Slice, y: Slice, act: Activation },
    /// `dx[i] = dy[i]·act'(y[i])`, with `y` the activation's output.
    ActivationBackward {
        y: Slice,
        dy: Slice,
        dx: Slice,
        act: Activation,
    },
    /// `out[c] = Σ_r x[r,c]`: bias gradients.
    ColumnSum {
        x: Slice,
        out: Slice,
        rows: usize,
        cols: usize,
    },
    /// `out[0] = scale · (1/len)·Σ_i x[i]`.
    Mean { x: Slice, out: Slice, scale: f32 },
    /// Binary cross-entropy on logits, one target per row, loss and gradient together:
    /// `loss[i] = max(z,0) − z·t + log(1 + e^{−|z|})`, `grad[i] = grad_scale·(σ(z) − t)`.
    BceWithLogits {
        logits: Slice,
        targets: Slice,
        loss: Slice,
        grad: Slice,
        grad_scale: f32,
    },
    /// Softmax over `classes` and cross-entropy against a label per row (a class
    /// index stored as f32, so labels gather like any data row):
    /// `loss[i] = logsumexp(z_i) − z_i[y_i]`, `grad[i,c] = grad_scale·(softmax(z_i)_c − [c = y_i])`.
    SoftmaxCrossEntropy {
        logits: Slice,
        labels: Slice,
        loss: Slice,
        grad: Slice,
        classes: usize,
        grad_scale: f32,
    },
    /// `out[r] = Σ_c x[r,c]²`.
    RowSqNorm {
        x: Slice,
        out: Slice,
        rows: usize,
        cols: usize,
    },
    /// Parzen-window log-density of each test row under `samples` generated rows:
    /// `out[r] = log mean_j exp(−‖x_r − s_j‖²/(2σ²)) − (dim/2)·log(2πσ²)`, from
    /// `gram[r,j] = x_r·s_j` and the squared norms of both sides.
    ParzenLogDensity {
        gram: Slice,
        x_norms: Slice,
        s_norms: Slice,
        out: Slice,
        dim: usize,
        sigma: f32,
    },
    /// One Adam step (bias-corrected, decoupled weight decay) over a flat buffer.
    /// The step number is `step[0] + 1`. Without `arrivals` the op does not
    /// advance it; with `arrivals` (one u32 word, zero between launches, that
    /// the GPU kernel counts its finished workgroups in) it also advances
    /// `step[0]` by one, after every parameter has read it: what an
    /// [`Op::Increment`] of `step` after the op would do, in the same launch.
    Adam {
        params: Slice,
        grads: Slice,
        m: Slice,
        v: Slice,
        step: Slice,
        hyper: AdamHyper,
        arrivals: Option<Slice>,
    },
    /// Exponential moving average of a flat buffer:
    /// `avg[i] = beta·avg[i] + (1 − beta)·params[i]` (Polyak averaging of G).
    Ema {
        params: Slice,
        avg: Slice,
        beta: f32,
    },
    /// Standard normal numbers (Box–Muller on Philox output).
    RandomNormal { out: Slice, source: RandomSource },
    /// Uniform numbers in [0, 1).
    RandomUniform { out: Slice, source: RandomSource },
    /// Inverted dropout: `out[i] = x[i]·(1/keep)` where the op's uniform number
    /// `u_i` (as [`Op::RandomUniform`] would draw it) is below `keep`, else 0.
    /// Running it again with the same source on a gradient applies the same
    /// mask, so one op serves forward and backward.
    Dropout {
        x: Slice,
        out: Slice,
        keep: f32,
        source: RandomSource,
    },
    /// Uniform integers in [0, bound) (u32 output).
    RandomIndex {
        out: Slice,
        bound: u32,
        source: RandomSource,
    },
    /// `dst[r, :] = src[indices[r], :]`, each row `cols` wide.
    GatherRows {
        src: Slice,
        format: RowFormat,
        indices: Slice,
        dst: Slice,
        cols: usize,
    },
    /// `dst[i] = value`.
    Fill { dst: Slice, value: f32 },
    /// `counter[0] += 1` (u32).
    Increment { counter: Slice },
    /// A minibatch in one launch: exactly [`Op::RandomIndex`] into `indices`
    /// (from `source`), [`Op::GatherRows`] of those rows of `src` into `dst`
    /// (`cols` wide, read as `format`), and [`Op::RandomNormal`] into `noise`
    /// (stream `noise_stream` of the same seed and counter); with
    /// `more_noise = Some((out, source))`, also [`Op::RandomNormal`] into
    /// `out` (in `noise`'s buffer, after or before it) from its own source.
    DrawBatch {
        src: Slice,
        format: RowFormat,
        cols: usize,
        bound: u32,
        source: RandomSource,
        noise_stream: u32,
        indices: Slice,
        dst: Slice,
        noise: Slice,
        more_noise: Option<(Slice, RandomSource)>,
    },
    /// [`Op::BceWithLogits`] and its means in one launch (and, with `head`,
    /// the input gradient of the one-output layer that made the logits:
    /// [`LossHead`]):
    /// `stats[loss_slot] = loss_scale·(1/len)·Σ_i loss[i]` and, with
    /// `prob_means`, the mean of σ(z) over the rows before its split and over
    /// the rows from it on (as [`Op::ActivationForward`] with a sigmoid and
    /// [`Op::Mean`] would give them). Slots index into `stats`.
    BceMeans {
        logits: Slice,
        targets: Slice,
        loss: Slice,
        grad: Slice,
        grad_scale: f32,
        stats: Slice,
        loss_slot: usize,
        loss_scale: f32,
        prob_means: Option<ProbMeans>,
        head: Option<LossHead>,
    },
    /// A whole dense network forward in one launch: for each layer `l`,
    /// `a_l[r,j] = act_l(Σ_k a_{l−1}[r,k]·W_l[j,k] + b_l[j])` with `a_{−1} = x`,
    /// every `a_l` written to `outputs[l]` (rows × `layers[l].outputs`). The
    /// same numbers as one [`Op::MatmulBiasAct`] per layer; the hidden
    /// activations stay in workgroup memory between layers, so every hidden
    /// width must be at most [`MLP_FUSED_MAX_HIDDEN`] and there are at most
    /// [`MLP_FUSED_MAX_LAYERS`] layers.
    MlpForward {
        x: Slice,
        /// The network's flat parameter buffer; the layers' offsets are into it.
        params: Slice,
        layers: Vec<FusedLayer>,
        outputs: Vec<Slice>,
        rows: usize,
    },
}

/// The input gradient of a one-output layer, run by an [`Op::BceMeans`] on
/// its own gradient: exactly the [`Op::MatmulDx`] with `dy` = the loss's
/// `grad` (rows × 1), `w` (1 × `k`), `dx` (rows × `k`) and `act_grad`, i.e.
/// `dx[r, c] = grad[r]·w[c]` (times `act'(y[r, c])` with `act_grad`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LossHead {
    pub w: Slice,
    pub dx: Slice,
    pub k: usize,
    pub act_grad: Option<(Slice, Activation)>,
}

impl LossHead {
    /// The same product as one [`Op::MatmulDx`] from `grad`.
    pub fn op(&self, grad: Slice) -> Op {
        Op::MatmulDx {
            dy: grad,
            w: self.w,
            dx: self.dx,
            m: grad.len,
            n: 1,
            k: self.k,
            act_grad: self.act_grad,
        }
    }
}

/// `ops` with every [`Op::BceMeans`] that is followed by the input gradient
/// of the one-output layer that made its logits (an [`Op::MatmulDx`] from its
/// `grad` with `n = 1`) merged with it into one launch ([`LossHead`]): the
/// same numbers, one launch fewer.
pub fn fuse_loss_heads(ops: Vec<Op>) -> Vec<Op> {
    let mut out: Vec<Op> = Vec::with_capacity(ops.len());
    for op in ops {
        if let (
            Some(Op::BceMeans { grad, head, .. }),
            Op::MatmulDx {
                dy,
                w,
                dx,
                n: 1,
                k,
                act_grad,
                ..
            },
        ) = (out.last_mut(), &op)
            && head.is_none()
            && *dy == *grad
        {
            *head = Some(LossHead {
                w: *w,
                dx: *dx,
                k: *k,
                act_grad: *act_grad,
            });
            continue;
        }
        out.push(op);
    }
    out
}

/// `ops` with every [`Op::Adam`] that advances its counter merged into the
/// [`Op::MatmulDwGroup`] just before it, where that group writes exactly the
/// update's tensors (every weight and bias of the network, as for a
/// network of up to [`MATMUL_DW_GROUP_MAX`] small layers): Adam is
/// elementwise, so the workgroup that finishes a tile of gradients updates
/// those parameters at once. The same numbers, one launch fewer.
pub fn fuse_adam_into_weight_grads(ops: Vec<Op>) -> Vec<Op> {
    let mut out: Vec<Op> = Vec::with_capacity(ops.len());
    for op in ops {
        if let (
            Some(Op::MatmulDwGroup { parts, adam }),
            Op::Adam {
                params,
                grads,
                m,
                v,
                step,
                hyper,
                arrivals: Some(arrivals),
            },
        ) = (out.last_mut(), &op)
            && adam.is_none()
            && group_writes_exactly(parts, grads)
        {
            *adam = Some(AdamUpdate {
                params: *params,
                grads: *grads,
                m: *m,
                v: *v,
                step: *step,
                hyper: *hyper,
                arrivals: *arrivals,
            });
            continue;
        }
        out.push(op);
    }
    out
}

/// Whether the parts' `dw` and `db` cover every tensor of `grads`: all
/// inside it, disjoint, in order from its start, each next one starting
/// where the one before ends or at the next [`TENSOR_ALIGN_WORDS`] boundary
/// (relative to `grads`), and the last ending at its end or at that
/// boundary. What they leave out is then only alignment padding, whose
/// zeros an Adam step leaves at zero.
fn group_writes_exactly(parts: &[WeightGrad], grads: &Slice) -> bool {
    let mut outs: Vec<Slice> = parts
        .iter()
        .flat_map(|p| [Some(p.dw), p.db])
        .flatten()
        .collect();
    outs.sort_by_key(|s| s.offset);
    let mut at = 0;
    for s in &outs {
        if s.buffer != grads.buffer || s.offset < grads.offset {
            return false;
        }
        let start = s.offset - grads.offset;
        if start != at && start != align_words(at) {
            return false;
        }
        at = start + s.len;
    }
    at == grads.len || align_words(at) == grads.len
}

/// The Adam step an [`Op::MatmulDwGroup`] takes over the gradients it wrote:
/// the fields of an [`Op::Adam`] that advances its step counter.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdamUpdate {
    pub params: Slice,
    pub grads: Slice,
    pub m: Slice,
    pub v: Slice,
    pub step: Slice,
    pub hyper: AdamHyper,
    pub arrivals: Slice,
}

impl AdamUpdate {
    /// The reference of the update a group takes: one [`Op::Adam`] (at the
    /// same step, not advancing it) over each slice the parts wrote, then
    /// the counter advanced. The same numbers as [`AdamUpdate::op`] wherever
    /// the padding between those slices holds zeros (a network's does).
    pub fn over_parts(&self, parts: &[WeightGrad]) -> Vec<Op> {
        let written = parts.iter().flat_map(|p| [Some(p.dw), p.db]).flatten();
        let mut ops: Vec<Op> = written
            .map(|g| {
                let at = g.offset - self.grads.offset;
                Op::Adam {
                    params: self.params.sub(at, g.len),
                    grads: g,
                    m: self.m.sub(at, g.len),
                    v: self.v.sub(at, g.len),
                    step: self.step,
                    hyper: self.hyper,
                    arrivals: None,
                }
            })
            .collect();
        ops.push(Op::Increment { counter: self.step });
        ops
    }

    /// The same update as one [`Op::Adam`] over the whole of `grads`.
    pub fn op(&self) -> Op {
        Op::Adam {
            params: self.params,
            grads: self.grads,
            m: self.m,
            v: self.v,
            step: self.step,
            hyper: self.hyper,
            arrivals: Some(self.arrivals),
        }
    }
}

/// Where [`Op::BceMeans`] puts the mean of σ(z) over the first `split` rows
/// (`stats[first_slot]`) and over the others (`stats[second_slot]`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ProbMeans {
    pub split: usize,
    pub first_slot: usize,
    pub second_slot: usize,
}

impl Op {
    /// The kernel's name, as in the profile and the `explain` listing.
    pub fn kernel_name(&self) -> &'static str {
        match self {
            Op::MatmulBiasAct { .. } => "matmul_bias_act",
            Op::MatmulDx { .. } => "matmul_dx",
            Op::MatmulDw { .. } => "matmul_dw",
            Op::MatmulDwSplit { .. } => "matmul_dw_split",
            Op::MatmulDwGroup { adam: None, .. } => "matmul_dw_group",
            Op::MatmulDwGroup { adam: Some(_), .. } => "matmul_dw_group_adam",
            Op::BatchNorm { .. } => "batchnorm",
            Op::BatchNormEval { .. } => "batchnorm_eval",
            Op::BatchNormBackward { .. } => "batchnorm_backward",
            Op::Conv2d { .. } => "conv2d",
            Op::Conv2dInputGrad { .. } => "conv2d_input_grad",
            Op::Conv2dWeightGrad { .. } => "conv2d_weight_grad",
            Op::Conv2dWeightGradSplit { .. } => "conv2d_weight_grad_split",
            Op::SumSplits { .. } => "sum_splits",
            Op::ConvGemmSplit {
                gemm: ConvGemm::Forward,
                ..
            } => "conv2d_split",
            Op::ConvGemmSplit {
                gemm: ConvGemm::InputGrad,
                ..
            } => "conv2d_input_grad_split",
            Op::ConvSumSplits { .. } => "conv2d_sum_splits",
            Op::ActivationForward { .. } => "activation_forward",
            Op::ActivationBackward { .. } => "activation_backward",
            Op::ColumnSum { .. } => "column_sum",
            Op::Mean { .. } => "mean",
            Op::BceWithLogits { .. } => "bce_with_logits",
            Op::SoftmaxCrossEntropy { .. } => "softmax_cross_entropy",
            Op::RowSqNorm { .. } => "row_sq_norm",
            Op::ParzenLogDensity { .. } => "parzen_log_density",
            Op::Adam { .. } => "adam",
            Op::Ema { .. } => "ema",
            Op::RandomNormal { .. } => "random_normal",
            Op::RandomUniform { .. } => "random_uniform",
            Op::RandomIndex { .. } => "random_index",
            Op::Dropout { .. } => "dropout",
            Op::GatherRows { .. } => "gather_rows",
            Op::Fill { .. } => "fill",
            Op::Increment { .. } => "increment",
            Op::DrawBatch { .. } => "draw_batch",
            Op::BceMeans { .. } => "bce_means",
            Op::MlpForward { .. } => "mlp_forward",
        }
    }

    /// Slices the op reads and slices it writes.
    pub fn reads_writes(&self) -> (Vec<Slice>, Vec<Slice>) {
        match *self {
            Op::MatmulBiasAct { x, w, b, y, .. } => {
                let mut r = vec![x, w];
                r.extend(b);
                (r, vec![y])
            }
            Op::MatmulDx {
                dy,
                w,
                dx,
                act_grad,
                ..
            } => {
                let mut r = vec![dy, w];
                r.extend(act_grad.map(|(y, _)| y));
                (r, vec![dx])
            }
            Op::MatmulDwSplit {
                dy, x, partials, ..
            } => (vec![dy, x], vec![partials]),
            Op::MatmulDw { dy, x, dw, db, .. } => {
                let mut wr = vec![dw];
                wr.extend(db);
                (vec![dy, x], wr)
            }
            Op::MatmulDwGroup {
                ref parts,
                ref adam,
            } => {
                let reads = parts.iter().flat_map(|p| [p.dy, p.x]).collect();
                let writes = parts.iter().flat_map(|p| [Some(p.dw), p.db]);
                let mut writes: Vec<Slice> = writes.flatten().collect();
                if let Some(u) = adam {
                    writes.extend([u.params, u.m, u.v, u.step, u.arrivals]);
                }
                (reads, writes)
            }
            Op::Conv2d {
                x, w, y, epilogue, ..
            } => (
                [Some(x), Some(w), epilogue.reads()]
                    .into_iter()
                    .flatten()
                    .collect(),
                vec![y],
            ),
            Op::Conv2dInputGrad {
                dy,
                w,
                dx,
                epilogue,
                ..
            } => (
                [Some(dy), Some(w), epilogue.reads()]
                    .into_iter()
                    .flatten()
                    .collect(),
                vec![dx],
            ),
            Op::Conv2dWeightGrad { dy, x, dw, db, .. } => {
                (vec![dy, x], [Some(dw), db].into_iter().flatten().collect())
            }
            Op::Conv2dWeightGradSplit {
                dy, x, partials, ..
            } => (vec![dy, x], vec![partials]),
            Op::SumSplits { partials, out, .. } => (vec![partials], vec![out]),
            Op::ConvGemmSplit { a, w, partials, .. } => (vec![a, w], vec![partials]),
            Op::ConvSumSplits {
                partials,
                out,
                epilogue,
                ..
            } => (
                [Some(partials), epilogue.reads()]
                    .into_iter()
                    .flatten()
                    .collect(),
                vec![out],
            ),
            Op::BatchNorm {
                x,
                gamma,
                beta,
                y,
                saved,
                running,
                ..
            } => {
                let mut writes = vec![y, saved];
                if let Some(r) = running {
                    writes.extend([r.mean, r.var, r.batches]);
                }
                (vec![x, gamma, beta], writes)
            }
            Op::BatchNormEval {
                x,
                gamma,
                beta,
                mean,
                var,
                y,
                ..
            } => (vec![x, gamma, beta, mean, var], vec![y]),
            Op::BatchNormBackward {
                dy,
                x,
                gamma,
                saved,
                dx,
                dgamma,
                dbeta,
                act_grad,
                ..
            } => {
                let mut reads = vec![dy, x, gamma, saved];
                reads.extend(act_grad.map(|(y, _)| y));
                (reads, vec![dx, dgamma, dbeta])
            }
            Op::ActivationForward { x, y, .. } => (vec![x], vec![y]),
            Op::ActivationBackward { y, dy, dx, .. } => (vec![y, dy], vec![dx]),
            Op::ColumnSum { x, out, .. } => (vec![x], vec![out]),
            Op::Mean { x, out, .. } => (vec![x], vec![out]),
            Op::BceWithLogits {
                logits,
                targets,
                loss,
                grad,
                ..
            } => (vec![logits, targets], vec![loss, grad]),
            Op::SoftmaxCrossEntropy {
                logits,
                labels,
                loss,
                grad,
                ..
            } => (vec![logits, labels], vec![loss, grad]),
            Op::RowSqNorm { x, out, .. } => (vec![x], vec![out]),
            Op::ParzenLogDensity {
                gram,
                x_norms,
                s_norms,
                out,
                ..
            } => (vec![gram, x_norms, s_norms], vec![out]),
            Op::Adam {
                params,
                grads,
                m,
                v,
                step,
                arrivals: None,
                ..
            } => (vec![grads, step], vec![params, m, v]),
            Op::Adam {
                params,
                grads,
                m,
                v,
                step,
                arrivals: Some(arrivals),
                ..
            } => (vec![grads], vec![params, m, v, step, arrivals]),
            Op::Ema { params, avg, .. } => (vec![params], vec![avg]),
            Op::RandomNormal { out, source } | Op::RandomUniform { out, source } => {
                (vec![source.counter], vec![out])
            }
            Op::RandomIndex { out, source, .. } => (vec![source.counter], vec![out]),
            Op::Dropout { x, out, source, .. } => (vec![x, source.counter], vec![out]),
            Op::GatherRows {
                src, indices, dst, ..
            } => (vec![src, indices], vec![dst]),
            Op::Fill { dst, .. } => (vec![], vec![dst]),
            Op::Increment { counter } => (vec![], vec![counter]),
            Op::DrawBatch {
                src,
                source,
                indices,
                dst,
                noise,
                more_noise,
                ..
            } => {
                let mut reads = vec![src, source.counter];
                let mut writes = vec![indices, dst, noise];
                if let Some((out, more)) = more_noise {
                    reads.push(more.counter);
                    writes.push(out);
                }
                (reads, writes)
            }
            Op::BceMeans {
                logits,
                targets,
                loss,
                grad,
                stats,
                head,
                ..
            } => {
                let mut reads = vec![logits, targets];
                let mut writes = vec![loss, grad, stats];
                if let Some(h) = head {
                    reads.push(h.w);
                    reads.extend(h.act_grad.map(|(y, _)| y));
                    writes.push(h.dx);
                }
                (reads, writes)
            }
            Op::MlpForward {
                x,
                params,
                ref outputs,
                ..
            } => (vec![x, params], outputs.clone()),
        }
    }

    /// Checks that the op's shapes agree with its slices.
    fn check_shapes(&self) -> Result<(), String> {
        let need = |what: &str, s: &Slice, len: usize| {
            if s.len == len {
                Ok(())
            } else {
                Err(format!("{what} has {} elements, expected {len}", s.len))
            }
        };
        match self {
            Op::MatmulBiasAct {
                x,
                w,
                b,
                y,
                m,
                n,
                k,
                ..
            } => {
                need("x", x, m * k)?;
                need("w", w, n * k)?;
                if let Some(b) = b {
                    need("b", b, *n)?;
                }
                need("y", y, m * n)
            }
            Op::MatmulDx {
                dy,
                w,
                dx,
                m,
                n,
                k,
                act_grad,
            } => {
                need("dy", dy, m * n)?;
                need("w", w, n * k)?;
                if let Some((y, _)) = act_grad {
                    need("act_grad's y", y, m * k)?;
                }
                need("dx", dx, m * k)
            }
            Op::MatmulDw {
                dy,
                x,
                dw,
                m,
                n,
                k,
                db,
            } => {
                need("dy", dy, m * n)?;
                need("x", x, m * k)?;
                if let Some(db) = db {
                    need("db", db, *n)?;
                    if db.buffer != dw.buffer {
                        return Err("db must lie in dw's buffer".into());
                    }
                }
                need("dw", dw, n * k)
            }
            Op::MatmulDwSplit {
                dy,
                x,
                partials,
                m,
                n,
                k,
                splits,
                with_db,
            } => {
                need("dy", dy, m * n)?;
                need("x", x, m * k)?;
                if *splits == 0 {
                    return Err("0 splits".into());
                }
                let per = n * k + if *with_db { *n } else { 0 };
                need("partials", partials, splits * per)
            }
            Op::MatmulDwGroup { parts, adam } => {
                check_dw_group(parts)?;
                adam.as_ref().map_or(Ok(()), |u| check_group_adam(parts, u))
            }
            Op::Conv2d {
                x,
                w,
                y,
                geom,
                epilogue,
            } => {
                geom.check()?;
                need("x", x, geom.x_len())?;
                need("w", w, geom.w_len())?;
                need("y", y, geom.y_len())?;
                epilogue.check(geom.y_len(), geom.out_ch)
            }
            Op::Conv2dInputGrad {
                dy,
                w,
                dx,
                geom,
                epilogue,
            } => {
                geom.check()?;
                need("dy", dy, geom.y_len())?;
                need("w", w, geom.w_len())?;
                need("dx", dx, geom.x_len())?;
                epilogue.check(geom.x_len(), geom.in_ch)
            }
            Op::Conv2dWeightGrad {
                dy,
                x,
                dw,
                db,
                geom,
            } => {
                geom.check()?;
                need("dy", dy, geom.y_len())?;
                need("x", x, geom.x_len())?;
                if let Some(db) = db {
                    need("db", db, geom.out_ch)?;
                    if db.buffer != dw.buffer {
                        return Err("db must lie in dw's buffer".into());
                    }
                }
                need("dw", dw, geom.w_len())
            }
            Op::Conv2dWeightGradSplit {
                dy,
                x,
                partials,
                splits,
                with_db,
                geom,
            } => {
                geom.check()?;
                need("dy", dy, geom.y_len())?;
                need("x", x, geom.x_len())?;
                if *splits == 0 {
                    return Err("0 splits".into());
                }
                let per = geom.w_len() + if *with_db { geom.out_ch } else { 0 };
                need("partials", partials, splits * per)
            }
            Op::SumSplits {
                partials,
                out,
                splits,
            } => {
                if *splits == 0 {
                    return Err("0 splits".into());
                }
                need("partials", partials, splits * out.len)
            }
            Op::ConvGemmSplit {
                gemm,
                a,
                w,
                partials,
                splits,
                geom,
            } => {
                geom.check()?;
                let (a_len, out_len) = gemm.lens(geom);
                need("a", a, a_len)?;
                need("w", w, geom.w_len())?;
                if *splits == 0 {
                    return Err("0 splits".into());
                }
                need("partials", partials, splits * out_len)
            }
            Op::ConvSumSplits {
                gemm,
                partials,
                out,
                splits,
                geom,
                epilogue,
            } => {
                geom.check()?;
                let (_, out_len) = gemm.lens(geom);
                if *splits == 0 {
                    return Err("0 splits".into());
                }
                need("partials", partials, splits * out_len)?;
                need("out", out, out_len)?;
                epilogue.check(out_len, gemm.channels(geom))
            }
            Op::BatchNorm {
                x,
                gamma,
                beta,
                y,
                saved,
                running,
                shape,
                ..
            } => {
                shape.check()?;
                if shape.per_channel() < 2 {
                    return Err(
                        "training-mode batch norm needs more than one value per channel".into(),
                    );
                }
                for (name, s, len) in [
                    ("x", x, shape.len()),
                    ("y", y, shape.len()),
                    ("gamma", gamma, shape.channels),
                    ("beta", beta, shape.channels),
                    ("saved", saved, 2 * shape.channels),
                ] {
                    need(name, s, len)?;
                }
                if let Some(r) = running {
                    need("running mean", &r.mean, shape.channels)?;
                    need("running var", &r.var, shape.channels)?;
                    need("batches", &r.batches, 1)?;
                }
                Ok(())
            }
            Op::BatchNormEval {
                x,
                gamma,
                beta,
                mean,
                var,
                y,
                shape,
                ..
            } => {
                shape.check()?;
                for (name, s, len) in [
                    ("x", x, shape.len()),
                    ("y", y, shape.len()),
                    ("gamma", gamma, shape.channels),
                    ("beta", beta, shape.channels),
                    ("mean", mean, shape.channels),
                    ("var", var, shape.channels),
                ] {
                    need(name, s, len)?;
                }
                Ok(())
            }
            Op::BatchNormBackward {
                dy,
                x,
                gamma,
                saved,
                dx,
                dgamma,
                dbeta,
                shape,
                act_grad,
            } => {
                shape.check()?;
                for (name, s, len) in [
                    ("dy", dy, shape.len()),
                    ("x", x, shape.len()),
                    ("dx", dx, shape.len()),
                    ("gamma", gamma, shape.channels),
                    ("saved", saved, 2 * shape.channels),
                    ("dgamma", dgamma, shape.channels),
                    ("dbeta", dbeta, shape.channels),
                ] {
                    need(name, s, len)?;
                }
                if let Some((y, _)) = act_grad {
                    need("y", y, shape.len())?;
                }
                if dgamma.buffer != dbeta.buffer {
                    return Err("dgamma and dbeta must lie in one buffer".into());
                }
                Ok(())
            }
            Op::ActivationForward { x, y, .. } => need("y", y, x.len),
            Op::ActivationBackward { y, dy, dx, .. } => {
                need("dy", dy, y.len)?;
                need("dx", dx, y.len)
            }
            Op::ColumnSum {
                x, out, rows, cols, ..
            } => {
                need("x", x, rows * cols)?;
                need("out", out, *cols)
            }
            Op::Mean { out, .. } => need("out", out, 1),
            Op::BceWithLogits {
                logits,
                targets,
                loss,
                grad,
                ..
            } => {
                need("targets", targets, logits.len)?;
                need("loss", loss, logits.len)?;
                need("grad", grad, logits.len)
            }
            Op::SoftmaxCrossEntropy {
                logits,
                labels,
                loss,
                grad,
                classes,
                ..
            } => {
                if *classes == 0 {
                    return Err("zero classes".into());
                }
                need("logits", logits, labels.len * classes)?;
                need("loss", loss, labels.len)?;
                need("grad", grad, logits.len)
            }
            Op::RowSqNorm { x, out, rows, cols } => {
                need("x", x, rows * cols)?;
                need("out", out, *rows)
            }
            Op::ParzenLogDensity {
                gram,
                x_norms,
                s_norms,
                out,
                sigma,
                ..
            } => {
                if sigma.is_nan() || *sigma <= 0.0 {
                    return Err(format!("bandwidth {sigma} is not positive"));
                }
                need("gram", gram, x_norms.len * s_norms.len)?;
                need("out", out, x_norms.len)
            }
            Op::Adam {
                params,
                grads,
                m,
                v,
                step,
                arrivals,
                ..
            } => {
                need("grads", grads, params.len)?;
                need("m", m, params.len)?;
                need("v", v, params.len)?;
                if let Some(a) = arrivals {
                    need("arrivals", a, 1)?;
                }
                need("step", step, 1)
            }
            Op::Ema { params, avg, beta } => {
                if !(beta.is_finite() && (0.0..1.0).contains(beta)) {
                    return Err(format!("average decay {beta} is not in [0, 1)"));
                }
                need("avg", avg, params.len)
            }
            Op::RandomNormal { source, .. } | Op::RandomUniform { source, .. } => {
                need("counter", &source.counter, 1)
            }
            Op::RandomIndex { source, bound, .. } => {
                if *bound == 0 {
                    return Err("random index bound is zero".into());
                }
                need("counter", &source.counter, 1)
            }
            Op::Dropout {
                x,
                out,
                keep,
                source,
            } => {
                if !(*keep > 0.0 && *keep <= 1.0) {
                    return Err(format!("dropout keep probability {keep} is not in (0, 1]"));
                }
                need("out", out, x.len)?;
                need("counter", &source.counter, 1)
            }
            Op::GatherRows {
                indices, dst, cols, ..
            } => need("dst", dst, indices.len * cols),
            Op::Fill { .. } => Ok(()),
            Op::Increment { counter } => need("counter", counter, 1),
            Op::DrawBatch {
                src,
                format,
                cols,
                bound,
                source,
                indices,
                dst,
                noise,
                more_noise,
                ..
            } => {
                if *bound == 0 {
                    return Err("random index bound is zero".into());
                }
                need("counter", &source.counter, 1)?;
                need("dst", dst, indices.len * cols)?;
                // Every index below `bound` must name a whole row of `src`.
                let per_word = if matches!(format, RowFormat::F32) {
                    1
                } else {
                    4
                };
                if *bound as usize * cols > src.len * per_word {
                    return Err(format!("{bound} rows of {cols} do not fit in src"));
                }
                match more_noise {
                    Some((out, _)) if out.buffer != noise.buffer => {
                        Err("more_noise must lie in noise's buffer".into())
                    }
                    Some((_, more)) => need("more_noise's counter", &more.counter, 1),
                    None => Ok(()),
                }
            }
            Op::BceMeans {
                logits,
                targets,
                loss,
                grad,
                stats,
                loss_slot,
                prob_means,
                head,
                ..
            } => {
                need("targets", targets, logits.len)?;
                need("loss", loss, logits.len)?;
                need("grad", grad, logits.len)?;
                if let Some(h) = head {
                    h.op(*grad)
                        .check_shapes()
                        .map_err(|e| format!("head: {e}"))?;
                }
                check_bce_slots(stats, *loss_slot, prob_means, logits.len)
            }
            Op::MlpForward {
                x,
                params,
                layers,
                outputs,
                rows,
            } => check_fused_mlp(x, params, layers, outputs, *rows),
        }
    }
}

/// Checks that [`Op::BceMeans`]'s slots lie in `stats` and its split in the rows.
fn check_bce_slots(
    stats: &Slice,
    loss_slot: usize,
    prob_means: &Option<ProbMeans>,
    rows: usize,
) -> Result<(), String> {
    let mut slots = vec![loss_slot];
    if let Some(p) = prob_means {
        if p.split > rows {
            return Err(format!("split {} is past the {rows} rows", p.split));
        }
        slots.extend([p.first_slot, p.second_slot]);
    }
    match slots.iter().find(|&&s| s >= stats.len) {
        Some(s) => Err(format!("stat slot {s} is outside the {} stats", stats.len)),
        None => Ok(()),
    }
}

/// The most parts an [`Op::MatmulDwGroup`] takes: each adds two storage
/// bindings (its `dy` and `x`) to the shared output, and 7 of WebGPU's default
/// 8 per stage leaves room for none more.
pub const MATMUL_DW_GROUP_MAX: usize = 3;

/// One product of an [`Op::MatmulDwGroup`]: `dw[n,k] = Σ_m dy[m,n]·x[m,k]`
/// and, with `db`, `db[n] = Σ_m dy[m,n]`, as [`Op::MatmulDw`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct WeightGrad {
    pub dy: Slice,
    pub x: Slice,
    pub dw: Slice,
    pub m: usize,
    pub n: usize,
    pub k: usize,
    pub db: Option<Slice>,
}

impl WeightGrad {
    /// The product as the GPU runs it best: one [`Op::MatmulDw`], or where
    /// [`matmul_dw_splits`] splits it and `partials` (`splits·(n·k + n)`
    /// values or more) is given, an [`Op::MatmulDwSplit`] and the
    /// [`Op::SumSplits`] of dw (and db).
    pub fn split_ops(&self, partials: Option<Slice>) -> Vec<Op> {
        let (m, n, k) = (self.m, self.n, self.k);
        let splits = matmul_dw_splits(m, n, k);
        let Some(partials) = partials.filter(|_| splits > 1) else {
            return vec![self.op()];
        };
        let with_db = self.db.is_some();
        let partials = partials.sub(0, splits * (n * k + if with_db { n } else { 0 }));
        let split = Op::MatmulDwSplit {
            dy: self.dy,
            x: self.x,
            partials,
            m,
            n,
            k,
            splits,
            with_db,
        };
        let mut ops = vec![split];
        ops.extend(sum_weight_splits(partials, splits, self.dw, self.db));
        ops
    }

    /// The partial sums [`WeightGrad::split_ops`] needs for `rows` rows of
    /// an `n`-output, `k`-input layer (0: it does not split).
    pub fn partials_len(rows: usize, n: usize, k: usize) -> usize {
        match matmul_dw_splits(rows, n, k) {
            1 => 0,
            s => s * (n * k + n),
        }
    }

    /// The same product as one [`Op::MatmulDw`].
    pub fn op(&self) -> Op {
        Op::MatmulDw {
            dy: self.dy,
            x: self.x,
            dw: self.dw,
            m: self.m,
            n: self.n,
            k: self.k,
            db: self.db,
        }
    }
}

/// The [`Op::SumSplits`] that add up a split weight gradient's partials
/// (`splits` of dw's length from the start of `partials`, then with `db`
/// `splits` of db's length) into `dw` and `db`: the second half of a
/// [`Op::MatmulDwSplit`] or an [`Op::Conv2dWeightGradSplit`].
pub fn sum_weight_splits(partials: Slice, splits: usize, dw: Slice, db: Option<Slice>) -> Vec<Op> {
    let weights = splits * dw.len;
    let mut ops = vec![Op::SumSplits {
        partials: partials.sub(0, weights),
        out: dw,
        splits,
    }];
    if let Some(db) = db {
        ops.push(Op::SumSplits {
            partials: partials.sub(weights, splits * db.len),
            out: db,
            splits,
        });
    }
    ops
}

/// Whether an `m`×`n` matmul output is small enough for the small-output
/// kernel (`matmul_bias_act_small`): 64-tiles would give fewer workgroups
/// than an H100 or H200 has SMs. The lowering picks kernels by it, and
/// `nn::mlp` groups weight gradients that all pass it.
pub fn small_matmul_output(m: usize, n: usize) -> bool {
    m.div_ceil(64) * n.div_ceil(64) < 132
}

/// The checks of [`Op::MatmulDwGroup`]: 1 to [`MATMUL_DW_GROUP_MAX`] parts,
/// each a valid [`Op::MatmulDw`], every output in the first part's buffer.
fn check_dw_group(parts: &[WeightGrad]) -> Result<(), String> {
    if parts.is_empty() || parts.len() > MATMUL_DW_GROUP_MAX {
        return Err(format!(
            "{} parts; a weight-gradient group takes 1 to {MATMUL_DW_GROUP_MAX}",
            parts.len()
        ));
    }
    for (i, part) in parts.iter().enumerate() {
        part.op()
            .check_shapes()
            .map_err(|e| format!("part {i}: {e}"))?;
        if part.dw.buffer != parts[0].dw.buffer {
            return Err(format!("part {i}: dw is not in part 0's buffer"));
        }
    }
    Ok(())
}

/// The checks of a group's Adam step: a valid [`Op::Adam`] whose gradients
/// are exactly what the parts write.
fn check_group_adam(parts: &[WeightGrad], u: &AdamUpdate) -> Result<(), String> {
    u.op().check_shapes().map_err(|e| format!("adam: {e}"))?;
    if !group_writes_exactly(parts, &u.grads) {
        return Err("adam: the parts' dw and db do not cover every tensor of its grads".into());
    }
    Ok(())
}

/// The widest hidden layer [`Op::MlpForward`] takes: a workgroup keeps
/// [`MLP_FUSED_ROWS`] rows of this many activations as the next layer's input.
/// With the partial sums, `mlp_forward.wgsl` uses 24 KiB of workgroup memory
/// (more than WebGPU's default 16 KiB; the device is requested with the
/// adapter's own limits, 32 KiB or more on the adapters it runs on).
pub const MLP_FUSED_MAX_HIDDEN: usize = 256;
/// Rows of the batch each workgroup of `mlp_forward.wgsl` owns.
pub const MLP_FUSED_ROWS: usize = 8;
/// The fewest rows `nn::mlp::forward` fuses. Each workgroup walks every layer
/// for its 8 rows one after another, so a small batch keeps a few SMs busy
/// for the whole network's latency while per-layer launches of
/// `matmul_bias_act_small` spread over the card. Measured on an H200 (Vulkan,
/// 2026-12-01, `bench --only step`): the seed step fused everywhere ran at
/// 3,240 / 2,888 / 1,889 steps/s at batch 64 / 256 / 1024, per layer at
/// 5,334 / 3,985 / 1,780; the fused forward took about 55 µs per network
/// whatever the rows.
pub const MLP_FUSED_MIN_ROWS: usize = 1024;
/// The most layers [`Op::MlpForward`] takes: x, the parameters and one output
/// per layer are 8 storage bindings, WebGPU's default per-stage limit.
pub const MLP_FUSED_MAX_LAYERS: usize = 6;

/// One dense layer of an [`Op::MlpForward`]: `W[outputs, inputs]` at word
/// `weight` of the parameter buffer, `b[outputs]` at word `bias`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FusedLayer {
    pub inputs: usize,
    pub outputs: usize,
    pub act: Activation,
    pub weight: usize,
    pub bias: usize,
}

/// The shape checks of [`Op::MlpForward`]: a chain of layers that fits the
/// kernel, parameters inside `params`, and one output of the right size per layer.
fn check_fused_mlp(
    x: &Slice,
    params: &Slice,
    layers: &[FusedLayer],
    outputs: &[Slice],
    rows: usize,
) -> Result<(), String> {
    if layers.is_empty() || layers.len() > MLP_FUSED_MAX_LAYERS {
        return Err(format!(
            "{} layers; the fused forward takes 1 to {MLP_FUSED_MAX_LAYERS}",
            layers.len()
        ));
    }
    if outputs.len() != layers.len() {
        return Err(format!(
            "{} outputs for {} layers",
            outputs.len(),
            layers.len()
        ));
    }
    if x.len != rows * layers[0].inputs {
        return Err(format!(
            "x has {} elements, expected {}",
            x.len,
            rows * layers[0].inputs
        ));
    }
    let last = layers.len() - 1;
    for (l, (layer, out)) in layers.iter().zip(outputs).enumerate() {
        if l > 0 && layer.inputs != layers[l - 1].outputs {
            return Err(format!(
                "layer {l} takes {} inputs but layer {} gives {}",
                layer.inputs,
                l - 1,
                layers[l - 1].outputs
            ));
        }
        if l < last && layer.outputs > MLP_FUSED_MAX_HIDDEN {
            return Err(format!(
                "hidden layer {l} is {} wide; the fused forward keeps at most {MLP_FUSED_MAX_HIDDEN}",
                layer.outputs
            ));
        }
        let inside = |at: usize, len: usize| at + len <= params.len;
        if !inside(layer.weight, layer.inputs * layer.outputs) || !inside(layer.bias, layer.outputs)
        {
            return Err(format!("layer {l}'s parameters lie outside params"));
        }
        if out.len != rows * layer.outputs {
            return Err(format!(
                "output {l} has {} elements, expected {}",
                out.len,
                rows * layer.outputs
            ));
        }
    }
    Ok(())
}

/// A named list of ops: one D update, one G update, one sampling pass...
#[derive(Clone, Debug)]
pub struct Phase {
    pub name: String,
    pub ops: Vec<Op>,
}

/// Buffers plus the phases that run over them.
#[derive(Clone, Debug, Default)]
pub struct Plan {
    pub buffers: Vec<BufferDecl>,
    pub phases: Vec<Phase>,
    /// How many independent seeds the plan holds (0 or 1: one; see
    /// [`batch_seeds`]): each phase's ops come in groups of this many, op i
    /// of every seed, which a GPU runs as one launch.
    pub seeds: usize,
}

#[derive(Debug, thiserror::Error)]
#[error("invalid plan: {0}")]
pub struct PlanError(pub String);

impl Plan {
    /// Declares a buffer and returns a slice over all of it.
    pub fn buffer(&mut self, name: &str, elem: Elem, len: usize, init: Init) -> Slice {
        let id = BufferId(self.buffers.len());
        self.buffers.push(BufferDecl {
            name: name.to_string(),
            elem,
            len,
            init,
        });
        Slice {
            buffer: id,
            offset: 0,
            len,
        }
    }

    /// A zero-initialised f32 buffer.
    pub fn f32_buffer(&mut self, name: &str, len: usize) -> Slice {
        self.buffer(name, Elem::F32, len, Init::Zeros)
    }

    pub fn add_phase(&mut self, name: &str, ops: Vec<Op>) {
        self.phases.push(Phase {
            name: name.to_string(),
            ops,
        });
    }

    pub fn phase(&self, name: &str) -> Option<&Phase> {
        self.phases.iter().find(|p| p.name == name)
    }

    pub fn find_buffer(&self, name: &str) -> Option<Slice> {
        self.buffers
            .iter()
            .position(|b| b.name == name)
            .map(|i| Slice {
                buffer: BufferId(i),
                offset: 0,
                len: self.buffers[i].len,
            })
    }

    pub fn decl(&self, id: BufferId) -> &BufferDecl {
        &self.buffers[id.0]
    }

    /// How many seeds the plan holds (at least 1).
    pub fn seed_count(&self) -> usize {
        self.seeds.max(1)
    }

    /// Checks every op: slices inside their buffers, the right element types,
    /// shapes that agree, and no buffer both read and written by one op
    /// (a GPU binding cannot be both).
    pub fn validate(&self) -> Result<(), PlanError> {
        for (i, b) in self.buffers.iter().enumerate() {
            if u32::try_from(b.len).is_err() {
                return Err(PlanError(format!(
                    "buffer {i} '{}' has {} elements, more than 2^32",
                    b.name, b.len
                )));
            }
            let init_len = match &b.init {
                Init::Zeros => b.len,
                Init::F32(v) => v.len(),
                Init::U32(v) => v.len(),
            };
            if init_len != b.len {
                return Err(PlanError(format!(
                    "buffer {i} '{}' has {} elements but {init_len} initial values",
                    b.name, b.len
                )));
            }
        }
        for phase in &self.phases {
            if !phase.ops.len().is_multiple_of(self.seed_count()) {
                return Err(PlanError(format!(
                    "phase '{}' has {} ops, not whole groups of {} seeds",
                    phase.name,
                    phase.ops.len(),
                    self.seed_count()
                )));
            }
            for (i, op) in phase.ops.iter().enumerate() {
                let at = || format!("phase '{}', op {i} ({})", phase.name, op.kernel_name());
                op.check_shapes()
                    .map_err(|e| PlanError(format!("{}: {e}", at())))?;
                let (reads, writes) = op.reads_writes();
                for s in reads.iter().chain(&writes) {
                    let decl = self.buffers.get(s.buffer.0).ok_or_else(|| {
                        PlanError(format!("{}: unknown buffer {:?}", at(), s.buffer))
                    })?;
                    if s.offset + s.len > decl.len {
                        return Err(PlanError(format!(
                            "{}: slice [{}, {}) is outside buffer '{}' of {} elements",
                            at(),
                            s.offset,
                            s.offset + s.len,
                            decl.name,
                            decl.len
                        )));
                    }
                }
                // Outputs share a buffer only where one binding writes them all
                // (MatmulDw's dw and db, every part's of a MatmulDwGroup, both
                // noises of a DrawBatch), and then never overlap.
                let one_binding = matches!(
                    op,
                    Op::MatmulDw { .. }
                        | Op::MatmulDwGroup { .. }
                        | Op::Conv2dWeightGrad { .. }
                        | Op::BatchNormBackward { .. }
                        | Op::DrawBatch { .. }
                );
                let clash = |o: &Slice, w: &Slice| {
                    let overlap = o.offset < w.offset + w.len && w.offset < o.offset + o.len;
                    o.buffer == w.buffer && (!one_binding || overlap)
                };
                for (j, w) in writes.iter().enumerate() {
                    if writes[..j].iter().any(|o| clash(o, w)) {
                        return Err(PlanError(format!(
                            "{}: two outputs in buffer '{}'",
                            at(),
                            self.decl(w.buffer).name
                        )));
                    }
                    if reads.iter().any(|r| r.buffer == w.buffer) {
                        return Err(PlanError(format!(
                            "{}: buffer '{}' is both read and written",
                            at(),
                            self.decl(w.buffer).name
                        )));
                    }
                }
                for (s, want) in op_elem_types(op) {
                    if self.decl(s.buffer).elem != want {
                        return Err(PlanError(format!(
                            "{}: buffer '{}' should hold {want:?}",
                            at(),
                            self.decl(s.buffer).name
                        )));
                    }
                }
            }
        }
        Ok(())
    }
}

/// The slices of an op whose element type is fixed (others are f32 unless listed).
fn op_elem_types(op: &Op) -> Vec<(Slice, Elem)> {
    let (reads, writes) = op.reads_writes();
    let u32_slices: Vec<Slice> = match op {
        Op::Adam { step, arrivals, .. } => [Some(*step), *arrivals].into_iter().flatten().collect(),
        Op::MatmulDwGroup { adam: Some(u), .. } => vec![u.step, u.arrivals],
        Op::BatchNorm {
            running: Some(r), ..
        } => vec![r.batches],
        Op::RandomNormal { source, .. } | Op::RandomUniform { source, .. } => {
            vec![source.counter]
        }
        Op::RandomIndex { out, source, .. } => vec![*out, source.counter],
        Op::Dropout { source, .. } => vec![source.counter],
        Op::GatherRows {
            src,
            format,
            indices,
            ..
        } => match format {
            RowFormat::F32 => vec![*indices],
            RowFormat::U8 { .. } => vec![*src, *indices],
        },
        Op::Increment { counter } => vec![*counter],
        Op::DrawBatch {
            src,
            format,
            source,
            indices,
            more_noise,
            ..
        } => {
            let mut v = match format {
                RowFormat::F32 => vec![*indices, source.counter],
                RowFormat::U8 { .. } => vec![*src, *indices, source.counter],
            };
            v.extend(more_noise.map(|(_, more)| more.counter));
            v
        }
        _ => vec![],
    };
    reads
        .into_iter()
        .chain(writes)
        .map(|s| {
            let elem = if u32_slices.contains(&s) {
                Elem::U32
            } else {
                Elem::F32
            };
            (s, elem)
        })
        .collect()
}

impl fmt::Display for Slice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "#{}[{}..{}]",
            self.buffer.0,
            self.offset,
            self.offset + self.len
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn two_buffers() -> (Plan, Slice, Slice) {
        let mut plan = Plan::default();
        let a = plan.f32_buffer("a", 10);
        let b = plan.f32_buffer("b", 10);
        (plan, a, b)
    }

    #[test]
    fn a_valid_plan_passes() {
        let (mut plan, a, b) = two_buffers();
        plan.add_phase(
            "p",
            vec![Op::ActivationForward {
                x: a,
                y: b,
                act: Activation::Relu,
            }],
        );
        plan.validate().unwrap();
    }

    #[test]
    fn reading_and_writing_one_buffer_is_refused() {
        let (mut plan, a, _) = two_buffers();
        plan.add_phase(
            "p",
            vec![Op::ActivationForward {
                x: a.sub(0, 5),
                y: a.sub(5, 5),
                act: Activation::Relu,
            }],
        );
        let e = plan.validate().unwrap_err().to_string();
        assert!(e.contains("both read and written"), "{e}");
    }

    #[test]
    fn slices_outside_their_buffer_are_refused() {
        let (mut plan, a, b) = two_buffers();
        let outside = Slice {
            offset: 8,
            len: 4,
            ..a
        };
        plan.add_phase(
            "p",
            vec![Op::ActivationForward {
                x: outside,
                y: b.sub(0, 4),
                act: Activation::Relu,
            }],
        );
        let e = plan.validate().unwrap_err().to_string();
        assert!(e.contains("outside buffer 'a'"), "{e}");
    }

    #[test]
    fn mismatched_shapes_and_types_are_refused() {
        let (mut plan, a, b) = two_buffers();
        plan.add_phase(
            "p",
            vec![Op::MatmulBiasAct {
                x: a,
                w: a,
                b: None,
                y: b,
                m: 3,
                n: 3,
                k: 3,
                act: Activation::Identity,
            }],
        );
        let e = plan.validate().unwrap_err().to_string();
        assert!(e.contains("x has 10 elements, expected 9"), "{e}");

        let (mut plan, a, _) = two_buffers();
        plan.add_phase(
            "p",
            vec![Op::Increment {
                counter: a.sub(0, 1),
            }],
        );
        let e = plan.validate().unwrap_err().to_string();
        assert!(e.contains("should hold U32"), "{e}");
    }

    #[test]
    fn alignment_rounds_up_to_256_bytes() {
        assert_eq!(align_words(0), 0);
        assert_eq!(align_words(1), 64);
        assert_eq!(align_words(64), 64);
        assert_eq!(align_words(65), 128);
    }
}
