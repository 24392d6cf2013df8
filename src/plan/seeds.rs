//! Seed-batched plans: K independent copies of one plan in one.
//!
//! [`batch_seeds`] takes K plans built by the same code for K seeds (so they
//! declare the same buffers and ops, and differ only in initial contents and
//! random keys) and stacks them: each buffer that any op writes, or whose
//! contents differ between seeds, holds the K copies one after another
//! ([`SeedLayout::stride`] words apart, a multiple of
//! [`super::TENSOR_ALIGN_WORDS`]); a buffer no op writes that is the same for
//! every seed (a dataset) is kept once and shared. Each phase then lists op i
//! of seed 0, op i of seed 1, …, op i of seed K−1, then op i + 1 of each:
//! every seed's op with its slices moved to that seed's copy.
//!
//! The CPU executor runs the ops in that order, so seed s computes exactly
//! what its own plan would (the copies never touch). The GPU executor lowers
//! each group of K ops to one launch: the kernels take one uniform block per
//! seed and find their seed in the workgroup's z (see `shaders/`).

use super::{BufferDecl, Init, Op, Phase, Plan, PlanError, Slice, align_words};

/// The most seeds one batched plan holds (the kernels' uniform arrays).
pub const MAX_SEEDS: usize = 64;

/// Where each seed's copy of a buffer lives in a batched plan.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SeedLayout {
    /// Words between one seed's copy of buffer b and the next's (0: shared).
    pub stride: Vec<usize>,
}

impl SeedLayout {
    /// `slice` of the single-seed plan, in seed `seed`'s copy.
    pub fn at(&self, seed: usize, slice: Slice) -> Slice {
        Slice {
            offset: slice.offset + seed * self.stride[slice.buffer.0],
            ..slice
        }
    }
}

/// K plans of one builder as one plan of K seeds, with where each seed's
/// buffers went. Refused when the plans differ in shape (buffers, phases,
/// ops other than in their random keys) or K is 0 or above [`MAX_SEEDS`].
pub fn batch_seeds(plans: Vec<Plan>) -> Result<(Plan, SeedLayout), PlanError> {
    let seeds = plans.len();
    if seeds == 0 || seeds > MAX_SEEDS {
        return Err(PlanError(format!(
            "{seeds} seeds in one plan; a batched plan holds 1 to {MAX_SEEDS}"
        )));
    }
    let first = &plans[0];
    for (s, p) in plans.iter().enumerate().skip(1) {
        same_shape(first, p).map_err(|e| PlanError(format!("seed {s}'s plan differs: {e}")))?;
    }
    let written = written_buffers(first);
    let stride: Vec<usize> = (0..first.buffers.len())
        .map(|b| {
            let same = plans
                .iter()
                .all(|p| p.buffers[b].init == first.buffers[b].init);
            let shared = same && !written[b] && first.buffers[b].init != Init::Zeros;
            if shared || seeds == 1 {
                0
            } else {
                align_words(first.buffers[b].len)
            }
        })
        .collect();
    let layout = SeedLayout { stride };
    let buffers = (0..first.buffers.len())
        .map(|b| stacked_decl(&plans, b, layout.stride[b]))
        .collect();
    let phases = (0..first.phases.len())
        .map(|ph| interleaved_phase(&plans, ph, &layout))
        .collect();
    let plan = Plan {
        buffers,
        phases,
        seeds,
    };
    plan.validate()?;
    Ok((plan, layout))
}

/// Buffer `b` of every plan as one declaration: the copies `stride` apart
/// (zeros between), or the one shared copy when `stride` is 0.
fn stacked_decl(plans: &[Plan], b: usize, stride: usize) -> BufferDecl {
    let first = &plans[0].buffers[b];
    if stride == 0 {
        return first.clone();
    }
    let len = stride * (plans.len() - 1) + first.len;
    let init = if plans.iter().all(|p| p.buffers[b].init == Init::Zeros) {
        Init::Zeros
    } else if first.elem == super::Elem::U32 {
        Init::U32(stack(plans, b, stride, len, |i| match i {
            Init::U32(v) => v.clone(),
            _ => Vec::new(),
        }))
    } else {
        Init::F32(stack(plans, b, stride, len, |i| match i {
            Init::F32(v) => v.clone(),
            _ => Vec::new(),
        }))
    };
    BufferDecl {
        name: first.name.clone(),
        elem: first.elem,
        len,
        init,
    }
}

