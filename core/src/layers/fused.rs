//! Layers run as one pass (the sequences `network!` fuses, see `dsl`'s
//! `expand::Fused`), each giving the values its layers give one by one:
//!
//! - `conv2d, relu, max_pool` ([`Conv2d::forward_train_relu_max_pool`]):
//!   sample by sample, so a sample's convolution output is pooled while it is
//!   still in cache;
//! - `relu, max_pool` ([`MaxPool2d::forward_train_after_relu`]): the ReLU in the
//!   pooling's pass over its input;
//! - `dense, relu` ([`Dense::forward_relu`]) and, backward, `relu, dense`
//!   ([`Dense::backward_through_relu`]): the ReLU in the product's epilogue;
//! - backward, `gelu, dense` (and `gelu` before a dense layer at every step,
//!   [`BackwardScaled`], `gelu_dense.rs`): the GELU's kept derivative scales the
//!   dense layer's input gradient in the product's epilogue.
//!
//! The fusions live here so that no layer file depends on another. Their
//! arguments come grouped in small structs of borrowed values named after the
//! sequence ([`ConvReluPoolTrace`], [`ConvReluPoolGrads`], [`ReluPoolTrace`],
//! [`ReluDenseTrace`]…), so a call says which buffer is which.

use super::pool::{max_pool_2x2, max_pool_2x2_backward};
use super::{
    Activation, Conv2d, Conv2dGrad, Conv2dWorkspace, Dense, DenseGrad, Layer, MaxPool2d, MaxPoolWorkspace,
    Relu,
};
use crate::float::Float;
use crate::tensor::threads::SharedSlice;
use crate::tensor::{ensure_batch, gemm_then, Batch, MatRef};

mod gelu_dense;
#[cfg(test)]
mod tests;

pub use gelu_dense::BackwardScaled;

/// The values a training pass of `conv2d, relu, max_pool` keeps and its
/// backward pass reads: the convolution's input and each layer's output.
#[derive(Clone, Copy)]
pub struct ConvReluPoolTrace<'a, T: Float, const IN: usize, const OUT: usize, const POUT: usize> {
    /// The convolution's input.
    pub x: &'a Batch<T, IN>,
    /// The convolution's output.
    pub conv: &'a Batch<T, OUT>,
    /// The ReLU's output.
    pub relu: &'a Batch<T, OUT>,
    /// The max pooling's output.
    pub pooled: &'a Batch<T, POUT>,
}

/// Where a training pass of `conv2d, relu, max_pool` writes each layer's
/// output (each resized to the batch if needed).
pub struct ConvReluPoolOutputs<'a, T: Float, const OUT: usize, const POUT: usize> {
    /// The convolution's output.
    pub conv: &'a mut Batch<T, OUT>,
    /// The ReLU's output.
    pub relu: &'a mut Batch<T, OUT>,
    /// The max pooling's output.
    pub pooled: &'a mut Batch<T, POUT>,
}

/// The workspaces of the layers of `conv2d, relu, max_pool` (the ReLU has none).
pub struct ConvReluPoolWorkspaces<'a, T: Float> {
    /// The convolution's workspace.
    pub conv: &'a mut Conv2dWorkspace<T>,
    /// The max pooling's workspace.
    pub pool: &'a mut MaxPoolWorkspace,
}

/// The gradients of the loss with respect to the values of a
/// [`ConvReluPoolTrace`]: the pooling's output gradient is given, the others
/// are computed (the input's only when asked for).
pub struct ConvReluPoolGrads<'a, T: Float, const IN: usize, const OUT: usize, const POUT: usize> {
    /// With respect to the max pooling's output (given).
    pub pooled: &'a Batch<T, POUT>,
    /// With respect to the ReLU's output.
    pub relu: &'a mut Batch<T, OUT>,
    /// With respect to the convolution's output.
    pub conv: &'a mut Batch<T, OUT>,
    /// With respect to the convolution's input, when asked for.
    pub x: Option<&'a mut Batch<T, IN>>,
}

