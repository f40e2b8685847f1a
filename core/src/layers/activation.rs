//! Element-wise activations: relu, leaky_relu, sigmoid, tanh, gelu, identity;
//! `smooth.rs` has silu, elu, selu, softplus and mish.
//!
//! They act on every element independently, so they work on any shape: a
//! batch of `N` features is just `N·batch` numbers.

use crate::float::Float;
use crate::kernels::{gelu as gelu_kernel, Isa};
use crate::tensor::{ensure_batch, Batch};

/// An activation function applied to a whole batch.
///
/// `backward` receives both the input `x` and the output `y` of the forward
/// pass; each activation uses whichever makes its derivative cheapest.
pub trait Activation: Copy {
    /// The name used in the `network!` language and in summaries.
    const NAME: &'static str;

    /// `y = f(x)`; `y` is resized to the batch if needed.
    fn forward<T: Float, const N: usize>(&self, x: &Batch<T, N>, y: &mut Batch<T, N>);

    /// `y = f(y)`, overwriting the input: the inference pass needs no second buffer.
    fn forward_in_place<T: Float, const N: usize>(&self, y: &mut Batch<T, N>);

    /// `dx = f'(x) ⊙ dy` (or the Jacobian product for non-element-wise ones).
    fn backward<T: Float, const N: usize>(
        &self,
        x: &Batch<T, N>,
        y: &Batch<T, N>,
        dy: &Batch<T, N>,
        dx: &mut Batch<T, N>,
    );

    /// What a training pass keeps for its backward pass: `()` for most, GELU's
    /// derivative (cheaper to keep than to compute again).
    type Cache<T: Float>: Default + Send;

    /// The training pass: [`Activation::forward`], keeping in `cache` what
    /// [`Activation::backward_cached`] reads.
    fn forward_train<T: Float, const N: usize>(
        &self,
        x: &Batch<T, N>,
        y: &mut Batch<T, N>,
        cache: &mut Self::Cache<T>,
    ) {
        let _ = cache;
        self.forward(x, y)
    }

    /// [`Activation::backward`] after [`Activation::forward_train`] on `x` kept `cache`.
    fn backward_cached<T: Float, const N: usize>(
        &self,
        x: &Batch<T, N>,
        y: &Batch<T, N>,
        dy: &Batch<T, N>,
        dx: &mut Batch<T, N>,
        cache: &Self::Cache<T>,
    ) {
        let _ = cache;
        self.backward(x, y, dy, dx)
    }
}

