//! A [`Layer`] list as plan ops: an explicit forward and an explicit
//! backward, unit by unit, as in llm.c.
//!
//! A **unit** is one parameter layer (Linear, Conv2d, ConvTranspose2d,
//! BatchNorm) with the activation that follows it fused in, a standalone
//! activation, a Dropout, or a view (Reshape, Flatten: no op, its output is
//! its input). Per sample, every tensor is contiguous (`[features]` or
//! `[C, H, W]`), so a batch is `[rows, len]` whatever the layer, and views
//! cost nothing.
//!
//! Backward: each unit consumes the gradient with respect to its output and
//! writes the one with respect to its input; a product's input-gradient op
//! applies the unit below's activation derivative in its epilogue (the unit
//! below then starts from its pre-activation gradient `dz`), and where it
//! cannot (below a BatchNorm, which applies its own, or through a Dropout
//! or standalone activation) the gradient is written raw.

use rand::Rng;

use super::layers::{Layer, LayerError, chain_shapes};
use crate::plan::{
    Activation, ConvEpilogue, ConvGemm, ConvGeom, Elem, Init, NormShape, Op, Plan, RandomSource,
    RunningStats, Slice, WeightGrad, align_words, conv_gemm_partials_len, conv_gemm_splits,
    conv_weight_splits, matmul_dw_splits, sum_weight_splits,
};

/// What a unit computes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum UnitKind {
    Linear {
        inputs: usize,
        outputs: usize,
    },
    /// A convolution; the geometry at batch 1.
    Conv(ConvGeom),
    /// A transposed convolution: the input gradient of `ConvGeom` (batch 1).
    ConvT(ConvGeom),
    BatchNorm {
        channels: usize,
        inner: usize,
    },
    Act,
    Dropout {
        keep: f32,
    },
    View,
}

/// One unit: its kind, the activation after it, its per-sample input and
/// output lengths, and where its tensors live in the network's flat buffer.
#[derive(Clone, Debug, PartialEq)]
pub struct Unit {
    pub kind: UnitKind,
    pub act: Activation,
    pub in_len: usize,
    pub out_len: usize,
    /// (offset, len) of the weight (BatchNorm: gamma) and of the bias (beta).
    pub weight: Option<(usize, usize)>,
    pub bias: Option<(usize, usize)>,
    /// Index among the network's BatchNorm units (running statistics slot).
    pub norm_slot: Option<usize>,
    /// Index of its (first) layer in the list: its `nn.Sequential` index.
    pub layer: usize,
}

impl Unit {
    /// Whether its backward starts from the pre-activation gradient `dz`
    /// (products with an activation; BatchNorm takes its own derivative).
    pub fn wants_dz(&self) -> bool {
        self.act != Activation::Identity && !matches!(self.kind, UnitKind::BatchNorm { .. })
    }
}

/// A layer list with its shapes, its units and its parameter layout.
#[derive(Clone, Debug, PartialEq)]
pub struct Sequential {
    pub layers: Vec<Layer>,
    pub input_shape: Vec<usize>,
    pub units: Vec<Unit>,
    /// Words of the flat parameter buffer, alignment padding included.
    pub param_words: usize,
    pub norm_count: usize,
}

fn activation_of(layer: &Layer) -> Option<Activation> {
    match *layer {
        Layer::ReLU => Some(Activation::Relu),
        Layer::LeakyReLU { slope } => Some(Activation::LeakyRelu(slope)),
        Layer::Tanh => Some(Activation::Tanh),
        Layer::Sigmoid => Some(Activation::Sigmoid),
        _ => None,
    }
}

fn refused(index: usize, layer: &Layer, problem: &str) -> LayerError {
    LayerError {
        index,
        name: layer.name(),
        problem: problem.to_string(),
    }
}

