//! Runs that survive schedulers and mistakes, end to end on the CPU backend:
//! SIGINT, SIGTERM and SIGHUP stop a run with a checkpoint that resumes; one
//! writer per run folder; a resumed run keeps its run settings; a checkpoint
//! of another run is refused; sizes no machine holds are refused up front;
//! stale temporaries are cleaned. Every refusal is one `error:` line, a
//! non-zero exit, no panic, and the run folder's files as they were.
#![cfg(unix)]

mod common;

use common::{scratch, shadergan, shadergan_command, stderr};

use std::path::Path;
use std::process::{Child, Output, Stdio};
use std::time::{Duration, Instant};

use shadergan::io::checkpoint;

fn spawn(args: &[&str]) -> Child {
    shadergan_command(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary starts")
}

/// Exactly one `error:` line, a failure status, no panic or abort; returns the line.
fn refused(o: &Output) -> String {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        !err.contains("panicked") && !err.contains("RUST_BACKTRACE"),
        "{err}"
    );
    let lines: Vec<&str> = err.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(lines.len(), 1, "{err}");
    lines[0].to_string()
}

/// A tiny ring run on the CPU backend into `out`, with extra flags.
fn train_args<'a>(out: &'a str, steps: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let seed = if extra.contains(&"--seed") {
        &[][..]
    } else {
        &["--seed", "3"][..]
    };
    let mut args = vec![
        "train",
        "--dataset",
        "ring",
        "--hidden",
        "8",
        "--batch",
        "16",
        "--steps",
        steps,
        "--sample-every",
        "0",
        "--backend",
        "cpu",
        "--quiet",
        "--out",
        out,
    ];
    args.extend_from_slice(seed);
    args.extend_from_slice(extra);
    args
}

