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
//! closed form). `Σ₁^{1/2}` comes from a Jacobi eigen-decomposition `Σ₁ = V Λ Vᵀ`
//! with round-off negative eigenvalues clamped to 0, so every square root taken is
//! of a symmetric positive semi-definite matrix. With `G = V Λ^{1/2}` the matrix
//! `Gᵀ Σ₂ G` is orthogonally similar to `Σ₁^{1/2} Σ₂ Σ₁^{1/2}` (conjugate by `V`), so
//! the trace term is `Σ √λᵢ(Gᵀ Σ₂ G)`. Everything is computed in `f64`; the result
//! is clamped at ≥ 0.
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

use std::ops::Range;

/// Relative off-diagonal Frobenius norm at which the Jacobi iteration stops.
const EIGEN_TOL: f64 = 1e-12;
/// Safety cap on Jacobi sweeps; convergence normally takes well under 15.
const MAX_SWEEPS: usize = 60;
/// Sweeps that use the coarse "skip small elements" threshold (Numerical Recipes).
const EARLY_SWEEPS: usize = 3;
/// Index block size of the blocked Jacobi sweep.
const JACOBI_BLOCK: usize = 32;
/// Size from which the eigenvectors are updated on a second thread.
const PIPELINE_MIN_D: usize = 64;

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

/// Eigen-decomposition of a symmetric d×d matrix (row-major) by the cyclic Jacobi
/// method: `(eigenvalues, eigenvectors as columns, row-major d×d)`, so that
/// `a = V diag(λ) Vᵀ`. Eigenvalues are sorted ascending, column `j` of `V` belongs to
/// `λⱼ`. The input is symmetrised (`(A + Aᵀ)/2`) first.
///
/// Iterates until the off-diagonal Frobenius norm is ≤ 1e-12 · ‖A‖_F, using the
/// threshold strategy (skip rotations for elements that are small relative to the
/// current off-diagonal norm). Each sweep is O(d³), cache-blocked; for d ≥ 64 the
/// eigenvectors are accumulated on a second (scoped) thread.
///
/// # Panics
///
/// If `a.len() != d * d`.
pub fn symmetric_eigen(a: &[f64], d: usize) -> (Vec<f64>, Vec<f64>) {
    assert_eq!(a.len(), d * d, "matrix must be d×d row-major");
    let mut basis = Basis::identity(d);
    let values = jacobi_eigen(a, d, Some(&mut basis));
    sorted_eigenpairs(&values, &basis)
}

/// The Fréchet distance between Gaussians N(mu1, S1), N(mu2, S2):
/// `‖mu1 − mu2‖² + tr(S1) + tr(S2) − 2·tr( (S1^{1/2} S2 S1^{1/2})^{1/2} )`,
/// with S1^{1/2} from the eigen-decomposition (negative eigenvalues from round-off
/// clamped to 0), so every matrix square root is of a symmetric PSD matrix.
/// Result clamped at ≥ 0. Covariances are d×d row-major.
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
    let g = psd_sqrt_factor(s1, d);
    let m = transpose_matmul(&g, &matmul(s2, &g, d), d);
    let values = jacobi_eigen(&m, d, None);
    values.iter().map(|&l| l.max(0.0).sqrt()).sum()
}

/// `G = V Λ^{1/2}` (eigenvectors scaled by clamped root eigenvalues), `S = G Gᵀ`.
fn psd_sqrt_factor(s: &[f64], d: usize) -> Vec<f64> {
    let (values, mut g) = symmetric_eigen(s, d);
    let roots: Vec<f64> = values.iter().map(|&l| l.max(0.0).sqrt()).collect();
    for row in g.chunks_exact_mut(d) {
        for (x, r) in row.iter_mut().zip(&roots) {
            *x *= r;
        }
    }
    g
}

/// `A B` for d×d row-major matrices (i-k-j order, contiguous inner loop).
fn matmul(a: &[f64], b: &[f64], d: usize) -> Vec<f64> {
    let mut out = vec![0.0; d * d];
    for (out_row, a_row) in out.chunks_exact_mut(d).zip(a.chunks_exact(d)) {
        for (&aik, b_row) in a_row.iter().zip(b.chunks_exact(d)) {
            axpy(out_row, aik, b_row);
        }
    }
    out
}

/// `Aᵀ B` for d×d row-major matrices, as a sum of outer products of rows.
fn transpose_matmul(a: &[f64], b: &[f64], d: usize) -> Vec<f64> {
    let mut out = vec![0.0; d * d];
    for (a_row, b_row) in a.chunks_exact(d).zip(b.chunks_exact(d)) {
        for (out_row, &aki) in out.chunks_exact_mut(d).zip(a_row) {
            axpy(out_row, aki, b_row);
        }
    }
    out
}

