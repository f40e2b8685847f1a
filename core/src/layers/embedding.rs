//! Token embeddings: PyTorch's `nn.Embedding(V, D)` over a sample of `STEPS` token ids.

use super::Layer;
use crate::error::{Error, Result};
use crate::float::Float;
use crate::init::{fill_normal, SeededRng};
use crate::params::{Param, ParamMut, ParamPath, Params};
use crate::tensor::{ensure_batch, heap_clone, heap_zeros, Batch, HeapMatrix};
use std::fmt;

/// A table of `V` learned vectors of `D` features: token id `i` becomes row
/// `i`, so `[STEPS]` ids become `[STEPS, D]`, `y[t] = W[x[t]]`.
///
/// Token ids travel in the network's input batch as whole numbers (exact in
/// f32 up to 2²⁴). [`Embedding::check_ids`] refuses anything else, naming the
/// value, its place and `V`; the trainer runs it over a dataset before the
/// first step. A pass given an id that is not one (no check ran) writes NaN
/// for that step and reads nothing out of bounds.
///
/// `weight` is PyTorch's `[V, D]`, row-major, drawn from N(0, 1) as
/// `nn.Embedding` does. The ids get no gradient.
pub struct Embedding<T: Float, const STEPS: usize, const V: usize, const D: usize> {
    /// The table, one token's vector per column: PyTorch's `weight` `[V, D]`.
    pub weight: HeapMatrix<T, D, V>,
    shape: [usize; 2],
}

/// The gradient of a loss with respect to an [`Embedding`]'s table.
pub struct EmbeddingGrad<T: Float, const V: usize, const D: usize> {
    /// Shaped like [`Embedding::weight`].
    pub weight: HeapMatrix<T, D, V>,
}

impl<T: Float, const STEPS: usize, const V: usize, const D: usize> Embedding<T, STEPS, V, D> {
    /// A table of zeros, to be filled by loading.
    pub fn zeros() -> Self {
        Embedding { weight: heap_zeros(), shape: [V, D] }
    }

    /// A table drawn from N(0, 1), as PyTorch's `nn.Embedding`.
    pub fn new(rng: &mut SeededRng) -> Self {
        let mut layer = Self::zeros();
        fill_normal(layer.weight.as_mut_slice(), 1.0, rng);
        layer
    }

    /// The id at `value`, if it is one: a whole number below `V`.
    pub(super) fn id(value: T) -> Option<usize> {
        let v = value.as_f64();
        (v >= 0.0 && v < V as f64 && v.fract() == 0.0).then_some(v as usize)
    }

    /// Refuses the first value of `x` that is not a token id below `V`,
    /// naming it, its sample and step, and the vocabulary's size.
    pub fn check_ids(x: &Batch<T, STEPS>) -> Result<()> {
        match x.iter().position(|&v| Self::id(v).is_none()) {
            None => Ok(()),
            Some(i) => Err(Error::TokenOutOfRange {
                token: x[i].as_f64(),
                sample: i / STEPS,
                step: i % STEPS,
                vocab: V,
            }),
        }
    }

    /// `y[t] = W[x[t]]` for every step of every sample.
    fn lookup<const OUT: usize>(&self, x: &Batch<T, STEPS>, y: &mut Batch<T, OUT>) {
        const { assert!(OUT == STEPS * D, "an embedding gives [STEPS, D]") };
        ensure_batch(y, x.ncols());
        let table = self.weight.as_slice();
        for (&id, row) in x.iter().zip(y.as_mut_slice().chunks_exact_mut(D)) {
            match Self::id(id) {
                Some(i) => row.copy_from_slice(&table[i * D..(i + 1) * D]),
                None => row.fill(T::cast(f64::NAN)),
            }
        }
    }
}

impl<T: Float, const STEPS: usize, const V: usize, const D: usize, const OUT: usize> Layer<T, STEPS, OUT>
    for Embedding<T, STEPS, V, D>
{
    type Workspace = ();
    type Gradients = EmbeddingGrad<T, V, D>;

    fn forward(&self, x: &Batch<T, STEPS>, y: &mut Batch<T, OUT>) {
        self.lookup(x, y)
    }

    fn forward_train(&mut self, x: &Batch<T, STEPS>, y: &mut Batch<T, OUT>, _: &mut ()) {
        self.lookup(x, y)
    }

    /// `dW[x[t]] += dy[t]` over every step of every sample; the ids' gradient,
    /// if asked for, is zero (they are not continuous).
    fn backward(
        &self,
        x: &Batch<T, STEPS>,
        _y: &Batch<T, OUT>,
        dy: &Batch<T, OUT>,
        _: &mut (),
        grads: &mut EmbeddingGrad<T, V, D>,
        dx: Option<&mut Batch<T, STEPS>>,
    ) {
        grads.weight.fill(T::zero());
        let table = grads.weight.as_mut_slice();
        for (&id, g) in x.iter().zip(dy.as_slice().chunks_exact(D)) {
            if let Some(i) = Self::id(id) {
                table[i * D..(i + 1) * D].iter_mut().zip(g).for_each(|(w, &g)| *w += g);
            }
        }
        if let Some(dx) = dx {
            ensure_batch(dx, x.ncols());
            dx.fill(T::zero());
        }
    }
}

impl<T: Float, const STEPS: usize, const V: usize, const D: usize> Clone for Embedding<T, STEPS, V, D> {
    fn clone(&self) -> Self {
        Embedding { weight: heap_clone(&self.weight), shape: self.shape }
    }
}

