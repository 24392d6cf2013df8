//! Lowering: each plan op becomes one kernel launch, described by the shader
//! entry point, the words of its uniform block, the buffers at each binding
//! and the workgroup grid. This is the one place that knows the binding
//! layout of every WGSL file (documented at the top of each file).

use crate::plan::{
    Activation, AdamUpdate, FusedLayer, MATMUL_DW_GROUP_MAX, MLP_FUSED_MAX_LAYERS, MLP_FUSED_ROWS,
    Op, RowFormat, Slice, WeightGrad, matmul_split_stretch, small_matmul_output,
};
use crate::shaders::Shader;

/// Workgroup size of the one-dimensional kernels.
pub const WORKGROUP_1D: u32 = 256;
/// The most workgroups any dispatch dimension may have (WebGPU's guaranteed limit).
pub const MAX_GROUPS_PER_DIM: u32 = 65535;
/// Output tile edge of `matmul.wgsl`'s `matmul_bias_act`.
pub const MATMUL_TILE: u32 = 64;
/// Output tile edge of `matmul_bias_act_128` (8×8 outputs per thread).
pub const MATMUL_BIG_TILE: u32 = 128;
/// The 128-tile kernel runs when the output has at least this many 128×128
/// tiles: about two workgroups per SM of a large GPU (an H100 has 132), so
/// the bigger tiles do not leave SMs idle. Below that, 64-tiles spread wider.
pub const MATMUL_BIG_MIN_TILES: u32 = 256;

/// Output tile edge of `matmul_bias_act_small` (sixteen K-groups per
/// workgroup), which runs where [`small_matmul_output`] says: then the walk
/// down K of the few 64-tile workgroups would set the time (D's first layer
/// at batch 64 is 2 of them walking K = 784), and sixteen 16×16-tile
/// workgroups per 64-tile, each walking a sixteenth of K, fill the GPU.
pub const MATMUL_SMALL_TILE: u32 = 16;
/// Which 128-tile matmul kernel runs where the lowering picks 128-tiles.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MatmulBig {
    /// `matmul_bias_act_128` (the kernel-study override).
    Plain,
    /// `matmul_bias_act_128_prefetch`, the default: 20.9 against 16.8
    /// TFLOP/s at 4096³ on an H200 (2026-12-03, docs/benchmarks.md).
    Prefetch,
}

static MATMUL_BIG: std::sync::atomic::AtomicU8 = std::sync::atomic::AtomicU8::new(1);

/// Sets the 128-tile matmul kernel of every product lowered after the call,
/// in this process: for benchmarks and tests that compare the two at the
/// same shapes. Plans built before keep their kernels.
pub fn set_matmul_big(kernel: MatmulBig) {
    MATMUL_BIG.store(kernel as u8, std::sync::atomic::Ordering::Relaxed);
}

fn big_matmul_entry() -> &'static str {
    match MATMUL_BIG.load(std::sync::atomic::Ordering::Relaxed) {
        1 => "matmul_bias_act_128_prefetch",
        _ => "matmul_bias_act_128",
    }
}

/// The matmul entry point and its output tile edge for an `m`×`n` output over `k`.
pub fn matmul_entry(m: usize, n: usize, _k: usize) -> (&'static str, u32) {
    let tiles = |edge: u32| w(m).div_ceil(edge) * w(n).div_ceil(edge);
    if tiles(MATMUL_BIG_TILE) >= MATMUL_BIG_MIN_TILES {
        (big_matmul_entry(), MATMUL_BIG_TILE)
    } else if small_matmul_output(m, n) {
        ("matmul_bias_act_small", MATMUL_SMALL_TILE)
    } else {
        ("matmul_bias_act", MATMUL_TILE)
    }
}

/// Whether `matmul_bias_act_small_vec4` can read both operands of an
/// `m`×`n` product over `k` as whole vec4s: each along the dimension in which
/// it is contiguous (A along k when its column stride is 1, else along m; B
/// along k when its row stride is 1, else along n), with the offset, the
/// stride between vectors and the vector dimension's extent multiples of 4,
/// and K a multiple of 4 (the K-groups walk four k at a time).
fn whole_vectors(a: &Operand, b: &Operand, [m, n, k]: [usize; 3]) -> bool {
    let four = |v: usize| v.is_multiple_of(4);
    let a_ok = if a.cs == 1 {
        four(a.rs)
    } else {
        a.rs == 1 && four(m) && four(a.cs)
    };
    let b_ok = if b.rs == 1 {
        four(b.cs)
    } else {
        b.cs == 1 && four(n) && four(b.rs)
    };
    a_ok && b_ok && four(k) && four(a.slice.offset) && four(b.slice.offset)
}

