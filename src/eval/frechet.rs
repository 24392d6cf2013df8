//! Sample-quality metrics: Fréchet distance between feature Gaussians (FID-style)
//! and the classifier "inception score" (IS).
//!
//! # Fréchet distance
//!
//! Fit Gaussians `N(μ₁, Σ₁)` and `N(μ₂, Σ₂)` to two sets of feature vectors (sample
//! mean and unbiased covariance). Their Fréchet (2-Wasserstein) distance is
//!
//! ```text
//! FD = ‖μ₁ − μ₂‖² + tr Σ₁ + tr Σ₂ − 2 tr (Σ₁^{1/2} Σ₂ Σ₁^{1/2})^{1/2}
//! ```
//!
//! (Heusel et al. 2017, "GANs Trained by a Two Time-Scale Update Rule Converge to a
//! Local Nash Equilibrium", which introduced FID; Dowson & Landau 1982 for the
//! closed form). `Σ₁^{1/2}` comes from a symmetric eigen-decomposition `Σ₁ = V Λ Vᵀ`
//! (nalgebra's `SymmetricEigen`: Householder tridiagonalisation, then implicit
//! QR) with round-off negative eigenvalues clamped to 0, so every square root
//! taken is of a symmetric positive semi-definite matrix. With `G = V Λ^{1/2}` the
//! matrix `Gᵀ Σ₂ G` is orthogonally similar to `Σ₁^{1/2} Σ₂ Σ₁^{1/2}` (conjugate by
//! `V`), so the trace term is `Σ √λᵢ(Gᵀ Σ₂ G)`. Everything is computed in `f64`;
//! the result is clamped at ≥ 0, and is NaN when any input is not finite.
//!
//! # Inception score
//!
//! For classifier outputs `p(y|xᵢ)` (rows of softmax probabilities),
//!
//! ```text
//! IS = exp( meanᵢ KL(p(y|xᵢ) ‖ p(y)) ),   p(y) = meanᵢ p(y|xᵢ)
//! ```
//!
//! with `0·log 0 = 0` (Salimans et al. 2016, "Improved Techniques for Training
//! GANs"). It ranges from 1 (every sample gets the same prediction) to `c` (confident
//! predictions spread evenly over all `c` classes).
//!
//! # Caveat
//!
//! The features and class probabilities come from our own classifier, not from the
//! Inception-v3 network, so the numbers compare across our own runs (same
//! classifier, same sample counts — FD is biased upwards at small `n`) but not with
//! published FID / IS values.

use nalgebra::DMatrix;

/// Mean (len d) and covariance (d×d row-major, unbiased, divisor n−1) of n feature
/// rows (row-major f32, n×d). Accumulates in `f64` from the centred rows.
///
/// # Panics
///
/// If `features.len() != n * d` or `n < 2`.
pub fn mean_and_covariance(features: &[f32], n: usize, d: usize) -> (Vec<f64>, Vec<f64>) {
    assert_eq!(features.len(), n * d, "features must be n×d row-major");
    assert!(n >= 2, "a covariance needs at least two samples, got {n}");
    if d == 0 {
        return (Vec::new(), Vec::new());
    }
    let mean = column_means(features, d);
    let mut cov = vec![0.0; d * d];
    let mut centred = vec![0.0; d];
    for row in features.chunks_exact(d) {
        for ((c, &x), &m) in centred.iter_mut().zip(row).zip(&mean) {
            *c = f64::from(x) - m;
        }
        add_outer_upper(&mut cov, &centred);
    }
    let scale = 1.0 / (n - 1) as f64;
    cov.iter_mut().for_each(|c| *c *= scale);
    mirror_upper_to_lower(&mut cov, d);
    (mean, cov)
}

