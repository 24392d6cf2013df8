//! Seed sweeps: mean ± standard error over the reports of several seeds of
//! one configuration, for a sweep just trained (`sweep`) or for run
//! folders gathered from several sweeps (`summarize`): a sweep split
//! over machines, or cut short by a time limit, keeps each finished seed's
//! `config.json` and `eval.json`, and these are all a summary needs.

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::draws::DrawSweep;
use super::modes::{self, SeedSummary, mean_and_standard_error};
use super::report::Report;

/// Mean ± standard error over seeds of every score the reports hold.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SweepStats {
    pub modes: Option<SeedSummary>,
    pub parzen: Option<(f64, f64)>,
    pub frechet_distance: Option<(f64, f64)>,
    pub inception_score: Option<(f64, f64)>,
    /// Each mode center missed by some seed, with the number of seeds that missed it
    /// (most often first).
    pub missed_modes: Vec<([f32; 2], usize)>,
}

impl SweepStats {
    pub fn of(reports: &[Report]) -> SweepStats {
        let scores: Vec<modes::ModeScore> =
            reports.iter().filter_map(|r| r.modes.clone()).collect();
        let stat = |f: &dyn Fn(&Report) -> Option<f64>| {
            let v: Vec<f64> = reports.iter().filter_map(f).collect();
            (!v.is_empty()).then(|| mean_and_standard_error(&v))
        };
        SweepStats {
            modes: (!scores.is_empty()).then(|| modes::summarize(&scores)),
            parzen: stat(&|r| r.parzen.as_ref().map(|p| p.mean)),
            frechet_distance: stat(&|r| r.classifier.as_ref().map(|c| c.frechet_distance)),
            inception_score: stat(&|r| r.classifier.as_ref().map(|c| c.inception_score)),
            missed_modes: modes::missed_counts(&scores),
        }
    }

    /// The indented lines `eval` prints under a sweep's heading.
    pub fn lines(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(m) = &self.modes {
            out.push(format!(
                "  modes {:.2} ± {:.2}, high-quality {:.1}% ± {:.1}, reverse KL {:.4} ± {:.4}",
                m.modes_mean,
                m.modes_se,
                100.0 * m.high_quality_mean,
                100.0 * m.high_quality_se,
                m.reverse_kl_mean,
                m.reverse_kl_se
            ));
        }
        out.extend(modes::missed_counts_line(&self.missed_modes, "seeds"));
        if let Some((m, s)) = self.parzen {
            out.push(format!("  Parzen {m:.1} ± {s:.1} nats"));
        }
        if let Some((m, s)) = self.frechet_distance {
            out.push(format!("  Fréchet distance {m:.3} ± {s:.3}"));
        }
        if let Some((m, s)) = self.inception_score {
            out.push(format!("  inception score {m:.3} ± {s:.3}"));
        }
        out
    }
}

/// One scored run of a sweep.
#[derive(Clone, Debug)]
pub struct ScoredRun {
    pub dir: PathBuf,
    pub seed: u64,
    /// The run's `config.json`.
    pub config: serde_json::Value,
    /// The run's `eval.json`.
    pub report: Report,
    /// The run's `modes.csv` (`train --eval-every`), as (step, modes covered); empty without one.
    pub trace: Vec<(u64, usize)>,
    /// The run's `draws.json` (`sweep --noise-seeds`): its final checkpoint over many noise draws.
    pub draws: Option<DrawSweep>,
}

/// Mean modes covered over the trace points in the last quarter of a run
/// (steps above 3/4 of its last traced step); `None` without a trace.
/// Coverage flickers late in training, so this averages many draws where the
/// final count is one.
pub fn late_modes(trace: &[(u64, usize)]) -> Option<f64> {
    let last = trace.last()?.0;
    let late: Vec<f64> = trace
        .iter()
        .filter(|(step, _)| 4 * step > 3 * last)
        .map(|&(_, covered)| covered as f64)
        .collect();
    Some(late.iter().sum::<f64>() / late.len() as f64)
}

