//! Weight initialisation from a seed.

use crate::float::Float;
use rand::SeedableRng;
use rand_distr::{Distribution, Normal, Uniform};

/// The random generator behind initialisation, shuffling and dropout.
///
/// ChaCha8 is portable: the same seed gives the same stream on every platform
/// and with every version of `rand`, so the same seed gives the same weights.
pub type SeededRng = rand_chacha::ChaCha8Rng;

/// A [`SeededRng`] from a seed.
pub fn seeded_rng(seed: u64) -> SeededRng {
    SeededRng::seed_from_u64(seed)
}

/// A fresh seed drawn from `rng`, for a component with a generator of its own (dropout).
pub fn next_seed(rng: &mut SeededRng) -> u64 {
    rand::Rng::next_u64(rng)
}

/// How a layer's weights are drawn. Biases always start at zero.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Init {
    /// He for layers followed by `relu`/`leaky_relu`, Glorot otherwise; the
    /// `network!` macro decides per layer.
    #[default]
    Auto,
    /// He (Kaiming) normal: N(0, 2 / fan_in). Keeps ReLU activations' variance.
    He,
    /// Glorot (Xavier) uniform: U(±sqrt(6 / (fan_in + fan_out))). Suits tanh, sigmoid and linear outputs.
    Glorot,
}

impl Init {
    /// Resolves [`Init::Auto`] for a layer; `relu_like` says whether a ReLU-family activation follows.
    pub fn resolve(self, relu_like: bool) -> Init {
        match self {
            Init::Auto if relu_like => Init::He,
            Init::Auto => Init::Glorot,
            other => other,
        }
    }

    /// Fills `weights` for a layer with the given fan-in and fan-out.
    pub fn fill<T: Float>(self, weights: &mut [T], fan_in: usize, fan_out: usize, rng: &mut SeededRng) {
        match self.resolve(false) {
            Init::He => {
                fill_normal(weights, (2.0 / fan_in.max(1) as f64).sqrt(), rng);
            }
            _ => {
                let limit = (6.0 / (fan_in + fan_out).max(1) as f64).sqrt();
                let uniform = Uniform::new_inclusive(-limit, limit).expect("a finite, ordered range");
                weights.iter_mut().for_each(|w| *w = T::cast(uniform.sample(rng)));
            }
        }
    }
}

/// Fills `weights` from N(0, std²): embeddings (PyTorch's `nn.Embedding`
/// draws from N(0, 1)) and learned position tables.
pub fn fill_normal<T: Float>(weights: &mut [T], std: f64, rng: &mut SeededRng) {
    let normal = Normal::new(0.0, std).expect("a finite, non-negative standard deviation");
    weights.iter_mut().for_each(|w| *w = T::cast(normal.sample(rng)));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats(w: &[f64]) -> (f64, f64) {
        let mean = w.iter().sum::<f64>() / w.len() as f64;
        let var = w.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / w.len() as f64;
        (mean, var)
    }

    #[test]
    fn he_has_variance_two_over_fan_in() {
        let mut w = vec![0.0f64; 200 * 100];
        Init::He.fill(&mut w, 200, 100, &mut seeded_rng(1));
        let (mean, var) = stats(&w);
        assert!(mean.abs() < 0.005, "{mean}");
        assert!((var / (2.0 / 200.0) - 1.0).abs() < 0.05, "{var}");
    }

    #[test]
    fn glorot_is_uniform_within_its_limit() {
        let mut w = vec![0.0f64; 300 * 100];
        Init::Glorot.fill(&mut w, 300, 100, &mut seeded_rng(2));
        let limit = (6.0f64 / 400.0).sqrt();
        assert!(w.iter().all(|x| x.abs() <= limit));
        // Uniform on [-l, l] has variance l²/3.
        let (_, var) = stats(&w);
        assert!((var / (limit * limit / 3.0) - 1.0).abs() < 0.05, "{var}");
    }

    #[test]
    fn same_seed_same_weights() {
        let (mut a, mut b) = (vec![0.0f32; 64], vec![0.0f32; 64]);
        Init::He.fill(&mut a, 8, 8, &mut seeded_rng(7));
        Init::He.fill(&mut b, 8, 8, &mut seeded_rng(7));
        assert_eq!(a, b);
        Init::He.fill(&mut b, 8, 8, &mut seeded_rng(8));
        assert_ne!(a, b);
    }

    #[test]
    fn auto_picks_he_before_relu_and_glorot_otherwise() {
        assert_eq!(Init::Auto.resolve(true), Init::He);
        assert_eq!(Init::Auto.resolve(false), Init::Glorot);
        assert_eq!(Init::Glorot.resolve(true), Init::Glorot);
    }
}