/// The seeds' initial contents of buffer `b`, `stride` apart in `len` words.
fn stack<T: Copy + Default>(
    plans: &[Plan],
    b: usize,
    stride: usize,
    len: usize,
    words: impl Fn(&Init) -> Vec<T>,
) -> Vec<T> {
    let mut out = vec![T::default(); len];
    for (s, p) in plans.iter().enumerate() {
        let v = words(&p.buffers[b].init);
        out[s * stride..s * stride + v.len()].copy_from_slice(&v);
    }
    out
}

/// Phase `ph` of every plan, op by op, each seed's op moved to its copies.
fn interleaved_phase(plans: &[Plan], ph: usize, layout: &SeedLayout) -> Phase {
    let first = &plans[0].phases[ph];
    let mut ops = Vec::with_capacity(first.ops.len() * plans.len());
    for i in 0..first.ops.len() {
        for (s, p) in plans.iter().enumerate() {
            let mut op = p.phases[ph].ops[i].clone();
            for slice in op.slices_mut() {
                *slice = layout.at(s, *slice);
            }
            ops.push(op);
        }
    }
    Phase {
        name: first.name.clone(),
        ops,
    }
}

/// Which buffers some op of some phase writes.
fn written_buffers(plan: &Plan) -> Vec<bool> {
    let mut written = vec![false; plan.buffers.len()];
    for op in plan.phases.iter().flat_map(|p| &p.ops) {
        for s in op.reads_writes().1 {
            written[s.buffer.0] = true;
        }
    }
    written
}

/// Whether `b` was built as `a` for another seed: the same buffers (names,
/// types, lengths) and the same ops, up to their random keys.
fn same_shape(a: &Plan, b: &Plan) -> Result<(), String> {
    if a.seeds.max(1) != 1 || b.seeds.max(1) != 1 {
        return Err("a plan of several seeds cannot be batched again".into());
    }
    if a.buffers.len() != b.buffers.len() {
        return Err(format!(
            "{} buffers, not {}",
            b.buffers.len(),
            a.buffers.len()
        ));
    }
    for (x, y) in a.buffers.iter().zip(&b.buffers) {
        if (&x.name, x.elem, x.len) != (&y.name, y.elem, y.len) {
            return Err(format!("buffer '{}' against '{}'", y.name, x.name));
        }
    }
    let names = |p: &Plan| p.phases.iter().map(|p| p.name.clone()).collect::<Vec<_>>();
    if names(a) != names(b) {
        return Err(format!("phases {:?}, not {:?}", names(b), names(a)));
    }
    for (pa, pb) in a.phases.iter().zip(&b.phases) {
        if pa.ops.len() != pb.ops.len() {
            return Err(format!("phase '{}' has another op count", pa.name));
        }
        for (i, (x, y)) in pa.ops.iter().zip(&pb.ops).enumerate() {
            if x.without_keys() != y.without_keys() {
                return Err(format!("phase '{}' op {i} ({})", pa.name, x.kernel_name()));
            }
        }
    }
    Ok(())
}

impl Op {
    /// The op with every random key set to 0 (to compare seeds' plans).
    fn without_keys(&self) -> Op {
        let mut op = self.clone();
        match &mut op {
            Op::RandomNormal { source, .. }
            | Op::RandomUniform { source, .. }
            | Op::Dropout { source, .. }
            | Op::RandomIndex { source, .. } => source.seed = 0,
            Op::DrawBatch {
                source, more_noise, ..
            } => {
                source.seed = 0;
                if let Some((_, more)) = more_noise {
                    more.seed = 0;
                }
            }
            _ => {}
        }
        op
    }

