//! The CPU backend: interprets a plan's ops with the reference kernels in
//! [`kernels`]. It is the reference for every GPU kernel and for whole steps,
//! and a usable trainer where no GPU adapter exists.

pub mod conv;
pub mod kernels;
pub mod norm;
pub mod philox;

use crate::plan::{
    Activation, ConvEpilogue, ConvGemm, ConvGeom, Elem, Init, NormShape, Op, Plan, RowFormat,
    RunningStats, Slice, WeightGrad,
};

/// A plan living in host memory: every buffer as 32-bit words.
pub struct CpuPlan {
    pub plan: Plan,
    buffers: Vec<Vec<f32>>,
}

impl CpuPlan {
    pub fn new(plan: Plan) -> anyhow::Result<CpuPlan> {
        plan.validate()?;
        let buffers = plan
            .buffers
            .iter()
            .map(|d| match &d.init {
                Init::Zeros => vec![0.0; d.len],
                Init::F32(v) => v.clone(),
                Init::U32(v) => bytemuck::cast_slice(v).to_vec(),
            })
            .collect();
        Ok(CpuPlan { plan, buffers })
    }

    pub fn f32s(&self, s: Slice) -> &[f32] {
        &self.buffers[s.buffer.0][s.offset..s.offset + s.len]
    }

    pub fn u32s(&self, s: Slice) -> &[u32] {
        bytemuck::cast_slice(self.f32s(s))
    }

    /// Overwrites a slice with f32 or u32 words.
    pub fn write<T: bytemuck::Pod>(&mut self, slice: Slice, data: &[T]) {
        let words: &[f32] = bytemuck::cast_slice(data);
        assert_eq!(words.len(), slice.len, "write of the wrong length");
        self.buffers[slice.buffer.0][slice.offset..slice.offset + slice.len].copy_from_slice(words);
    }

    /// Runs the named phases, in order.
    pub fn run(&mut self, phases: &[&str]) -> anyhow::Result<()> {
        for name in phases {
            let phase = self
                .plan
                .phase(name)
                .ok_or_else(|| anyhow::anyhow!("plan has no phase '{name}'"))?;
            // Ops are cheap to clone; cloning frees `self` for the mutable borrow.
            for op in phase.ops.clone() {
                self.execute(&op);
            }
        }
        Ok(())
    }

    /// Runs `phases` `repeats` times, timing every op with the host clock: the
    /// CPU counterpart of [`crate::gpu::profile`].
    pub fn profile(
        &mut self,
        phases: &[&str],
        repeats: usize,
    ) -> anyhow::Result<Vec<crate::profile::KernelTime>> {
        let mut times: Vec<crate::profile::KernelTime> = Vec::new();
        for _ in 0..repeats.max(1) {
            let mut slot = 0;
            for name in phases {
                let phase = self
                    .plan
                    .phase(name)
                    .ok_or_else(|| anyhow::anyhow!("plan has no phase '{name}'"))?;
                for (index, op) in phase.ops.clone().iter().enumerate() {
                    let t = std::time::Instant::now();
                    self.execute(op);
                    let ns = t.elapsed().as_nanos() as f64;
                    if slot == times.len() {
                        times.push(crate::profile::KernelTime {
                            phase: name.to_string(),
                            index,
                            kernel: op.kernel_name(),
                            mean_ns: 0.0,
                        });
                    }
                    times[slot].mean_ns += ns / repeats.max(1) as f64;
                    slot += 1;
                }
            }
        }
        Ok(times)
    }

    /// Takes buffer `s.buffer` out so it can be written while others are read.
    fn take(&mut self, s: Slice) -> Vec<f32> {
        std::mem::take(&mut self.buffers[s.buffer.0])
    }

    fn put(&mut self, s: Slice, v: Vec<f32>) {
        self.buffers[s.buffer.0] = v;
    }

    /// `dw = dyᵀ·x` and, with `db`, `db = Σ_m dy[m, :]` (one weight gradient).
    fn weight_grad(&mut self, g: &WeightGrad) {
        let range = |s: Slice| s.offset..s.offset + s.len;
        // dw and db share a buffer (checked by the plan): one take serves both.
        let mut out = self.take(g.dw);
        let (dy, x) = (self.f32s(g.dy), self.f32s(g.x));
        kernels::matmul_dw(dy, x, &mut out[range(g.dw)], g.m, g.n, g.k);
        if let Some(db) = g.db {
            kernels::column_sum(dy, &mut out[range(db)], g.m, g.n);
        }
        self.put(g.dw, out);
    }

