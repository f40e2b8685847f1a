//! Layer normalisation over each sample's features: PyTorch's `nn.LayerNorm`
//! with `normalized_shape` the sample's whole shape.

use super::Layer;
use crate::error::{Error, Result};
use crate::float::Float;
use crate::kernels::layer_norm::{self, Keep};
use crate::kernels::Isa;
use crate::params::{Param, ParamMut, ParamPath, Params};
use crate::tensor::{ensure_batch, heap_clone, heap_zeros, Batch, HeapMatrix};
use std::fmt;

/// Layer normalisation of a sample with `N` features: each sample is
/// normalised with the mean and the *biased* variance of all its `N` values,
/// then scaled and shifted element-wise: `y = (x − mean)/sqrt(var + eps) ⊙ γ + β`.
///
/// Like `nn.LayerNorm(normalized_shape = shape)` where `shape` is the sample's
/// full shape (`[F]` or `[C, H, W]`): `weight` (γ, starts at 1) and `bias`
/// (β, starts at 0) hold `N` values each, reported with that shape. Training
/// and evaluation compute the same thing; the training pass also keeps `x̂` and
/// `1/σ` per sample for the backward pass.
pub struct LayerNorm<T: Float, const N: usize> {
    /// γ: the element-wise scale, PyTorch's `weight`, row-major over [`LayerNorm::shape`].
    pub weight: HeapMatrix<T, N, 1>,
    /// β: the element-wise shift, PyTorch's `bias`, row-major over [`LayerNorm::shape`].
    pub bias: HeapMatrix<T, N, 1>,
    /// Added to the variance before the square root (PyTorch's `eps`, default 1e-5).
    pub eps: f64,
    shape: Vec<usize>,
}

/// The gradient of a loss with respect to a [`LayerNorm`] layer's parameters.
pub struct LayerNormGrad<T: Float, const N: usize> {
    /// Shaped like [`LayerNorm::weight`].
    pub weight: HeapMatrix<T, N, 1>,
    /// Shaped like [`LayerNorm::bias`].
    pub bias: HeapMatrix<T, N, 1>,
}

/// What a [`LayerNorm`] training pass keeps for its backward pass: the
/// normalised input `x̂` and `1/σ` per sample. Resized only when the batch
/// size changes.
pub struct LayerNormWorkspace<T: Float, const N: usize> {
    x_hat: Batch<T, N>,
    inv_std: Vec<T>,
}

impl<T: Float, const N: usize> LayerNormWorkspace<T, N> {
    /// The normalised input `x̂ = (x − mean)/σ` of the last training pass.
    pub fn x_hat(&self) -> &Batch<T, N> {
        &self.x_hat
    }

    /// `1/σ = 1/sqrt(var + eps)` per sample, from the last training pass.
    pub fn inv_std(&self) -> &[T] {
        &self.inv_std
    }
}

impl<T: Float, const N: usize> Default for LayerNormWorkspace<T, N> {
    fn default() -> Self {
        LayerNormWorkspace { x_hat: Batch::zeros(0), inv_std: Vec::new() }
    }
}

impl<T: Float, const N: usize> fmt::Debug for LayerNormWorkspace<T, N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "LayerNormWorkspace({N} features, batch {})", self.x_hat.ncols())
    }
}

impl<T: Float, const N: usize> LayerNorm<T, N> {
    /// PyTorch's default `eps`.
    pub const DEFAULT_EPS: f64 = 1e-5;