/// One kernel launch, ready to be turned into a bind group and a dispatch.
#[derive(Clone, Debug)]
pub struct KernelCall {
    pub shader: Shader,
    pub entry: &'static str,
    /// Binding number of the uniform block.
    pub uniform_binding: u32,
    /// The uniform block, as 32-bit words (f32 stored by its bits), padded to 16 bytes.
    pub params: Vec<u32>,
    /// (binding number, slice) of every storage binding; the whole buffer is bound.
    pub storage: Vec<(u32, Slice)>,
    pub workgroups: [u32; 3],
}

/// A 1-D grid for `threads` threads of 256, folded into a second dimension
/// past 65535 workgroups. Kernels index `(wid.y·num_workgroups.x + wid.x)·256 + lid.x`.
pub fn grid_1d(threads: usize) -> [u32; 3] {
    let groups = threads.div_ceil(WORKGROUP_1D as usize).max(1);
    let x = groups.min(MAX_GROUPS_PER_DIM as usize);
    let y = groups.div_ceil(x);
    [x as u32, y as u32, 1]
}

/// A size or offset as a uniform word (plans are checked against u32 when built).
pub(super) fn w(v: usize) -> u32 {
    u32::try_from(v).expect("sizes are checked against u32 when a plan is built")
}

fn f(v: f32) -> u32 {
    v.to_bits()
}

fn padded(mut words: Vec<u32>) -> Vec<u32> {
    while !words.len().is_multiple_of(4) {
        words.push(0);
    }
    words
}

/// Strided description of one matmul operand: element (i, j) = buf[off + i·rs + j·cs].
struct Operand {
    slice: Slice,
    rs: usize,
    cs: usize,
}

/// What `matmul.wgsl`'s epilogue does with an accumulated value `v` at (row, col).
enum Epilogue {
    /// `act(v)`.
    Act(Activation),
    /// `act(v + bias[col])`.
    BiasAct(Slice, Activation),
    /// `v·act'(y[row, col])`, `y` the activation's output.
    ActGrad(Slice, Activation),
}

impl Epilogue {
    fn forward(bias: Option<Slice>, act: Activation) -> Epilogue {
        bias.map_or(Epilogue::Act(act), |b| Epilogue::BiasAct(b, act))
    }

    /// (mode word, aux slice, activation) as matmul.wgsl's Params hold them.
    fn words(&self) -> (u32, Option<Slice>, Activation) {
        match *self {
            Epilogue::Act(act) => (0, None, act),
            Epilogue::BiasAct(b, act) => (1, Some(b), act),
            Epilogue::ActGrad(y, act) => (2, Some(y), act),
        }
    }
}

/// The output of a matmul launch: `c`, and the slice `row_sums` (in `c`'s
/// buffer) that gets `Σ_k A(m, k)` per row of C, when given.
struct MatmulOut {
    c: Slice,
    row_sums: Option<Slice>,
}

fn matmul_call(
    a: Operand,
    b: Operand,
    epilogue: Epilogue,
    out: MatmulOut,
    mnk: [usize; 3],
) -> KernelCall {
    matmul_launch(a, b, epilogue, out, mnk, None)
}

