//! The last step of a sequence, `[STEPS, F]` to `[F]` (PyTorch's `x[:, -1, :]`).

use super::Layer;
use crate::float::Float;
use crate::tensor::{ensure_batch, Batch};

/// The last step of a `[STEPS, F]` sample: `y = x[STEPS − 1, ..]`. Its
/// gradient flows only to that step; the others get zero.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Last<const STEPS: usize, const F: usize>;

impl<const STEPS: usize, const F: usize> Last<STEPS, F> {
    /// The last of `STEPS` steps of `F` features.
    pub const fn new() -> Self {
        Last
    }
}

impl<T: Float, const STEPS: usize, const F: usize, const IN: usize, const OUT: usize> Layer<T, IN, OUT>
    for Last<STEPS, F>
{
    type Workspace = ();
    type Gradients = ();

    fn forward(&self, x: &Batch<T, IN>, y: &mut Batch<T, OUT>) {
        const { assert!(IN == STEPS * F && OUT == F && STEPS >= 1, "Last: sizes disagree") };
        ensure_batch(y, x.ncols());
        for (xs, ys) in x.as_slice().chunks_exact(IN).zip(y.as_mut_slice().chunks_exact_mut(OUT)) {
            ys.copy_from_slice(&xs[IN - F..]);
        }
    }

    fn forward_train(&mut self, x: &Batch<T, IN>, y: &mut Batch<T, OUT>, _: &mut ()) {
        Layer::<T, IN, OUT>::forward(self, x, y)
    }

    fn backward(
        &self,
        x: &Batch<T, IN>,
        _y: &Batch<T, OUT>,
        dy: &Batch<T, OUT>,
        _: &mut (),
        _: &mut (),
        dx: Option<&mut Batch<T, IN>>,
    ) {
        const { assert!(IN == STEPS * F && OUT == F && STEPS >= 1, "Last: sizes disagree") };
        let Some(dx) = dx else { return };
        ensure_batch(dx, x.ncols());
        for (dxs, dys) in dx.as_mut_slice().chunks_exact_mut(IN).zip(dy.as_slice().chunks_exact(OUT)) {
            let (earlier, last) = dxs.split_at_mut(IN - F);
            earlier.fill(T::zero());
            last.copy_from_slice(dys);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gradcheck::assert_close;
    use crate::layers::seq_check::{check_input, wavy};

    #[test]
    fn takes_the_last_step_and_sends_its_gradient_back_there() {
        let mut last = Last::<3, 2>::new();
        // Two samples of steps [1, 2], [3, 4], [5, 6] and [−1, −2], [−3, −4], [−5, −6].
        let x = Batch::<f64, 6>::from_fn(2, |i, j| if j == 0 { (i + 1) as f64 } else { -((i + 1) as f64) });
        let mut y = Batch::<f64, 2>::zeros(0);
        Layer::forward(&last, &x, &mut y);
        assert_eq!(y.as_slice(), &[5.0, 6.0, -5.0, -6.0]);
        let dy = Batch::<f64, 2>::from_column_slice(&[1.0, 2.0, 3.0, 4.0]);
        let mut dx = Batch::from_element(2, f64::NAN);
        last.forward_train(&x, &mut y, &mut ());
        last.backward(&x, &y, &dy, &mut (), &mut (), Some(&mut dx));
        assert_eq!(dx.as_slice(), &[0.0, 0.0, 0.0, 0.0, 1.0, 2.0, 0.0, 0.0, 0.0, 0.0, 3.0, 4.0]);
    }

    #[test]
    fn gradient_matches_finite_differences_and_f32_agrees() {
        check_input::<_, 12, 3>(&mut Last::<4, 3>::new(), &wavy(3, 1), &mut (), "last");
        let x = wavy::<12>(2, 2);
        let (mut y64, mut y32) = (Batch::<f64, 3>::zeros(0), Batch::<f32, 3>::zeros(0));
        Layer::forward(&Last::<4, 3>, &x, &mut y64);
        Layer::forward(&Last::<4, 3>, &x.map(|v| v as f32), &mut y32);
        assert_close(y32.as_slice(), y64.as_slice(), 1e-7, "f32 last");
    }
}
