//! The evaluation protocols end to end: the committed classifiers' accuracy,
//! the classifier scores' floor, and `shadergan eval` on a checkpoint.

mod common;

use std::path::Path;
use std::process::Command;

use shadergan::data;
use shadergan::eval::classifier::{self, Classifier};
use shadergan::eval::report::classifier_scores;

fn mnist_dir() -> Option<&'static Path> {
    let dir = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/data/mnist"));
    if dir.is_dir() {
        Some(dir)
    } else {
        use std::io::Write;
        let _ = writeln!(std::io::stderr(), "skipping: no MNIST at {}", dir.display());
        None
    }
}

#[test]
fn the_committed_mnist_classifier_reaches_98_percent() {
    let Some(dir) = mnist_dir() else { return };
    let (test, labels) = data::read_split(dir, "t10k").unwrap();
    let c = Classifier::from_bytes(classifier::embedded("mnist").unwrap()).unwrap();
    let acc = c
        .accuracy(None, &classifier::to_unit_range(&test.pixels), &labels)
        .unwrap();
    assert!(acc >= 0.98, "MNIST test accuracy {acc}");
    assert!(
        (acc - c.test_accuracy).abs() < 1e-3,
        "stored {} vs measured {acc}",
        c.test_accuracy
    );
}

#[test]
fn the_committed_fashion_classifier_scores_the_embedded_test_set() {
    let images = data::idx::parse_images(data::EMBEDDED_IMAGES, "images").unwrap();
    let labels = data::idx::parse_labels(data::EMBEDDED_LABELS, "labels").unwrap();
    let c = Classifier::from_bytes(classifier::embedded("fashion-mnist").unwrap()).unwrap();
    let real = classifier::to_unit_range(&images.pixels);
    let acc = c.accuracy(None, &real, &labels).unwrap();
    assert!(acc >= 0.85, "Fashion-MNIST test accuracy {acc}");
    // Real images against themselves: no distance, and an inception score near
    // the number of classes the classifier can tell apart.
    let s = classifier_scores(None, &c, &real[..2000 * 784], &real[..2000 * 784], None).unwrap();
    assert!(
        s.frechet_distance < 1e-6,
        "FD of a set with itself: {}",
        s.frechet_distance
    );
    assert!(
        s.inception_score > 5.0 && s.inception_score <= 10.0,
        "IS {}",
        s.inception_score
    );
    // Noise is far from real images.
    let noise: Vec<f32> = (0..2000 * 784)
        .map(|i| ((i * 7919) % 255) as f32 / 127.5 - 1.0)
        .collect();
    let n = classifier_scores(None, &c, &noise, &real[..2000 * 784], None).unwrap();
    assert!(
        n.frechet_distance > 10.0 * (s.frechet_distance + 1.0),
        "noise FD {}",
        n.frechet_distance
    );
}