/// `y += alpha·x`.
fn axpy(y: &mut [f64], alpha: f64, x: &[f64]) {
    for (yi, &xi) in y.iter_mut().zip(x) {
        *yi += alpha * xi;
    }
}

// ---------------------------------------------------------------------------
// Jacobi eigen-decomposition
//
// Cyclic Jacobi with the threshold strategy (Numerical Recipes §11.1): sweep over
// all index pairs (p, q), rotating in the (p, q) plane to annihilate `a_pq` unless
// it is below a threshold (coarse in the first sweeps, negligible afterwards),
// until the off-diagonal norm is ≤ 1e-12 ‖A‖_F.
//
// The implementation is arranged so that nearly all memory traffic is contiguous
// and cache-resident:
// - The working matrix is stored in full with a padded row stride (so that rows a
//   power of two apart do not collide in the cache); a rotation updates two
//   contiguous rows and the column update follows by symmetry.
// - A sweep visits the pairs block by block: for index blocks `I ≤ J`, every pair
//   `p ∈ I, q ∈ J, p < q` (a cyclic ordering). The angles of a block pair depend
//   only on the submatrix on `I ∪ J`, so they are found on a small copy of it;
//   the rotations are then applied to the full rows `I ∪ J` one slab of columns at
//   a time, and the columns `I ∪ J` of the other rows are copied from those rows.
// - A sweep's rotations are applied to the eigenvectors afterwards, one panel of
//   columns at a time, on a second thread while the next sweep runs.

/// Eigenvalues (unsorted) of the symmetric d×d row-major matrix `a` (symmetrised
/// as `(A + Aᵀ)/2`); with `basis` (the identity on entry), also the eigenvectors:
/// eigenvector `i` of `basis` belongs to eigenvalue `i`.
fn jacobi_eigen(a: &[f64], d: usize, basis: Option<&mut Basis>) -> Vec<f64> {
    if d == 0 {
        return Vec::new();
    }
    let mut work = Working::symmetrised(a, d);
    match basis {
        None => work.diagonalise(|_| {}),
        Some(basis) if d < PIPELINE_MIN_D => work.diagonalise(|r| basis.rotate(&r)),
        Some(basis) => std::thread::scope(|scope| {
            let (sender, receiver) = std::sync::mpsc::channel::<Vec<Givens>>();
            scope.spawn(move || receiver.iter().for_each(|r| basis.rotate(&r)));
            work.diagonalise(move |r| sender.send(r).expect("eigenvector thread alive"));
        }),
    }
    (0..d).map(|i| work.m[i * work.ld + i]).collect()
}

/// A symmetric matrix stored in full, row-major with row stride `ld ≥ d`.
struct Working {
    d: usize,
    ld: usize,
    m: Vec<f64>,
}

impl Working {
    fn symmetrised(a: &[f64], d: usize) -> Self {
        // Rows 2^k·8 bytes apart map to the same L1 sets; an odd number of cache
        // lines of padding spreads them out.
        let ld = if d >= 64 {
            d.next_multiple_of(8) + 8
        } else {
            d
        };
        let mut m = vec![0.0; d * ld];
        for i in 0..d {
            for j in 0..d {
                m[i * ld + j] = 0.5 * (a[i * d + j] + a[j * d + i]);
            }
        }
        Self { d, ld, m }
    }

    /// Frobenius norms `(‖M‖_F, ‖offdiag(M)‖_F)`, each summed directly (their
    /// difference would cancel catastrophically near convergence).
    fn norms(&self) -> (f64, f64) {
        let (mut diag, mut off) = (0.0, 0.0);
        for (i, row) in self.m.chunks_exact(self.ld).enumerate() {
            let (before, rest) = row[..self.d].split_at(i);
            off += before.iter().chain(&rest[1..]).map(|x| x * x).sum::<f64>();
            diag += rest[0] * rest[0];
        }
        ((diag + off).sqrt(), off.sqrt())
    }