/// The values a training pass of `relu, max_pool` keeps and its backward pass
/// reads: the ReLU's input and each layer's output.
#[derive(Clone, Copy)]
pub struct ReluPoolTrace<'a, T: Float, const IN: usize, const OUT: usize> {
    /// The ReLU's input.
    pub x: &'a Batch<T, IN>,
    /// The ReLU's output, the pooling's input.
    pub relu: &'a Batch<T, IN>,
    /// The max pooling's output.
    pub pooled: &'a Batch<T, OUT>,
}

/// The input of a dense layer that follows a ReLU, as the backward pass of
/// `relu, dense` reads it: the ReLU's input `pre` and output `x = relu(pre)`.
#[derive(Clone, Copy)]
pub struct ReluDenseTrace<'a, T: Float, const IN: usize> {
    /// The ReLU's input.
    pub pre: &'a Batch<T, IN>,
    /// The ReLU's output, the dense layer's input.
    pub x: &'a Batch<T, IN>,
}

impl<T: Float, const IN: usize, const OUT: usize, const PATCH: usize, const COUT: usize>
    Conv2d<T, IN, OUT, PATCH, COUT>
{
    /// The training passes of this convolution, a `relu` after it and a max
    /// pooling after that, as `Layer::forward_train` of each in turn would run
    /// them (`out` receives their outputs). `network!` calls this for
    /// `conv2d(..), relu, max_pool(..)`. With the kernels that read the input
    /// directly and 2×2 pooling tiles it runs sample by sample, so a sample's
    /// convolution output is pooled while it is still in cache.
    pub fn forward_train_relu_max_pool<const POUT: usize>(
        &mut self,
        pool: &mut MaxPool2d,
        x: &Batch<T, IN>,
        out: ConvReluPoolOutputs<'_, T, OUT, POUT>,
        ws: ConvReluPoolWorkspaces<'_, T>,
    ) {
        let ConvReluPoolOutputs { conv: y, relu: relu_out, pooled } = out;
        let ConvReluPoolWorkspaces { conv: ws, pool: pool_ws } = ws;
        let Some(direct) = self.direct().filter(|_| pool.tiles_2x2()) else {
            Conv2d::forward_train(self, x, y, ws);
            return pool.forward_train_after_relu(y, relu_out, pooled, pool_ws);
        };
        let n = x.ncols();
        ws.trained_batch = n;
        ensure_batch(y, n);
        ensure_batch(relu_out, n);
        ensure_batch(pooled, n);
        pool_ws.size_for(POUT * n);
        let (ys, rs) = (SharedSlice::new(y.as_mut_slice()), SharedSlice::new(relu_out.as_mut_slice()));
        let (ps, args) = (SharedSlice::new(pooled.as_mut_slice()), SharedSlice::new(pool_ws.argmax_mut()));
        let (this, pool) = (&*self, &*pool);
        Self::by_samples(n, &mut ws.padded, direct.scratch_len(), &|samples, scratch| {
            let at = |size: usize| samples.start * size..samples.end * size;
            // SAFETY: every part has its own samples of each buffer.
            let (ys, rs, ps, args) =
                unsafe { (ys.range(at(OUT)), rs.range(at(OUT)), ps.range(at(POUT)), args.range(at(POUT))) };
            let convs = x.as_slice()[at(IN)].chunks_exact(IN).zip(ys.chunks_exact_mut(OUT));
            let pools =
                rs.chunks_exact_mut(OUT).zip(ps.chunks_exact_mut(POUT)).zip(args.chunks_exact_mut(POUT));
            for ((xs, ys), ((rs, ps), args)) in convs.zip(pools) {
                this.forward_direct(&direct, xs, ys, scratch);
                pool.relu_pool(ys, rs, ps, args);
            }
        });
    }

    /// The backward passes matching [`Conv2d::forward_train_relu_max_pool`]:
    /// from `d.pooled`, the gradients of the ReLU's output into `d.relu`, of
    /// this layer's output into `d.conv`, of its parameters into `grad` and,
    /// when asked for, of its input into `d.x`, as `Layer::backward` of the
    /// pooling, the ReLU and this layer in turn would compute them.
    pub fn backward_relu_max_pool<const POUT: usize>(
        &self,
        pool: &MaxPool2d,
        trace: ConvReluPoolTrace<'_, T, IN, OUT, POUT>,
        ws: ConvReluPoolWorkspaces<'_, T>,
        grad: &mut Conv2dGrad<T, PATCH, COUT>,
        d: ConvReluPoolGrads<'_, T, IN, OUT, POUT>,
    ) {
        let ConvReluPoolTrace { x, conv: y, relu: relu_out, pooled } = trace;
        let ConvReluPoolWorkspaces { conv: ws, pool: pool_ws } = ws;
        let ConvReluPoolGrads { pooled: d_pooled, relu: d_relu_out, conv: dy, x: dx } = d;
        let Some(direct) = self.direct().filter(|_| pool.tiles_2x2()) else {
            let relu_pool = ReluPoolTrace { x: y, relu: relu_out, pooled };
            pool.backward_after_relu(relu_pool, d_pooled, pool_ws, d_relu_out, Some(&mut *dy));
            return Conv2d::backward(self, x, dy, ws, grad, dx);
        };
        let n = x.ncols();
        assert!(
            ws.trained_batch == n,
            "Conv2d::backward needs the workspace of a training pass on the same batch"
        );
        pool_ws.check::<POUT>(n);
        ensure_batch(d_relu_out, n);
        ensure_batch(dy, n);
        let (drs, dys) = (SharedSlice::new(d_relu_out.as_mut_slice()), SharedSlice::new(dy.as_mut_slice()));
        let argmax = pool_ws.argmax();
        self.weight_grads_by_chunks(n, ws, grad, &|samples, dw, mut db, scratch| {
            let at = |size: usize| samples.start * size..samples.end * size;
            // SAFETY: every chunk has its own samples.
            let (drs, dys) = unsafe { (drs.range(at(OUT)), dys.range(at(OUT))) };
            let pools = pooled.as_slice()[at(POUT)]
                .chunks_exact(POUT)
                .zip(d_pooled.as_slice()[at(POUT)].chunks_exact(POUT));
            let grads = drs.chunks_exact_mut(OUT).zip(dys.chunks_exact_mut(OUT));
            let samples =
                x.as_slice()[at(IN)].chunks_exact(IN).zip(pools.zip(argmax[at(POUT)].chunks_exact(POUT)));
            for ((xs, ((ps, dps), args)), (drs, dys)) in samples.zip(grads) {
                pool.relu_pool_backward(drs, dps, args, ps, Some(&mut *dys));
                self.weight_grad_direct(&direct, xs, dys, dw, db.as_deref_mut(), scratch);
            }
        });
        if let Some(dx) = dx {
            self.input_gradient(dy, ws, dx);
        }
    }
}