#[test]
fn eval_scores_a_ring_checkpoint() {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("eval-ring");
    let _ = std::fs::remove_dir_all(&dir);
    let bin = env!("CARGO_BIN_EXE_shadergan");
    let o = Command::new(bin)
        .args([
            "train",
            "--dataset",
            "ring",
            "--steps",
            "200",
            "--backend",
            "cpu",
            "--quiet",
        ])
        .args(["--hidden", "32,32", "--out", dir.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // train evaluates at the end, into eval.json.
    let end: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("eval.json")).unwrap()).unwrap();
    assert_eq!(end["modes"]["modes_total"], 8);
    let o = Command::new(bin)
        .args(["eval", "--backend", "cpu", "--json", "--checkpoint"])
        .arg(dir.join("checkpoint.safetensors"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let m = &report["modes"];
    assert_eq!(m["samples"], 2500);
    assert!(m["modes_covered"].as_u64().unwrap() <= 8);
    let hq = m["high_quality_fraction"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&hq));
}

/// `eval --noise-seeds K` scores draws S..S+K of one checkpoint, each equal to
/// `eval --noise-seed` of its seed, and refuses counts out of range and
/// checkpoints without modes in one line.
#[test]
fn eval_over_noise_draws_equals_one_eval_per_noise_seed() {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("eval-draws");
    let _ = std::fs::remove_dir_all(&dir);
    let bin = env!("CARGO_BIN_EXE_shadergan");
    let run = |args: &[&str]| {
        Command::new(bin)
            .args(args)
            .env("XDG_RUNTIME_DIR", std::env::temp_dir())
            .output()
            .unwrap()
    };
    // Trains a tiny net for `steps` (on the ring with its preset, so the draws have samples
    // near the modes and differ in their high-quality fraction).
    let train = |preset: &[&str], steps: &str, out: &Path| {
        let o = run(&[
            preset,
            &[
                "--steps",
                steps,
                "--hidden",
                "32,32",
                "--backend",
                "cpu",
                "--quiet",
            ],
            &["--sample-every", "0", "--out", out.to_str().unwrap()],
        ]
        .concat());
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        out.join("checkpoint.safetensors")
    };
    let ring = train(&["train", "--preset", "ring"], "1500", &dir.join("ring"));
    let ring = ring.to_str().unwrap();
    let json = |o: std::process::Output| -> serde_json::Value {
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        serde_json::from_slice(&o.stdout).unwrap()
    };
    // Each draw equals `--noise-seed` of its seed; the draws share one sampler,
    // and on the GPU too each equals a fresh one's.
    let eval = |backend| ["eval", "--backend", backend, "--json", "--checkpoint", ring];
    let draws_on = |backend| {
        let sweep = json(run(&[
            &eval(backend)[..],
            &["--noise-seed", "4", "--noise-seeds", "3"],
        ]
        .concat()));
        let draws = sweep["draws"].as_array().unwrap().clone();
        assert_eq!(draws.len(), 3);
        for (i, draw) in draws.iter().enumerate() {
            let seed = (4 + i).to_string();
            let one = json(run(&[&eval(backend)[..], &["--noise-seed", &seed]].concat()));
            assert_eq!(
                draw, &one["modes"],
                "{backend}: draw {i} against --noise-seed {seed}"
            );
        }
        sweep
    };
    if common::gpu().is_some() {
        draws_on("gpu");
    }
    let sweep = draws_on("cpu");
    assert_eq!(sweep["first_noise_seed"], 4);
    let draws = sweep["draws"].as_array().unwrap();
    let hq: Vec<f64> = draws
        .iter()
        .map(|d| d["high_quality_fraction"].as_f64().unwrap())
        .collect();
    assert!(hq[0] != hq[1] || hq[1] != hq[2], "the draws differ: {hq:?}");
    let mean = hq.iter().sum::<f64>() / 3.0;
    let got = sweep["summary"]["high_quality_mean"].as_f64().unwrap();
    assert!((got - mean).abs() <= 1e-12 * mean, "{got} vs {mean}");

    let refused = |args: &[&str], says: &str| {
        let o = run(args);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success(), "{args:?} succeeded");
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        assert!(err.contains(says), "{err}");
    };
    let eval = eval("cpu");
    refused(
        &[&eval[..], &["--noise-seeds", "0"]].concat(),
        "--noise-seeds must be 1 to 10000, not 0",
    );
    refused(
        &[
            &eval[..],
            &["--noise-seed", &u64::MAX.to_string(), "--noise-seeds", "2"],
        ]
        .concat(),
        "passes the largest seed",
    );
    let fashion = train(
        &["train", "--dataset", "fashion-mnist"],
        "20",
        &dir.join("fashion"),
    );
    refused(
        &[
            "eval",
            "--backend",
            "cpu",
            "--noise-seeds",
            "2",
            "--checkpoint",
            fashion.to_str().unwrap(),
        ],
        "only the 2-D mixtures (ring, grid) have, not fashion-mnist",
    );
}
