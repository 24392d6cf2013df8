//! `gan::bn_stats`: a generator's BatchNorm statistics recomputed for its
//! weights. For G = Linear(3→5, no bias) → BatchNorm1d → Tanh the recomputed
//! running statistics must be the mean and unbiased variance, over the
//! calibration noise, of the Linear's outputs computed here on the host;
//! everything else in the state must come back as it was; the GPU must
//! agree with the CPU backend. A generator without BatchNorm, and the
//! `Running` choice, return the state untouched.

mod common;

use common::*;
use shadergan::cpu::philox::fill_normal;
use shadergan::gan::bn_stats::{
    BnStats, CALIBRATION_ROWS, STREAM_BN_CALIBRATION, recompute, sampling_state,
};
use shadergan::gan::{Architecture, LayerModel};
use shadergan::nn::layers::Layer;

const Z: usize = 3;
const FEATURES: usize = 5;

fn model(with_norm: bool) -> LayerModel {
    let mut generator = vec![Layer::Linear {
        out: FEATURES,
        bias: false,
    }];
    if with_norm {
        generator.push(Layer::BatchNorm1d);
    }
    generator.push(Layer::Tanh);
    LayerModel {
        z_dim: Z,
        data_shape: vec![FEATURES],
        generator,
        discriminator: vec![Layer::Linear { out: 1, bias: true }],
    }
}

/// A state with random parameters, stale statistics and a batch count of 7.
fn stale_state(m: &LayerModel) -> Vec<f32> {
    let (g, _) = m.networks().unwrap();
    let mut state = uniform(&mut rng(11), g.param_words, -1.0, 1.0);
    let stats = g.stat_words();
    state.extend(vec![0.25; stats]);
    state.extend(vec![3.0; stats]);
    let batches = g.state_words() - state.len();
    state.extend(vec![f32::from_bits(7); batches]);
    state
}

/// Mean and unbiased variance of each Linear output over the calibration noise.
fn host_statistics(weight: &[f32]) -> (Vec<f32>, Vec<f32>) {
    let rows = CALIBRATION_ROWS;
    let mut z = vec![0.0; rows * Z];
    fill_normal(&mut z, 0, STREAM_BN_CALIBRATION, 0);
    let mut mean = vec![0.0; FEATURES];
    let mut var = vec![0.0; FEATURES];
    for c in 0..FEATURES {
        let h: Vec<f64> = z
            .chunks_exact(Z)
            .map(|zr| (0..Z).map(|k| (weight[c * Z + k] * zr[k]) as f64).sum())
            .collect();
        let mu = h.iter().sum::<f64>() / rows as f64;
        let ss = h.iter().map(|v| (v - mu) * (v - mu)).sum::<f64>();
        mean[c] = mu as f32;
        var[c] = (ss / (rows - 1) as f64) as f32;
    }
    (mean, var)
}

#[test]
fn recomputed_statistics_are_the_calibration_batch_moments() {
    let m = model(true);
    let (g, _) = m.networks().unwrap();
    let state = stale_state(&m);
    let (w_at, w_len) = g.units[0].weight.unwrap();
    let (want_mean, want_var) = host_statistics(&state[w_at..w_at + w_len]);
    let got = recompute(None, &m, &state).unwrap();
    assert_eq!(got.len(), state.len());
    let p = g.param_words;
    assert_eq!(&got[..p], &state[..p], "parameters unchanged");
    let s = g.stat_words();
    assert_close(max_rel_err(&got[p..p + FEATURES], &want_mean), 1e-4, "mean");
    assert_close(
        max_rel_err(&got[p + s..p + s + FEATURES], &want_var),
        1e-4,
        "variance",
    );
    let tail = p + 2 * s;
    assert_eq!(
        got[tail..].iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
        state[tail..]
            .iter()
            .map(|v| v.to_bits())
            .collect::<Vec<_>>(),
        "batch counts unchanged"
    );
    if let Some(gpu) = gpu() {
        let on_gpu = recompute(Some(gpu), &m, &state).unwrap();
        assert_close(max_rel_err(&on_gpu, &got), 1e-5, "GPU against CPU");
    }
}

#[test]
fn running_statistics_and_generators_without_batch_norm_are_left_alone() {
    let with = model(true);
    let state = stale_state(&with);
    let arch = Architecture::Layers(with);
    assert!(arch.has_batch_norm());
    assert_eq!(
        sampling_state(None, &arch, &state, BnStats::Running).unwrap(),
        state
    );
    let without = model(false);
    let state = stale_state(&without);
    let arch = Architecture::Layers(without);
    assert!(!arch.has_batch_norm());
    assert_eq!(
        sampling_state(None, &arch, &state, BnStats::Recomputed).unwrap(),
        state
    );
}
