//! The GPU executor: a plan turned into device buffers, cached pipelines and
//! one bind group per op, all created once. Recording a phase is then only
//! `set_pipeline / set_bind_group / dispatch` per op into one compute pass:
//! no allocation, no upload and no readback inside a step.

use std::collections::HashMap;
use std::sync::Arc;

use super::context::{GpuContext, GpuError};
use super::lowering::KernelCall;
use super::readback::ScalarReadback;
use super::tensor_cores::lower_at;
use crate::plan::{BufferId, Init, MAX_SEEDS, Plan, Slice};
use crate::shaders::Shader;

/// Compiled pipelines, one per (shader file, entry point, seeds per launch),
/// built on first use.
#[derive(Default)]
pub struct PipelineCache {
    modules: HashMap<Shader, wgpu::ShaderModule>,
    pipelines: HashMap<(Shader, &'static str, usize), Arc<wgpu::ComputePipeline>>,
}

impl PipelineCache {
    pub fn get(
        &mut self,
        ctx: &GpuContext,
        shader: Shader,
        entry: &'static str,
    ) -> Arc<wgpu::ComputePipeline> {
        self.get_for_seeds(ctx, shader, entry, 1)
    }

    /// The pipeline of `entry` for launches of `seeds` seeds at once (the
    /// kernels that also split over z take the count as `SEEDS`).
    pub fn get_for_seeds(
        &mut self,
        ctx: &GpuContext,
        shader: Shader,
        entry: &'static str,
        seeds: usize,
    ) -> Arc<wgpu::ComputePipeline> {
        let seeds = if shader.has_seeds_constant() {
            seeds
        } else {
            1
        };
        if let Some(p) = self.pipelines.get(&(shader, entry, seeds)) {
            return p.clone();
        }
        let module = self
            .modules
            .entry(shader)
            .or_insert_with(|| ctx.shader_module(shader.file_name(), shader.source()));
        let constants = [("SEEDS", seeds as f64)];
        let constants = if seeds > 1 { &constants[..] } else { &[] };
        let pipeline = ctx.pipeline_with_constants(entry, module, entry, constants);
        let pipeline = Arc::new(pipeline);
        self.pipelines
            .insert((shader, entry, seeds), pipeline.clone());
        pipeline
    }

    pub fn len(&self) -> usize {
        self.pipelines.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pipelines.is_empty()
    }
}

/// One recorded kernel launch.
struct Dispatch {
    kernel: &'static str,
    pipeline: Arc<wgpu::ComputePipeline>,
    bind_group: wgpu::BindGroup,
    workgroups: [u32; 3],
}

/// A plan living on the GPU.
pub struct GpuPlan {
    pub plan: Plan,
    buffers: Vec<wgpu::Buffer>,
    phases: HashMap<String, Vec<Dispatch>>,
    pipelines: PipelineCache,
}

impl GpuPlan {
    /// Allocates every buffer, uploads initial contents, and builds every
    /// pipeline and bind group of every phase.
    pub fn new(ctx: &GpuContext, plan: Plan) -> anyhow::Result<GpuPlan> {
        plan.validate()?;
        let mut buffers = Vec::with_capacity(plan.buffers.len());
        for decl in &plan.buffers {
            // Whole vec4s, so kernels may bind any buffer as array<vec4<f32>>.
            let words = decl.len.max(1).next_multiple_of(4);
            let bytes = (words * 4) as u64;
            ctx.check_buffer_size(&format!("buffer '{}'", decl.name), bytes)?;
            let usage = wgpu::BufferUsages::STORAGE
                | wgpu::BufferUsages::COPY_SRC
                | wgpu::BufferUsages::COPY_DST;
            let buffer = match &decl.init {
                Init::Zeros => ctx.device.create_buffer(&wgpu::BufferDescriptor {
                    label: Some(&decl.name),
                    size: bytes,
                    usage,
                    mapped_at_creation: false,
                }),
                Init::F32(v) => ctx.buffer_from(&decl.name, &padded(v, words), usage),
                Init::U32(v) => ctx.buffer_from(&decl.name, &padded(v, words), usage),
            };
            buffers.push(buffer);
        }
        let mut gpu = GpuPlan {
            plan,
            buffers,
            phases: HashMap::new(),
            pipelines: PipelineCache::default(),
        };
        let scope = ctx.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let seeds = gpu.plan.seed_count();
        let phases: Vec<(String, Vec<KernelCall>)> = gpu
            .plan
            .phases
            .iter()
            .map(|p| {
                let calls = p.ops.iter().map(|op| lower_at(op, ctx.matmul_precision));
                (p.name.clone(), calls.collect())
            })
            .collect();
        for (name, calls) in phases {
            let mut dispatches = Vec::new();
            for group in calls.chunks(seeds) {
                dispatches.extend(gpu.build_dispatches(ctx, group));
            }
            gpu.phases.insert(name, dispatches);
        }
        if let Some(err) = pollster::block_on(scope.pop()) {
            return Err(GpuError::Validation(err.to_string()).into());
        }
        Ok(gpu)
    }