impl MaxPool2d {
    /// The training passes of a `relu` and of this pooling after it, as
    /// `Layer::forward_train` of each in turn would run them (`relu_out` is the
    /// ReLU's output, `y` the pooling's), in one pass over `x` when the
    /// windows are 2×2 tiles. `network!` calls this for `relu, max_pool(..)`.
    pub fn forward_train_after_relu<T: Float, const IN: usize, const OUT: usize>(
        &mut self,
        x: &Batch<T, IN>,
        relu_out: &mut Batch<T, IN>,
        y: &mut Batch<T, OUT>,
        ws: &mut MaxPoolWorkspace,
    ) {
        if !self.tiles_2x2() {
            Activation::forward(&Relu, x, relu_out);
            return Layer::forward_train(self, relu_out, y, ws);
        }
        ensure_batch(relu_out, x.ncols());
        ensure_batch(y, x.ncols());
        ws.size_for(OUT * x.ncols());
        self.relu_pool(x.as_slice(), relu_out.as_mut_slice(), y.as_mut_slice(), ws.argmax_mut());
    }

    /// [`MaxPool2d::forward_train_after_relu`] on whole samples given as slices
    /// (any number of them; 2×2 tiles only).
    fn relu_pool<T: Float>(&self, x: &[T], relu_out: &mut [T], y: &mut [T], argmax: &mut [u32]) {
        let g = &self.geometry;
        debug_assert!(self.tiles_2x2());
        let (plane_in, plane_out) = (g.height * g.width, g.out_height * g.out_width);
        let planes = x.chunks_exact(plane_in).zip(relu_out.chunks_exact_mut(plane_in));
        let outs = y.chunks_exact_mut(plane_out).zip(argmax.chunks_exact_mut(plane_out));
        for ((xp, rp), (yp, ap)) in planes.zip(outs) {
            max_pool_2x2(xp, g.width, yp, g.out_width, Some(ap), Some(rp));
        }
    }

