//! Layer-list GANs through the `shadergan` command: `train --recipe` of a
//! small DCGAN (`examples/recipes/tiny_dcgan.json`) on the embedded
//! Fashion-MNIST, its checkpoint as `nn.Sequential` state_dicts (BatchNorm's
//! running statistics and int64 `num_batches_tracked` included), `sample`
//! from it, resuming (bitwise on the CPU backend, within 1e-5 on the GPU),
//! and layer lists or checkpoints that do not fit, refused in one line.

mod common;

use common::{scratch, shadergan, stderr};

use std::path::{Path, PathBuf};
use std::process::Output;

use safetensors::{Dtype, SafeTensors};
use shadergan::io::checkpoint;

const RECIPE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/examples/recipes/tiny_dcgan.json"
);

/// `train --recipe tiny_dcgan.json` for `steps` steps into `out`.
fn train(out: &Path, backend: &str, steps: u64) -> Output {
    train_with(out, backend, steps, &[])
}

/// [`train`] with more flags.
fn train_with(out: &Path, backend: &str, steps: u64, more: &[&str]) -> Output {
    let steps = steps.to_string();
    let args = [
        "train",
        "--recipe",
        RECIPE,
        "--backend",
        backend,
        "--steps",
        &steps,
        "--seed",
        "3",
        "--sample-every",
        "5",
        "--quiet",
        "--out",
    ];
    let mut all: Vec<&str> = args.to_vec();
    all.push(out.to_str().unwrap());
    all.extend(more);
    shadergan(&all)
}

fn resume(out: &Path, backend: &str, steps: u64) -> Output {
    let steps = steps.to_string();
    let dir = out.to_str().unwrap();
    shadergan(&[
        "train",
        "--resume",
        dir,
        "--steps",
        &steps,
        "--backend",
        backend,
        "--quiet",
    ])
}

fn load(out: &Path) -> checkpoint::Checkpoint {
    checkpoint::load(&out.join("checkpoint.safetensors")).unwrap()
}

/// Every state and optimizer vector of a checkpoint, named.
fn vectors(ck: &checkpoint::Checkpoint) -> Vec<(&'static str, Vec<f32>)> {
    let t = ck
        .training
        .as_ref()
        .expect("train writes its training state");
    let average = ck.generator_ema.clone().unwrap_or_default();
    vec![
        ("G's average", average),
        ("generator", ck.generator.clone()),
        ("discriminator", ck.discriminator.clone()),
        ("G adam m", t.generator_adam.0.clone()),
        ("G adam v", t.generator_adam.1.clone()),
        ("D adam m", t.discriminator_adam.0.clone()),
        ("D adam v", t.discriminator_adam.1.clone()),
    ]
}