/// Mean ± standard error over seeds of [`late_modes`], when every run has a trace.
pub fn late_modes_over_seeds(runs: &[ScoredRun]) -> Option<(f64, f64)> {
    let per_run: Option<Vec<f64>> = runs.iter().map(|r| late_modes(&r.trace)).collect();
    per_run
        .filter(|v| !v.is_empty())
        .map(|v| mean_and_standard_error(&v))
}

/// A run's mean modes covered over the noise draws of its final checkpoint.
pub fn draw_modes(run: &ScoredRun) -> Option<f64> {
    run.draws.as_ref().map(|d| d.summary.modes_mean)
}

/// Mean ± standard error over seeds of [`draw_modes`], when every run has draws.
pub fn draw_modes_over_seeds(runs: &[ScoredRun]) -> Option<(f64, f64)> {
    let per_run: Option<Vec<f64>> = runs.iter().map(draw_modes).collect();
    per_run
        .filter(|v| !v.is_empty())
        .map(|v| mean_and_standard_error(&v))
}

/// The number of draws per run, as printed: `40`, or `20–40` should the runs differ.
fn draws_per_run(runs: &[ScoredRun]) -> String {
    let counts = runs
        .iter()
        .filter_map(|r| r.draws.as_ref())
        .map(|d| d.draws.len());
    match (counts.clone().min(), counts.max()) {
        (Some(lo), Some(hi)) if lo < hi => format!("{lo}–{hi}"),
        (Some(k), _) => k.to_string(),
        _ => "no".into(),
    }
}

/// The printed lines of a summary: the scores, then the late coverage when
/// traced and the coverage over noise draws when scored.
pub fn summary_lines(runs: &[ScoredRun]) -> Vec<String> {
    let reports: Vec<Report> = runs.iter().map(|r| r.report.clone()).collect();
    let mut lines = SweepStats::of(&reports).lines();
    if let Some((m, s)) = late_modes_over_seeds(runs) {
        lines.push(format!(
            "  modes over the last quarter of training (modes.csv): {m:.2} ± {s:.2}"
        ));
    }
    if let Some((m, s)) = draw_modes_over_seeds(runs) {
        lines.push(format!(
            "  modes over {} noise draws of each final checkpoint (draws.json): {m:.2} ± {s:.2}",
            draws_per_run(runs)
        ));
    }
    lines
}

/// The JSON of a summary, one shape for `sweep`'s `summary.json` and
/// for `summarize --json`: the seeds, what they trained (dataset,
/// steps, the backends they ran on), mean ± standard error of each score,
/// the missed modes, and each run's folder and report.
pub fn summary_json(runs: &[ScoredRun]) -> serde_json::Value {
    let reports: Vec<Report> = runs.iter().map(|r| r.report.clone()).collect();
    let stats = SweepStats::of(&reports);
    let first = runs.first().map(|r| &r.config);
    let setting = |key: &str| first.and_then(|c| c.get(key)).cloned();
    serde_json::json!({
        "seeds": runs.iter().map(|r| r.seed).collect::<Vec<_>>(),
        "dataset": setting("dataset"), "steps": setting("steps"), "backends": backends(runs),
        "modes": stats.modes, "parzen": stats.parzen,
        "frechet_distance": stats.frechet_distance, "inception_score": stats.inception_score,
        "missed_modes": stats.missed_modes, "late_modes": late_modes_over_seeds(runs),
        "draw_modes": draw_modes_over_seeds(runs),
        "runs": runs.iter().map(|r| serde_json::json!({
            "seed": r.seed, "dir": r.dir, "report": r.report, "late_modes": late_modes(&r.trace),
            "draw_modes": draw_modes(r),
        })).collect::<Vec<_>>(),
    })
}