/// The kind of the unit layer `layer` starts, on a per-sample `input`.
fn unit_kind(
    index: usize,
    layer: &Layer,
    input: &[usize],
    output: &[usize],
) -> Result<UnitKind, LayerError> {
    let conv = |out_ch, k: usize, s: usize, p: usize| {
        ConvGeom::conv(
            [1, input[0], input[1], input[2]],
            out_ch,
            (k, k),
            (s, s),
            (p, p),
        )
    };
    Ok(match *layer {
        Layer::Linear { out, .. } => UnitKind::Linear {
            inputs: input[0],
            outputs: out,
        },
        Layer::Conv2d {
            out_channels,
            kernel,
            stride,
            padding,
            ..
        } => UnitKind::Conv(conv(out_channels, kernel, stride, padding).expect("shapes checked")),
        Layer::ConvTranspose2d {
            out_channels,
            kernel,
            stride,
            padding,
            output_padding,
            bias,
        } => {
            if bias {
                return Err(refused(
                    index,
                    layer,
                    "a bias on ConvTranspose2d is not supported yet (bias: false)",
                ));
            }
            let k = (kernel, kernel);
            let g = ConvGeom::transposed(
                [1, input[0], input[1], input[2]],
                out_channels,
                k,
                (stride, stride),
                (padding, padding),
                (output_padding, output_padding),
            );
            UnitKind::ConvT(g.expect("shapes checked"))
        }
        Layer::BatchNorm1d => UnitKind::BatchNorm {
            channels: input[0],
            inner: 1,
        },
        Layer::BatchNorm2d => UnitKind::BatchNorm {
            channels: input[0],
            inner: input[1] * input[2],
        },
        Layer::Dropout { p } => UnitKind::Dropout { keep: 1.0 - p },
        Layer::Reshape { .. } | Layer::Flatten => UnitKind::View,
        _ => {
            debug_assert_eq!(input, output);
            UnitKind::Act
        }
    })
}

impl Sequential {
    /// The network `layers` on per-sample inputs of `input_shape`, or the
    /// first layer that does not fit.
    pub fn new(input_shape: &[usize], layers: &[Layer]) -> Result<Sequential, LayerError> {
        let shapes = chain_shapes(input_shape, layers)?;
        let numel = |s: &[usize]| s.iter().product::<usize>();
        let mut units: Vec<Unit> = Vec::new();
        let (mut at, mut norm_count) = (0, 0);
        let mut i = 0;
        while i < layers.len() {
            let (layer, input) = (&layers[i], &shapes[i]);
            let kind = unit_kind(i, layer, input, &shapes[i + 1])?;
            let mut unit = Unit {
                kind,
                act: activation_of(layer).unwrap_or(Activation::Identity),
                in_len: numel(input),
                out_len: numel(&shapes[i + 1]),
                weight: None,
                bias: None,
                norm_slot: None,
                layer: i,
            };
            let params = layer.parameters(input);
            for (name, shape) in &params {
                let slot = Some((at, numel(shape)));
                if *name == "weight" {
                    unit.weight = slot;
                } else {
                    unit.bias = slot;
                }
                at = align_words(at + numel(shape));
            }
            if matches!(kind, UnitKind::BatchNorm { .. }) {
                unit.norm_slot = Some(norm_count);
                norm_count += 1;
            }
            let fuses = !params.is_empty();
            if let (true, Some(act)) = (fuses, layers.get(i + 1).and_then(activation_of)) {
                unit.act = act;
                i += 1;
            }
            units.push(unit);
            i += 1;
        }
        Ok(Sequential {
            layers: layers.to_vec(),
            input_shape: input_shape.to_vec(),
            units,
            param_words: at.max(1),
            norm_count,
        })
    }

    pub fn input_len(&self) -> usize {
        self.input_shape.iter().product()
    }

    /// `(offset, channels)` of each BatchNorm unit's slot in the running
    /// statistics buffers, by slot.
    pub fn stat_slots(&self) -> Vec<(usize, usize)> {
        let mut at = 0;
        let mut slots = Vec::new();
        for u in &self.units {
            if let UnitKind::BatchNorm { channels, .. } = u.kind {
                slots.push((at, channels));
                at += align_words(channels);
            }
        }
        slots
    }

    /// Words of each running statistics buffer (at least 1).
    pub fn stat_words(&self) -> usize {
        self.stat_slots()
            .last()
            .map_or(0, |&(at, c)| at + align_words(c))
            .max(1)
    }

    /// Words of the network's whole state as a checkpoint keeps it:
    /// `[params | running_mean | running_var | num_batches_tracked]`, the
    /// buffers of [`SeqBuffers`] one after another (the batch counts are u32
    /// words, carried as their bits).
    pub fn state_words(&self) -> usize {
        self.param_words + 2 * self.stat_words() + self.norm_count.max(1)
    }

    pub fn output_len(&self) -> usize {
        self.units.last().map_or(self.input_len(), |u| u.out_len)
    }