#[test]
fn a_layer_recipe_writes_state_dicts_and_resumes_bitwise_on_the_cpu() {
    let (straight, split) = (scratch("straight"), scratch("split"));
    // With G's average, which covers its running statistics too.
    let average = ["--g-ema", "0.9"];
    let o = train_with(&straight, "cpu", 10, &average);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = train_with(&split, "cpu", 6, &average);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = resume(&split, "cpu", 10);
    assert!(o.status.success(), "{}", stderr(&o));
    let (a, b) = (load(&straight), load(&split));
    assert_eq!(a.step, 10);
    let avg = a.generator_ema.as_ref().expect("G's average is saved");
    assert_ne!(avg, &a.generator, "the average trails G");
    for ((name, x), (_, y)) in vectors(&a).into_iter().zip(vectors(&b)) {
        assert!(
            x.iter().zip(&y).all(|(p, q)| p.to_bits() == q.to_bits()),
            "{name} differs after resuming"
        );
    }
    let (ta, tb) = (a.training.unwrap(), b.training.unwrap());
    assert_eq!(
        (ta.generator_updates, ta.discriminator_updates),
        (tb.generator_updates, tb.discriminator_updates)
    );
    // The sample grid is G in evaluation mode, on the resumed running statistics.
    let grid = |dir: &Path| std::fs::read(dir.join("samples/step-0000010.png")).unwrap();
    assert_eq!(grid(&straight), grid(&split));

    let bytes = std::fs::read(straight.join("checkpoint.safetensors")).unwrap();
    let tensors = SafeTensors::deserialize(&bytes).unwrap();
    assert!(tensors.tensor("generator_ema.5.running_var").is_ok());
    let batches = tensors.tensor("generator.1.num_batches_tracked").unwrap();
    assert_eq!((batches.dtype(), batches.shape()), (Dtype::I64, &[][..]));
    assert_eq!(i64::from_le_bytes(batches.data().try_into().unwrap()), 10);
    for (name, shape) in [
        ("generator.0.weight", vec![392, 16]),
        ("generator.1.running_var", vec![392]),
        ("generator.4.weight", vec![8, 4, 4, 4]),
        ("generator.5.running_mean", vec![4]),
        ("discriminator.0.weight", vec![4, 1, 4, 4]),
        ("discriminator.0.bias", vec![4]),
        ("discriminator.6.weight", vec![1, 392]),
    ] {
        assert_eq!(tensors.tensor(name).unwrap().shape(), shape, "{name}");
    }

    let png = straight.join("drawn.png");
    let o = shadergan(&[
        "sample",
        "--checkpoint",
        straight.join("checkpoint.safetensors").to_str().unwrap(),
        "--out",
        png.to_str().unwrap(),
        "--backend",
        "cpu",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(image::open(&png).unwrap().width() > 100);
}

#[test]
fn a_layer_recipe_resumes_on_the_gpu_within_tolerance() {
    if common::gpu().is_none() {
        eprintln!("skipped: no GPU adapter");
        return;
    }
    let (straight, split) = (scratch("gpu-straight"), scratch("gpu-split"));
    let o = train(&straight, "gpu", 8);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = train(&split, "gpu", 4);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = resume(&split, "gpu", 8);
    assert!(o.status.success(), "{}", stderr(&o));
    for ((name, x), (_, y)) in vectors(&load(&straight))
        .into_iter()
        .zip(vectors(&load(&split)))
    {
        if x.is_empty() {
            continue; // no average without --g-ema
        }
        let err = common::norm_rel_err(&y, &x);
        assert!(err < 1e-5, "{name}: relative error {err:e} after resuming");
    }
}

/// `train --recipe FILE` on the CPU backend into `out`.
fn train_file(recipe: &Path, out: &Path) -> Output {
    shadergan(&[
        "train",
        "--recipe",
        recipe.to_str().unwrap(),
        "--backend",
        "cpu",
        "--quiet",
        "--out",
        out.to_str().unwrap(),
    ])
}

/// A recipe whose D layer 0 has `field` set to `value`.
fn recipe_with(dir: &Path, field: &str, value: usize) -> PathBuf {
    let mut r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(RECIPE).unwrap()).unwrap();
    r["layers"]["discriminator"][0][field] = value.into();
    std::fs::create_dir_all(dir).unwrap();
    let path = dir.join(format!("{field}-{value}.json"));
    std::fs::write(&path, r.to_string()).unwrap();
    path
}

#[test]
fn layer_lists_that_do_not_fit_are_refused_in_one_line_writing_nothing() {
    let dir = scratch("refused");
    let cases = [
        (
            "kernel",
            40,
            "a 40×40 kernel at stride 2 does not fit [1, 28, 28] padded by 1",
        ),
        ("stride", 0, "stride must be at least 1 (got 0)"),
        ("out_channels", 0, "out_channels must be at least 1 (got 0)"),
    ];
    for (field, value, want) in cases {
        let recipe = recipe_with(&dir, field, value);
        let out = dir.join(format!("run-{field}"));
        let o = train_file(&recipe, &out);
        let err = stderr(&o);
        let last = err.lines().last().unwrap_or_default();
        assert!(!o.status.success(), "{field}: {err}");
        assert!(
            last.contains(&format!("discriminator: layer 0 (Conv2d): {want}")),
            "{field}: {err}"
        );
        assert!(!err.contains("panicked"), "{err}");
        assert!(
            !out.exists(),
            "{field}: a refused run wrote {}",
            out.display()
        );
    }
    // Sizes past this machine's memory are refused before anything is
    // allocated, naming what sets them.
    let mut r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(RECIPE).unwrap()).unwrap();
    r["layers"]["generator"][0]["out"] = (392u64 * 2_000_000).into();
    r["layers"]["generator"][3]["shape"] = serde_json::json!([16_000_000, 7, 7]);
    let huge = dir.join("huge.json");
    std::fs::write(&huge, r.to_string()).unwrap();
    let out = dir.join("run-huge");
    let o = train_file(&huge, &out);
    let err = stderr(&o);
    assert!(!o.status.success(), "{err}");
    assert!(err.contains("the recipe's layer lists"), "{err}");
    assert!(!err.contains("panicked") && !out.exists(), "{err}");
    // MLP settings a layer recipe does not use are refused by name.
    let o = shadergan(&[
        "train",
        "--recipe",
        RECIPE,
        "--hidden",
        "8",
        "--dump-recipe",
    ]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("--hidden is not used with layers"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn resuming_with_other_layers_is_refused_naming_the_layer() {
    let run = scratch("other-layers");
    let o = train(&run, "cpu", 3);
    assert!(o.status.success(), "{}", stderr(&o));
    let config = run.join("config.json");
    let mut c: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&config).unwrap()).unwrap();
    c["model"]["generator"][4]["out_channels"] = 5.into();
    std::fs::write(&config, c.to_string()).unwrap();
    let before = std::fs::read(run.join("checkpoint.safetensors")).unwrap();
    let o = resume(&run, "cpu", 6);
    let err = stderr(&o);
    assert!(!o.status.success());
    assert!(
        err.contains("generator layer 4 is {\"layer\":\"ConvTranspose2d\",\"out_channels\":4"),
        "{err}"
    );
    let errors = err.lines().filter(|l| l.starts_with("error:")).count();
    assert_eq!(errors, 1, "{err}");
    let after = std::fs::read(run.join("checkpoint.safetensors")).unwrap();
    assert_eq!(before, after, "a refused resume rewrote the checkpoint");
}

/// `eval --json` of a checkpoint with `--bn-stats`, on the CPU backend.
fn eval_json(ck: &Path, stats: &str) -> serde_json::Value {
    let o = shadergan(&[
        "eval",
        "--checkpoint",
        ck.to_str().unwrap(),
        "--bn-stats",
        stats,
        "--backend",
        "cpu",
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    serde_json::from_slice(&o.stdout).expect("eval --json prints JSON")
}

#[test]
fn eval_and_sample_can_recompute_the_generators_batch_norm_statistics() {
    let out = scratch("bn-stats");
    let o = train(&out, "cpu", 8);
    assert!(o.status.success(), "{}", stderr(&o));
    let ck = out.join("checkpoint.safetensors");
    let before = std::fs::read(&ck).unwrap();
    let running = eval_json(&ck, "running");
    let recomputed = eval_json(&ck, "recomputed");
    assert_eq!(running["bn_stats"], "running");
    assert_eq!(recomputed["bn_stats"], "recomputed");
    let fd = |r: &serde_json::Value| r["classifier"]["frechet_distance"].as_f64().unwrap();
    assert!(fd(&running).is_finite() && fd(&recomputed).is_finite());
    assert_ne!(
        fd(&running),
        fd(&recomputed),
        "other statistics, other samples"
    );

    let drawn = |stats: &str| {
        let png = out.join(format!("{stats}.png"));
        let o = shadergan(&[
            "sample",
            "--checkpoint",
            ck.to_str().unwrap(),
            "--bn-stats",
            stats,
            "--out",
            png.to_str().unwrap(),
            "--backend",
            "cpu",
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
        std::fs::read(png).unwrap()
    };
    assert_ne!(drawn("running"), drawn("recomputed"));
    assert_eq!(
        std::fs::read(&ck).unwrap(),
        before,
        "the checkpoint is left as it was"
    );
}
