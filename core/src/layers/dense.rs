//! Fully connected layer: `y = W x + b`.

use super::Layer;
use super::Relu;
use crate::float::Float;
use crate::init::{Init, SeededRng};
use crate::params::{Param, ParamMut, ParamPath, Params};
use crate::tensor::{
    ensure_batch, gemm, gemm_then, heap_clone, heap_zeros, small_affine, Batch, HeapMatrix, MatRef,
    SharedSlice,
};
use std::fmt;

/// A fully connected layer from `IN` to `OUT` features.
///
/// The weight is held as an `IN×OUT` nalgebra matrix: column `o` holds the
/// weights into output `o`. Its memory is therefore exactly PyTorch's row-major
/// `[out, in]` `weight`, which makes saving, loading and optimizer updates a
/// straight copy; the products use strides, so the orientation costs nothing.
pub struct Dense<T: Float, const IN: usize, const OUT: usize> {
    /// `weight[(i, o)]` connects input `i` to output `o`.
    pub weight: HeapMatrix<T, IN, OUT>,
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
        Dense { weight: heap_zeros(), bias: bias.then(heap_zeros) }
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

    /// [`Dense::forward`] and the ReLU after it in one pass: `y = W x + b` and
    /// `r = relu(y)`, both resized to the batch if needed. Each thread of the
    /// product adds the bias and applies the ReLU to the block of `y` it has just
    /// computed, so neither is a separate pass over memory on one core.
    pub fn forward_relu(&self, x: &Batch<T, IN>, y: &mut Batch<T, OUT>, r: &mut Batch<T, OUT>) {
        ensure_batch(r, x.ncols());
        self.forward_then(x, y, Some(r))
    }