    /// PyTorch's default initialisation: Linear and Conv2d weights and
    /// biases uniform in ±1/√fan_in (fan_in = inputs, or C·k·k; for
    /// ConvTranspose2d, PyTorch's fan_in from its weight's second dimension,
    /// out·k·k); BatchNorm weight 1, bias 0. Padding is zero.
    pub fn init_params(&self, rng: &mut impl Rng) -> Vec<f32> {
        let mut params = vec![0.0; self.param_words];
        for u in &self.units {
            let fan_in = match u.kind {
                UnitKind::Linear { inputs, .. } => inputs,
                UnitKind::Conv(g) => g.taps(),
                UnitKind::ConvT(g) => g.taps(),
                UnitKind::BatchNorm { .. } => {
                    let (w, n) = u.weight.expect("gamma");
                    params[w..w + n].fill(1.0);
                    continue;
                }
                _ => continue,
            };
            let bound = 1.0 / (fan_in as f32).sqrt();
            for (off, n) in [u.weight, u.bias].into_iter().flatten() {
                for p in &mut params[off..off + n] {
                    *p = rng.random_range(-bound..bound);
                }
            }
        }
        params
    }
}

/// A sequential network's device state: flat parameters, gradients and Adam
/// moments, the Adam counter, and the BatchNorm running statistics (one
/// slot of `channels` per BatchNorm unit; `norm_batches` one word each).
#[derive(Clone, Debug)]
pub struct SeqBuffers {
    pub params: Slice,
    pub grads: Slice,
    pub adam_m: Slice,
    pub adam_v: Slice,
    pub step: Slice,
    pub adam_arrivals: Slice,
    pub running_mean: Vec<Slice>,
    pub running_var: Vec<Slice>,
    /// The whole buffers the slots of `running_mean` and `running_var` are in.
    pub stats_mean: Slice,
    pub stats_var: Slice,
    pub norm_batches: Slice,
}

impl SeqBuffers {
    /// The same buffers with every slice passed through `at` (a seed's copies).
    pub fn moved(&self, at: &impl Fn(Slice) -> Slice) -> SeqBuffers {
        SeqBuffers {
            params: at(self.params),
            grads: at(self.grads),
            adam_m: at(self.adam_m),
            adam_v: at(self.adam_v),
            step: at(self.step),
            adam_arrivals: at(self.adam_arrivals),
            running_mean: self.running_mean.iter().map(|s| at(*s)).collect(),
            running_var: self.running_var.iter().map(|s| at(*s)).collect(),
            stats_mean: at(self.stats_mean),
            stats_var: at(self.stats_var),
            norm_batches: at(self.norm_batches),
        }
    }

    pub fn declare(plan: &mut Plan, name: &str, net: &Sequential, init: Vec<f32>) -> SeqBuffers {
        assert_eq!(
            init.len(),
            net.param_words,
            "initial parameters of the wrong size"
        );
        let n = net.param_words;
        let total = net.stat_words();
        let mean = plan.f32_buffer(&format!("{name}.running_mean"), total);
        let var = plan.buffer(
            &format!("{name}.running_var"),
            Elem::F32,
            total,
            Init::F32(vec![1.0; total]),
        );
        let slots = net.stat_slots();
        let running_mean = slots.iter().map(|&(at, c)| mean.sub(at, c)).collect();
        let running_var = slots.iter().map(|&(at, c)| var.sub(at, c)).collect();
        let batches = net.norm_count.max(1);
        SeqBuffers {
            params: plan.buffer(&format!("{name}.params"), Elem::F32, n, Init::F32(init)),
            grads: plan.f32_buffer(&format!("{name}.grads"), n),
            adam_m: plan.f32_buffer(&format!("{name}.adam_m"), n),
            adam_v: plan.f32_buffer(&format!("{name}.adam_v"), n),
            step: plan.buffer(&format!("{name}.step"), Elem::U32, 1, Init::Zeros),
            adam_arrivals: plan.buffer(&format!("{name}.adam_arrivals"), Elem::U32, 1, Init::Zeros),
            running_mean,
            running_var,
            stats_mean: mean,
            stats_var: var,
            norm_batches: plan.buffer(
                &format!("{name}.num_batches_tracked"),
                Elem::U32,
                batches,
                Init::Zeros,
            ),
        }
    }

    /// As [`SeqBuffers::declare`], starting from a network's flat state as a
    /// checkpoint holds it ([`Sequential::state_words`]): parameters,
    /// running statistics and batch counts.
    pub fn declare_from_state(
        plan: &mut Plan,
        name: &str,
        net: &Sequential,
        state: &[f32],
    ) -> SeqBuffers {
        assert_eq!(state.len(), net.state_words(), "a state of the wrong size");
        let (params, mut rest) = state.split_at(net.param_words);
        let bufs = SeqBuffers::declare(plan, name, net, params.to_vec());
        for part in [bufs.stats_mean, bufs.stats_var, bufs.norm_batches] {
            let (values, tail) = rest.split_at(part.len);
            plan.buffers[part.buffer.0].init = match plan.buffers[part.buffer.0].elem {
                Elem::U32 => Init::U32(values.iter().map(|v| v.to_bits()).collect()),
                _ => Init::F32(values.to_vec()),
            };
            rest = tail;
        }
        bufs
    }