/// [`matmul_call`], or with `split = Some((splits, stretch))` the 128-tile
/// kernel's split launch: z = split, raw partials (no epilogue).
fn matmul_launch(
    a: Operand,
    b: Operand,
    epilogue: Epilogue,
    out: MatmulOut,
    [m, n, k]: [usize; 3],
    split: Option<(usize, usize)>,
) -> KernelCall {
    let (mode, aux, act) = epilogue.words();
    let c = out.c;
    let params = vec![
        w(m),
        w(n),
        w(k),
        w(a.slice.offset),
        w(a.rs),
        w(a.cs),
        w(b.slice.offset),
        w(b.rs),
        w(b.cs),
        w(c.offset),
        w(aux.map_or(0, |s| s.offset)),
        mode,
        act.id(),
        f(act.slope()),
        u32::from(out.row_sums.is_some()),
        w(out.row_sums.map_or(0, |s| s.offset)),
        w(split.map_or(0, |s| s.1)),
        f(1.0), // a_scale: matmul_coop.wgsl's scale of A (tensor_cores.rs sets it)
    ];
    let (mut entry, tile) = match split {
        Some(_) => (big_matmul_entry(), MATMUL_BIG_TILE),
        None => matmul_entry(m, n, k),
    };
    if entry == "matmul_bias_act_small" && whole_vectors(&a, &b, [m, n, k]) {
        entry = "matmul_bias_act_small_vec4";
    }
    let z = split.map_or(1, |s| w(s.0));
    KernelCall {
        shader: Shader::Matmul,
        entry,
        uniform_binding: 0,
        params: padded(params),
        // Without an aux operand, binding 3 still needs a buffer: B's is never read.
        storage: vec![
            (1, a.slice),
            (2, b.slice),
            (3, aux.unwrap_or(b.slice)),
            (4, c),
        ],
        workgroups: [w(n).div_ceil(tile).max(1), w(m).div_ceil(tile).max(1), z],
    }
}