/// Defines an element-wise activation from its value and its backward rule:
/// the input gradient from the input `x`, the output `y` and the output gradient `g`.
macro_rules! elementwise {
    ($(#[$doc:meta])* $name:ident, $lang:literal, |$s:ident, $x:ident| $f:expr, |$s2:ident, $dx:ident, $dy:ident, $g:ident| $df:expr) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, Default, PartialEq)]
        pub struct $name;
        elementwise!(@impl $name, $lang, |$s, $x| $f, |$s2, $dx, $dy, $g| $df);
    };
    (@impl $name:ident, $lang:literal, |$s:ident, $x:ident| $f:expr, |$s2:ident, $dx:ident, $dy:ident, $g:ident| $df:expr) => {
        impl Activation for $name {
            const NAME: &'static str = $lang;
            type Cache<T: Float> = ();

            fn forward<T: Float, const N: usize>(&self, x: &Batch<T, N>, y: &mut Batch<T, N>) {
                ensure_batch(y, x.ncols());
                let $s = self;
                for (y, &$x) in y.as_mut_slice().iter_mut().zip(x.as_slice()) {
                    *y = $f;
                }
            }

            // For `Identity` this reads as `*y = *y`, which clippy takes for a botched swap.
            #[allow(clippy::almost_swapped)]
            fn forward_in_place<T: Float, const N: usize>(&self, y: &mut Batch<T, N>) {
                let $s = self;
                for y in y.as_mut_slice() {
                    let $x = *y;
                    *y = $f;
                }
            }

            fn backward<T: Float, const N: usize>(
                &self,
                x: &Batch<T, N>,
                y: &Batch<T, N>,
                dy: &Batch<T, N>,
                dx: &mut Batch<T, N>,
            ) {
                ensure_batch(dx, x.ncols());
                let $s2 = self;
                let values = x.as_slice().iter().zip(y.as_slice());
                for ((d, &$g), (&$dx, &$dy)) in dx.as_mut_slice().iter_mut().zip(dy.as_slice()).zip(values) {
                    *d = $df;
                }
            }
        }
    };
}

mod smooth;
pub use smooth::{Elu, Mish, Selu, Silu, Softplus};

elementwise!(
    /// `max(0, x)`. The derivative at 0 is taken as 0, as in PyTorch; NaN stays
    /// NaN (written so the comparison is false for NaN) so bad data is not hidden.
    /// The backward pass selects rather than multiplies (PyTorch's
    /// `threshold_backward`): the gradient where `x > 0`, exactly 0 elsewhere.
    Relu, "relu",
    |_s, x| Relu::value(x),
    |_s, x, _y, g| Relu::gradient(x, g)
);

elementwise!(
    /// The logistic function `1 / (1 + e^-x)`, computed without overflow for large |x|.
    Sigmoid, "sigmoid",
    |_s, x| sigmoid(x),
    |_s, _x, y, g| g * (y * (T::one() - y))
);

elementwise!(
    /// The hyperbolic tangent.
    Tanh, "tanh",
    |_s, x| x.tanh(),
    |_s, _x, y, g| g * (T::one() - y * y)
);

/// The exact GELU `x·Φ(x)` with the Gaussian CDF `Φ` via erf: PyTorch's default
/// (JAX's default is the tanh approximation, which differs by up to ~1e-3).
/// f32 runs the vector kernels of `kernels::gelu` at the active level (within
/// a few ulp of the exact values), f64 the scalar erf form. A training pass
/// keeps `gelu'(x)` (one value per input) so that its backward pass is one product.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Gelu;

impl Activation for Gelu {
    const NAME: &'static str = "gelu";
    /// `gelu'(x)` for every input of the training pass.
    type Cache<T: Float> = Vec<T>;

    fn forward<T: Float, const N: usize>(&self, x: &Batch<T, N>, y: &mut Batch<T, N>) {
        ensure_batch(y, x.ncols());
        y.as_mut_slice().copy_from_slice(x.as_slice());
        self.forward_in_place(y);
    }

    fn forward_in_place<T: Float, const N: usize>(&self, y: &mut Batch<T, N>) {
        match T::f32s_mut(y.as_mut_slice()) {
            Some(v) => gelu_kernel::gelu(Isa::active(), v),
            None => y.as_mut_slice().iter_mut().for_each(|v| *v = gelu(*v)),
        }
    }

    fn backward<T: Float, const N: usize>(
        &self,
        x: &Batch<T, N>,
        _y: &Batch<T, N>,
        dy: &Batch<T, N>,
        dx: &mut Batch<T, N>,
    ) {
        ensure_batch(dx, x.ncols());
        dx.as_mut_slice().copy_from_slice(dy.as_slice());
        match (T::f32s(x.as_slice()), T::f32s_mut(dx.as_mut_slice())) {
            (Some(x), Some(g)) => gelu_kernel::gelu_backward(Isa::active(), x, g),
            _ => {
                for (g, &x) in dx.as_mut_slice().iter_mut().zip(x.as_slice()) {
                    *g *= gelu_derivative(x);
                }
            }
        }
    }

    fn forward_train<T: Float, const N: usize>(
        &self,
        x: &Batch<T, N>,
        y: &mut Batch<T, N>,
        derivative: &mut Vec<T>,
    ) {
        ensure_batch(y, x.ncols());
        derivative.resize(x.len(), T::zero());
        match (T::f32s(x.as_slice()), T::f32s_mut(y.as_mut_slice()), T::f32s_mut(derivative)) {
            (Some(x), Some(y), Some(d)) => gelu_kernel::gelu_and_derivative(Isa::active(), x, y, d),
            _ => {
                let outputs = y.as_mut_slice().iter_mut().zip(derivative.iter_mut());
                for ((y, d), &x) in outputs.zip(x.as_slice()) {
                    (*y, *d) = (gelu(x), gelu_derivative(x));
                }
            }
        }
    }

    /// `dx = gelu'(x) ⊙ dy` from the derivative the training pass kept (computed
    /// again from `x` if it kept none for this batch).
    fn backward_cached<T: Float, const N: usize>(
        &self,
        x: &Batch<T, N>,
        y: &Batch<T, N>,
        dy: &Batch<T, N>,
        dx: &mut Batch<T, N>,
        derivative: &Vec<T>,
    ) {
        if derivative.len() != x.len() {
            return self.backward(x, y, dy, dx);
        }
        ensure_batch(dx, x.ncols());
        for ((d, &g), &slope) in dx.as_mut_slice().iter_mut().zip(dy.as_slice()).zip(derivative) {
            *d = g * slope;
        }
    }
}

elementwise!(
    /// The identity: passes values through. Useful as an explicit marker.
    Identity, "identity",
    |_s, x| x,
    |_s, _x, _y, g| g
);

/// `x` for positive `x`, `alpha·x` otherwise.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LeakyRelu {
    /// The slope for negative inputs.
    pub alpha: f64,
}

