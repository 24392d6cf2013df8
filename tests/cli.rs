//! The `shadergan` command end to end: `train` on the ring for a few hundred
//! steps (on the GPU backend, llvmpipe in CI), the run folder it writes,
//! `sample` from its checkpoint, reproducibility, and bad input: refused flags
//! and usage errors, bad checkpoints (and ones of another architecture), and
//! output folders that cannot be created. Faults injected into a run (a lost
//! device, a full disk, a NaN) are in `tests/faults.rs`.

mod common;

use common::{scratch, shadergan, stderr};

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn assert_png(path: &Path) {
    let img = image::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(
        img.width() > 100 && img.height() > 100,
        "{} is tiny",
        path.display()
    );
}

/// Checks the run folder `train` promises.
fn check_run_folder(out: &Path, steps: u64, backend_prefix: &str) {
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["dataset"], "ring");
    assert_eq!(config["seed"], 5);
    assert_eq!(config["steps"], steps);
    assert_eq!(config["batch"], 32);
    assert!(
        config["backend"]
            .as_str()
            .unwrap()
            .starts_with(backend_prefix),
        "{}",
        config["backend"]
    );
    assert_eq!(config["model"]["hidden"], serde_json::json!([32, 32]));

    let csv = std::fs::read_to_string(out.join("losses.csv")).unwrap();
    let mut lines = csv.lines();
    assert_eq!(lines.next(), Some("step,d_loss,g_loss,d_real,d_fake"));
    let rows: Vec<Vec<f64>> = lines
        .map(|l| l.split(',').map(|v| v.parse().unwrap()).collect())
        .collect();
    assert_eq!(rows.len() as u64, steps / 10, "one row every 10 steps");
    assert_eq!(rows.last().unwrap()[0] as u64, steps);
    for r in &rows {
        assert!(r[1] > 0.0 && r[2] > 0.0, "losses must be positive: {r:?}");
        assert!((0.0..=1.0).contains(&r[3]) && (0.0..=1.0).contains(&r[4]));
    }

    assert_png(&out.join("losses.png"));
    let samples: Vec<_> = std::fs::read_dir(out.join("samples")).unwrap().collect();
    assert_eq!(
        samples.len() as u64,
        steps / 100,
        "samples every 100 steps and at the end"
    );
    assert_png(&out.join("samples").join(format!("step-{steps:07}.png")));

    let ck = shadergan::io::checkpoint::load(&out.join("checkpoint.safetensors")).unwrap();
    assert_eq!(ck.step, steps);
    assert_eq!(ck.model.data_dim(), 2);
    assert_eq!(ck.seed, 5);
}

fn train_ring(out: &Path, backend: &str, steps: u64) -> Output {
    shadergan(&[
        "train",
        "--dataset",
        "ring",
        "--steps",
        &steps.to_string(),
        "--batch",
        "32",
        "--hidden",
        "32,32",
        "--seed",
        "5",
        "--sample-every",
        "100",
        "--backend",
        backend,
        "--quiet",
        "--out",
        out.to_str().unwrap(),
    ])
}

/// `train` on the ring on the CPU backend with a tiny net (`--hidden hidden`):
/// losses and a checkpoint every 10 steps, samples only at the end.
fn train_tiny(out: &Path, hidden: &str, steps: &str) -> Output {
    shadergan(&[
        "train",
        "--dataset",
        "ring",
        "--hidden",
        hidden,
        "--batch",
        "16",
        "--steps",
        steps,
        "--checkpoint-every",
        "10",
        "--sample-every",
        "0",
        "--backend",
        "cpu",
        "--quiet",
        "--out",
        out.to_str().unwrap(),
    ])
}

#[test]
fn train_on_the_gpu_writes_the_run_folder_and_sample_reads_it() {
    if common::gpu().is_none() {
        return;
    }
    let out = scratch("gpu-ring");
    let o = train_ring(&out, "gpu", 300);
    assert!(o.status.success(), "train failed: {}", stderr(&o));
    let summary = String::from_utf8_lossy(&o.stdout);
    assert!(summary.contains("trained 300 steps"), "{summary}");
    check_run_folder(&out, 300, "gpu: ");

    let png = out.join("drawn.png");
    let ck = out.join("checkpoint.safetensors");
    let args = |p: &Path| {
        vec![
            "sample".to_string(),
            "--checkpoint".into(),
            ck.to_str().unwrap().into(),
            "--n".into(),
            "200".into(),
            "--seed".into(),
            "3".into(),
            "--out".into(),
            p.to_str().unwrap().into(),
        ]
    };
    let o = shadergan(&args(&png).iter().map(String::as_str).collect::<Vec<_>>());
    assert!(o.status.success(), "sample failed: {}", stderr(&o));
    assert_png(&png);
    // An existing output is never overwritten without --overwrite.
    let before = std::fs::read(&png).unwrap();
    let o = shadergan(&args(&png).iter().map(String::as_str).collect::<Vec<_>>());
    assert!(!o.status.success());
    assert!(stderr(&o).contains("already exists"), "{}", stderr(&o));
    assert_eq!(std::fs::read(&png).unwrap(), before);
}

#[test]
fn same_seed_on_the_cpu_backend_gives_a_bitwise_identical_run() {
    let (a, b) = (scratch("cpu-a"), scratch("cpu-b"));
    for out in [&a, &b] {
        let o = train_ring(out, "cpu", 200);
        assert!(o.status.success(), "train failed: {}", stderr(&o));
    }
    check_run_folder(&a, 200, "cpu");
    // Bitwise: every parameter and every logged loss.
    let load =
        |d: &Path| shadergan::io::checkpoint::load(&d.join("checkpoint.safetensors")).unwrap();
    let (ka, kb) = (load(&a), load(&b));
    assert!(
        ka.generator == kb.generator,
        "generator differs between two runs with one seed"
    );
    assert!(
        ka.discriminator == kb.discriminator,
        "discriminator differs"
    );
    assert!(
        std::fs::read(a.join("losses.csv")).unwrap()
            == std::fs::read(b.join("losses.csv")).unwrap(),
        "losses.csv differs between two runs with one seed"
    );
    // Another seed, another run.
    let c = scratch("cpu-c");
    let o = shadergan(&[
        "train",
        "--dataset",
        "ring",
        "--steps",
        "200",
        "--batch",
        "32",
        "--hidden",
        "32,32",
        "--seed",
        "6",
        "--backend",
        "cpu",
        "--quiet",
        "--out",
        c.to_str().unwrap(),
    ]);
    assert!(o.status.success());
    assert!(
        load(&c).generator != ka.generator,
        "another seed gave the same generator"
    );
}

#[test]
fn same_seed_on_the_gpu_gives_the_same_run_within_tolerance() {
    if common::gpu().is_none() {
        return;
    }
    let (a, b) = (scratch("gpu-a"), scratch("gpu-b"));
    for out in [&a, &b] {
        let o = train_ring(out, "gpu", 100);
        assert!(o.status.success(), "train failed: {}", stderr(&o));
    }
    let ka = shadergan::io::checkpoint::load(&a.join("checkpoint.safetensors")).unwrap();
    let kb = shadergan::io::checkpoint::load(&b.join("checkpoint.safetensors")).unwrap();
    let err = common::norm_rel_err(&ka.generator, &kb.generator);
    assert!(err <= 1e-5, "two GPU runs differ by {err:e}");
}