    /// Sweep until converged, handing each sweep's rotations to `emit`.
    fn diagonalise(&mut self, mut emit: impl FnMut(Vec<Givens>)) {
        let d = self.d;
        let (scale, _) = self.norms();
        let tol = EIGEN_TOL * scale;
        let floor = tol / d.max(1) as f64;
        for sweep in 0..MAX_SWEEPS {
            let (_, off) = self.norms();
            if off <= tol {
                return;
            }
            let threshold = if sweep < EARLY_SWEEPS {
                (0.2 * off / (d * d) as f64).max(floor)
            } else {
                floor
            };
            let mut rotations = Vec::with_capacity(d * d / 2);
            for i0 in (0..d).step_by(JACOBI_BLOCK) {
                for j0 in (i0..d).step_by(JACOBI_BLOCK) {
                    let pair = BlockPair {
                        first: i0..(i0 + JACOBI_BLOCK).min(d),
                        second: j0..(j0 + JACOBI_BLOCK).min(d),
                    };
                    pair.sweep(self, threshold, &mut rotations);
                }
            }
            emit(rotations);
        }
    }
}

/// Two blocks of indices `first ≤ second` (equal for a diagonal block).
struct BlockPair {
    first: Range<usize>,
    second: Range<usize>,
}

impl BlockPair {
    fn is_diagonal(&self) -> bool {
        self.first == self.second
    }

    /// Indices of `first ∪ second`, ascending.
    fn indices(&self) -> Vec<usize> {
        let second = if self.is_diagonal() {
            0..0
        } else {
            self.second.clone()
        };
        self.first.clone().chain(second).collect()
    }

    /// Column ranges outside `first ∪ second`.
    fn complement(&self, d: usize) -> [Range<usize>; 3] {
        let (a, b) = (&self.first, &self.second);
        [0..a.start, a.end..b.start.max(a.end), b.end..d]
    }

    /// Do this block pair's rotations (appended to `rotations`), leaving `w`
    /// fully updated.
    fn sweep(&self, w: &mut Working, threshold: f64, rotations: &mut Vec<Givens>) {
        let group = self.indices();
        let mut small = gather_submatrix(w, &group);
        let start = rotations.len();
        let split = (!self.is_diagonal()).then_some(self.first.len());
        sweep_small(&mut small, group.len(), split, threshold, |g| {
            rotations.push(Givens {
                p: group[g.p],
                q: group[g.q],
                ..g
            });
        });
        if rotations.len() == start {
            return; // nothing rotated: `w` is unchanged
        }
        for columns in self.complement(w.d) {
            rotate_row_slabs(&mut w.m, w.ld, columns, &rotations[start..]);
        }
        scatter_submatrix(w, &group, &small);
        mirror_rows_to_columns(w, &group);
    }
}

/// One cyclic Jacobi pass over the pairs (i, j), i < j, of the small g×g matrix:
/// all pairs, or with `split = Some(s)` only those with `i < s ≤ j`. Each rotation
/// done (element above `threshold`) is handed to `record`, in local indices.
fn sweep_small(
    small: &mut [f64],
    g: usize,
    split: Option<usize>,
    threshold: f64,
    mut record: impl FnMut(Givens),
) {
    for i in 0..split.unwrap_or(g) {
        for j in split.unwrap_or(i + 1).max(i + 1)..g {
            if small[i * g + j].abs() > threshold {
                record(rotate_pivot(small, g, i, j));
                mirror_column(small, g, j);
            }
        }
        // Column i of the other rows was only read through row i until now.
        mirror_column(small, g, i);
    }
}

/// Rotate rows p, q of the g×g matrix `m` in the (p, q) plane, p < q, so that
/// `m_pq` vanishes (setting the pivot entries exactly), and return the rotation.
/// Columns p and q of the other rows are left for the caller to mirror.
fn rotate_pivot(m: &mut [f64], g: usize, p: usize, q: usize) -> Givens {
    let apq = m[p * g + q];
    let (app, aqq) = (m[p * g + p], m[q * g + q]);
    // Numerical Recipes §11.1: tan of the smaller angle that annihilates a_pq.
    let theta = 0.5 * (aqq - app) / apq;
    let t = theta.signum() / (theta.abs() + theta.hypot(1.0));
    let c = 1.0 / (t * t + 1.0).sqrt();
    let rotation = Givens { p, q, c, s: t * c };
    let (head, tail) = m.split_at_mut(q * g);
    let (row_p, row_q) = (&mut head[p * g..(p + 1) * g], &mut tail[..g]);
    rotation.apply(row_p, row_q);
    row_p[p] = app - t * apq;
    row_q[q] = aqq + t * apq;
    row_p[q] = 0.0;
    row_q[p] = 0.0;
    rotation
}

/// `m[r][c] = m[c][r]` for every row r of the g×g matrix `m`.
fn mirror_column(m: &mut [f64], g: usize, c: usize) {
    for r in 0..g {
        m[r * g + c] = m[c * g + r];
    }
}

