//! Fully connected layer: `y = W x + b`.

use super::Layer;
use crate::float::Float;
use crate::init::{Init, SeededRng};
use crate::params::{Param, ParamMut, ParamPath, Params};
use crate::quant::{Compact, CompactSlot, Weight};
use crate::tensor::{
    ensure_batch, gemm, gemm_then, heap_clone, heap_zeros, small_affine, Batch, HeapMatrix, MatRef,
    SharedSlice,
};
use nalgebra::{DMatrixView, DMatrixViewMut, Dyn};
use std::fmt;

/// A fully connected layer from `IN` to `OUT` features.
///
/// The weight is held as an `IN×OUT` nalgebra matrix: column `o` holds the
/// weights into output `o`. Its memory is therefore exactly PyTorch's row-major
/// `[out, in]` `weight`, which makes saving, loading and optimizer updates a
/// straight copy; the products use strides, so the orientation costs nothing.
pub struct Dense<T: Float, const IN: usize, const OUT: usize> {
    /// `weight[(i, o)]` connects input `i` to output `o`. A `Quantized`
    /// network's holds only a compact form, which the inference pass reads
    /// ([`Weight`], `crate::quant`).
    pub weight: Weight<T, IN, OUT>,
    /// One bias per output, or none for `dense(.., bias = false)`.
    pub bias: Option<HeapMatrix<T, OUT, 1>>,
}

/// The gradient of a loss with respect to a [`Dense`] layer's parameters.
pub struct DenseGrad<T: Float, const IN: usize, const OUT: usize> {
    /// Shaped like [`Dense::weight`].
    pub weight: HeapMatrix<T, IN, OUT>,
    /// Shaped like [`Dense::bias`].
    pub bias: Option<HeapMatrix<T, OUT, 1>>,
}

impl<T: Float, const IN: usize, const OUT: usize> Dense<T, IN, OUT> {
    /// A layer with zero weights (and zero bias if `bias`), to be filled by loading.
    pub fn zeros(bias: bool) -> Self {
        Dense { weight: Weight::zeros(), bias: bias.then(heap_zeros) }
    }

    /// A layer with weights drawn by `init` and a zero bias.
    pub fn new(bias: bool, init: Init, rng: &mut SeededRng) -> Self {
        let mut layer = Self::zeros(bias);
        init.fill(layer.weight.as_mut_slice(), IN, OUT, rng);
        layer
    }

    /// `y = W x + b` for a batch; `y` is resized to the batch if needed.
    pub fn forward(&self, x: &Batch<T, IN>, y: &mut Batch<T, OUT>) {
        self.forward_then(x, y, None)
    }

    /// `y = W x + b` and, with `relu = Some((r, relu_of))`, `r = relu(y)`
    /// (`relu_of(r, y)` on each finished block of `y`, by the thread that computed it).
    pub(super) fn forward_then(
        &self,
        x: &Batch<T, IN>,
        y: &mut Batch<T, OUT>,
        relu: Option<(&mut Batch<T, OUT>, Epilogue<T>)>,
    ) {
        ensure_batch(y, x.ncols());
        if let Some(compact) = self.weight.compact() {
            if self.forward_compact(compact, x, y) {
                if let Some((r, relu_of)) = relu {
                    ensure_batch(r, x.ncols());
                    relu_of(r.as_mut_slice(), y.as_slice());
                }
                return;
            }
        }
        let (mut relu, relu_of) = match relu {
            Some((r, f)) => (Some(r), Some(f)),
            None => (None, None),
        };
        let bias = self.bias.as_deref().map(|b| b.as_slice());
        if x.ncols() == 1 {
            // The weight's columns are the rows of `W`, contiguous: one sample is one fused pass.
            let r = relu.as_deref_mut().map(|r| r.as_mut_slice());
            if small_affine(self.weight.as_slice(), x.as_slice(), bias, y.as_mut_slice(), r) {
                return;
            }
        }
        let (w, x) = (MatRef::of(&*self.weight).t(), MatRef::of(x));
        if bias.is_none() && relu.is_none() {
            return gemm(T::one(), w, x, T::zero(), y);
        }
        let relu = relu.map(|r| SharedSlice::new(r.as_mut_slice())).zip(relu_of);
        gemm_then(T::one(), w, x, T::zero(), y, &|mut block| {
            let cols = block.cols.clone();
            if let Some(y) = block.whole_columns() {
                // Whole columns: passes of known length, which the compiler unrolls.
                if let Some(b) = bias {
                    add_to_samples(y.as_chunks_mut::<OUT>().0, &b.as_chunks::<OUT>().0[0]);
                }
                if let Some((r, relu_of)) = &relu {
                    // SAFETY: the block's elements of `r`, which only this block's thread writes.
                    relu_of(unsafe { r.range(cols.start * OUT..cols.end * OUT) }, y);
                }
                return;
            }
            let rows = block.rows.clone();
            for j in cols {
                let y = block.column(j);
                if let Some(b) = bias {
                    add_bias(y, &b[rows.clone()]);
                }
                if let Some((r, relu_of)) = &relu {
                    // SAFETY: the block's elements of `r`, which only this block's thread writes.
                    relu_of(unsafe { r.range(j * OUT + rows.start..j * OUT + rows.end) }, y);
                }
            }
        });
    }

