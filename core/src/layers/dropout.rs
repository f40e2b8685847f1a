//! Inverted dropout with its own seeded generator: PyTorch's `nn.Dropout`.

use super::Layer;
use crate::error::{Error, Result};
use crate::float::Float;
use crate::init::{seeded_rng, SeededRng};
use crate::params::{Param, ParamMut, ParamPath, Params};
use crate::tensor::{ensure_batch, Batch};
use rand::Rng;
use std::fmt;

/// Inverted dropout: in training, each value is zeroed with probability `p`
/// and the kept ones are scaled by `1/(1 − p)`, so evaluation is the identity.
///
/// The layer owns its [`SeededRng`], seeded at construction, so the same seed
/// gives the same masks run after run; the generator advances with every
/// training pass (cloning the layer clones its state, so a clone draws the same
/// masks as the original). The mask is drawn element by element in the batch's
/// memory order (sample by sample, features in order), one `u32` per element:
/// the element is dropped when that `u32` is below `round(p·2³²)`. With
/// `p = 0` nothing is drawn and training is the identity too.
///
/// Dropped values are multiplied by zero rather than overwritten, so a NaN or
/// infinite input stays NaN, as in PyTorch.
#[derive(Clone)]
pub struct Dropout {
    p: f64,
    rng: SeededRng,
}

/// What a [`Dropout`] training pass keeps for its backward pass: the mask,
/// the per-element factor (`0` or `1/(1 − p)`) the input was multiplied by.
/// Resized only when the batch size changes.
pub struct DropoutWorkspace<T: Float, const N: usize> {
    mask: Batch<T, N>,
}

impl<T: Float, const N: usize> DropoutWorkspace<T, N> {
    /// A workspace holding a given mask, as if a training pass had drawn it:
    /// lets a test check the backward pass with a fixed mask.
    pub fn from_mask(mask: Batch<T, N>) -> Self {
        DropoutWorkspace { mask }
    }

    /// The per-element factor of the last training pass: `0` (dropped) or `1/(1 − p)` (kept).
    pub fn mask(&self) -> &Batch<T, N> {
        &self.mask
    }
}

impl<T: Float, const N: usize> Default for DropoutWorkspace<T, N> {
    fn default() -> Self {
        DropoutWorkspace { mask: Batch::zeros(0) }
    }
}

impl<T: Float, const N: usize> fmt::Debug for DropoutWorkspace<T, N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DropoutWorkspace({N} features, batch {})", self.mask.ncols())
    }
}

impl Dropout {
    /// Dropout with probability `p`, drawing its masks from a generator seeded with `seed`.
    ///
    /// Errors: [`Error::InvalidConfig`] unless `0 ≤ p < 1` (`p = 1` would scale
    /// by infinity). `network!` checks `p` while compiling, so generated code
    /// never meets the error.
    pub fn new(p: f64, seed: u64) -> Result<Self> {
        if !(0.0..1.0).contains(&p) {
            return Err(Error::InvalidConfig(format!("Dropout: p must lie in [0, 1), got {p}")));
        }
        Ok(Dropout { p, rng: seeded_rng(seed) })
    }

    /// The probability of zeroing a value in training.
    pub fn p(&self) -> f64 {
        self.p
    }

    /// The generator the masks are drawn from, in its current state (for checkpointing).
    pub fn rng(&self) -> &SeededRng {
        &self.rng
    }

    /// The generator mutably: replace it to restore a checkpointed state or to reseed.
    pub fn rng_mut(&mut self) -> &mut SeededRng {
        &mut self.rng
    }
}

impl fmt::Debug for Dropout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Dropout(p = {})", self.p)
    }
}

impl<T: Float, const N: usize> Layer<T, N, N> for Dropout {
    type Workspace = DropoutWorkspace<T, N>;
    type Gradients = ();

    /// Evaluation: the identity.
    fn forward(&self, x: &Batch<T, N>, y: &mut Batch<T, N>) {
        ensure_batch(y, x.ncols());
        y.copy_from(x);
    }

