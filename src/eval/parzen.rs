//! The Parzen-window log-likelihood of Goodfellow et al. (2014), on our kernels.
//!
//! Protocol: 10,000 generated samples, mapped to [0, 1], are the centres of a
//! Gaussian kernel density with bandwidth σ; σ is chosen from
//! logspace(−1, 0, 10) by the mean log-likelihood of a validation set (the
//! first 1,000 images of MNIST train[50000:60000]); the score is the mean ±
//! standard error of the log-likelihood of the 10,000 test images.
//!
//! On the device this is one large matmul (test × samplesᵀ, `matmul.wgsl`),
//! the squared norms (`row_sq_norm`), and a log-sum-exp per test row and σ
//! (`parzen.wgsl`). Test rows go through in chunks so every buffer fits an
//! adapter's binding limit (llvmpipe: 128 MiB).

use serde::{Deserialize, Serialize};

use crate::backend::Executor;
use crate::gpu::GpuContext;
use crate::plan::{Activation, Elem, Init, Op, Plan};

/// The protocol's bandwidths: logspace(−1, 0, 10).
pub fn protocol_sigmas() -> Vec<f32> {
    (0..10)
        .map(|i| 10f64.powf(-1.0 + f64::from(i) / 9.0) as f32)
        .collect()
}

/// Test rows per launch.
const CHUNK: usize = 500;