    /// `y = W x + b` from the compact weight (f32 networks; `false`, having
    /// written nothing, for f64): a GEMV per sample, or f32 panels and the product.
    fn forward_compact(&self, compact: &Compact, x: &Batch<T, IN>, y: &mut Batch<T, OUT>) -> bool {
        let (Some(xs), Some(ys)) = (T::f32s(x.as_slice()), T::f32s_mut(y.as_mut_slice())) else {
            return false;
        };
        let bias = self.bias.as_deref().and_then(|b| T::f32s(b.as_slice()));
        let n = x.ncols();
        compact.forward_batch(xs, bias, ys, &|panel, first, rows, y| {
            // Rows `first..first + rows` of every sample: Y[rows, n] = panel (rows × IN) · X (IN × n).
            let w = DMatrixView::from_slice(panel, IN, rows);
            let x = DMatrixView::from_slice(xs, IN, n);
            let mut y = DMatrixViewMut::<f32, Dyn, Dyn>::from_slice_with_strides_mut(
                &mut y[first..],
                rows,
                n,
                1,
                OUT,
            );
            gemm(1.0, MatRef::of(&w).t(), MatRef::of(&x), 0.0, &mut y);
        });
        true
    }

    /// Gradients for the parameters into `grad` (overwritten), and for the
    /// input into `dx` when given. `x` is the input of the forward pass, `dy`
    /// the gradient of the loss with respect to its output.
    pub fn backward(
        &self,
        x: &Batch<T, IN>,
        dy: &Batch<T, OUT>,
        grad: &mut DenseGrad<T, IN, OUT>,
        dx: Option<&mut Batch<T, IN>>,
    ) {
        self.parameter_gradients(x, dy, grad);
        if let Some(dx) = dx {
            ensure_batch(dx, x.ncols());
            // dx (IN×B) = W · dy
            gemm(T::one(), MatRef::of(&*self.weight), MatRef::of(dy), T::zero(), dx);
        }
    }

    /// `dW = x · dyᵀ` and `db` (the sums of `dy` over the batch). The thread
    /// that computes a block of `dW`'s columns (outputs) also sums their biases.
    pub(super) fn parameter_gradients(
        &self,
        x: &Batch<T, IN>,
        dy: &Batch<T, OUT>,
        grad: &mut DenseGrad<T, IN, OUT>,
    ) {
        let (x, dy_t) = (MatRef::of(x), MatRef::of(dy).t());
        let Some(db) = &mut grad.bias else {
            return gemm(T::one(), x, dy_t, T::zero(), &mut *grad.weight);
        };
        let db = SharedSlice::new(db.as_mut_slice());
        gemm_then(T::one(), x, dy_t, T::zero(), &mut *grad.weight, &|block| {
            // A product split by rows hands every block all the columns: the first one sums them.
            if block.rows.start != 0 {
                return;
            }
            let outputs = block.cols.clone();
            // SAFETY: the block's outputs, which no other block sums.
            let db = unsafe { db.range(outputs.clone()) };
            db.fill(T::zero());
            let (samples, _) = dy.as_slice().as_chunks::<OUT>();
            if let ([all], []) = db.as_chunks_mut::<OUT>() {
                sum_samples(all, samples);
            } else {
                samples.iter().for_each(|g| add_bias(db, &g[outputs.clone()]));
            }
        });
    }

    /// The weight in PyTorch's orientation: connection from input `i` to output `o`.
    pub fn weight_at(&self, o: usize, i: usize) -> T {
        self.weight[(i, o)]
    }
}

// The epilogue's loops are functions of their own, not inlined into the
// closures that call them: there, the compiler cannot tell that the slices of
// `C` (reached through a shared pointer) and the bias do not overlap, and would
// not vectorise them; as arguments, the references are known apart.

/// An element-wise function of a product's finished block, `f(out, block)`
/// (the ReLU of `Dense::forward_relu`).
pub(super) type Epilogue<T> = fn(&mut [T], &[T]);

/// `y += b` over part of a column (or part of the bias gradient).
#[inline(never)]
fn add_bias<T: Float>(y: &mut [T], b: &[T]) {
    y.iter_mut().zip(b).for_each(|(y, &b)| *y += b);
}