/// The summary's first line: `3 seeds (mean ± standard error): 0, 1, 2; ring, 150 steps, on cpu`.
pub fn heading(runs: &[ScoredRun]) -> String {
    let listed: Vec<String> = runs.iter().map(|r| r.seed.to_string()).collect();
    let first = runs.first().map(|r| &r.config);
    let setting = |key: &str| first.and_then(|c| c.get(key));
    format!(
        "{} seed{} (mean ± standard error): {}; {}, {} steps, on {}",
        runs.len(),
        if runs.len() == 1 { "" } else { "s" },
        listed.join(", "),
        setting("dataset").and_then(|d| d.as_str()).unwrap_or("?"),
        setting("steps").map_or("?".into(), |s| s.to_string()),
        backends(runs).join(" and ")
    )
}

/// The distinct backends the runs name in their `config.json`, sorted.
fn backends(runs: &[ScoredRun]) -> Vec<&str> {
    let mut names: Vec<&str> = runs
        .iter()
        .filter_map(|r| r.config.get("backend").and_then(|b| b.as_str()))
        .collect();
    names.sort_unstable();
    names.dedup();
    names
}

/// Settings of `config.json` that may differ between the seeds of one
/// configuration: the seed itself, the run's id, where it ran, and how often
/// it logged, checkpointed and traced.
pub const PER_RUN_SETTINGS: &[&str] = &[
    "seed",
    "run_id",
    "backend",
    "sample_every",
    "log_every",
    "checkpoint_every",
    "eval_every",
    "shadergan_version",
];

/// Every scored run in `dirs`, sorted by seed. Each folder is a run (it holds
/// `eval.json`) or a sweep (its `seed-*` folders are runs; those without
/// `eval.json`, unfinished, are left out and listed in the second value).
/// Refused in one line: a folder with no scored run, an unreadable or
/// malformed file, a seed found twice, and runs configured differently.
pub fn gather(dirs: &[PathBuf]) -> anyhow::Result<(Vec<ScoredRun>, Vec<PathBuf>)> {
    let mut runs: Vec<ScoredRun> = Vec::new();
    let mut unfinished = Vec::new();
    for dir in dirs {
        let found = runs_in(dir, &mut unfinished)?;
        anyhow::ensure!(
            !found.is_empty(),
            "{} holds no scored run (no eval.json in it or in its seed-* folders)",
            dir.display()
        );
        for run_dir in found {
            runs.push(read_run(&run_dir)?);
        }
    }
    if let Some(first) = runs.first() {
        let reference = shared_settings(&first.config);
        for run in &runs[1..] {
            if let Some(key) = first_difference(&reference, &shared_settings(&run.config)) {
                anyhow::bail!(
                    "{} and {} were trained with different settings ({key}); summarize one configuration at a time",
                    first.dir.display(),
                    run.dir.display()
                );
            }
        }
    }
    runs.sort_by_key(|r| r.seed);
    for pair in runs.windows(2) {
        anyhow::ensure!(
            pair[0].seed != pair[1].seed,
            "seed {} appears twice: {} and {}",
            pair[0].seed,
            pair[0].dir.display(),
            pair[1].dir.display()
        );
    }
    Ok((runs, unfinished))
}

/// The run folders in `dir`: itself, or its `seed-*` folders.
fn runs_in(dir: &Path, unfinished: &mut Vec<PathBuf>) -> anyhow::Result<Vec<PathBuf>> {
    if dir.join("eval.json").is_file() {
        return Ok(vec![dir.to_path_buf()]);
    }
    let entries = std::fs::read_dir(dir)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", dir.display()))?;
    let mut found = Vec::new();
    for entry in entries {
        let path = entry
            .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", dir.display()))?
            .path();
        let is_seed_dir = path.is_dir()
            && path
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("seed-"));
        if !is_seed_dir {
            continue;
        }
        if path.join("eval.json").is_file() {
            found.push(path);
        } else {
            unfinished.push(path);
        }
    }
    found.sort();
    Ok(found)
}

