//! Faults a real machine can have, injected into the `shadergan` command
//! through the `SHADERGAN_FAULT` testing hook (`src/fault.rs`): a lost GPU
//! device, a NaN in the parameters, a full disk. Each must give one `error:`
//! line naming the file or the problem, a non-zero exit, no panic, and leave
//! every existing output as it was (the last checkpoint still loads).

mod common;

use common::{scratch, shadergan, shadergan_command, stderr};

use std::path::Path;
use std::process::Output;

use shadergan::io::checkpoint;

/// Runs the binary with `args` and the environment `env`.
fn shadergan_with(args: &[&str], env: &[(&str, &str)]) -> Output {
    shadergan_command(args)
        .envs(env.iter().copied())
        .output()
        .expect("the binary runs")
}

/// `SHADERGAN_FAULT=fault` as an environment for [`shadergan_with`].
fn fault(value: &str) -> [(&'static str, &str); 1] {
    [(shadergan::fault::FAULT_ENV, value)]
}

/// No `.NAME.tmp-PID` file of an interrupted atomic write anywhere under `dir`.
fn assert_no_temporaries(dir: &Path) {
    let left: Vec<_> = common::snapshot(dir)
        .into_keys()
        .filter(|p| p.to_string_lossy().contains(".tmp-"))
        .collect();
    assert!(
        left.is_empty(),
        "temporaries left in {}: {left:?}",
        dir.display()
    );
}

/// `train` on the ring with a tiny net: losses every 10 steps, a checkpoint
/// every 10 steps, samples only at the end.
fn train_args<'a>(out: &'a Path, backend: &'a str, steps: &'a str) -> Vec<&'a str> {
    vec![
        "train",
        "--dataset",
        "ring",
        "--hidden",
        "8",
        "--batch",
        "16",
        "--seed",
        "3",
        "--steps",
        steps,
        "--log-every",
        "10",
        "--checkpoint-every",
        "10",
        "--sample-every",
        "0",
        "--backend",
        backend,
        "--quiet",
        "--out",
        out.to_str().unwrap(),
    ]
}

fn load(dir: &Path) -> checkpoint::Checkpoint {
    checkpoint::load(&dir.join("checkpoint.safetensors")).expect("the checkpoint loads")
}

/// A GPU device destroyed after the second run of 10 steps (a real
/// `wgpu::Device::destroy`, so the lost callback and the failing readbacks
/// are wgpu's own): one line saying the device was lost and that the
/// checkpoint of step 10 is kept, which loads. `sample` on a lost device
/// leaves its existing output as it was.
#[test]
fn a_lost_gpu_device_is_one_error_and_the_last_checkpoint_is_kept() {
    if common::gpu().is_none() {
        return;
    }
    let out = scratch("lost-device");
    let o = shadergan_with(
        &train_args(&out, "gpu", "40"),
        &fault("lose-device-after-runs:2"),
    );
    let ck_path = out.join("checkpoint.safetensors");
    common::one_error_line(
        &o,
        1,
        &[
            "the GPU device was lost",
            &format!(
                "the last checkpoint ({}, step 10) is kept",
                ck_path.display()
            ),
        ],
    );
    let ck = load(&out);
    assert_eq!(ck.step, 10);
    assert!(ck.training.is_some(), "the kept checkpoint can be resumed");
    assert_no_temporaries(&out);

    // `sample --overwrite` whose device is lost after its one run: the PNG stays.
    let png = out.join("drawn.png");
    std::fs::write(&png, b"an earlier output").unwrap();
    let o = shadergan_with(
        &[
            "sample",
            "--checkpoint",
            ck_path.to_str().unwrap(),
            "--backend",
            "gpu",
            "--overwrite",
            "--out",
            png.to_str().unwrap(),
        ],
        &fault("lose-device-after-runs:1"),
    );
    common::one_error_line(&o, 1, &["the GPU device was lost"]);
    assert_eq!(std::fs::read(&png).unwrap(), b"an earlier output");
    assert_no_temporaries(&out);
}

/// A NaN written into G's first weight after 20 steps: the parameters are
/// checked before each checkpoint is written, so with `--checkpoint-every 10`
/// the run stops at step 20 naming the network and parameter, and the
/// checkpoint of step 10 is kept (on both backends). Such a NaN need not reach
/// the losses (the hidden ReLU's max can drop it), so every log point also
/// checks each network's parameter mean: without periodic checkpoints the run
/// stops at the next log point (step 30), writing no checkpoint.
#[test]
fn a_nan_in_the_parameters_stops_the_run_naming_the_step_and_the_network() {
    let mut backends = vec!["cpu"];
    if common::gpu().is_some() {
        backends.push("gpu");
    }
    for backend in backends {
        let out = scratch(&format!("nan-{backend}"));
        let o = shadergan_with(
            &train_args(&out, backend, "40"),
            &fault("nan-in-params-at-run:2"),
        );
        common::one_error_line(
            &o,
            1,
            &[
                "training diverged",
                "at step 20",
                "generator parameter 0 is NaN",
                "the last checkpoint (",
                "step 10) is kept",
            ],
        );
        let ck = load(&out);
        assert_eq!(ck.step, 10, "{backend}");
        assert!(ck.generator.iter().all(|v| v.is_finite()), "{backend}");
        assert_no_temporaries(&out);

        let out = scratch(&format!("nan-between-checkpoints-{backend}"));
        let mut args = train_args(&out, backend, "60");
        let every = args
            .iter()
            .position(|a| *a == "--checkpoint-every")
            .unwrap();
        args[every + 1] = "0";
        let o = shadergan_with(&args, &fault("nan-in-params-at-run:2"));
        common::one_error_line(
            &o,
            1,
            &[
                "non-finite generator parameters at step 30",
                "generator parameter 0 is NaN",
                // The library's note names its field; the command line, the flag.
                "no checkpoint had been written (use --checkpoint-every N)",
            ],
        );
        assert!(!out.join("checkpoint.safetensors").exists(), "{backend}");
        assert_no_temporaries(&out);
    }
}