    /// Every slice the op names, to move them all at once (batching seeds).
    pub fn slices_mut(&mut self) -> Vec<&mut Slice> {
        let mut out: Vec<&mut Slice> = Vec::new();
        match self {
            Op::MatmulBiasAct { x, w, b, y, .. } => out.extend([x, w, y].into_iter().chain(b)),
            Op::MatmulDx {
                dy,
                w,
                dx,
                act_grad,
                ..
            } => out.extend(
                [dy, w, dx]
                    .into_iter()
                    .chain(act_grad.as_mut().map(|a| &mut a.0)),
            ),
            Op::MatmulDw { dy, x, dw, db, .. } => out.extend([dy, x, dw].into_iter().chain(db)),
            Op::MatmulDwSplit {
                dy, x, partials, ..
            } => out.extend([dy, x, partials]),
            Op::MatmulDwGroup { parts, adam } => {
                for p in parts {
                    out.extend(
                        [&mut p.dy, &mut p.x, &mut p.dw]
                            .into_iter()
                            .chain(&mut p.db),
                    );
                }
                if let Some(a) = adam {
                    out.extend([
                        &mut a.params,
                        &mut a.grads,
                        &mut a.m,
                        &mut a.v,
                        &mut a.step,
                        &mut a.arrivals,
                    ]);
                }
            }
            Op::Conv2d {
                x, w, y, epilogue, ..
            }
            | Op::Conv2dInputGrad {
                dy: x,
                w,
                dx: y,
                epilogue,
                ..
            } => {
                out.extend([x, w, y]);
                out.extend(epilogue.slice_mut());
            }
            Op::Conv2dWeightGrad { dy, x, dw, db, .. } => {
                out.extend([dy, x, dw].into_iter().chain(db))
            }
            Op::BatchNorm {
                x,
                gamma,
                beta,
                y,
                saved,
                running,
                ..
            } => {
                out.extend([x, gamma, beta, y, saved]);
                if let Some(r) = running {
                    out.extend([&mut r.mean, &mut r.var, &mut r.batches]);
                }
            }
            Op::BatchNormEval {
                x,
                gamma,
                beta,
                mean,
                var,
                y,
                ..
            } => out.extend([x, gamma, beta, mean, var, y]),
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
            } => out.extend(
                [dy, x, gamma, saved, dx, dgamma, dbeta]
                    .into_iter()
                    .chain(act_grad.as_mut().map(|a| &mut a.0)),
            ),
            Op::Conv2dWeightGradSplit {
                dy, x, partials, ..
            } => out.extend([dy, x, partials]),
            Op::ConvGemmSplit { a, w, partials, .. } => out.extend([a, w, partials]),
            Op::ConvSumSplits {
                partials,
                out: o,
                epilogue,
                ..
            } => {
                out.extend([partials, o]);
                out.extend(epilogue.slice_mut());
            }
            Op::SumSplits {
                partials, out: o, ..
            } => out.extend([partials, o]),
            Op::ActivationForward { x, y, .. } => out.extend([x, y]),
            Op::ActivationBackward { y, dy, dx, .. } => out.extend([y, dy, dx]),
            Op::ColumnSum { x, out: o, .. }
            | Op::Mean { x, out: o, .. }
            | Op::RowSqNorm { x, out: o, .. } => out.extend([x, o]),
            Op::BceWithLogits {
                logits,
                targets,
                loss,
                grad,
                ..
            } => out.extend([logits, targets, loss, grad]),
            Op::SoftmaxCrossEntropy {
                logits,
                labels,
                loss,
                grad,
                ..
            } => out.extend([logits, labels, loss, grad]),
            Op::ParzenLogDensity {
                gram,
                x_norms,
                s_norms,
                out: o,
                ..
            } => out.extend([gram, x_norms, s_norms, o]),
            Op::Adam {
                params,
                grads,
                m,
                v,
                step,
                arrivals,
                ..
            } => out.extend([params, grads, m, v, step].into_iter().chain(arrivals)),
            Op::Ema { params, avg, .. } => out.extend([params, avg]),
            Op::RandomNormal { out: o, source } | Op::RandomUniform { out: o, source } => {
                out.extend([o, &mut source.counter])
            }
            Op::Dropout {
                x, out: o, source, ..
            } => out.extend([x, o, &mut source.counter]),
            Op::RandomIndex { out: o, source, .. } => out.extend([o, &mut source.counter]),
            Op::GatherRows {
                src, indices, dst, ..
            } => out.extend([src, indices, dst]),
            Op::Fill { dst, .. } => out.push(dst),
            Op::Increment { counter } => out.push(counter),
            Op::DrawBatch {
                src,
                source,
                indices,
                dst,
                noise,
                more_noise,
                ..
            } => {
                out.extend([src, &mut source.counter, indices, dst, noise]);
                if let Some((slice, more)) = more_noise {
                    out.extend([slice, &mut more.counter]);
                }
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
                out.extend([logits, targets, loss, grad, stats]);
                if let Some(h) = head {
                    out.extend([&mut h.w, &mut h.dx]);
                    out.extend(h.act_grad.as_mut().map(|a| &mut a.0));
                }
            }
            Op::MlpForward {
                x, params, outputs, ..
            } => out.extend([x, params].into_iter().chain(outputs.iter_mut())),
        }
        out
    }
}
