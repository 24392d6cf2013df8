//! A layer-list GAN step (`gan::seq_step`): a small DCGAN (G: Linear,
//! BatchNorm1d, LeakyReLU, Reshape, ConvTranspose2d, BatchNorm2d, LeakyReLU,
//! ConvTranspose2d, Tanh; D: Conv2d, LeakyReLU, Dropout, Conv2d, LeakyReLU,
//! Flatten, Linear) on 8×8 images: three steps on both backends agree, the
//! running statistics move, the samples come from them, and layer lists
//! that cannot make a GAN are refused.

mod common;

use common::*;
use shadergan::cpu::CpuPlan;
use shadergan::gan::LayerModel;
use shadergan::gan::TrainingData;
use shadergan::gan::seq_step::{SeqGanConfig, build_seq_gan_plan};
use shadergan::nn::layers::Layer;
use shadergan::plan::AdamHyper;

fn tiny_dcgan(batch: usize) -> SeqGanConfig {
    let leaky = Layer::LeakyReLU { slope: 0.3 };
    let ct = |out_channels, stride, output_padding| Layer::ConvTranspose2d {
        out_channels,
        kernel: 3,
        stride,
        padding: 1,
        output_padding,
        bias: false,
    };
    let conv = |out_channels| Layer::Conv2d {
        out_channels,
        kernel: 3,
        stride: 2,
        padding: 1,
        bias: true,
    };
    let model = LayerModel {
        z_dim: 5,
        data_shape: vec![1, 8, 8],
        generator: vec![
            Layer::Linear {
                out: 4 * 2 * 2,
                bias: false,
            },
            Layer::BatchNorm1d,
            leaky.clone(),
            Layer::Reshape {
                shape: vec![4, 2, 2],
            },
            ct(3, 2, 1),
            Layer::BatchNorm2d,
            leaky.clone(),
            ct(1, 2, 1),
            Layer::Tanh,
        ],
        discriminator: vec![
            conv(3),
            leaky.clone(),
            Layer::Dropout { p: 0.3 },
            conv(5),
            leaky,
            Layer::Flatten,
            Layer::Linear { out: 1, bias: true },
        ],
    };
    SeqGanConfig {
        model,
        batch,
        seed: 7,
        d_adam: AdamHyper::default(),
        g_adam: AdamHyper::default(),
        real_label: 0.9,
        sample_rows: 4,
        g_ema: 0.0,
    }
}

fn images(rows: usize) -> TrainingData {
    let mut r = rng(5);
    let bytes = uniform(&mut r, rows * 64, 0.0, 255.0)
        .into_iter()
        .map(|v| v as u8)
        .collect();
    TrainingData::U8 {
        rows,
        cols: 64,
        bytes,
    }
}

#[test]
fn a_dcgan_step_agrees_on_both_backends() {
    for batch in [3, 8] {
        let gp = build_seq_gan_plan(&tiny_dcgan(batch), &images(20)).expect("a valid DCGAN");
        let steps = [
            "d_step", "g_step", "d_step", "g_step", "d_step", "g_step", "sample",
        ];
        let Some((cpu, gpu)) = run_both(gp.plan.clone(), &steps) else {
            let mut cpu = CpuPlan::new(gp.plan.clone()).unwrap();
            cpu.run(&steps).unwrap();
            assert!(cpu.f32s(gp.stats).iter().all(|v| v.is_finite()));
            return;
        };
        let mut outs = vec![
            ("G params", gp.generator.params),
            ("D params", gp.discriminator.params),
            ("G moments", gp.generator.adam_v),
            ("stats", gp.stats),
            ("samples", gp.samples),
        ];
        outs.extend(
            gp.generator
                .running_mean
                .iter()
                .map(|&s| ("running mean", s)),
        );
        outs.extend(gp.generator.running_var.iter().map(|&s| ("running var", s)));
        for (name, s) in outs {
            let err = norm_rel_err(&read_gpu(&gpu, s), cpu.f32s(s));
            assert_close(err, 1e-4, &format!("batch {batch}: {name}"));
        }
        // Three updates of the running statistics, from mean 0 / var 1.
        assert_eq!(cpu.u32s(gp.generator.norm_batches), [3, 3]);
        assert_eq!(read_gpu_u32(&gpu, gp.generator.norm_batches), [3, 3]);
        assert!(
            cpu.f32s(gp.generator.running_mean[0])
                .iter()
                .any(|&m| m != 0.0)
        );
        let samples = cpu.f32s(gp.samples);
        assert!(samples.iter().all(|v| v.abs() <= 1.0), "tanh samples");
        assert!(cpu.f32s(gp.stats).iter().all(|v| v.is_finite()));
    }
}