impl LeakyRelu {
    /// A leaky ReLU with slope `alpha` below zero.
    pub const fn new(alpha: f64) -> Self {
        LeakyRelu { alpha }
    }
}

impl Default for LeakyRelu {
    /// PyTorch's default slope, 0.01.
    fn default() -> Self {
        LeakyRelu::new(0.01)
    }
}

elementwise!(@impl LeakyRelu, "leaky_relu",
    |s, x| if x < T::zero() { T::cast(s.alpha) * x } else { x },
    |s, x, _y, g| g * if x > T::zero() { T::one() } else { T::cast(s.alpha) }
);

impl Relu {
    /// `max(0, x)`, NaN staying NaN (`x < 0` is false for it).
    #[inline(always)]
    pub(crate) fn value<T: Float>(x: T) -> T {
        if x < T::zero() {
            T::zero()
        } else {
            x
        }
    }

    /// The input gradient from the input `x` and the output gradient `g`: `g`
    /// where `x > 0`, exactly 0 elsewhere (a select, not a product).
    #[inline(always)]
    pub(crate) fn gradient<T: Float>(x: T, g: T) -> T {
        if x > T::zero() {
            g
        } else {
            T::zero()
        }
    }
}

pub(crate) fn sigmoid<T: Float>(x: T) -> T {
    // Only ever exponentiate a non-positive number, so nothing overflows.
    if x >= T::zero() {
        T::one() / (T::one() + (-x).exp())
    } else {
        let e = x.exp();
        e / (T::one() + e)
    }
}

fn gelu<T: Float>(x: T) -> T {
    let half = T::cast(0.5);
    half * x * (T::one() + (x * T::cast(std::f64::consts::FRAC_1_SQRT_2)).erf())
}

