//! Max pooling, with the 2×2 stride-2 case on the kernels of `kernels::pool`.

use super::PoolGeometry;
use crate::float::Float;
use crate::kernels::pool::portable::{self, is_nan};
use crate::kernels::{self, Isa};
use crate::layers::Layer;
use crate::tensor::{ensure_batch, Batch};

/// The first maximum of the window starting at `start` in a channel plane of
/// width `w`, as (value, position in the window `r·kw + c`). A NaN wins at
/// once: the output is NaN and its gradient goes to the first NaN.
#[inline]
fn window_max<T: Float>(plane: &[T], start: usize, w: usize, [kh, kw]: [usize; 2]) -> (T, u32) {
    let mut best = plane[start];
    let mut at = 0;
    if is_nan(best) {
        return (best, at);
    }
    let mut k = 0;
    for r in 0..kh {
        let row_start = start + r * w;
        for &v in &plane[row_start..row_start + kw] {
            // `best` is never NaN here: the first NaN returns at once.
            if is_nan(v) {
                return (v, k);
            }
            if v > best {
                best = v;
                at = k;
            }
            k += 1;
        }
    }
    (best, at)
}

/// 2×2 max pooling with stride 2 of one channel plane (see
/// `kernels::pool::max_pool_2x2`), at the active level for f32.
pub(in crate::layers) fn max_pool_2x2<T: Float>(
    xp: &[T],
    w: usize,
    y: &mut [T],
    out_w: usize,
    arg: Option<&mut [u32]>,
    relu: Option<&mut [T]>,
) {
    if let (Some(xp), Some(y)) = (T::f32s(xp), T::f32s_mut(y)) {
        let relu = relu.map(|r| T::f32s_mut(r).unwrap_or_default());
        return kernels::pool::max_pool_2x2(Isa::active(), xp, w, y, out_w, arg, relu);
    }
    portable::max_pool_2x2(xp, w, y, out_w, arg, relu)
}

/// The backward pass of [`max_pool_2x2`] when the windows tile the plane (see
/// `kernels::pool::max_pool_2x2_backward`), at the active level for f32.
pub(in crate::layers) fn max_pool_2x2_backward<T: Float>(
    dxp: &mut [T],
    w: usize,
    dy: &[T],
    arg: &[u32],
    out_w: usize,
    relu: Option<(&[T], &mut [T])>,
) {
    if let (Some(dxp), Some(dy)) = (T::f32s_mut(dxp), T::f32s(dy)) {
        let relu = relu.map(|(y, dx)| (T::f32s(y).unwrap_or_default(), T::f32s_mut(dx).unwrap_or_default()));
        return kernels::pool::max_pool_2x2_backward(Isa::active(), dxp, w, dy, arg, out_w, relu);
    }
    portable::max_pool_2x2_backward(dxp, w, dy, arg, out_w, relu)
}

/// 2-D max pooling (PyTorch's `MaxPool2d` in floor mode, no padding).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MaxPool2d {
    /// The sizes.
    pub geometry: PoolGeometry,
}

/// What [`MaxPool2d`]'s training pass keeps: for every output of the batch,
/// the index within its sample of the input that was the maximum. Resized only
/// when the batch size changes.
#[derive(Clone, Debug, Default)]
pub struct MaxPoolWorkspace {
    /// Each output's maximum as its position in its window (`r·kw + c`); 4 bytes,
    /// not a plane index, to keep the workspace small next to the activations.
    pub(super) argmax: Vec<u32>,
}

impl MaxPoolWorkspace {
    /// Makes room for `len` outputs' positions (contents unspecified).
    pub(crate) fn size_for(&mut self, len: usize) {
        if self.argmax.len() != len {
            self.argmax.clear();
            self.argmax.resize(len, 0);
        }
    }

    /// Panics unless a training pass on a batch of `batch` filled this workspace
    /// (a stale one would silently give wrong gradients).
    pub(crate) fn check<const OUT: usize>(&self, batch: usize) {
        assert!(
            self.argmax.len() == OUT * batch,
            "MaxPool2d::backward needs the workspace of a training pass on the same batch"
        );
    }

    /// The positions of the maxima, `OUT` per sample.
    pub(crate) fn argmax(&self) -> &[u32] {
        &self.argmax
    }

    /// [`MaxPoolWorkspace::argmax`], to be written by a training pass.
    pub(crate) fn argmax_mut(&mut self) -> &mut [u32] {
        &mut self.argmax
    }
}

impl MaxPool2d {
    /// A max pooling with the given sizes.
    pub const fn new(geometry: PoolGeometry) -> Self {
        MaxPool2d { geometry }
    }

