//! Per-kernel GPU times from timestamp queries.
//!
//! Profiling records every dispatch in a compute pass of its own, with
//! timestamps written at the pass's start and end, so each kernel's device
//! time is measured alone. That adds a pass boundary per kernel, so the sum
//! is a little above the time of the normal single-pass recording.

use super::context::{GpuContext, GpuError};
use super::executor::GpuPlan;

/// Mean device time of one kernel launch over the profiled repeats.
#[derive(Clone, Debug)]
pub struct KernelTime {
    pub phase: String,
    /// Position of the op in its phase.
    pub index: usize,
    pub kernel: &'static str,
    pub mean_ns: f64,
}

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

/// The profile as a table: each launch with its time and share of the total,
/// then the total per kernel, largest first.
pub fn format_profile(times: &[KernelTime], what: &str) -> String {
    use std::fmt::Write as _;
    let total: f64 = times.iter().map(|k| k.mean_ns).sum();
    let share = |ns: f64| if total > 0.0 { 100.0 * ns / total } else { 0.0 };
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{what}: {} launches, {:.1} µs in all",
        times.len(),
        total / 1e3
    );
    let _ = writeln!(
        s,
        "  {:<8} {:>3} {:<22} {:>10} {:>7}",
        "phase", "#", "kernel", "µs", "share"
    );
    for k in times {
        let _ = writeln!(
            s,
            "  {:<8} {:>3} {:<22} {:>10.1} {:>6.1}%",
            k.phase,
            k.index,
            k.kernel,
            k.mean_ns / 1e3,
            share(k.mean_ns)
        );
    }
    let mut by_kernel: Vec<(&str, f64, usize)> = Vec::new();
    for k in times {
        match by_kernel.iter_mut().find(|(name, _, _)| *name == k.kernel) {
            Some(entry) => {
                entry.1 += k.mean_ns;
                entry.2 += 1;
            }
            None => by_kernel.push((k.kernel, k.mean_ns, 1)),
        }
    }
    by_kernel.sort_by(|a, b| b.1.total_cmp(&a.1));
    let _ = writeln!(s, "  per kernel:");
    for (name, ns, count) in by_kernel {
        let _ = writeln!(
            s,
            "  {:<22} {:>3}× {:>10.1} µs {:>6.1}%",
            name,
            count,
            ns / 1e3,
            share(ns)
        );
    }
    s
}