/// The Fréchet distance between Gaussians N(mu1, S1), N(mu2, S2):
/// `‖mu1 − mu2‖² + tr(S1) + tr(S2) − 2·tr( (S1^{1/2} S2 S1^{1/2})^{1/2} )`,
/// with S1^{1/2} from the eigen-decomposition (negative eigenvalues from round-off
/// clamped to 0), so every matrix square root is of a symmetric PSD matrix.
/// Result clamped at ≥ 0; NaN if any entry of the inputs is NaN or infinite (a
/// diverged generator's features), which no clamp turns into a distance.
/// Covariances are d×d row-major and are symmetrised (`(S + Sᵀ)/2`) first.
///
/// # Panics
///
/// If the slice lengths do not match `d`.
pub fn frechet_distance(mu1: &[f64], s1: &[f64], mu2: &[f64], s2: &[f64], d: usize) -> f64 {
    assert!(mu1.len() == d && mu2.len() == d, "means must have length d");
    assert!(
        s1.len() == d * d && s2.len() == d * d,
        "covariances must be d×d"
    );
    if ![mu1, s1, mu2, s2]
        .iter()
        .all(|x| x.iter().all(|v| v.is_finite()))
    {
        return f64::NAN;
    }
    let mean_term: f64 = mu1.iter().zip(mu2).map(|(a, b)| (a - b) * (a - b)).sum();
    let traces = trace(s1, d) + trace(s2, d);
    let cross = trace_sqrt_of_product(s1, s2, d);
    (mean_term + traces - 2.0 * cross).max(0.0)
}

/// Convenience: FD between two feature sets (row-major n1×d and n2×d).
///
/// # Panics
///
/// As [`mean_and_covariance`] for either set.
pub fn frechet_distance_of_features(a: &[f32], n1: usize, b: &[f32], n2: usize, d: usize) -> f64 {
    let (mu1, s1) = mean_and_covariance(a, n1, d);
    let (mu2, s2) = mean_and_covariance(b, n2, d);
    frechet_distance(&mu1, &s1, &mu2, &s2, d)
}

/// Classifier "inception score": `exp( mean_i KL(p(y|x_i) ‖ p(y)) )` with `p(y)` the
/// mean of all n rows; `probs` is row-major n×c, rows are softmax outputs, and
/// `0·log 0 = 0`.
///
/// Returns `(score, std)`: `score` over all rows, and `std` the (population)
/// standard deviation of the scores of `splits` equal consecutive splits, each with
/// its own marginal, as in Salimans et al. 2016 (splits = 10 in practice; if
/// `n < splits` one split is used; leftover rows `n mod splits` are left out of the
/// splits).
///
/// # Panics
///
/// If `probs.len() != n * c`, `n == 0` or `c == 0`.
pub fn inception_score(probs: &[f32], n: usize, c: usize, splits: usize) -> (f64, f64) {
    assert_eq!(probs.len(), n * c, "probs must be n×c row-major");
    assert!(n > 0 && c > 0, "inception score needs n > 0 and c > 0");
    let score = score_of_rows(probs, c);
    let splits = if splits == 0 || n < splits { 1 } else { splits };
    let part = (n / splits) * c;
    let scores: Vec<f64> = probs
        .chunks_exact(part)
        .take(splits)
        .map(|rows| score_of_rows(rows, c))
        .collect();
    (score, population_std(&scores))
}

// ---------------------------------------------------------------------------
// Statistics helpers

/// Column means of row-major rows of width `d`, in f64.
fn column_means(rows: &[f32], d: usize) -> Vec<f64> {
    let mut mean = vec![0.0; d];
    let mut n = 0usize;
    for row in rows.chunks_exact(d) {
        for (m, &x) in mean.iter_mut().zip(row) {
            *m += f64::from(x);
        }
        n += 1;
    }
    let inv = 1.0 / n.max(1) as f64;
    mean.iter_mut().for_each(|m| *m *= inv);
    mean
}

/// `cov[i][j] += x[i]·x[j]` for `j ≥ i` (upper triangle only).
fn add_outer_upper(cov: &mut [f64], x: &[f64]) {
    let d = x.len();
    for (i, &xi) in x.iter().enumerate() {
        let row = &mut cov[i * d + i..(i + 1) * d];
        for (c, &xj) in row.iter_mut().zip(&x[i..]) {
            *c += xi * xj;
        }
    }
}

fn mirror_upper_to_lower(m: &mut [f64], d: usize) {
    for i in 0..d {
        for j in i + 1..d {
            m[j * d + i] = m[i * d + j];
        }
    }
}

