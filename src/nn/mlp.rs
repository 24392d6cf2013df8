//! Multi-layer perceptrons as plan ops: parameter layout, initialisation,
//! and the explicit forward and backward passes.
//!
//! Layer l computes `a_l = act_l(a_{l−1}·W_lᵀ + b_l)` with `W_l` stored
//! `[out, in]` row-major, as `nn.Linear` stores it. Backward, for each layer
//! from the last:
//! ```text
//!   dz_l     = da_l ⊙ act_l'(a_l)            (activation_backward; skipped for identity)
//!   dW_l     = dz_lᵀ · a_{l−1}               (matmul_dw)
//!   db_l     = Σ_rows dz_l                   (column_sum)
//!   da_{l−1} = dz_l · W_l                    (matmul_dx)
//! ```

use rand::Rng;

use crate::plan::{
    Activation, Elem, FusedLayer, Init, MATMUL_DW_GROUP_MAX, MLP_FUSED_MAX_HIDDEN,
    MLP_FUSED_MAX_LAYERS, Op, Plan, Slice, WeightGrad, align_words, small_matmul_output,
};

/// One dense layer's shape and nonlinearity.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Dense {
    pub inputs: usize,
    pub outputs: usize,
    pub act: Activation,
}

/// A stack of dense layers.
#[derive(Clone, Debug, PartialEq)]
pub struct Mlp {
    pub layers: Vec<Dense>,
}

/// Where a tensor sits inside a flat parameter buffer (in f32 words).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TensorRange {
    pub offset: usize,
    pub len: usize,
}

/// Offsets of each layer's weight and bias; every tensor starts on a
/// 256-byte boundary.
#[derive(Clone, Debug, PartialEq)]
pub struct ParamLayout {
    pub weights: Vec<TensorRange>,
    pub biases: Vec<TensorRange>,
    /// Words in the flat buffer, padding included.
    pub total: usize,
}

impl Mlp {
    /// `input → hidden[0] → … → output`, `hidden_act` after every hidden layer.
    pub fn new(
        input: usize,
        hidden: &[usize],
        output: usize,
        hidden_act: Activation,
        output_act: Activation,
    ) -> Mlp {
        let mut sizes = vec![input];
        sizes.extend_from_slice(hidden);
        sizes.push(output);
        let layers = sizes
            .windows(2)
            .enumerate()
            .map(|(i, w)| Dense {
                inputs: w[0],
                outputs: w[1],
                act: if i + 2 == sizes.len() {
                    output_act
                } else {
                    hidden_act
                },
            })
            .collect();
        Mlp { layers }
    }

    pub fn input_size(&self) -> usize {
        self.layers[0].inputs
    }

    pub fn output_size(&self) -> usize {
        self.layers[self.layers.len() - 1].outputs
    }

    pub fn layout(&self) -> ParamLayout {
        let mut at = 0;
        let mut weights = Vec::new();
        let mut biases = Vec::new();
        for l in &self.layers {
            let w = TensorRange {
                offset: at,
                len: l.inputs * l.outputs,
            };
            at = align_words(at + w.len);
            let b = TensorRange {
                offset: at,
                len: l.outputs,
            };
            at = align_words(at + b.len);
            weights.push(w);
            biases.push(b);
        }
        ParamLayout {
            weights,
            biases,
            total: at,
        }
    }

    /// PyTorch's `nn.Linear` default: W and b uniform in ±1/√fan_in; padding is zero.
    pub fn init_params(&self, rng: &mut impl Rng) -> Vec<f32> {
        let layout = self.layout();
        let mut params = vec![0.0; layout.total];
        for (l, layer) in self.layers.iter().enumerate() {
            let bound = 1.0 / (layer.inputs as f32).sqrt();
            for r in [layout.weights[l], layout.biases[l]] {
                for p in &mut params[r.offset..r.offset + r.len] {
                    *p = rng.random_range(-bound..bound);
                }
            }
        }
        params
    }

    pub fn parameter_count(&self) -> usize {
        self.layers.iter().map(|l| l.outputs * (l.inputs + 1)).sum()
    }
}