/// Apply `rotations` in order to their rows `p, q` of the row-major matrix `m`
/// (row stride `ld`), restricted to `columns`, one slab of columns at a time so
/// that the rows' slabs stay in L1.
fn rotate_row_slabs(m: &mut [f64], ld: usize, columns: Range<usize>, rotations: &[Givens]) {
    const SLAB: usize = 32;
    for start in columns.clone().step_by(SLAB) {
        let end = (start + SLAB).min(columns.end);
        for g in rotations {
            let (head, tail) = m.split_at_mut(g.q * ld);
            g.apply(
                &mut head[g.p * ld + start..g.p * ld + end],
                &mut tail[start..end],
            );
        }
    }
}

/// The submatrix of `w` on the ascending indices `group`, g×g row-major.
fn gather_submatrix(w: &Working, group: &[usize]) -> Vec<f64> {
    let mut small = Vec::with_capacity(group.len() * group.len());
    for &r in group {
        small.extend(group.iter().map(|&c| w.m[r * w.ld + c]));
    }
    small
}

fn scatter_submatrix(w: &mut Working, group: &[usize], small: &[f64]) {
    for (&r, values) in group.iter().zip(small.chunks_exact(group.len())) {
        for (&c, &x) in group.iter().zip(values) {
            w.m[r * w.ld + c] = x;
        }
    }
}

/// `m[k][c] = m[c][k]` for `c ∈ group` and every row `k ∉ group`, a tile of rows at
/// a time so that reads and writes both come in short contiguous runs.
fn mirror_rows_to_columns(w: &mut Working, group: &[usize]) {
    const TILE: usize = 8;
    let (ld, g) = (w.ld, group.len());
    let outside: Vec<usize> = (0..w.d)
        .filter(|k| group.binary_search(k).is_err())
        .collect();
    let mut tile = vec![0.0; TILE * g];
    for rows in outside.chunks(TILE) {
        for (ci, &c) in group.iter().enumerate() {
            for (ri, &k) in rows.iter().enumerate() {
                tile[ri * g + ci] = w.m[c * ld + k];
            }
        }
        for (&k, values) in rows.iter().zip(tile.chunks_exact(g)) {
            for (&c, &x) in group.iter().zip(values) {
                w.m[k * ld + c] = x;
            }
        }
    }
}

/// A plane rotation of two rows: `(x_p, x_q) ← (c·x_p − s·x_q, s·x_p + c·x_q)`.
#[derive(Clone, Copy)]
struct Givens {
    p: usize,
    q: usize,
    c: f64,
    s: f64,
}

impl Givens {
    /// `(x, y) ← (c·x − s·y, s·x + c·y)` elementwise.
    fn apply(&self, x: &mut [f64], y: &mut [f64]) {
        let (c, s) = (self.c, self.s);
        for (xi, yi) in x.iter_mut().zip(y.iter_mut()) {
            let (a, b) = (*xi, *yi);
            *xi = c * a - s * b;
            *yi = s * a + c * b;
        }
    }
}

/// The accumulated rotations `Vᵀ` (row i = eigenvector i), stored as column
/// panels (each d × `width`, zero-padded) so that a sweep's rotations can be
/// applied one cache-sized panel at a time.
struct Basis {
    d: usize,
    width: usize,
    data: Vec<f64>,
}

impl Basis {
    const PANEL_WIDTH: usize = 32;

    fn identity(d: usize) -> Self {
        let width = Self::PANEL_WIDTH.min(d.max(1));
        let mut data = vec![0.0; d.div_ceil(width) * d * width];
        for i in 0..d {
            data[(i / width) * d * width + i * width + i % width] = 1.0;
        }
        Self { d, width, data }
    }

    /// Component `k` of eigenvector `i`.
    fn get(&self, i: usize, k: usize) -> f64 {
        let (d, width) = (self.d, self.width);
        self.data[(k / width) * d * width + i * width + k % width]
    }

    /// Apply `rotations` in order to the eigenvectors, panel by panel.
    fn rotate(&mut self, rotations: &[Givens]) {
        let width = self.width;
        for panel in self.data.chunks_exact_mut(self.d * width) {
            rotate_row_slabs(panel, width, 0..width, rotations);
        }
    }
}