/// The kernel launch that executes `op`.
pub fn lower(op: &Op) -> KernelCall {
    match *op {
        Op::MatmulBiasAct {
            x,
            w: wt,
            b,
            y,
            m,
            n,
            k,
            act,
        } => matmul_call(
            Operand {
                slice: x,
                rs: k,
                cs: 1,
            },
            Operand {
                slice: wt,
                rs: 1,
                cs: k,
            },
            Epilogue::forward(b, act),
            MatmulOut {
                c: y,
                row_sums: None,
            },
            [m, n, k],
        ),
        // dx[m,k] = Σ_n dy[m,n]·w[n,k]: C = dx (M=m, N=k), inner dim n;
        // the act_grad epilogue reads y[m,k] laid out as C.
        Op::MatmulDx {
            dy,
            w: wt,
            dx,
            m,
            n,
            k,
            act_grad,
        } => matmul_call(
            Operand {
                slice: dy,
                rs: n,
                cs: 1,
            },
            Operand {
                slice: wt,
                rs: k,
                cs: 1,
            },
            act_grad.map_or(Epilogue::Act(Activation::Identity), |(y, act)| {
                Epilogue::ActGrad(y, act)
            }),
            MatmulOut {
                c: dx,
                row_sums: None,
            },
            [m, k, n],
        ),
        Op::MatmulDw {
            dy,
            x,
            dw,
            m,
            n,
            k,
            db,
        } => {
            let (a, b) = weight_grad_operands(dy, x, n, k);
            let out = MatmulOut {
                c: dw,
                row_sums: db,
            };
            matmul_call(a, b, Epilogue::Act(Activation::Identity), out, [n, k, m])
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
            let (a, b) = weight_grad_operands(dy, x, n, k);
            let weights = splits * n * k;
            let out = MatmulOut {
                c: partials,
                row_sums: with_db.then(|| partials.sub(weights, splits * n)),
            };
            let split = Some((splits, matmul_split_stretch(m, splits)));
            matmul_launch(
                a,
                b,
                Epilogue::Act(Activation::Identity),
                out,
                [n, k, m],
                split,
            )
        }
        Op::MatmulDwGroup {
            ref parts,
            ref adam,
        } => dw_group_call(parts, adam.as_ref()),
        Op::ActivationForward { x, y, act } => KernelCall {
            shader: Shader::Activation,
            entry: "activation_forward",
            uniform_binding: 0,
            params: padded(vec![
                w(x.len),
                w(x.offset),
                w(y.offset),
                0,
                act.id(),
                f(act.slope()),
            ]),
            storage: vec![(1, x), (2, y)],
            workgroups: grid_1d(x.len),
        },
        Op::ActivationBackward { y, dy, dx, act } => KernelCall {
            shader: Shader::Activation,
            entry: "activation_backward",
            uniform_binding: 3,
            params: padded(vec![
                w(y.len),
                w(y.offset),
                w(dx.offset),
                w(dy.offset),
                act.id(),
                f(act.slope()),
            ]),
            storage: vec![(4, y), (5, dy), (6, dx)],
            workgroups: grid_1d(y.len),
        },
        Op::ColumnSum { x, out, rows, cols } => KernelCall {
            shader: Shader::Reduce,
            entry: "column_sum",
            uniform_binding: 0,
            params: padded(vec![w(rows), w(cols), w(x.offset), w(out.offset), f(1.0)]),
            storage: vec![(1, x), (2, out)],
            // 32 columns per workgroup (reduce.wgsl).
            workgroups: [w(cols).div_ceil(32).max(1), 1, 1],
        },
        Op::Mean { x, out, scale } => KernelCall {
            shader: Shader::Reduce,
            entry: "mean",
            uniform_binding: 3,
            params: padded(vec![w(x.len), 1, w(x.offset), w(out.offset), f(scale)]),
            storage: vec![(4, x), (5, out)],
            workgroups: [1, 1, 1],
        },
        Op::BceWithLogits {
            logits,
            targets,
            loss,
            grad,
            grad_scale,
        } => KernelCall {
            shader: Shader::Loss,
            entry: "bce_with_logits",
            uniform_binding: 0,
            params: padded(vec![
                w(logits.len),
                w(logits.offset),
                w(targets.offset),
                w(loss.offset),
                w(grad.offset),
                f(grad_scale),
            ]),
            storage: vec![(1, logits), (2, targets), (3, loss), (4, grad)],
            workgroups: grid_1d(logits.len),
        },
        Op::SoftmaxCrossEntropy {
            logits,
            labels,
            loss,
            grad,
            classes,
            grad_scale,
        } => KernelCall {
            shader: Shader::Loss,
            entry: "softmax_cross_entropy",
            uniform_binding: 5,
            params: padded(vec![
                w(labels.len),
                w(classes),
                w(logits.offset),
                w(labels.offset),
                w(loss.offset),
                w(grad.offset),
                f(grad_scale),
            ]),
            storage: vec![(6, logits), (7, labels), (8, loss), (9, grad)],
            workgroups: grid_1d(labels.len),
        },
        Op::RowSqNorm { x, out, rows, cols } => KernelCall {
            shader: Shader::Reduce,
            entry: "row_sq_norm",
            uniform_binding: 6,
            params: padded(vec![w(rows), w(cols), w(x.offset), w(out.offset), f(1.0)]),
            storage: vec![(7, x), (8, out)],
            workgroups: grid_1d(rows),
        },
        Op::ParzenLogDensity {
            gram,
            x_norms,
            s_norms,
            out,
            dim,
            sigma,
        } => KernelCall {
            shader: Shader::Parzen,
            entry: "parzen_log_density",
            uniform_binding: 0,
            params: padded(vec![
                w(x_norms.len),
                w(s_norms.len),
                w(dim),
                w(gram.offset),
                w(x_norms.offset),
                w(s_norms.offset),
                w(out.offset),
                f(sigma),
            ]),
            storage: vec![(1, gram), (2, x_norms), (3, s_norms), (4, out)],
            workgroups: grid_1d(x_norms.len),
        },
        Op::Adam {
            params,
            grads,
            m,
            v,
            step,
            hyper,
            arrivals,
        } => KernelCall {
            shader: Shader::Adam,
            entry: if arrivals.is_some() {
                "adam_advance"
            } else {
                "adam"
            },
            uniform_binding: 0,
            params: padded(vec![
                w(params.len),
                w(params.offset),
                w(grads.offset),
                w(m.offset),
                w(v.offset),
                w(step.offset),
                f(hyper.lr),
                f(hyper.beta1),
                f(hyper.beta2),
                f(hyper.eps),
                f(hyper.weight_decay),
                hyper.decay_steps,
                w(arrivals.map_or(0, |a| a.offset)),
            ]),
            storage: [(1, params), (2, grads), (3, m), (4, v), (5, step)]
                .into_iter()
                .chain(arrivals.map(|a| (6, a)))
                .collect(),
            workgroups: grid_1d(params.len),
        },
        Op::Ema { params, avg, beta } => KernelCall {
            shader: Shader::Ema,
            entry: "ema",
            uniform_binding: 0,
            params: padded(vec![
                w(params.len),
                w(params.offset),
                w(avg.offset),
                f(beta),
            ]),
            storage: vec![(1, params), (2, avg)],
            workgroups: grid_1d(params.len),
        },
        Op::RandomNormal { out, source } => random_call("random_normal", out, 0, source),
        Op::RandomUniform { out, source } => random_call("random_uniform", out, 0, source),
        Op::RandomIndex { out, bound, source } => random_call("random_index", out, bound, source),
        Op::Dropout {
            x,
            out,
            keep,
            source,
        } => {
            let mut call = random_call("dropout", out, 0, source);
            call.params[7] = f(keep);
            call.params[8] = w(x.offset);
            call.storage.push((4, x));
            call
        }
        Op::GatherRows {
            src,
            format,
            indices,
            dst,
            cols,
        } => {
            let (entry, base, center, scale) = match format {
                RowFormat::F32 => ("gather_rows_f32", 0, 0.0, 1.0),
                RowFormat::U8 { center, scale } => ("gather_rows_u8", 4, center, scale),
            };
            KernelCall {
                shader: Shader::Gather,
                entry,
                uniform_binding: base,
                params: padded(vec![
                    w(indices.len),
                    w(cols),
                    w(src.offset),
                    w(indices.offset),
                    w(dst.offset),
                    f(center),
                    f(scale),
                ]),
                storage: vec![(base + 1, src), (base + 2, indices), (base + 3, dst)],
                workgroups: grid_1d(indices.len * cols),
            }
        }
        Op::Fill { dst, value } => KernelCall {
            shader: Shader::Fill,
            entry: "fill",
            uniform_binding: 0,
            params: padded(vec![w(dst.len), w(dst.offset), f(value)]),
            storage: vec![(1, dst)],
            workgroups: grid_1d(dst.len),
        },
        Op::Increment { counter } => KernelCall {
            shader: Shader::Counter,
            entry: "increment",
            uniform_binding: 0,
            params: padded(vec![w(counter.offset)]),
            storage: vec![(1, counter)],
            workgroups: [1, 1, 1],
        },
        Op::DrawBatch { .. } => draw_batch_call(op),
        Op::BceMeans { .. } => bce_means_call(op),
        Op::MlpForward {
            x,
            params,
            ref layers,
            ref outputs,
            rows,
        } => mlp_forward_call(x, params, layers, outputs, rows),
        Op::Conv2d { .. }
        | Op::Conv2dInputGrad { .. }
        | Op::Conv2dWeightGrad { .. }
        | Op::Conv2dWeightGradSplit { .. }
        | Op::SumSplits { .. }
        | Op::ConvGemmSplit { .. }
        | Op::ConvSumSplits { .. } => super::lower_conv::lower_conv(op),
        Op::BatchNorm { .. } | Op::BatchNormEval { .. } | Op::BatchNormBackward { .. } => {
            super::lower_norm::lower_norm(op)
        }
    }
}