    /// Writes a convolution's raw `sums` to `out` through its epilogue, the
    /// composition of the reference kernels (bias, then the activation; or
    /// the activation's derivative), as `MatmulDx`'s.
    fn conv_epilogue(
        &mut self,
        mut sums: Vec<f32>,
        out: Slice,
        epilogue: ConvEpilogue,
        channels: usize,
        plane: usize,
    ) {
        let range = out.offset..out.offset + out.len;
        let mut buf = self.take(out);
        match epilogue {
            ConvEpilogue::BiasAct { bias, act } => {
                if let Some(b) = bias {
                    conv::add_channel_bias(&mut sums, self.f32s(b), channels, plane);
                }
                kernels::activation_forward(&sums, &mut buf[range], act);
            }
            ConvEpilogue::ActGrad { y, act } => {
                kernels::activation_backward(self.f32s(y), &sums, &mut buf[range], act);
            }
        }
        self.put(out, buf);
    }

    /// The split weight gradients of a dense layer (`[dy, x, partials]`):
    /// split `s` the product over its stretch of the batch rows, as
    /// `matmul_dw` and `column_sum` of those rows.
    fn matmul_dw_split(
        &mut self,
        [dy, x, partials]: [Slice; 3],
        [m, n, k]: [usize; 3],
        splits: usize,
        with_db: bool,
    ) {
        let mut out = self.take(partials);
        let (dy, x) = (self.f32s(dy), self.f32s(x));
        let buf = &mut out[partials.offset..partials.offset + partials.len];
        let (w_parts, b_parts) = buf.split_at_mut(splits * n * k);
        let stretch = crate::plan::matmul_split_stretch(m, splits);
        for s in 0..splits {
            let rows = (s * stretch).min(m)..((s + 1) * stretch).min(m);
            let (dy_s, x_s) = (
                &dy[rows.start * n..rows.end * n],
                &x[rows.start * k..rows.end * k],
            );
            let dw = &mut w_parts[s * n * k..(s + 1) * n * k];
            kernels::matmul_dw(dy_s, x_s, dw, rows.len(), n, k);
            if with_db {
                kernels::column_sum(dy_s, &mut b_parts[s * n..(s + 1) * n], rows.len(), n);
            }
        }
        self.put(partials, out);
    }

    /// The raw split sums of a convolution's forward or input gradient
    /// (`[a, w, partials]`), split `s` into `partials[s·len ..]`.
    fn conv_gemm_split(
        &mut self,
        gemm: ConvGemm,
        [a, w, partials]: [Slice; 3],
        splits: usize,
        g: &ConvGeom,
    ) {
        let mut out = self.take(partials);
        let (a, w) = (self.f32s(a), self.f32s(w));
        let len = gemm.lens(g).1;
        let stretch = crate::plan::conv_gemm_stretch(gemm, g, splits);
        let [_, _, k] = crate::plan::conv_gemm_mnk(gemm, g);
        for s in 0..splits {
            let at = partials.offset + s * len;
            let part = &mut out[at..at + len];
            match gemm {
                ConvGemm::Forward => {
                    let ks = (s * stretch).min(k)..((s + 1) * stretch).min(k);
                    conv::conv2d_range(a, w, part, g, ks);
                }
                ConvGemm::InputGrad => conv::conv2d_input_grad_split(a, w, part, g, (s, splits)),
            }
        }
        self.put(partials, out);
    }

