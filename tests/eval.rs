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
