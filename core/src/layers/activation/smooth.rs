//! The smooth activations of PyTorch: `silu` (swish), `elu`, `selu`, `softplus`, `mish`.
//!
//! Each follows PyTorch's definition and its backward formula (`torch.nn.functional`),
//! in scalar code: per element they cost an `exp` or two, small next to the products
//! around them, so they have no vector kernels.

use super::{sigmoid, Activation};
use crate::float::Float;
use crate::tensor::{ensure_batch, Batch};

/// SELU's fixed constants (Klambauer et al., as PyTorch writes them).
const SELU_ALPHA: f64 = 1.673_263_242_354_377_3;
const SELU_SCALE: f64 = 1.050_700_987_355_480_5;

/// Softplus switches to the identity above this input, as PyTorch's default `threshold = 20`.
const SOFTPLUS_THRESHOLD: f64 = 20.0;

elementwise!(
    /// SiLU (swish), `x·σ(x)`; its derivative is `σ(x)·(1 + x·(1 − σ(x)))`.
    Silu, "silu",
    |_s, x| x * sigmoid(x),
    |_s, x, _y, g| {
        let s = sigmoid(x);
        g * (s * (T::one() + x * (T::one() - s)))
    }
);

elementwise!(
    /// SELU, `scale·x` for positive `x`, `scale·α·(eˣ − 1)` otherwise, with PyTorch's
    /// `α ≈ 1.6733` and `scale ≈ 1.0507`.
    Selu, "selu",
    |_s, x| T::cast(SELU_SCALE) * if x > T::zero() { x } else { T::cast(SELU_ALPHA) * x.exp_m1() },
    |_s, x, _y, g| {
        let d = if x > T::zero() { T::one() } else { T::cast(SELU_ALPHA) * x.exp() };
        g * T::cast(SELU_SCALE) * d
    }
);

elementwise!(
    /// Softplus, `ln(1 + eˣ)`, and `x` itself above 20 (PyTorch's `beta = 1, threshold = 20`);
    /// its derivative is `σ(x)`, and 1 above the threshold.
    Softplus, "softplus",
    |_s, x| softplus(x),
    |_s, x, _y, g| if x > T::cast(SOFTPLUS_THRESHOLD) { g } else { g * sigmoid(x) }
);

elementwise!(
    /// Mish, `x·tanh(softplus(x))` (PyTorch's, whose softplus has no threshold);
    /// its derivative is `tanh(sp) + x·σ(x)·(1 − tanh²(sp))`.
    Mish, "mish",
    |_s, x| x * x.exp().ln_1p().tanh(),
    |_s, x, _y, g| {
        let t = x.exp().ln_1p().tanh();
        g * (t + x * sigmoid(x) * (T::one() - t * t))
    }
);

/// ELU, `x` for positive `x`, `α·(eˣ − 1)` otherwise; its derivative below zero is `α·eˣ`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Elu {
    /// The scale of the negative part.
    pub alpha: f64,
}

impl Elu {
    /// An ELU with scale `alpha` below zero.
    pub const fn new(alpha: f64) -> Self {
        Elu { alpha }
    }
}

impl Default for Elu {
    /// PyTorch's default, `alpha = 1.0`.
    fn default() -> Self {
        Elu::new(1.0)
    }
}

elementwise!(@impl Elu, "elu",
    |s, x| if x > T::zero() { x } else { T::cast(s.alpha) * x.exp_m1() },
    |s, x, _y, g| g * if x > T::zero() { T::one() } else { T::cast(s.alpha) * x.exp() }
);

/// PyTorch's softplus with `beta = 1, threshold = 20`.
fn softplus<T: Float>(x: T) -> T {
    if x > T::cast(SOFTPLUS_THRESHOLD) {
        x
    } else {
        x.exp().ln_1p()
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{check_gradient, forward};
    use super::*;

    /// Each value at x = −2 and x = 1 from Python's `math` module (the definitions above, in f64).
    #[test]
    fn values_match_the_definitions() {
        let close = |a: f64, b: f64| assert!((a - b).abs() < 1e-15, "{a} vs {b}");
        let silu = forward(Silu);
        close(silu[0], -0.2384058440442351);
        close(silu[3], 0.7310585786300049);
        let elu = forward(Elu::new(0.5));
        close(elu[0], 0.5 * (-2f64).exp_m1());
        assert_eq!(elu[3], 1.0);
        let selu = forward(Selu);
        close(selu[0], -1.520166468595695);
        close(selu[3], 1.0507009873554805);
        let softplus = forward(Softplus);
        close(softplus[0], 0.1269280110429725);
        close(softplus[3], 1.3132616875182228);
        let mish = forward(Mish);
        close(mish[0], -0.2525014826957089);
        close(mish[3], 0.8650983882673103);
        assert_eq!(Elu::default().alpha, 1.0);
    }

    #[test]
    fn gradients_match_finite_differences() {
        check_gradient(Silu);
        check_gradient(Elu::default());
        check_gradient(Elu::new(0.3));
        check_gradient(Selu);
        check_gradient(Softplus);
        check_gradient(Mish);
    }

    #[test]
    fn softplus_is_the_identity_past_its_threshold() {
        assert_eq!(softplus(25.0f64), 25.0);
        assert_eq!(softplus(-800.0f64), 0.0);
        assert!((softplus(19.0f64) - 19.0).abs() < 1e-8);
        // Mish does not overflow into NaN for large inputs.
        let mut y = Batch::<f32, 2>::from_column_slice(&[100.0, -100.0]);
        Mish.forward_in_place(&mut y);
        assert_eq!(y[0], 100.0);
        assert!(y[1] <= 0.0 && y[1] > -1e-30);
    }

    #[test]
    fn nan_propagates() {
        fn nan_out<A: Activation>(a: A) -> bool {
            let mut y = Batch::<f32, 1>::from_element(1, f32::NAN);
            a.forward_in_place(&mut y);
            y[0].is_nan()
        }
        assert!(nan_out(Silu) && nan_out(Elu::default()) && nan_out(Selu));
        assert!(nan_out(Softplus) && nan_out(Mish));
    }
}