    /// Training-mode BatchNorm (`[x, gamma, beta, y, saved]`), then the
    /// running statistics' update when asked.
    fn batchnorm_train(
        &mut self,
        [x, gamma, beta, y, saved]: [Slice; 5],
        running: Option<RunningStats>,
        shape: NormShape,
        eps: f32,
        act: Activation,
    ) {
        let range = |s: Slice| s.offset..s.offset + s.len;
        let mut out = self.take(y);
        let mut sv = self.take(saved);
        let (xs, g, b) = (self.f32s(x), self.f32s(gamma), self.f32s(beta));
        let vars = norm::batchnorm(
            xs,
            g,
            b,
            &mut out[range(y)],
            &mut sv[range(saved)],
            &shape,
            eps,
            act,
        );
        let batch_means = sv[range(saved)][..shape.channels].to_vec();
        self.put(y, out);
        self.put(saved, sv);
        if let Some(r) = running {
            let mut mean = self.take(r.mean);
            let mut var = self.take(r.var);
            norm::update_running(
                &mut mean[range(r.mean)],
                &mut var[range(r.var)],
                &batch_means,
                &vars,
                shape.per_channel(),
                r.momentum,
            );
            self.put(r.mean, mean);
            self.put(r.var, var);
            self.execute(&Op::Increment { counter: r.batches });
        }
    }