/// Waits until `path` exists (the run is past its start-up), or panics.
fn wait_for(path: &Path, child: &mut Child) {
    let start = Instant::now();
    while !path.exists() {
        if let Ok(Some(status)) = child.try_wait() {
            panic!(
                "the run ended ({status}) before {} appeared",
                path.display()
            );
        }
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "{} never appeared",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn signal(child: &Child, sig: i32) {
    let pid = i32::try_from(child.id()).expect("a PID");
    // SAFETY: kill(2) on our own child's PID.
    assert_eq!(unsafe { libc::kill(pid, sig) }, 0);
}

fn step_of(dir: &Path) -> u64 {
    checkpoint::load(&dir.join("checkpoint.safetensors"))
        .expect("the checkpoint loads")
        .step
}

#[test]
fn each_stop_signal_writes_a_checkpoint_that_resumes() {
    for (sig, name) in [
        (libc::SIGINT, "SIGINT"),
        (libc::SIGTERM, "SIGTERM"),
        (libc::SIGHUP, "SIGHUP"),
    ] {
        let out = scratch(&format!("signal-{name}"));
        let out_s = out.to_str().unwrap();
        let mut child = spawn(&train_args(out_s, "10000000", &[]));
        wait_for(&out.join("config.json"), &mut child);
        signal(&child, sig);
        let o = child.wait_with_output().unwrap();
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(128 + sig), "{name}: {err}");
        assert!(!err.contains("panicked"), "{err}");
        assert!(err.contains(&format!("stopped by {name}")), "{err}");
        let step = step_of(&out);
        assert!(
            err.contains(&format!("--resume {out_s} --steps 10000000")),
            "{err}"
        );
        let total = (step + 20).to_string();
        let o = shadergan(&["train", "--resume", out_s, "--steps", &total, "--quiet"]);
        assert!(o.status.success(), "{name} resume: {}", stderr(&o));
        assert_eq!(step_of(&out), step + 20);
        let _ = std::fs::remove_dir_all(&out);
    }
}

#[test]
fn a_second_signal_exits_at_once_and_tears_no_file() {
    let out = scratch("second-signal");
    let out_s = out.to_str().unwrap();
    let mut child = spawn(&train_args(
        out_s,
        "10000000",
        &["--checkpoint-every", "50"],
    ));
    wait_for(&out.join("checkpoint.safetensors"), &mut child);
    signal(&child, libc::SIGTERM);
    signal(&child, libc::SIGTERM);
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(128 + libc::SIGTERM), "{}", stderr(&o));
    assert!(!stderr(&o).contains("panicked"));
    // Whatever a killed write left is removed by the next start in the folder.
    let total = (step_of(&out) + 10).to_string();
    let o = shadergan(&["train", "--resume", out_s, "--steps", &total, "--quiet"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let left: Vec<_> = common::snapshot(&out)
        .into_keys()
        .filter(|p| p.to_string_lossy().contains(".tmp-"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
    let _ = std::fs::remove_dir_all(&out);
}

#[test]
fn a_path_with_spaces_is_quoted_in_the_resume_command() {
    let out = scratch("with space");
    let out_s = out.to_str().unwrap();
    let mut child = spawn(&train_args(out_s, "10000000", &[]));
    wait_for(&out.join("config.json"), &mut child);
    signal(&child, libc::SIGINT);
    let o = child.wait_with_output().unwrap();
    assert!(
        stderr(&o).contains(&format!("--resume '{out_s}' --steps")),
        "{}",
        stderr(&o)
    );
    let _ = std::fs::remove_dir_all(&out);
}

#[test]
fn one_writer_per_run_folder_and_a_dead_holder_does_not_block() {
    let out = scratch("lock");
    let out_s = out.to_str().unwrap();
    let mut first = spawn(&train_args(
        out_s,
        "10000000",
        &["--checkpoint-every", "50"],
    ));
    wait_for(&out.join("checkpoint.safetensors"), &mut first);
    let o = shadergan(&["train", "--resume", out_s, "--steps", "20000000", "--quiet"]);
    let line = refused(&o);
    assert!(
        line.contains(out_s) && line.contains(&format!("PID {}", first.id())),
        "{line}"
    );
    // A fresh run given the same --out is refused too.
    let line = refused(&shadergan(&train_args(out_s, "30", &[])));
    assert!(line.contains(out_s), "{line}");
    // SIGKILL: the OS releases the lock, and the folder resumes.
    first.kill().unwrap();
    first.wait().unwrap();
    let total = (step_of(&out) + 10).to_string();
    let o = shadergan(&["train", "--resume", out_s, "--steps", &total, "--quiet"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let _ = std::fs::remove_dir_all(&out);
}

#[test]
fn two_fresh_runs_in_one_folder_leave_one_consistent_run() {
    let out = scratch("two-fresh");
    let out_s = out.to_str().unwrap();
    std::fs::create_dir_all(&out).unwrap();
    let a = spawn(&train_args(out_s, "300", &["--seed", "1"]));
    let b = spawn(&train_args(out_s, "300", &["--seed", "2"]));
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    let ok = [&a, &b].iter().filter(|o| o.status.success()).count();
    assert!(ok >= 1, "{}\n{}", stderr(&a), stderr(&b));
    for o in [&a, &b].iter().filter(|o| !o.status.success()) {
        let line = refused(o);
        assert!(line.contains(out_s), "{line}");
    }
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("config.json")).unwrap()).unwrap();
    let ck = checkpoint::load(&out.join("checkpoint.safetensors")).unwrap();
    assert_eq!(config["seed"].as_u64(), Some(ck.seed));
    let run_id = ck.training.unwrap().run_id;
    assert_eq!(config["run_id"].as_str(), run_id.as_deref());
    let _ = std::fs::remove_dir_all(&out);
}

#[test]
fn resume_keeps_checkpoint_every_and_the_other_run_settings() {
    let out = scratch("kept");
    let out_s = out.to_str().unwrap();
    let first = train_args(
        out_s,
        "30",
        &["--checkpoint-every", "10", "--log-every", "5"],
    );
    assert!(shadergan(&first).status.success());
    // The resumed run diverges at its 6th run (of 5 steps: step 60); with
    // --checkpoint-every kept, the last checkpoint is step 50, not step 30.
    let o = shadergan_command(&["train", "--resume", out_s, "--steps", "100", "--quiet"])
        .env(shadergan::fault::FAULT_ENV, "nan-in-params-at-run:6")
        .output()
        .unwrap();
    let line = refused(&o);
    assert!(line.contains("diverged"), "{line}");
    assert_eq!(step_of(&out), 50);
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["checkpoint_every"], 10);
    assert_eq!(config["log_every"], 5);
    let _ = std::fs::remove_dir_all(&out);
}

#[test]
fn a_checkpoint_of_another_run_is_refused_naming_both_ids() {
    let (a, b) = (scratch("id-a"), scratch("id-b"));
    // Same architecture and even the same seed: only the run id tells them apart.
    for dir in [&a, &b] {
        assert!(
            shadergan(&train_args(dir.to_str().unwrap(), "20", &[]))
                .status
                .success()
        );
    }
    let id = |dir: &Path| {
        let ck = checkpoint::load(&dir.join("checkpoint.safetensors")).unwrap();
        ck.training.unwrap().run_id.unwrap()
    };
    let (id_a, id_b) = (id(&a), id(&b));
    assert_ne!(id_a, id_b);
    std::fs::copy(
        b.join("checkpoint.safetensors"),
        a.join("checkpoint.safetensors"),
    )
    .unwrap();
    let before = common::snapshot(&a);
    let line = refused(&shadergan(&[
        "train",
        "--resume",
        a.to_str().unwrap(),
        "--steps",
        "40",
    ]));
    assert!(line.contains(&id_a) && line.contains(&id_b), "{line}");
    assert_eq!(common::snapshot(&a), before);
    for dir in [a, b] {
        let _ = std::fs::remove_dir_all(dir);
    }
}

#[test]
fn a_corrupt_update_counter_is_named_not_reported_as_divergence() {
    let out = scratch("updates");
    let out_s = out.to_str().unwrap();
    assert!(shadergan(&train_args(out_s, "20", &[])).status.success());
    let path = out.join("checkpoint.safetensors");
    let mut ck = checkpoint::load(&path).unwrap();
    ck.training.as_mut().unwrap().generator_updates = 0;
    checkpoint::save(&path, &ck).unwrap();
    let before = common::snapshot(&out);
    let line = refused(&shadergan(&["train", "--resume", out_s, "--steps", "40"]));
    assert!(
        line.contains("'updates'") && !line.contains("diverged"),
        "{line}"
    );
    assert_eq!(common::snapshot(&out), before);
    let _ = std::fs::remove_dir_all(&out);
}

#[test]
fn sizes_no_machine_holds_are_refused_before_anything_is_written() {
    let out = scratch("huge");
    let out_s = out.to_str().unwrap();
    for (flags, names) in [
        (vec!["--hidden", "1000000000000"], "--hidden"),
        (vec!["--z-dim", "1000000000000000"], "--z-dim"),
        (vec!["--d-steps", "4000000000"], "--d-steps"),
    ] {
        let o = shadergan(&train_args(out_s, "10", &flags));
        let line = refused(&o);
        assert!(line.contains(names), "{flags:?}: {line}");
        assert!(!out.exists(), "{flags:?} left {}", out.display());
    }
    // An existing empty --out stays empty.
    std::fs::create_dir_all(&out).unwrap();
    refused(&shadergan(&train_args(
        out_s,
        "10",
        &["--hidden", "1000000000000"],
    )));
    assert_eq!(std::fs::read_dir(&out).unwrap().count(), 0);
    let _ = std::fs::remove_dir_all(&out);
}

#[test]
fn a_checkpoint_claiming_huge_layers_is_refused_not_allocated() {
    let out = scratch("claims");
    let out_s = out.to_str().unwrap();
    assert!(shadergan(&train_args(out_s, "10", &[])).status.success());
    let path = out.join("checkpoint.safetensors");
    let bytes = std::fs::read(&path).unwrap();
    // Rewrite only the header's model: 8 hidden units become 10^12.
    let (n, header) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    let mut meta = header.metadata().clone().unwrap();
    let model = meta["model"].replace("[8]", "[1000000000000]");
    assert_ne!(model, meta["model"]);
    meta.insert("model".into(), model);
    let tensors = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let views: Vec<_> = tensors.tensors();
    let forged = safetensors::serialize(views, Some(meta)).unwrap();
    assert!(n > 0);
    let forged_path = out.join("forged.safetensors");
    std::fs::write(&forged_path, forged).unwrap();
    let line = refused(&shadergan(&[
        "sample",
        "--checkpoint",
        forged_path.to_str().unwrap(),
        "--out",
        out.join("s.png").to_str().unwrap(),
        "--backend",
        "cpu",
    ]));
    assert!(
        line.contains("claims") && line.contains("forged.safetensors"),
        "{line}"
    );
    assert!(!out.join("s.png").exists());
    let _ = std::fs::remove_dir_all(&out);
}

#[test]
fn images_too_large_for_any_network_are_refused_in_one_line() {
    let dir = scratch("big-images");
    std::fs::create_dir_all(&dir).unwrap();
    // Two valid 4096×4096 images: a network over them needs tens of GB.
    let images = shadergan::data::idx::Images {
        count: 2,
        rows: 4096,
        cols: 4096,
        pixels: vec![7; 2 * 4096 * 4096],
    };
    let file = dir.join("train-images-idx3-ubyte.gz");
    shadergan::data::idx::write_images(&file, &images, true).unwrap();
    let out = dir.join("run");
    let line = refused(&shadergan(&[
        "train",
        "--dataset",
        "mnist",
        "--data",
        dir.to_str().unwrap(),
        "--batch",
        "1",
        "--hidden",
        "4096",
        "--steps",
        "1",
        "--backend",
        "cpu",
        "--out",
        out.to_str().unwrap(),
    ]));
    assert!(
        line.contains("memory") && line.contains("16777216 values"),
        "{line}"
    );
    assert!(!out.exists());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn stale_temporaries_of_a_killed_write_are_removed_on_resume() {
    let out = scratch("stale");
    let out_s = out.to_str().unwrap();
    assert!(shadergan(&train_args(out_s, "20", &[])).status.success());
    let stale = [
        out.join(".checkpoint.safetensors.tmp-999999"),
        out.join("samples").join(".step-0000010.png.tmp-999998"),
    ];
    for path in &stale {
        std::fs::write(path, b"half a file").unwrap();
    }
    let o = shadergan(&["train", "--resume", out_s, "--steps", "30", "--quiet"]);
    assert!(o.status.success(), "{}", stderr(&o));
    for path in &stale {
        assert!(!path.exists(), "{} is still there", path.display());
    }
    let _ = std::fs::remove_dir_all(&out);
}

#[test]
fn a_run_folder_deleted_mid_run_is_named_as_gone() {
    let out = scratch("deleted");
    let out_s = out.to_str().unwrap();
    // Checkpoints far apart, so the folder is removed between two writes.
    let mut child = spawn(&train_args(
        out_s,
        "10000000",
        &["--checkpoint-every", "5000"],
    ));
    wait_for(&out.join("checkpoint.safetensors"), &mut child);
    std::fs::remove_dir_all(&out).unwrap();
    let o = child.wait_with_output().unwrap();
    let line = refused(&o);
    assert!(
        line.contains("is gone") && !line.contains("no checkpoint had been written"),
        "{line}"
    );
}

#[test]
fn log_every_zero_is_refused_naming_the_flag() {
    let out = scratch("log0");
    let line = refused(&shadergan(&train_args(
        out.to_str().unwrap(),
        "10",
        &["--log-every", "0"],
    )));
    assert!(line.contains("--log-every"), "{line}");
    assert!(!out.exists());
}

/// A sweep stopped by SIGTERM while `in_flight` seeds train (one plan of
/// `--batched-seeds` seeds): each of them keeps its checkpoint, unscored, and
/// the seed after them never starts.
fn stop_a_sweep(batched_seeds: &str, in_flight: usize) {
    let root = scratch(&format!("sweep-signal-{batched_seeds}"));
    let root_s = root.to_str().unwrap();
    let mut child = spawn(&[
        "sweep",
        "--seeds",
        "3",
        "--batched-seeds",
        batched_seeds,
        "--preset",
        "ring",
        "--steps",
        "10000000",
        "--backend",
        "cpu",
        "--no-parzen",
        "--out",
        root_s,
    ]);
    wait_for(&root.join("seed-0").join("config.json"), &mut child);
    signal(&child, libc::SIGTERM);
    let o = child.wait_with_output().unwrap();
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(128 + libc::SIGTERM), "{err}");
    assert!(
        err.contains("stopped by SIGTERM") && !err.contains("panicked"),
        "{err}"
    );
    for seed in 0..in_flight {
        let dir = root.join(format!("seed-{seed}"));
        assert!(step_of(&dir) < 10_000_000);
        assert!(
            !dir.join("eval.json").exists(),
            "an unfinished seed was scored"
        );
    }
    assert!(
        !root.join(format!("seed-{in_flight}")).exists(),
        "a seed started after the stop"
    );
    assert!(!root.join("summary.json").exists());
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn a_sweep_stopped_by_a_signal_keeps_the_seed_in_flight_and_starts_no_other() {
    stop_a_sweep("1", 1);
}

#[test]
fn a_batched_sweep_stopped_by_a_signal_keeps_its_plans_seeds_and_starts_no_other() {
    stop_a_sweep("2", 2);
}