/// `y += b` for every sample.
#[inline(never)]
fn add_to_samples<T: Float, const N: usize>(samples: &mut [[T; N]], b: &[T; N]) {
    samples.iter_mut().for_each(|y| y.iter_mut().zip(b).for_each(|(y, &b)| *y += b));
}

/// `sums += Σ samples`: sums of known length, kept in registers when short.
#[inline(never)]
fn sum_samples<T: Float, const N: usize>(sums: &mut [T; N], samples: &[[T; N]]) {
    samples.iter().for_each(|g| sums.iter_mut().zip(g).for_each(|(s, &g)| *s += g));
}

impl<T: Float, const IN: usize, const OUT: usize> Layer<T, IN, OUT> for Dense<T, IN, OUT> {
    type Workspace = ();
    type Gradients = DenseGrad<T, IN, OUT>;

    fn forward(&self, x: &Batch<T, IN>, y: &mut Batch<T, OUT>) {
        Dense::forward(self, x, y)
    }

    fn forward_train(&mut self, x: &Batch<T, IN>, y: &mut Batch<T, OUT>, _: &mut ()) {
        Dense::forward(self, x, y)
    }

    fn backward(
        &self,
        x: &Batch<T, IN>,
        _y: &Batch<T, OUT>,
        dy: &Batch<T, OUT>,
        _: &mut (),
        grads: &mut DenseGrad<T, IN, OUT>,
        dx: Option<&mut Batch<T, IN>>,
    ) {
        Dense::backward(self, x, dy, grads, dx)
    }
}

impl<T: Float, const IN: usize, const OUT: usize> Clone for Dense<T, IN, OUT> {
    fn clone(&self) -> Self {
        // Deriving would copy the matrices through the stack.
        Dense { weight: self.weight.clone(), bias: self.bias.as_ref().map(heap_clone) }
    }
}

impl<T: Float, const IN: usize, const OUT: usize> fmt::Debug for Dense<T, IN, OUT> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Dense({IN} -> {OUT}, bias = {})", self.bias.is_some())
    }
}

impl<T: Float, const IN: usize, const OUT: usize> fmt::Debug for DenseGrad<T, IN, OUT> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DenseGrad({IN} -> {OUT}, bias = {})", self.bias.is_some())
    }
}

impl<T: Float, const IN: usize, const OUT: usize> Params<T> for Dense<T, IN, OUT> {
    type Gradients = DenseGrad<T, IN, OUT>;

    // A bias-less layer reports fewer; see `param_count`.
    const PARAM_COUNT: usize = IN * OUT + OUT;

    fn zero_gradients(&self) -> Self::Gradients {
        DenseGrad { weight: heap_zeros(), bias: self.bias.as_ref().map(|_| heap_zeros()) }
    }

    fn visit_params(&self, path: &ParamPath<'_>, f: &mut dyn FnMut(Param<'_, T>)) {
        f(Param { name: path.join("weight"), shape: &[OUT, IN], value: self.weight.as_slice() });
        if let Some(b) = &self.bias {
            f(Param { name: path.join("bias"), shape: &[OUT], value: b.as_slice() });
        }
    }

    fn visit_params_mut(&mut self, path: &ParamPath<'_>, f: &mut dyn FnMut(ParamMut<'_, T>)) {
        f(ParamMut { name: path.join("weight"), shape: &[OUT, IN], value: self.weight.as_mut_slice() });
        if let Some(b) = &mut self.bias {
            f(ParamMut { name: path.join("bias"), shape: &[OUT], value: b.as_mut_slice() });
        }
    }

    fn visit_params_with_grads(
        &mut self,
        grads: &Self::Gradients,
        path: &ParamPath<'_>,
        f: &mut dyn FnMut(ParamMut<'_, T>, &[T]),
    ) {
        let w = ParamMut { name: path.join("weight"), shape: &[OUT, IN], value: self.weight.as_mut_slice() };
        f(w, grads.weight.as_slice());
        if let (Some(b), Some(gb)) = (&mut self.bias, &grads.bias) {
            f(ParamMut { name: path.join("bias"), shape: &[OUT], value: b.as_mut_slice() }, gb.as_slice());
        }
    }

    fn visit_grads(grads: &Self::Gradients, f: &mut dyn FnMut(&[T])) {
        f(grads.weight.as_slice());
        if let Some(gb) = &grads.bias {
            f(gb.as_slice());
        }
    }

    fn visit_compact(&mut self, path: &ParamPath<'_>, f: &mut dyn FnMut(CompactSlot<'_, T>)) {
        f(CompactSlot::new(path.join("weight"), &[OUT, IN], &mut self.weight));
    }
}