    fn param(&self, range: Option<(usize, usize)>) -> Option<Slice> {
        range.map(|(o, n)| self.params.sub(o, n))
    }

    fn grad(&self, range: Option<(usize, usize)>) -> Option<Slice> {
        range.map(|(o, n)| self.grads.sub(o, n))
    }

    /// The buffers of the network's state, in the order of
    /// [`Sequential::state_words`]: parameters, running means, running
    /// variances, batch counts.
    pub fn state_parts(&self) -> [Slice; 4] {
        [
            self.params,
            self.stats_mean,
            self.stats_var,
            self.norm_batches,
        ]
    }

    /// One Adam step over every parameter, advancing the counter.
    pub fn adam_step(&self, hyper: crate::plan::AdamHyper) -> Op {
        Op::Adam {
            params: self.params,
            grads: self.grads,
            m: self.adam_m,
            v: self.adam_v,
            step: self.step,
            hyper,
            arrivals: Some(self.adam_arrivals),
        }
    }
}

/// Per-unit activation and gradient buffers for up to `rows` rows. Views
/// alias the tensor before them.
#[derive(Clone, Debug)]
pub struct SeqWorkspace {
    pub rows: usize,
    /// Each unit's output (a view's: its input's).
    pub outputs: Vec<Slice>,
    /// The gradient with respect to each unit's output, as it arrives.
    pub grads: Vec<Slice>,
    /// The pre-activation gradient of units that want it.
    pub dz: Vec<Option<Slice>>,
    /// BatchNorm units' saved statistics (2·channels).
    pub saved: Vec<Option<Slice>>,
    /// Where a BatchNorm at the bottom writes the input gradient nobody reads.
    pub discard: Slice,
    /// Split partial sums of weight gradients ([`conv_weight_splits`],
    /// [`matmul_dw_splits`] at `rows`).
    pub partials: Vec<Option<Slice>>,
    /// Split partial sums of a convolution unit's forward and input-gradient
    /// GEMMs ([`conv_gemm_splits`]), enough for any row count up to `rows`.
    pub gemm_partials: Vec<Option<Slice>>,
}

/// The convolution a Conv or ConvT unit's weight gradient is, at `rows` rows.
fn weight_grad_geom(u: &Unit, rows: usize) -> Option<ConvGeom> {
    match u.kind {
        UnitKind::Conv(g) | UnitKind::ConvT(g) => Some(ConvGeom { batch: rows, ..g }),
        _ => None,
    }
}

impl SeqWorkspace {
    /// `input` is the network's input for `rows` rows (views of it alias
    /// it); with `last_output`, the last unit writes there (`rows` rows).
    pub fn declare(
        plan: &mut Plan,
        name: &str,
        net: &Sequential,
        rows: usize,
        input: Slice,
        last_output: Option<Slice>,
    ) -> SeqWorkspace {
        let mut ws = SeqWorkspace {
            rows,
            outputs: Vec::new(),
            grads: Vec::new(),
            dz: Vec::new(),
            saved: Vec::new(),
            discard: plan.f32_buffer(&format!("{name}.discard"), rows * net.input_len()),
            partials: Vec::new(),
            gemm_partials: Vec::new(),
        };
        let mut prev = (input, None::<Slice>);
        for (l, u) in net.units.iter().enumerate() {
            let len = rows * u.out_len;
            let (out, grad) = if u.kind == UnitKind::View {
                let grad = prev
                    .1
                    .unwrap_or_else(|| plan.f32_buffer(&format!("{name}.g_in"), len));
                (prev.0, grad)
            } else {
                let out = match last_output {
                    Some(o) if l + 1 == net.units.len() => o,
                    _ => plan.f32_buffer(&format!("{name}.y{l}"), len),
                };
                (out, plan.f32_buffer(&format!("{name}.g{l}"), len))
            };
            ws.outputs.push(out);
            ws.grads.push(grad);
            ws.dz.push(
                u.wants_dz()
                    .then(|| plan.f32_buffer(&format!("{name}.dz{l}"), len)),
            );
            ws.saved.push(match u.kind {
                UnitKind::BatchNorm { channels, .. } => {
                    Some(plan.f32_buffer(&format!("{name}.saved{l}"), 2 * channels))
                }
                _ => None,
            });
            prev = (out, Some(grad));
            let (splits, per) = match (u.kind, weight_grad_geom(u, rows)) {
                (UnitKind::Linear { inputs, outputs }, _) => (
                    matmul_dw_splits(rows, outputs, inputs),
                    outputs * inputs + outputs,
                ),
                (_, Some(g)) => (conv_weight_splits(&g), g.w_len() + g.out_ch),
                _ => (1, 0),
            };
            ws.partials.push(
                (splits > 1).then(|| plan.f32_buffer(&format!("{name}.partials{l}"), splits * per)),
            );
            let gemm_len = weight_grad_geom(u, rows).map_or(0, |g| gemm_partials_len(&g));
            ws.gemm_partials.push(
                (gemm_len > 0)
                    .then(|| plan.f32_buffer(&format!("{name}.gemm_partials{l}"), gemm_len)),
            );
        }
        ws
    }