/// Eigenvalues sorted ascending with the matching eigenvectors from `basis` as
/// columns of a row-major d×d matrix.
fn sorted_eigenpairs(values: &[f64], basis: &Basis) -> (Vec<f64>, Vec<f64>) {
    let d = values.len();
    let mut order: Vec<usize> = (0..d).collect();
    order.sort_by(|&i, &j| values[i].total_cmp(&values[j]));
    let mut vectors = vec![0.0; d * d];
    for (k, row) in vectors.chunks_exact_mut(d.max(1)).enumerate() {
        for (x, &i) in row.iter_mut().zip(&order) {
            *x = basis.get(i, k);
        }
    }
    (order.iter().map(|&i| values[i]).collect(), vectors)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    fn identity(d: usize) -> Vec<f64> {
        let mut m = vec![0.0; d * d];
        (0..d).for_each(|i| m[i * d + i] = 1.0);
        m
    }

    /// Replace `m` by `(m + mᵀ)/2`.
    fn symmetrise(m: &mut [f64], d: usize) {
        for i in 0..d {
            for j in i + 1..d {
                let avg = 0.5 * (m[i * d + j] + m[j * d + i]);
                m[i * d + j] = avg;
                m[j * d + i] = avg;
            }
        }
    }

    fn rng(seed: u64) -> StdRng {
        StdRng::seed_from_u64(seed)
    }

    fn random_symmetric(r: &mut StdRng, d: usize) -> Vec<f64> {
        let mut m: Vec<f64> = (0..d * d).map(|_| r.random_range(-1.0..1.0)).collect();
        symmetrise(&mut m, d);
        m
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

    fn max_abs_diff(a: &[f64], b: &[f64]) -> f64 {
        a.iter()
            .zip(b)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0, f64::max)
    }

    fn reconstruct(values: &[f64], vectors: &[f64], d: usize) -> Vec<f64> {
        let mut scaled = vectors.to_vec();
        for row in scaled.chunks_exact_mut(d) {
            row.iter_mut().zip(values).for_each(|(x, l)| *x *= l);
        }
        matmul(&scaled, &transpose(vectors, d), d)
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

    /// Gauss–Jordan inverse with partial pivoting (independent of the Jacobi code).
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
            if change < 1e-15 {
                break;
            }
        }
        y
    }

    #[test]
    fn eigen_reconstructs_random_symmetric_matrices() {
        let mut r = rng(1);
        for d in [1, 2, 7, 64, 100] {
            let a = random_symmetric(&mut r, d);
            let (values, vectors) = symmetric_eigen(&a, d);
            let err = max_abs_diff(&reconstruct(&values, &vectors, d), &a);
            assert!(err < 1e-9, "d={d}: reconstruction error {err}");
            let gram = matmul(&transpose(&vectors, d), &vectors, d);
            let ortho = max_abs_diff(&gram, &identity(d));
            assert!(ortho < 1e-9, "d={d}: VᵀV − I = {ortho}");
            assert!(values.windows(2).all(|w| w[0] <= w[1]), "sorted ascending");
        }
    }

    #[test]
    fn eigenvalues_of_diagonal_matrix_are_its_diagonal() {
        let diag = [3.0, -1.5, 0.0, 7.25, 2.0];
        let d = diag.len();
        let mut a = vec![0.0; d * d];
        (0..d).for_each(|i| a[i * d + i] = diag[i]);
        let (values, vectors) = symmetric_eigen(&a, d);
        assert_eq!(values, vec![-1.5, 0.0, 2.0, 3.0, 7.25]);
        assert!(vectors.iter().all(|&x| x == 0.0 || x.abs() == 1.0));
    }

    #[test]
    fn eigen_handles_degenerate_and_empty_matrices() {
        let d = 4;
        let a = vec![1.0; d * d]; // eigenvalues 0, 0, 0, 4
        let (values, vectors) = symmetric_eigen(&a, d);
        assert!(max_abs_diff(&values, &[0.0, 0.0, 0.0, 4.0]) < 1e-12);
        assert!(max_abs_diff(&reconstruct(&values, &vectors, d), &a) < 1e-12);
        assert_eq!(symmetric_eigen(&[], 0), (vec![], vec![]));
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

    #[test]
    fn eigen_256_timing() {
        let d = 256;
        let a = random_symmetric(&mut rng(6), d);
        let start = std::time::Instant::now();
        let (values, vectors) = symmetric_eigen(&a, d);
        let elapsed = start.elapsed();
        println!("symmetric_eigen d={d}: {elapsed:?}");
        let err = max_abs_diff(&reconstruct(&values, &vectors, d), &a);
        assert!(err < 1e-9, "reconstruction error {err}");
    }
}
