//! A learned positional embedding: a `[STEPS, D]` table added to every sample
//! (GPT-2's `wpe` over all positions of a fixed-length window).

use super::Layer;
use crate::float::Float;
use crate::init::{Init, SeededRng};
use crate::params::{Param, ParamMut, ParamPath, Params};
use crate::tensor::{ensure_batch, heap_clone, heap_zeros, Batch, HeapMatrix};
use rand_distr::{Distribution, StandardNormal};
use std::fmt;

/// `y = x + P` for a sample `x` of shape `[STEPS, D]`, with `P` a learned
/// `[STEPS, D]` table, PyTorch's `weight` (an `nn.Parameter` of that shape, or
/// `nn.Embedding(STEPS, D).weight` looked up at positions `0..STEPS`).
pub struct Positional<T: Float, const STEPS: usize, const D: usize> {
    /// `P`: column `t` is the vector added at step `t`, so the memory is
    /// row-major `[STEPS, D]`, the layout of a sample.
    pub weight: HeapMatrix<T, D, STEPS>,
}

/// The gradient of a loss with respect to a [`Positional`] table: `Σ dy` over the batch.
pub struct PositionalGrad<T: Float, const STEPS: usize, const D: usize> {
    /// Shaped like [`Positional::weight`].
    pub weight: HeapMatrix<T, D, STEPS>,
}

impl<T: Float, const STEPS: usize, const D: usize> Positional<T, STEPS, D> {
    /// The standard deviation of [`Positional::new`]'s values (GPT-2's).
    pub const INIT_STD: f64 = 0.02;

    /// A table of zeros, to be filled by loading.
    pub fn zeros() -> Self {
        Positional { weight: heap_zeros() }
    }

    /// A table drawn from N(0, 0.02²) like GPT-2's position embedding, whatever
    /// `init` says (He and Glorot scale by fan-in and fan-out, which a table
    /// added to its input does not have).
    pub fn new(init: Init, rng: &mut SeededRng) -> Self {
        let _ = init;
        let mut layer = Self::zeros();
        for w in layer.weight.iter_mut() {
            let z: f64 = StandardNormal.sample(rng);
            *w = T::cast(Self::INIT_STD * z);
        }
        layer
    }

    /// `y = x + P` for every sample.
    fn add(&self, x: &[T], y: &mut [T]) {
        let table = self.weight.as_slice();
        for (yc, xc) in y.chunks_exact_mut(STEPS * D).zip(x.chunks_exact(STEPS * D)) {
            yc.iter_mut().zip(xc).zip(table).for_each(|((y, &x), &p)| *y = x + p);
        }
    }
}

impl<T: Float, const STEPS: usize, const D: usize, const IN: usize, const OUT: usize> Layer<T, IN, OUT>
    for Positional<T, STEPS, D>
{
    type Workspace = ();
    type Gradients = PositionalGrad<T, STEPS, D>;

    fn forward(&self, x: &Batch<T, IN>, y: &mut Batch<T, OUT>) {
        const { assert!(IN == STEPS * D && OUT == IN, "Positional maps [STEPS, D] to [STEPS, D]") };
        ensure_batch(y, x.ncols());
        self.add(x.as_slice(), y.as_mut_slice());
    }

    fn forward_train(&mut self, x: &Batch<T, IN>, y: &mut Batch<T, OUT>, _: &mut ()) {
        Layer::forward(self, x, y)
    }

    /// `dP = Σ dy` over the batch, `dx = dy`.
    fn backward(
        &self,
        x: &Batch<T, IN>,
        _y: &Batch<T, OUT>,
        dy: &Batch<T, OUT>,
        _: &mut (),
        grads: &mut PositionalGrad<T, STEPS, D>,
        dx: Option<&mut Batch<T, IN>>,
    ) {
        const { assert!(IN == STEPS * D && OUT == IN, "Positional maps [STEPS, D] to [STEPS, D]") };
        let sums = grads.weight.as_mut_slice();
        sums.fill(T::zero());
        for g in dy.as_slice().chunks_exact(STEPS * D) {
            sums.iter_mut().zip(g).for_each(|(s, &g)| *s += g);
        }
        if let Some(dx) = dx {
            ensure_batch(dx, x.ncols());
            dx.as_mut_slice().copy_from_slice(dy.as_slice());
        }
    }
}

impl<T: Float, const STEPS: usize, const D: usize> Clone for Positional<T, STEPS, D> {
    fn clone(&self) -> Self {
        Positional { weight: heap_clone(&self.weight) }
    }
}

impl<T: Float, const STEPS: usize, const D: usize> fmt::Debug for Positional<T, STEPS, D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Positional([{STEPS}, {D}])")
    }
}

impl<T: Float, const STEPS: usize, const D: usize> Clone for PositionalGrad<T, STEPS, D> {
    fn clone(&self) -> Self {
        PositionalGrad { weight: heap_clone(&self.weight) }
    }
}

impl<T: Float, const STEPS: usize, const D: usize> fmt::Debug for PositionalGrad<T, STEPS, D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PositionalGrad([{STEPS}, {D}])")
    }
}

impl<T: Float, const STEPS: usize, const D: usize> Params<T> for Positional<T, STEPS, D> {
    type Gradients = PositionalGrad<T, STEPS, D>;

    const PARAM_COUNT: usize = STEPS * D;