    /// A fresh layer over samples of shape `shape` (e.g. `[C, H, W]` or `[F]`):
    /// `weight` 1, `bias` 0.
    ///
    /// Errors: [`Error::InvalidConfig`] unless the product of `shape` is `N`
    /// (non-zero) and `eps` is finite and non-negative. `network!` always passes
    /// consistent values, so generated code never meets the error.
    pub fn new(shape: &[usize], eps: f64) -> Result<Self> {
        let size = shape.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d));
        if N == 0 || size != Some(N) {
            return Err(Error::InvalidConfig(format!(
                "LayerNorm: shape {shape:?} does not hold {N} features"
            )));
        }
        if !(eps.is_finite() && eps >= 0.0) {
            return Err(Error::InvalidConfig(format!(
                "LayerNorm: eps must be finite and non-negative, got {eps}"
            )));
        }
        let mut weight: HeapMatrix<T, N, 1> = heap_zeros();
        weight.fill(T::one());
        Ok(LayerNorm { weight, bias: heap_zeros(), eps, shape: shape.to_vec() })
    }

    /// The sample shape the parameters are reported with (PyTorch's `normalized_shape`).
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// Normalises every sample of `x` into `y`, writing `x̂` and `1/σ` too when given
    /// (the vector kernels of [`crate::kernels::layer_norm`] in f32).
    fn normalize(&self, x: &Batch<T, N>, y: &mut Batch<T, N>, keep: Option<&mut LayerNormWorkspace<T, N>>) {
        let keep = keep.map(|ws| Keep { x_hat: ws.x_hat.as_mut_slice(), inv_std: &mut ws.inv_std[..] });
        let (gamma, beta) = (self.weight.as_slice(), self.bias.as_slice());
        layer_norm::forward(
            Isa::active(),
            x.as_slice(),
            gamma,
            beta,
            T::cast(self.eps),
            y.as_mut_slice(),
            keep,
        );
    }
}

impl<T: Float, const N: usize> Layer<T, N, N> for LayerNorm<T, N> {
    type Workspace = LayerNormWorkspace<T, N>;
    type Gradients = LayerNormGrad<T, N>;

    fn forward(&self, x: &Batch<T, N>, y: &mut Batch<T, N>) {
        ensure_batch(y, x.ncols());
        self.normalize(x, y, None);
    }

    fn forward_train(&mut self, x: &Batch<T, N>, y: &mut Batch<T, N>, ws: &mut Self::Workspace) {
        let batch = x.ncols();
        ensure_batch(y, batch);
        ensure_batch(&mut ws.x_hat, batch);
        if ws.inv_std.len() != batch {
            ws.inv_std = vec![T::zero(); batch];
        }
        self.normalize(x, y, Some(ws));
    }

    /// Per sample, with `g = dy ⊙ γ`: `dx = (g − mean(g) − x̂·mean(g ⊙ x̂))/σ`;
    /// over the batch, `dγ = Σ dy ⊙ x̂` and `dβ = Σ dy`.
    fn backward(
        &self,
        x: &Batch<T, N>,
        _y: &Batch<T, N>,
        dy: &Batch<T, N>,
        ws: &mut Self::Workspace,
        grads: &mut LayerNormGrad<T, N>,
        dx: Option<&mut Batch<T, N>>,
    ) {
        let dx = dx.map(|dx| {
            ensure_batch(dx, x.ncols());
            dx.as_mut_slice()
        });
        let (dw, db) = (grads.weight.as_mut_slice(), grads.bias.as_mut_slice());
        let (x_hat, inv_std, gamma) = (ws.x_hat.as_slice(), &ws.inv_std[..], self.weight.as_slice());
        layer_norm::backward(Isa::active(), dy.as_slice(), x_hat, inv_std, gamma, dw, db, dx);
    }
}

impl<T: Float, const N: usize> Clone for LayerNorm<T, N> {
    fn clone(&self) -> Self {
        LayerNorm {
            weight: heap_clone(&self.weight),
            bias: heap_clone(&self.bias),
            eps: self.eps,
            shape: self.shape.clone(),
        }
    }
}

impl<T: Float, const N: usize> fmt::Debug for LayerNorm<T, N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "LayerNorm({:?}, eps = {})", self.shape, self.eps)
    }
}

impl<T: Float, const N: usize> Clone for LayerNormGrad<T, N> {
    fn clone(&self) -> Self {
        LayerNormGrad { weight: heap_clone(&self.weight), bias: heap_clone(&self.bias) }
    }
}

impl<T: Float, const N: usize> fmt::Debug for LayerNormGrad<T, N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "LayerNormGrad({N} features)")
    }
}

impl<T: Float, const N: usize> Params<T> for LayerNorm<T, N> {
    type Gradients = LayerNormGrad<T, N>;

    const PARAM_COUNT: usize = 2 * N;

    fn zero_gradients(&self) -> Self::Gradients {
        LayerNormGrad { weight: heap_zeros(), bias: heap_zeros() }
    }