/// Log-likelihood of every row of `test` (n_t × dim) under the samples
/// (n_s × dim), for each σ: `result[s][r]`.
pub fn log_likelihoods(
    gpu: Option<&GpuContext>,
    samples: &[f32],
    test: &[f32],
    dim: usize,
    sigmas: &[f32],
) -> anyhow::Result<Vec<Vec<f32>>> {
    anyhow::ensure!(dim > 0 && !sigmas.is_empty(), "nothing to score");
    let n_s = samples.len() / dim;
    let n_t = test.len() / dim;
    anyhow::ensure!(n_s > 0 && n_t > 0, "no samples or no test rows");
    let rows = CHUNK.min(n_t);
    let mut plan = Plan::default();
    let s = plan.buffer(
        "samples",
        Elem::F32,
        samples.len(),
        Init::F32(samples.to_vec()),
    );
    let s_norms = plan.f32_buffer("sample_norms", n_s);
    let x = plan.f32_buffer("test_chunk", rows * dim);
    let x_norms = plan.f32_buffer("test_norms", rows);
    let gram = plan.f32_buffer("gram", rows * n_s);
    let out = plan.f32_buffer("log_density", sigmas.len() * rows);
    plan.add_phase(
        "prepare",
        vec![Op::RowSqNorm {
            x: s,
            out: s_norms,
            rows: n_s,
            cols: dim,
        }],
    );
    let mut ops = vec![
        Op::MatmulBiasAct {
            x,
            w: s,
            b: None,
            y: gram,
            m: rows,
            n: n_s,
            k: dim,
            act: Activation::Identity,
        },
        Op::RowSqNorm {
            x,
            out: x_norms,
            rows,
            cols: dim,
        },
    ];
    for (i, &sigma) in sigmas.iter().enumerate() {
        ops.push(Op::ParzenLogDensity {
            gram,
            x_norms,
            s_norms,
            out: out.sub(i * rows, rows),
            dim,
            sigma,
        });
    }
    plan.add_phase("chunk", ops);
    let mut exec = Executor::new(gpu.cloned(), plan, vec![])?;
    exec.run(&["prepare"], None)?;
    let mut result = vec![Vec::with_capacity(n_t); sigmas.len()];
    for start in (0..n_t).step_by(rows) {
        let count = rows.min(n_t - start);
        let mut chunk = test[start * dim..(start + count) * dim].to_vec();
        chunk.resize(rows * dim, 0.0);
        exec.write(x, &chunk)?;
        exec.run(&["chunk"], None)?;
        let values = exec.read(out)?;
        for (i, r) in result.iter_mut().enumerate() {
            r.extend_from_slice(&values[i * rows..i * rows + count]);
        }
    }
    Ok(result)
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ParzenScore {
    pub sigma: f32,
    /// Mean log-likelihood of the validation rows at each protocol σ.
    pub validation: Vec<(f32, f64)>,
    pub mean: f64,
    pub standard_error: f64,
    pub test_rows: usize,
    pub samples: usize,
}

fn mean_se(v: &[f32]) -> (f64, f64) {
    let n = v.len() as f64;
    let mean = v.iter().map(|&x| f64::from(x)).sum::<f64>() / n;
    let var = v
        .iter()
        .map(|&x| (f64::from(x) - mean).powi(2))
        .sum::<f64>()
        / (n - 1.0).max(1.0);
    (mean, (var / n).sqrt())
}

/// The full protocol: σ by validation likelihood, then the test score.
pub fn score(
    gpu: Option<&GpuContext>,
    samples: &[f32],
    validation: &[f32],
    test: &[f32],
    dim: usize,
) -> anyhow::Result<ParzenScore> {
    let sigmas = protocol_sigmas();
    let val = log_likelihoods(gpu, samples, validation, dim, &sigmas)?;
    let validation: Vec<(f32, f64)> = sigmas
        .iter()
        .zip(&val)
        .map(|(&s, v)| (s, mean_se(v).0))
        .collect();
    let (sigma, _) = validation
        .iter()
        .copied()
        .fold((sigmas[0], f64::NEG_INFINITY), |a, b| {
            if b.1 > a.1 { b } else { a }
        });
    let test_ll = log_likelihoods(gpu, samples, test, dim, &[sigma])?;
    let (mean, standard_error) = mean_se(&test_ll[0]);
    Ok(ParzenScore {
        sigma,
        validation,
        mean,
        standard_error,
        test_rows: test.len() / dim,
        samples: samples.len() / dim,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocol_sigmas_are_logspace() {
        let s = protocol_sigmas();
        assert_eq!(s.len(), 10);
        assert!((s[0] - 0.1).abs() < 1e-7 && (s[9] - 1.0).abs() < 1e-7);
        assert!((s[1] - 0.129_155).abs() < 1e-5);
    }

    #[test]
    fn a_tiny_case_computed_by_hand() {
        // One dimension, samples at 0 and 1, σ = 1, test point 0:
        // p(0) = ½(N(0; 0, 1) + N(0; 1, 1)) = ½(1 + e^{−1/2}) / √(2π).
        let ll = log_likelihoods(None, &[0.0, 1.0], &[0.0], 1, &[1.0]).unwrap();
        let want = (0.5 * (1.0 + (-0.5f64).exp())).ln() - 0.5 * std::f64::consts::TAU.ln();
        assert!(
            (f64::from(ll[0][0]) - want).abs() < 1e-6,
            "{} vs {want}",
            ll[0][0]
        );
        // Two dimensions, σ = 0.5, one sample at (1, 1), test at (0, 0): ‖d‖² = 2,
        // log p = −2/(2·0.25) − log(2π·0.25).
        let ll = log_likelihoods(None, &[1.0, 1.0], &[0.0, 0.0], 2, &[0.5]).unwrap();
        let want = -4.0 - (std::f64::consts::TAU * 0.25).ln();
        assert!(
            (f64::from(ll[0][0]) - want).abs() < 1e-5,
            "{} vs {want}",
            ll[0][0]
        );
    }

    #[test]
    fn the_chosen_sigma_maximises_validation_likelihood() {
        let samples: Vec<f32> = (0..50)
            .map(|i| (i as f32 * 0.37).sin() * 0.5 + 0.5)
            .collect();
        let val: Vec<f32> = (0..20)
            .map(|i| (i as f32 * 0.11).cos() * 0.5 + 0.5)
            .collect();
        let s = score(None, &samples, &val, &val, 1).unwrap();
        let best = s
            .validation
            .iter()
            .map(|v| v.1)
            .fold(f64::NEG_INFINITY, f64::max);
        assert_eq!(
            s.validation.iter().find(|v| v.1 == best).unwrap().0,
            s.sigma
        );
        assert_eq!(s.test_rows, 20);
    }
}
