//! 2-D Gaussian mixtures with the geometry of VEEGAN / PacGAN: the standard
//! test of mode collapse.
//!
//! - ring: 8 modes evenly spaced on the unit circle, standard deviation 0.01;
//! - grid: 25 modes at {−4, −2, 0, 2, 4}², standard deviation 0.05.
//!
//! Each point picks a mode uniformly and adds isotropic Gaussian noise.

use rand::Rng;
use rand_distr::{Distribution, StandardNormal};

/// A mixture of equal-weight isotropic Gaussians in the plane.
#[derive(Clone, Debug, PartialEq)]
pub struct Mixture {
    pub name: &'static str,
    pub centers: Vec<[f32; 2]>,
    pub std: f32,
}

impl Mixture {
    pub fn ring() -> Mixture {
        let centers = (0..8)
            .map(|i| {
                let a = i as f32 * std::f32::consts::TAU / 8.0;
                [a.cos(), a.sin()]
            })
            .collect();
        Mixture {
            name: "ring",
            centers,
            std: 0.01,
        }
    }

    pub fn grid() -> Mixture {
        let steps = [-4.0, -2.0, 0.0, 2.0, 4.0];
        let centers = steps
            .iter()
            .flat_map(|&x| steps.iter().map(move |&y| [x, y]))
            .collect();
        Mixture {
            name: "grid",
            centers,
            std: 0.05,
        }
    }

    /// The mixture a dataset name stands for (`ring`, `grid`); `None` for the image sets.
    pub fn named(name: &str) -> Option<Mixture> {
        match name {
            "ring" => Some(Mixture::ring()),
            "grid" => Some(Mixture::grid()),
            _ => None,
        }
    }

    /// `n` points, row-major `[x0, y0, x1, y1, ...]`.
    pub fn sample(&self, n: usize, rng: &mut impl Rng) -> Vec<f32> {
        let mut out = Vec::with_capacity(2 * n);
        for _ in 0..n {
            let c = self.centers[rng.random_range(0..self.centers.len())];
            for axis in c {
                let z: f32 = StandardNormal.sample(rng);
                out.push(axis + self.std * z);
            }
        }
        out
    }

    /// A square that holds every mode with a margin, for plots.
    pub fn plot_bounds(&self) -> (f32, f32) {
        let extent = self
            .centers
            .iter()
            .flat_map(|c| c.iter().map(|v| v.abs()))
            .fold(0.0f32, f32::max);
        let margin = 0.5 * extent.max(1.0);
        (-(extent + margin), extent + margin)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn samples_sit_near_their_modes() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        for m in [Mixture::ring(), Mixture::grid()] {
            let pts = m.sample(2000, &mut rng);
            let mut hits = vec![0usize; m.centers.len()];
            for p in pts.chunks(2) {
                let (i, d) = m
                    .centers
                    .iter()
                    .enumerate()
                    .map(|(i, c)| (i, ((p[0] - c[0]).powi(2) + (p[1] - c[1]).powi(2)).sqrt()))
                    .fold((0, f32::MAX), |a, b| if b.1 < a.1 { b } else { a });
                assert!(
                    d < 6.0 * m.std,
                    "{}: point {p:?} is {d} from its mode",
                    m.name
                );
                hits[i] += 1;
            }
            assert!(
                hits.iter().all(|&h| h > 0),
                "{}: a mode got no samples",
                m.name
            );
        }
        assert_eq!(Mixture::ring().centers.len(), 8);
        assert_eq!(Mixture::grid().centers.len(), 25);
    }
}