#[test]
fn refused_flags_exit_non_zero_with_one_line_and_write_nothing() {
    let out = scratch("refused");
    let cases: &[(&[&str], &str)] = &[
        (&["--batch", "0"], "--batch must be at least 1"),
        (&["--lr", "NaN"], "--lr must be"),
        (&["--lr=-1"], "--lr must be"),
        (&["--hidden", "0"], "--hidden sizes must be at least 1"),
        (&["--batch", "200000"], "larger than the dataset"),
        (&["--steps", "0"], "--steps must be at least 1"),
        (
            &["--d-steps-from", "5"],
            "--d-steps-from needs --d-steps above 1",
        ),
    ];
    for (flags, message) in cases {
        let mut args = vec![
            "train",
            "--dataset",
            "ring",
            "--backend",
            "cpu",
            "--quiet",
            "--out",
        ];
        args.push(out.to_str().unwrap());
        args.extend_from_slice(flags);
        let o = shadergan(&args);
        let err = stderr(&o);
        assert!(!o.status.success(), "{flags:?} was accepted");
        assert!(err.contains(message), "{flags:?}: {err}");
        assert!(!err.contains("panicked"), "{flags:?} panicked: {err}");
        assert_eq!(
            err.trim().lines().count(),
            1,
            "{flags:?}: not one line: {err}"
        );
        assert!(!out.exists(), "{flags:?} created the run folder");
    }
    let o = shadergan(&[
        "train",
        "--dataset",
        "fashion-mnist",
        "--eval-every",
        "5",
        "--quiet",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("--eval-every traces mode coverage on the mixtures"),
        "{}",
        stderr(&o)
    );
    assert!(
        !out.exists(),
        "--eval-every on images created the run folder"
    );
    let o = shadergan(&["train", "--dataset", "mnist", "--quiet"]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("--dataset mnist needs --data DIR"),
        "{}",
        stderr(&o)
    );
}

/// `train --dump-recipe` prints the recipe (a preset, a recipe file, or the
/// flags' own) as JSON and writes nothing; `--recipe` reads it back as the
/// same recipe, flags given override it, and a run from it trains it.
#[test]
fn a_dumped_recipe_reads_back_as_itself_and_trains_as_written() {
    use shadergan::gan::recipe::{PRESETS, Recipe};
    let dir = scratch("dump-recipe");
    std::fs::create_dir_all(&dir).unwrap();
    let never = dir.join("never");
    let train = |args: &[&str]| {
        let o = never.to_str().unwrap();
        shadergan(&[&["train"], args, &["--dump-recipe", "--out", o]].concat())
    };
    let dump = |args: &[&str]| -> String {
        let o = train(args);
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
        assert!(!never.exists(), "{args:?}: --dump-recipe made its --out");
        String::from_utf8(o.stdout).unwrap()
    };
    let path = |p: &Path| p.to_str().unwrap().to_string();
    for (name, _) in PRESETS {
        let text = dump(&["--preset", name]);
        let file = dir.join(format!("{name}.json"));
        std::fs::write(&file, &text).unwrap();
        let read = Recipe::from_file(&file).unwrap();
        assert_eq!(read, Recipe::preset(name).unwrap(), "{name}");
        let again = dump(&["--recipe", &path(&file)]);
        assert_eq!(again, text, "{name}: --recipe changed the recipe");
    }
    // Flags given override the file's values, as they override a preset's.
    let ring = path(&dir.join("ring.json"));
    let small = dump(&[
        "--recipe", &ring, "--steps", "30", "--hidden", "8", "--batch", "16", "--lr", "0.003",
    ]);
    let small_recipe: Recipe = serde_json::from_str(&small).unwrap();
    let want = Recipe {
        steps: 30,
        hidden: vec![8],
        batch: 16,
        lr: 0.003,
        ..Recipe::preset("ring").unwrap()
    };
    assert_eq!(small_recipe, want);
    // Plain flags: the seed recipe of the dataset, the flags applied.
    let plain: Recipe =
        serde_json::from_str(&dump(&["--dataset", "grid", "--z-dim", "3"])).unwrap();
    let seed = Recipe::seed(shadergan::data::DatasetName::Grid);
    assert_eq!(plain, Recipe { z_dim: 3, ..seed });
    // A run from the file trains what it says (the checkpoint keeps the recipe trained).
    let small_file = dir.join("small.json");
    std::fs::write(&small_file, &small).unwrap();
    let run = dir.join("run");
    let o = shadergan(&[
        "train",
        "--recipe",
        &path(&small_file),
        "--backend",
        "cpu",
        "--quiet",
        "--sample-every",
        "0",
        "--out",
        &path(&run),
    ]);
    assert!(o.status.success(), "train --recipe failed: {}", stderr(&o));
    let ck = shadergan::io::checkpoint::load(&run.join("checkpoint.safetensors")).unwrap();
    assert_eq!(ck.step, 30);
    let trained = &ck.training.expect("train keeps the optimizer state").recipe;
    assert_eq!(serde_json::from_str::<Recipe>(trained).unwrap(), want);
    // A bad file is named with its field; a flag that breaks the recipe is named as the flag.
    let bad = dir.join("bad.json");
    let zero_batch = Recipe { batch: 0, ..want };
    std::fs::write(&bad, serde_json::to_string(&zero_batch).unwrap()).unwrap();
    let needles = [&format!("{}: batch must be at least 1", bad.display())[..]];
    common::one_error_line(&train(&["--recipe", &path(&bad)]), 1, &needles);
    let o = train(&["--recipe", &path(&small_file), "--z-dim", "0"]);
    common::one_error_line(&o, 1, &["--z-dim must be at least 1"]);
    assert!(!never.exists(), "a refused --dump-recipe made its --out");
}

#[test]
fn without_an_adapter_gpu_runs_fail_with_one_line_and_auto_falls_back() {
    let out = scratch("no-adapter");
    let run = |backend: &str| {
        Command::new(env!("CARGO_BIN_EXE_shadergan"))
            .args([
                "train",
                "--dataset",
                "ring",
                "--steps",
                "20",
                "--hidden",
                "8",
                "--quiet",
            ])
            .args(["--backend", backend, "--out", out.to_str().unwrap()])
            .env("VK_ICD_FILENAMES", "/nonexistent.json")
            .env("VK_DRIVER_FILES", "/nonexistent.json")
            .env("WGPU_BACKEND", "vulkan")
            .env("XDG_RUNTIME_DIR", std::env::temp_dir())
            .output()
            .unwrap()
    };
    let o = run("gpu");
    let err = stderr(&o);
    assert!(!o.status.success());
    assert!(err.contains("no GPU adapter found"), "{err}");
    assert!(err.contains("mesa-vulkan-drivers"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(
        !out.exists(),
        "a failed --backend gpu run created its folder"
    );
    let o = run("auto");
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("training on the CPU backend"),
        "{}",
        stderr(&o)
    );
}

/// `sweep` with `--jobs 2` trains the same runs as one at a time,
/// `--first-seed` picks up the sweep where another left it, and `summarize`
/// joins the parts.
#[test]
fn a_parallel_seed_sweep_equals_a_sequential_one_seed_for_seed() {
    let sweep = |name: &str, first: &str, k: &str, jobs: &str| {
        let out = scratch(name);
        let o = shadergan(&[
            "sweep",
            "--seeds",
            k,
            "--first-seed",
            first,
            "--jobs",
            jobs,
            "--preset",
            "ring",
            "--steps",
            "150",
            "--eval-every",
            "50",
            "--noise-seeds",
            "3",
            "--backend",
            "cpu",
            "--json",
            "--out",
            out.to_str().unwrap(),
        ]);
        assert!(o.status.success(), "sweep failed: {}", stderr(&o));
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("--json prints JSON");
        (out, v)
    };
    let (seq, seq_json) = sweep("sweep-seq", "0", "3", "1");
    let (par, par_json) = sweep("sweep-par", "0", "3", "2");
    let (tail, tail_json) = sweep("sweep-tail", "2", "1", "1");
    let reports = |v: &serde_json::Value| -> Vec<serde_json::Value> {
        let runs = v["runs"].as_array().expect("summary.json lists the runs");
        runs.iter().map(|r| r["report"].clone()).collect()
    };
    assert_eq!(seq_json["seeds"], serde_json::json!([0, 1, 2]));
    // Each run traced its coverage at 50, 100 and 150; the quarter above 112 is step 150.
    for run in seq_json["runs"].as_array().unwrap() {
        let covered = run["report"]["modes"]["modes_covered"].as_f64().unwrap();
        assert_eq!(run["late_modes"].as_f64(), Some(covered), "{run}");
    }
    assert!(seq_json["late_modes"].is_array(), "{seq_json}");
    // Each run's draws.json holds 3 draws of its final checkpoint; the first
    // (noise seed 1) is the draw its eval.json scored.
    for seed in 0..3 {
        let read = |file: &str| -> serde_json::Value {
            let path = seq.join(format!("seed-{seed}/{file}"));
            serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
        };
        let (draws, report) = (read("draws.json"), read("eval.json"));
        assert_eq!(draws["draws"].as_array().unwrap().len(), 3);
        assert_eq!(draws["draws"][0], report["modes"], "seed {seed}");
        let mean = draws["summary"]["modes_mean"].as_f64();
        assert_eq!(seq_json["runs"][seed]["draw_modes"].as_f64(), mean);
    }
    assert!(seq_json["draw_modes"].is_array(), "{seq_json}");
    assert_eq!(seq_json["preset"], "ring");
    assert_eq!(
        reports(&seq_json),
        reports(&par_json),
        "--jobs 2 changed the per-seed reports"
    );
    assert_eq!(
        reports(&seq_json)[2],
        reports(&tail_json)[0],
        "--first-seed 2 did not train seed 2"
    );
    let load = |d: &Path, seed: u32| {
        shadergan::io::checkpoint::load(&d.join(format!("seed-{seed}/checkpoint.safetensors")))
            .unwrap()
    };
    for seed in 0..3 {
        assert!(
            load(&seq, seed).generator == load(&par, seed).generator,
            "seed {seed}: the parallel sweep trained another generator"
        );
    }
    assert!(load(&seq, 2).generator == load(&tail, 2).generator);
    assert!(
        load(&seq, 0).generator != load(&seq, 1).generator,
        "two seeds gave one generator"
    );

    // `summarize` gathers a sweep split over runs: the tail sweep's seed 2
    // and the first two seeds' folders give the whole sweep's figures.
    let path = |p: PathBuf| p.to_str().unwrap().to_string();
    let (seed0, seed1) = (path(seq.join("seed-0")), path(seq.join("seed-1")));
    let o = shadergan(&["summarize", &path(tail.clone()), &seed0, &seed1, "--json"]);
    assert!(o.status.success(), "summarize failed: {}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("--json prints JSON");
    assert_eq!(v["seeds"], serde_json::json!([0, 1, 2]));
    assert_eq!(v["late_modes"], seq_json["late_modes"]);
    assert_eq!(v["draw_modes"], seq_json["draw_modes"]);
    // Equal up to the last bit that serde_json's float parsing may move.
    let summary_keys = seq_json["modes"].as_object().unwrap();
    for (key, want) in summary_keys {
        let (got, want) = (v["modes"][key].as_f64().unwrap(), want.as_f64().unwrap());
        assert!(
            (got - want).abs() <= 1e-12 * want.abs().max(1e-300),
            "{key}: {got} against {want}"
        );
    }
    let o = shadergan(&["summarize", &path(seq.clone())]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success()
            && text
                .starts_with("3 seeds (mean ± standard error): 0, 1, 2; ring, 150 steps, on cpu"),
        "{text}{}",
        stderr(&o)
    );
    // The same seed twice is refused in one line naming both folders.
    let o = shadergan(&["summarize", &path(seq.clone()), &path(par.clone())]);
    assert_eq!(o.status.code(), Some(1));
    let e = stderr(&o);
    assert_eq!(e.lines().count(), 1, "{e}");
    assert!(e.starts_with("error: seed 0 appears twice"), "{e}");
    // Flags of a training sweep are refused, not ignored.
    let o = shadergan(&["summarize", &path(seq.clone()), "--steps", "5"]);
    common::one_error_line(&o, 2, &["unexpected argument '--steps'"]);
}

/// `sweep --recipe FILE` names the recipe file, not a preset, in its
/// heading and its `summary.json`, and keeps the settings it trained.
#[test]
fn a_sweep_of_a_recipe_file_names_the_file() {
    let out = scratch("recipe-sweep");
    let recipe = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/recipes/grid_p8d2s60k_lr5e4.json"
    );
    let o = shadergan(&[
        "sweep",
        "--seeds",
        "1",
        "--recipe",
        recipe,
        "--steps",
        "20",
        "--backend",
        "cpu",
        "--no-parzen",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = String::from_utf8_lossy(&o.stdout);
    let heading = format!("recipe {recipe}: 1 seed (mean ± standard error): 0; grid, 20 steps");
    assert!(text.contains(&heading), "{text}");
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("summary.json")).unwrap()).unwrap();
    assert!(summary["preset"].is_null(), "{summary}");
    assert_eq!(summary["recipe_file"], recipe);
    assert_eq!(summary["recipe"]["steps"], 20);
    assert_eq!(summary["recipe"]["lr"], 0.0005);
}

/// `sweep --adapter 0,0` spreads the seeds over a list of adapters, one
/// wgpu device each (here the same adapter twice, which CI has), and trains the
/// runs a one-device sweep trains; a list elsewhere is refused in one line.
#[test]
fn a_sweep_over_a_list_of_adapters_trains_the_runs_of_a_one_device_sweep() {
    let refused = |args: &[&str], message: &str| {
        let o = shadergan(args);
        let e = stderr(&o);
        assert!(!o.status.success(), "{args:?} was accepted");
        assert_eq!(e.trim().lines().count(), 1, "{args:?}: {e}");
        assert!(e.contains(message), "{args:?}: {e}");
    };
    let out = scratch("adapter-list-refused");
    let o = out.to_str().unwrap();
    refused(
        &["train", "--dataset", "ring", "--adapter", "0,1", "--out", o],
        "only `sweep` spreads over several",
    );
    refused(
        &[
            "sweep",
            "--seeds",
            "1",
            "--preset",
            "ring",
            "--backend",
            "cpu",
        ]
        .into_iter()
        .chain(["--adapter", "0,1", "--out", o])
        .collect::<Vec<_>>(),
        "--backend cpu uses none",
    );
    assert!(!out.exists(), "a refused sweep created its folder");
    if common::gpu().is_none() {
        return;
    }
    let sweep = |name: &str, adapter: &str| {
        let out = scratch(name);
        let o = shadergan(&[
            "sweep",
            "--seeds",
            "2",
            "--preset",
            "ring",
            "--steps",
            "60",
            "--backend",
            "gpu",
            "--adapter",
            adapter,
            "--no-parzen",
            "--json",
            "--out",
            out.to_str().unwrap(),
        ]);
        assert!(
            o.status.success(),
            "sweep --adapter {adapter} failed: {}",
            stderr(&o)
        );
        out
    };
    let (one, two) = (sweep("adapter-one", "0"), sweep("adapter-list", "0,0"));
    for seed in 0..2 {
        let load = |d: &Path| {
            shadergan::io::checkpoint::load(&d.join(format!("seed-{seed}/checkpoint.safetensors")))
                .unwrap()
        };
        let err = common::norm_rel_err(&load(&two).generator, &load(&one).generator);
        assert!(
            err <= 1e-5,
            "seed {seed}: the two-device sweep differs by {err:e}"
        );
    }
}

/// `bench --quick --json` measures both backends (the GPU where there is one)
/// and reports positive figures whose ratio is GPU over CPU.
#[test]
fn bench_reports_both_backends_side_by_side() {
    let out = scratch("bench").with_extension("json");
    let _ = std::fs::remove_file(&out);
    let o = shadergan(&[
        "bench",
        "--quick",
        "--only",
        "matmul",
        "--min-time",
        "0",
        "--json",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "bench failed: {}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("--json prints JSON");
    assert_eq!(
        v,
        serde_json::from_slice::<serde_json::Value>(&std::fs::read(&out).unwrap()).unwrap(),
        "--out holds what --json printed"
    );
    let rows = v["results"].as_array().unwrap();
    assert!(rows.len() >= 3, "the quick matmul cases ran");
    let has_gpu = common::gpu().is_some();
    for r in rows {
        assert_eq!(r["group"], "matmul");
        assert_eq!(r["unit"], "GFLOP/s");
        let cpu = r["cpu"]["value"].as_f64().unwrap();
        assert!(cpu.is_finite() && cpu > 0.0, "cpu figure {r}");
        if has_gpu {
            let gpu = r["gpu"]["value"].as_f64().unwrap();
            assert!(gpu.is_finite() && gpu > 0.0, "gpu figure {r}");
            let ratio = r["ratio"].as_f64().unwrap();
            assert!(((ratio - gpu / cpu) / ratio).abs() < 1e-9, "ratio {r}");
        }
    }
    // Results are never overwritten.
    let again = shadergan(&[
        "bench",
        "--quick",
        "--only",
        "matmul",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(!again.status.success());
    assert!(
        stderr(&again).contains("already exists"),
        "{}",
        stderr(&again)
    );
}

/// `bench --quick --only floor` measures each dispatch-floor variant at N = 100
/// on the GPU, one JSON entry and one table line per variant.
#[test]
fn bench_measures_the_dispatch_floor_one_line_per_variant() {
    let o = shadergan(&["bench", "--quick", "--only", "floor", "--json"]);
    if common::gpu().is_none() {
        assert!(!o.status.success());
        assert!(stderr(&o).contains("needs a GPU"), "{}", stderr(&o));
        return;
    }
    assert!(o.status.success(), "bench failed: {}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("--json prints JSON");
    assert!(
        v["results"].as_array().unwrap().is_empty(),
        "only the floor ran"
    );
    let floor = v["floor"].as_array().unwrap();
    assert_eq!(floor.len(), shadergan::gpu::floor::VARIANTS.len());
    for f in floor {
        assert_eq!(f["dispatches"], 100);
        let us = f["device_us"].as_f64().or(f["wall_us"].as_f64()).unwrap();
        assert!(us.is_finite() && us > 0.0, "{f}");
    }
    let table = stderr(&o);
    for variant in shadergan::gpu::floor::VARIANTS {
        assert_eq!(
            table
                .lines()
                .filter(|l| l.starts_with(&format!("{} ", variant.name)))
                .count(),
            1,
            "{}:\n{table}",
            variant.name
        );
    }
}

/// `train --profile` times every kernel of a step after the checkpoint is saved:
/// the checkpoint equals one from a run without the profile.
#[test]
fn train_profile_lists_every_kernel_and_leaves_the_checkpoint_alone() {
    let (plain, profiled) = (scratch("profile-plain"), scratch("profile-on"));
    for (out, extra) in [(&plain, None), (&profiled, Some("--profile"))] {
        let mut args = vec![
            "train",
            "--dataset",
            "ring",
            "--steps",
            "30",
            "--batch",
            "16",
            "--hidden",
            "8,8",
            "--backend",
            "cpu",
            "--quiet",
            "--out",
        ];
        args.push(out.to_str().unwrap());
        args.extend(extra);
        let o = shadergan(&args);
        assert!(o.status.success(), "train failed: {}", stderr(&o));
    }
    let table = std::fs::read_to_string(profiled.join("profile.txt")).expect("profile.txt");
    for kernel in [
        "matmul_bias_act",
        "matmul_dx",
        "matmul_dw",
        "adam",
        "bce_means",
    ] {
        assert!(
            table.contains(kernel),
            "{kernel} missing from the profile:\n{table}"
        );
    }
    assert!(table.contains("per kernel:") && table.contains('%'));
    // The CPU backend has no dispatch floor, only the count.
    let launches = table
        .lines()
        .filter(|l| l.starts_with("  d_step") || l.starts_with("  g_step"))
        .count();
    assert!(
        table.contains(&format!("dispatches per step: {launches} (d_step ")),
        "{table}"
    );
    assert!(!table.contains("dispatch floor:"), "{table}");
    assert!(!plain.join("profile.txt").exists());
    let load =
        |d: &Path| shadergan::io::checkpoint::load(&d.join("checkpoint.safetensors")).unwrap();
    assert!(
        load(&plain).generator == load(&profiled).generator,
        "the profiled steps reached the checkpoint"
    );
}

/// `train --resume`: training 2N steps equals training N, resuming, and
/// training N more. Parameters, G's average, Adam state, step counters and losses.csv are
/// bitwise equal on the CPU backend, and within 1e-5 on the GPU.
#[test]
fn resuming_continues_exactly_where_the_run_stopped() {
    // A fresh run into `out`, or (with `resume`) the run in `out` continued.
    let run = |out: &Path, backend: &str, steps: &str, extra: &[&str], resume: bool| {
        let mut args = vec![
            "train",
            "--steps",
            steps,
            "--log-every",
            "10",
            "--sample-every",
            "10",
            "--eval-every",
            "20",
        ];
        args.extend(["--quiet", "--backend", backend]);
        if resume {
            args.extend(["--resume", out.to_str().unwrap()]);
        } else {
            args.extend(["--dataset", "ring", "--batch", "16", "--hidden", "16,16"]);
            args.extend(["--g-ema", "0.9", "--out", out.to_str().unwrap()]);
            // One D update per step before step 35, two after: the halves cross the switch.
            args.extend(["--d-steps", "2", "--d-steps-from", "35"]);
        }
        args.extend(extra);
        let o = shadergan(&args);
        assert!(o.status.success(), "train {args:?} failed: {}", stderr(&o));
    };
    let load =
        |d: &Path| shadergan::io::checkpoint::load(&d.join("checkpoint.safetensors")).unwrap();
    let mut backends = vec!["cpu"];
    if common::gpu().is_some() {
        backends.push("gpu");
    }
    for backend in backends {
        let whole = scratch(&format!("resume-whole-{backend}"));
        let halves = scratch(&format!("resume-halves-{backend}"));
        run(&whole, backend, "60", &[], false);
        run(&halves, backend, "30", &["--checkpoint-every", "10"], false);
        assert_eq!(load(&halves).step, 30);
        run(&halves, backend, "60", &[], true);
        let (a, b) = (load(&whole), load(&halves));
        assert_eq!(b.step, 60);
        let (ta, tb) = (a.training.clone().unwrap(), b.training.clone().unwrap());
        assert_eq!(
            (ta.generator_updates, ta.discriminator_updates),
            (tb.generator_updates, tb.discriminator_updates)
        );
        assert_eq!(
            (tb.generator_updates, tb.discriminator_updates),
            (60, 35 + 25 * 2)
        );
        let pairs = [
            ("generator", &a.generator, &b.generator),
            (
                "generator average",
                a.generator_ema.as_ref().expect("--g-ema saves the average"),
                b.generator_ema.as_ref().expect("and resuming keeps it"),
            ),
            ("discriminator", &a.discriminator, &b.discriminator),
            ("G adam m", &ta.generator_adam.0, &tb.generator_adam.0),
            (
                "D adam v",
                &ta.discriminator_adam.1,
                &tb.discriminator_adam.1,
            ),
        ];
        for (what, x, y) in pairs {
            if backend == "cpu" {
                assert!(x == y, "{what} differs after resuming on the CPU backend");
            } else {
                common::assert_close(common::norm_rel_err(y, x), 1e-5, what);
            }
        }
        // The mode trace has a row every 20 steps and one where each run ended
        // (the first half at 30), and its last row is the run's eval.json.
        let read = |d: &Path| std::fs::read_to_string(d.join("modes.csv")).unwrap();
        let trace = read(&halves);
        let steps: Vec<&str> = trace
            .lines()
            .skip(1)
            .map(|l| l.split(',').next().unwrap())
            .collect();
        assert_eq!(steps, ["20", "30", "40", "60"], "{trace}");
        if backend == "cpu" {
            assert_eq!(
                std::fs::read(whole.join("losses.csv")).unwrap(),
                std::fs::read(halves.join("losses.csv")).unwrap(),
                "losses.csv differs after resuming"
            );
            let without_30: Vec<&str> = trace.lines().filter(|l| !l.starts_with("30,")).collect();
            assert_eq!(
                read(&whole).lines().collect::<Vec<_>>(),
                without_30,
                "modes.csv differs after resuming"
            );
        }
        assert_png(&halves.join("modes.png"));
        let report: serde_json::Value =
            serde_json::from_slice(&std::fs::read(halves.join("eval.json")).unwrap()).unwrap();
        let last: Vec<&str> = trace.lines().last().unwrap().split(',').collect();
        let m = &report["modes"];
        assert_eq!(last[1], m["modes_covered"].to_string(), "{trace}");
        let hq: f64 = last[3].parse().unwrap();
        assert_eq!(hq, m["high_quality_fraction"].as_f64().unwrap(), "{trace}");
    }
    // Nothing left to train, and training flags with --resume, are refused.
    let done = Path::new(env!("CARGO_TARGET_TMPDIR")).join("cli-resume-halves-cpu");
    let o = shadergan(&["train", "--resume", done.to_str().unwrap(), "--steps", "60"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("at step 60 already"), "{}", stderr(&o));
    let o = shadergan(&["train", "--resume", done.to_str().unwrap(), "--lr", "1"]);
    assert!(!o.status.success());
}

/// Ctrl-C (SIGINT): the steps in flight finish, the checkpoint is written,
/// the exit status is 130 with one line on how to resume, and the run resumes.
#[cfg(unix)]
#[test]
fn sigint_writes_a_checkpoint_and_says_how_to_resume() {
    let out = scratch("sigint");
    let child = Command::new(env!("CARGO_BIN_EXE_shadergan"))
        .args([
            "train",
            "--dataset",
            "ring",
            "--steps",
            "100000000",
            "--batch",
            "16",
            "--hidden",
            "16,16",
            "--backend",
            "cpu",
            "--quiet",
            "--out",
        ])
        .arg(&out)
        .env("XDG_RUNTIME_DIR", std::env::temp_dir())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("the binary starts");
    // Wait until it is training (the loss log appears at the first sample point).
    let started = std::time::Instant::now();
    while !out.join("config.json").exists() && started.elapsed().as_secs() < 60 {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    std::thread::sleep(std::time::Duration::from_millis(500));
    // The shell's builtin kill: no procps needed on a minimal CI image.
    let kill = Command::new("sh")
        .args(["-c", &format!("kill -INT {}", child.id())])
        .status()
        .expect("sh runs");
    assert!(kill.success());
    let o = child.wait_with_output().unwrap();
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(130), "exit status; stderr: {err}");
    assert!(
        err.contains("stopped by SIGINT at step") && err.contains("--resume"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
    let ck = shadergan::io::checkpoint::load(&out.join("checkpoint.safetensors")).unwrap();
    // (Step 0 is possible on a very slow machine; any step below the total is a stop.)
    assert!(ck.step < 100_000_000);
    assert!(ck.training.is_some());
    let more = (ck.step + 20).to_string();
    let o = shadergan(&[
        "train",
        "--resume",
        out.to_str().unwrap(),
        "--steps",
        &more,
        "--quiet",
    ]);
    assert!(o.status.success(), "resume failed: {}", stderr(&o));
    let after = shadergan::io::checkpoint::load(&out.join("checkpoint.safetensors")).unwrap();
    assert_eq!(after.step, ck.step + 20);
}

/// A diverging run (lr 1e30) stops within a log interval with one line naming
/// the step and the networks whose parameters went non-finite, exits non-zero,
/// and writes no checkpoint of the broken state.
#[test]
fn a_diverging_run_stops_naming_the_step_and_the_network() {
    let out = scratch("diverge");
    let o = shadergan(&[
        "train",
        "--dataset",
        "ring",
        "--steps",
        "400",
        "--lr",
        "1e30",
        "--log-every",
        "5",
        "--checkpoint-every",
        "5",
        "--backend",
        "cpu",
        "--quiet",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    let err = stderr(&o);
    let line = err
        .lines()
        .find(|l| l.starts_with("error:"))
        .unwrap_or_else(|| panic!("no error line: {err}"));
    assert!(
        line.contains("diverged") && line.contains("at step 5"),
        "{line}"
    );
    assert!(
        line.contains("generator parameter") || line.contains("discriminator parameter"),
        "{line}"
    );
    assert!(!err.contains("panicked"), "{err}");
    assert!(
        !out.join("checkpoint.safetensors").exists(),
        "a checkpoint of the diverged state was written"
    );
}

/// Sizes whose buffers exceed the adapter's limits are refused up front, in one
/// line naming the limit, before the run folder is made.
#[test]
fn buffers_beyond_the_adapters_limits_are_refused_naming_the_limit() {
    let Some(ctx) = common::gpu() else {
        return;
    };
    let limit = ctx.limits.max_storage_buffer_binding_size as usize;
    // One hidden layer of h units: D's h×h weights alone pass the limit.
    let h = ((limit / 4) as f64).sqrt() as usize + 64;
    if h * h * 4 > 1 << 30 {
        return; // this adapter's limit is too large to pass with a test-sized allocation
    }
    let out = scratch("too-large");
    let hidden = format!("{h},{h}");
    let o = shadergan(&[
        "train",
        "--dataset",
        "ring",
        "--backend",
        "gpu",
        "--steps",
        "1",
        "--batch",
        "8",
        "--quiet",
        "--hidden",
        &hidden,
        "--out",
        out.to_str().unwrap(),
    ]);
    let err = stderr(&o);
    assert!(!o.status.success(), "accepted: {err}");
    let line = err
        .lines()
        .find(|l| l.starts_with("error:"))
        .unwrap_or_default();
    assert!(
        line.contains("adapter allows at most") && line.contains("max_"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
    assert!(!out.exists(), "the run folder was created");
}

/// Bad checkpoints: not safetensors, truncated, a wrong tensor shape, a
/// renamed tensor, a wrong dtype (F16). For `sample`, `eval` and `train
/// --resume` each is one line naming the file and the problem, a non-zero
/// exit, and no output (the resumed run folder is left as it was).
#[test]
fn bad_checkpoints_are_refused_in_one_line_and_nothing_is_written() {
    let dir = scratch("bad-checkpoints");
    let good = dir.join("good");
    let o = train_ring(&good, "cpu", 20);
    assert!(o.status.success(), "{}", stderr(&o));
    let bytes = std::fs::read(good.join("checkpoint.safetensors")).unwrap();
    // A checkpoint with one tensor's shape changed (and its data cut to fit).
    let ck = shadergan::io::checkpoint::load(&good.join("checkpoint.safetensors")).unwrap();
    let mut bigger = ck.model.mlp().unwrap().clone();
    bigger.hidden[0] += 1;
    let reshaped = {
        let mut model = bigger.clone();
        model.hidden[0] -= 1;
        // Parameters of the smaller net under the bigger net's name table: the
        // writer refuses that, so write the bigger net's sizes with the
        // smaller net's metadata by hand.
        let g = bigger.generator().init_params(&mut common::rng(1));
        let d = bigger.discriminator().init_params(&mut common::rng(2));
        let big = shadergan::io::checkpoint::Checkpoint {
            model: shadergan::gan::Architecture::Mlp(bigger.clone()),
            generator: g,
            discriminator: d,
            training: None,
            ..ck.clone()
        };
        let mut raw = shadergan::io::checkpoint::to_bytes(&big).unwrap();
        // The model JSON sits in the header as an escaped JSON string.
        let escaped = |m: &shadergan::gan::ModelSpec| {
            let q = serde_json::to_string(&serde_json::to_string(m).unwrap()).unwrap();
            q[1..q.len() - 1].to_string()
        };
        let (from, to) = (escaped(&bigger), escaped(&model));
        assert_eq!(from.len(), to.len(), "the edit keeps the header length");
        let at = raw
            .windows(from.len())
            .position(|w| w == from.as_bytes())
            .expect("the model JSON is in the header");
        raw[at..at + to.len()].copy_from_slice(to.as_bytes());
        raw
    };
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "not-safetensors",
            b"hello, this is not a checkpoint".to_vec(),
            "not a safetensors file",
        ),
        (
            "truncated",
            bytes[..bytes.len() / 2].to_vec(),
            "or truncated",
        ),
        ("empty", Vec::new(), "not a safetensors file"),
        ("reshaped", reshaped, "has shape"),
        (
            "renamed",
            common::rewrite_safetensors(&bytes, |tensors, _| {
                let t = tensors
                    .iter_mut()
                    .find(|t| t.name == "generator.0.weight")
                    .unwrap();
                t.name = "generator.0.weights".into();
            }),
            "tensor 'generator.0.weight' is missing",
        ),
        (
            "half-precision",
            common::rewrite_safetensors(&bytes, |tensors, _| {
                let t = tensors
                    .iter_mut()
                    .find(|t| t.name == "discriminator.2.weight")
                    .unwrap();
                t.dtype = safetensors::Dtype::F16;
                t.data.truncate(t.data.len() / 2);
            }),
            "tensor 'discriminator.2.weight' is F16, expected F32",
        ),
    ];
    for (name, content, message) in cases {
        let path = dir.join(format!("{name}.safetensors"));
        std::fs::write(&path, &content).unwrap();
        let png = dir.join(format!("{name}.png"));
        // A run folder holding only the bad checkpoint, for `train --resume`.
        let run = dir.join(format!("resume-{name}"));
        std::fs::create_dir_all(&run).unwrap();
        let resumed = run.join("checkpoint.safetensors");
        std::fs::write(&resumed, &content).unwrap();
        let invocations = [
            (
                vec![
                    "sample",
                    "--checkpoint",
                    path.to_str().unwrap(),
                    "--out",
                    png.to_str().unwrap(),
                ],
                &path,
            ),
            (
                vec![
                    "eval",
                    "--checkpoint",
                    path.to_str().unwrap(),
                    "--no-parzen",
                ],
                &path,
            ),
            (
                vec![
                    "train",
                    "--resume",
                    run.to_str().unwrap(),
                    "--steps",
                    "40",
                    "--quiet",
                ],
                &resumed,
            ),
        ];
        for (args, file) in invocations {
            let o = shadergan(&args);
            let err = stderr(&o);
            assert!(!o.status.success(), "{name}: {args:?} accepted");
            let lines: Vec<&str> = err
                .lines()
                .filter(|l| !l.contains("XDG_RUNTIME_DIR"))
                .collect();
            assert_eq!(lines.len(), 1, "{name}: {args:?}: not one line: {err}");
            assert!(
                lines[0].starts_with("error:")
                    && lines[0].contains(file.to_str().unwrap())
                    && lines[0].contains(message),
                "{name}: {args:?}: {err}"
            );
            assert!(!err.contains("panicked"), "{name}: {args:?}: {err}");
            assert!(!png.exists(), "{name}: an output was written");
            // The run folder's lock file (no output) may be there too.
            let left: Vec<_> = std::fs::read_dir(&run)
                .unwrap()
                .map(|e| e.unwrap().file_name())
                .filter(|n| n != shadergan::io::run_lock::LOCK_FILE)
                .collect();
            assert_eq!(left, ["checkpoint.safetensors"], "{name}: {args:?}");
            assert_eq!(std::fs::read(&resumed).unwrap(), content, "{name}");
        }
    }
}

/// A checkpoint of another architecture: `eval --dataset` of the wrong
/// dimension, and `sample` of a checkpoint whose dataset and generator
/// disagree, are one line naming the file; nothing is written.
#[test]
fn checkpoints_of_another_architecture_are_refused_naming_the_file() {
    let dir = scratch("other-architecture");
    let o = train_ring(&dir.join("run"), "cpu", 20);
    assert!(o.status.success(), "{}", stderr(&o));
    let ring = dir.join("run").join("checkpoint.safetensors");
    // The ring checkpoint's metadata claiming Fashion-MNIST: 2-D rows are no 28×28 image.
    let as_images = dir.join("as-images.safetensors");
    std::fs::write(
        &as_images,
        common::rewrite_safetensors(&std::fs::read(&ring).unwrap(), |_, meta| {
            meta.insert("dataset".into(), "fashion-mnist".into());
        }),
    )
    .unwrap();
    let png = dir.join("out.png");
    let cases: [(Vec<&str>, &Path, &str); 3] = [
        (
            vec![
                "eval",
                "--checkpoint",
                ring.to_str().unwrap(),
                "--dataset",
                "fashion-mnist",
                "--no-parzen",
            ],
            &ring,
            "makes 2-dimensional samples, but fashion-mnist rows have 784 values",
        ),
        (
            vec![
                "eval",
                "--checkpoint",
                as_images.to_str().unwrap(),
                "--no-parzen",
            ],
            &as_images,
            "makes 2-dimensional samples, but fashion-mnist rows have 784 values",
        ),
        (
            vec![
                "sample",
                "--checkpoint",
                as_images.to_str().unwrap(),
                "--out",
                png.to_str().unwrap(),
            ],
            &as_images,
            "cannot draw 2-dimensional samples",
        ),
    ];
    for (args, file, message) in cases {
        let o = shadergan(&args);
        let err = stderr(&o);
        assert!(!o.status.success(), "{args:?} accepted");
        let lines: Vec<&str> = err
            .lines()
            .filter(|l| !l.contains("XDG_RUNTIME_DIR"))
            .collect();
        assert_eq!(lines.len(), 1, "{args:?}: not one line: {err}");
        assert!(
            lines[0].starts_with("error:")
                && lines[0].contains(file.to_str().unwrap())
                && lines[0].contains(message),
            "{args:?}: {err}"
        );
        assert!(!err.contains("panicked"), "{err}");
        assert!(!png.exists(), "{args:?} wrote an output");
    }
}

/// `--out` under a regular file (ENOTDIR: this works as root, where
/// permission bits do not stop writes) and, when not root, in a read-only
/// folder: one line naming the folder, before anything runs; nothing written.
#[test]
fn an_output_folder_that_cannot_be_created_is_refused_naming_it() {
    let dir = scratch("unwritable");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("a-file");
    std::fs::write(&file, b"not a folder").unwrap();
    let mut cases = vec![(file.join("run"), "Not a directory")];
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let read_only = dir.join("read-only");
        std::fs::create_dir(&read_only).unwrap();
        std::fs::set_permissions(&read_only, std::fs::Permissions::from_mode(0o555)).unwrap();
        // Root (as in CI containers) writes there anyway: then there is nothing to test.
        if std::fs::create_dir(read_only.join("probe")).is_err() {
            cases.push((read_only.join("run"), "Permission denied"));
        }
    }
    for (out, problem) in &cases {
        let o = train_tiny(out, "8", "10");
        let line = common::one_error_line(
            &o,
            1,
            &[
                &format!("cannot create run folder {}", out.display()),
                problem,
            ],
        );
        let others: Vec<_> = stderr(&o)
            .lines()
            .filter(|l| *l != line && !l.contains("XDG_RUNTIME_DIR"))
            .map(str::to_string)
            .collect();
        assert!(others.is_empty(), "more than the error: {others:?}");
        assert!(!out.exists());
        // `sweep` refuses it before training the first seed.
        let o = shadergan(&[
            "sweep",
            "--seeds",
            "1",
            "--preset",
            "ring",
            "--steps",
            "5000",
            "--backend",
            "cpu",
            "--out",
            out.to_str().unwrap(),
        ]);
        common::one_error_line(
            &o,
            1,
            &[
                &format!("cannot create run folder {}", out.display()),
                problem,
            ],
        );
        assert!(!out.exists());
    }
    // `sample --out` under the file: one line naming the PNG.
    let run = scratch("unwritable-run");
    assert!(train_tiny(&run, "8", "10").status.success());
    let png = file.join("drawn.png");
    let o = shadergan(&[
        "sample",
        "--checkpoint",
        run.join("checkpoint.safetensors").to_str().unwrap(),
        "--backend",
        "cpu",
        "--out",
        png.to_str().unwrap(),
    ]);
    common::one_error_line(
        &o,
        1,
        &[
            &format!("cannot write {}", png.display()),
            "Not a directory",
        ],
    );
    assert_eq!(std::fs::read(&file).unwrap(), b"not a folder");
}

/// `train --resume DIR` with a checkpoint whose architecture is not the run's:
/// one copied in from another run (config.json disagrees), and one whose own
/// recipe builds another model. One line naming the checkpoint; DIR unchanged.
#[test]
fn resuming_a_checkpoint_of_another_architecture_is_refused_naming_it() {
    let run = |name: &str, hidden: &str| {
        let out = scratch(name);
        let o = train_tiny(&out, hidden, "10");
        assert!(o.status.success(), "{}", stderr(&o));
        out
    };
    let (small, large) = (run("arch-small", "8"), run("arch-large", "8,8"));
    let ck_path = small.join("checkpoint.safetensors");
    // A checkpoint from the other run copied in.
    std::fs::copy(large.join("checkpoint.safetensors"), &ck_path).unwrap();
    let resume = |dir: &Path| {
        shadergan(&[
            "train",
            "--resume",
            dir.to_str().unwrap(),
            "--steps",
            "20",
            "--quiet",
        ])
    };
    let before = common::snapshot(&small);
    common::one_error_line(
        &resume(&small),
        1,
        &[
            &ck_path.display().to_string(),
            "hidden [8, 8]",
            "config.json",
            "hidden [8]",
        ],
    );
    assert!(common::snapshot(&small) == before, "the run folder changed");

    // A checkpoint whose recipe asks for hidden [16]: its model is not that.
    let ck_path = large.join("checkpoint.safetensors");
    let bytes = std::fs::read(&ck_path).unwrap();
    let edited = common::rewrite_safetensors(&bytes, |_, meta| {
        let mut recipe: serde_json::Value = serde_json::from_str(&meta["recipe"]).unwrap();
        recipe["hidden"] = serde_json::json!([16]);
        meta.insert("recipe".into(), recipe.to_string());
    });
    std::fs::write(&ck_path, edited).unwrap();
    let before = common::snapshot(&large);
    common::one_error_line(
        &resume(&large),
        1,
        &[
            &ck_path.display().to_string(),
            "hidden [8, 8]",
            "its recipe builds",
            "hidden [16]",
        ],
    );
    assert!(common::snapshot(&large) == before, "the run folder changed");
}

/// Command lines clap refuses: one line naming the flag, exit status 2, no
/// usage block; `--help` and `--version` still print in full and exit 0.
#[test]
fn usage_errors_are_one_line_naming_the_flag_with_exit_status_2() {
    let cases: &[(&[&str], &[&str])] = &[
        (&["train", "--bach", "3"], &["'--bach'", "'--batch'"]),
        (&["train", "--batch", "abc"], &["'abc'", "--batch"]),
        (&["train", "--batch"], &["--batch", "a value is required"]),
        (&["sample"], &["--checkpoint", "required"]),
        (
            &["train", "--resume", "x", "--lr", "1"],
            &["--resume", "--lr"],
        ),
        (&["trian"], &["'trian'"]),
        // `sweep` and `summarize` were `eval --seeds` and `eval --summarize`.
        (
            &["eval", "--seeds", "2", "--preset", "ring"],
            &["'--seeds'"],
        ),
        (&["eval", "--summarize", "runs"], &["'--summarize'"]),
        (
            &["sweep", "--seeds", "2"],
            &["--preset", "--recipe", "required"],
        ),
        (&["summarize"], &["<DIR>", "required"]),
        (&["eval"], &["--checkpoint", "required"]),
        (
            &["train", "--preset", "ring", "--recipe", "r.json"],
            &["--recipe", "--preset"],
        ),
        (
            &["train", "--dump-recipe", "--epochs", "2"],
            &["--dump-recipe", "--epochs"],
        ),
    ];
    for (args, needles) in cases {
        let o = shadergan(args);
        let line = common::one_error_line(&o, 2, needles);
        let err = stderr(&o);
        assert_eq!(err.trim(), line, "{args:?}: more than one line: {err}");
        assert!(o.stdout.is_empty(), "{args:?}");
    }
    for flag in ["--help", "--version"] {
        let o = shadergan(&[flag]);
        assert!(o.status.success(), "{flag}: {}", stderr(&o));
        assert!(String::from_utf8_lossy(&o.stdout).contains("shadergan"));
    }
    let o = shadergan(&["train", "--help"]);
    assert!(o.status.success());
    assert!(String::from_utf8_lossy(&o.stdout).contains("Usage:"));
}

/// Bad IDX files through the command line: each is one `error:` line naming
/// the file and the problem, a non-zero exit, no panic, and no output. Image
/// files go through `train --dataset mnist --data DIR`; labels (and counts that
/// disagree) through `train-classifier`, which reads both.
#[test]
fn bad_idx_files_are_refused_in_one_line_through_the_command_line() {
    use shadergan::data::idx::{IMAGE_MAGIC, Images, LABEL_MAGIC, write_images, write_labels};
    let root = scratch("bad-idx");
    let header = |magic: u32, dims: &[u32]| -> Vec<u8> {
        let mut h = magic.to_be_bytes().to_vec();
        for d in dims {
            h.extend(d.to_be_bytes());
        }
        h
    };
    let images = Images {
        count: 4,
        rows: 28,
        cols: 28,
        pixels: (0..4 * 784).map(|i| (i % 251) as u8).collect(),
    };
    let good_images = {
        let mut b = header(IMAGE_MAGIC, &[4, 28, 28]);
        b.extend(&images.pixels);
        b
    };
    // (case, file name, content, what the line must say)
    let image_cases: Vec<(&str, &str, Vec<u8>, &str)> = vec![
        (
            "magic",
            "train-images-idx3-ubyte",
            [header(0x0000_0801, &[4, 28, 28]), images.pixels.clone()].concat(),
            "wrong magic number",
        ),
        (
            "truncated",
            "train-images-idx3-ubyte",
            good_images[..good_images.len() - 100].to_vec(),
            "truncated data",
        ),
        (
            "claims-more",
            "train-images-idx3-ubyte",
            [header(IMAGE_MAGIC, &[400, 28, 28]), images.pixels.clone()].concat(),
            "truncated data",
        ),
        (
            "absurd",
            "train-images-idx3-ubyte",
            header(IMAGE_MAGIC, &[4, 100_000, 100_000]),
            "absurd dimensions",
        ),
        (
            "zero",
            "train-images-idx3-ubyte",
            header(IMAGE_MAGIC, &[0, 28, 28]),
            "zero",
        ),
        (
            "not-gzip",
            "train-images-idx3-ubyte.gz",
            good_images.clone(),
            "not gzip",
        ),
    ];
    for (case, file, content, message) in image_cases {
        let dir = root.join(case);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(file), &content).unwrap();
        let out = dir.join("run");
        let o = shadergan(&[
            "train",
            "--dataset",
            "mnist",
            "--data",
            dir.to_str().unwrap(),
            "--steps",
            "1",
            "--batch",
            "2",
            "--hidden",
            "8",
            "--backend",
            "cpu",
            "--quiet",
            "--out",
            out.to_str().unwrap(),
        ]);
        common::one_error_line(&o, 1, &[file, message]);
        assert!(!out.exists(), "{case}: the run folder was created");
    }

    // Labels: through train-classifier, which reads the training split's pair.
    let label_cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "labels-magic",
            [header(IMAGE_MAGIC, &[4]), vec![1, 2, 3, 4]].concat(),
            "wrong magic number",
        ),
        (
            "labels-truncated",
            [header(LABEL_MAGIC, &[4]), vec![1, 2]].concat(),
            "truncated data",
        ),
        (
            "labels-count",
            [header(LABEL_MAGIC, &[3]), vec![1, 2, 3]].concat(),
            "images, but",
        ),
    ];
    for (case, labels, message) in label_cases {
        let dir = root.join(case);
        std::fs::create_dir_all(&dir).unwrap();
        write_images(&dir.join("train-images-idx3-ubyte"), &images, false).unwrap();
        write_images(&dir.join("t10k-images-idx3-ubyte"), &images, false).unwrap();
        write_labels(&dir.join("t10k-labels-idx1-ubyte"), &[0, 1, 2, 3], false).unwrap();
        std::fs::write(dir.join("train-labels-idx1-ubyte"), &labels).unwrap();
        let out = dir.join("classifier.safetensors");
        let o = shadergan(&[
            "train-classifier",
            "--dataset",
            "mnist",
            "--data",
            dir.to_str().unwrap(),
            "--epochs",
            "1",
            "--backend",
            "cpu",
            "--out",
            out.to_str().unwrap(),
        ]);
        common::one_error_line(&o, 1, &["train-labels-idx1-ubyte", message]);
        assert!(!out.exists(), "{case}: the classifier was written");
    }
}

/// `info` names the chosen adapter and says whether it offers cooperative
/// matrices (tensor cores) and in which configurations.
#[test]
fn info_says_whether_the_adapter_has_cooperative_matrices() {
    if common::gpu().is_none() {
        return;
    }
    let o = shadergan(&["info"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("chosen: "), "{out}");
    let line = out
        .lines()
        .find(|l| l.starts_with("cooperative matrices (tensor cores): "))
        .unwrap_or_else(|| panic!("no cooperative-matrix line in {out}"));
    assert!(line.contains("none (") || line.contains('×'), "{line}");
    let tensor_cores = out
        .lines()
        .find(|l| l.starts_with("--matmul-precision f16-tensor-cores: "))
        .unwrap_or_else(|| panic!("no tensor-core line in {out}"));
    assert!(
        tensor_cores.ends_with("available") || tensor_cores.contains("refused ("),
        "{tensor_cores}"
    );
}

/// `--matmul-precision f16-tensor-cores` on an adapter without cooperative
/// matrices (llvmpipe), or with the CPU backend, fails in one line naming
/// the reason, before any output is written.
#[test]
fn the_tensor_core_precision_is_refused_where_it_cannot_run() {
    let out = common::scratch("tensor_cores_refused");
    let out_arg = out.to_str().unwrap();
    let flag = ["--matmul-precision", "f16-tensor-cores"];
    let o = shadergan(
        &[
            &[
                "train",
                "--steps",
                "1",
                "--backend",
                "cpu",
                "--out",
                out_arg,
            ],
            &flag[..],
        ]
        .concat(),
    );
    common::one_error_line(
        &o,
        1,
        &["--matmul-precision f16-tensor-cores needs the GPU"],
    );
    assert!(!out.exists(), "the run folder was written");
    let Some(ctx) = common::gpu() else { return };
    if ctx.tensor_cores_refused.is_none() {
        return; // this adapter has them: tests/matmul_coop.rs checks the kernel
    }
    let o = shadergan(
        &[
            &[
                "train",
                "--steps",
                "1",
                "--backend",
                "gpu",
                "--out",
                out_arg,
            ],
            &flag[..],
        ]
        .concat(),
    );
    let adapter = ctx.adapter_info.name.as_str();
    common::one_error_line(
        &o,
        1,
        &[
            "tensor-core path",
            adapter,
            "EXPERIMENTAL_COOPERATIVE_MATRIX",
        ],
    );
    assert!(!out.exists(), "the run folder was written");
}