impl<T: Float, const IN: usize, const OUT: usize> Dense<T, IN, OUT> {
    /// The number of scalars this layer holds: `IN·OUT`, plus `OUT` with a bias.
    pub fn param_count(&self) -> usize {
        IN * OUT + if self.bias.is_some() { OUT } else { 0 }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gradcheck::{assert_close, numeric_grad};
    use crate::init::seeded_rng;

    fn layer() -> Dense<f64, 3, 2> {
        let mut d = Dense::<f64, 3, 2>::zeros(true);
        // PyTorch weight [[1, 2, 3], [-1, 0, 0.5]], bias [0.5, -1].
        d.weight.as_mut_slice().copy_from_slice(&[1.0, 2.0, 3.0, -1.0, 0.0, 0.5]);
        d.bias.as_mut().unwrap().as_mut_slice().copy_from_slice(&[0.5, -1.0]);
        d
    }

    #[test]
    fn forward_on_hand_checked_values() {
        let d = layer();
        assert_eq!(d.weight_at(0, 2), 3.0);
        assert_eq!(d.weight_at(1, 0), -1.0);
        let x = Batch::<f64, 3>::from_column_slice(&[1.0, 1.0, 1.0, 2.0, 0.0, -2.0]);
        let mut y = Batch::<f64, 2>::zeros(0);
        d.forward(&x, &mut y);
        // sample 0: [1+2+3+0.5, -1+0+0.5-1]; sample 1: [2-6+0.5, -2-1-1]
        assert_eq!(y.as_slice(), &[6.5, -1.5, -3.5, -4.0]);
    }

    #[test]
    fn without_bias_the_output_is_the_product() {
        let mut d = layer();
        d.bias = None;
        let x = Batch::<f64, 3>::from_column_slice(&[1.0, 1.0, 1.0]);
        let mut y = Batch::<f64, 2>::zeros(1);
        y.fill(f64::NAN); // beta = 0 must ignore what was there
        d.forward(&x, &mut y);
        assert_eq!(y.as_slice(), &[6.0, -0.5]);
        assert_eq!(d.param_count(), 6);
    }

    #[test]
    fn backward_matches_finite_differences() {
        let mut rng = seeded_rng(3);
        let d = Dense::<f64, 4, 3>::new(true, Init::Glorot, &mut rng);
        let x = Batch::<f64, 4>::from_fn(5, |i, j| ((i * 5 + j) as f64 * 0.37).sin());
        // Loss L = Σ c ⊙ y with fixed c, so dL/dy = c.
        let c = Batch::<f64, 3>::from_fn(5, |i, j| ((i + 2 * j) as f64 * 0.61).cos());
        let loss = |d: &Dense<f64, 4, 3>, x: &Batch<f64, 4>| {
            let mut y = Batch::zeros(0);
            d.forward(x, &mut y);
            y.component_mul(&c).sum()
        };
        let mut g = d.zero_gradients();
        let mut dx = Batch::zeros(0);
        d.backward(&x, &c, &mut g, Some(&mut dx));

        let num_w = numeric_grad(d.weight.as_slice(), |w| {
            let mut p = d.clone();
            p.weight.as_mut_slice().copy_from_slice(w);
            loss(&p, &x)
        });
        assert_close(g.weight.as_slice(), &num_w, 1e-7, "dense weight");
        let bias = d.bias.as_ref().unwrap();
        let num_b = numeric_grad(bias.as_slice(), |b| {
            let mut p = d.clone();
            p.bias.as_mut().unwrap().as_mut_slice().copy_from_slice(b);
            loss(&p, &x)
        });
        assert_close(g.bias.as_ref().unwrap().as_slice(), &num_b, 1e-7, "dense bias");
        let num_x = numeric_grad(x.as_slice(), |xs| loss(&d, &Batch::from_column_slice(xs)));
        assert_close(dx.as_slice(), &num_x, 1e-7, "dense input");
    }

    #[test]
    fn visits_params_under_pytorch_names_and_shapes() {
        let d = layer();
        let mut seen = Vec::new();
        d.visit_params(&ParamPath::ROOT.join("fc1"), &mut |p| {
            seen.push((p.name.to_string(), p.shape.to_vec(), p.value.to_vec()))
        });
        assert_eq!(seen[0], ("fc1.weight".into(), vec![2, 3], vec![1.0, 2.0, 3.0, -1.0, 0.0, 0.5]));
        assert_eq!(seen[1], ("fc1.bias".into(), vec![2], vec![0.5, -1.0]));
    }

    #[test]
    fn a_layer_of_4096_squared_builds_and_moves_off_the_stack() {
        let d = Dense::<f32, 4096, 4096>::new(true, Init::He, &mut seeded_rng(0));
        let moved = Box::new(d);
        assert_eq!(moved.param_count(), 4096 * 4096 + 4096);
    }
}