    /// Runs the pooling over every sample, writing each output's window
    /// position into `argmax` when given (`OUT` per sample).
    fn pool<T: Float, const IN: usize, const OUT: usize>(
        &self,
        x: &Batch<T, IN>,
        y: &mut Batch<T, OUT>,
        mut argmax: Option<&mut [u32]>,
    ) {
        let g = &self.geometry;
        debug_assert!(IN == g.in_features() && OUT == g.out_features(), "MaxPool2d<{IN}, {OUT}> vs {g:?}");
        ensure_batch(y, x.ncols());
        let (plane_in, plane_out) = (g.height * g.width, g.out_height * g.out_width);
        let planes = x.as_slice().chunks_exact(plane_in).zip(y.as_mut_slice().chunks_exact_mut(plane_out));
        if g.kernel == [2, 2] && g.stride == [2, 2] {
            for (p, (xp, yp)) in planes.enumerate() {
                let arg = argmax.as_deref_mut().map(|a| &mut a[p * plane_out..(p + 1) * plane_out]);
                max_pool_2x2(xp, g.width, yp, g.out_width, arg, None);
            }
            return;
        }
        for (p, (xp, yp)) in planes.enumerate() {
            for (oh, yr) in yp.chunks_exact_mut(g.out_width).enumerate() {
                for (ow, yv) in yr.iter_mut().enumerate() {
                    let (v, at) = window_max(xp, g.window_start(oh, ow), g.width, g.kernel);
                    *yv = v;
                    if let Some(a) = argmax.as_deref_mut() {
                        a[p * plane_out + oh * g.out_width + ow] = at;
                    }
                }
            }
        }
    }

    /// Whether the windows are 2×2 with stride 2 and tile every plane exactly.
    pub(crate) fn tiles_2x2(&self) -> bool {
        let g = &self.geometry;
        g.kernel == [2, 2] && g.stride == [2, 2] && g.height == 2 * g.out_height && g.width == 2 * g.out_width
    }
}

impl<T: Float, const IN: usize, const OUT: usize> Layer<T, IN, OUT> for MaxPool2d {
    type Workspace = MaxPoolWorkspace;
    type Gradients = ();

    fn forward(&self, x: &Batch<T, IN>, y: &mut Batch<T, OUT>) {
        self.pool(x, y, None)
    }

    fn forward_train(&mut self, x: &Batch<T, IN>, y: &mut Batch<T, OUT>, ws: &mut MaxPoolWorkspace) {
        ws.size_for(OUT * x.ncols());
        self.pool(x, y, Some(&mut ws.argmax))
    }

    fn backward(
        &self,
        x: &Batch<T, IN>,
        _y: &Batch<T, OUT>,
        dy: &Batch<T, OUT>,
        ws: &mut MaxPoolWorkspace,
        _: &mut (),
        dx: Option<&mut Batch<T, IN>>,
    ) {
        let Some(dx) = dx else { return };
        ws.check::<OUT>(x.ncols());
        ensure_batch(dx, x.ncols());
        let g = &self.geometry;
        let [kh, kw] = g.kernel;
        let (w, plane_in, plane_out) = (g.width, g.height * g.width, g.out_height * g.out_width);
        // Windows that tile each plane exactly cover every input once: write
        // each window whole (its gradient at the maximum, zeros elsewhere) in
        // one pass. Otherwise inputs outside any window stay zero and
        // overlapping windows add up.
        let tiles = g.stride == g.kernel && g.height == g.out_height * kh && g.width == g.out_width * kw;
        if !tiles {
            dx.as_mut_slice().fill(T::zero()); // a memset; nalgebra's `fill` goes element by element
        }
        if tiles && g.kernel == [2, 2] {
            // The common 2×2 window, stride 2: two rows at a time, no bounds checks.
            let planes =
                dx.as_mut_slice().chunks_exact_mut(plane_in).zip(dy.as_slice().chunks_exact(plane_out));
            for ((dxp, dyp), argp) in planes.zip(ws.argmax.chunks_exact(plane_out)) {
                max_pool_2x2_backward(dxp, w, dyp, argp, g.out_width, None);
            }
            return;
        }
        let planes = dx.as_mut_slice().chunks_exact_mut(plane_in).zip(dy.as_slice().chunks_exact(plane_out));
        for ((dxp, dyp), argp) in planes.zip(ws.argmax.chunks_exact(plane_out)) {
            let mut n = 0;
            for oh in 0..g.out_height {
                for ow in 0..g.out_width {
                    let (start, at, d) = (g.window_start(oh, ow), argp[n] as usize, dyp[n]);
                    if tiles {
                        for r in 0..kh {
                            let row = &mut dxp[start + r * w..start + r * w + kw];
                            for (c, v) in row.iter_mut().enumerate() {
                                *v = if r * kw + c == at { d } else { T::zero() };
                            }
                        }
                    } else {
                        dxp[start + (at / kw) * w + at % kw] += d;
                    }
                    n += 1;
                }
            }
        }
    }
}
