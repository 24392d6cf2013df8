//! One checkpoint's mode coverage over several noise draws.
//!
//! The published 2-D protocol counts modes on one draw of 2,500 samples. A
//! thin mode, one that holds well under 1/2,500 of the generator's mass, is
//! covered in some draws and missed in others, so the count of one fixed
//! checkpoint is itself a random variable. Scoring draws with noise seeds
//! S, S+1, …, S+K−1 measures that spread: the mean count over the draws
//! estimates what the one-draw protocol gives on average, and the number of
//! draws that miss each mode says which modes are thin. Draw S is exactly
//! `eval --noise-seed S`.

use serde::{Deserialize, Serialize};

use super::modes::{self, ModeScore, SeedSummary};
use super::report::{Sampler, score_draw};
use crate::data::Mixture;
use crate::gan::Architecture;
use crate::gan::setting::{SettingError, require};
use crate::gpu::GpuContext;

/// Most draws one call scores (each is 2,500 samples through G).
pub const MAX_DRAWS: u64 = 10_000;

/// Where `sweep --noise-seeds` keeps each run's draws, beside its `eval.json`.
pub const FILE: &str = "draws.json";

/// A checkpoint's mode scores over consecutive noise seeds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DrawSweep {
    pub dataset: String,
    /// The checkpoint's training step.
    pub step: u64,
    /// The noise seed of the first draw; draw i used `first_noise_seed + i`.
    pub first_noise_seed: u64,
    /// One score per draw, in noise-seed order.
    pub draws: Vec<ModeScore>,
    /// Mean ± standard error over the draws (`seeds` counts the draws).
    pub summary: SeedSummary,
    /// Draws that covered every mode.
    pub all_covered: usize,
    /// Each mode center some draw missed, with the number of draws that missed it.
    pub missed_modes: Vec<([f32; 2], usize)>,
}

impl DrawSweep {
    pub fn of(dataset: &str, step: u64, first_noise_seed: u64, draws: Vec<ModeScore>) -> Self {
        DrawSweep {
            dataset: dataset.into(),
            step,
            first_noise_seed,
            summary: modes::summarize(&draws),
            all_covered: draws
                .iter()
                .filter(|d| d.modes_covered == d.modes_total)
                .count(),
            missed_modes: modes::missed_counts(&draws),
            draws,
        }
    }

    /// The printed report: the summary line, the count of each draw (up to
    /// 100 draws), and the modes missed with how many draws missed them.
    pub fn lines(&self) -> Vec<String> {
        let (k, s) = (self.draws.len(), &self.summary);
        let total = self.draws.first().map_or(0, |d| d.modes_total);
        let samples = self.draws.first().map_or(0, |d| d.samples);
        let last_seed = self.first_noise_seed + k.saturating_sub(1) as u64;
        let mut out = vec![format!(
            "{} (step {}), {k} draws of {samples} samples (noise seeds {}–{last_seed}): \
             modes {:.2} ± {:.2} of {total} (all {total} in {} of {k} draws), \
             high-quality {:.1}% ± {:.1}, reverse KL {:.4} ± {:.4}",
            self.dataset,
            self.step,
            self.first_noise_seed,
            s.modes_mean,
            s.modes_se,
            self.all_covered,
            100.0 * s.high_quality_mean,
            100.0 * s.high_quality_se,
            s.reverse_kl_mean,
            s.reverse_kl_se
        )];
        if k <= 100 {
            let counts: Vec<String> = self
                .draws
                .iter()
                .map(|d| d.modes_covered.to_string())
                .collect();
            out.push(format!(
                "  modes covered, draw by draw: {}",
                counts.join(" ")
            ));
        }
        out.extend(modes::missed_counts_line(&self.missed_modes, "draws"));
        out
    }
}

/// Refuses a draw sweep of `noise_seeds` draws that cannot run: a dataset
/// without modes, a count outside 1..=[`MAX_DRAWS`], or noise seeds past
/// `u64::MAX`. Returns the mixture and the last noise seed.
pub fn check(
    dataset: &str,
    first_noise_seed: u64,
    noise_seeds: u64,
) -> Result<(Mixture, u64), SettingError> {
    let m = Mixture::named(dataset).ok_or_else(|| SettingError {
        field: "noise_seeds",
        problem: format!(
            "count modes, which only the 2-D mixtures (ring, grid) have, not {dataset}"
        ),
        mentions: &[],
    })?;
    require(
        (1..=MAX_DRAWS).contains(&noise_seeds),
        "noise_seeds",
        format!("must be 1 to {MAX_DRAWS}, not {noise_seeds}"),
    )?;
    let last = first_noise_seed
        .checked_add(noise_seeds - 1)
        .ok_or_else(|| SettingError {
            field: "first_noise_seed",
            problem: format!(
                "{first_noise_seed} + noise_seeds {noise_seeds} passes the largest seed"
            ),
            mentions: &["noise_seeds"],
        })?;
    Ok((m, last))
}

