//! Mode-coverage metrics for 2-D Gaussian-mixture benchmarks.
//!
//! This implements the evaluation protocol of VEEGAN (Srivastava et al.,
//! "VEEGAN: Reducing Mode Collapse in GANs using Implicit Variational
//! Learning", NeurIPS 2017) as reused by PacGAN (Lin et al., "PacGAN: The
//! power of two samples in generative adversarial networks", NeurIPS 2018)
//! for the 2-D ring (8 modes) and grid (25 modes) mixtures:
//!
//! 1. Draw [`SAMPLES`] (2500) points from the generator.
//! 2. Assign each point to its nearest mode center (Euclidean distance; ties
//!    go to the lowest mode index).
//! 3. A point is *high quality* if its distance to that nearest center is at
//!    most three standard deviations of the mixture components
//!    (`distance <= 3 * std`).
//! 4. A mode is *covered* if at least one high-quality point is assigned to
//!    it.
//! 5. The *reverse KL* compares the histogram of mode assignments `p` with the
//!    uniform distribution over the `K` modes:
//!    `KL(p || uniform) = sum_{k : p_k > 0} p_k * ln(p_k * K)`.
//!    It is 0 for a perfectly uniform histogram and `ln K` when every point
//!    falls in one mode.
//!
//! Choices where the papers leave room for interpretation:
//!
//! * The histogram uses **all** finite points, each assigned to its nearest
//!   mode whether or not it is high quality (the papers do not filter by
//!   quality here). So `p_k = n_k / n_finite`.
//! * A point with a non-finite coordinate (NaN or ±inf) is assigned to no
//!   mode: it counts as low quality and stays in the denominator of the
//!   high-quality fraction (so a diverged generator is penalised), but it is
//!   excluded from the histogram (a NaN has no nearest mode). If no point is
//!   finite the reverse KL is reported as 0.
//! * `samples` is row-major `[x0, y0, x1, y1, ...]`; a trailing odd value is
//!   ignored.
//! * Empty inputs (no points or no centers) never panic; the affected
//!   quantities are 0.
//!
//! Results over several training seeds are aggregated with [`summarize`] as
//! mean ± standard error (sample standard deviation / sqrt(n)).

use serde::{Deserialize, Serialize};

/// Number of generated samples the protocol scores (VEEGAN / PacGAN).
pub const SAMPLES: usize = 2500;

/// Mode-coverage score of one set of generated samples.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModeScore {
    /// Modes with at least one high-quality sample.
    pub modes_covered: usize,
    /// Number of modes in the mixture.
    pub modes_total: usize,
    /// Fraction of all samples (non-finite included) within 3 std of their
    /// nearest mode.
    pub high_quality_fraction: f64,
    /// `KL(histogram of nearest modes || uniform)`, in nats.
    pub reverse_kl: f64,
    /// Number of 2-D samples scored (non-finite included).
    pub samples: usize,
    /// Centers of the modes not covered, in the mixture's order (absent in
    /// reports written before it was added).
    #[serde(default)]
    pub missed: Vec<[f32; 2]>,
}

/// Missed modes are named in printed reports up to this many; a collapsed
/// run's whole list stays in `eval.json`.
pub const MISSED_NAMED: usize = 8;

/// A mode center as reports print it: `(x, y)`, each to 3 decimals with
/// trailing zeros dropped, so the ring's `cos(2πk/8)` reads `0.707`, not
/// `0.70710677`, and a rounding residue like `-4.4e-8` reads `0`.
pub fn center_label([x, y]: [f32; 2]) -> String {
    format!("({}, {})", short_number(x), short_number(y))
}