/// A network's device state: parameters, gradients, Adam moments and its
/// Adam step counter, each one flat buffer.
#[derive(Clone, Debug)]
pub struct NetworkBuffers {
    pub mlp: Mlp,
    pub layout: ParamLayout,
    pub params: Slice,
    pub grads: Slice,
    pub adam_m: Slice,
    pub adam_v: Slice,
    pub step: Slice,
    /// One u32 word the Adam kernel counts its finished workgroups in (zero
    /// between launches; not part of the network's state).
    pub adam_arrivals: Slice,
}

impl NetworkBuffers {
    /// The same buffers with every slice passed through `at` (a seed's copies).
    pub fn moved(&self, at: &impl Fn(Slice) -> Slice) -> NetworkBuffers {
        NetworkBuffers {
            mlp: self.mlp.clone(),
            layout: self.layout.clone(),
            params: at(self.params),
            grads: at(self.grads),
            adam_m: at(self.adam_m),
            adam_v: at(self.adam_v),
            step: at(self.step),
            adam_arrivals: at(self.adam_arrivals),
        }
    }

    /// Declares `{name}.params` (with `init`), `.grads`, `.adam_m`, `.adam_v`,
    /// `.step` and `.adam_arrivals`.
    pub fn declare(plan: &mut Plan, name: &str, mlp: &Mlp, init: Vec<f32>) -> NetworkBuffers {
        let layout = mlp.layout();
        assert_eq!(
            init.len(),
            layout.total,
            "initial parameters of the wrong size"
        );
        let n = layout.total;
        NetworkBuffers {
            params: plan.buffer(&format!("{name}.params"), Elem::F32, n, Init::F32(init)),
            grads: plan.f32_buffer(&format!("{name}.grads"), n),
            adam_m: plan.f32_buffer(&format!("{name}.adam_m"), n),
            adam_v: plan.f32_buffer(&format!("{name}.adam_v"), n),
            step: plan.buffer(&format!("{name}.step"), Elem::U32, 1, Init::Zeros),
            adam_arrivals: plan.buffer(&format!("{name}.adam_arrivals"), Elem::U32, 1, Init::Zeros),
            layout,
            mlp: mlp.clone(),
        }
    }

    pub fn weight(&self, l: usize) -> Slice {
        let r = self.layout.weights[l];
        self.params.sub(r.offset, r.len)
    }

    pub fn bias(&self, l: usize) -> Slice {
        let r = self.layout.biases[l];
        self.params.sub(r.offset, r.len)
    }

    pub fn weight_grad(&self, l: usize) -> Slice {
        let r = self.layout.weights[l];
        self.grads.sub(r.offset, r.len)
    }

    pub fn bias_grad(&self, l: usize) -> Slice {
        let r = self.layout.biases[l];
        self.grads.sub(r.offset, r.len)
    }

    /// One Adam update of every parameter; the same launch advances the step
    /// counter.
    pub fn adam_step(&self, hyper: crate::plan::AdamHyper) -> Vec<Op> {
        vec![Op::Adam {
            params: self.params,
            grads: self.grads,
            m: self.adam_m,
            v: self.adam_v,
            step: self.step,
            hyper,
            arrivals: Some(self.adam_arrivals),
        }]
    }
}

/// Inverted dropout on every hidden layer's output (GAN discriminators):
/// layer `l` draws its mask from stream `stream + l` at the step in `counter`.
/// The backward pass re-applies the same mask, so a phase must not advance
/// `counter` between a forward pass and its backward pass.
#[derive(Clone, Copy, Debug)]
pub struct Dropout {
    /// Probability of keeping a unit (1 − the dropout rate).
    pub keep: f32,
    pub seed: u64,
    pub stream: u32,
    pub counter: Slice,
}

impl Dropout {
    fn op(&self, l: usize, x: Slice, out: Slice) -> Op {
        Op::Dropout {
            x,
            out,
            keep: self.keep,
            source: crate::plan::RandomSource {
                seed: self.seed,
                stream: self.stream + l as u32,
                counter: self.counter,
            },
        }
    }
}

/// Per-layer activation and gradient buffers for up to `rows` rows.
#[derive(Clone, Debug)]
pub struct Workspace {
    pub rows: usize,
    /// `a_l`, rows × outputs_l.
    pub outputs: Vec<Slice>,
    /// `da_l` for every layer but the last (whose gradient the caller supplies).
    pub output_grads: Vec<Slice>,
    /// `dz_l` for layers with a nonlinearity.
    pub preact_grads: Vec<Option<Slice>>,
    /// With dropout, per hidden layer: the dropped output `mask ⊙ a_l / keep`
    /// (the next layer's input) and the gradient with respect to it.
    pub dropped: Vec<(Slice, Slice)>,
    /// Per layer, the partial sums of its split weight gradient at `rows`
    /// ([`WeightGrad::split_ops`]); none where it does not split.
    pub partials: Vec<Option<Slice>>,
}