fn read_json(path: &Path) -> anyhow::Result<serde_json::Value> {
    let bytes =
        std::fs::read(path).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
    serde_json::from_slice(&bytes)
        .map_err(|e| anyhow::anyhow!("{} is not valid JSON: {e}", path.display()))
}

fn read_run(dir: &Path) -> anyhow::Result<ScoredRun> {
    let config_path = dir.join("config.json");
    let config = read_json(&config_path)?;
    let seed = config
        .get("seed")
        .and_then(serde_json::Value::as_u64)
        .ok_or_else(|| anyhow::anyhow!("{} has no seed", config_path.display()))?;
    let report_path = dir.join("eval.json");
    let report: Report = serde_json::from_value(read_json(&report_path)?)
        .map_err(|e| anyhow::anyhow!("{} is not an eval report: {e}", report_path.display()))?;
    let trace = super::mode_trace::ModeTrace::read(dir, u64::MAX)?
        .rows()
        .iter()
        .map(|(step, score)| (*step, score.modes_covered))
        .collect();
    Ok(ScoredRun {
        dir: dir.to_path_buf(),
        seed,
        config,
        report,
        trace,
        draws: read_draws(dir)?,
    })
}

/// The run's `draws.json`, if it has one.
fn read_draws(dir: &Path) -> anyhow::Result<Option<DrawSweep>> {
    let path = dir.join(super::draws::FILE);
    if !path.is_file() {
        return Ok(None);
    }
    let draws = serde_json::from_value(read_json(&path)?)
        .map_err(|e| anyhow::anyhow!("{} is not a draws report: {e}", path.display()))?;
    Ok(Some(draws))
}

/// `config` without its per-run top-level fields.
fn shared_settings(config: &serde_json::Value) -> serde_json::Value {
    let mut shared = config.clone();
    if let Some(o) = shared.as_object_mut() {
        o.retain(|k, _| !PER_RUN_SETTINGS.contains(&k.as_str()));
    }
    shared
}

/// The first setting whose value differs, as `path: a vs b` (`model.pack: 6 vs 8`).
fn first_difference(a: &serde_json::Value, b: &serde_json::Value) -> Option<String> {
    difference_at("", a, b)
}