    /// The launches of one group of calls, op i of every seed: one launch of
    /// them all (z grows by the seed count) when they differ only in their
    /// uniform blocks, else one launch each.
    fn build_dispatches(&mut self, ctx: &GpuContext, group: &[KernelCall]) -> Vec<Dispatch> {
        // What one bind group and one grid fix: the slices' offsets may
        // differ (they live in the uniform blocks), their buffers may not.
        let shape = |c: &KernelCall| {
            let bound: Vec<(u32, BufferId)> =
                c.storage.iter().map(|(b, s)| (*b, s.buffer)).collect();
            let head = (c.shader, c.entry, c.uniform_binding, c.workgroups);
            (head, c.params.len(), bound)
        };
        let first = shape(&group[0]);
        let alike = group.iter().all(|c| shape(c) == first);
        if !alike {
            return group
                .iter()
                .map(|c| self.build_dispatch(ctx, std::slice::from_ref(c)))
                .collect();
        }
        vec![self.build_dispatch(ctx, group)]
    }

    /// One launch of `calls` (alike but for their uniform blocks), seed s's
    /// block at index s of the kernel's uniform array.
    fn build_dispatch(&mut self, ctx: &GpuContext, calls: &[KernelCall]) -> Dispatch {
        let call = &calls[0];
        let seeds = calls.len();
        let pipeline = self
            .pipelines
            .get_for_seeds(ctx, call.shader, call.entry, seeds);
        let blocks: Vec<&[u32]> = calls.iter().map(|c| c.params.as_slice()).collect();
        let [x, y, z] = call.workgroups;
        Dispatch {
            kernel: call.entry,
            bind_group: self.bind_group_for_seeds(ctx, call, &blocks, &pipeline),
            pipeline,
            workgroups: [x, y, z * seeds as u32],
        }
    }

    /// The bind group of `call` (its uniform block and this plan's buffers)
    /// for `pipeline`: the lowered kernel's own, or another kernel with the
    /// same bindings, such as an edited copy being studied.
    pub fn bind_group(
        &self,
        ctx: &GpuContext,
        call: &KernelCall,
        pipeline: &wgpu::ComputePipeline,
    ) -> wgpu::BindGroup {
        self.bind_group_for_seeds(ctx, call, &[&call.params], pipeline)
    }

    /// As [`GpuPlan::bind_group`], with one uniform block per seed: the
    /// kernels declare an array of [`MAX_SEEDS`] blocks, so the buffer
    /// always has room for that many (zeros past the last seed's).
    fn bind_group_for_seeds(
        &self,
        ctx: &GpuContext,
        call: &KernelCall,
        blocks: &[&[u32]],
        pipeline: &wgpu::ComputePipeline,
    ) -> wgpu::BindGroup {
        let words = call.params.len();
        let mut all = vec![0u32; words * MAX_SEEDS];
        for (s, block) in blocks.iter().enumerate() {
            all[s * words..(s + 1) * words].copy_from_slice(block);
        }
        let uniform = ctx.buffer_from(call.entry, &all, wgpu::BufferUsages::UNIFORM);
        let mut buffers = vec![(call.uniform_binding, &uniform)];
        for (binding, slice) in &call.storage {
            buffers.push((*binding, &self.buffers[slice.buffer.0]));
        }
        ctx.bind_group(call.entry, pipeline, &buffers)
    }

    /// Names of the kernels of a phase, in launch order.
    pub fn kernels(&self, phase: &str) -> Vec<&'static str> {
        self.phases
            .get(phase)
            .map(|d| d.iter().map(|d| d.kernel).collect())
            .unwrap_or_default()
    }