    /// Runs one op. Plans are validated, so no op reads the buffer it writes
    /// and an op's outputs are in distinct buffers.
    pub fn execute(&mut self, op: &Op) {
        use kernels as k;
        let range = |s: Slice| s.offset..s.offset + s.len;
        match *op {
            Op::MatmulBiasAct {
                x,
                w,
                b,
                y,
                m,
                n,
                k: kd,
                act,
            } => {
                let mut out = self.take(y);
                let bias = b.map(|b| self.f32s(b));
                k::matmul_bias_act(
                    self.f32s(x),
                    self.f32s(w),
                    bias,
                    &mut out[range(y)],
                    m,
                    n,
                    kd,
                    act,
                );
                self.put(y, out);
            }
            Op::MatmulDx {
                dy,
                w,
                dx,
                m,
                n,
                k: kd,
                act_grad,
            } => {
                // The fused epilogue composes the two reference kernels, so the
                // result is bitwise that of a product then an activation backward.
                let mut out = self.take(dx);
                k::matmul_dx(self.f32s(dy), self.f32s(w), &mut out[range(dx)], m, n, kd);
                if let Some((y, act)) = act_grad {
                    let product = out[range(dx)].to_vec();
                    k::activation_backward(self.f32s(y), &product, &mut out[range(dx)], act);
                }
                self.put(dx, out);
            }
            Op::MatmulDw {
                dy,
                x,
                dw,
                m,
                n,
                k,
                db,
            } => self.weight_grad(&WeightGrad {
                dy,
                x,
                dw,
                m,
                n,
                k,
                db,
            }),
            // The reference is one weight gradient after another, then Adam.
            Op::MatmulDwGroup {
                ref parts,
                ref adam,
            } => {
                for part in parts {
                    self.weight_grad(part);
                }
                for op in adam.iter().flat_map(|u| u.over_parts(parts)) {
                    self.execute(&op);
                }
            }
            Op::Conv2d {
                x,
                w,
                y,
                geom,
                epilogue,
            } => {
                let mut sums = vec![0.0; y.len];
                conv::conv2d(self.f32s(x), self.f32s(w), &mut sums, &geom);
                let plane = geom.out_h * geom.out_w;
                self.conv_epilogue(sums, y, epilogue, geom.out_ch, plane);
            }
            Op::Conv2dInputGrad {
                dy,
                w,
                dx,
                geom,
                epilogue,
            } => {
                let mut sums = vec![0.0; dx.len];
                conv::conv2d_input_grad(self.f32s(dy), self.f32s(w), &mut sums, &geom);
                let plane = geom.in_h * geom.in_w;
                self.conv_epilogue(sums, dx, epilogue, geom.in_ch, plane);
            }
            Op::Conv2dWeightGrad {
                dy,
                x,
                dw,
                db,
                geom,
            } => {
                // dw and db share a buffer (checked by the plan): one take serves both.
                let mut out = self.take(dw);
                let (dy, x) = (self.f32s(dy), self.f32s(x));
                let (w_part, b_part) = match db {
                    Some(db) if db.offset >= dw.offset + dw.len => {
                        let (lo, hi) = out.split_at_mut(db.offset);
                        (&mut lo[range(dw)], Some(&mut hi[..db.len]))
                    }
                    Some(db) => {
                        let (lo, hi) = out.split_at_mut(dw.offset);
                        (&mut hi[..dw.len], Some(&mut lo[range(db)]))
                    }
                    None => (&mut out[range(dw)], None),
                };
                conv::conv2d_weight_grad(dy, x, w_part, b_part, &geom);
                self.put(dw, out);
            }
            Op::Conv2dWeightGradSplit {
                dy,
                x,
                partials,
                splits,
                with_db,
                geom,
            } => {
                let mut out = self.take(partials);
                let (dy, x) = (self.f32s(dy), self.f32s(x));
                let buf = &mut out[range(partials)];
                let (w_parts, b_parts) = buf.split_at_mut(splits * geom.w_len());
                let stretch = crate::plan::conv_split_stretch(&geom, splits);
                let k = geom.batch * geom.out_h * geom.out_w;
                for s in 0..splits {
                    let ks = (s * stretch).min(k)..((s + 1) * stretch).min(k);
                    let dw = &mut w_parts[s * geom.w_len()..(s + 1) * geom.w_len()];
                    let db = with_db.then(|| &mut b_parts[s * geom.out_ch..(s + 1) * geom.out_ch]);
                    conv::conv2d_weight_grad_range(dy, x, dw, db, &geom, ks);
                }
                self.put(partials, out);
            }
            Op::SumSplits {
                partials,
                out,
                splits,
            } => {
                let sums = kernels::sum_splits(self.f32s(partials), splits, out.len);
                let mut buf = self.take(out);
                buf[range(out)].copy_from_slice(&sums);
                self.put(out, buf);
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
            } => self.matmul_dw_split([dy, x, partials], [m, n, k], splits, with_db),
            Op::ConvGemmSplit {
                gemm,
                a,
                w,
                partials,
                splits,
                geom,
            } => self.conv_gemm_split(gemm, [a, w, partials], splits, &geom),
            Op::ConvSumSplits {
                gemm,
                partials,
                out,
                splits,
                geom,
                epilogue,
            } => {
                let sums = kernels::sum_splits(self.f32s(partials), splits, out.len);
                let (channels, plane) = (gemm.channels(&geom), gemm.plane(&geom));
                self.conv_epilogue(sums, out, epilogue, channels, plane);
            }
            Op::BatchNorm {
                x,
                gamma,
                beta,
                y,
                saved,
                running,
                shape,
                eps,
                act,
            } => self.batchnorm_train([x, gamma, beta, y, saved], running, shape, eps, act),
            Op::BatchNormEval {
                x,
                gamma,
                beta,
                mean,
                var,
                y,
                shape,
                eps,
                act,
            } => {
                let mut out = self.take(y);
                let (x, g, b) = (self.f32s(x), self.f32s(gamma), self.f32s(beta));
                let (m, v) = (self.f32s(mean), self.f32s(var));
                norm::batchnorm_eval(x, g, b, m, v, &mut out[range(y)], &shape, eps, act);
                self.put(y, out);
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
                let mut dx_buf = self.take(dx);
                let mut grads = self.take(dgamma);
                let (mut dg, mut db) = (vec![0.0; shape.channels], vec![0.0; shape.channels]);
                let act = act_grad.map(|(y, a)| (self.f32s(y), a));
                let (dy, x, g, sv) = (
                    self.f32s(dy),
                    self.f32s(x),
                    self.f32s(gamma),
                    self.f32s(saved),
                );
                norm::batchnorm_backward(
                    dy,
                    x,
                    g,
                    sv,
                    &mut dx_buf[range(dx)],
                    &mut dg,
                    &mut db,
                    &shape,
                    act,
                );
                grads[range(dgamma)].copy_from_slice(&dg);
                grads[range(dbeta)].copy_from_slice(&db);
                self.put(dx, dx_buf);
                self.put(dgamma, grads);
            }
            Op::ActivationForward { x, y, act } => {
                let mut out = self.take(y);
                k::activation_forward(self.f32s(x), &mut out[range(y)], act);
                self.put(y, out);
            }
            Op::ActivationBackward { y, dy, dx, act } => {
                let mut out = self.take(dx);
                k::activation_backward(self.f32s(y), self.f32s(dy), &mut out[range(dx)], act);
                self.put(dx, out);
            }
            Op::ColumnSum { x, out, rows, cols } => {
                let mut o = self.take(out);
                k::column_sum(self.f32s(x), &mut o[range(out)], rows, cols);
                self.put(out, o);
            }
            Op::Mean { x, out, scale } => {
                let v = k::mean(self.f32s(x), scale);
                self.buffers[out.buffer.0][out.offset] = v;
            }
            Op::BceWithLogits {
                logits,
                targets,
                loss,
                grad,
                grad_scale,
            } => {
                let mut l = self.take(loss);
                let mut g = self.take(grad);
                k::bce_with_logits(
                    self.f32s(logits),
                    self.f32s(targets),
                    &mut l[range(loss)],
                    &mut g[range(grad)],
                    grad_scale,
                );
                self.put(loss, l);
                self.put(grad, g);
            }
            Op::SoftmaxCrossEntropy {
                logits,
                labels,
                loss,
                grad,
                classes,
                grad_scale,
            } => {
                let mut l = self.take(loss);
                let mut g = self.take(grad);
                k::softmax_cross_entropy(
                    self.f32s(logits),
                    self.f32s(labels),
                    &mut l[range(loss)],
                    &mut g[range(grad)],
                    classes,
                    grad_scale,
                );
                self.put(loss, l);
                self.put(grad, g);
            }
            Op::RowSqNorm { x, out, rows, cols } => {
                let mut o = self.take(out);
                k::row_sq_norm(self.f32s(x), &mut o[range(out)], rows, cols);
                self.put(out, o);
            }
            Op::ParzenLogDensity {
                gram,
                x_norms,
                s_norms,
                out,
                dim,
                sigma,
            } => {
                let mut o = self.take(out);
                k::parzen_log_density(
                    self.f32s(gram),
                    self.f32s(x_norms),
                    self.f32s(s_norms),
                    &mut o[range(out)],
                    dim,
                    sigma,
                );
                self.put(out, o);
            }
            Op::Adam {
                params,
                grads,
                m,
                v,
                step,
                hyper,
                arrivals,
            } => {
                let t = self.u32s(step)[0].wrapping_add(1);
                let mut p = self.take(params);
                let mut mm = self.take(m);
                let mut vv = self.take(v);
                k::adam(
                    &mut p[range(params)],
                    self.f32s(grads),
                    &mut mm[range(m)],
                    &mut vv[range(v)],
                    t,
                    &hyper,
                );
                self.put(params, p);
                self.put(m, mm);
                self.put(v, vv);
                if arrivals.is_some() {
                    self.execute(&Op::Increment { counter: step });
                }
            }
            Op::Ema { params, avg, beta } => {
                let mut a = self.take(avg);
                k::ema(self.f32s(params), &mut a[range(avg)], beta);
                self.put(avg, a);
            }
            Op::RandomNormal { out, source } => {
                let step = self.u32s(source.counter)[0];
                let mut o = self.take(out);
                philox::fill_normal(&mut o[range(out)], source.seed, source.stream, step);
                self.put(out, o);
            }
            Op::RandomUniform { out, source } => {
                let step = self.u32s(source.counter)[0];
                let mut o = self.take(out);
                philox::fill_uniform(&mut o[range(out)], source.seed, source.stream, step);
                self.put(out, o);
            }
            Op::Dropout {
                x,
                out,
                keep,
                source,
            } => {
                let step = self.u32s(source.counter)[0];
                let mut o = self.take(out);
                k::dropout(
                    self.f32s(x),
                    &mut o[range(out)],
                    keep,
                    source.seed,
                    source.stream,
                    step,
                );
                self.put(out, o);
            }
            Op::RandomIndex { out, bound, source } => {
                let step = self.u32s(source.counter)[0];
                let mut o = self.take(out);
                philox::fill_index(
                    bytemuck::cast_slice_mut(&mut o[range(out)]),
                    bound,
                    source.seed,
                    source.stream,
                    step,
                );
                self.put(out, o);
            }
            Op::GatherRows {
                src,
                format,
                indices,
                dst,
                cols,
            } => {
                let mut o = self.take(dst);
                match format {
                    RowFormat::F32 => k::gather_rows_f32(
                        self.f32s(src),
                        self.u32s(indices),
                        &mut o[range(dst)],
                        cols,
                    ),
                    RowFormat::U8 { center, scale } => k::gather_rows_u8(
                        self.u32s(src),
                        self.u32s(indices),
                        &mut o[range(dst)],
                        cols,
                        center,
                        scale,
                    ),
                }
                self.put(dst, o);
            }
            Op::Fill { dst, value } => {
                self.buffers[dst.buffer.0][range(dst)].fill(value);
            }
            Op::Increment { counter } => {
                let words: &mut [u32] =
                    bytemuck::cast_slice_mut(&mut self.buffers[counter.buffer.0]);
                words[counter.offset] = words[counter.offset].wrapping_add(1);
            }
            Op::DrawBatch { .. } | Op::BceMeans { .. } => {
                for part in composed_ops(op) {
                    self.execute(&part);
                }
                if let Op::BceMeans { .. } = op {
                    self.bce_prob_means(op);
                }
            }
            Op::MlpForward {
                x,
                params,
                ref layers,
                ref outputs,
                rows,
            } => self.mlp_forward(x, params, layers, outputs, rows),
        }
    }

