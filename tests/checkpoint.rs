//! Checkpoint round trip: train a little, save, load, and draw identical samples;
//! and the embedded dataset through the IDX reader.

mod common;

use shadergan::cpu::CpuPlan;
use shadergan::data::{self, DataKind, DatasetName};
use shadergan::gan::{
    Architecture, GanConfig, InitialParams, ModelSpec, build_gan_plan, build_sampler_plan,
    fixed_noise,
};
use shadergan::gpu::GpuPlan;
use shadergan::io::checkpoint::{self, Checkpoint};
use shadergan::plan::Activation;

fn ring_config() -> GanConfig {
    GanConfig {
        model: ModelSpec {
            z_dim: 4,
            data_dim: 2,
            hidden: vec![16, 16],
            hidden_act: Activation::LeakyRelu(0.2),
            output_act: Activation::Identity,
            pack: 1,
        },
        batch: 16,
        seed: 9,
        sample_rows: 40,
        ..GanConfig::default()
    }
}

#[test]
fn save_load_and_sample_gives_identical_samples() {
    let cfg = ring_config();
    let data = data::load(DatasetName::Ring, None, 9).unwrap().dataset;
    let gan = build_gan_plan(&cfg, &data.data, InitialParams::default()).unwrap();
    let mut cpu = CpuPlan::new(gan.plan.clone()).unwrap();
    for _ in 0..20 {
        cpu.run(&["d_step", "g_step"]).unwrap();
    }
    cpu.run(&["sample"]).unwrap();
    let trained_samples = cpu.f32s(gan.samples).to_vec();

    let ck = Checkpoint {
        model: Architecture::Mlp(cfg.model.clone()),
        step: 20,
        dataset: "ring".into(),
        seed: cfg.seed,
        generator: cpu.f32s(gan.generator.params).to_vec(),
        discriminator: cpu.f32s(gan.discriminator.params).to_vec(),
        generator_ema: None,
        training: None,
    };
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("checkpoint-round-trip");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("checkpoint.safetensors");
    checkpoint::save(&path, &ck).unwrap();
    let loaded = checkpoint::load(&path).unwrap();
    assert_eq!(loaded, ck);

    // The same fixed noise through the loaded generator: the same bits as in training.
    let z = fixed_noise(cfg.seed, cfg.sample_rows, cfg.model.z_dim);
    let (plan, out) = build_sampler_plan(&loaded.model, loaded.generator.clone(), z).unwrap();
    let mut sampler = CpuPlan::new(plan.clone()).unwrap();
    sampler.run(&["sample"]).unwrap();
    assert!(
        sampler.f32s(out) == trained_samples.as_slice(),
        "samples differ after reload"
    );
    assert!(trained_samples.iter().all(|v| v.is_finite()));

    if let Some(ctx) = common::gpu() {
        let g = GpuPlan::new(ctx, plan).unwrap();
        g.run(ctx, &["sample"]).unwrap();
        let err = common::norm_rel_err(&common::read_gpu(&g, out), &trained_samples);
        common::assert_close(err, 1e-5, "GPU samples from the reloaded checkpoint");
    }
}

#[test]
fn a_checkpoint_of_another_architecture_is_refused() {
    let cfg = ring_config();
    let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(0);
    let ck = Checkpoint {
        model: Architecture::Mlp(cfg.model.clone()),
        step: 1,
        dataset: "ring".into(),
        seed: 0,
        generator: cfg.model.generator().init_params(&mut rng),
        discriminator: cfg.model.discriminator().init_params(&mut rng),
        generator_ema: None,
        training: None,
    };
    let other = ModelSpec {
        hidden: vec![32, 16],
        ..cfg.model.clone()
    };
    let e = build_sampler_plan(
        &Architecture::Mlp(other),
        ck.generator.clone(),
        vec![0.0; 4],
    )
    .unwrap_err();
    assert!(e.to_string().contains("architecture needs"), "{e}");
}

#[test]
fn the_embedded_default_dataset_reads_as_10k_fashion_images() {
    let d = data::embedded_fashion_mnist().unwrap();
    assert_eq!(d.kind, DataKind::Images { rows: 28, cols: 28 });
    assert_eq!(d.data.rows(), 10_000);
    assert_eq!(d.data.cols(), 784);
    let labels = data::idx::parse_labels(data::EMBEDDED_LABELS, "embedded labels").unwrap();
    assert_eq!(labels.len(), 10_000);
    assert!(labels.iter().all(|&l| l < 10));
    if let shadergan::gan::TrainingData::U8 { bytes, .. } = &d.data {
        let mean = bytes.iter().map(|&b| f64::from(b)).sum::<f64>() / bytes.len() as f64;
        // Fashion-MNIST's mean pixel is about 73 of 255.
        assert!((60.0..90.0).contains(&mean), "mean pixel {mean}");
    } else {
        panic!("images are stored as bytes");
    }
}