impl Workspace {
    pub fn declare(plan: &mut Plan, name: &str, mlp: &Mlp, rows: usize) -> Workspace {
        let n = mlp.layers.len();
        let mut outputs = Vec::new();
        let mut output_grads = Vec::new();
        let mut preact_grads = Vec::new();
        for (l, layer) in mlp.layers.iter().enumerate() {
            let len = rows * layer.outputs;
            outputs.push(plan.f32_buffer(&format!("{name}.a{l}"), len));
            if l + 1 < n {
                output_grads.push(plan.f32_buffer(&format!("{name}.da{l}"), len));
            }
            preact_grads.push(if layer.act == Activation::Identity {
                None
            } else {
                Some(plan.f32_buffer(&format!("{name}.dz{l}"), len))
            });
        }
        let partials = (mlp.layers.iter().enumerate())
            .map(|(l, layer)| {
                let len = WeightGrad::partials_len(rows, layer.outputs, layer.inputs);
                (len > 0).then(|| plan.f32_buffer(&format!("{name}.partials{l}"), len))
            })
            .collect();
        Workspace {
            rows,
            outputs,
            output_grads,
            preact_grads,
            dropped: Vec::new(),
            partials,
        }
    }

    /// As [`Workspace::declare`], plus the buffers dropout on the hidden layers needs.
    pub fn with_dropout(plan: &mut Plan, name: &str, mlp: &Mlp, rows: usize) -> Workspace {
        let mut ws = Workspace::declare(plan, name, mlp, rows);
        let hidden = &mlp.layers[..mlp.layers.len() - 1];
        ws.dropped = hidden
            .iter()
            .enumerate()
            .map(|(l, layer)| {
                let len = rows * layer.outputs;
                (
                    plan.f32_buffer(&format!("{name}.dropped{l}"), len),
                    plan.f32_buffer(&format!("{name}.d_dropped{l}"), len),
                )
            })
            .collect();
        ws
    }

    /// The workspace from row `first` on: every slice starts `first` rows in.
    /// A forward over two batches at once leaves the second batch's
    /// activations there, and a backward over the second batch runs on this.
    pub fn rows_from(&self, mlp: &Mlp, first: usize) -> Workspace {
        assert!(
            first <= self.rows,
            "more rows skipped than the workspace holds"
        );
        let rest = self.rows - first;
        let width = |l: usize| mlp.layers[l].outputs;
        let shift = |l: usize, s: Slice| s.sub(first * width(l), rest * width(l));
        Workspace {
            rows: rest,
            outputs: self
                .outputs
                .iter()
                .enumerate()
                .map(|(l, &s)| shift(l, s))
                .collect(),
            output_grads: self
                .output_grads
                .iter()
                .enumerate()
                .map(|(l, &s)| shift(l, s))
                .collect(),
            preact_grads: (self.preact_grads.iter().enumerate())
                .map(|(l, s)| s.map(|s| shift(l, s)))
                .collect(),
            dropped: (self.dropped.iter().enumerate())
                .map(|(l, &(a, g))| (shift(l, a), shift(l, g)))
                .collect(),
            // Not per row: fewer rows split no more ways (`matmul_dw_splits`).
            partials: self.partials.clone(),
        }
    }

    /// Layer `l`'s output as the next layer sees it: dropped when dropout is on.
    fn next_input(&self, mlp: &Mlp, l: usize, rows: usize, dropout: bool) -> Slice {
        if dropout {
            self.dropped[l].0.sub(0, rows * mlp.layers[l].outputs)
        } else {
            self.output(mlp, l, rows)
        }
    }

    /// Layer `l`'s output for the first `rows` rows.
    pub fn output(&self, mlp: &Mlp, l: usize, rows: usize) -> Slice {
        self.outputs[l].sub(0, rows * mlp.layers[l].outputs)
    }
}