    /// The fused MLP forward, layer by layer with the reference dense layer:
    /// bit for bit what one [`Op::MatmulBiasAct`] per layer computes.
    fn mlp_forward(
        &mut self,
        x: Slice,
        params: Slice,
        layers: &[crate::plan::FusedLayer],
        outputs: &[Slice],
        rows: usize,
    ) {
        let mut input = x;
        for (layer, &y) in layers.iter().zip(outputs) {
            let mut out = self.take(y);
            let p = self.f32s(params);
            kernels::matmul_bias_act(
                self.f32s(input),
                &p[layer.weight..layer.weight + layer.inputs * layer.outputs],
                Some(&p[layer.bias..layer.bias + layer.outputs]),
                &mut out[y.offset..y.offset + y.len],
                rows,
                layer.outputs,
                layer.inputs,
                layer.act,
            );
            self.put(y, out);
            input = y;
        }
    }

    /// The σ means of an [`Op::BceMeans`], as a sigmoid [`Op::ActivationForward`]
    /// and two [`Op::Mean`]s over its halves would write them.
    fn bce_prob_means(&mut self, op: &Op) {
        let Op::BceMeans {
            logits,
            stats,
            prob_means: Some(p),
            ..
        } = *op
        else {
            return;
        };
        let mut probs = vec![0.0; logits.len];
        kernels::activation_forward(
            self.f32s(logits),
            &mut probs,
            crate::plan::Activation::Sigmoid,
        );
        let (first, second) = probs.split_at(p.split);
        let out = &mut self.buffers[stats.buffer.0];
        out[stats.offset + p.first_slot] = kernels::mean(first, 1.0);
        out[stats.offset + p.second_slot] = kernels::mean(second, 1.0);
    }