fn gelu_derivative<T: Float>(x: T) -> T {
    // d/dx [x Φ(x)] = Φ(x) + x φ(x)
    let half = T::cast(0.5);
    let cdf = half * (T::one() + (x * T::cast(std::f64::consts::FRAC_1_SQRT_2)).erf());
    let pdf = (-half * x * x).exp() * T::cast(1.0 / (2.0 * std::f64::consts::PI).sqrt());
    cdf + x * pdf
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gradcheck::{assert_close, numeric_grad};

    const XS: [f64; 6] = [-2.0, -0.5, 0.3, 1.0, 3.0, -7.0];

    /// `a` on [`XS`] (also in place, which must agree).
    pub(super) fn forward<A: Activation>(a: A) -> Vec<f64> {
        let x = Batch::<f64, 3>::from_column_slice(&XS);
        let mut y = Batch::zeros(0);
        a.forward(&x, &mut y);
        let mut in_place = x.clone();
        a.forward_in_place(&mut in_place);
        assert_eq!(y, in_place, "{}: in place differs", A::NAME);
        y.as_slice().to_vec()
    }

    /// `a`'s backward pass against finite differences on [`XS`].
    pub(super) fn check_gradient<A: Activation>(a: A) {
        let x = Batch::<f64, 3>::from_column_slice(&XS);
        let c = Batch::<f64, 3>::from_column_slice(&[0.3, -1.2, 0.7, 2.0, -0.4, 1.1]);
        let loss = |xs: &[f64]| {
            let mut y = Batch::<f64, 3>::zeros(0);
            a.forward(&Batch::from_column_slice(xs), &mut y);
            y.component_mul(&c).sum()
        };
        let mut y = Batch::zeros(0);
        a.forward(&x, &mut y);
        let mut dx = Batch::zeros(0);
        a.backward(&x, &y, &c, &mut dx);
        assert_close(dx.as_slice(), &numeric_grad(x.as_slice(), loss), 1e-7, A::NAME);
    }

    #[test]
    fn relu_values_and_gradient() {
        assert_eq!(forward(Relu), vec![0.0, 0.0, 0.3, 1.0, 3.0, 0.0]);
        check_gradient(Relu);
    }

    #[test]
    fn nan_propagates_through_every_activation() {
        fn nan_out<A: Activation>(a: A) -> bool {
            let mut y = Batch::<f32, 1>::from_element(1, f32::NAN);
            a.forward_in_place(&mut y);
            y[0].is_nan()
        }
        assert!(nan_out(Relu) && nan_out(LeakyRelu::new(0.1)) && nan_out(Sigmoid));
        assert!(nan_out(Tanh) && nan_out(Gelu) && nan_out(Identity));
    }

    #[test]
    fn leaky_relu_values_and_gradient() {
        assert_eq!(forward(LeakyRelu::new(0.1)), vec![-0.2, -0.05, 0.3, 1.0, 3.0, -0.7000000000000001]);
        check_gradient(LeakyRelu::new(0.1));
        assert_eq!(LeakyRelu::default().alpha, 0.01);
    }

    #[test]
    fn sigmoid_values_and_gradient() {
        let y = forward(Sigmoid);
        assert!((y[3] - 0.7310585786300049).abs() < 1e-15);
        assert!((y[0] - 0.11920292202211755).abs() < 1e-15);
        check_gradient(Sigmoid);
        // No overflow at the extremes.
        assert_eq!(sigmoid(-1000.0f32), 0.0);
        assert_eq!(sigmoid(1000.0f32), 1.0);
    }

    #[test]
    fn tanh_values_and_gradient() {
        let y = forward(Tanh);
        assert!((y[3] - 0.7615941559557649).abs() < 1e-15);
        check_gradient(Tanh);
    }

    #[test]
    fn gelu_is_the_exact_erf_form() {
        let y = forward(Gelu);
        // Python: 0.5 * x * (1 + math.erf(x / math.sqrt(2)))
        assert!((y[3] - 0.8413447460685429).abs() < 1e-15);
        assert!((y[0] - -0.04550026389635842).abs() < 1e-15);
        assert!((y[2] - 0.18537342665668578).abs() < 1e-15);
        check_gradient(Gelu);
    }

    #[test]
    fn gelu_in_f32_takes_the_kernels_and_matches_f64() {
        // Within ±4.9, where the f64 erf form (1 + erf) keeps its accuracy.
        let xs: Vec<f32> = (-700..700).map(|i| i as f32 * 0.007).collect();
        let x = Batch::<f32, 7>::from_column_slice(&xs);
        let (mut y, mut in_place, mut dx) = (Batch::zeros(0), x.clone(), Batch::zeros(0));
        Gelu.forward(&x, &mut y);
        Gelu.forward_in_place(&mut in_place);
        assert_eq!(y, in_place);
        let dy = Batch::<f32, 7>::from_element(x.ncols(), -2.0);
        Gelu.backward(&x, &y, &dy, &mut dx);
        for ((&x, &y), &d) in xs.iter().zip(y.as_slice()).zip(dx.as_slice()) {
            let x64 = x as f64;
            assert!((y as f64 - gelu(x64)).abs() <= 1e-6 * gelu(x64).abs().max(1e-30), "gelu({x}) = {y}");
            let want = -2.0 * gelu_derivative(x64);
            assert!((d as f64 - want).abs() <= 2e-6, "gelu'({x})·−2 = {d}, not {want}");
        }
    }

    /// The training pass keeps `gelu'(x)`; its backward pass gives the bits of
    /// the one that computes it from `x`, in f32 (the kernels) and f64, and
    /// without a kept derivative for the batch it computes it again.
    fn gelu_training_pass_keeps_the_derivative<T: Float>(xs: &[T]) {
        let x = Batch::<T, 5>::from_column_slice(xs);
        let dy = Batch::<T, 5>::from_fn(x.ncols(), |i, j| T::cast((i + 3 * j) as f64 * 0.25 - 2.0));
        let (mut y, mut y_train, mut cache) = (Batch::zeros(0), Batch::zeros(0), Vec::new());
        Gelu.forward(&x, &mut y);
        Gelu.forward_train(&x, &mut y_train, &mut cache);
        assert_eq!(y, y_train);
        let (mut from_x, mut from_cache, mut no_cache) = (Batch::zeros(0), Batch::zeros(0), Batch::zeros(0));
        Gelu.backward(&x, &y, &dy, &mut from_x);
        Gelu.backward_cached(&x, &y, &dy, &mut from_cache, &cache);
        Gelu.backward_cached(&x, &y, &dy, &mut no_cache, &Vec::new());
        assert_eq!(from_x, from_cache);
        assert_eq!(from_x, no_cache);
    }

    #[test]
    fn gelu_keeps_its_derivative_for_the_backward_pass() {
        let xs: Vec<f64> = (-40..40).map(|i| i as f64 * 0.17).collect();
        gelu_training_pass_keeps_the_derivative(&xs);
        gelu_training_pass_keeps_the_derivative(&xs.iter().map(|&x| x as f32).collect::<Vec<_>>());
    }

    #[test]
    fn identity_passes_through() {
        assert_eq!(forward(Identity), XS.to_vec());
        check_gradient(Identity);
    }
}