    /// Unit `l`'s output for `rows` rows.
    pub fn output(&self, net: &Sequential, l: usize, rows: usize) -> Slice {
        self.outputs[l].sub(0, rows * net.units[l].out_len)
    }
}

/// Training or evaluation: batch or running statistics, dropout or not.
#[derive(Clone, Copy, Debug)]
pub enum Mode {
    /// With running-statistics updates at `running_momentum` when given
    /// (0.1 in training, as PyTorch's), and dropout masks drawn from
    /// streams `stream + l` at `counter`.
    Train {
        running_momentum: Option<f32>,
        dropout: Option<(u64, u32, Slice)>,
    },
    Eval,
}

/// The forward ops over `rows` rows of `x`.
pub fn forward(
    net: &Sequential,
    bufs: &SeqBuffers,
    ws: &SeqWorkspace,
    x: Slice,
    rows: usize,
    mode: Mode,
) -> Vec<Op> {
    let mut ops = Vec::new();
    let mut input = x;
    for (l, u) in net.units.iter().enumerate() {
        let y = ws.output(net, l, rows);
        let bias = bufs.param(u.bias);
        let epilogue = ConvEpilogue::BiasAct { bias, act: u.act };
        let batch = |g: ConvGeom| ConvGeom { batch: rows, ..g };
        match u.kind {
            UnitKind::Linear { inputs, outputs } => ops.push(Op::MatmulBiasAct {
                x: input,
                w: bufs.param(u.weight).expect("a weight"),
                b: bias,
                y,
                m: rows,
                n: outputs,
                k: inputs,
                act: u.act,
            }),
            UnitKind::Conv(g) | UnitKind::ConvT(g) => {
                let gemm = match u.kind {
                    UnitKind::Conv(_) => ConvGemm::Forward,
                    _ => ConvGemm::InputGrad,
                };
                let w = bufs.param(u.weight).expect("a weight");
                let partials = ws.gemm_partials[l];
                ops.extend(conv_gemm(gemm, [input, w, y], batch(g), epilogue, partials));
            }
            UnitKind::BatchNorm { channels, inner } => ops.push(norm_forward(
                net,
                bufs,
                ws,
                l,
                input,
                y,
                NormShape {
                    outer: rows,
                    channels,
                    inner,
                },
                mode,
            )),
            UnitKind::Act => ops.push(Op::ActivationForward {
                x: input,
                y,
                act: u.act,
            }),
            UnitKind::Dropout { keep } => match mode {
                Mode::Train {
                    dropout: Some((seed, stream, counter)),
                    ..
                } => ops.push(Op::Dropout {
                    x: input,
                    out: y,
                    keep,
                    source: RandomSource {
                        seed,
                        stream: stream + l as u32,
                        counter,
                    },
                }),
                // Evaluation (or training without masks): the identity, so
                // the next unit reads this one's input.
                _ => continue,
            },
            // A view's output is its input.
            UnitKind::View => continue,
        }
        input = y;
    }
    ops
}

#[allow(clippy::too_many_arguments)]
fn norm_forward(
    net: &Sequential,
    bufs: &SeqBuffers,
    ws: &SeqWorkspace,
    l: usize,
    x: Slice,
    y: Slice,
    shape: NormShape,
    mode: Mode,
) -> Op {
    let u = &net.units[l];
    let slot = u.norm_slot.expect("a batch norm slot");
    let (gamma, beta) = (
        bufs.param(u.weight).expect("gamma"),
        bufs.param(u.bias).expect("beta"),
    );
    match mode {
        Mode::Train {
            running_momentum, ..
        } => Op::BatchNorm {
            x,
            gamma,
            beta,
            y,
            saved: ws.saved[l].expect("saved statistics"),
            running: running_momentum.map(|momentum| RunningStats {
                mean: bufs.running_mean[slot],
                var: bufs.running_var[slot],
                batches: bufs.norm_batches.sub(slot, 1),
                momentum,
            }),
            shape,
            eps: 1e-5,
            act: u.act,
        },
        Mode::Eval => Op::BatchNormEval {
            x,
            gamma,
            beta,
            mean: bufs.running_mean[slot],
            var: bufs.running_var[slot],
            y,
            shape,
            eps: 1e-5,
            act: u.act,
        },
    }
}