    /// The element type of a buffer (for callers that print or compare).
    pub fn elem(&self, s: Slice) -> Elem {
        self.plan.decl(s.buffer).elem
    }
}

/// The existing ops a fused op does the work of, in order: the CPU reference
/// of a fused op is the composition of their references. ([`Op::BceMeans`]'s
/// σ means come from [`CpuPlan::bce_prob_means`].)
pub fn composed_ops(op: &Op) -> Vec<Op> {
    match *op {
        Op::DrawBatch {
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
        } => {
            let mut ops = vec![
                Op::RandomIndex {
                    out: indices,
                    bound,
                    source,
                },
                Op::GatherRows {
                    src,
                    format,
                    indices,
                    dst,
                    cols,
                },
                Op::RandomNormal {
                    out: noise,
                    source: crate::plan::RandomSource {
                        stream: noise_stream,
                        ..source
                    },
                },
            ];
            ops.extend(more_noise.map(|(out, source)| Op::RandomNormal { out, source }));
            ops
        }
        Op::BceMeans {
            logits,
            targets,
            loss,
            grad,
            grad_scale,
            stats,
            loss_slot,
            loss_scale,
            head,
            ..
        } => {
            let mut ops = vec![
                Op::BceWithLogits {
                    logits,
                    targets,
                    loss,
                    grad,
                    grad_scale,
                },
                Op::Mean {
                    x: loss,
                    out: stats.sub(loss_slot, 1),
                    scale: loss_scale,
                },
            ];
            ops.extend(head.map(|h| h.op(grad)));
            ops
        }
        _ => vec![op.clone()],
    }
}