    /// Training: draws a fresh mask into `ws` and writes `y = x ⊙ mask`.
    fn forward_train(&mut self, x: &Batch<T, N>, y: &mut Batch<T, N>, ws: &mut Self::Workspace) {
        ensure_batch(y, x.ncols());
        ensure_batch(&mut ws.mask, x.ncols());
        if self.p == 0.0 {
            ws.mask.fill(T::one());
            y.copy_from(x);
            return;
        }
        // Dropped when a uniform u32 falls below p·2³²; p < 1 keeps this at most 2³².
        let threshold = (self.p * 4_294_967_296.0).round() as u64;
        let scale = T::cast(1.0 / (1.0 - self.p));
        let values = ws.mask.as_mut_slice().iter_mut().zip(y.as_mut_slice());
        for ((m, yi), &xi) in values.zip(x.as_slice()) {
            *m = if u64::from(self.rng.next_u32()) >= threshold { scale } else { T::zero() };
            *yi = xi * *m;
        }
    }

    /// `dx = dy ⊙ mask`, with the mask of the training pass.
    fn backward(
        &self,
        x: &Batch<T, N>,
        _y: &Batch<T, N>,
        dy: &Batch<T, N>,
        ws: &mut Self::Workspace,
        _grads: &mut (),
        dx: Option<&mut Batch<T, N>>,
    ) {
        if let Some(dx) = dx {
            ensure_batch(dx, x.ncols());
            for ((d, &g), &m) in dx.as_mut_slice().iter_mut().zip(dy.as_slice()).zip(ws.mask.as_slice()) {
                *d = g * m;
            }
        }
    }
}

/// Dropout has no parameters; this lets it sit wherever a [`Params`] is expected.
impl<T: Float> Params<T> for Dropout {
    type Gradients = ();

    const PARAM_COUNT: usize = 0;

    fn zero_gradients(&self) {}