/// Where the gradient with respect to the network's input goes, and the
/// activation (of whatever produced the input) to take it through.
#[derive(Clone, Copy, Debug)]
pub struct InputGrad {
    pub dx: Slice,
    pub act_grad: Option<(Slice, Activation)>,
}

/// The backward ops over `rows` rows of the training forward on `x`, from
/// the gradient with respect to the output: weight and bias gradients into
/// `bufs.grads` (when `weight_grads`), and with `input_grad` the gradient
/// with respect to `x`. `out_grad` is the gradient with respect to the
/// last unit's output, or (when that unit wants it) its pre-activation
/// gradient: `out_grad_is_dz` says which.
#[allow(clippy::too_many_arguments)]
pub fn backward(
    net: &Sequential,
    bufs: &SeqBuffers,
    ws: &SeqWorkspace,
    x: Slice,
    rows: usize,
    out_grad: Slice,
    out_grad_is_dz: bool,
    weight_grads: bool,
    input_grad: Option<InputGrad>,
    dropout: Option<(u64, u32, Slice)>,
) -> Vec<Op> {
    let mut ops = Vec::new();
    let last = net.units.len() - 1;
    // What unit l's backward starts from: (gradient, whether it is dz).
    let mut incoming = (out_grad, out_grad_is_dz);
    for l in (0..=last).rev() {
        let u = &net.units[l];
        if u.kind == UnitKind::View {
            // The unit above wrote straight into the unit below's buffer.
            continue;
        }
        let below = (0..l).rev().find(|&j| net.units[j].kind != UnitKind::View);
        let input = if l == 0 {
            x
        } else {
            ws.output(net, l - 1, rows)
        };
        // Unit l's pre-activation gradient, if it wants one and got the raw one.
        let mut g = incoming.0;
        if u.wants_dz() && !incoming.1 {
            let dz = ws.dz[l].expect("dz").sub(0, rows * u.out_len);
            ops.push(Op::ActivationBackward {
                y: ws.output(net, l, rows),
                dy: g,
                dx: dz,
                act: u.act,
            });
            g = dz;
        }
        // Where this unit's input gradient goes, and whether it can carry the unit below's act'.
        let target = match below {
            Some(j) => {
                let bu = &net.units[j];
                let fuse = bu.wants_dz() && fuses_output_act(u);
                let buf = if fuse {
                    ws.dz[j].expect("dz")
                } else {
                    ws.grads[j]
                };
                let act = fuse.then(|| (ws.output(net, j, rows), bu.act));
                Some((buf.sub(0, rows * bu.out_len), act, fuse))
            }
            None => input_grad.map(|ig| (ig.dx, ig.act_grad, false)),
        };
        unit_backward(
            net,
            bufs,
            ws,
            l,
            input,
            g,
            rows,
            weight_grads,
            target.map(|(s, a, _)| (s, a)),
            dropout,
            &mut ops,
        );
        if let Some((buf, _, fused)) = target {
            incoming = (buf, fused);
        }
        if below.is_none() {
            break;
        }
    }
    ops
}

/// The most partial sums a convolution unit's forward or input-gradient
/// GEMM writes at any row count up to `g.batch` (the forwards run at
/// several: D on `[real; fake]` and on the fakes alone).
fn gemm_partials_len(g: &ConvGeom) -> usize {
    (1..=g.batch)
        .flat_map(|batch| {
            let g = ConvGeom { batch, ..*g };
            [ConvGemm::Forward, ConvGemm::InputGrad].map(|gemm| conv_gemm_partials_len(gemm, &g))
        })
        .max()
        .unwrap_or(0)
}