    fn visit_params(&self, path: &ParamPath<'_>, f: &mut dyn FnMut(Param<'_, T>)) {
        f(Param { name: path.join("weight"), shape: &self.shape, value: self.weight.as_slice() });
        f(Param { name: path.join("bias"), shape: &self.shape, value: self.bias.as_slice() });
    }

    fn visit_params_mut(&mut self, path: &ParamPath<'_>, f: &mut dyn FnMut(ParamMut<'_, T>)) {
        f(ParamMut { name: path.join("weight"), shape: &self.shape, value: self.weight.as_mut_slice() });
        f(ParamMut { name: path.join("bias"), shape: &self.shape, value: self.bias.as_mut_slice() });
    }

    fn visit_params_with_grads(
        &mut self,
        grads: &Self::Gradients,
        path: &ParamPath<'_>,
        f: &mut dyn FnMut(ParamMut<'_, T>, &[T]),
    ) {
        let w = ParamMut { name: path.join("weight"), shape: &self.shape, value: self.weight.as_mut_slice() };
        f(w, grads.weight.as_slice());
        let b = ParamMut { name: path.join("bias"), shape: &self.shape, value: self.bias.as_mut_slice() };
        f(b, grads.bias.as_slice());
    }

    fn visit_grads(grads: &Self::Gradients, f: &mut dyn FnMut(&[T])) {
        f(grads.weight.as_slice());
        f(grads.bias.as_slice());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gradcheck::{assert_close, numeric_grad};

    #[test]
    fn normalises_each_sample_on_hand_checked_values() {
        let mut ln = LayerNorm::<f64, 4>::new(&[2, 2], 0.0).unwrap();
        ln.weight.as_mut_slice().copy_from_slice(&[1.0, 2.0, 3.0, 4.0]);
        ln.bias.as_mut_slice().copy_from_slice(&[0.0, 0.0, 0.0, 1.0]);
        // Sample 0: mean 2, biased var 1, x̂ = [−1, 1, −1, 1].
        // Sample 1: mean 5, biased var 25, x̂ = [1, 1, −1, −1].
        let x = Batch::<f64, 4>::from_column_slice(&[1.0, 3.0, 1.0, 3.0, 10.0, 10.0, 0.0, 0.0]);
        let mut y = Batch::zeros(0);
        ln.forward(&x, &mut y);
        assert_close(y.as_slice(), &[-1.0, 2.0, -3.0, 5.0, 1.0, 2.0, -3.0, -3.0], 1e-15, "layer norm");
        let mut ws = LayerNormWorkspace::default();
        let mut y_train = Batch::zeros(0);
        ln.forward_train(&x, &mut y_train, &mut ws);
        assert_eq!(y, y_train);
        assert_close(ws.inv_std(), &[1.0, 0.2], 1e-15, "1/σ");
        assert_close(ws.x_hat().as_slice(), &[-1.0, 1.0, -1.0, 1.0, 1.0, 1.0, -1.0, -1.0], 1e-15, "x̂");
    }

    #[test]
    fn a_fresh_layer_uses_eps_like_pytorch() {
        let ln = LayerNorm::<f64, 2>::new(&[2], LayerNorm::<f64, 2>::DEFAULT_EPS).unwrap();
        let x = Batch::<f64, 2>::from_column_slice(&[1.0, 3.0]);
        let mut y = Batch::zeros(0);
        ln.forward(&x, &mut y);
        let h = 1.0 / (1.0f64 + 1e-5).sqrt();
        assert_close(y.as_slice(), &[-h, h], 1e-15, "eps");
        assert_eq!(format!("{ln:?}"), "LayerNorm([2], eps = 0.00001)");
    }

    #[test]
    fn an_inconsistent_shape_or_a_bad_eps_is_an_error() {
        let e = LayerNorm::<f32, 6>::new(&[2, 2], 1e-5).unwrap_err();
        assert_eq!(e.to_string(), "invalid setting: LayerNorm: shape [2, 2] does not hold 6 features");
        let e = LayerNorm::<f32, 6>::new(&[usize::MAX, 2], 1e-5).unwrap_err();
        assert!(e.to_string().contains("does not hold 6 features"), "{e}");
        for eps in [-1.0, f64::NAN, f64::INFINITY] {
            let e = LayerNorm::<f32, 6>::new(&[6], eps).unwrap_err();
            assert!(e.to_string().contains("eps must be finite and non-negative"), "{e}");
        }
    }

    #[test]
    fn backward_matches_finite_differences() {
        let mut ln = LayerNorm::<f64, 6>::new(&[2, 3], 1e-3).unwrap();
        ln.weight.iter_mut().enumerate().for_each(|(i, w)| *w = 0.5 + 0.7 * (i as f64 * 1.3).sin());
        ln.bias.iter_mut().enumerate().for_each(|(i, b)| *b = (i as f64 * 0.9).cos());
        let x = Batch::<f64, 6>::from_fn(3, |i, j| ((i * 7 + j * 3) as f64 * 0.37).sin() * 2.0 + j as f64);
        let c = Batch::<f64, 6>::from_fn(3, |i, j| ((i + 2 * j) as f64 * 0.61).cos());
        let loss = |ln: &LayerNorm<f64, 6>, x: &Batch<f64, 6>| {
            let mut y = Batch::zeros(0);
            ln.forward(x, &mut y);
            y.component_mul(&c).sum()
        };
        let mut y = Batch::zeros(0);
        let mut ws = LayerNormWorkspace::default();
        ln.forward_train(&x, &mut y, &mut ws);
        let mut g = ln.zero_gradients();
        g.weight.fill(f64::NAN); // overwritten, not accumulated
        let mut dx = Batch::zeros(0);
        ln.backward(&x, &y, &c, &mut ws, &mut g, Some(&mut dx));

        let num_w = numeric_grad(ln.weight.as_slice(), |w| {
            let mut p = ln.clone();
            p.weight.as_mut_slice().copy_from_slice(w);
            loss(&p, &x)
        });
        assert_close(g.weight.as_slice(), &num_w, 1e-7, "ln weight");
        let num_b = numeric_grad(ln.bias.as_slice(), |b| {
            let mut p = ln.clone();
            p.bias.as_mut_slice().copy_from_slice(b);
            loss(&p, &x)
        });
        assert_close(g.bias.as_slice(), &num_b, 1e-7, "ln bias");
        let num_x = numeric_grad(x.as_slice(), |xs| loss(&ln, &Batch::from_column_slice(xs)));
        assert_close(dx.as_slice(), &num_x, 1e-7, "ln input");
    }

    #[test]
    fn a_second_step_with_the_same_batch_reuses_every_buffer() {
        let mut ln = LayerNorm::<f32, 12>::new(&[3, 2, 2], 1e-5).unwrap();
        let x = Batch::<f32, 12>::from_fn(4, |i, j| (i * 4 + j) as f32 * 0.1);
        let (mut y, mut dx) = (Batch::zeros(0), Batch::zeros(0));
        let mut ws = LayerNormWorkspace::default();
        let mut g = ln.zero_gradients();
        ln.forward_train(&x, &mut y, &mut ws);
        ln.backward(&x, &y, &x, &mut ws, &mut g, Some(&mut dx));
        let ptrs = (ws.x_hat.as_ptr(), ws.inv_std.as_ptr(), y.as_ptr(), dx.as_ptr());
        ln.forward_train(&x, &mut y, &mut ws);
        ln.backward(&x, &y, &x, &mut ws, &mut g, Some(&mut dx));
        assert_eq!(ptrs, (ws.x_hat.as_ptr(), ws.inv_std.as_ptr(), y.as_ptr(), dx.as_ptr()));
    }

    #[test]
    fn params_are_reported_with_the_sample_shape() {
        let mut ln = LayerNorm::<f64, 12>::new(&[3, 2, 2], 1e-5).unwrap();
        let root = ParamPath::ROOT.join("ln");
        let mut seen = Vec::new();
        ln.visit_params(&root, &mut |p| seen.push((p.name.to_string(), p.shape.to_vec(), p.value.len())));
        assert_eq!(seen, [("ln.weight".into(), vec![3, 2, 2], 12), ("ln.bias".into(), vec![3, 2, 2], 12)]);
        let mut buffers = 0;
        ln.visit_buffers(&root, &mut |_| buffers += 1);
        assert_eq!(buffers, 0);
        let g = ln.zero_gradients();
        let mut names = Vec::new();
        ln.visit_params_with_grads(&g, &root, &mut |p, gr| names.push((p.name.to_string(), gr.len())));
        assert_eq!(names, [("ln.weight".to_string(), 12), ("ln.bias".to_string(), 12)]);
        assert_eq!(LayerNorm::<f64, 12>::PARAM_COUNT, 24);
        assert_eq!(ln.shape(), &[3, 2, 2]);
    }
}