/// The operands of a weight gradient `dw[n,k] = Σ_m dy[m,n]·x[m,k]` as one
/// product: C = dw (M = n, N = k), inner dimension m; A(i, j) = dy[j, i], so
/// C's row sums of A are db[i] = Σ_j dy[j, i]; B = x.
fn weight_grad_operands(dy: Slice, x: Slice, n: usize, k: usize) -> (Operand, Operand) {
    let a = Operand {
        slice: dy,
        rs: 1,
        cs: n,
    };
    let b = Operand {
        slice: x,
        rs: k,
        cs: 1,
    };
    (a, b)
}

/// `matmul.wgsl`'s `matmul_dw_group` (or, with an Adam step,
/// `matmul_dw_group_adam`): a 4-word header, 16 words per part (its product
/// as `weight_grad_operands` gives it, and whether both operands are whole
/// vec4s), then 16 words of Adam; the parts' 16-tiles in one row of
/// workgroups. Unused operand bindings take part 0's buffers.
fn dw_group_call(parts: &[WeightGrad], adam: Option<&AdamUpdate>) -> KernelCall {
    let mut words = vec![w(parts.len()), 0, 0, 0];
    let mut first_tile = 0;
    for g in parts {
        let (tiles_x, tiles_y) = (
            w(g.k).div_ceil(MATMUL_SMALL_TILE),
            w(g.n).div_ceil(MATMUL_SMALL_TILE),
        );
        let (a, b) = weight_grad_operands(g.dy, g.x, g.n, g.k);
        let vec4 = whole_vectors(&a, &b, [g.n, g.k, g.m]);
        words.extend([w(g.n), w(g.k), w(g.m)]);
        words.extend([w(a.slice.offset), w(a.rs), w(a.cs)]);
        words.extend([w(b.slice.offset), w(b.rs), w(b.cs)]);
        words.extend([
            w(g.dw.offset),
            w(g.db.map_or(0, |s| s.offset)),
            u32::from(g.db.is_some()),
        ]);
        words.extend([tiles_x, first_tile, u32::from(vec4), 0]);
        first_tile += tiles_x * tiles_y;
    }
    words.resize(4 + 16 * MATMUL_DW_GROUP_MAX, 0);
    words.extend(adam.map_or(vec![0; 16], group_adam_words));
    let operand = |q: usize| parts.get(q).unwrap_or(&parts[0]);
    let mut storage = vec![(1, parts[0].dy), (2, parts[0].x), (4, parts[0].dw)];
    for (q, binding) in [(1, 5), (2, 7)] {
        storage.push((binding, operand(q).dy));
        storage.push((binding + 1, operand(q).x));
    }
    if let Some(u) = adam {
        storage.extend([
            (9, u.params),
            (10, u.m),
            (11, u.v),
            (12, u.step),
            (13, u.arrivals),
        ]);
    }
    KernelCall {
        shader: Shader::Matmul,
        entry: if adam.is_some() {
            "matmul_dw_group_adam"
        } else {
            "matmul_dw_group"
        },
        uniform_binding: 0,
        params: words,
        storage,
        workgroups: [first_tile.max(1), 1, 1],
    }
}