    pub fn pipeline_count(&self) -> usize {
        self.pipelines.len()
    }

    /// Calls `each` once per kernel of `phase` with a closure that records
    /// that kernel into a pass (the profiler gives each its own pass).
    pub fn record_each(
        &self,
        phase: &str,
        mut each: impl FnMut(&dyn Fn(&mut wgpu::ComputePass<'_>)),
    ) {
        for d in self.phases.get(phase).into_iter().flatten() {
            each(&|pass: &mut wgpu::ComputePass<'_>| {
                pass.set_pipeline(&d.pipeline);
                pass.set_bind_group(0, &d.bind_group, &[]);
                let [x, y, z] = d.workgroups;
                pass.dispatch_workgroups(x, y, z);
            });
        }
    }

    /// Records one phase into `pass`.
    pub fn record(&self, pass: &mut wgpu::ComputePass<'_>, phase: &str) {
        let dispatches = self
            .phases
            .get(phase)
            .unwrap_or_else(|| panic!("plan has no phase '{phase}'"));
        for d in dispatches {
            pass.set_pipeline(&d.pipeline);
            pass.set_bind_group(0, &d.bind_group, &[]);
            let [x, y, z] = d.workgroups;
            pass.dispatch_workgroups(x, y, z);
        }
    }

    /// Records the given phases, in order, into one command buffer and submits it.
    pub fn run(&self, ctx: &GpuContext, phases: &[&str]) -> Result<(), GpuError> {
        self.run_with_readback(ctx, phases, None).map(|_| ())
    }

    /// As [`GpuPlan::run`], and also copies the readback's watched slices at the
    /// end of the command buffer (report labelled `tag`), without waiting for them.
    pub fn run_with_readback(
        &self,
        ctx: &GpuContext,
        phases: &[&str],
        mut readback: Option<(&mut ScalarReadback, u64)>,
    ) -> Result<wgpu::SubmissionIndex, GpuError> {
        for p in phases {
            if !self.phases.contains_key(*p) {
                return Err(GpuError::Validation(format!("plan has no phase '{p}'")));
            }
        }
        let mut encoder = ctx
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("step"),
            });
        {
            let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some("step"),
                timestamp_writes: None,
            });
            for p in phases {
                self.record(&mut pass, p);
            }
        }
        if let Some((rb, tag)) = readback.as_mut() {
            rb.record(&mut encoder, &self.buffers, *tag);
        }
        let index = ctx.queue.submit([encoder.finish()]);
        if let Some((rb, _)) = readback {
            rb.after_submit();
        }
        ctx.check_lost()?;
        Ok(index)
    }

    pub fn buffer(&self, id: BufferId) -> &wgpu::Buffer {
        &self.buffers[id.0]
    }

    /// Overwrites a slice with f32 or u32 words (tests, dataset upload, resume).
    pub fn write<T: bytemuck::Pod>(&self, ctx: &GpuContext, slice: Slice, data: &[T]) {
        assert_eq!(
            std::mem::size_of_val(data),
            slice.len * 4,
            "write of the wrong length"
        );
        ctx.queue.write_buffer(
            &self.buffers[slice.buffer.0],
            (slice.offset * 4) as u64,
            bytemuck::cast_slice(data),
        );
    }

    /// Reads a slice back, blocking until the GPU has finished all work so far.
    pub fn read_words(&self, ctx: &GpuContext, slice: Slice) -> Result<Vec<u32>, GpuError> {
        let bytes = (slice.len * 4) as u64;
        if bytes == 0 {
            return Ok(Vec::new());
        }
        let encoder = ctx
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("read"),
            });
        let raw = ctx.submit_and_read(
            encoder,
            &self.buffers[slice.buffer.0],
            (slice.offset * 4) as u64,
            bytes,
        )?;
        Ok(bytemuck::pod_collect_to_vec(&raw))
    }

    /// Reads an f32 slice back (blocking).
    pub fn read_f32(&self, ctx: &GpuContext, slice: Slice) -> Result<Vec<f32>, GpuError> {
        Ok(self
            .read_words(ctx, slice)?
            .into_iter()
            .map(f32::from_bits)
            .collect())
    }
}

/// `v` with zeros appended up to `words` elements.
fn padded<T: Copy + Default>(v: &[T], words: usize) -> Vec<T> {
    let mut out = v.to_vec();
    out.resize(words.max(v.len()), T::default());
    out
}
