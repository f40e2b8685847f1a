//! 2-D convolution (PyTorch's `Conv2d`): im2col and matrix products.
//!
//! A sample `[C, H, W]` is one column of a [`Batch`], channel-major then
//! row-major (PyTorch's NCHW per sample). For each sample the layer unfolds
//! the input into a `PATCH × (OH·OW)` row-major column matrix `C` (im2col:
//! `cols[k·OH·OW + p]`, `k` the kernel tap, `p` the output position). The
//! sample's output `[COUT, OH, OW]` is then the row-major `COUT × (OH·OW)`
//! product of the weight (PyTorch's `[COUT, PATCH]`) and `C`, written straight
//! into the output batch without any transposition:
//!
//! - forward: `Y = W · C (+ b)`
//! - weight gradient: `dW += dY · Cᵀ` (summed over the batch)
//! - input gradient: `dC = Wᵀ · dY`, folded back onto the input (col2im).
//!
//! The products run per sample (a single product over the batch would need
//! the output in another layout and a copy). Small layers use the small
//! kernels of `kernels::conv2d`, large ones `tensor::gemm` (see `products.rs`);
//! both take the same memory, viewed column-major by the latter. A 1×1
//! convolution with stride 1 and no padding skips im2col: its input already is `C`.
//!
//! The files (the sizes are `crate::geometry`): `im2col.rs` (unfolding and folding
//! back), `products.rs` (which kernels, and the per-sample products),
//! `threads.rs` (the split between threads, the chunked weight gradients),
//! `params.rs` (the parameters under PyTorch's names); the pass fused with a
//! ReLU and a max pooling is in `layers/fused.rs`.

mod compact;
mod im2col;
mod params;
mod products;
#[cfg(test)]
mod tests;
mod threads;

pub use crate::geometry::Conv2dGeometry;

use super::ensure_len;
use super::Layer;
use crate::error::{Error, Result};
use crate::float::Float;
use crate::init::{Init, SeededRng};
use crate::kernels::conv2d::portable;
use crate::kernels::Isa;
use crate::quant::Weight;
use crate::tensor::threads::SharedSlice;
use crate::tensor::{ensure_batch, gemm, heap_clone, heap_zeros, Batch, HeapMatrix, MatRef};
use im2col::{col2im, im2col};
use nalgebra::{DMatrixView, DMatrixViewMut};
use products::{gram_add, product, products_through_gemm};
use std::fmt;

/// A 2-D convolution from `IN = CIN·H·W` to `OUT = COUT·OH·OW` features, with
/// `PATCH = CIN·kh·kw` inputs per filter; see [`Conv2dGeometry`] for the sizes.
pub struct Conv2d<T: Float, const IN: usize, const OUT: usize, const PATCH: usize, const COUT: usize> {
    /// PyTorch's `[out, in, kh, kw]` weight, row-major: column `o` of this
    /// `PATCH×COUT` matrix is filter `o`, its rows ordered `(c, i, j)`.
    /// A `Quantized` network's holds only a compact form ([`Weight`], `crate::quant`).
    pub weight: Weight<T, PATCH, COUT>,
    /// One bias per output channel, or none for `conv2d(.., bias = false)`.
    pub bias: Option<HeapMatrix<T, COUT, 1>>,
    geometry: Conv2dGeometry,
    /// Whether the products go through `tensor::gemm` (large layers) or the
    /// small kernels; see `products::products_through_gemm`.
    gemm: bool,
}

/// The gradient of a loss with respect to a [`Conv2d`] layer's parameters.
pub struct Conv2dGrad<T: Float, const PATCH: usize, const COUT: usize> {
    /// Shaped like [`Conv2d::weight`].
    pub weight: HeapMatrix<T, PATCH, COUT>,
    /// Shaped like [`Conv2d::bias`].
    pub bias: Option<HeapMatrix<T, COUT, 1>>,
}