/// exp(mean KL(row ‖ marginal)) for a block of probability rows of width `c`.
fn score_of_rows(rows: &[f32], c: usize) -> f64 {
    let marginal = column_means(rows, c);
    let n = rows.len() / c;
    let total: f64 = rows
        .chunks_exact(c)
        .map(|p| kl_divergence(p, &marginal))
        .sum();
    (total / n as f64).exp()
}

/// KL(p ‖ q) with 0·log 0 = 0.
fn kl_divergence(p: &[f32], q: &[f64]) -> f64 {
    p.iter()
        .zip(q)
        .filter(|&(&pi, _)| pi > 0.0)
        .map(|(&pi, &qi)| {
            let pi = f64::from(pi);
            pi * (pi.ln() - qi.ln())
        })
        .sum()
}

fn population_std(xs: &[f64]) -> f64 {
    let n = xs.len() as f64;
    let mean = xs.iter().sum::<f64>() / n;
    (xs.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / n).sqrt()
}

// ---------------------------------------------------------------------------
// Fréchet helpers

fn trace(m: &[f64], d: usize) -> f64 {
    (0..d).map(|i| m[i * d + i]).sum()
}

/// `tr (S1^{1/2} S2 S1^{1/2})^{1/2}` via `Gᵀ S2 G` with `S1 = G Gᵀ`, `G = V Λ^{1/2}`.
fn trace_sqrt_of_product(s1: &[f64], s2: &[f64], d: usize) -> f64 {
    if d == 0 {
        return 0.0;
    }
    let g = psd_sqrt_factor(symmetrised(s1, d));
    let m = g.transpose() * symmetrised(s2, d) * &g;
    // Round-off leaves `m` a little asymmetric; the eigen-solver reads one triangle.
    let m = (&m + m.transpose()) * 0.5;
    let values = m.symmetric_eigenvalues();
    values.iter().map(|&l| l.max(0.0).sqrt()).sum()
}

/// `G = V Λ^{1/2}` (eigenvectors scaled by clamped root eigenvalues), `S = G Gᵀ`.
fn psd_sqrt_factor(s: DMatrix<f64>) -> DMatrix<f64> {
    let eigen = s.symmetric_eigen();
    let mut g = eigen.eigenvectors;
    for (mut column, &l) in g.column_iter_mut().zip(eigen.eigenvalues.iter()) {
        column *= l.max(0.0).sqrt();
    }
    g
}