/// `matmul.wgsl`'s `GroupAdam` words: offsets, then the hyper-parameters.
fn group_adam_words(u: &AdamUpdate) -> Vec<u32> {
    let h = u.hyper;
    padded(vec![
        w(u.params.offset),
        w(u.grads.offset),
        w(u.m.offset),
        w(u.v.offset),
        w(u.step.offset),
        w(u.arrivals.offset),
        f(h.lr),
        f(h.beta1),
        f(h.beta2),
        f(h.eps),
        f(h.weight_decay),
        h.decay_steps,
        0,
    ])
}

/// `mlp_forward.wgsl`: a 4-word header, then 8 words per layer for
/// [`MLP_FUSED_MAX_LAYERS`] layers; bindings 3.. take the layers' outputs, the
/// unused ones the last output's buffer (bound, never written).
fn mlp_forward_call(
    x: Slice,
    params: Slice,
    layers: &[FusedLayer],
    outputs: &[Slice],
    rows: usize,
) -> KernelCall {
    let mut words = vec![w(rows), w(layers.len()), w(x.offset), 0];
    for (layer, y) in layers.iter().zip(outputs) {
        words.extend([
            w(layer.inputs),
            w(layer.outputs),
            layer.act.id(),
            f(layer.act.slope()),
            w(params.offset + layer.weight),
            w(params.offset + layer.bias),
            w(y.offset),
            0,
        ]);
    }
    words.resize(4 + 8 * MLP_FUSED_MAX_LAYERS, 0);
    let last = *outputs.last().expect("a fused forward has a layer");
    let mut storage = vec![(1, x), (2, params)];
    for l in 0..MLP_FUSED_MAX_LAYERS {
        storage.push((3 + l as u32, outputs.get(l).copied().unwrap_or(last)));
    }
    let blocks = rows.div_ceil(MLP_FUSED_ROWS).max(1);
    let gx = blocks.min(MAX_GROUPS_PER_DIM as usize);
    KernelCall {
        shader: Shader::MlpForward,
        entry: "mlp_forward",
        uniform_binding: 0,
        params: padded(words),
        storage,
        workgroups: [gx as u32, blocks.div_ceil(gx) as u32, 1],
    }
}