/// What [`Conv2d`]'s training pass keeps for its backward pass.
///
/// `cols` holds the im2col columns of the whole batch (sample after sample,
/// `PATCH·OH·OW` each), so the backward pass does not unfold the input again;
/// `dcols` is one sample's column gradient per thread, the scratch of the input
/// gradient, and `wt` the transposed weight the small kernels need for it. `cols` is
/// resized only when the batch size changes and the others never change size,
/// so once a batch size has been seen, training steps allocate nothing here.
/// A pointwise convolution (1×1, stride 1, no padding) reads its input in place
/// and leaves `cols` and `dcols` empty; so do the kernels that read the input
/// directly (`Conv2d::direct`), which keep only a padded copy of one sample in
/// `padded` when the layer pads.
pub struct Conv2dWorkspace<T> {
    cols: Vec<T>,
    dcols: Vec<T>,
    wt: Vec<T>,
    /// One sample with its zero border per thread, for the kernels that read
    /// the input directly (`Conv2d::direct`) when the layer pads.
    pub(in crate::layers) padded: Vec<T>,
    /// Those kernels' weight and bias gradients, one partial sum per
    /// [`GRAD_CHUNK`] samples (summed in order afterwards).
    partials: Vec<T>,
    /// The batch size of the last training pass (0 before the first), which
    /// the backward pass checks.
    pub(in crate::layers) trained_batch: usize,
}

impl<T> Default for Conv2dWorkspace<T> {
    fn default() -> Self {
        Conv2dWorkspace {
            cols: Vec::new(),
            dcols: Vec::new(),
            wt: Vec::new(),
            padded: Vec::new(),
            partials: Vec::new(),
            trained_batch: 0,
        }
    }
}

impl<T> fmt::Debug for Conv2dWorkspace<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (c, d, w, p) = (self.cols.len(), self.dcols.len(), self.wt.len(), self.padded.len());
        write!(f, "Conv2dWorkspace(cols: {c}, dcols: {d}, wt: {w}, padded: {p})")
    }
}