/// Forward pass over `rows` rows of `x`; the output lands in `out` when given
/// (for example straight into the discriminator's input), else in the workspace.
/// A network whose hidden layers fit the fused kernel (at most
/// [`MLP_FUSED_MAX_HIDDEN`] wide, at most [`MLP_FUSED_MAX_LAYERS`] layers) runs
/// as one [`Op::MlpForward`]; others as one op per layer. Both write every
/// layer's output to the same workspace slices.
pub fn forward(
    net: &NetworkBuffers,
    ws: &Workspace,
    x: Slice,
    rows: usize,
    out: Option<Slice>,
) -> Vec<Op> {
    forward_with_dropout(net, ws, x, rows, out, None)
}

/// Whether the fused forward kernel takes this network.
pub fn fits_fused_forward(mlp: &Mlp) -> bool {
    let hidden = &mlp.layers[..mlp.layers.len() - 1];
    mlp.layers.len() <= MLP_FUSED_MAX_LAYERS
        && hidden.iter().all(|l| l.outputs <= MLP_FUSED_MAX_HIDDEN)
}

/// [`forward`] as one [`Op::MlpForward`], when the network fits the kernel.
fn fused_forward(
    net: &NetworkBuffers,
    ws: &Workspace,
    x: Slice,
    rows: usize,
    out: Option<Slice>,
) -> Option<Op> {
    assert!(rows <= ws.rows, "more rows than the workspace holds");
    let mlp = &net.mlp;
    if !fits_fused_forward(mlp) || rows < crate::plan::MLP_FUSED_MIN_ROWS {
        return None;
    }
    let last = mlp.layers.len() - 1;
    let layers = mlp
        .layers
        .iter()
        .enumerate()
        .map(|(l, layer)| FusedLayer {
            inputs: layer.inputs,
            outputs: layer.outputs,
            act: layer.act,
            weight: net.layout.weights[l].offset,
            bias: net.layout.biases[l].offset,
        })
        .collect();
    let outputs = (0..=last)
        .map(|l| match out {
            Some(o) if l == last => o,
            _ => ws.output(mlp, l, rows),
        })
        .collect();
    Some(Op::MlpForward {
        x,
        params: net.params,
        layers,
        outputs,
        rows,
    })
}

/// [`forward`], with dropout after every hidden layer when `dropout` is given
/// (the workspace must come from [`Workspace::with_dropout`]).
pub fn forward_with_dropout(
    net: &NetworkBuffers,
    ws: &Workspace,
    x: Slice,
    rows: usize,
    out: Option<Slice>,
    dropout: Option<&Dropout>,
) -> Vec<Op> {
    assert!(rows <= ws.rows, "more rows than the workspace holds");
    assert!(
        dropout.is_none() || !ws.dropped.is_empty(),
        "dropout needs Workspace::with_dropout"
    );
    // Without dropout, a network that fits runs as one fused dispatch.
    if dropout.is_none()
        && let Some(op) = fused_forward(net, ws, x, rows, out)
    {
        return vec![op];
    }
    let mlp = &net.mlp;
    let last = mlp.layers.len() - 1;
    let mut input = x;
    let mut ops = Vec::new();
    for (l, layer) in mlp.layers.iter().enumerate() {
        let y = match out {
            Some(o) if l == last => o,
            _ => ws.output(mlp, l, rows),
        };
        ops.push(Op::MatmulBiasAct {
            x: input,
            w: net.weight(l),
            b: Some(net.bias(l)),
            y,
            m: rows,
            n: layer.outputs,
            k: layer.inputs,
            act: layer.act,
        });
        input = y;
        if let Some(d) = dropout.filter(|_| l < last) {
            let dropped = ws.next_input(mlp, l, rows, true);
            ops.push(d.op(l, y, dropped));
            input = dropped;
        }
    }
    ops
}

/// What a backward pass should produce.
#[derive(Clone, Copy, Debug)]
pub struct BackwardTargets {
    /// Write dW and db into the network's gradient buffer.
    pub weight_grads: bool,
    /// Write the gradient with respect to the input here.
    pub input_grad: Option<Slice>,
    /// With `input_grad`: the output `y` and the activation of the network
    /// that produced the input. `input_grad` then receives the gradient with
    /// respect to that network's last pre-activation (the derivative runs in
    /// the input-gradient matmul's epilogue), ready for [`backward_from_preact`].
    pub input_act: Option<(Slice, Activation)>,
}

