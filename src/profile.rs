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

/// A step's dispatch floor beside its measured time (GPU only).
#[derive(Clone, Debug)]
pub struct StepFloor {
    /// Time of one trivial dependent launch, recorded as a step is.
    pub us_per_dispatch: f64,
    /// How many such launches were timed to find it.
    pub floor_dispatches: usize,
    /// Mean time of one step, steps recorded into one pass as training does.
    pub step_us: f64,
    /// How many steps were timed to find it.
    pub steps: usize,
    /// `timestamps` (device time) or `wall` (host clock, submit to idle).
    pub timing: &'static str,
}

/// Launches per step, per phase name in first-seen order: (phase, runs, launches).
pub fn dispatches_per_phase(times: &[KernelTime]) -> Vec<(&str, usize, usize)> {
    let mut out: Vec<(&str, usize, usize)> = Vec::new();
    for k in times {
        let i = match out.iter().position(|(p, _, _)| *p == k.phase) {
            Some(i) => i,
            None => {
                out.push((k.phase.as_str(), 0, 0));
                out.len() - 1
            }
        };
        out[i].1 += usize::from(k.index == 0);
        out[i].2 += 1;
    }
    out
}

/// The summary under the profile: launches per step (per phase and in all)
/// and, given a floor, that floor times the count against the step's time.
pub fn format_dispatch_summary(times: &[KernelTime], floor: Option<&StepFloor>) -> String {
    let per_phase: Vec<String> = dispatches_per_phase(times)
        .into_iter()
        .map(|(phase, runs, n)| match runs {
            0 | 1 => format!("{phase} {n}"),
            _ => format!("{phase} {runs}×{}", n / runs),
        })
        .collect();
    let mut s = format!(
        "dispatches per step: {} ({})\n",
        times.len(),
        per_phase.join(", ")
    );
    if let Some(f) = floor {
        let floor_us = f.us_per_dispatch * times.len() as f64;
        let share = if f.step_us > 0.0 {
            100.0 * floor_us / f.step_us
        } else {
            0.0
        };
        s += &format!(
            "dispatch floor: {} × {:.2} µs ({} dependent 1-thread launches in one pass, {}) = {:.1} µs; \
             a step takes {:.1} µs ({} steps in one pass, {}): the floor is {:.0}% of it\n",
            times.len(),
            f.us_per_dispatch,
            f.floor_dispatches,
            f.timing,
            floor_us,
            f.step_us,
            f.steps,
            f.timing,
            share
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn launch(phase: &str, index: usize) -> KernelTime {
        KernelTime {
            phase: phase.into(),
            index,
            kernel: "k",
            mean_ns: 1000.0,
        }
    }

    #[test]
    fn the_summary_counts_launches_per_phase_and_sets_the_floor_against_the_step() {
        // Two D updates of 3 launches, one G update of 2.
        let times: Vec<KernelTime> = [("d_step", 3), ("d_step", 3), ("g_step", 2)]
            .iter()
            .flat_map(|&(p, n)| (0..n).map(move |i| launch(p, i)))
            .collect();
        assert_eq!(
            dispatches_per_phase(&times),
            vec![("d_step", 2, 6), ("g_step", 1, 2)]
        );
        let plain = format_dispatch_summary(&times, None);
        assert_eq!(plain, "dispatches per step: 8 (d_step 2×3, g_step 2)\n");
        let floor = StepFloor {
            us_per_dispatch: 5.0,
            floor_dispatches: 200,
            step_us: 80.0,
            steps: 20,
            timing: "timestamps",
        };
        let s = format_dispatch_summary(&times, Some(&floor));
        assert!(s.starts_with(&plain), "{s}");
        assert!(s.contains("8 × 5.00 µs"), "{s}");
        assert!(s.contains("= 40.0 µs"), "{s}");
        assert!(s.contains("a step takes 80.0 µs"), "{s}");
        assert!(s.contains("the floor is 50% of it"), "{s}");
    }
}
