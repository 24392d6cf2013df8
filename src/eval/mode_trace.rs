//! Mode coverage over training (`train --eval-every N` on the mixtures): the
//! 2-D protocol of `eval` (2,500 samples from the sampling generator, modes
//! covered, high-quality share, reverse KL, missed centers) every N steps,
//! kept in `modes.csv` and drawn in `modes.png`, so one can see when a mode
//! is found and when it is lost, not only whether it is there at the end.
//! The training loop reaches it through [`observer`], a
//! [`crate::gan::observer::StepObserver`] the commands hand to the loop.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::modes::{self, ModeScore};
use super::report::{Request, evaluate};
use crate::data::{DataKind, Dataset, DatasetName};
use crate::gan::Architecture;
use crate::gan::observer::{Observer, StepObserver};
use crate::gan::setting::{SettingError, require};
use crate::gpu::GpuContext;
use crate::io::{atomic::write_atomic, grid, plot, step_csv};

/// Seed of the noise each point of the trace draws its samples from: the one
/// `train` scores the finished run with, so the trace's last row is `eval.json`'s.
pub const TRACE_NOISE_SEED: u64 = 1;

const HEADER: &str = "step,modes_covered,modes_total,high_quality,reverse_kl,missed";

/// Refuses an `eval_every` on data without modes (the image sets), before a run starts.
pub fn check_dataset(eval_every: u64, kind: &DataKind) -> Result<(), SettingError> {
    require(
        eval_every == 0 || matches!(kind, DataKind::Points(_)),
        "eval_every",
        "traces mode coverage on the mixtures (ring, grid), not on images",
    )
}

/// The rows so far: one score per traced step.
#[derive(Default)]
pub struct ModeTrace {
    rows: Vec<(u64, ModeScore)>,
}

impl ModeTrace {
    /// The rows of an existing `modes.csv` up to step `upto` (resuming); an
    /// absent file is an empty trace.
    pub fn read(out: &Path, upto: u64) -> anyhow::Result<ModeTrace> {
        let rows = step_csv::read_rows_upto(&out.join("modes.csv"), upto, parse_row)?;
        Ok(ModeTrace { rows })
    }

    /// Scores the generator `model` with parameters `g` at `step` on `dataset`
    /// (`ring` or `grid`), on `gpu` when there is one, and appends the row.
    pub fn record(
        &mut self,
        gpu: Option<&GpuContext>,
        model: &Architecture,
        g: &[f32],
        dataset: &str,
        step: u64,
    ) -> anyhow::Result<()> {
        let request = Request {
            dataset,
            step,
            noise_seed: TRACE_NOISE_SEED,
            data_dir: None,
            with_parzen: false,
            bn_stats: Default::default(),
        };
        let report = evaluate(gpu, model, g, &request)?;
        let score = report.modes.ok_or_else(|| {
            anyhow::anyhow!("tracing mode coverage: '{dataset}' has no mode protocol")
        })?;
        self.rows.retain(|(s, _)| *s < step);
        self.rows.push((step, score));
        Ok(())
    }

    pub fn rows(&self) -> &[(u64, ModeScore)] {
        &self.rows
    }

    /// Writes `modes.csv` and `modes.png` into `out` (each atomically).
    pub fn write(&self, out: &Path) -> anyhow::Result<()> {
        let mut csv = format!("{HEADER}\n");
        for (step, s) in &self.rows {
            let missed: Vec<String> = s.missed.iter().map(|&c| modes::center_label(c)).collect();
            writeln!(
                csv,
                "{step},{},{},{},{},\"{}\"",
                s.modes_covered,
                s.modes_total,
                s.high_quality_fraction,
                s.reverse_kl,
                missed.join(" ")
            )?;
        }
        write_atomic(&out.join("modes.csv"), csv.as_bytes())?;
        let series = |name: &str, color, f: fn(&ModeScore) -> f64| plot::Series {
            name: name.into(),
            color,
            points: self.rows.iter().map(|(x, s)| (*x as f64, f(s))).collect(),
        };
        let img = plot::line_plot(
            "mode coverage over training",
            "step",
            "fraction",
            &[
                series("modes covered", [40, 90, 200], |s| {
                    s.modes_covered as f64 / s.modes_total.max(1) as f64
                }),
                series("high-quality samples", [200, 50, 50], |s| {
                    s.high_quality_fraction
                }),
            ],
            900,
            500,
        )?;
        write_atomic(&out.join("modes.png"), &grid::png_bytes(&img)?)
    }
}