impl<T: Float, const STEPS: usize, const V: usize, const D: usize> fmt::Debug for Embedding<T, STEPS, V, D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Embedding({V} -> {D}, {STEPS} steps)")
    }
}

impl<T: Float, const V: usize, const D: usize> fmt::Debug for EmbeddingGrad<T, V, D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EmbeddingGrad({V} -> {D})")
    }
}

impl<T: Float, const STEPS: usize, const V: usize, const D: usize> Params<T> for Embedding<T, STEPS, V, D> {
    type Gradients = EmbeddingGrad<T, V, D>;

    const PARAM_COUNT: usize = V * D;

    fn zero_gradients(&self) -> Self::Gradients {
        EmbeddingGrad { weight: heap_zeros() }
    }

    fn visit_params(&self, path: &ParamPath<'_>, f: &mut dyn FnMut(Param<'_, T>)) {
        f(Param { name: path.join("weight"), shape: &self.shape, value: self.weight.as_slice() });
    }

    fn visit_params_mut(&mut self, path: &ParamPath<'_>, f: &mut dyn FnMut(ParamMut<'_, T>)) {
        f(ParamMut { name: path.join("weight"), shape: &self.shape, value: self.weight.as_mut_slice() });
    }

    fn visit_params_with_grads(
        &mut self,
        grads: &Self::Gradients,
        path: &ParamPath<'_>,
        f: &mut dyn FnMut(ParamMut<'_, T>, &[T]),
    ) {
        let w = ParamMut { name: path.join("weight"), shape: &self.shape, value: self.weight.as_mut_slice() };
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

    type Emb = Embedding<f64, 3, 5, 2>;

    fn table() -> Emb {
        let mut e = Emb::zeros();
        e.weight.as_mut_slice().iter_mut().enumerate().for_each(|(i, w)| *w = i as f64 * 0.5 - 1.0);
        e
    }

    #[test]
    fn looks_up_rows_of_the_pytorch_table() {
        let e = table();
        let x = Batch::<f64, 3>::from_column_slice(&[4.0, 0.0, 4.0, 2.0, 2.0, 1.0]);
        let mut y = Batch::<f64, 6>::zeros(0);
        Layer::forward(&e, &x, &mut y);
        // Row i of the [5, 2] table is (i − 1, i − 0.5).
        let row = |i: f64| [i - 1.0, i - 0.5];
        let expected: Vec<f64> = [4.0, 0.0, 4.0, 2.0, 2.0, 1.0].iter().flat_map(|&i| row(i)).collect();
        assert_eq!(y.as_slice(), &expected[..]);
        let mut seen = Vec::new();
        e.visit_params(&ParamPath::ROOT, &mut |p| seen.push((p.name.to_string(), p.shape.to_vec())));
        assert_eq!(seen, [("weight".to_string(), vec![5, 2])]);
    }

    #[test]
    fn gradient_adds_each_steps_output_gradient_to_its_row() {
        let mut e = table();
        let x = Batch::<f64, 3>::from_column_slice(&[4.0, 0.0, 4.0, 2.0, 2.0, 1.0]);
        let dy = Batch::<f64, 6>::from_fn(2, |i, j| (i + 6 * j) as f64 * 0.1 + 0.3);
        let mut y = Batch::zeros(0);
        e.forward_train(&x, &mut y, &mut ());
        let mut grads = e.zero_gradients();
        let mut dx = Batch::zeros(0);
        e.backward(&x, &y, &dy, &mut (), &mut grads, Some(&mut dx));
        let loss = |w: &[f64]| {
            let mut e = Emb::zeros();
            e.weight.as_mut_slice().copy_from_slice(w);
            let mut y = Batch::<f64, 6>::zeros(0);
            Layer::forward(&e, &x, &mut y);
            y.iter().zip(dy.iter()).map(|(a, b)| a * b).sum::<f64>()
        };
        let numeric = numeric_grad(e.weight.as_slice(), loss);
        assert_close(grads.weight.as_slice(), &numeric, 1e-8, "embedding gradient");
        assert!(dx.iter().all(|&v| v == 0.0));
    }

    #[test]
    fn refuses_ids_out_of_range_or_not_whole() {
        for (bad, shown) in [(5.0, "5"), (-1.0, "-1"), (2.5, "2.5"), (f64::NAN, "NaN")] {
            let x = Batch::<f64, 3>::from_column_slice(&[1.0, 2.0, 3.0, 0.0, bad, 1.0]);
            let err = Emb::check_ids(&x).unwrap_err();
            assert!(
                matches!(err, Error::TokenOutOfRange { sample: 1, step: 1, vocab: 5, .. }),
                "{bad}: {err:?}"
            );
            assert!(err.to_string().contains(shown), "{err}");
            // Unchecked, the pass writes NaN for that step and reads nothing out of bounds.
            let mut y = Batch::<f64, 6>::zeros(0);
            Layer::forward(&table(), &x, &mut y);
            assert!(y.as_slice()[8..10].iter().all(|v| v.is_nan()));
            assert!(y.as_slice()[..8].iter().all(|v| v.is_finite()));
        }
        assert!(Emb::check_ids(&Batch::from_column_slice(&[0.0, 4.0, 3.0])).is_ok());
    }

    #[test]
    fn starts_from_a_standard_normal() {
        let e = Embedding::<f64, 1, 100, 50>::new(&mut seeded_rng(3));
        let w = e.weight.as_slice();
        let mean = w.iter().sum::<f64>() / w.len() as f64;
        let var = w.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / w.len() as f64;
        assert!(mean.abs() < 0.05 && (var - 1.0).abs() < 0.05, "{mean} {var}");
    }
}