impl<T: Float, const IN: usize, const OUT: usize, const PATCH: usize, const COUT: usize>
    Conv2d<T, IN, OUT, PATCH, COUT>
{
    /// A layer with zero weights (and zero bias if `bias`), to be filled by loading.
    ///
    /// Errors: [`Error::InvalidConfig`] unless the const generics agree with
    /// `geometry` (`IN = CIN·H·W`, `OUT = COUT·OH·OW`, `PATCH = CIN·kh·kw`,
    /// `COUT = out_channels`) and every size, stride and dilation is at least 1.
    /// `network!` computes both from the same shapes, so generated code never
    /// meets the error; checked once here, the passes themselves check nothing.
    pub fn zeros(geometry: Conv2dGeometry, bias: bool) -> Result<Self> {
        let g = &geometry;
        if !(IN == g.in_features() && OUT == g.out_features() && PATCH == g.patch() && COUT == g.out_channels)
        {
            return Err(Error::InvalidConfig(format!(
                "Conv2d<IN = {IN}, OUT = {OUT}, PATCH = {PATCH}, COUT = {COUT}> disagrees with {g:?}"
            )));
        }
        let sizes = [g.in_channels, g.height, g.width, g.out_channels, g.out_height, g.out_width];
        if !sizes.iter().chain(&g.kernel).chain(&g.stride).chain(&g.dilation).all(|&n| n >= 1) {
            return Err(Error::InvalidConfig(format!(
                "Conv2d: every size, stride and dilation must be at least 1 in {g:?}"
            )));
        }
        Ok(Conv2d {
            weight: Weight::zeros(),
            bias: bias.then(heap_zeros),
            geometry,
            gemm: products_through_gemm::<T>(Isa::active(), PATCH * COUT),
        })
    }

    /// A layer with weights drawn by `init` and a zero bias.
    ///
    /// The fans are PyTorch's: `fan_in = CIN·kh·kw` (= `PATCH`) and
    /// `fan_out = COUT·kh·kw`. Errors as [`Conv2d::zeros`] does.
    pub fn new(geometry: Conv2dGeometry, bias: bool, init: Init, rng: &mut SeededRng) -> Result<Self> {
        let mut layer = Self::zeros(geometry, bias)?;
        let fan_out = COUT * geometry.kernel[0] * geometry.kernel[1];
        init.fill(layer.weight.as_mut_slice(), PATCH, fan_out, rng);
        Ok(layer)
    }

    /// The sizes this layer was built with.
    pub fn geometry(&self) -> Conv2dGeometry {
        self.geometry
    }

    /// The number of scalars this layer holds: `PATCH·COUT`, plus `COUT` with a bias.
    pub fn param_count(&self) -> usize {
        PATCH * COUT + if self.bias.is_some() { COUT } else { 0 }
    }

    /// The weight in PyTorch's orientation: `weight[o, c, i, j]`.
    pub fn weight_at(&self, o: usize, c: usize, i: usize, j: usize) -> T {
        let [kh, kw] = self.geometry.kernel;
        self.weight[((c * kh + i) * kw + j, o)]
    }

    /// The inference pass; `y` is resized to the batch if needed.
    ///
    /// [`Conv2d::forward_with`] with scratch allocated for this call: one
    /// sample's columns per thread (none for a pointwise convolution). Runs
    /// the same products as the training pass, so both give bit-identical outputs.
    pub fn forward(&self, x: &Batch<T, IN>, y: &mut Batch<T, OUT>) {
        self.forward_with(x, y, &mut Conv2dWorkspace::default())
    }

    /// The inference pass with its scratch in `ws`: allocates nothing once `ws`
    /// has been used with this layer. Same values as [`Conv2d::forward`].
    ///
    /// The scratch is `ws.dcols` (one sample's columns), the buffer the backward
    /// pass only uses within a call, so the columns a training pass left in
    /// `ws.cols` for its backward pass stay intact.
    pub fn forward_with(&self, x: &Batch<T, IN>, y: &mut Batch<T, OUT>, ws: &mut Conv2dWorkspace<T>) {
        ensure_batch(y, x.ncols());
        if let Some(compact) = self.weight.compact() {
            if self.forward_compact(compact, x, y, ws) {
                return;
            }
        }
        let g = &self.geometry;
        if let Some(direct) = self.direct() {
            return self.forward_direct_split(&direct, x.as_slice(), y.as_mut_slice(), &mut ws.padded);
        }
        // Sample by sample on the threads, each with one sample's columns as
        // scratch (none in the pointwise case: the input is the columns).
        let per_part = if g.is_pointwise() { 0 } else { PATCH * g.out_spatial() };
        let ys = SharedSlice::new(y.as_mut_slice());
        Self::by_samples(x.ncols(), &mut ws.dcols, per_part, &|samples, cols| {
            // SAFETY: every part has its own samples of `y`.
            let ys = unsafe { ys.range(samples.start * OUT..samples.end * OUT) };
            let xs = &x.as_slice()[samples.start * IN..samples.end * IN];
            for (xs, ys) in xs.chunks_exact(IN).zip(ys.chunks_exact_mut(OUT)) {
                if per_part == 0 {
                    self.forward_sample(xs, ys);
                } else {
                    im2col(g, xs, cols);
                    self.forward_sample(cols, ys);
                }
            }
        });
    }

    /// The training pass: as [`Conv2d::forward`], keeping the columns in `ws`.
    pub fn forward_train(&self, x: &Batch<T, IN>, y: &mut Batch<T, OUT>, ws: &mut Conv2dWorkspace<T>) {
        let g = &self.geometry;
        ws.trained_batch = x.ncols();
        if g.is_pointwise() {
            return self.forward(x, y);
        }
        ensure_batch(y, x.ncols());
        if let Some(direct) = self.direct() {
            return self.forward_direct_split(&direct, x.as_slice(), y.as_mut_slice(), &mut ws.padded);
        }
        let per_sample = PATCH * g.out_spatial();
        ensure_len(&mut ws.cols, per_sample * x.ncols());
        let (ys, cols) = (SharedSlice::new(y.as_mut_slice()), SharedSlice::new(&mut ws.cols));
        // One sample at a time, so its columns are still in cache for the
        // product; the samples split between threads.
        Self::by_samples(x.ncols(), &mut Vec::new(), 0, &|samples, _| {
            let at = |size: usize| samples.start * size..samples.end * size;
            // SAFETY: every part has its own samples of `y` and of the columns.
            let (ys, cols) = unsafe { (ys.range(at(OUT)), cols.range(at(per_sample))) };
            let samples = x.as_slice()[at(IN)].chunks_exact(IN).zip(ys.chunks_exact_mut(OUT));
            for ((xs, ys), cols) in samples.zip(cols.chunks_exact_mut(per_sample)) {
                im2col(g, xs, cols);
                self.forward_sample(cols, ys);
            }
        });
    }

    /// Gradients for the parameters into `grad` (overwritten), and for the
    /// input into `dx` when given. `x` is the input of the training pass that
    /// filled `ws`, `dy` the gradient of the loss with respect to its output.
    ///
    /// Panics if `ws` was not filled by a training pass on a batch of this size.
    pub fn backward(
        &self,
        x: &Batch<T, IN>,
        dy: &Batch<T, OUT>,
        ws: &mut Conv2dWorkspace<T>,
        grad: &mut Conv2dGrad<T, PATCH, COUT>,
        dx: Option<&mut Batch<T, IN>>,
    ) {
        let g = &self.geometry;
        let ohw = g.out_spatial();
        let batch = x.ncols();
        let pointwise = g.is_pointwise();
        let per_sample = PATCH * ohw;
        // Without this, a stale workspace would silently give wrong gradients.
        assert!(
            ws.trained_batch == batch
                && (pointwise || self.direct().is_some() || ws.cols.len() == per_sample * batch),
            "Conv2d::backward needs the workspace of a training pass on the same batch"
        );
        if let Some(direct) = self.direct() {
            let (x, dy) = (x.as_slice(), dy.as_slice());
            self.weight_grads_by_chunks(batch, ws, grad, &|samples, dw, db, scratch| {
                let (xs, dys) =
                    (&x[samples.start * IN..samples.end * IN], &dy[samples.start * OUT..samples.end * OUT]);
                self.weight_grad_direct(&direct, xs, dys, dw, db, scratch);
            });
        } else {
            // The columns, out of `ws` while its partial sums are in use (a move, not a copy).
            let col_buf = std::mem::take(&mut ws.cols);
            // In the pointwise case the input sample itself is the column matrix.
            let cols: &[T] = if pointwise { x.as_slice() } else { &col_buf };
            let stride = if pointwise { IN } else { per_sample };
            let dy = dy.as_slice();
            self.weight_grads_by_chunks(batch, ws, grad, &|samples, dw, mut db, _| {
                let cols = cols[samples.start * stride..samples.end * stride].chunks_exact(stride);
                // dW = Σ_b dY_b · C_bᵀ
                for (cb, dyb) in cols.zip(dy[samples.start * OUT..samples.end * OUT].chunks_exact(OUT)) {
                    if self.gemm {
                        // As column-major matrices: dW (PATCH×COUT) += C_bᵀ · dY_b ((OH·OW)×COUT).
                        let c = DMatrixView::from_slice(cb, ohw, PATCH);
                        let d = DMatrixView::from_slice(dyb, ohw, COUT);
                        let mut dw = DMatrixViewMut::from_slice(dw, PATCH, COUT);
                        gemm(T::one(), MatRef::of(&c).t(), MatRef::of(&d), T::one(), &mut dw);
                    } else {
                        // dW[o, k] += Σ_p dY[o, p] · C[k, p]
                        gram_add(dw, ohw, dyb, cb);
                    }
                    if let Some(db) = db.as_deref_mut() {
                        for (acc, dyc) in db.iter_mut().zip(dyb.chunks_exact(ohw)) {
                            *acc += portable::sum(dyc);
                        }
                    }
                }
            });
            ws.cols = col_buf;
        }
        if let Some(dx) = dx {
            self.input_gradient(dy, ws, dx);
        }
    }

    /// The gradient of the input `dx` from that of the output `dy` (needs no
    /// training workspace: `ws` is scratch).
    pub(in crate::layers) fn input_gradient(
        &self,
        dy: &Batch<T, OUT>,
        ws: &mut Conv2dWorkspace<T>,
        dx: &mut Batch<T, IN>,
    ) {
        let g = &self.geometry;
        let ohw = g.out_spatial();
        ensure_batch(dx, dy.ncols());
        if !self.gemm {
            // Wᵀ row-major (PATCH × COUT), so dC = Wᵀ · dY is a row-major product too.
            ensure_len(&mut ws.wt, PATCH * COUT);
            let w = self.weight.as_slice();
            for (k, row) in ws.wt.chunks_exact_mut(COUT).enumerate() {
                for (o, v) in row.iter_mut().enumerate() {
                    *v = w[o * PATCH + k];
                }
            }
        }
        // dC_b (PATCH × OH·OW, point-major like the columns) = Wᵀ · dY_b
        let wt = &ws.wt;
        let col_grad = |dyb: &[T], dc: &mut [T]| {
            if self.gemm {
                // As column-major matrices: dC_bᵀ ((OH·OW)×PATCH) = dY_b ((OH·OW)×COUT) · Wᵀ.
                let d = DMatrixView::from_slice(dyb, ohw, COUT);
                let mut dc = DMatrixViewMut::from_slice(dc, ohw, PATCH);
                gemm(T::one(), MatRef::of(&d), MatRef::of(&*self.weight).t(), T::zero(), &mut dc);
            } else {
                product(dc, ohw, wt, COUT, dyb, None);
            }
        };
        // Sample by sample on the threads; the columns' gradient of one sample
        // is each thread's scratch (none in the pointwise case, where the columns
        // are the input itself, so their gradient is the input's).
        let per_part = if g.is_pointwise() { 0 } else { PATCH * ohw };
        let dxs = SharedSlice::new(dx.as_mut_slice());
        Self::by_samples(dy.ncols(), &mut ws.dcols, per_part, &|samples, dc| {
            // SAFETY: every part has its own samples of `dx`.
            let dxs = unsafe { dxs.range(samples.start * IN..samples.end * IN) };
            let dys = &dy.as_slice()[samples.start * OUT..samples.end * OUT];
            for (dxb, dyb) in dxs.chunks_exact_mut(IN).zip(dys.chunks_exact(OUT)) {
                if per_part == 0 {
                    col_grad(dyb, dxb);
                } else {
                    col_grad(dyb, dc);
                    col2im(g, dc, dxb);
                }
            }
        });
    }
}

