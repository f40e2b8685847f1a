//! A convolution's per-sample products: the small kernels
//! (`kernels::conv2d`, including the direct ones that read the input instead
//! of its columns) for small layers, `tensor::gemm` for large ones.

use super::Conv2d;
use crate::float::Float;
use crate::kernels::conv2d::{portable, Direct};
use crate::kernels::{self, Isa};
use crate::tensor::threads::SharedSlice;
use crate::tensor::{gemm, MatRef};
use nalgebra::{DMatrixView, DMatrixViewMut};

/// The weight size (`PATCH·COUT`) from which the products go through
/// `tensor::gemm` (the packed f32 product, matrixmultiply for f64): below it,
/// the small products of a convolution (`PATCH = 9`, `COUT = 8` for a first
/// 3×3 layer) run faster in the small kernels than in a blocked product's
/// partial tiles.
const GEMM_MIN_WEIGHTS: usize = 128 * 128;

/// [`GEMM_MIN_WEIGHTS`] for f32 at the AVX2 level, where `tensor::gemm` is
/// staticnet's own f32 product and the small kernels have 8 lanes, not 16.
const GEMM_MIN_WEIGHTS_AVX2: usize = 2048;

/// Whether `T` is f32, which the vector kernels take.
fn is_f32<T: Float>() -> bool {
    T::f32s(&[]).is_some()
}

/// Whether a layer of `weights = PATCH·COUT` computing in `T` at level `isa`
/// sends its products to `tensor::gemm` rather than to the small kernels.
pub(super) fn products_through_gemm<T: Float>(isa: Isa, weights: usize) -> bool {
    let avx2_f32 = is_f32::<T>() && isa == Isa::Avx2;
    weights >= if avx2_f32 { GEMM_MIN_WEIGHTS_AVX2 } else { GEMM_MIN_WEIGHTS }
}

/// `out[r·n + p] = init[r] + Σ_j a[r·inner + j] · b[j·n + p]`
/// (see `kernels::conv2d::product`), at the active level for f32.
pub(super) fn product<T: Float>(out: &mut [T], n: usize, a: &[T], inner: usize, b: &[T], init: Option<&[T]>) {
    if let (Some(out), Some(a), Some(b)) = (T::f32s_mut(out), T::f32s(a), T::f32s(b)) {
        let init = init.map(|i| T::f32s(i).unwrap_or_default());
        return kernels::conv2d::product(Isa::active(), out, n, a, inner, b, init);
    }
    portable::product(out, n, a, inner, b, init)
}

/// `out[r·cols + c] += Σ_p a[r·n + p] · b[c·n + p]` (see `kernels::conv2d::gram_add`),
/// at the active level for f32.
pub(super) fn gram_add<T: Float>(out: &mut [T], n: usize, a: &[T], b: &[T]) {
    if let (Some(out), Some(a), Some(b)) = (T::f32s_mut(out), T::f32s(a), T::f32s(b)) {
        return kernels::conv2d::gram_add(Isa::active(), out, n, a, b);
    }
    portable::gram_add(out, n, a, b)
}

impl<T: Float, const IN: usize, const OUT: usize, const PATCH: usize, const COUT: usize>
    Conv2d<T, IN, OUT, PATCH, COUT>
{
    /// The kernels that read the input directly rather than its im2col
    /// columns, where they apply: f32 small layers with stride 1 along the
    /// width at the AVX-512 level (see `kernels::conv2d::Direct`).
    pub(in crate::layers) fn direct(&self) -> Option<Direct> {
        let small = is_f32::<T>() && !self.gemm && !self.geometry.is_pointwise();
        small.then(|| Direct::new(Isa::active(), &self.geometry)).flatten()
    }

    /// The length of the scratch [`Conv2d::forward_direct`] and
    /// [`Conv2d::weight_grad_direct`] need: a padded copy of one sample, or
    /// nothing when the layer does not pad or takes the im2col path (which
    /// shares `weight_grads_by_chunks` but never reads that scratch).
    pub(in crate::layers) fn padded_len(&self) -> usize {
        self.direct().map_or(0, |d| d.scratch_len())
    }

    /// The forward pass of every sample in `x` straight from the input (see
    /// [`Conv2d::direct`]); `scratch` (`padded_len()` values) holds a padded
    /// copy of a sample if the layer pads.
    pub(in crate::layers) fn forward_direct(&self, direct: &Direct, x: &[T], y: &mut [T], scratch: &mut [T]) {
        let (w, bias) =
            (T::f32s(self.weight.as_slice()), self.bias.as_ref().and_then(|b| T::f32s(b.as_slice())));
        let (x, y, scratch) = (T::f32s(x), T::f32s_mut(y), T::f32s_mut(scratch));
        if let (Some(w), Some(x), Some(y), Some(scratch)) = (w, x, y, scratch) {
            for (xs, ys) in x.chunks_exact(IN).zip(y.chunks_exact_mut(OUT)) {
                direct.forward(w, bias, xs, scratch, ys);
            }
        }
    }

    /// [`Conv2d::forward_direct`] with the samples split between threads,
    /// each with its own padded sample in `scratch`.
    pub(super) fn forward_direct_split(&self, direct: &Direct, x: &[T], y: &mut [T], scratch: &mut Vec<T>) {
        let ys = SharedSlice::new(y);
        Self::by_samples(x.len() / IN, scratch, direct.scratch_len(), &|samples, scratch| {
            // SAFETY: every part has its own samples of `y`.
            let ys = unsafe { ys.range(samples.start * OUT..samples.end * OUT) };
            self.forward_direct(direct, &x[samples.start * IN..samples.end * IN], ys, scratch);
        });
    }

    /// The weight and bias gradients of every sample in `x` straight from the
    /// input (see [`Conv2d::direct`]), added to `dw` and `db` (`PATCH·COUT` and
    /// `COUT` values); `scratch` as in `forward_direct`.
    pub(in crate::layers) fn weight_grad_direct(
        &self,
        direct: &Direct,
        x: &[T],
        dy: &[T],
        dw: &mut [T],
        db: Option<&mut [T]>,
        scratch: &mut [T],
    ) {
        let (x, dy, dw, scratch) = (T::f32s(x), T::f32s(dy), T::f32s_mut(dw), T::f32s_mut(scratch));
        if let (Some(x), Some(dy), Some(dw), Some(scratch)) = (x, dy, dw, scratch) {
            let mut db = db.and_then(T::f32s_mut);
            for (xs, dys) in x.chunks_exact(IN).zip(dy.chunks_exact(OUT)) {
                direct.weight_grad(xs, dys, dw, db.as_deref_mut(), scratch);
            }
        }
    }

    /// `Y = W · C + b` for one sample, `cols` being its columns `C`.
    pub(super) fn forward_sample(&self, cols: &[T], y: &mut [T]) {
        let ohw = self.geometry.out_spatial();
        if !self.gemm {
            // Y (COUT × OH·OW, row-major) = W (COUT × PATCH) · cols (PATCH × OH·OW)
            let bias = self.bias.as_ref().map(|b| b.as_slice());
            return product(y, ohw, self.weight.as_slice(), PATCH, cols, bias);
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
}