    fn visit_params(&self, _: &ParamPath<'_>, _: &mut dyn FnMut(Param<'_, T>)) {}

    fn visit_params_mut(&mut self, _: &ParamPath<'_>, _: &mut dyn FnMut(ParamMut<'_, T>)) {}

    fn visit_params_with_grads(
        &mut self,
        _: &(),
        _: &ParamPath<'_>,
        _: &mut dyn FnMut(ParamMut<'_, T>, &[T]),
    ) {
    }

    fn visit_grads(_: &(), _: &mut dyn FnMut(&[T])) {}

    fn visit_rngs(&mut self, path: &ParamPath<'_>, f: &mut dyn FnMut(ParamPath<'_>, &mut SeededRng)) {
        f(*path, &mut self.rng);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gradcheck::{assert_close, numeric_grad};

    fn train<const N: usize>(
        d: &mut Dropout,
        x: &Batch<f64, N>,
    ) -> (Batch<f64, N>, DropoutWorkspace<f64, N>) {
        let mut y = Batch::zeros(0);
        let mut ws = DropoutWorkspace::default();
        d.forward_train(x, &mut y, &mut ws);
        (y, ws)
    }

    #[test]
    fn zeroes_about_p_and_scales_the_rest() {
        let mut d = Dropout::new(0.3, 11).unwrap();
        let x = Batch::<f64, 100>::from_fn(1000, |i, j| 1.0 + (i + j) as f64 * 0.001);
        let (y, ws) = train(&mut d, &x);
        let zeroed = y.iter().filter(|&&v| v == 0.0).count() as f64 / y.len() as f64;
        // 100 000 Bernoulli(0.3) draws: the standard deviation of the fraction is 0.0015.
        assert!((zeroed - 0.3).abs() < 0.01, "{zeroed}");
        for ((&yi, &xi), &m) in y.iter().zip(x.iter()).zip(ws.mask().iter()) {
            if yi != 0.0 {
                assert_eq!(m, 1.0 / 0.7);
                assert!((yi - xi / 0.7).abs() < 1e-15);
            } else {
                assert_eq!(m, 0.0);
            }
        }
        // The mean is preserved in expectation.
        let ratio = y.sum() / x.sum();
        assert!((ratio - 1.0).abs() < 0.02, "{ratio}");
    }

    #[test]
    fn evaluation_is_the_identity() {
        let d = Dropout::new(0.5, 1).unwrap();
        let x = Batch::<f32, 3>::from_column_slice(&[1.0, -2.0, 3.0, f32::NAN, 5.0, 6.0]);
        let mut y = Batch::zeros(0);
        d.forward(&x, &mut y);
        assert_eq!(&y.as_slice()[..3], &x.as_slice()[..3]);
        assert!(y[(0, 1)].is_nan());
        assert_eq!(format!("{d:?}"), "Dropout(p = 0.5)");
    }

    #[test]
    fn p_zero_trains_as_the_identity() {
        let mut d = Dropout::new(0.0, 1).unwrap();
        let x = Batch::<f64, 4>::from_fn(3, |i, j| (i * 3 + j) as f64 - 4.0);
        let (y, ws) = train(&mut d, &x);
        assert_eq!(y, x);
        assert!(ws.mask().iter().all(|&m| m == 1.0));
    }

    #[test]
    fn same_seed_same_mask_and_the_generator_advances() {
        let x = Batch::<f64, 16>::from_element(8, 1.0);
        let (mut a, mut b) = (Dropout::new(0.5, 42).unwrap(), Dropout::new(0.5, 42).unwrap());
        let (ya, _) = train(&mut a, &x);
        let (yb, _) = train(&mut b, &x);
        assert_eq!(ya, yb);
        // A clone carries the generator's state.
        let mut c = a.clone();
        let (ya2, _) = train(&mut a, &x);
        let (yc2, _) = train(&mut c, &x);
        assert_eq!(ya2, yc2);
        assert_ne!(ya, ya2, "a second pass draws a new mask");
        let (yd, _) = train(&mut Dropout::new(0.5, 43).unwrap(), &x);
        assert_ne!(ya, yd);
        // Restoring a saved generator replays the masks.
        let saved = b.rng().clone();
        let (yb2, _) = train(&mut b, &x);
        *b.rng_mut() = saved;
        let (yb3, _) = train(&mut b, &x);
        assert_eq!(yb2, yb3);
    }

    #[test]
    fn p_outside_0_1_is_an_error() {
        for p in [1.0, -0.1, f64::NAN, f64::INFINITY] {
            let e = Dropout::new(p, 0).unwrap_err();
            assert!(e.to_string().contains("p must lie in [0, 1)"), "{e}");
        }
    }

    #[test]
    fn backward_with_a_fixed_mask_matches_finite_differences() {
        let mut d = Dropout::new(0.4, 5).unwrap();
        let x = Batch::<f64, 5>::from_fn(4, |i, j| ((i * 4 + j) as f64 * 0.37).sin());
        let (_, drawn) = train(&mut d, &x);
        let mask = drawn.mask().clone();
        assert!(mask.iter().any(|&m| m == 0.0) && mask.iter().any(|&m| m != 0.0));
        let c = Batch::<f64, 5>::from_fn(4, |i, j| ((i + 2 * j) as f64 * 0.61).cos());
        let mut ws = DropoutWorkspace::from_mask(mask.clone());
        let mut dx = Batch::zeros(0);
        let y = x.component_mul(&mask);
        Layer::<f64, 5, 5>::backward(&d, &x, &y, &c, &mut ws, &mut (), Some(&mut dx));
        let num = numeric_grad(x.as_slice(), |xs| {
            Batch::<f64, 5>::from_column_slice(xs).component_mul(&mask).component_mul(&c).sum()
        });
        assert_close(dx.as_slice(), &num, 1e-7, "dropout input");
    }

    #[test]
    fn a_second_step_with_the_same_batch_reuses_every_buffer() {
        let mut d = Dropout::new(0.2, 3).unwrap();
        let x = Batch::<f32, 12>::from_element(4, 1.0);
        let (mut y, mut dx) = (Batch::zeros(0), Batch::zeros(0));
        let mut ws = DropoutWorkspace::default();
        d.forward_train(&x, &mut y, &mut ws);
        Layer::<f32, 12, 12>::backward(&d, &x, &y, &x, &mut ws, &mut (), Some(&mut dx));
        let ptrs = (ws.mask.as_ptr(), y.as_ptr(), dx.as_ptr());
        d.forward_train(&x, &mut y, &mut ws);
        Layer::<f32, 12, 12>::backward(&d, &x, &y, &x, &mut ws, &mut (), Some(&mut dx));
        assert_eq!(ptrs, (ws.mask.as_ptr(), y.as_ptr(), dx.as_ptr()));
    }

    #[test]
    fn has_no_parameters() {
        let d = Dropout::new(0.1, 0).unwrap();
        let mut seen = 0;
        Params::<f64>::visit_params(&d, &ParamPath::ROOT, &mut |_| seen += 1);
        assert_eq!(seen, 0);
        assert_eq!(<Dropout as Params<f32>>::PARAM_COUNT, 0);
    }
}