/// The gradient a backward pass starts from.
#[derive(Clone, Copy, Debug)]
enum TopGrad {
    /// `dy` with respect to the forward output `y`.
    Output { y: Slice, dy: Slice },
    /// `dz` with respect to the last layer's pre-activation.
    Preact(Slice),
}

/// Backward pass over `rows` rows. `x` is the forward input, `y` the forward
/// output (where `forward` put it) and `dy` the gradient with respect to `y`.
pub fn backward(
    net: &NetworkBuffers,
    ws: &Workspace,
    x: Slice,
    y: Slice,
    dy: Slice,
    rows: usize,
    targets: BackwardTargets,
) -> Vec<Op> {
    backward_with_dropout(net, ws, x, y, dy, rows, targets, None)
}

/// [`backward`] through the dropout of [`forward_with_dropout`] (the same
/// `dropout`, in the same phase, so the masks are the same).
#[allow(clippy::too_many_arguments)]
pub fn backward_with_dropout(
    net: &NetworkBuffers,
    ws: &Workspace,
    x: Slice,
    y: Slice,
    dy: Slice,
    rows: usize,
    targets: BackwardTargets,
    dropout: Option<&Dropout>,
) -> Vec<Op> {
    let top = TopGrad::Output { y, dy };
    backward_layers(net, ws, x, top, rows, targets, dropout)
}

/// [`backward`] from `dz`, the gradient with respect to the last layer's
/// pre-activation (as the next network's input-gradient matmul writes it
/// with [`BackwardTargets::input_act`]), not through the output activation.
pub fn backward_from_preact(
    net: &NetworkBuffers,
    ws: &Workspace,
    x: Slice,
    dz: Slice,
    rows: usize,
    targets: BackwardTargets,
) -> Vec<Op> {
    backward_layers(net, ws, x, TopGrad::Preact(dz), rows, targets, None)
}

fn backward_layers(
    net: &NetworkBuffers,
    ws: &Workspace,
    x: Slice,
    top: TopGrad,
    rows: usize,
    targets: BackwardTargets,
    dropout: Option<&Dropout>,
) -> Vec<Op> {
    let mlp = &net.mlp;
    let last = mlp.layers.len() - 1;
    let mut ops = Vec::new();
    let mut weight_grads = Vec::new();
    // Whether the layer above already wrote this layer's dz (its input-gradient
    // matmul ran the activation's derivative in its epilogue).
    let mut dz_written = false;
    for l in (0..=last).rev() {
        let layer = mlp.layers[l];
        let len = rows * layer.outputs;
        // The layer's output and its gradient (below the top, in the workspace).
        let (a_l, da) = match top {
            TopGrad::Output { y, dy } if l == last => (y, dy),
            TopGrad::Preact(dz) if l == last => (dz, dz),
            _ => (ws.output(mlp, l, rows), ws.output_grads[l].sub(0, len)),
        };
        let dz = match (top, ws.preact_grads[l]) {
            (TopGrad::Preact(dz), _) if l == last => dz,
            (_, Some(buf)) if dz_written => buf.sub(0, len),
            (_, Some(buf)) => {
                let dz = buf.sub(0, len);
                ops.push(Op::ActivationBackward {
                    y: a_l,
                    dy: da,
                    dx: dz,
                    act: layer.act,
                });
                dz
            }
            (_, None) => da,
        };
        let input = if l == 0 {
            x
        } else {
            ws.next_input(mlp, l - 1, rows, dropout.is_some())
        };
        if targets.weight_grads {
            let grad = WeightGrad {
                dy: dz,
                x: input,
                dw: net.weight_grad(l),
                m: rows,
                n: layer.outputs,
                k: layer.inputs,
                db: Some(net.bias_grad(l)),
            };
            weight_grads.push((grad, ws.partials[l]));
        }
        dz_written = false;
        if l > 0 {
            let (dx_op, written) = hidden_input_grad(net, ws, l, dz, rows, dropout);
            ops.extend(dx_op);
            dz_written = written;
        } else if let Some(dx) = targets.input_grad {
            ops.push(Op::MatmulDx {
                dy: dz,
                w: net.weight(0),
                dx,
                m: rows,
                n: layer.outputs,
                k: layer.inputs,
                act_grad: targets.input_act,
            });
        }
    }
    // Every layer's dz is written by now, so the weight gradients go last.
    ops.extend(weight_grad_ops(weight_grads));
    ops
}