fn short_number(v: f32) -> String {
    let s = format!("{v:.3}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" { "0".into() } else { s.into() }
}

/// Scores `samples` (row-major `[x0, y0, x1, y1, ...]`) against a Gaussian
/// mixture with the given mode `centers` and per-component `std`.
///
/// See the module documentation for the protocol and its edge cases.
pub fn score_modes(samples: &[f32], centers: &[[f32; 2]], std: f32) -> ModeScore {
    let modes_total = centers.len();
    let threshold = 3.0 * f64::from(std);
    let threshold_sq = threshold * threshold;

    let mut counts = vec![0usize; modes_total];
    let mut covered = vec![false; modes_total];
    let mut n_samples = 0usize;
    let mut n_finite = 0usize;
    let mut n_high_quality = 0usize;

    for point in samples.chunks_exact(2) {
        n_samples += 1;
        let (x, y) = (f64::from(point[0]), f64::from(point[1]));
        if !(x.is_finite() && y.is_finite()) {
            continue;
        }
        n_finite += 1;
        let Some((mode, dist_sq)) = nearest(x, y, centers) else {
            continue;
        };
        counts[mode] += 1;
        if dist_sq <= threshold_sq {
            n_high_quality += 1;
            covered[mode] = true;
        }
    }

    let high_quality_fraction = if n_samples == 0 {
        0.0
    } else {
        n_high_quality as f64 / n_samples as f64
    };

    let assigned: usize = counts.iter().sum();
    debug_assert!(assigned == n_finite || modes_total == 0);
    let reverse_kl = if assigned == 0 {
        0.0
    } else {
        let k = modes_total as f64;
        let kl: f64 = counts
            .iter()
            .filter(|&&c| c > 0)
            .map(|&c| {
                let p = c as f64 / assigned as f64;
                p * (p * k).ln()
            })
            .sum();
        // Rounding can leave a tiny negative value for a uniform histogram.
        kl.max(0.0)
    };

    ModeScore {
        modes_covered: covered.iter().filter(|&&c| c).count(),
        modes_total,
        high_quality_fraction,
        reverse_kl,
        samples: n_samples,
        missed: centers
            .iter()
            .zip(&covered)
            .filter(|&(_, &c)| !c)
            .map(|(center, _)| *center)
            .collect(),
    }
}

/// Index of the center nearest to `(x, y)` and the squared distance to it;
/// ties go to the lowest index. `None` when there are no centers.
fn nearest(x: f64, y: f64, centers: &[[f32; 2]]) -> Option<(usize, f64)> {
    let mut best: Option<(usize, f64)> = None;
    for (i, c) in centers.iter().enumerate() {
        let dx = x - f64::from(c[0]);
        let dy = y - f64::from(c[1]);
        let d = dx * dx + dy * dy;
        if best.is_none_or(|(_, b)| d < b) {
            best = Some((i, d));
        }
    }
    best
}

/// Mean and standard error (sample std / sqrt(n), 0 for n = 1) of a list.
///
/// Returns `(0.0, 0.0)` for an empty list.
pub fn mean_and_standard_error(values: &[f64]) -> (f64, f64) {
    let n = values.len();
    if n == 0 {
        return (0.0, 0.0);
    }
    let nf = n as f64;
    let mean = values.iter().sum::<f64>() / nf;
    if n == 1 {
        return (mean, 0.0);
    }
    let var = values.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / (nf - 1.0);
    (mean, (var / nf).sqrt())
}

/// Mean ± standard error of the mode scores over several seeds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SeedSummary {
    /// Number of seeds (scores) summarised.
    pub seeds: usize,
    /// Mean number of modes covered.
    pub modes_mean: f64,
    /// Standard error of the number of modes covered.
    pub modes_se: f64,
    /// Mean high-quality fraction.
    pub high_quality_mean: f64,
    /// Standard error of the high-quality fraction.
    pub high_quality_se: f64,
    /// Mean reverse KL (nats).
    pub reverse_kl_mean: f64,
    /// Standard error of the reverse KL.
    pub reverse_kl_se: f64,
}

/// Aggregates per-seed scores into mean and standard error of modes covered,
/// high-quality fraction and reverse KL. All zeros for an empty list.
pub fn summarize(scores: &[ModeScore]) -> SeedSummary {
    let stat = |f: fn(&ModeScore) -> f64| {
        let values: Vec<f64> = scores.iter().map(f).collect();
        mean_and_standard_error(&values)
    };
    let (modes_mean, modes_se) = stat(|s| s.modes_covered as f64);
    let (high_quality_mean, high_quality_se) = stat(|s| s.high_quality_fraction);
    let (reverse_kl_mean, reverse_kl_se) = stat(|s| s.reverse_kl);
    SeedSummary {
        seeds: scores.len(),
        modes_mean,
        modes_se,
        high_quality_mean,
        high_quality_se,
        reverse_kl_mean,
        reverse_kl_se,
    }
}

/// Every missed mode center with the number of scores that missed it, most often
/// first (ties in the mixture's order, as the scores list them).
pub fn missed_counts(scores: &[ModeScore]) -> Vec<([f32; 2], usize)> {
    let mut counts: Vec<([f32; 2], usize)> = Vec::new();
    for center in scores.iter().flat_map(|s| &s.missed) {
        match counts.iter_mut().find(|(c, _)| c == center) {
            Some((_, n)) => *n += 1,
            None => counts.push((*center, 1)),
        }
    }
    counts.sort_by_key(|&(_, n)| std::cmp::Reverse(n));
    counts
}