#[test]
fn layer_lists_that_cannot_make_a_gan_are_refused() {
    let data = images(10);
    let err = |cfg: SeqGanConfig| build_seq_gan_plan(&cfg, &data).unwrap_err().to_string();
    let mut wrong_size = tiny_dcgan(3);
    wrong_size.model.data_shape = vec![64];
    let e = err(wrong_size);
    assert!(
        e.contains("discriminator: layer 0 (Conv2d): Conv2d takes [C, H, W] images, got [64]"),
        "{e}"
    );
    let mut bn_in_d = tiny_dcgan(3);
    bn_in_d.model.discriminator.insert(1, Layer::BatchNorm2d);
    assert!(err(bn_in_d).contains("layer 1 (BatchNorm): not supported in D"));
    let mut two_logits = tiny_dcgan(3);
    *two_logits.model.discriminator.last_mut().unwrap() = Layer::Linear { out: 2, bias: true };
    assert!(err(two_logits).contains("one logit"));
    let mut small_g = tiny_dcgan(3);
    small_g.model.generator.truncate(4);
    assert!(err(small_g).contains("the generator makes 16 values per sample but the data has 64"));
}

/// The TensorFlow tutorial's DCGAN builds for 28×28 images, with the
/// parameter counts of its Keras summary (G 2,330,944, of which 25,472 are
/// BatchNorm's moving statistics; D 212,865), and one step runs on the CPU.
#[test]
fn the_tensorflow_tutorials_dcgan_builds_and_steps() {
    let cfg = SeqGanConfig::tf_dcgan(2, 0);
    let data = TrainingData::U8 {
        rows: 4,
        cols: 784,
        bytes: vec![128; 4 * 784],
    };
    let gp = build_seq_gan_plan(&cfg, &data).expect("the tutorial's model");
    let count = |net: &shadergan::nn::sequential::Sequential| -> usize {
        net.units
            .iter()
            .flat_map(|u| [u.weight, u.bias].into_iter().flatten())
            .map(|(_, n)| n)
            .sum()
    };
    // Keras counts BatchNorm's moving statistics too (2 per channel, not trainable).
    assert_eq!(count(&gp.g_net), 2_330_944 - 2 * (12_544 + 128 + 64));
    assert_eq!(count(&gp.d_net), 212_865);
    // Batch 2: D's first weight gradient sums 4·14·14 values, in 3 splits.
    let names: Vec<&str> = gp
        .plan
        .phase("d_step")
        .unwrap()
        .ops
        .iter()
        .map(|o| o.kernel_name())
        .collect();
    assert!(
        names.contains(&"conv2d_weight_grad_split") && names.contains(&"sum_splits"),
        "{names:?}"
    );
    let steps = ["d_step", "g_step", "sample"];
    let Some((cpu, gpu)) = run_both(gp.plan.clone(), &steps) else {
        let mut cpu = CpuPlan::new(gp.plan.clone()).unwrap();
        cpu.run(&steps).unwrap();
        assert!(cpu.f32s(gp.stats).iter().all(|v| v.is_finite()));
        return;
    };
    assert!(cpu.f32s(gp.stats).iter().all(|v| v.is_finite()));
    for (name, s) in [
        ("G", gp.generator.params),
        ("D", gp.discriminator.params),
        ("samples", gp.samples),
    ] {
        assert_close(norm_rel_err(&read_gpu(&gpu, s), cpu.f32s(s)), 1e-4, name);
    }
}

/// The tutorial's networks name their tensors as PyTorch's `nn.Sequential`
/// of the same layers does (benches/peers/torch_dcgan.py builds them), with
/// the same shapes, so a checkpoint of them loads with a strict
/// `load_state_dict`.
#[test]
fn the_dcgan_names_its_tensors_as_pytorch() {
    let gp = build_seq_gan_plan(
        &SeqGanConfig::tf_dcgan(2, 0),
        &TrainingData::U8 {
            rows: 2,
            cols: 784,
            bytes: vec![0; 2 * 784],
        },
    )
    .unwrap();
    let listed = |net: &shadergan::nn::sequential::Sequential| -> Vec<(String, Vec<usize>)> {
        net.state_dict()
            .into_iter()
            .map(|t| (t.name, t.shape))
            .collect()
    };
    let bn = |i: usize, c: usize| {
        vec![
            (format!("{i}.weight"), vec![c]),
            (format!("{i}.bias"), vec![c]),
            (format!("{i}.running_mean"), vec![c]),
            (format!("{i}.running_var"), vec![c]),
            (format!("{i}.num_batches_tracked"), vec![]),
        ]
    };
    let mut g = vec![("0.weight".to_string(), vec![12544, 100])];
    g.extend(bn(1, 12544));
    g.push(("4.weight".into(), vec![256, 128, 5, 5]));
    g.extend(bn(5, 128));
    g.push(("7.weight".into(), vec![128, 64, 5, 5]));
    g.extend(bn(8, 64));
    g.push(("10.weight".into(), vec![64, 1, 5, 5]));
    assert_eq!(listed(&gp.g_net), g);
    let d: Vec<(String, Vec<usize>)> = [
        ("0.weight", vec![64, 1, 5, 5]),
        ("0.bias", vec![64]),
        ("3.weight", vec![128, 64, 5, 5]),
        ("3.bias", vec![128]),
        ("7.weight", vec![1, 6272]),
        ("7.bias", vec![1]),
    ]
    .into_iter()
    .map(|(n, s)| (n.to_string(), s))
    .collect();
    assert_eq!(listed(&gp.d_net), d);
}