    fn zero_gradients(&self) -> Self::Gradients {
        PositionalGrad { weight: heap_zeros() }
    }

    fn visit_params(&self, path: &ParamPath<'_>, f: &mut dyn FnMut(Param<'_, T>)) {
        f(Param { name: path.join("weight"), shape: &[STEPS, D], value: self.weight.as_slice() });
    }

    fn visit_params_mut(&mut self, path: &ParamPath<'_>, f: &mut dyn FnMut(ParamMut<'_, T>)) {
        f(ParamMut { name: path.join("weight"), shape: &[STEPS, D], value: self.weight.as_mut_slice() });
    }

    fn visit_params_with_grads(
        &mut self,
        grads: &Self::Gradients,
        path: &ParamPath<'_>,
        f: &mut dyn FnMut(ParamMut<'_, T>, &[T]),
    ) {
        let w = ParamMut { name: path.join("weight"), shape: &[STEPS, D], value: self.weight.as_mut_slice() };
        f(w, grads.weight.as_slice());
    }

    fn visit_grads(grads: &Self::Gradients, f: &mut dyn FnMut(&[T])) {
        f(grads.weight.as_slice());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gradcheck::{assert_close, numeric_grad};
    use crate::init::seeded_rng;

    #[test]
    fn adds_the_table_to_every_sample() {
        let mut pos = Positional::<f64, 2, 3>::zeros();
        pos.weight.as_mut_slice().copy_from_slice(&[1.0, 2.0, 3.0, 10.0, 20.0, 30.0]);
        let x = Batch::<f64, 6>::from_fn(2, |i, j| (i + 6 * j) as f64 * 0.5);
        let mut y = Batch::<f64, 6>::zeros(0);
        Layer::forward(&pos, &x, &mut y);
        let expected = [1.0, 2.5, 4.0, 11.5, 22.0, 32.5, 4.0, 5.5, 7.0, 14.5, 25.0, 35.5];
        assert_close(y.as_slice(), &expected, 1e-15, "x + P");
    }

    #[test]
    fn backward_matches_finite_differences() {
        let mut pos = Positional::<f64, 5, 4>::new(Init::Auto, &mut seeded_rng(3));
        let x = Batch::<f64, 20>::from_fn(3, |i, j| ((i * 5 + j * 7) as f64 * 0.31).sin());
        let r = Batch::<f64, 20>::from_fn(3, |i, j| ((i * 3 + j * 11) as f64 * 0.57).cos());
        let loss = |p: &Positional<f64, 5, 4>, x: &Batch<f64, 20>| {
            let mut y = Batch::<f64, 20>::zeros(0);
            Layer::forward(p, x, &mut y);
            y.component_mul(&r).sum()
        };
        let (mut y, mut dx) = (Batch::<f64, 20>::zeros(0), Batch::zeros(0));
        Layer::forward_train(&mut pos, &x, &mut y, &mut ());
        let mut g = pos.zero_gradients();
        g.weight.fill(f64::NAN); // overwritten, not accumulated
        Layer::backward(&pos, &x, &y, &r, &mut (), &mut g, Some(&mut dx));
        let num_w = numeric_grad(pos.weight.as_slice(), |w| {
            let mut p = pos.clone();
            p.weight.as_mut_slice().copy_from_slice(w);
            loss(&p, &x)
        });
        assert_close(g.weight.as_slice(), &num_w, 1e-8, "positional weight");
        let num_x = numeric_grad(x.as_slice(), |xs| loss(&pos, &Batch::from_column_slice(xs)));
        assert_close(dx.as_slice(), &num_x, 1e-8, "positional input");
    }

    #[test]
    fn new_draws_a_small_normal_table_from_the_seed() {
        let a = Positional::<f64, 64, 32>::new(Init::Auto, &mut seeded_rng(5));
        let b = Positional::<f64, 64, 32>::new(Init::He, &mut seeded_rng(5));
        assert_eq!(a.weight, b.weight, "the same seed gives the same table whatever the init");
        let w = a.weight.as_slice();
        let mean = w.iter().sum::<f64>() / w.len() as f64;
        let std = (w.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / w.len() as f64).sqrt();
        assert!(mean.abs() < 0.002, "{mean}");
        assert!((std / 0.02 - 1.0).abs() < 0.05, "{std}");
        assert!(Positional::<f64, 3, 2>::zeros().weight.iter().all(|&v| v == 0.0));
    }

    #[test]
    fn the_table_is_named_weight_with_shape_steps_by_features() {
        let mut pos = Positional::<f32, 5, 4>::zeros();
        let root = ParamPath::ROOT.join("pos");
        let mut seen = Vec::new();
        pos.visit_params(&root, &mut |p| seen.push((p.name.to_string(), p.shape.to_vec(), p.value.len())));
        assert_eq!(seen, [("pos.weight".to_string(), vec![5, 4], 20)]);
        let g = pos.zero_gradients();
        let mut names = Vec::new();
        pos.visit_params_with_grads(&g, &root, &mut |p, gr| names.push((p.name.to_string(), gr.len())));
        assert_eq!(names, [("pos.weight".to_string(), 20)]);
        assert_eq!(Positional::<f32, 5, 4>::PARAM_COUNT, 20);
        assert_eq!(format!("{pos:?}"), "Positional([5, 4])");
    }
}