fn difference_at(path: &str, a: &serde_json::Value, b: &serde_json::Value) -> Option<String> {
    use serde_json::Value;
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: std::collections::BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            keys.into_iter().find_map(|k| {
                let at = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                difference_at(
                    &at,
                    x.get(k).unwrap_or(&Value::Null),
                    y.get(k).unwrap_or(&Value::Null),
                )
            })
        }
        _ if a == b => None,
        _ => Some(format!("{path}: {a} vs {b}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn late_modes_average_the_trace_over_the_last_quarter_of_the_run() {
        assert_eq!(late_modes(&[]), None);
        // Last step 4000: the quarter is steps above 3000 (3500 and 4000).
        let trace = [(1000, 10), (2000, 25), (3000, 25), (3500, 24), (4000, 23)];
        assert_eq!(late_modes(&trace), Some(23.5));
        assert_eq!(late_modes(&[(500, 7)]), Some(7.0));
    }

    /// A fresh folder under the system's temporary space, removed when the
    /// test ends (passing or not).
    struct Scratch(PathBuf);

    impl std::ops::Deref for Scratch {
        type Target = Path;
        fn deref(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn scratch(name: &str) -> Scratch {
        let dir =
            std::env::temp_dir().join(format!("shadergan-sweep-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    /// Writes a run of `seed` with `modes` of 25 covered (the rest missed, from
    /// the corner (4, 4) down) and `hq` high-quality.
    fn write_run(dir: &Path, seed: u64, pack: u64, modes: usize, hq: f64) {
        let missed: Vec<[f32; 2]> = (0..25 - modes)
            .map(|i| [4.0, 4.0 - 2.0 * i as f32])
            .collect();
        std::fs::create_dir_all(dir).unwrap();
        let config = json!({
            "dataset": "grid", "steps": 100, "model": {"pack": pack, "hidden": [8]},
            "seed": seed, "backend": if seed.is_multiple_of(2) { "cpu" } else { "gpu: X" }, "log_every": seed,
        });
        std::fs::write(dir.join("config.json"), config.to_string()).unwrap();
        let report = json!({
            "dataset": "grid", "step": 100, "classifier": null, "parzen": null, "skipped": [],
            "modes": {"modes_covered": modes, "modes_total": 25, "high_quality_fraction": hq,
                      "reverse_kl": 0.1, "samples": 2500, "missed": missed},
        });
        std::fs::write(dir.join("eval.json"), report.to_string()).unwrap();
    }

    #[test]
    fn runs_from_sweeps_and_single_folders_are_gathered_by_seed() {
        let root = scratch("gather");
        let a = root.join("a");
        write_run(&a.join("seed-0"), 0, 8, 25, 0.90);
        write_run(&a.join("seed-1"), 1, 8, 24, 0.94);
        std::fs::create_dir_all(a.join("seed-2")).unwrap(); // unfinished: no eval.json
        let b = root.join("b");
        write_run(&b, 3, 8, 23, 0.98);
        let (runs, unfinished) = gather(&[b.clone(), a.clone()]).unwrap();
        let seeds: Vec<u64> = runs.iter().map(|r| r.seed).collect();
        assert_eq!(seeds, [0, 1, 3]);
        assert_eq!(unfinished, [a.join("seed-2")]);
        let reports: Vec<Report> = runs.iter().map(|r| r.report.clone()).collect();
        let m = SweepStats::of(&reports).modes.unwrap();
        assert_eq!(m.seeds, 3);
        assert!((m.modes_mean - 24.0).abs() < 1e-12);
        // Standard error of (25, 24, 23): sample std 1, over √3.
        assert!((m.modes_se - 1.0 / 3f64.sqrt()).abs() < 1e-12);
        assert!((m.high_quality_mean - 0.94).abs() < 1e-12);
        // Seed 1 missed (4, 4); seed 3 missed (4, 4) and (4, 2).
        let missed = SweepStats::of(&reports).missed_modes;
        assert_eq!(missed, [([4.0, 4.0], 2), ([4.0, 2.0], 1)]);
    }

    #[test]
    fn draws_kept_beside_runs_are_summarized_and_bad_ones_named() {
        let root = scratch("draws");
        let score = |covered| modes::ModeScore {
            modes_covered: covered,
            modes_total: 25,
            high_quality_fraction: 0.9,
            reverse_kl: 0.1,
            samples: 2500,
            missed: vec![],
        };
        let keep = |seed: u64, counts: &[usize]| {
            let dir = root.join(format!("seed-{seed}"));
            write_run(&dir, seed, 8, counts[0], 0.9);
            let sweep = DrawSweep::of("grid", 100, 1, counts.iter().map(|&c| score(c)).collect());
            std::fs::write(
                dir.join("draws.json"),
                serde_json::to_string(&sweep).unwrap(),
            )
            .unwrap();
        };
        keep(0, &[25, 25, 25, 24]);
        keep(1, &[24, 24, 25]);
        let (runs, _) = gather(&[root.to_path_buf()]).unwrap();
        let (mean, se) = draw_modes_over_seeds(&runs).unwrap();
        // Per run 24.75 and 24.333…; two values' standard error is half their distance.
        assert!((mean - (24.75 + 73.0 / 3.0) / 2.0).abs() < 1e-12, "{mean}");
        assert!((se - (24.75 - 73.0 / 3.0) / 2.0).abs() < 1e-12, "{se}");
        let lines = summary_lines(&runs);
        assert!(
            lines.contains(
                &"  modes over 3–4 noise draws of each final checkpoint (draws.json): 24.54 ± 0.21"
                    .to_string()
            ),
            "{lines:?}"
        );
        // Not every run has draws: no figure over seeds.
        std::fs::remove_file(root.join("seed-1/draws.json")).unwrap();
        let (runs, _) = gather(&[root.to_path_buf()]).unwrap();
        assert_eq!(draw_modes_over_seeds(&runs), None);
        assert_eq!(draw_modes(&runs[0]), Some(24.75));
        std::fs::write(root.join("seed-1/draws.json"), "{\"draws\": 3}").unwrap();
        let e = gather(&[root.to_path_buf()]).unwrap_err().to_string();
        assert!(e.contains("draws.json is not a draws report"), "{e}");
    }

    #[test]
    fn a_seed_found_twice_is_refused() {
        let root = scratch("twice");
        write_run(&root.join("x/seed-4"), 4, 8, 25, 0.9);
        write_run(&root.join("y"), 4, 8, 25, 0.9);
        let e = gather(&[root.join("x"), root.join("y")])
            .unwrap_err()
            .to_string();
        assert!(e.contains("seed 4 appears twice"), "{e}");
    }

    #[test]
    fn runs_of_other_settings_are_refused_naming_the_setting() {
        let root = scratch("differ");
        write_run(&root.join("p6"), 0, 6, 25, 0.9);
        write_run(&root.join("p8"), 1, 8, 25, 0.9);
        let e = gather(&[root.join("p6"), root.join("p8")])
            .unwrap_err()
            .to_string();
        assert!(e.contains("different settings (model.pack: 6 vs 8)"), "{e}");
    }

    #[test]
    fn empty_folders_and_bad_reports_are_refused_naming_the_file() {
        let root = scratch("bad");
        let empty = root.join("empty");
        std::fs::create_dir_all(&empty).unwrap();
        let e = gather(std::slice::from_ref(&empty))
            .unwrap_err()
            .to_string();
        assert!(e.contains("holds no scored run"), "{e}");

        let run = root.join("run");
        write_run(&run, 0, 8, 25, 0.9);
        std::fs::write(run.join("eval.json"), "{\"dataset\": \"grid\"").unwrap();
        let e = gather(std::slice::from_ref(&run)).unwrap_err().to_string();
        assert!(e.contains("eval.json is not valid JSON"), "{e}");
        std::fs::write(run.join("eval.json"), "{\"modes\": 3}").unwrap();
        let e = gather(std::slice::from_ref(&run)).unwrap_err().to_string();
        assert!(e.contains("eval.json is not an eval report"), "{e}");
        std::fs::write(run.join("config.json"), "{}").unwrap();
        let e = gather(std::slice::from_ref(&run)).unwrap_err().to_string();
        assert!(e.contains("config.json has no seed"), "{e}");
    }

    #[test]
    fn per_run_settings_may_differ_and_nested_differences_are_named() {
        let a = json!({"seed": 1, "backend": "cpu", "model": {"hidden": [8, 8]}, "steps": 5});
        let b = json!({"seed": 2, "backend": "gpu", "model": {"hidden": [8, 8]}, "steps": 5});
        assert_eq!(
            first_difference(&shared_settings(&a), &shared_settings(&b)),
            None
        );
        let c = json!({"seed": 2, "model": {"hidden": [8, 9]}, "steps": 5, "extra": true});
        assert_eq!(
            first_difference(&shared_settings(&a), &shared_settings(&c)).unwrap(),
            "extra: null vs true"
        );
        let d = json!({"model": {"hidden": [8, 9]}, "steps": 5});
        assert_eq!(
            first_difference(&shared_settings(&a), &shared_settings(&d)).unwrap(),
            "model.hidden: [8,8] vs [8,9]"
        );
    }
}