impl<T: Float, const IN: usize, const OUT: usize, const PATCH: usize, const COUT: usize> Layer<T, IN, OUT>
    for Conv2d<T, IN, OUT, PATCH, COUT>
{
    type Workspace = Conv2dWorkspace<T>;
    type Gradients = Conv2dGrad<T, PATCH, COUT>;

    fn forward(&self, x: &Batch<T, IN>, y: &mut Batch<T, OUT>) {
        Conv2d::forward(self, x, y)
    }

    fn forward_with(&self, x: &Batch<T, IN>, y: &mut Batch<T, OUT>, ws: &mut Conv2dWorkspace<T>) {
        Conv2d::forward_with(self, x, y, ws)
    }

    fn forward_train(&mut self, x: &Batch<T, IN>, y: &mut Batch<T, OUT>, ws: &mut Conv2dWorkspace<T>) {
        Conv2d::forward_train(self, x, y, ws)
    }

    fn backward(
        &self,
        x: &Batch<T, IN>,
        _y: &Batch<T, OUT>,
        dy: &Batch<T, OUT>,
        ws: &mut Conv2dWorkspace<T>,
        grads: &mut Conv2dGrad<T, PATCH, COUT>,
        dx: Option<&mut Batch<T, IN>>,
    ) {
        Conv2d::backward(self, x, dy, ws, grads, dx)
    }
}

impl<T: Float, const IN: usize, const OUT: usize, const PATCH: usize, const COUT: usize> Clone
    for Conv2d<T, IN, OUT, PATCH, COUT>
{
    fn clone(&self) -> Self {
        // Deriving would copy the matrices through the stack.
        Conv2d {
            weight: self.weight.clone(),
            bias: self.bias.as_ref().map(heap_clone),
            geometry: self.geometry,
            gemm: self.gemm,
        }
    }
}

impl<T: Float, const IN: usize, const OUT: usize, const PATCH: usize, const COUT: usize> fmt::Debug
    for Conv2d<T, IN, OUT, PATCH, COUT>
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let g = &self.geometry;
        write!(
            f,
            "Conv2d([{}, {}, {}] -> [{}, {}, {}], kernel = {:?}, stride = {:?}, padding = {:?}, dilation = {:?}, bias = {})",
            g.in_channels,
            g.height,
            g.width,
            g.out_channels,
            g.out_height,
            g.out_width,
            g.kernel,
            g.stride,
            g.padding,
            g.dilation,
            self.bias.is_some()
        )
    }
}