/// A disk that fills up after the first checkpoint: the next write fails
/// with ENOSPC in one line naming the file, the checkpoint of step 10 loads
/// and equals a run that stopped there, and no temporary is left behind.
#[test]
fn a_full_disk_fails_naming_the_file_and_keeps_the_last_checkpoint() {
    // What the run writes up to its first checkpoint, measured on a run of
    // exactly those steps (the CPU backend is bitwise reproducible, and the
    // files have the same sizes: `steps` 10 and 30 have as many digits).
    let reference = scratch("disk-reference");
    let o = shadergan(&train_args(&reference, "cpu", "10"));
    assert!(o.status.success(), "{}", stderr(&o));
    let size = |f: &str| std::fs::metadata(reference.join(f)).unwrap().len();
    let first_checkpoint: u64 = ["config.json", "losses.csv", "losses.png"]
        .iter()
        .map(|f| size(f))
        .sum::<u64>()
        + size("checkpoint.safetensors");
    // Room for the first checkpoint and 10 bytes: the losses of step 20 do not fit.
    let out = scratch("disk-full");
    let o = shadergan_with(
        &train_args(&out, "cpu", "30"),
        &fault(&format!("disk-full-after-bytes:{}", first_checkpoint + 10)),
    );
    common::one_error_line(
        &o,
        1,
        &[
            &format!("cannot write {}", out.display()),
            "No space left on device",
            "step 10) is kept",
        ],
    );
    let (ck, want) = (load(&out), load(&reference));
    assert_eq!(ck.step, 10);
    assert!(ck.generator == want.generator && ck.discriminator == want.discriminator);
    assert_no_temporaries(&out);
}

/// `sample --overwrite` onto an existing PNG with a full disk: one line naming
/// the PNG, which keeps its bytes; a new --out is not created.
#[test]
fn a_full_disk_leaves_an_existing_sample_png_unchanged() {
    let run = scratch("disk-sample");
    let o = shadergan(&train_args(&run, "cpu", "10"));
    assert!(o.status.success(), "{}", stderr(&o));
    let ck = run.join("checkpoint.safetensors");
    let existing = run.join("losses.png");
    let before = std::fs::read(&existing).unwrap();
    let fresh = run.join("fresh.png");
    for (png, overwrite) in [(&existing, true), (&fresh, false)] {
        let mut args = vec![
            "sample",
            "--checkpoint",
            ck.to_str().unwrap(),
            "--backend",
            "cpu",
            "--out",
            png.to_str().unwrap(),
        ];
        if overwrite {
            args.push("--overwrite");
        }
        let o = shadergan_with(&args, &fault("disk-full-after-bytes:100"));
        common::one_error_line(
            &o,
            1,
            &[
                &format!("cannot write {}", png.display()),
                "No space left on device",
            ],
        );
    }
    assert_eq!(std::fs::read(&existing).unwrap(), before);
    assert!(!fresh.exists());
    assert_no_temporaries(&run);
}

/// A `SHADERGAN_FAULT` that names no fault is refused in one line, before anything runs.
#[test]
fn a_fault_hook_naming_no_fault_is_refused() {
    let out = scratch("bad-hook");
    let o = shadergan_with(&train_args(&out, "cpu", "10"), &fault("melt-down:1"));
    common::one_error_line(&o, 1, &["SHADERGAN_FAULT='melt-down:1'", "testing hook"]);
    assert!(!out.exists());
}

/// A sweep whose seeds share one plan, with a NaN put into seed 0's
/// generator at its second submit: seed 0 stops and is named in the one
/// error line, while seeds 1 and 2 train to the end and are scored.
#[test]
fn a_diverging_seed_of_a_batched_sweep_stops_alone_and_is_named() {
    let mut backends = vec!["cpu"];
    if common::gpu().is_some() {
        backends.push("gpu");
    }
    for backend in backends {
        let root = scratch(&format!("nan-sweep-{backend}"));
        // The ring preset with a tiny net, so the three seeds train in seconds.
        let recipe = root.with_extension("json");
        let tiny = shadergan::gan::recipe::Recipe {
            hidden: vec![8],
            batch: 16,
            ..shadergan::gan::recipe::Recipe::preset("ring").unwrap()
        };
        std::fs::write(&recipe, serde_json::to_string(&tiny).unwrap()).unwrap();
        let args = [
            "sweep",
            "--recipe",
            recipe.to_str().unwrap(),
            "--steps",
            "300",
            "--seeds",
            "3",
            "--no-parzen",
            "--backend",
            backend,
            "--out",
            root.to_str().unwrap(),
        ];
        let o = shadergan_with(&args, &fault("nan-in-params-at-run:2"));
        common::one_error_line(&o, 1, &["seed 0", "training diverged", "at step 300"]);
        assert!(
            stderr(&o).contains("training 3 seeds in plans of up to 3"),
            "{}",
            stderr(&o)
        );
        assert!(!root.join("seed-0/eval.json").exists(), "{backend}");
        for seed in [1, 2] {
            let dir = root.join(format!("seed-{seed}"));
            assert!(
                dir.join("eval.json").exists(),
                "{backend}: seed {seed} not scored"
            );
            assert_eq!(load(&dir).step, 300, "{backend}: seed {seed}");
        }
        assert_no_temporaries(&root);
    }
}