/// The observer of `train --eval-every N` (none when N is 0) for the run in
/// `out` on `dataset`, refused on data without modes. Resuming at
/// `resume_step`, it continues the trace in `out/modes.csv` up to that step.
pub fn observer(
    eval_every: u64,
    dataset: &Dataset,
    out: &Path,
    resume_step: Option<u64>,
) -> anyhow::Result<Option<Observer>> {
    check_dataset(eval_every, &dataset.kind)?;
    if eval_every == 0 {
        return Ok(None);
    }
    let trace = match resume_step {
        Some(step) => ModeTrace::read(out, step)?,
        None => ModeTrace::default(),
    };
    Ok(Some(Observer::new(TraceObserver {
        trace,
        out: out.to_path_buf(),
        dataset: dataset.name,
    })))
}

/// Scores each step it is shown into the trace and rewrites `modes.csv` and
/// `modes.png` in the run folder.
struct TraceObserver {
    trace: ModeTrace,
    out: PathBuf,
    dataset: DatasetName,
}

impl StepObserver for TraceObserver {
    fn observe(
        &mut self,
        step: u64,
        model: &Architecture,
        generator: &[f32],
        gpu: Option<&GpuContext>,
    ) -> anyhow::Result<()> {
        self.trace
            .record(gpu, model, generator, self.dataset.as_str(), step)?;
        self.trace.write(&self.out)
    }
}

/// One `modes.csv` line. `samples` is not stored (always `modes::SAMPLES`),
/// and the missed centers are re-read from their labels (3 decimals: exact
/// on the grid, rounded on the ring).
fn parse_row(line: &str) -> Option<(u64, ModeScore)> {
    let (numbers, missed) = line.split_once(",\"")?;
    let v: Vec<&str> = numbers.split(',').collect();
    if v.len() != 5 {
        return None;
    }
    let missed = missed.strip_suffix('"')?;
    let centers = missed
        .split(") (")
        .filter(|c| !c.is_empty())
        .map(|c| {
            let (x, y) = c
                .trim_matches(|ch| ch == '(' || ch == ')')
                .split_once(", ")?;
            Some([x.parse().ok()?, y.parse().ok()?])
        })
        .collect::<Option<Vec<[f32; 2]>>>()?;
    Some((
        v[0].parse().ok()?,
        ModeScore {
            modes_covered: v[1].parse().ok()?,
            modes_total: v[2].parse().ok()?,
            high_quality_fraction: v[3].parse().ok()?,
            reverse_kl: v[4].parse().ok()?,
            samples: modes::SAMPLES,
            missed: centers,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_survive_a_write_and_a_read_and_reading_stops_at_the_resume_step() {
        let dir = std::env::temp_dir().join(format!("shadergan-trace-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let score = |covered, missed: Vec<[f32; 2]>| ModeScore {
            modes_covered: covered,
            modes_total: 25,
            high_quality_fraction: 0.9375,
            reverse_kl: 0.0625,
            samples: modes::SAMPLES,
            missed,
        };
        let trace = ModeTrace {
            rows: vec![
                (1000, score(23, vec![[-4.0, 2.0], [0.0, -4.0]])),
                (2000, score(25, vec![])),
            ],
        };
        trace.write(&dir).unwrap();
        let text = std::fs::read_to_string(dir.join("modes.csv")).unwrap();
        assert_eq!(
            text,
            format!(
                "{HEADER}\n1000,23,25,0.9375,0.0625,\"(-4, 2) (0, -4)\"\n2000,25,25,0.9375,0.0625,\"\"\n"
            )
        );
        assert!(dir.join("modes.png").is_file());
        let back = ModeTrace::read(&dir, 1500).unwrap();
        assert_eq!(back.rows(), &trace.rows()[..1]);
        assert_eq!(ModeTrace::read(&dir, 9999).unwrap().rows(), trace.rows());
        std::fs::write(dir.join("modes.csv"), format!("{HEADER}\n1000,23,x\n")).unwrap();
        let e = ModeTrace::read(&dir, 9999).err().unwrap().to_string();
        assert!(e.ends_with("modes.csv line 2 is malformed"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(ModeTrace::read(&dir, 10).unwrap().rows().is_empty());
    }
}