/// Scores `count` draws of the generator `g_params` on the mixture `dataset`,
/// with noise seeds `first_noise_seed`, `first_noise_seed + 1`, ….
pub fn score_draws(
    gpu: Option<&GpuContext>,
    model: &Architecture,
    g_params: &[f32],
    dataset: &str,
    step: u64,
    first_noise_seed: u64,
    count: u64,
) -> anyhow::Result<DrawSweep> {
    let (m, last) = check(dataset, first_noise_seed, count)?;
    // One sampler for every draw: the plan is built (and on a GPU its pipelines made) once.
    let mut sampler = Sampler::new(gpu, model, g_params, modes::SAMPLES)?;
    let draws = (first_noise_seed..=last)
        .map(|seed| score_draw(&mut sampler, &m, seed))
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(DrawSweep::of(dataset, step, first_noise_seed, draws))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn score(covered: usize, hq: f64, missed: &[[f32; 2]]) -> ModeScore {
        ModeScore {
            modes_covered: covered,
            modes_total: 25,
            high_quality_fraction: hq,
            reverse_kl: 0.01,
            samples: 2500,
            missed: missed.to_vec(),
        }
    }

    #[test]
    fn draws_are_summarized_with_the_modes_each_draw_missed() {
        let (a, b) = ([2.0, 4.0], [-4.0, 0.0]);
        let draws = vec![
            score(25, 0.96, &[]),
            score(24, 0.95, &[a]),
            score(23, 0.94, &[a, b]),
            score(25, 0.97, &[]),
        ];
        let sweep = DrawSweep::of("grid", 600, 7, draws);
        assert_eq!(sweep.all_covered, 2);
        assert_eq!(sweep.summary.seeds, 4);
        assert!((sweep.summary.modes_mean - 24.25).abs() < 1e-12);
        // Sample standard deviation of (25, 24, 23, 25) is sqrt(11/12); s.e. = that / 2.
        let se = (11.0f64 / 12.0).sqrt() / 2.0;
        assert!((sweep.summary.modes_se - se).abs() < 1e-12 * se);
        assert!((sweep.summary.high_quality_mean - 0.955).abs() < 1e-12);
        assert_eq!(sweep.missed_modes, vec![(a, 2), (b, 1)]);
        let lines = sweep.lines();
        assert_eq!(
            lines[0],
            "grid (step 600), 4 draws of 2500 samples (noise seeds 7–10): modes 24.25 ± 0.48 \
             of 25 (all 25 in 2 of 4 draws), high-quality 95.5% ± 0.6, reverse KL 0.0100 ± 0.0000"
        );
        assert_eq!(lines[1], "  modes covered, draw by draw: 25 24 23 25");
        assert_eq!(
            lines[2],
            "  modes missed, by center and draws: (2, 4) by 2, (-4, 0) by 1"
        );
    }

    #[test]
    fn draws_without_a_miss_print_no_missed_line() {
        let sweep = DrawSweep::of("grid", 1, 1, vec![score(25, 0.9, &[])]);
        assert_eq!(sweep.all_covered, 1);
        assert_eq!(sweep.lines().len(), 2);
    }

    #[test]
    fn refusals_name_the_fields_at_fault() {
        let said = |dataset, first, count| check(dataset, first, count).unwrap_err().to_string();
        assert_eq!(
            said("mnist", 1, 2),
            "noise_seeds count modes, which only the 2-D mixtures (ring, grid) have, not mnist"
        );
        assert_eq!(said("ring", 1, 0), "noise_seeds must be 1 to 10000, not 0");
        let e = check("ring", u64::MAX, 2).unwrap_err();
        assert_eq!(e.field, "first_noise_seed");
        assert_eq!(
            e.to_string(),
            "first_noise_seed 18446744073709551615 + noise_seeds 2 passes the largest seed"
        );
        assert_eq!(check("ring", u64::MAX, 1).unwrap().1, u64::MAX);
    }
}