    fn forward_then(&self, x: &Batch<T, IN>, y: &mut Batch<T, OUT>, mut relu: Option<&mut Batch<T, OUT>>) {
        ensure_batch(y, x.ncols());
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
        let relu = relu.map(|r| SharedSlice::new(r.as_mut_slice()));
        gemm_then(T::one(), w, x, T::zero(), y, &|mut block| {
            let cols = block.cols.clone();
            if let Some(y) = block.whole_columns() {
                // Whole columns: passes of known length, which the compiler unrolls.
                if let Some(b) = bias {
                    add_to_samples(y.as_chunks_mut::<OUT>().0, &b.as_chunks::<OUT>().0[0]);
                }
                if let Some(r) = &relu {
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
                if let Some(r) = &relu {
                    // SAFETY: the block's elements of `r`, which only this block's thread writes.
                    relu_of(unsafe { r.range(j * OUT + rows.start..j * OUT + rows.end) }, y);
                }
            }
        });
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

    /// [`Dense::backward`] of a layer whose input `x = relu(pre)` is a ReLU's
    /// output, and the ReLU's backward in the same pass: `dx` receives the
    /// gradient with respect to `x`, `d_pre` the one with respect to `pre`
    /// (each thread of the input-gradient product gates the block it computed).
    pub fn backward_through_relu(
        &self,
        (pre, x): (&Batch<T, IN>, &Batch<T, IN>),
        dy: &Batch<T, OUT>,
        grad: &mut DenseGrad<T, IN, OUT>,
        dx: &mut Batch<T, IN>,
        d_pre: &mut Batch<T, IN>,
    ) {
        self.parameter_gradients(x, dy, grad);
        ensure_batch(dx, x.ncols());
        ensure_batch(d_pre, x.ncols());
        let (pre, d_pre) = (pre.as_slice(), SharedSlice::new(d_pre.as_mut_slice()));
        gemm_then(T::one(), MatRef::of(&*self.weight), MatRef::of(dy), T::zero(), dx, &|mut block| {
            let cols = block.cols.clone();
            if let Some(g) = block.whole_columns() {
                let range = cols.start * IN..cols.end * IN;
                // SAFETY: the block's elements of `d_pre`, which only this block's thread writes.
                return relu_gradient_of(unsafe { d_pre.range(range.clone()) }, &pre[range], g);
            }
            let rows = block.rows.clone();
            for j in cols {
                let range = j * IN + rows.start..j * IN + rows.end;
                // SAFETY: the block's elements of `d_pre`, which only this block's thread writes.
                relu_gradient_of(unsafe { d_pre.range(range.clone()) }, &pre[range], block.column(j));
            }
        });
    }

    /// `dW = x · dyᵀ` and `db` (the sums of `dy` over the batch). The thread
    /// that computes a block of `dW`'s columns (outputs) also sums their biases.
    fn parameter_gradients(&self, x: &Batch<T, IN>, dy: &Batch<T, OUT>, grad: &mut DenseGrad<T, IN, OUT>) {
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
// `C` (reached through a shared pointer) and the bias do not overlap, so it ran
// them element by element, reloading and storing every sum (the epilogue of a
// product split by rows took a tenth of a 2-thread inference; the bias gradient
// of a 16-wide layer was 7% of a tiny training step). As arguments, the
// references are known apart: the loops vectorise and the sums stay in registers.

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

/// `d_pre` = the gradient `g` through a ReLU whose input was `pre`.
#[inline(never)]
fn relu_gradient_of<T: Float>(d_pre: &mut [T], pre: &[T], g: &[T]) {
    d_pre.iter_mut().zip(pre).zip(g).for_each(|((d, &x), &g)| *d = Relu::gradient(x, g));
}

/// `r = relu(y)`.
#[inline(never)]
fn relu_of<T: Float>(r: &mut [T], y: &[T]) {
    r.iter_mut().zip(y).for_each(|(r, &y)| *r = Relu::value(y));
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
        Dense { weight: heap_clone(&self.weight), bias: self.bias.as_ref().map(heap_clone) }
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

    /// A layer and batch large enough that every product of a step is split on 2 threads.
    fn split_sized() -> (Dense<f32, 128, 96>, Batch<f32, 128>, Batch<f32, 96>) {
        let mut d = Dense::<f32, 128, 96>::new(true, Init::He, &mut seeded_rng(5));
        d.bias.as_mut().unwrap().iter_mut().enumerate().for_each(|(i, b)| *b = (i as f32 * 0.3).sin());
        let x = Batch::<f32, 128>::from_fn(128, |i, j| ((i * 7 + j * 3) as f32 * 0.11).sin());
        let dy = Batch::<f32, 96>::from_fn(128, |i, j| ((i * 5 + j * 11) as f32 * 0.13).cos());
        (d, x, dy)
    }

    #[test]
    fn fused_relu_passes_match_layer_by_layer_bit_for_bit_on_any_thread_count() {
        let (d, x, dy) = split_sized();
        let relu = Relu;
        let _threads = crate::tensor::threads::thread_count_lock();
        // Layer by layer, one thread: the reference.
        crate::set_threads(1);
        let (mut y, mut r) = (Batch::zeros(0), Batch::zeros(0));
        d.forward(&x, &mut y);
        crate::layers::Activation::forward(&relu, &y, &mut r);
        let mut g = d.zero_gradients();
        let (mut dx, mut d_pre) = (Batch::zeros(0), Batch::zeros(0));
        // As if `x` were a ReLU's output of `pre = x`: relu(x) is the input.
        let mut input = Batch::zeros(0);
        crate::layers::Activation::forward(&relu, &x, &mut input);
        d.backward(&input, &dy, &mut g, Some(&mut dx));
        crate::layers::Activation::backward(&relu, &x, &input, &dx, &mut d_pre);
        assert!(r.iter().any(|&v| v == 0.0) && r.iter().any(|&v| v > 0.0), "the ReLU gates some values");
        // The bias gradient is the sum of dy over the batch.
        for (o, &db) in g.bias.as_ref().unwrap().iter().enumerate() {
            let sum: f32 = dy.row(o).iter().sum();
            assert!((db - sum).abs() <= 1e-4 * (1.0 + sum.abs()), "bias gradient {o}: {db} vs {sum}");
        }
        for threads in [1, 2] {
            crate::set_threads(threads);
            let (mut y2, mut r2) = (Batch::zeros(0), Batch::zeros(0));
            d.forward_relu(&x, &mut y2, &mut r2);
            assert_eq!(
                (y2.as_slice(), r2.as_slice()),
                (y.as_slice(), r.as_slice()),
                "forward, {threads} threads"
            );
            let mut g2 = d.zero_gradients();
            let (mut dx2, mut d_pre2) = (Batch::zeros(0), Batch::zeros(0));
            d.backward_through_relu((&x, &input), &dy, &mut g2, &mut dx2, &mut d_pre2);
            assert_eq!(g2.weight.as_slice(), g.weight.as_slice(), "weight gradient, {threads} threads");
            assert_eq!(g2.bias, g.bias, "bias gradient, {threads} threads");
            assert_eq!(
                (dx2.as_slice(), d_pre2.as_slice()),
                (dx.as_slice(), d_pre.as_slice()),
                "{threads} threads"
            );
        }
        crate::set_threads(1);
    }

    #[test]
    fn a_forward_split_by_rows_matches_one_thread_bit_for_bit() {
        // 256 outputs of 300 inputs for 128 samples: deeper than the batch, so 2 threads
        // split the product by rows (outputs), and each thread's epilogue sees part columns.
        let mut d = Dense::<f32, 300, 256>::new(true, Init::He, &mut seeded_rng(6));
        d.bias.as_mut().unwrap().iter_mut().enumerate().for_each(|(i, b)| *b = (i as f32 * 0.3).sin());
        let x = Batch::<f32, 300>::from_fn(128, |i, j| ((i * 7 + j * 3) as f32 * 0.11).sin());
        let [one, two] = [1, 2].map(|threads| {
            crate::set_threads(threads);
            let (mut y, mut r) = (Batch::zeros(0), Batch::zeros(0));
            d.forward_relu(&x, &mut y, &mut r);
            (y, r)
        });
        crate::set_threads(1);
        assert!(
            one.1.iter().any(|&v| v == 0.0) && one.1.iter().any(|&v| v > 0.0),
            "the ReLU gates some values"
        );
        assert!(one == two, "2 threads differ from 1");
        // And the one-thread result is W x + b.
        let (j, o) = (77, 200);
        let want: f64 = d.bias.as_ref().unwrap()[o] as f64
            + (0..300).map(|i| d.weight[(i, o)] as f64 * x[(i, j)] as f64).sum::<f64>();
        assert!((one.0[(o, j)] as f64 - want).abs() < 1e-4, "{} vs {want}", one.0[(o, j)]);
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
