//! A report of the published protocols, as `eval`, `sweep` and `train` print it.

use shadergan::eval::modes;
use shadergan::eval::report::Report;

/// One line per protocol scored, then what was skipped and why.
pub fn print_report(r: &Report) {
    if let Some(m) = &r.modes {
        println!(
            "{} (step {}): {} of {} modes, {:.1}% high-quality samples, reverse KL {:.4} ({} samples)",
            r.dataset,
            r.step,
            m.modes_covered,
            m.modes_total,
            100.0 * m.high_quality_fraction,
            m.reverse_kl,
            m.samples
        );
        if (1..=modes::MISSED_NAMED).contains(&m.missed.len()) {
            let at: Vec<String> = m.missed.iter().map(|&c| modes::center_label(c)).collect();
            println!("  modes missed, by center: {}", at.join(", "));
        }
    }
    if let Some(c) = &r.classifier {
        println!(
            "{} (step {}): Fréchet distance {:.3} (real test vs train: {}), classifier inception score {:.3} ± {:.3} (real test: {:.3}); classifier {} at {:.2}% test accuracy",
            r.dataset,
            r.step,
            c.frechet_distance,
            c.real_frechet_distance
                .map_or("n/a".to_string(), |v| format!("{v:.3}")),
            c.inception_score,
            c.inception_score_std,
            c.real_inception_score,
            c.classifier_dataset,
            100.0 * c.classifier_test_accuracy
        );
    }
    if let Some(stats) = r.bn_stats {
        println!("  G's BatchNorm sampled on its {} statistics", stats.name());
    }
    if let Some(p) = &r.parzen {
        println!(
            "{}: Parzen log-likelihood {:.1} ± {:.1} nats (σ = {:.3}, {} samples, {} test images)",
            r.dataset, p.mean, p.standard_error, p.sigma, p.samples, p.test_rows
        );
    }
    for s in &r.skipped {
        println!(
            "skipped {}",
            super::settings::note_in_flags(s, &["data_dir"])
        );
    }
}