/// A convolution's forward (`gemm` Forward: `a` is x, `out` y) or input
/// gradient (InputGrad: `a` is dy, `out` dx) through `epilogue`: one
/// launch, or split along its inner sum into `partials` and added up
/// through the epilogue ([`conv_gemm_splits`]).
pub fn conv_gemm(
    gemm: ConvGemm,
    [a, w, out]: [Slice; 3],
    geom: ConvGeom,
    epilogue: ConvEpilogue,
    partials: Option<Slice>,
) -> Vec<Op> {
    let splits = conv_gemm_splits(gemm, &geom);
    match partials.filter(|_| splits > 1) {
        Some(partials) => {
            let partials = partials.sub(0, conv_gemm_partials_len(gemm, &geom));
            vec![
                Op::ConvGemmSplit {
                    gemm,
                    a,
                    w,
                    partials,
                    splits,
                    geom,
                },
                Op::ConvSumSplits {
                    gemm,
                    partials,
                    out,
                    splits,
                    geom,
                    epilogue,
                },
            ]
        }
        None if gemm == ConvGemm::Forward => vec![Op::Conv2d {
            x: a,
            w,
            y: out,
            geom,
            epilogue,
        }],
        None => vec![Op::Conv2dInputGrad {
            dy: a,
            w,
            dx: out,
            geom,
            epilogue,
        }],
    }
}

/// A convolution's weight (and bias) gradient: one launch, or split along
/// its long sum into `partials` and added up ([`conv_weight_splits`]).
fn conv_weight_grad(
    dy: Slice,
    x: Slice,
    dw: Slice,
    db: Option<Slice>,
    geom: ConvGeom,
    partials: Option<Slice>,
) -> Vec<Op> {
    let splits = conv_weight_splits(&geom);
    let Some(partials) = partials.filter(|_| splits > 1) else {
        return vec![Op::Conv2dWeightGrad {
            dy,
            x,
            dw,
            db,
            geom,
        }];
    };
    let with_db = db.is_some();
    let partials = partials.sub(
        0,
        splits * (geom.w_len() + if with_db { geom.out_ch } else { 0 }),
    );
    let split = Op::Conv2dWeightGradSplit {
        dy,
        x,
        partials,
        splits,
        with_db,
        geom,
    };
    let mut ops = vec![split];
    ops.extend(sum_weight_splits(partials, splits, dw, db));
    ops
}

/// Whether `u`'s input-gradient op can apply the act' of the unit below in its epilogue.
fn fuses_output_act(u: &Unit) -> bool {
    matches!(
        u.kind,
        UnitKind::Linear { .. } | UnitKind::Conv(_) | UnitKind::ConvT(_)
    )
}

/// One unit's backward: its parameter gradients and (to `target`) its input gradient.
#[allow(clippy::too_many_arguments)]
fn unit_backward(
    net: &Sequential,
    bufs: &SeqBuffers,
    ws: &SeqWorkspace,
    l: usize,
    input: Slice,
    g: Slice,
    rows: usize,
    weight_grads: bool,
    target: Option<(Slice, Option<(Slice, Activation)>)>,
    dropout: Option<(u64, u32, Slice)>,
    ops: &mut Vec<Op>,
) {
    let u = &net.units[l];
    let batch = |geom: ConvGeom| ConvGeom {
        batch: rows,
        ..geom
    };
    let epilogue = |act: Option<(Slice, Activation)>| match act {
        Some((y, act)) => ConvEpilogue::ActGrad { y, act },
        None => ConvEpilogue::NONE,
    };
    let w = bufs.param(u.weight);
    match u.kind {
        UnitKind::Linear { inputs, outputs } => {
            if let Some((dx, act_grad)) = target {
                ops.push(Op::MatmulDx {
                    dy: g,
                    w: w.expect("a weight"),
                    dx,
                    m: rows,
                    n: outputs,
                    k: inputs,
                    act_grad,
                });
            }
            if weight_grads {
                let dw = bufs.grad(u.weight).expect("a weight");
                let grad = WeightGrad {
                    dy: g,
                    x: input,
                    dw,
                    m: rows,
                    n: outputs,
                    k: inputs,
                    db: bufs.grad(u.bias),
                };
                ops.extend(grad.split_ops(ws.partials[l]));
            }
        }
        UnitKind::Conv(geom) => {
            if let Some((dx, act)) = target {
                let operands = [g, w.expect("a weight"), dx];
                let partials = ws.gemm_partials[l];
                let (geom, epilogue) = (batch(geom), epilogue(act));
                ops.extend(conv_gemm(
                    ConvGemm::InputGrad,
                    operands,
                    geom,
                    epilogue,
                    partials,
                ));
            }
            if weight_grads {
                let dw = bufs.grad(u.weight).expect("a weight");
                let partials = ws.partials[l];
                ops.extend(conv_weight_grad(
                    g,
                    input,
                    dw,
                    bufs.grad(u.bias),
                    batch(geom),
                    partials,
                ));
            }
        }
        UnitKind::ConvT(geom) => {
            if let Some((dx, act)) = target {
                let operands = [g, w.expect("a weight"), dx];
                let partials = ws.gemm_partials[l];
                let (geom, epilogue) = (batch(geom), epilogue(act));
                ops.extend(conv_gemm(
                    ConvGemm::Forward,
                    operands,
                    geom,
                    epilogue,
                    partials,
                ));
            }
            if weight_grads {
                let dw = bufs.grad(u.weight).expect("a weight");
                let partials = ws.partials[l];
                ops.extend(conv_weight_grad(input, g, dw, None, batch(geom), partials));
            }
        }
        UnitKind::BatchNorm { channels, inner } => {
            let (dx, _) = target.unwrap_or_else(|| (ws.discard.sub(0, rows * u.in_len), None));
            let act_grad =
                (u.act != Activation::Identity).then(|| (ws.output(net, l, rows), u.act));
            let (dgamma, dbeta) = (
                bufs.grad(u.weight).expect("gamma"),
                bufs.grad(u.bias).expect("beta"),
            );
            ops.push(Op::BatchNormBackward {
                dy: g,
                x: input,
                gamma: w.expect("gamma"),
                saved: ws.saved[l].expect("saved"),
                dx,
                dgamma,
                dbeta,
                shape: NormShape {
                    outer: rows,
                    channels,
                    inner,
                },
                act_grad,
            });
        }
        UnitKind::Act => {
            if let Some((dx, _)) = target {
                ops.push(Op::ActivationBackward {
                    y: ws.output(net, l, rows),
                    dy: g,
                    dx,
                    act: u.act,
                });
            }
        }
        UnitKind::Dropout { keep } => {
            if let (Some((dx, _)), Some((seed, stream, counter))) = (target, dropout) {
                let source = RandomSource {
                    seed,
                    stream: stream + l as u32,
                    counter,
                };
                ops.push(Op::Dropout {
                    x: g,
                    out: dx,
                    keep,
                    source,
                });
            }
        }
        UnitKind::View => {}
    }
}