/// `random.wgsl`'s `draw_batch`: gather workgroups first, then one thread
/// per Philox block of indices and of noise.
fn draw_batch_call(op: &Op) -> KernelCall {
    let Op::DrawBatch {
        src,
        format,
        cols,
        bound,
        source,
        noise_stream,
        indices,
        dst,
        noise,
        more_noise,
    } = *op
    else {
        unreachable!("draw_batch_call takes a DrawBatch");
    };
    // Without more noise, an empty second noise that reads the first counter.
    let (more, more_source) = more_noise.map_or((noise.sub(0, 0), source), |(o, s)| (o, s));
    let (format_id, center, scale) = match format {
        RowFormat::F32 => (0, 0.0, 1.0),
        RowFormat::U8 { center, scale } => (1, center, scale),
    };
    let gather_groups = (indices.len * cols).div_ceil(WORKGROUP_1D as usize);
    let blocks = indices.len.div_ceil(4) + noise.len.div_ceil(4) + more.len.div_ceil(4);
    let groups = gather_groups + blocks.div_ceil(WORKGROUP_1D as usize);
    KernelCall {
        shader: Shader::Random,
        entry: "draw_batch",
        uniform_binding: 5,
        params: padded(vec![
            w(indices.len),
            w(cols),
            w(src.offset),
            w(indices.offset),
            w(dst.offset),
            w(noise.offset),
            w(noise.len),
            bound,
            source.seed as u32,
            (source.seed >> 32) as u32,
            source.stream,
            noise_stream,
            w(source.counter.offset),
            format_id,
            f(center),
            f(scale),
            w(gather_groups),
            w(more.offset),
            w(more.len),
            more_source.stream,
            w(more_source.counter.offset),
            more_source.seed as u32,
            (more_source.seed >> 32) as u32,
        ]),
        storage: vec![
            (1, source.counter),
            (6, src),
            (7, indices),
            (8, dst),
            (9, noise),
            (10, more_source.counter),
        ],
        workgroups: grid_1d(groups * WORKGROUP_1D as usize),
    }
}

/// `loss.wgsl`'s `bce_means`: one workgroup over all rows; with a head,
/// `bce_means_head`, that workgroup and one per 256 elements of the head's dx.
fn bce_means_call(op: &Op) -> KernelCall {
    let Op::BceMeans {
        logits,
        targets,
        loss,
        grad,
        grad_scale,
        stats,
        loss_slot,
        loss_scale,
        prob_means,
        head,
    } = *op
    else {
        unreachable!("bce_means_call takes a BceMeans");
    };
    let (has_probs, split, first, second) = match prob_means {
        Some(p) => (1, w(p.split), w(p.first_slot), w(p.second_slot)),
        None => (0, 0, 0, 0),
    };
    let (head_words, head_storage, workgroups) = match head {
        None => (vec![0; 7], vec![], [1, 1, 1]),
        Some(h) => {
            let (y, act) = h.act_grad.unwrap_or((h.w, Activation::Identity));
            let words = vec![
                w(h.k),
                w(h.w.offset),
                w(y.offset),
                w(h.dx.offset),
                u32::from(h.act_grad.is_some()),
                act.id(),
                f(act.slope()),
            ];
            let blocks = (logits.len * h.k).div_ceil(WORKGROUP_1D as usize);
            let grid = grid_1d((1 + blocks) * WORKGROUP_1D as usize);
            (words, vec![(16, h.w), (17, y), (18, h.dx)], grid)
        }
    };
    KernelCall {
        shader: Shader::Loss,
        entry: if head.is_some() {
            "bce_means_head"
        } else {
            "bce_means"
        },
        uniform_binding: 10,
        params: padded(
            vec![
                w(logits.len),
                w(logits.offset),
                w(targets.offset),
                w(loss.offset),
                w(grad.offset),
                f(grad_scale),
                w(stats.offset),
                w(loss_slot),
                f(loss_scale),
                has_probs,
                split,
                first,
                second,
            ]
            .into_iter()
            .chain(head_words)
            .collect(),
        ),
        storage: [
            (11, logits),
            (12, targets),
            (13, loss),
            (14, grad),
            (15, stats),
        ]
        .into_iter()
        .chain(head_storage)
        .collect(),
        workgroups,
    }
}

fn random_call(
    entry: &'static str,
    out: Slice,
    bound: u32,
    source: crate::plan::RandomSource,
) -> KernelCall {
    let out_binding = if entry == "random_index" { 3 } else { 2 };
    KernelCall {
        shader: Shader::Random,
        entry,
        uniform_binding: 0,
        // Params of random.wgsl: 12 words, keep and in_offset only read by dropout.
        params: padded(vec![
            w(out.offset),
            w(out.len),
            source.seed as u32,
            (source.seed >> 32) as u32,
            source.stream,
            w(source.counter.offset),
            bound,
            f(1.0),
            0,
        ]),
        storage: vec![(1, source.counter), (out_binding, out)],
        // Each thread produces one Philox block of four numbers.
        workgroups: grid_1d(out.len.div_ceil(4)),
    }
}