/// The printed line of [`missed_counts`]: `  modes missed, by center and
/// {unit}: (x, y) by n, …`, when 1 to [`MISSED_NAMED`] centers were missed.
pub fn missed_counts_line(counts: &[([f32; 2], usize)], unit: &str) -> Option<String> {
    if !(1..=MISSED_NAMED).contains(&counts.len()) {
        return None;
    }
    let at: Vec<String> = counts
        .iter()
        .map(|&(c, n)| format!("{} by {n}", center_label(c)))
        .collect();
    Some(format!(
        "  modes missed, by center and {unit}: {}",
        at.join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn center_labels_are_short_and_exact_where_the_center_is() {
        assert_eq!(center_label([-4.0, 2.0]), "(-4, 2)");
        assert_eq!(center_label([0.70710677, -0.7071069]), "(0.707, -0.707)");
        assert_eq!(center_label([-4.371139e-8, 1.0]), "(0, 1)");
        assert_eq!(center_label([0.5, -1.25]), "(0.5, -1.25)");
    }

    const RING_STD: f32 = 0.01;
    const GRID_STD: f32 = 0.05;

    fn ring() -> Vec<[f32; 2]> {
        (0..8)
            .map(|i| {
                let a = 2.0 * std::f32::consts::PI * i as f32 / 8.0;
                [a.cos(), a.sin()]
            })
            .collect()
    }

    fn grid() -> Vec<[f32; 2]> {
        let mut c = Vec::new();
        for x in [-4.0f32, -2.0, 0.0, 2.0, 4.0] {
            for y in [-4.0f32, -2.0, 0.0, 2.0, 4.0] {
                c.push([x, y]);
            }
        }
        c
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn ring_evenly_covered() {
        let centers = ring();
        let mut s = Vec::new();
        for _ in 0..100 {
            for c in &centers {
                s.extend_from_slice(c);
            }
        }
        let r = score_modes(&s, &centers, RING_STD);
        assert_eq!(r.modes_covered, 8);
        assert_eq!(r.modes_total, 8);
        assert_eq!(r.samples, 800);
        assert!(close(r.high_quality_fraction, 1.0));
        assert!(close(r.reverse_kl, 0.0), "{}", r.reverse_kl);
    }

    #[test]
    fn ring_single_mode() {
        let centers = ring();
        let s: Vec<f32> = (0..SAMPLES).flat_map(|_| centers[3]).collect();
        let r = score_modes(&s, &centers, RING_STD);
        assert_eq!(r.modes_covered, 1);
        assert_eq!(r.missed.len(), 7);
        assert!(!r.missed.contains(&centers[3]));
        assert_eq!(r.samples, SAMPLES);
        assert!(close(r.high_quality_fraction, 1.0));
        assert!(close(r.reverse_kl, 8f64.ln()), "{}", r.reverse_kl);
    }

    #[test]
    fn three_std_threshold() {
        let centers = ring();
        let inside = [1.0 + 2.9 * RING_STD, 0.0];
        let outside = [1.0 + 3.1 * RING_STD, 0.0];
        let r = score_modes(&inside, &centers, RING_STD);
        assert_eq!((r.modes_covered, r.samples), (1, 1));
        assert!(close(r.high_quality_fraction, 1.0));
        let r = score_modes(&outside, &centers, RING_STD);
        assert_eq!((r.modes_covered, r.samples), (0, 1));
        assert!(close(r.high_quality_fraction, 0.0));
        // Still in the histogram: one sample in one of 8 modes.
        assert!(close(r.reverse_kl, 8f64.ln()));
        let both = [inside, outside].concat();
        let r = score_modes(&both, &centers, RING_STD);
        assert_eq!(r.modes_covered, 1);
        assert!(close(r.high_quality_fraction, 0.5));
    }

    #[test]
    fn grid_with_three_empty_modes() {
        let centers = grid();
        let mut s = Vec::new();
        for c in centers.iter().skip(3) {
            for _ in 0..10 {
                s.extend_from_slice(c);
            }
        }
        let r = score_modes(&s, &centers, GRID_STD);
        assert_eq!(r.modes_covered, 22);
        assert_eq!(r.missed, centers[..3]);
        assert_eq!(r.modes_total, 25);
        assert!(close(r.high_quality_fraction, 1.0));
        assert!(
            close(r.reverse_kl, (25.0f64 / 22.0).ln()),
            "{}",
            r.reverse_kl
        );
    }

    #[test]
    fn far_samples_are_low_quality_but_in_histogram() {
        let centers = ring();
        // Half on the modes, half halfway to the origin (distance 0.5 >> 0.03)
        // with the same nearest mode: histogram stays uniform.
        let mut s = Vec::new();
        for c in &centers {
            s.extend_from_slice(c);
            s.extend_from_slice(&[0.5 * c[0], 0.5 * c[1]]);
        }
        let r = score_modes(&s, &centers, RING_STD);
        assert_eq!(r.modes_covered, 8);
        assert!(close(r.high_quality_fraction, 0.5));
        assert!(close(r.reverse_kl, 0.0), "{}", r.reverse_kl);

        // Half on the modes evenly (8), half far but nearest to mode 0 (8):
        // p_0 = 9/16, p_k = 1/16 otherwise.
        let mut s = Vec::new();
        for c in &centers {
            s.extend_from_slice(c);
        }
        for _ in 0..8 {
            s.extend_from_slice(&[0.5 * centers[0][0], 0.5 * centers[0][1]]);
        }
        let r = score_modes(&s, &centers, RING_STD);
        assert_eq!(r.modes_covered, 8);
        assert!(close(r.high_quality_fraction, 0.5));
        let expected = 9.0 / 16.0 * (9.0f64 / 2.0).ln() + 7.0 / 16.0 * 0.5f64.ln();
        assert!(
            close(r.reverse_kl, expected),
            "{} vs {expected}",
            r.reverse_kl
        );
        assert!(r.reverse_kl > 0.0);
    }

    #[test]
    fn non_finite_samples() {
        let centers = ring();
        let mut s = Vec::new();
        for c in &centers {
            s.extend_from_slice(c);
        }
        for i in 0..8 {
            let bad = match i % 3 {
                0 => [f32::NAN, 0.0],
                1 => [1.0, f32::INFINITY],
                _ => [f32::NEG_INFINITY, f32::NAN],
            };
            s.extend_from_slice(&bad);
        }
        let r = score_modes(&s, &centers, RING_STD);
        assert_eq!(r.samples, 16);
        assert_eq!(r.modes_covered, 8);
        // In the HQ denominator ...
        assert!(close(r.high_quality_fraction, 0.5));
        // ... but not in the histogram.
        assert!(close(r.reverse_kl, 0.0), "{}", r.reverse_kl);

        let all_nan = vec![f32::NAN; 10];
        let r = score_modes(&all_nan, &centers, RING_STD);
        assert_eq!(r.samples, 5);
        assert_eq!(r.modes_covered, 0);
        assert_eq!(r.high_quality_fraction, 0.0);
        assert_eq!(r.reverse_kl, 0.0);
    }

    #[test]
    fn empty_inputs() {
        let r = score_modes(&[], &ring(), RING_STD);
        assert_eq!(
            r,
            ModeScore {
                modes_covered: 0,
                modes_total: 8,
                high_quality_fraction: 0.0,
                reverse_kl: 0.0,
                samples: 0,
                missed: ring().to_vec(),
            }
        );
        let r = score_modes(&[0.0, 0.0, 1.0], &[], RING_STD);
        assert_eq!((r.modes_covered, r.modes_total, r.samples), (0, 0, 1));
        assert_eq!(r.high_quality_fraction, 0.0);
        assert_eq!(r.reverse_kl, 0.0);
        assert_eq!(mean_and_standard_error(&[]), (0.0, 0.0));
        let s = summarize(&[]);
        assert_eq!(s.seeds, 0);
        assert_eq!(s.modes_mean, 0.0);
        assert_eq!(s.reverse_kl_se, 0.0);
    }

    #[test]
    fn mean_and_se() {
        let (m, se) = mean_and_standard_error(&[1.0, 2.0, 3.0, 4.0]);
        assert!(close(m, 2.5));
        assert!(close(se, (5.0f64 / 3.0).sqrt() / 2.0), "{se}");
        assert_eq!(mean_and_standard_error(&[7.0]), (7.0, 0.0));
    }

    #[test]
    fn summarize_scores() {
        let score = |covered, hq, kl| ModeScore {
            modes_covered: covered,
            modes_total: 8,
            high_quality_fraction: hq,
            reverse_kl: kl,
            samples: SAMPLES,
            missed: Vec::new(),
        };
        let s = summarize(&[
            score(1, 0.1, 1.0),
            score(2, 0.2, 2.0),
            score(3, 0.3, 3.0),
            score(4, 0.4, 4.0),
        ]);
        let se = (5.0f64 / 3.0).sqrt() / 2.0;
        assert_eq!(s.seeds, 4);
        assert!(close(s.modes_mean, 2.5) && close(s.modes_se, se));
        assert!(close(s.high_quality_mean, 0.25) && close(s.high_quality_se, se / 10.0));
        assert!(close(s.reverse_kl_mean, 2.5) && close(s.reverse_kl_se, se));
    }
}
