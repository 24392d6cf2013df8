//! Per-kernel GPU times from timestamp queries.
//!
//! Profiling records every dispatch in a compute pass of its own, with
//! timestamps written at the pass's start and end, so each kernel's device
//! time is measured alone. That adds a pass boundary per kernel, so the sum
//! is a little above the time of the normal single-pass recording.
//! [`time_launches`] times repeated launches of a kernel of the caller's.

use std::time::Instant;

use super::context::{GpuContext, GpuError};
use super::executor::GpuPlan;
use crate::profile::KernelTime;

/// Runs `phases` `repeats` times with a timestamp pair around every kernel.
pub fn profile(
    ctx: &GpuContext,
    plan: &GpuPlan,
    phases: &[&str],
    repeats: usize,
) -> Result<Vec<KernelTime>, GpuError> {
    if !ctx.features.contains(wgpu::Features::TIMESTAMP_QUERY) {
        return Err(GpuError::Validation(format!(
            "{} has no timestamp queries, so kernels cannot be timed on the device",
            ctx.describe()
        )));
    }
    let launches: Vec<(String, usize, &'static str)> = phases
        .iter()
        .flat_map(|p| {
            plan.kernels(p)
                .into_iter()
                .enumerate()
                .map(move |(i, k)| (p.to_string(), i, k))
        })
        .collect();
    let count = u32::try_from(2 * launches.len())
        .ok()
        .filter(|&c| c <= wgpu::QUERY_SET_MAX_QUERIES)
        .ok_or_else(|| GpuError::Validation("too many kernels to profile in one go".into()))?;
    let query_set = ctx.device.create_query_set(&wgpu::QuerySetDescriptor {
        label: Some("profile"),
        ty: wgpu::QueryType::Timestamp,
        count,
    });
    let bytes = u64::from(count) * 8;
    let resolve = ctx.device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("profile resolve"),
        size: bytes,
        usage: wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
        mapped_at_creation: false,
    });
    let period = f64::from(ctx.queue.get_timestamp_period());
    let mut totals = vec![0.0f64; launches.len()];
    for _ in 0..repeats.max(1) {
        let mut encoder = ctx
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("profile"),
            });
        let mut q = 0u32;
        for phase in phases {
            plan.record_each(phase, |record| {
                let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                    label: Some("profiled kernel"),
                    timestamp_writes: Some(wgpu::ComputePassTimestampWrites {
                        query_set: &query_set,
                        beginning_of_pass_write_index: Some(q),
                        end_of_pass_write_index: Some(q + 1),
                    }),
                });
                record(&mut pass);
                q += 2;
            });
        }
        encoder.resolve_query_set(&query_set, 0..count, &resolve, 0);
        let raw = ctx.submit_and_read(encoder, &resolve, 0, bytes)?;
        let ticks: Vec<u64> = bytemuck::pod_collect_to_vec(&raw);
        for (i, t) in totals.iter_mut().enumerate() {
            *t += ticks[2 * i + 1].saturating_sub(ticks[2 * i]) as f64 * period;
        }
    }
    Ok(launches
        .into_iter()
        .zip(totals)
        .map(|((phase, index, kernel), total)| KernelTime {
            phase,
            index,
            kernel,
            mean_ns: total / repeats.max(1) as f64,
        })
        .collect())
}

/// Seconds per launch of `pipeline`, launched `reps` times (at least once) over `workgroups`
/// with `bind_group` at group 0, all in one compute pass: the device time
/// between timestamps written at the pass's start and end where the adapter
/// has timestamp queries, else the wall clock around the submit and the wait.
pub fn time_launches(
    ctx: &GpuContext,
    pipeline: &wgpu::ComputePipeline,
    bind_group: &wgpu::BindGroup,
    [x, y, z]: [u32; 3],
    reps: u32,
) -> Result<f64, GpuError> {
    let reps = reps.max(1);
    let stamps = ctx.features.contains(wgpu::Features::TIMESTAMP_QUERY);
    let query_set = stamps.then(|| {
        ctx.device.create_query_set(&wgpu::QuerySetDescriptor {
            label: Some("time launches"),
            ty: wgpu::QueryType::Timestamp,
            count: 2,
        })
    });
    let mut encoder = ctx.device.create_command_encoder(&Default::default());
    {
        let timestamp_writes =
            query_set
                .as_ref()
                .map(|query_set| wgpu::ComputePassTimestampWrites {
                    query_set,
                    beginning_of_pass_write_index: Some(0),
                    end_of_pass_write_index: Some(1),
                });
        let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: Some("time launches"),
            timestamp_writes,
        });
        pass.set_pipeline(pipeline);
        pass.set_bind_group(0, bind_group, &[]);
        (0..reps).for_each(|_| pass.dispatch_workgroups(x, y, z));
    }
    let start = Instant::now();
    let Some(query_set) = query_set else {
        ctx.queue.submit([encoder.finish()]);
        ctx.wait_idle()?;
        return Ok(start.elapsed().as_secs_f64() / f64::from(reps));
    };
    let resolve = ctx.device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("time launches resolve"),
        size: 16,
        usage: wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
        mapped_at_creation: false,
    });
    encoder.resolve_query_set(&query_set, 0..2, &resolve, 0);
    let raw = ctx.submit_and_read(encoder, &resolve, 0, 16)?;
    let ticks: Vec<u64> = bytemuck::pod_collect_to_vec(&raw);
    let period = f64::from(ctx.queue.get_timestamp_period());
    Ok(ticks[1].saturating_sub(ticks[0]) as f64 * period * 1e-9 / f64::from(reps))
}