/// `(A + Aᵀ)/2` of a d×d row-major matrix (the solver reads only one triangle).
fn symmetrised(a: &[f64], d: usize) -> DMatrix<f64> {
    DMatrix::from_fn(d, d, |i, j| 0.5 * (a[i * d + j] + a[j * d + i]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::classifier::HIDDEN;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    fn identity(d: usize) -> Vec<f64> {
        let mut m = vec![0.0; d * d];
        (0..d).for_each(|i| m[i * d + i] = 1.0);
        m
    }

    fn rng(seed: u64) -> StdRng {
        StdRng::seed_from_u64(seed)
    }

    /// Random SPD matrix `A Aᵀ / d + eps·I`.
    fn random_spd(r: &mut StdRng, d: usize, eps: f64) -> Vec<f64> {
        let a: Vec<f64> = (0..d * d).map(|_| r.random_range(-1.0..1.0)).collect();
        let mut s = matmul(&a, &transpose(&a, d), d);
        s.iter_mut().for_each(|x| *x /= d as f64);
        (0..d).for_each(|i| s[i * d + i] += eps);
        s
    }

    fn transpose(a: &[f64], d: usize) -> Vec<f64> {
        let mut t = vec![0.0; d * d];
        for i in 0..d {
            for j in 0..d {
                t[j * d + i] = a[i * d + j];
            }
        }
        t
    }

    /// `A B` for d×d row-major matrices, by the textbook triple loop.
    fn matmul(a: &[f64], b: &[f64], d: usize) -> Vec<f64> {
        let mut out = vec![0.0; d * d];
        for i in 0..d {
            for k in 0..d {
                let aik = a[i * d + k];
                for j in 0..d {
                    out[i * d + j] += aik * b[k * d + j];
                }
            }
        }
        out
    }

    /// `G Gᵀ` as a d×d row-major matrix.
    fn gram_rows(g: &DMatrix<f64>, d: usize) -> Vec<f64> {
        let product = g * g.transpose();
        (0..d * d).map(|k| product[(k / d, k % d)]).collect()
    }

    fn max_abs_diff(a: &[f64], b: &[f64]) -> f64 {
        a.iter()
            .zip(b)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0, f64::max)
    }

    fn gaussian(r: &mut StdRng) -> f64 {
        let u1: f64 = 1.0 - r.random::<f64>();
        let u2: f64 = r.random();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }

    /// n samples of `mu + L z`, z ~ N(0, I), as f32 rows.
    fn gaussian_samples(r: &mut StdRng, n: usize, mu: &[f64], l: &[f64]) -> Vec<f32> {
        let d = mu.len();
        let mut out = Vec::with_capacity(n * d);
        for _ in 0..n {
            let z: Vec<f64> = (0..d).map(|_| gaussian(r)).collect();
            for i in 0..d {
                let x: f64 = mu[i] + (0..d).map(|k| l[i * d + k] * z[k]).sum::<f64>();
                out.push(x as f32);
            }
        }
        out
    }

    /// Gauss–Jordan inverse with partial pivoting (independent of the eigen-solver).
    fn inverse(a: &[f64], d: usize) -> Vec<f64> {
        let mut m = a.to_vec();
        let mut inv = identity(d);
        for col in 0..d {
            let piv = (col..d)
                .max_by(|&i, &j| m[i * d + col].abs().total_cmp(&m[j * d + col].abs()))
                .unwrap();
            for k in 0..d {
                m.swap(col * d + k, piv * d + k);
                inv.swap(col * d + k, piv * d + k);
            }
            let scale = 1.0 / m[col * d + col];
            for k in 0..d {
                m[col * d + k] *= scale;
                inv[col * d + k] *= scale;
            }
            for row in (0..d).filter(|&r| r != col) {
                let f = m[row * d + col];
                for k in 0..d {
                    m[row * d + k] -= f * m[col * d + k];
                    inv[row * d + k] -= f * inv[col * d + k];
                }
            }
        }
        inv
    }

    /// Principal square root by the Denman–Beavers iteration.
    fn denman_beavers_sqrt(a: &[f64], d: usize) -> Vec<f64> {
        let (mut y, mut z) = (a.to_vec(), identity(d));
        for _ in 0..100 {
            let (yi, zi) = (inverse(&y, d), inverse(&z, d));
            let y_next: Vec<f64> = y.iter().zip(&zi).map(|(a, b)| 0.5 * (a + b)).collect();
            z = z.iter().zip(&yi).map(|(a, b)| 0.5 * (a + b)).collect();
            let change = max_abs_diff(&y_next, &y);
            y = y_next;
            // Quadratic convergence until round-off stalls the step (above 1e-15
            // at d = 256); a step of 1e-12 relative leaves an error of its square.
            let scale = y.iter().fold(0.0, |m: f64, x| m.max(x.abs()));
            if change <= 1e-12 * scale {
                break;
            }
        }
        y
    }

    #[test]
    fn psd_sqrt_factor_reproduces_psd_matrices() {
        let mut r = rng(1);
        let ones = vec![1.0; 16]; // eigenvalues 0, 0, 0, 4
        let cases = [
            (random_spd(&mut r, 1, 0.1), 1),
            (random_spd(&mut r, 7, 0.0), 7),
            (random_spd(&mut r, 64, 0.01), 64),
            (ones, 4),
        ];
        for (s, d) in cases {
            let g = psd_sqrt_factor(symmetrised(&s, d));
            let err = max_abs_diff(&gram_rows(&g, d), &s);
            assert!(err < 1e-12, "d={d}: G Gᵀ − S = {err}");
        }
    }

    #[test]
    fn psd_sqrt_factor_drops_negative_eigenvalues_and_reads_both_triangles() {
        // diag(3, −1.5, 0, 7.25) in a rotated basis, with an antisymmetric part that
        // symmetrisation must cancel; G Gᵀ keeps only the non-negative part.
        let (d, (c, s)) = (4, (0.6, 0.8));
        #[rustfmt::skip]
        let q = [
            c,  -s,  0.0, 0.0,
            s,   c,  0.0, 0.0,
            0.0, 0.0, c,   s,
            0.0, 0.0, -s,  c,
        ];
        let diag = |v: [f64; 4]| {
            let mut m = vec![0.0; d * d];
            (0..d).for_each(|i| m[i * d + i] = v[i]);
            m
        };
        let rotate = |m: &[f64]| matmul(&matmul(&q, m, d), &transpose(&q, d), d);
        let mut a = rotate(&diag([3.0, -1.5, 0.0, 7.25]));
        a[1] += 0.5;
        a[d] -= 0.5;
        let g = psd_sqrt_factor(symmetrised(&a, d));
        let positive_part = rotate(&diag([3.0, 0.0, 0.0, 7.25]));
        let err = max_abs_diff(&gram_rows(&g, d), &positive_part);
        assert!(err < 1e-12, "G Gᵀ − A₊ = {err}");
    }

    #[test]
    fn mean_and_covariance_match_naive_formula() {
        let (n, d) = (5, 3);
        let x: Vec<f32> = (0..n * d).map(|i| ((i * 7) % 11) as f32 - 3.0).collect();
        let (mean, cov) = mean_and_covariance(&x, n, d);
        for i in 0..d {
            let mi = (0..n).map(|k| f64::from(x[k * d + i])).sum::<f64>() / n as f64;
            assert!((mean[i] - mi).abs() < 1e-12);
        }
        for i in 0..d {
            for j in 0..d {
                let c: f64 = (0..n)
                    .map(|k| {
                        (f64::from(x[k * d + i]) - mean[i]) * (f64::from(x[k * d + j]) - mean[j])
                    })
                    .sum::<f64>()
                    / (n - 1) as f64;
                assert!((cov[i * d + j] - c).abs() < 1e-12, "cov[{i}][{j}]");
            }
        }
    }

    #[test]
    fn fd_of_identical_distributions_is_zero() {
        let mut r = rng(2);
        let d = 32;
        let s = random_spd(&mut r, d, 0.0); // may be near-singular
        let mu: Vec<f64> = (0..d).map(|_| r.random_range(-1.0..1.0)).collect();
        let fd = frechet_distance(&mu, &s, &mu, &s, d);
        assert!(fd < 1e-8 * trace(&s, d), "fd = {fd}");
    }

    #[test]
    fn fd_one_dimensional_closed_form() {
        let (m1, m2, sd1, sd2) = (0.3, -1.2, 2.0, 0.5);
        let fd = frechet_distance(&[m1], &[sd1 * sd1], &[m2], &[sd2 * sd2], 1);
        let expected = (m1 - m2) * (m1 - m2) + (sd1 - sd2) * (sd1 - sd2);
        assert!((fd - expected).abs() < 1e-12, "{fd} vs {expected}");
    }

    #[test]
    fn fd_diagonal_closed_form() {
        let mut r = rng(3);
        let d = 10;
        let mu1: Vec<f64> = (0..d).map(|_| r.random_range(-2.0..2.0)).collect();
        let mu2: Vec<f64> = (0..d).map(|_| r.random_range(-2.0..2.0)).collect();
        let v1: Vec<f64> = (0..d).map(|_| r.random_range(0.0..3.0)).collect();
        let v2: Vec<f64> = (0..d).map(|_| r.random_range(0.0..3.0)).collect();
        let diag = |v: &[f64]| {
            let mut m = vec![0.0; d * d];
            (0..d).for_each(|i| m[i * d + i] = v[i]);
            m
        };
        let fd = frechet_distance(&mu1, &diag(&v1), &mu2, &diag(&v2), d);
        let expected: f64 = (0..d)
            .map(|i| (mu1[i] - mu2[i]).powi(2) + (v1[i].sqrt() - v2[i].sqrt()).powi(2))
            .sum();
        assert!((fd - expected).abs() < 1e-10, "{fd} vs {expected}");
    }

    #[test]
    fn fd_full_covariance_matches_denman_beavers() {
        let mut r = rng(4);
        for d in [2, 6, 16] {
            let s1 = random_spd(&mut r, d, 0.3);
            let s2 = random_spd(&mut r, d, 0.1);
            let mu1: Vec<f64> = (0..d).map(|_| r.random_range(-1.0..1.0)).collect();
            let mu2: Vec<f64> = (0..d).map(|_| r.random_range(-1.0..1.0)).collect();
            let fd = frechet_distance(&mu1, &s1, &mu2, &s2, d);
            // tr sqrt(S1 S2) = Σ sqrt(eig(S1 S2)) = tr sqrt(S1^{1/2} S2 S1^{1/2}).
            let root = denman_beavers_sqrt(&matmul(&s1, &s2, d), d);
            let mean_term: f64 = mu1.iter().zip(&mu2).map(|(a, b)| (a - b).powi(2)).sum();
            let expected = mean_term + trace(&s1, d) + trace(&s2, d) - 2.0 * trace(&root, d);
            let rel = (fd - expected).abs() / (trace(&s1, d) + trace(&s2, d));
            assert!(rel < 1e-10, "d={d}: {fd} vs {expected}");
            let swapped = frechet_distance(&mu2, &s2, &mu1, &s1, d);
            assert!((fd - swapped).abs() < 1e-10 * fd.max(1.0), "symmetric");
        }
    }

    #[test]
    fn fd_handles_singular_covariances() {
        // 5 samples in 16 dimensions: both covariances have rank ≤ 4, and the two
        // orders of the arguments take square roots of different matrices.
        let mut r = rng(7);
        let (n, d) = (5, 16);
        let a: Vec<f32> = (0..n * d).map(|_| r.random_range(-1.0..1.0)).collect();
        let b: Vec<f32> = (0..n * d).map(|_| r.random_range(-1.0..1.0)).collect();
        let ab = frechet_distance_of_features(&a, n, &b, n, d);
        let ba = frechet_distance_of_features(&b, n, &a, n, d);
        assert!(ab.is_finite() && ab > 0.0, "{ab}");
        assert!((ab - ba).abs() < 1e-9 * ab, "{ab} vs {ba}");
        assert!(frechet_distance_of_features(&a, n, &a, n, d) < 1e-9 * ab);
        assert_eq!(frechet_distance(&[], &[], &[], &[], 0), 0.0);
    }

    #[test]
    fn fd_of_same_gaussian_samples_shrinks_with_n() {
        let mut r = rng(5);
        let d = 8;
        let mu: Vec<f64> = (0..d).map(|i| i as f64 * 0.5).collect();
        let l: Vec<f64> = (0..d * d)
            .map(|k| {
                if k % d <= k / d {
                    r.random_range(-1.0..1.0)
                } else {
                    0.0
                }
            })
            .collect();
        let fds: Vec<f64> = [300, 3000, 30000]
            .iter()
            .map(|&n| {
                let a = gaussian_samples(&mut r, n, &mu, &l);
                let b = gaussian_samples(&mut r, n, &mu, &l);
                frechet_distance_of_features(&a, n, &b, n, d)
            })
            .collect();
        let tr: f64 = l.iter().map(|x| x * x).sum();
        println!("FD of same Gaussian, n = 300/3000/30000: {fds:?} (tr Σ = {tr:.3})");
        assert!(fds[0] > fds[1] && fds[1] > fds[2], "{fds:?}");
        assert!(fds[2] < 0.01 * tr, "{fds:?}");
    }

    #[test]
    fn is_of_uniform_one_hot_rows_is_class_count() {
        let (c, n) = (7, 7 * 30);
        let probs: Vec<f32> = (0..n * c)
            .map(|k| f32::from(u8::from(k % c == (k / c) % c)))
            .collect();
        let (score, std) = inception_score(&probs, n, c, 10);
        assert!((score - c as f64).abs() < 1e-12, "{score}");
        assert!(std < 1e-12, "{std}");
    }

    #[test]
    fn is_of_identical_rows_is_one() {
        let row = [0.1f32, 0.6, 0.0, 0.3];
        let n = 50;
        let probs: Vec<f32> = row.iter().copied().cycle().take(n * row.len()).collect();
        let (score, std) = inception_score(&probs, n, row.len(), 10);
        assert!((score - 1.0).abs() < 1e-12, "{score}");
        assert!(std < 1e-12);
        let (few, few_std) = inception_score(&probs[..3 * row.len()], 3, row.len(), 10);
        assert!(
            (few - 1.0).abs() < 1e-12 && few_std == 0.0,
            "n < splits → one split"
        );
    }

    /// n classifier-like feature rows: ReLU of the latent mix `zᵀ W` (z ~ N(shift, I),
    /// `W` k×d row-major) plus independent N(0, 0.3²) noise per feature.
    fn relu_features(r: &mut StdRng, w: &[f64], d: usize, n: usize, shift: f64) -> Vec<f32> {
        let k = w.len() / d;
        let mut out = Vec::with_capacity(n * d);
        for _ in 0..n {
            let z: Vec<f64> = (0..k).map(|_| shift + gaussian(r)).collect();
            for j in 0..d {
                let mix: f64 = (0..k).map(|i| z[i] * w[i * d + j]).sum();
                out.push((mix + 0.3 * gaussian(r)).max(0.0) as f32);
            }
        }
        out
    }

    /// Two feature sets of the image protocol's size: n = 10000 rows of
    /// d = 256 (the classifier's feature width), the second with a shifted latent.
    fn realistic_feature_pair() -> (Vec<f32>, Vec<f32>, usize, usize) {
        let (n, d, k) = (10_000, HIDDEN[HIDDEN.len() - 1], 16);
        let mut r = rng(8);
        let w: Vec<f64> = (0..k * d).map(|_| r.random_range(-1.0..1.0)).collect();
        let a = relu_features(&mut r, &w, d, n, 0.0);
        let b = relu_features(&mut r, &w, d, n, 0.2);
        (a, b, n, d)
    }

    #[test]
    fn fd_at_the_image_protocol_size_matches_denman_beavers() {
        // Two sets of n = 10000 features of the classifier's width, as the image
        // protocol scores them; Denman–Beavers finds sqrt(S1 S2) without an
        // eigen-solver (tr sqrt(S1 S2) = tr sqrt(S1^{1/2} S2 S1^{1/2})).
        let (a, b, n, d) = realistic_feature_pair();
        let (mu1, s1) = mean_and_covariance(&a, n, d);
        let (mu2, s2) = mean_and_covariance(&b, n, d);
        let root = denman_beavers_sqrt(&matmul(&s1, &s2, d), d);
        let mean_term: f64 = mu1.iter().zip(&mu2).map(|(a, b)| (a - b).powi(2)).sum();
        let expected = mean_term + trace(&s1, d) + trace(&s2, d) - 2.0 * trace(&root, d);
        for fd in [
            frechet_distance(&mu1, &s1, &mu2, &s2, d),
            frechet_distance(&mu2, &s2, &mu1, &s1, d),
        ] {
            let rel = (fd - expected).abs() / expected;
            assert!(rel < 1e-9, "{fd} vs {expected}");
        }
    }

    #[test]
    fn fd_of_non_finite_input_is_nan() {
        let (d, mu, s) = (3, vec![0.5; 3], identity(3));
        for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            let mut bad_s = s.clone();
            bad_s[4] = bad;
            let mut bad_mu = mu.clone();
            bad_mu[1] = bad;
            assert!(frechet_distance(&mu, &bad_s, &mu, &s, d).is_nan(), "{bad}");
            assert!(frechet_distance(&mu, &s, &mu, &bad_s, d).is_nan(), "{bad}");
            assert!(frechet_distance(&bad_mu, &s, &mu, &s, d).is_nan(), "{bad}");
        }
        let features = [0.0, 1.0, f32::NAN, 2.0, 0.5, 0.25];
        let finite = [0.0, 1.0, 3.0, 2.0, 0.5, 0.25];
        assert!(frechet_distance_of_features(&features, 3, &finite, 3, 2).is_nan());
    }
}