/// The weight-gradient products as launches: those small enough for the
/// small-output kernel in groups of up to [`MATMUL_DW_GROUP_MAX`] (one
/// [`Op::MatmulDwGroup`] each, the layers side by side in one dispatch), the
/// others one [`Op::MatmulDw`] each, or split with their partials
/// ([`WeightGrad::split_ops`]).
fn weight_grad_ops(grads: Vec<(WeightGrad, Option<Slice>)>) -> Vec<Op> {
    let (small, large): (Vec<_>, Vec<_>) = grads
        .into_iter()
        .partition(|(g, _)| small_matmul_output(g.n, g.k));
    let small: Vec<WeightGrad> = small.into_iter().map(|(g, _)| g).collect();
    let mut ops: Vec<Op> = (large.iter())
        .flat_map(|(g, partials)| g.split_ops(*partials))
        .collect();
    for chunk in small.chunks(MATMUL_DW_GROUP_MAX) {
        ops.push(match chunk {
            [one] => one.op(),
            _ => Op::MatmulDwGroup {
                parts: chunk.to_vec(),
                adam: None,
            },
        });
    }
    ops
}

/// The ops that carry layer `l`'s `dz` down to layer `l − 1`, and whether they
/// wrote that layer's `dz` (its activation's derivative fused into the matmul)
/// rather than its `da`. Through a dropped hidden output: the gradient with
/// respect to the dropped values, then the same mask, then (in the layer's
/// own step) the activation backward.
fn hidden_input_grad(
    net: &NetworkBuffers,
    ws: &Workspace,
    l: usize,
    dz: Slice,
    rows: usize,
    dropout: Option<&Dropout>,
) -> (Vec<Op>, bool) {
    let mlp = &net.mlp;
    let layer = mlp.layers[l];
    let below = l - 1;
    let len = rows * layer.inputs;
    let matmul = |dx: Slice, act_grad| Op::MatmulDx {
        dy: dz,
        w: net.weight(l),
        dx,
        m: rows,
        n: layer.outputs,
        k: layer.inputs,
        act_grad,
    };
    let da = ws.output_grads[below].sub(0, len);
    if let Some(d) = dropout {
        let grad = ws.dropped[below].1.sub(0, len);
        return (vec![matmul(grad, None), d.op(below, grad, da)], false);
    }
    match ws.preact_grads[below] {
        Some(buf) => {
            let y = ws.output(mlp, below, rows);
            let act = mlp.layers[below].act;
            (vec![matmul(buf.sub(0, len), Some((y, act)))], true)
        }
        None => (vec![matmul(da, None)], false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn seed_generator_layout_is_aligned_and_complete() {
        let g = Mlp::new(100, &[128, 128], 784, Activation::Relu, Activation::Tanh);
        assert_eq!(
            g.parameter_count(),
            100 * 128 + 128 + 128 * 128 + 128 + 128 * 784 + 784
        );
        let layout = g.layout();
        let mut ranges: Vec<TensorRange> = layout
            .weights
            .iter()
            .chain(&layout.biases)
            .copied()
            .collect();
        ranges.sort_by_key(|r| r.offset);
        for pair in ranges.windows(2) {
            assert!(
                pair[0].offset + pair[0].len <= pair[1].offset,
                "tensors overlap"
            );
        }
        for r in &ranges {
            assert_eq!(r.offset % crate::plan::TENSOR_ALIGN_WORDS, 0);
        }
        assert!(layout.total >= g.parameter_count());
    }

    #[test]
    fn init_follows_nn_linear_bounds() {
        let m = Mlp::new(100, &[128], 1, Activation::Relu, Activation::Identity);
        let p = m.init_params(&mut rand::rngs::StdRng::seed_from_u64(0));
        let layout = m.layout();
        let w0 = &p[layout.weights[0].offset..][..layout.weights[0].len];
        assert!(w0.iter().all(|v| v.abs() <= 0.1));
        assert!(w0.iter().any(|v| v.abs() > 0.09));
        let w1 = &p[layout.weights[1].offset..][..layout.weights[1].len];
        let bound = 1.0 / 128f32.sqrt();
        assert!(w1.iter().all(|v| v.abs() <= bound));
    }
}