/// Where a tensor of a network's `state_dict` lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StateSource {
    /// `(offset, len)` in the flat parameter buffer.
    Param(usize, usize),
    /// A BatchNorm unit's running mean, running variance, or batch count
    /// (PyTorch's int64 `num_batches_tracked`), by its slot.
    RunningMean(usize),
    RunningVar(usize),
    Batches(usize),
}

impl StateSource {
    /// Where the tensor lives in the network's state words ([`Sequential::state_words`]).
    pub fn state_range(self, net: &Sequential) -> std::ops::Range<usize> {
        let (params, stats) = (net.param_words, net.stat_words());
        let slot = |s: usize| net.stat_slots()[s];
        match self {
            StateSource::Param(o, n) => o..o + n,
            StateSource::RunningMean(s) => {
                let (at, c) = slot(s);
                params + at..params + at + c
            }
            StateSource::RunningVar(s) => {
                let (at, c) = slot(s);
                params + stats + at..params + stats + at + c
            }
            StateSource::Batches(s) => {
                let at = params + 2 * stats + s;
                at..at + 1
            }
        }
    }
}

/// One tensor of `nn.Sequential`'s `state_dict`: its name (`"{index}.weight"`),
/// its shape (`[]` for `num_batches_tracked`) and where it lives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StateTensor {
    pub name: String,
    pub shape: Vec<usize>,
    pub source: StateSource,
}

impl Sequential {
    /// The tensors PyTorch's `nn.Sequential` of the same layers holds, in
    /// its order, so a checkpoint of them loads with a strict
    /// `load_state_dict`.
    pub fn state_dict(&self) -> Vec<StateTensor> {
        let shapes = chain_shapes(&self.input_shape, &self.layers).expect("checked by new");
        let mut out = Vec::new();
        for u in &self.units {
            let params = self.layers[u.layer].parameters(&shapes[u.layer]);
            for (name, shape) in params {
                let (offset, len) =
                    if name == "weight" { u.weight } else { u.bias }.expect("laid out");
                out.push(StateTensor {
                    name: format!("{}.{name}", u.layer),
                    shape,
                    source: StateSource::Param(offset, len),
                });
            }
            if let (Some(slot), UnitKind::BatchNorm { channels, .. }) = (u.norm_slot, u.kind) {
                let stat = |name: &str, shape: Vec<usize>, source| StateTensor {
                    name: format!("{}.{name}", u.layer),
                    shape,
                    source,
                };
                out.push(stat(
                    "running_mean",
                    vec![channels],
                    StateSource::RunningMean(slot),
                ));
                out.push(stat(
                    "running_var",
                    vec![channels],
                    StateSource::RunningVar(slot),
                ));
                out.push(stat(
                    "num_batches_tracked",
                    vec![],
                    StateSource::Batches(slot),
                ));
            }
        }
        out
    }
}
