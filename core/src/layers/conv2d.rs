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
//! the output in another layout and a copy). Small layers use the loops of
//! [`small`], large ones `tensor::gemm` (see [`products_through_gemm`]); both
//! take the same memory, viewed column-major by the latter. A 1×1 convolution
//! with stride 1 and no padding skips im2col: its input already is `C`.

use super::{Layer, MaxPool2d, MaxPoolWorkspace};
use crate::error::{Error, Result};
use crate::float::Float;
use crate::init::{Init, SeededRng};
#[cfg(target_arch = "x86_64")]
use crate::kernels::simd::{as_f32, as_f32_mut, has_avx2, has_avx512};
use crate::params::{Param, ParamMut, ParamPath, Params};
use crate::tensor::threads::{self, SharedSlice};
use crate::tensor::{ensure_batch, gemm, heap_clone, heap_zeros, Batch, HeapMatrix, MatRef};
use nalgebra::{DMatrixView, DMatrixViewMut};
use std::fmt;
use std::ops::Range;

#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
mod avx512;

/// Sizes of a 2-D convolution, computed by `network!`.
///
/// Padding is given for the top and left edges; the bottom and right padding is
/// whatever `out_height`/`out_width` imply (positions past the input read as
/// zero). That lets `padding = same` pad asymmetrically for even kernels, as
/// PyTorch does (one more row/column at the bottom/right).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conv2dGeometry {
    /// Input channels `CIN`.
    pub in_channels: usize,
    /// Input height `H`.
    pub height: usize,
    /// Input width `W`.
    pub width: usize,
    /// Output channels (filters) `COUT`.
    pub out_channels: usize,
    /// Kernel size `[kh, kw]`.
    pub kernel: [usize; 2],
    /// Stride `[sh, sw]`, at least 1.
    pub stride: [usize; 2],
    /// Zero padding at the top and at the left, `[ph, pw]`.
    pub padding: [usize; 2],
    /// Dilation `[dh, dw]`, at least 1 (1 is an ordinary convolution).
    pub dilation: [usize; 2],
    /// Output height `OH`.
    pub out_height: usize,
    /// Output width `OW`.
    pub out_width: usize,
}

/// `floor((len + 2·pad − dilation·(kernel − 1) − 1) / stride) + 1`, PyTorch's output size.
const fn symmetric_out(len: usize, kernel: usize, stride: usize, pad: usize, dilation: usize) -> usize {
    assert!(kernel >= 1 && stride >= 1 && dilation >= 1, "kernel, stride and dilation must be at least 1");
    let span = dilation * (kernel - 1) + 1;
    assert!(len + 2 * pad >= span, "the dilated kernel is larger than the padded input");
    (len + 2 * pad - span) / stride + 1
}

impl Conv2dGeometry {
    /// The geometry for the same padding `padding` on both sides of each axis,
    /// with PyTorch's output size `floor((H + 2p − d(k−1) − 1) / s) + 1` (and
    /// likewise for the width).
    ///
    /// Panics (at compile time in a `const` context) if a kernel, stride or
    /// dilation is 0, or if the dilated kernel does not fit the padded input.
    #[allow(clippy::too_many_arguments)]
    pub const fn symmetric(
        in_channels: usize,
        height: usize,
        width: usize,
        out_channels: usize,
        kernel: [usize; 2],
        stride: [usize; 2],
        padding: [usize; 2],
        dilation: [usize; 2],
    ) -> Self {
        Conv2dGeometry {
            in_channels,
            height,
            width,
            out_channels,
            kernel,
            stride,
            padding,
            dilation,
            out_height: symmetric_out(height, kernel[0], stride[0], padding[0], dilation[0]),
            out_width: symmetric_out(width, kernel[1], stride[1], padding[1], dilation[1]),
        }
    }

    /// The length of one unfolded patch, `in_channels·kh·kw`: the `PATCH` parameter.
    pub const fn patch(&self) -> usize {
        self.in_channels * self.kernel[0] * self.kernel[1]
    }

    /// Features per input sample, `in_channels·height·width`: the `IN` parameter.
    pub const fn in_features(&self) -> usize {
        self.in_channels * self.height * self.width
    }

    /// Features per output sample, `out_channels·out_height·out_width`: the `OUT` parameter.
    pub const fn out_features(&self) -> usize {
        self.out_channels * self.out_height * self.out_width
    }

    /// Output positions per channel, `out_height·out_width`.
    const fn out_spatial(&self) -> usize {
        self.out_height * self.out_width
    }

    /// Whether im2col is the identity (a 1×1 kernel, stride 1, no padding):
    /// the input sample, viewed as `(H·W) × CIN`, already is the column matrix.
    const fn is_pointwise(&self) -> bool {
        self.kernel[0] == 1
            && self.kernel[1] == 1
            && self.stride[0] == 1
            && self.stride[1] == 1
            && self.padding[0] == 0
            && self.padding[1] == 0
            && self.out_height == self.height
            && self.out_width == self.width
    }
}

/// A 2-D convolution from `IN = CIN·H·W` to `OUT = COUT·OH·OW` features, with
/// `PATCH = CIN·kh·kw` inputs per filter; see [`Conv2dGeometry`] for the sizes.
pub struct Conv2d<T: Float, const IN: usize, const OUT: usize, const PATCH: usize, const COUT: usize> {
    /// PyTorch's `[out, in, kh, kw]` weight, row-major: column `o` of this
    /// `PATCH×COUT` matrix is filter `o`, its rows ordered `(c, i, j)`.
    pub weight: HeapMatrix<T, PATCH, COUT>,
    /// One bias per output channel, or none for `conv2d(.., bias = false)`.
    pub bias: Option<HeapMatrix<T, COUT, 1>>,
    geometry: Conv2dGeometry,
    /// Whether the products go through `tensor::gemm` (large layers) or the
    /// small kernels of [`small`]; see [`products_through_gemm`].
    gemm: bool,
}

/// Samples per partial sum of the weight gradient when the kernels read the
/// input directly: the partial sums are added in order at the end, so threads
/// can share the chunks and the result does not depend on how many there are.
const GRAD_CHUNK: usize = 8;

/// The fewest samples worth a thread of their own in the sample-by-sample passes.
const MIN_SAMPLES_PER_THREAD: usize = 4;

/// The weight size (`PATCH·COUT`) from which the products go through
/// `tensor::gemm` (the packed f32 product, matrixmultiply for f64).
///
/// Convolutions produce products with a small inner or output dimension
/// (`PATCH = 9`, `COUT = 8` for a first 3×3 layer). matrixmultiply computes
/// them in full 8×8 or 16×16 tiles and copies partial tiles element by element,
/// so there the layer runs 5× (forward) to 13× (weight gradient) slower than
/// with [`small`]'s loops (measured on 1×28×28 → 8×26×26 at batch 64, f32,
/// AVX-512). Around 288×64 weights its cache blocking wins again (1.5× on the
/// forward product); 144×32 still favours the loops overall. (Measured before
/// the AVX-512 kernels of [`avx512`], which favour the small path further: on
/// the cnn benchmark's 9×8 layer the packed product is now slower still.)
const GEMM_MIN_WEIGHTS: usize = 128 * 128;

/// [`GEMM_MIN_WEIGHTS`] for f32 on CPUs with AVX2 but not AVX-512, where
/// [`small`]'s kernels are those of [`avx2`] and `tensor::gemm` is staticnet's
/// own f32 product. A training pass (forward, weight and input gradients) per
/// layer at batch 64 (AMD Zen 3, 2026-11-28): the small kernels are faster up
/// to 72×16 weights (1.9× at 9×8, 1.6× at 9×16, 1.1× at 27×16, 72×8 and
/// 72×16, even with 27×32), the product from 144×16 (1.04× there, 1.2× at
/// 144×32, 1.3× at 288×64: mostly the weight gradient).
const GEMM_MIN_WEIGHTS_AVX2: usize = 2048;

/// Whether a layer of `weights = PATCH·COUT` computing in `T` sends its
/// products to `tensor::gemm` rather than to [`small`]'s kernels.
fn products_through_gemm<T: 'static>(weights: usize) -> bool {
    #[cfg(target_arch = "x86_64")]
    let avx2_f32 = as_f32::<T>(&[]).is_some() && has_avx2() && !has_avx512();
    #[cfg(not(target_arch = "x86_64"))]
    let avx2_f32 = false;
    weights >= if avx2_f32 { GEMM_MIN_WEIGHTS_AVX2 } else { GEMM_MIN_WEIGHTS }
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
    padded: Vec<T>,
    /// Those kernels' weight and bias gradients, one partial sum per
    /// [`GRAD_CHUNK`] samples (summed in order afterwards).
    partials: Vec<T>,
    /// The batch size of the last training pass (0 before the first), which
    /// the backward pass checks.
    trained_batch: usize,
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

