//! Per-kernel times of a plan's launches, shared by both backends: the GPU
//! measures them with timestamp queries ([`crate::gpu::profile`]), the CPU
//! with the host clock ([`crate::cpu::CpuPlan::profile`]).

/// Mean time of one kernel launch over the profiled repeats.
#[derive(Clone, Debug)]
pub struct KernelTime {
    pub phase: String,
    /// Position of the op in its phase.
    pub index: usize,
    pub kernel: &'static str,
    pub mean_ns: f64,
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