    /// The backward passes matching [`MaxPool2d::forward_train_after_relu`]:
    /// from `dy`, the gradient of the pooling's output, the gradient of the
    /// ReLU's output into `d_relu_out` and, when asked for, of its input into
    /// `dx`, as `Layer::backward` of the pooling, then of the ReLU, would
    /// compute them.
    pub fn backward_after_relu<T: Float, const IN: usize, const OUT: usize>(
        &self,
        trace: ReluPoolTrace<'_, T, IN, OUT>,
        dy: &Batch<T, OUT>,
        ws: &mut MaxPoolWorkspace,
        d_relu_out: &mut Batch<T, IN>,
        dx: Option<&mut Batch<T, IN>>,
    ) {
        let ReluPoolTrace { x, relu: relu_out, pooled: y } = trace;
        if !self.tiles_2x2() {
            Layer::backward(self, relu_out, y, dy, ws, &mut (), Some(&mut *d_relu_out));
            if let Some(dx) = dx {
                Activation::backward(&Relu, x, relu_out, d_relu_out, dx);
            }
            return;
        }
        ws.check::<OUT>(x.ncols());
        ensure_batch(d_relu_out, x.ncols());
        let dx = dx.map(|dx| {
            ensure_batch(dx, x.ncols());
            dx.as_mut_slice()
        });
        self.relu_pool_backward(d_relu_out.as_mut_slice(), dy.as_slice(), ws.argmax(), y.as_slice(), dx);
    }

    /// [`MaxPool2d::backward_after_relu`] on whole samples given as slices (any
    /// number of them; 2×2 tiles only): `y`, `dy` and `argmax` of the pooling,
    /// the gradients into `d_relu_out` and `dx`.
    fn relu_pool_backward<T: Float>(
        &self,
        d_relu_out: &mut [T],
        dy: &[T],
        argmax: &[u32],
        y: &[T],
        mut dx: Option<&mut [T]>,
    ) {
        let g = &self.geometry;
        debug_assert!(self.tiles_2x2());
        let (plane_in, plane_out) = (g.height * g.width, g.out_height * g.out_width);
        let planes = d_relu_out.chunks_exact_mut(plane_in).zip(dy.chunks_exact(plane_out));
        let pooled = argmax.chunks_exact(plane_out).zip(y.chunks_exact(plane_out));
        for (p, ((dr, dyp), (argp, yp))) in planes.zip(pooled).enumerate() {
            let relu = dx.as_deref_mut().map(|dx| (yp, &mut dx[p * plane_in..(p + 1) * plane_in]));
            max_pool_2x2_backward(dr, g.width, dyp, argp, g.out_width, relu);
        }
    }
}

impl<T: Float, const IN: usize, const OUT: usize> Dense<T, IN, OUT> {
    /// [`Dense::forward`] and the ReLU after it in one pass: `y = W x + b` and
    /// `r = relu(y)`, both resized to the batch if needed. Each thread of the
    /// product adds the bias and applies the ReLU to the block of `y` it has just
    /// computed, so neither is a separate pass over memory on one core.
    pub fn forward_relu(&self, x: &Batch<T, IN>, y: &mut Batch<T, OUT>, r: &mut Batch<T, OUT>) {
        ensure_batch(r, x.ncols());
        self.forward_then(x, y, Some((r, relu_of)))
    }

    /// [`Dense::backward`] of a layer whose input `x = relu(pre)` is a ReLU's
    /// output, and the ReLU's backward in the same pass: `dx` receives the
    /// gradient with respect to `x`, `d_pre` the one with respect to `pre`
    /// (each thread of the input-gradient product gates the block it computed).
    pub fn backward_through_relu(
        &self,
        trace: ReluDenseTrace<'_, T, IN>,
        dy: &Batch<T, OUT>,
        grad: &mut DenseGrad<T, IN, OUT>,
        dx: &mut Batch<T, IN>,
        d_pre: &mut Batch<T, IN>,
    ) {
        let ReluDenseTrace { pre, x } = trace;
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