/// Makes `v` hold `len` elements; a no-op (no allocation) when it already does.
fn ensure_len<T: Float>(v: &mut Vec<T>, len: usize) {
    if v.len() != len {
        v.clear();
        v.resize(len, T::zero());
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
            weight: heap_zeros(),
            bias: bias.then(heap_zeros),
            geometry,
            gemm: products_through_gemm::<T>(PATCH * COUT),
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
        let g = &self.geometry;
        if self.direct() {
            return self.forward_direct_split(x.as_slice(), y.as_mut_slice(), &mut ws.padded);
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
        if self.direct() {
            return self.forward_direct_split(x.as_slice(), y.as_mut_slice(), &mut ws.padded);
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

    /// Whether the products read the input directly rather than its im2col
    /// columns: f32 small layers with stride 1 along the width on a CPU with
    /// AVX-512 (see [`avx512::direct_forward`]).
    fn direct(&self) -> bool {
        #[cfg(target_arch = "x86_64")]
        {
            let g = &self.geometry;
            std::any::TypeId::of::<T>() == std::any::TypeId::of::<f32>()
                && !self.gemm
                && !g.is_pointwise()
                && avx512::direct_applies(g)
                && has_avx512()
        }
        #[cfg(not(target_arch = "x86_64"))]
        false
    }

    /// The length of the scratch [`Conv2d::forward_direct`] and
    /// [`Conv2d::weight_grad_direct`] need: a padded copy of one sample, or
    /// nothing when the layer does not pad or takes the im2col path (which
    /// shares `weight_grads_by_chunks` but never reads that scratch).
    fn padded_len(&self) -> usize {
        #[cfg(target_arch = "x86_64")]
        if self.direct() {
            let (g, pad) = (&self.geometry, avx512::Padded::of(&self.geometry));
            if !pad.is_input(g) {
                return pad.len(g);
            }
        }
        0
    }

    /// The forward pass of every sample in `x` straight from the input (see
    /// [`Conv2d::direct`]); `scratch` (`padded_len()` values) holds a padded
    /// copy of a sample if the layer pads.
    fn forward_direct(&self, x: &[T], y: &mut [T], scratch: &mut [T]) {
        #[cfg(target_arch = "x86_64")]
        {
            let (g, pad) = (&self.geometry, avx512::Padded::of(&self.geometry));
            let (w, bias) =
                (as_f32(self.weight.as_slice()), self.bias.as_ref().and_then(|b| as_f32(b.as_slice())));
            let (x, y, scratch) = (as_f32(x), as_f32_mut(y), as_f32_mut(scratch));
            if let (Some(w), Some(x), Some(y), Some(scratch)) = (w, x, y, scratch) {
                for (xs, ys) in x.chunks_exact(IN).zip(y.chunks_exact_mut(OUT)) {
                    // SAFETY: `direct()` checked the CPU and the geometry.
                    unsafe { avx512::direct_forward(g, w, bias, pad.source(g, xs, scratch), ys) };
                }
            }
        }
    }

    /// How many threads a sample-by-sample pass over `n` samples uses.
    fn sample_parts(n: usize) -> usize {
        threads::threads().min(n / MIN_SAMPLES_PER_THREAD).max(1)
    }

    /// Runs `part(samples, scratch)` over a batch of `n` samples split between
    /// threads, each part with its own `per_part` values of `scratch` (resized
    /// to that many per thread).
    fn by_samples(
        n: usize,
        scratch: &mut Vec<T>,
        per_part: usize,
        part: &(dyn Fn(Range<usize>, &mut [T]) + Sync),
    ) {
        let parts = Self::sample_parts(n);
        ensure_len(scratch, parts * per_part);
        let scratch = SharedSlice::new(scratch);
        threads::run(parts, &|t| {
            // SAFETY: every part has its own scratch.
            let scratch = unsafe { scratch.range(t * per_part..(t + 1) * per_part) };
            part(t * n / parts..(t + 1) * n / parts, scratch)
        });
    }

    /// [`Conv2d::forward_direct`] with the samples split between threads,
    /// each with its own padded sample in `scratch`.
    fn forward_direct_split(&self, x: &[T], y: &mut [T], scratch: &mut Vec<T>) {
        let ys = SharedSlice::new(y);
        Self::by_samples(x.len() / IN, scratch, self.padded_len(), &|samples, scratch| {
            // SAFETY: every part has its own samples of `y`.
            let ys = unsafe { ys.range(samples.start * OUT..samples.end * OUT) };
            self.forward_direct(&x[samples.start * IN..samples.end * IN], ys, scratch);
        });
    }

    /// The weight and bias gradients into `grad` (overwritten): `chunk(samples, dw, db, scratch)`
    /// adds the gradients of `samples` (at most [`GRAD_CHUNK`], a fixed chunk of
    /// the batch) to a zeroed partial sum; chunks run on the threads, and their
    /// partial sums are added in order, so the result does not depend on the
    /// thread count. The fused pass computes the output gradient inside `chunk`.
    #[allow(clippy::type_complexity)]
    fn weight_grads_by_chunks(
        &self,
        n: usize,
        ws: &mut Conv2dWorkspace<T>,
        grad: &mut Conv2dGrad<T, PATCH, COUT>,
        chunk: &(dyn Fn(Range<usize>, &mut [T], Option<&mut [T]>, &mut [T]) + Sync),
    ) {
        Self::zero_partials(ws, n);
        let chunks = n.div_ceil(GRAD_CHUNK);
        let (parts, pad) = (Self::sample_parts(n).min(chunks), self.padded_len());
        ensure_len(&mut ws.padded, parts * pad);
        let (partials, scratch) = (SharedSlice::new(&mut ws.partials), SharedSlice::new(&mut ws.padded));
        threads::run(parts, &|t| {
            // SAFETY: every part has its own chunks, and its own scratch.
            let scratch = unsafe { scratch.range(t * pad..(t + 1) * pad) };
            for c in t * chunks / parts..(t + 1) * chunks / parts {
                let partial = unsafe { partials.range(c * Self::PARTIAL..(c + 1) * Self::PARTIAL) };
                let (dw, db) = self.split_partial(partial);
                chunk(c * GRAD_CHUNK..((c + 1) * GRAD_CHUNK).min(n), dw, db, scratch);
            }
        });
        self.sum_partials(&ws.partials, grad);
    }

    /// The weight and bias gradients of every sample in `x` straight from the
    /// input (see [`Conv2d::direct`]), added to `dw` and `db` (`PATCH·COUT` and
    /// `COUT` values); `scratch` as in `forward_direct`.
    fn weight_grad_direct(&self, x: &[T], dy: &[T], dw: &mut [T], db: Option<&mut [T]>, scratch: &mut [T]) {
        #[cfg(target_arch = "x86_64")]
        {
            let (g, pad) = (&self.geometry, avx512::Padded::of(&self.geometry));
            let (x, dy, dw, scratch) = (as_f32(x), as_f32(dy), as_f32_mut(dw), as_f32_mut(scratch));
            if let (Some(x), Some(dy), Some(dw), Some(scratch)) = (x, dy, dw, scratch) {
                let mut db = db.and_then(as_f32_mut);
                for (xs, dys) in x.chunks_exact(IN).zip(dy.chunks_exact(OUT)) {
                    let src = pad.source(g, xs, scratch);
                    // SAFETY: `direct()` checked the CPU and the geometry.
                    unsafe { avx512::direct_weight_grad(g, src, dys, dw, db.as_deref_mut()) };
                }
            }
        }
    }

    /// Values per chunk of [`Conv2dWorkspace::partials`]: a weight and a bias gradient.
    const PARTIAL: usize = PATCH * COUT + COUT;

    /// Sizes `ws.partials` for a batch of `n` and zeroes it: one partial
    /// gradient per [`GRAD_CHUNK`] samples.
    fn zero_partials(ws: &mut Conv2dWorkspace<T>, n: usize) {
        ensure_len(&mut ws.partials, n.div_ceil(GRAD_CHUNK) * Self::PARTIAL);
        ws.partials.fill(T::zero());
    }

    /// The weight and bias gradients: the chunks' partial gradients summed in order.
    fn sum_partials(&self, partials: &[T], grad: &mut Conv2dGrad<T, PATCH, COUT>) {
        let dw = grad.weight.as_mut_slice();
        dw.fill(T::zero());
        let mut db = grad.bias.as_mut().map(|b| b.as_mut_slice());
        if let Some(db) = db.as_deref_mut() {
            db.fill(T::zero());
        }
        for chunk in partials.chunks_exact(Self::PARTIAL) {
            let (w, b) = chunk.split_at(PATCH * COUT);
            dw.iter_mut().zip(w).for_each(|(d, &v)| *d += v);
            if let Some(db) = db.as_deref_mut() {
                db.iter_mut().zip(b).for_each(|(d, &v)| *d += v);
            }
        }
    }

    /// One chunk's partial (`PARTIAL` values) as (weight, bias if the layer has one).
    fn split_partial<'p>(&self, chunk: &'p mut [T]) -> (&'p mut [T], Option<&'p mut [T]>) {
        let (w, b) = chunk.split_at_mut(PATCH * COUT);
        (w, self.bias.is_some().then_some(b))
    }

    /// `Y = W · C + b` for one sample, `cols` being its columns `C`.
    fn forward_sample(&self, cols: &[T], y: &mut [T]) {
        let ohw = self.geometry.out_spatial();
        if !self.gemm {
            // Y (COUT × OH·OW, row-major) = W (COUT × PATCH) · cols (PATCH × OH·OW)
            let bias = self.bias.as_ref().map(|b| b.as_slice());
            return small::product(y, ohw, self.weight.as_slice(), PATCH, cols, bias);
        }
        let beta = match &self.bias {
            Some(b) => {
                for (yc, &bc) in y.chunks_exact_mut(ohw).zip(b.iter()) {
                    yc.fill(bc);
                }
                T::one()
            }
            None => T::zero(),
        };
        let c = DMatrixView::from_slice(cols, ohw, PATCH);
        let mut y = DMatrixViewMut::from_slice(y, ohw, COUT);
        gemm(T::one(), MatRef::of(&c), MatRef::of(&*self.weight), beta, &mut y);
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
            ws.trained_batch == batch && (pointwise || self.direct() || ws.cols.len() == per_sample * batch),
            "Conv2d::backward needs the workspace of a training pass on the same batch"
        );
        if self.direct() {
            let (x, dy) = (x.as_slice(), dy.as_slice());
            self.weight_grads_by_chunks(batch, ws, grad, &|samples, dw, db, scratch| {
                let (xs, dys) =
                    (&x[samples.start * IN..samples.end * IN], &dy[samples.start * OUT..samples.end * OUT]);
                self.weight_grad_direct(xs, dys, dw, db, scratch);
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
                        small::gram_add(dw, ohw, dyb, cb);
                    }
                    if let Some(db) = db.as_deref_mut() {
                        for (acc, dyc) in db.iter_mut().zip(dyb.chunks_exact(ohw)) {
                            *acc += small::sum(dyc);
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
    fn input_gradient(&self, dy: &Batch<T, OUT>, ws: &mut Conv2dWorkspace<T>, dx: &mut Batch<T, IN>) {
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
                small::product(dc, ohw, wt, COUT, dyb, None);
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

    /// The training passes of this convolution, a `relu` after it and a max
    /// pooling after that, as `Layer::forward_train` of each in turn would run
    /// them (`y`, `relu_out`, `pooled` their outputs). `network!` calls this for
    /// `conv2d(..), relu, max_pool(..)`. With the kernels that read the input
    /// directly and 2×2 pooling tiles it runs sample by sample, so a sample's
    /// convolution output is pooled while it is still in cache.
    #[allow(clippy::too_many_arguments)]
    pub fn forward_train_relu_max_pool<const POUT: usize>(
        &mut self,
        pool: &mut MaxPool2d,
        x: &Batch<T, IN>,
        y: &mut Batch<T, OUT>,
        relu_out: &mut Batch<T, OUT>,
        pooled: &mut Batch<T, POUT>,
        ws: &mut Conv2dWorkspace<T>,
        pool_ws: &mut MaxPoolWorkspace,
    ) {
        if !(self.direct() && pool.tiles_2x2()) {
            Conv2d::forward_train(self, x, y, ws);
            return pool.forward_train_after_relu(y, relu_out, pooled, pool_ws);
        }
        let n = x.ncols();
        ws.trained_batch = n;
        ensure_batch(y, n);
        ensure_batch(relu_out, n);
        ensure_batch(pooled, n);
        pool_ws.size_for(POUT * n);
        let (ys, rs) = (SharedSlice::new(y.as_mut_slice()), SharedSlice::new(relu_out.as_mut_slice()));
        let (ps, args) = (SharedSlice::new(pooled.as_mut_slice()), SharedSlice::new(pool_ws.argmax_mut()));
        let (this, pool) = (&*self, &*pool);
        Self::by_samples(n, &mut ws.padded, self.padded_len(), &|samples, scratch| {
            let at = |size: usize| samples.start * size..samples.end * size;
            // SAFETY: every part has its own samples of each buffer.
            let (ys, rs, ps, args) =
                unsafe { (ys.range(at(OUT)), rs.range(at(OUT)), ps.range(at(POUT)), args.range(at(POUT))) };
            let convs = x.as_slice()[at(IN)].chunks_exact(IN).zip(ys.chunks_exact_mut(OUT));
            let pools =
                rs.chunks_exact_mut(OUT).zip(ps.chunks_exact_mut(POUT)).zip(args.chunks_exact_mut(POUT));
            for ((xs, ys), ((rs, ps), args)) in convs.zip(pools) {
                this.forward_direct(xs, ys, scratch);
                pool.relu_pool(ys, rs, ps, args);
            }
        });
    }

    /// The backward passes matching [`Conv2d::forward_train_relu_max_pool`]:
    /// from `d_pooled`, the gradients of the ReLU's output into `d_relu_out`, of
    /// this layer's output into `dy`, of its parameters into `grad` and, when
    /// asked for, of its input into `dx`, as `Layer::backward` of the pooling,
    /// the ReLU and this layer in turn would compute them.
    #[allow(clippy::too_many_arguments)]
    pub fn backward_relu_max_pool<const POUT: usize>(
        &self,
        pool: &MaxPool2d,
        (x, y, relu_out, pooled): (&Batch<T, IN>, &Batch<T, OUT>, &Batch<T, OUT>, &Batch<T, POUT>),
        d_pooled: &Batch<T, POUT>,
        (ws, pool_ws): (&mut Conv2dWorkspace<T>, &mut MaxPoolWorkspace),
        grad: &mut Conv2dGrad<T, PATCH, COUT>,
        (d_relu_out, dy): (&mut Batch<T, OUT>, &mut Batch<T, OUT>),
        dx: Option<&mut Batch<T, IN>>,
    ) {
        if !(self.direct() && pool.tiles_2x2()) {
            pool.backward_after_relu(y, relu_out, pooled, d_pooled, pool_ws, d_relu_out, Some(&mut *dy));
            return Conv2d::backward(self, x, dy, ws, grad, dx);
        }
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
                self.weight_grad_direct(xs, dys, dw, db.as_deref_mut(), scratch);
            }
        });
        if let Some(dx) = dx {
            self.input_gradient(dy, ws, dx);
        }
    }
}

/// The output positions `o` along one axis whose input index `o·stride + offset`
/// lies in `0..len_in`, as a range `lo..hi` clamped to `0..len_out`.
#[inline]
fn valid_range(offset: isize, stride: usize, len_in: usize, len_out: usize) -> (usize, usize) {
    let s = stride as isize;
    // o·s + offset ≥ 0  ⇔  o ≥ ⌈−offset / s⌉
    let lo = if offset < 0 { (-offset + s - 1) / s } else { 0 };
    // o·s + offset < len_in  ⇔  o < ⌈(len_in − offset) / s⌉
    let room = len_in as isize - offset;
    let hi = if room > 0 { (room + s - 1) / s } else { 0 };
    let lo = (lo as usize).min(len_out);
    (lo, (hi as usize).clamp(lo, len_out))
}

/// Calls `f(k, row_offset, oh_range, col_offset, ow_range)` for every kernel
/// position `k = (c·kh + i)·kw + j` of one input channel: the offsets map an
/// output position to its input position (`ih = oh·sh + row_offset`), the ranges
/// are the output rows and columns whose input position is inside the image.
#[inline]
fn for_each_tap(g: &Conv2dGeometry, mut f: impl FnMut(usize, isize, (usize, usize), isize, (usize, usize))) {
    let [kh, kw] = g.kernel;
    let mut k = 0;
    for i in 0..kh {
        let row_off = (i * g.dilation[0]) as isize - g.padding[0] as isize;
        let rows = valid_range(row_off, g.stride[0], g.height, g.out_height);
        for j in 0..kw {
            let col_off = (j * g.dilation[1]) as isize - g.padding[1] as isize;
            let cols = valid_range(col_off, g.stride[1], g.width, g.out_width);
            f(k, row_off, rows, col_off, cols);
            k += 1;
        }
    }
}

/// Unfolds one input sample `x` (`[CIN, H, W]`) into point-major columns:
/// `cols[k·OH·OW + oh·OW + ow]` is the input under kernel tap `k` for output
/// `(oh, ow)`, or zero where that falls in the padding.
fn im2col<T: Float>(g: &Conv2dGeometry, x: &[T], cols: &mut [T]) {
    let (w, ow_n) = (g.width, g.out_width);
    let ohw = g.out_spatial();
    let taps = g.kernel[0] * g.kernel[1];
    let sw = g.stride[1];
    let zero = T::zero();
    // With stride 1 and rows as wide as the input's, a tap's columns are the
    // channel shifted by a constant, so they are one copy (and the padding's
    // zeros put back), not one short copy per row.
    let shifted = g.stride == [1, 1] && ow_n == w;
    for (xc, cc) in x.chunks_exact(g.height * w).zip(cols.chunks_exact_mut(taps * ohw)) {
        for_each_tap(g, |k, row_off, (oh_lo, oh_hi), col_off, (ow_lo, ow_hi)| {
            let dst = &mut cc[k * ohw..(k + 1) * ohw];
            dst[..oh_lo * ow_n].fill(zero);
            dst[oh_hi * ow_n..].fill(zero);
            if shifted {
                return im2col_shifted(
                    dst,
                    xc,
                    w,
                    row_off * w as isize + col_off,
                    (oh_lo, oh_hi),
                    (ow_lo, ow_hi),
                );
            }
            let len = ow_hi - ow_lo;
            let iw0 = ((ow_lo * sw) as isize + col_off) as usize;
            for (oh, d) in dst.chunks_exact_mut(ow_n).enumerate().take(oh_hi).skip(oh_lo) {
                let ih = ((oh * g.stride[0]) as isize + row_off) as usize;
                let src = &xc[ih * w..(ih + 1) * w];
                d[..ow_lo].fill(zero);
                d[ow_hi..].fill(zero);
                if sw == 1 {
                    d[ow_lo..ow_hi].copy_from_slice(&src[iw0..iw0 + len]);
                } else {
                    for (dv, &sv) in d[ow_lo..ow_hi].iter_mut().zip(src[iw0..].iter().step_by(sw)) {
                        *dv = sv;
                    }
                }
            }
        });
    }
}

/// One tap of [`im2col`] when `dst[q] = x[q + shift]` (stride 1, output as
/// wide as the input, `w`): the valid rows in one copy, then zeros in the
/// columns that fall in the padding (the copy put neighbouring rows' values
/// there, or left them when they would come from before or after `x`).
fn im2col_shifted<T: Float>(
    dst: &mut [T],
    x: &[T],
    w: usize,
    shift: isize,
    (oh_lo, oh_hi): (usize, usize),
    (ow_lo, ow_hi): (usize, usize),
) {
    if oh_lo >= oh_hi {
        return;
    }
    let (lo, hi) = ((oh_lo * w) as isize, (oh_hi * w) as isize);
    let (src_lo, src_hi) = ((lo + shift).max(0), (hi + shift).min(x.len() as isize));
    dst[(src_lo - shift) as usize..(src_hi - shift) as usize]
        .copy_from_slice(&x[src_lo as usize..src_hi as usize]);
    // Column by column: a padding is a value or two per row, too few for `fill`'s `memset`.
    for c in (0..ow_lo).chain(ow_hi..w) {
        dst[lo as usize + c..hi as usize].iter_mut().step_by(w).for_each(|v| *v = T::zero());
    }
}

/// The adjoint of [`im2col`]: sums point-major column gradients `dcols` back
/// onto the input positions they were read from, overwriting `dx`.
fn col2im<T: Float>(g: &Conv2dGeometry, dcols: &[T], dx: &mut [T]) {
    let (w, ow_n) = (g.width, g.out_width);
    let ohw = g.out_spatial();
    let taps = g.kernel[0] * g.kernel[1];
    let sw = g.stride[1];
    dx.fill(T::zero());
    for (dxc, cc) in dx.chunks_exact_mut(g.height * w).zip(dcols.chunks_exact(taps * ohw)) {
        for_each_tap(g, |k, row_off, (oh_lo, oh_hi), col_off, (ow_lo, ow_hi)| {
            let src = &cc[k * ohw..(k + 1) * ohw];
            let len = ow_hi - ow_lo;
            let iw0 = ((ow_lo * sw) as isize + col_off) as usize;
            for (oh, s) in src.chunks_exact(ow_n).enumerate().take(oh_hi).skip(oh_lo) {
                let ih = ((oh * g.stride[0]) as isize + row_off) as usize;
                let d = &mut dxc[ih * w..(ih + 1) * w];
                let s = &s[ow_lo..ow_hi];
                if sw == 1 {
                    for (dv, &sv) in d[iw0..iw0 + len].iter_mut().zip(s) {
                        *dv += sv;
                    }
                } else {
                    for (dv, &sv) in d[iw0..].iter_mut().step_by(sw).zip(s) {
                        *dv += sv;
                    }
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
            weight: heap_clone(&self.weight),
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

impl<T: Float, const PATCH: usize, const COUT: usize> fmt::Debug for Conv2dGrad<T, PATCH, COUT> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Conv2dGrad(patch = {PATCH}, out_channels = {COUT}, bias = {})", self.bias.is_some())
    }
}

impl<T: Float, const IN: usize, const OUT: usize, const PATCH: usize, const COUT: usize>
    Conv2d<T, IN, OUT, PATCH, COUT>
{
    /// PyTorch's weight shape `[COUT, CIN, kh, kw]`.
    fn weight_shape(&self) -> [usize; 4] {
        let g = &self.geometry;
        [COUT, g.in_channels, g.kernel[0], g.kernel[1]]
    }
}

impl<T: Float, const IN: usize, const OUT: usize, const PATCH: usize, const COUT: usize> Params<T>
    for Conv2d<T, IN, OUT, PATCH, COUT>
{
    type Gradients = Conv2dGrad<T, PATCH, COUT>;

    // A bias-less layer reports fewer; see `param_count`.
    const PARAM_COUNT: usize = PATCH * COUT + COUT;

    fn zero_gradients(&self) -> Self::Gradients {
        Conv2dGrad { weight: heap_zeros(), bias: self.bias.as_ref().map(|_| heap_zeros()) }
    }

    fn visit_params(&self, path: &ParamPath<'_>, f: &mut dyn FnMut(Param<'_, T>)) {
        let shape = self.weight_shape();
        f(Param { name: path.join("weight"), shape: &shape, value: self.weight.as_slice() });
        if let Some(b) = &self.bias {
            f(Param { name: path.join("bias"), shape: &[COUT], value: b.as_slice() });
        }
    }

    fn visit_params_mut(&mut self, path: &ParamPath<'_>, f: &mut dyn FnMut(ParamMut<'_, T>)) {
        let shape = self.weight_shape();
        f(ParamMut { name: path.join("weight"), shape: &shape, value: self.weight.as_mut_slice() });
        if let Some(b) = &mut self.bias {
            f(ParamMut { name: path.join("bias"), shape: &[COUT], value: b.as_mut_slice() });
        }
    }

    fn visit_params_with_grads(
        &mut self,
        grads: &Self::Gradients,
        path: &ParamPath<'_>,
        f: &mut dyn FnMut(ParamMut<'_, T>, &[T]),
    ) {
        let shape = self.weight_shape();
        let w = ParamMut { name: path.join("weight"), shape: &shape, value: self.weight.as_mut_slice() };
        f(w, grads.weight.as_slice());
        if let (Some(b), Some(gb)) = (&mut self.bias, &grads.bias) {
            f(ParamMut { name: path.join("bias"), shape: &[COUT], value: b.as_mut_slice() }, gb.as_slice());
        }
    }

    fn visit_grads(grads: &Self::Gradients, f: &mut dyn FnMut(&[T])) {
        f(grads.weight.as_slice());
        if let Some(gb) = &grads.bias {
            f(gb.as_slice());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gradcheck::{assert_close, numeric_grad};
    use crate::init::seeded_rng;

    /// 1 channel, 3×3 input, one 2×2 filter, stride 1, no padding: 2×2 output.
    fn small() -> Conv2d<f64, 9, 4, 4, 1> {
        let g = Conv2dGeometry::symmetric(1, 3, 3, 1, [2, 2], [1, 1], [0, 0], [1, 1]);
        let mut c = Conv2d::<f64, 9, 4, 4, 1>::zeros(g, true).unwrap();
        // PyTorch weight [[[[1, 2], [3, 4]]]], bias [0.5].
        c.weight.as_mut_slice().copy_from_slice(&[1.0, 2.0, 3.0, 4.0]);
        c.bias.as_mut().unwrap()[0] = 0.5;
        c
    }

    #[test]
    fn forward_on_hand_checked_values() {
        let c = small();
        assert_eq!(c.weight_at(0, 0, 1, 0), 3.0);
        // x = [[1, 2, 3], [4, 5, 6], [7, 8, 9]] and its negation.
        let xs: Vec<f64> = (1..=9).map(f64::from).chain((1..=9).map(|v| -f64::from(v))).collect();
        let x = Batch::<f64, 9>::from_column_slice(&xs);
        let mut y = Batch::zeros(0);
        c.forward(&x, &mut y);
        // (0,0): 1+4+12+20 = 37; (0,1): 2+6+15+24 = 47; (1,0): 4+10+21+32 = 67; (1,1): 5+12+24+36 = 77.
        assert_eq!(y.as_slice(), &[37.5, 47.5, 67.5, 77.5, -36.5, -46.5, -66.5, -76.5]);
    }

    #[test]
    fn padding_stride_and_dilation_on_hand_checked_values() {
        // 1 channel 3×3, 2×2 kernel of ones, padding 1, stride 2: 2×2 output of
        // the padded 5×5 image's windows at rows/cols {0, 2}.
        let g = Conv2dGeometry::symmetric(1, 3, 3, 1, [2, 2], [2, 2], [1, 1], [1, 1]);
        assert_eq!((g.out_height, g.out_width), (2, 2));
        let mut c = Conv2d::<f64, 9, 4, 4, 1>::zeros(g, false).unwrap();
        c.weight.fill(1.0);
        let x = Batch::<f64, 9>::from_column_slice(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0]);
        let mut y = Batch::zeros(0);
        c.forward(&x, &mut y);
        // windows: {1}, {2+3}, {4+7}, {5+6+8+9}
        assert_eq!(y.as_slice(), &[1.0, 5.0, 11.0, 28.0]);

        // Dilation 2 on 3×3 with a 2×2 kernel reads the four corners.
        let g = Conv2dGeometry::symmetric(1, 3, 3, 1, [2, 2], [1, 1], [0, 0], [2, 2]);
        assert_eq!((g.out_height, g.out_width), (1, 1));
        let mut c = Conv2d::<f64, 9, 1, 4, 1>::zeros(g, false).unwrap();
        c.weight.as_mut_slice().copy_from_slice(&[1.0, 10.0, 100.0, 1000.0]);
        let mut y = Batch::zeros(0);
        c.forward(&x, &mut y);
        assert_eq!(y.as_slice(), &[1.0 + 30.0 + 700.0 + 9000.0]);
    }

    /// The definition, loop by loop: `y[o, oh, ow] = b[o] + Σ w[o, c, i, j] · x[c, ih, iw]`.
    fn naive<const IN: usize, const OUT: usize, const PATCH: usize, const COUT: usize>(
        c: &Conv2d<f64, IN, OUT, PATCH, COUT>,
        x: &Batch<f64, IN>,
    ) -> Batch<f64, OUT> {
        let g = c.geometry();
        Batch::from_fn(x.ncols(), |r, b| {
            let (o, p) = (r / (g.out_height * g.out_width), r % (g.out_height * g.out_width));
            let (oh, ow) = (p / g.out_width, p % g.out_width);
            let mut sum = c.bias.as_ref().map_or(0.0, |b| b[o]);
            for ch in 0..g.in_channels {
                for i in 0..g.kernel[0] {
                    for j in 0..g.kernel[1] {
                        let ih = (oh * g.stride[0] + i * g.dilation[0]) as isize - g.padding[0] as isize;
                        let iw = (ow * g.stride[1] + j * g.dilation[1]) as isize - g.padding[1] as isize;
                        if (0..g.height as isize).contains(&ih) && (0..g.width as isize).contains(&iw) {
                            let xi = (ch * g.height + ih as usize) * g.width + iw as usize;
                            sum += c.weight_at(o, ch, i, j) * x[(xi, b)];
                        }
                    }
                }
            }
            sum
        })
    }

    fn check_against_naive<const IN: usize, const OUT: usize, const PATCH: usize, const COUT: usize>(
        g: Conv2dGeometry,
        bias: bool,
    ) {
        let mut c = Conv2d::<f64, IN, OUT, PATCH, COUT>::new(g, bias, Init::He, &mut seeded_rng(11)).unwrap();
        if let Some(b) = &mut c.bias {
            b.iter_mut().enumerate().for_each(|(i, v)| *v = i as f64 - 0.5);
        }
        let x = Batch::<f64, IN>::from_fn(3, |i, j| ((i * 5 + j * 17) as f64 * 0.23).cos());
        let expected = naive(&c, &x);
        for gemm in [false, true] {
            c.gemm = gemm;
            let mut y = Batch::zeros(0);
            c.forward(&x, &mut y);
            assert_close(y.as_slice(), expected.as_slice(), 1e-12, &format!("{g:?}, gemm = {gemm}"));
        }
    }

    #[test]
    fn forward_matches_the_definition() {
        check_against_naive::<{ 2 * 5 * 5 }, { 3 * 3 * 3 }, 18, 3>(
            Conv2dGeometry::symmetric(2, 5, 5, 3, [3, 3], [1, 1], [0, 0], [1, 1]),
            true,
        );
        check_against_naive::<{ 3 * 6 * 7 }, { 2 * 3 * 4 }, 27, 2>(
            Conv2dGeometry::symmetric(3, 6, 7, 2, [3, 3], [2, 2], [1, 1], [1, 1]),
            false,
        );
        check_against_naive::<{ 2 * 9 * 8 }, { 3 * 5 * 7 }, 12, 3>(
            Conv2dGeometry::symmetric(2, 9, 8, 3, [3, 2], [2, 1], [2, 1], [2, 3]),
            true,
        );
        // Padding larger than the dilated kernel reach: whole rows of zeros.
        check_against_naive::<{ 4 * 4 }, { 2 * 5 * 3 }, 4, 2>(
            Conv2dGeometry::symmetric(1, 4, 4, 2, [2, 2], [2, 3], [3, 2], [1, 1]),
            true,
        );
        check_against_naive::<{ 3 * 4 * 5 }, { 2 * 4 * 5 }, 3, 2>(
            Conv2dGeometry::symmetric(3, 4, 5, 2, [1, 1], [1, 1], [0, 0], [1, 1]),
            true,
        );
        // Stride 1 with the input's width: each tap's columns are one shifted
        // copy (`im2col_shifted`), padded left and right, with dilation, with
        // no vertical padding, and with whole padded rows.
        check_against_naive::<{ 2 * 6 * 7 }, { 3 * 6 * 7 }, 18, 3>(
            Conv2dGeometry::symmetric(2, 6, 7, 3, [3, 3], [1, 1], [1, 1], [1, 1]),
            true,
        );
        check_against_naive::<{ 2 * 6 * 7 }, { 3 * 6 * 7 }, 18, 3>(
            Conv2dGeometry::symmetric(2, 6, 7, 3, [3, 3], [1, 1], [2, 2], [2, 2]),
            false,
        );
        check_against_naive::<{ 2 * 6 * 7 }, { 3 * 4 * 7 }, 18, 3>(
            Conv2dGeometry::symmetric(2, 6, 7, 3, [3, 3], [1, 1], [0, 1], [1, 1]),
            true,
        );
        check_against_naive::<{ 6 * 7 }, { 2 * 10 * 7 }, 3, 2>(
            Conv2dGeometry::symmetric(1, 6, 7, 2, [1, 3], [1, 1], [2, 1], [1, 1]),
            true,
        );
        // The input's width but a vertical stride: not one shifted copy.
        check_against_naive::<{ 2 * 6 * 7 }, { 3 * 3 * 7 }, 18, 3>(
            Conv2dGeometry::symmetric(2, 6, 7, 3, [3, 3], [2, 1], [1, 1], [1, 1]),
            true,
        );
        // A 1×1 kernel with stride is not pointwise: it goes through im2col.
        check_against_naive::<{ 2 * 5 * 5 }, { 3 * 3 * 3 }, 2, 3>(
            Conv2dGeometry::symmetric(2, 5, 5, 3, [1, 1], [2, 2], [0, 0], [1, 1]),
            true,
        );
    }

    #[test]
    fn output_sizes_follow_pytorch() {
        let g = Conv2dGeometry::symmetric(1, 28, 28, 8, [3, 3], [1, 1], [0, 0], [1, 1]);
        assert_eq!((g.out_height, g.out_width, g.patch()), (26, 26, 9));
        assert_eq!((g.in_features(), g.out_features()), (784, 8 * 26 * 26));
        let g = Conv2dGeometry::symmetric(3, 32, 32, 16, [5, 5], [2, 2], [2, 2], [1, 1]);
        assert_eq!((g.out_height, g.out_width, g.patch()), (16, 16, 75));
        let g = Conv2dGeometry::symmetric(2, 10, 7, 4, [3, 2], [3, 1], [1, 0], [2, 3]);
        // H: (10 + 2 − 4 − 1) / 3 + 1 = 3; W: (7 − 3 − 1) / 1 + 1 = 4
        assert_eq!((g.out_height, g.out_width, g.patch()), (3, 4, 12));
        // Kernel equal to the padded input: a single output.
        const G: Conv2dGeometry = Conv2dGeometry::symmetric(1, 4, 4, 1, [6, 6], [1, 1], [1, 1], [1, 1]);
        assert_eq!((G.out_height, G.out_width), (1, 1));
    }

    #[test]
    fn inconsistent_const_generics_are_an_error_at_construction() {
        let g = Conv2dGeometry::symmetric(1, 3, 3, 1, [2, 2], [1, 1], [0, 0], [1, 1]);
        let e = Conv2d::<f64, 9, 9, 4, 1>::zeros(g, true).unwrap_err();
        assert!(matches!(e, Error::InvalidConfig(_)) && e.to_string().contains("disagrees"), "{e}");
        let zero_stride = Conv2dGeometry { stride: [0, 1], ..g };
        let e = Conv2d::<f64, 9, 4, 4, 1>::zeros(zero_stride, true).unwrap_err();
        assert!(e.to_string().contains("at least 1"), "{e}");
    }

    /// Checks weight, bias and input gradients against finite differences.
    /// … through both the small kernels and matrixmultiply.
    fn check_gradients<const IN: usize, const OUT: usize, const PATCH: usize, const COUT: usize>(
        g: Conv2dGeometry,
        bias: bool,
        batch: usize,
        seed: u64,
    ) {
        check_gradients_with::<IN, OUT, PATCH, COUT>(g, bias, batch, seed, false);
        check_gradients_with::<IN, OUT, PATCH, COUT>(g, bias, batch, seed, true);
    }

    fn check_gradients_with<const IN: usize, const OUT: usize, const PATCH: usize, const COUT: usize>(
        g: Conv2dGeometry,
        bias: bool,
        batch: usize,
        seed: u64,
        gemm: bool,
    ) {
        let mut rng = seeded_rng(seed);
        let mut c = Conv2d::<f64, IN, OUT, PATCH, COUT>::new(g, bias, Init::Glorot, &mut rng).unwrap();
        c.gemm = gemm;
        if let Some(b) = &mut c.bias {
            b.iter_mut().enumerate().for_each(|(i, v)| *v = 0.1 * i as f64 - 0.2);
        }
        let x = Batch::<f64, IN>::from_fn(batch, |i, j| ((i * 7 + j * 13) as f64 * 0.37).sin());
        // Loss L = Σ k ⊙ y with fixed k, so dL/dy = k.
        let k = Batch::<f64, OUT>::from_fn(batch, |i, j| ((i + 3 * j) as f64 * 0.61).cos());
        let loss = |c: &Conv2d<f64, IN, OUT, PATCH, COUT>, x: &Batch<f64, IN>| {
            let mut y = Batch::zeros(0);
            c.forward(x, &mut y);
            y.component_mul(&k).sum()
        };
        let mut ws = Conv2dWorkspace::default();
        let mut y = Batch::zeros(0);
        Layer::forward_train(&mut c, &x, &mut y, &mut ws);
        let mut grads = c.zero_gradients();
        grads.weight.fill(f64::NAN); // overwritten, not accumulated
        let mut dx = Batch::zeros(0);
        Layer::backward(&c, &x, &y, &k, &mut ws, &mut grads, Some(&mut dx));

        let what = format!("{g:?}, bias = {bias}, gemm = {gemm}");
        let num_w = numeric_grad(c.weight.as_slice(), |w| {
            let mut p = c.clone();
            p.weight.as_mut_slice().copy_from_slice(w);
            loss(&p, &x)
        });
        assert_close(grads.weight.as_slice(), &num_w, 1e-7, &format!("weight of {what}"));
        if let Some(b) = &c.bias {
            let num_b = numeric_grad(b.as_slice(), |b| {
                let mut p = c.clone();
                p.bias.as_mut().unwrap().as_mut_slice().copy_from_slice(b);
                loss(&p, &x)
            });
            assert_close(grads.bias.as_ref().unwrap().as_slice(), &num_b, 1e-7, &format!("bias of {what}"));
        } else {
            assert!(grads.bias.is_none());
        }
        let num_x = numeric_grad(x.as_slice(), |xs| loss(&c, &Batch::from_column_slice(xs)));
        assert_close(dx.as_slice(), &num_x, 1e-7, &format!("input of {what}"));
    }

    /// The f32 kernels (AVX-512 where the CPU has it: rows in blocks of 8,
    /// positions in vectors of 16, so 11 channels, 20 or 40 taps and rows of 9
    /// leave partial blocks everywhere) agree with the f64 computation.
    fn f32_agrees_with_f64<const IN: usize, const OUT: usize, const PATCH: usize, const COUT: usize>(
        g: Conv2dGeometry,
    ) {
        let c64 = Conv2d::<f64, IN, OUT, PATCH, COUT>::new(g, true, Init::He, &mut seeded_rng(5)).unwrap();
        let mut c32 = Conv2d::<f32, IN, OUT, PATCH, COUT>::zeros(g, true).unwrap();
        c32.weight.iter_mut().zip(c64.weight.iter()).for_each(|(a, &b)| *a = b as f32);
        let bias = c64.bias.as_ref().unwrap().iter().map(|&b| b as f32);
        c32.bias.as_mut().unwrap().iter_mut().zip(bias).for_each(|(a, b)| *a = b);
        let x = Batch::<f64, IN>::from_fn(3, |i, j| ((i * 5 + j * 17) as f64 * 0.23).cos());
        let dy = Batch::<f64, OUT>::from_fn(3, |i, j| ((i + 3 * j) as f64 * 0.61).cos());
        for gemm in [false, true] {
            let (mut c64, mut c32) = (c64.clone(), c32.clone());
            (c64.gemm, c32.gemm) = (gemm, gemm);
            let (mut ws, mut y, mut dx) = (Conv2dWorkspace::default(), Batch::zeros(0), Batch::zeros(0));
            let mut grads = c64.zero_gradients();
            Layer::forward_train(&mut c64, &x, &mut y, &mut ws);
            Layer::backward(&c64, &x, &y, &dy, &mut ws, &mut grads, Some(&mut dx));
            let bias = grads.bias.as_ref().unwrap().as_slice().to_vec();
            let expected =
                [y.as_slice().to_vec(), dx.as_slice().to_vec(), grads.weight.as_slice().to_vec(), bias];
            let (x, dy) = (x.map(|v| v as f32), dy.map(|v| v as f32));
            let (mut ws, mut y, mut dx) = (Conv2dWorkspace::default(), Batch::zeros(0), Batch::zeros(0));
            let mut grads = c32.zero_gradients();
            Layer::forward_train(&mut c32, &x, &mut y, &mut ws);
            Layer::backward(&c32, &x, &y, &dy, &mut ws, &mut grads, Some(&mut dx));
            let mut y_inf = Batch::zeros(0);
            c32.forward(&x, &mut y_inf);
            assert_eq!(y, y_inf, "{g:?}: inference differs from training");
            let got = [
                y.as_slice(),
                dx.as_slice(),
                grads.weight.as_slice(),
                grads.bias.as_ref().unwrap().as_slice(),
            ];
            let parts = ["output", "input gradient", "weight gradient", "bias gradient"];
            for ((got, expected), what) in got.iter().zip(&expected).zip(parts) {
                let got: Vec<f64> = got.iter().map(|&v| v as f64).collect();
                assert_close(&got, expected, 1e-5, &format!("{what}, {g:?}, gemm = {gemm}"));
            }
        }
    }

    #[test]
    fn f32_kernels_agree_with_f64() {
        // No padding: the direct kernels read the input itself.
        f32_agrees_with_f64::<{ 2 * 9 * 13 }, { 11 * 6 * 9 }, 40, 11>(Conv2dGeometry::symmetric(
            2,
            9,
            13,
            11,
            [4, 5],
            [1, 1],
            [0, 0],
            [1, 1],
        ));
        // Padding, dilation and a vertical stride: they read a padded copy.
        f32_agrees_with_f64::<{ 2 * 9 * 13 }, { 11 * 5 * 13 }, 20, 11>(Conv2dGeometry::symmetric(
            2,
            9,
            13,
            11,
            [2, 5],
            [2, 1],
            [2, 2],
            [3, 1],
        ));
        // A horizontal stride: im2col.
        f32_agrees_with_f64::<{ 9 * 13 }, { 3 * 7 * 6 }, 9, 3>(Conv2dGeometry::symmetric(
            1,
            9,
            13,
            3,
            [3, 3],
            [1, 2],
            [0, 0],
            [1, 1],
        ));
    }

    #[test]
    fn backward_matches_finite_differences() {
        // Plain 3×3, several channels, batch 3.
        check_gradients::<{ 2 * 5 * 5 }, { 3 * 3 * 3 }, 18, 3>(
            Conv2dGeometry::symmetric(2, 5, 5, 3, [3, 3], [1, 1], [0, 0], [1, 1]),
            true,
            3,
            1,
        );
        // Stride and padding, no bias.
        check_gradients::<{ 3 * 6 * 7 }, { 2 * 3 * 4 }, 27, 2>(
            Conv2dGeometry::symmetric(3, 6, 7, 2, [3, 3], [2, 2], [1, 1], [1, 1]),
            false,
            2,
            2,
        );
        // Rectangular kernel, different strides, paddings and dilations per axis.
        let g = Conv2dGeometry::symmetric(2, 9, 8, 3, [3, 2], [2, 1], [2, 1], [2, 3]);
        assert_eq!((g.out_height, g.out_width), (5, 7));
        check_gradients::<{ 2 * 9 * 8 }, { 3 * 5 * 7 }, 12, 3>(g, true, 2, 3);
        // Stride larger than the kernel: some inputs are never read.
        check_gradients::<{ 8 * 8 }, { 2 * 3 * 3 }, 4, 2>(
            Conv2dGeometry::symmetric(1, 8, 8, 2, [2, 2], [3, 3], [0, 0], [1, 1]),
            true,
            2,
            4,
        );
        // Pointwise (1×1): the fast path without im2col.
        check_gradients::<{ 3 * 4 * 5 }, { 2 * 4 * 5 }, 3, 2>(
            Conv2dGeometry::symmetric(3, 4, 5, 2, [1, 1], [1, 1], [0, 0], [1, 1]),
            true,
            3,
            5,
        );
    }

    #[test]
    fn asymmetric_same_padding_for_an_even_kernel() {
        // PyTorch's padding="same" with a 4×2 kernel on 5×5: 1 row on top, 2 at
        // the bottom, none left, 1 right; the output keeps the input size.
        let g = Conv2dGeometry {
            in_channels: 2,
            height: 5,
            width: 5,
            out_channels: 2,
            kernel: [4, 2],
            stride: [1, 1],
            padding: [1, 0],
            dilation: [1, 1],
            out_height: 5,
            out_width: 5,
        };
        check_gradients::<50, 50, 16, 2>(g, true, 2, 6);

        // Values: a kernel of ones counts the in-image taps of a ones image
        // (times 2 input channels).
        let mut c = Conv2d::<f64, 50, 50, 16, 2>::zeros(g, false).unwrap();
        c.weight.fill(1.0);
        let x = Batch::<f64, 50>::from_element(1, 1.0);
        let mut y = Batch::zeros(0);
        c.forward(&x, &mut y);
        // Top-left: rows −1..3 (one padded) and columns 0..2.
        assert_eq!(y[(0, 0)], 2.0 * 3.0 * 2.0);
        // Bottom-right: rows 3..7 (two padded) and columns 4..6 (one padded).
        assert_eq!(y[(24, 0)], 2.0 * 2.0 * 1.0);
        // Centre: the whole 4×2 window.
        assert_eq!(y[(12, 0)], 2.0 * 4.0 * 2.0);
    }

    #[test]
    fn inference_and_training_passes_agree_and_training_reuses_its_buffers() {
        passes_agree_and_reuse_buffers(false);
        passes_agree_and_reuse_buffers(true);
    }

    fn passes_agree_and_reuse_buffers(gemm: bool) {
        let g = Conv2dGeometry::symmetric(3, 8, 8, 4, [3, 3], [1, 1], [1, 1], [1, 1]);
        let mut c = Conv2d::<f32, 192, 256, 27, 4>::new(g, true, Init::He, &mut seeded_rng(9)).unwrap();
        c.gemm = gemm;
        let x = Batch::<f32, 192>::from_fn(5, |i, j| ((i * 3 + j) as f32 * 0.11).sin());
        let dy = Batch::<f32, 256>::from_fn(5, |i, j| ((i + j) as f32 * 0.07).cos());
        let (mut y_inf, mut y_train) = (Batch::zeros(0), Batch::zeros(0));
        c.forward(&x, &mut y_inf);
        let mut ws = Conv2dWorkspace::default();
        Layer::forward_train(&mut c, &x, &mut y_train, &mut ws);
        assert_eq!(y_inf, y_train);

        let mut grads = c.zero_gradients();
        let mut dx = Batch::zeros(0);
        Layer::backward(&c, &x, &y_train, &dy, &mut ws, &mut grads, Some(&mut dx));
        let buffers = |ws: &Conv2dWorkspace<f32>| {
            let (c, d, w, p) = (&ws.cols, &ws.dcols, &ws.wt, &ws.padded);
            (
                c.as_ptr(),
                c.capacity(),
                d.as_ptr(),
                d.capacity(),
                w.as_ptr(),
                w.capacity(),
                p.as_ptr(),
                p.capacity(),
            )
        };
        let before = buffers(&ws);
        let (y_ptr, dx_ptr) = (y_train.as_ptr(), dx.as_ptr());
        let first = grads.weight.clone();
        Layer::forward_train(&mut c, &x, &mut y_train, &mut ws);
        Layer::backward(&c, &x, &y_train, &dy, &mut ws, &mut grads, Some(&mut dx));
        assert_eq!(buffers(&ws), before);
        assert_eq!((y_train.as_ptr(), dx.as_ptr()), (y_ptr, dx_ptr));
        assert_eq!(grads.weight, first);
        // A smaller batch (an epoch's last) shrinks in place, without reallocating.
        let x3 = x.columns(0, 3).into_owned();
        Layer::forward_train(&mut c, &x3, &mut y_train, &mut ws);
        assert_eq!((ws.cols.as_ptr(), ws.padded.as_ptr()), (before.0, before.6));
        // Kernels that read the input directly keep no columns.
        assert_eq!(ws.cols.len(), if c.direct() { 0 } else { 3 * 27 * 64 });
        assert_eq!(c.direct(), !gemm && cfg!(target_arch = "x86_64") && crate::kernels::simd::has_avx512());
    }

    #[test]
    fn nan_in_the_input_reaches_the_output() {
        let c = small();
        let x = Batch::<f64, 9>::from_column_slice(&[1.0, 2.0, 3.0, 4.0, f64::NAN, 6.0, 7.0, 8.0, 9.0]);
        let mut y = Batch::zeros(0);
        c.forward(&x, &mut y);
        assert!(y.iter().all(|v| v.is_nan()), "{y}");
    }

    #[test]
    fn visits_params_under_pytorch_names_and_shapes() {
        let g = Conv2dGeometry::symmetric(2, 4, 4, 3, [3, 2], [1, 1], [0, 0], [1, 1]);
        let mut c = Conv2d::<f32, 32, 18, 12, 3>::new(g, true, Init::He, &mut seeded_rng(0)).unwrap();
        assert_eq!(c.param_count(), 12 * 3 + 3);
        assert_eq!(<Conv2d<f32, 32, 18, 12, 3> as Params<f32>>::PARAM_COUNT, 39);
        let mut seen = Vec::new();
        c.visit_params(&ParamPath::ROOT.join("conv1"), &mut |p| {
            seen.push((p.name.to_string(), p.shape.to_vec(), p.value.len()))
        });
        assert_eq!(seen, [("conv1.weight".into(), vec![3, 2, 3, 2], 36), ("conv1.bias".into(), vec![3], 3)]);
        // Row-major [out, in, kh, kw]: element [o=1, c=1, i=2, j=0] is at ((1·2 + 1)·3 + 2)·2 + 0 = 22.
        c.visit_params_mut(&ParamPath::ROOT, &mut |p| {
            if p.name.last() == "weight" {
                p.value[22] = 42.0;
            }
        });
        assert_eq!(c.weight_at(1, 1, 2, 0), 42.0);
        c.bias = None;
        let mut names = Vec::new();
        c.visit_params(&ParamPath::ROOT.join("conv1"), &mut |p| names.push(p.name.to_string()));
        assert_eq!(names, ["conv1.weight"]);
        assert_eq!(c.param_count(), 36);
    }

    #[test]
    fn he_init_uses_pytorch_fan_in() {
        let g = Conv2dGeometry::symmetric(16, 12, 12, 32, [3, 3], [1, 1], [1, 1], [1, 1]);
        let c = Conv2d::<f64, 2304, 4608, 144, 32>::new(g, false, Init::He, &mut seeded_rng(4)).unwrap();
        let w = c.weight.as_slice();
        let var = w.iter().map(|v| v * v).sum::<f64>() / w.len() as f64;
        assert!((var / (2.0 / 144.0) - 1.0).abs() < 0.1, "{var}");
    }
}

/// Row-major matrix products for the small shapes convolutions produce,
/// written so the compiler vectorizes them (along the output positions, or
/// across explicit 8-lane accumulators), with no bounds checks in inner loops.
///
/// f32 on a CPU with AVX-512 goes to the hand-written kernels of [`avx512`]
/// (fused multiply-adds, 16 positions per vector), on one with AVX2 and FMA
/// to those of [`avx2`] (8 per vector); f64, and f32 on older CPUs, run the
/// portable loops. As for the matrix product, results depend only on which
/// kernel the CPU selects.
mod small {
    use crate::float::Float;
    use crate::kernels::simd::{as_f32, as_f32_mut, has_avx2, has_avx512};
    use crate::tensor::lane_sum;

    /// `out[r·n + p] = init[r] + Σ_j a[r·inner + j] · b[j·n + p]` (`init` zero if
    /// absent): `out` is `rows × n`, `a` is `rows × inner`, `b` is `inner × n`.
    pub(super) fn product<T: Float>(
        out: &mut [T],
        n: usize,
        a: &[T],
        inner: usize,
        b: &[T],
        init: Option<&[T]>,
    ) {
        #[cfg(target_arch = "x86_64")]
        if let (Some(out), Some(a), Some(b)) = (as_f32_mut(out), as_f32(a), as_f32(b)) {
            let init = init.map(|i| as_f32(i).unwrap_or_default());
            if has_avx512() {
                // SAFETY: the processor supports AVX-512, just checked.
                return unsafe { super::avx512::product(out, n, a, inner, b, init) };
            }
            if has_avx2() {
                // SAFETY: the processor supports AVX2 and FMA, just checked.
                return unsafe { super::avx2::product(out, n, a, inner, b, init) };
            }
        }
        product_impl(out, n, a, inner, b, init)
    }

    /// `out[r·cols + c] += Σ_p a[r·n + p] · b[c·n + p]`: the dot products of every
    /// row of `a` (`rows × n`) with every row of `b` (`cols × n`).
    pub(super) fn gram_add<T: Float>(out: &mut [T], n: usize, a: &[T], b: &[T]) {
        #[cfg(target_arch = "x86_64")]
        if let (Some(out), Some(a), Some(b)) = (as_f32_mut(out), as_f32(a), as_f32(b)) {
            if has_avx512() {
                // SAFETY: the processor supports AVX-512, just checked.
                return unsafe { super::avx512::gram_add(out, n, a, b) };
            }
            if has_avx2() {
                // SAFETY: the processor supports AVX2 and FMA, just checked.
                return unsafe { super::avx2::gram_add(out, n, a, b) };
            }
        }
        gram_add_impl(out, n, a, b)
    }

    /// The sum of `v`, over 8 interleaved partial sums.
    pub(super) fn sum<T: Float>(v: &[T]) -> T {
        lane_sum(std::iter::once((v, v)), |x, _| x)
    }

    /// Two output rows at a time, two terms of the inner sum per pass, so every
    /// load of `b` serves two rows and every store of `out` two terms.
    #[inline(always)]
    fn product_impl<T: Float>(out: &mut [T], n: usize, a: &[T], inner: usize, b: &[T], init: Option<&[T]>) {
        let b = &b[..inner * n];
        let start = |r: usize| init.map_or(T::zero(), |i| i[r]);
        let mut pairs = out.chunks_exact_mut(2 * n);
        let mut r = 0;
        for rows in &mut pairs {
            let (y0, y1) = rows.split_at_mut(n);
            let (a0, a1) = (&a[r * inner..(r + 1) * inner], &a[(r + 1) * inner..(r + 2) * inner]);
            y0.fill(start(r));
            y1.fill(start(r + 1));
            let mut b_rows = b.chunks_exact(2 * n);
            let mut j = 0;
            for bb in &mut b_rows {
                let (b0, b1) = bb.split_at(n);
                let (c00, c01, c10, c11) = (a0[j], a0[j + 1], a1[j], a1[j + 1]);
                for (((u, v), &x0), &x1) in y0.iter_mut().zip(y1.iter_mut()).zip(b0).zip(b1) {
                    *u += c00 * x0 + c01 * x1;
                    *v += c10 * x0 + c11 * x1;
                }
                j += 2;
            }
            let b0 = b_rows.remainder();
            if !b0.is_empty() {
                let (c0, c1) = (a0[j], a1[j]);
                for ((u, v), &x0) in y0.iter_mut().zip(y1.iter_mut()).zip(b0) {
                    *u += c0 * x0;
                    *v += c1 * x0;
                }
            }
            r += 2;
        }
        let y0 = pairs.into_remainder();
        if !y0.is_empty() {
            // The last row of an odd count, four terms per pass.
            let a0 = &a[r * inner..(r + 1) * inner];
            y0.fill(start(r));
            let mut b_rows = b.chunks_exact(4 * n);
            let mut j = 0;
            for bb in &mut b_rows {
                let (b01, b23) = bb.split_at(2 * n);
                let ((b0, b1), (b2, b3)) = (b01.split_at(n), b23.split_at(n));
                let (c0, c1, c2, c3) = (a0[j], a0[j + 1], a0[j + 2], a0[j + 3]);
                for ((((u, &x0), &x1), &x2), &x3) in y0.iter_mut().zip(b0).zip(b1).zip(b2).zip(b3) {
                    *u += c0 * x0 + c1 * x1 + c2 * x2 + c3 * x3;
                }
                j += 4;
            }
            for (b0, &c0) in b_rows.remainder().chunks_exact(n).zip(&a0[j..]) {
                for (u, &x0) in y0.iter_mut().zip(b0) {
                    *u += c0 * x0;
                }
            }
        }
    }

    #[inline(always)]
    fn gram_add_impl<T: Float>(out: &mut [T], n: usize, a: &[T], b: &[T]) {
        let cols = b.len() / n;
        for (ar, orow) in a.chunks_exact(n).zip(out.chunks_exact_mut(cols)) {
            for (br, o) in b.chunks_exact(n).zip(orow.iter_mut()) {
                *o += dot(ar, br);
            }
        }
    }

    /// `Σ a[p]·b[p]` over 8 interleaved partial sums.
    #[inline(always)]
    fn dot<T: Float>(a: &[T], b: &[T]) -> T {
        lane_sum(std::iter::once((a, b)), |x, y| x * y)
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        fn values(len: usize, seed: usize) -> Vec<f32> {
            (0..len).map(|i| (((i * 37 + seed * 11) % 101) as f32 - 50.0) / 17.0).collect()
        }

        /// Every row and position count around the vector kernels' blocks
        /// (2, 4 or 8 rows; 8 to 24 positions; 3 columns), with and without
        /// a starting value: the f32 kernel the CPU selects against f64 sums.
        #[test]
        fn products_match_f64_sums_on_every_block_edge() {
            for (rows, inner, n) in
                [(1, 1, 1), (3, 9, 7), (4, 9, 8), (5, 2, 23), (8, 9, 24), (9, 13, 25), (16, 27, 50)]
            {
                let (a, b, init) = (values(rows * inner, 1), values(inner * n, 2), values(rows, 3));
                for init in [None, Some(&init[..])] {
                    let mut out = vec![f32::NAN; rows * n];
                    product(&mut out, n, &a, inner, &b, init);
                    for (r, p) in (0..rows).flat_map(|r| (0..n).map(move |p| (r, p))) {
                        let start = init.map_or(0.0, |i| i[r] as f64);
                        let exact =
                            (0..inner).fold(start, |s, j| s + a[r * inner + j] as f64 * b[j * n + p] as f64);
                        let got = out[r * n + p] as f64;
                        assert!(
                            (got - exact).abs() <= 1e-5 * (1.0 + exact.abs()),
                            "product {rows}×{inner}×{n} at ({r}, {p}): {got} vs {exact}"
                        );
                    }
                }
            }
            for (rows, cols, n) in [(1, 1, 1), (3, 2, 7), (4, 3, 8), (5, 4, 9), (8, 9, 23), (9, 7, 676)] {
                let (a, b) = (values(rows * n, 4), values(cols * n, 5));
                let before = values(rows * cols, 6);
                let mut out = before.clone();
                gram_add(&mut out, n, &a, &b);
                for (r, c) in (0..rows).flat_map(|r| (0..cols).map(move |c| (r, c))) {
                    let dot = (0..n).map(|p| a[r * n + p] as f64 * b[c * n + p] as f64).sum::<f64>();
                    let (got, exact) = (out[r * cols + c] as f64, before[r * cols + c] as f64 + dot);
                    assert!(
                        (got - exact).abs() <= 1e-5 * (1.0 + exact.abs()),
                        "gram {rows}×{cols}×{n} at ({r}, {c}): {got} vs {exact}"
                    );
                }
            }
        }

        /// The vector kernels (AVX2 and AVX-512 alike) add the terms of each
        /// output of `product` in order with fused multiply-adds: the same bits
        /// on either kind of CPU.
        #[test]
        fn the_vector_product_is_an_ordered_fused_sum() {
            if !(has_avx2() || has_avx512()) {
                return;
            }
            let (rows, inner, n) = (9, 11, 29);
            let (a, b, init) = (values(rows * inner, 7), values(inner * n, 8), values(rows, 9));
            let mut out = vec![0.0f32; rows * n];
            product(&mut out, n, &a, inner, &b, Some(&init));
            for (r, p) in (0..rows).flat_map(|r| (0..n).map(move |p| (r, p))) {
                let fused = (0..inner).fold(init[r], |s, j| a[r * inner + j].mul_add(b[j * n + p], s));
                assert_eq!(out[r * n + p].to_bits(), fused.to_bits(), "({r}, {p})");
            }
        }
    }
}
