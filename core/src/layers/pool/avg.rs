//! Average pooling and global average pooling.

use super::PoolGeometry;
use crate::float::Float;
use crate::layers::Layer;
use crate::tensor::{ensure_batch, Batch};

/// The sum of the window starting at `start` in a channel plane of width `w`.
#[inline]
fn window_sum<T: Float>(plane: &[T], start: usize, w: usize, [kh, kw]: [usize; 2]) -> T {
    let mut sum = T::zero();
    for r in 0..kh {
        let row_start = start + r * w;
        for &v in &plane[row_start..row_start + kw] {
            sum += v;
        }
    }
    sum
}

/// 2-D average pooling (PyTorch's `AvgPool2d` in floor mode, no padding):
/// every window lies inside the input and is divided by `kh·kw`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AvgPool2d {
    /// The sizes.
    pub geometry: PoolGeometry,
}

impl AvgPool2d {
    /// An average pooling with the given sizes.
    pub const fn new(geometry: PoolGeometry) -> Self {
        AvgPool2d { geometry }
    }
}

impl<T: Float, const IN: usize, const OUT: usize> Layer<T, IN, OUT> for AvgPool2d {
    type Workspace = ();
    type Gradients = ();

    fn forward(&self, x: &Batch<T, IN>, y: &mut Batch<T, OUT>) {
        let g = &self.geometry;
        debug_assert!(IN == g.in_features() && OUT == g.out_features(), "AvgPool2d<{IN}, {OUT}> vs {g:?}");
        ensure_batch(y, x.ncols());
        let (plane_in, plane_out) = (g.height * g.width, g.out_height * g.out_width);
        let count = T::cast((g.kernel[0] * g.kernel[1]) as f64);
        for (xs, ys) in x.as_slice().chunks_exact(IN).zip(y.as_mut_slice().chunks_exact_mut(OUT)) {
            for (xp, yp) in xs.chunks_exact(plane_in).zip(ys.chunks_exact_mut(plane_out)) {
                for (oh, yr) in yp.chunks_exact_mut(g.out_width).enumerate() {
                    for (ow, yv) in yr.iter_mut().enumerate() {
                        *yv = window_sum(xp, g.window_start(oh, ow), g.width, g.kernel) / count;
                    }
                }
            }
        }
    }

    fn forward_train(&mut self, x: &Batch<T, IN>, y: &mut Batch<T, OUT>, _: &mut ()) {
        Layer::<T, IN, OUT>::forward(self, x, y)
    }

    fn backward(
        &self,
        x: &Batch<T, IN>,
        _y: &Batch<T, OUT>,
        dy: &Batch<T, OUT>,
        _: &mut (),
        _: &mut (),
        dx: Option<&mut Batch<T, IN>>,
    ) {
        let Some(dx) = dx else { return };
        let g = &self.geometry;
        debug_assert!(IN == g.in_features() && OUT == g.out_features(), "AvgPool2d<{IN}, {OUT}> vs {g:?}");
        ensure_batch(dx, x.ncols());
        dx.as_mut_slice().fill(T::zero()); // a memset; nalgebra's `fill` goes element by element
        let (plane_in, plane_out) = (g.height * g.width, g.out_height * g.out_width);
        let [kh, kw] = g.kernel;
        let count = T::cast((kh * kw) as f64);
        for (dxs, dys) in dx.as_mut_slice().chunks_exact_mut(IN).zip(dy.as_slice().chunks_exact(OUT)) {
            for (dxp, dyp) in dxs.chunks_exact_mut(plane_in).zip(dys.chunks_exact(plane_out)) {
                for (oh, dyr) in dyp.chunks_exact(g.out_width).enumerate() {
                    for (ow, &d) in dyr.iter().enumerate() {
                        let share = d / count;
                        let start = g.window_start(oh, ow);
                        for r in 0..kh {
                            let row_start = start + r * g.width;
                            dxp[row_start..row_start + kw].iter_mut().for_each(|v| *v += share);
                        }
                    }
                }
            }
        }
    }
}

/// Global average pooling: `[C, H, W]` to `[C]`, each channel's mean
/// (PyTorch's `AdaptiveAvgPool2d(1)` followed by `flatten`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GlobalAvgPool {
    /// Channels `C`: the `OUT` parameter.
    pub channels: usize,
    /// Positions per channel, `H·W`; `IN = channels·spatial`.
    pub spatial: usize,
}

impl GlobalAvgPool {
    /// A global average pooling of `channels` planes of `spatial = H·W` values each.
    ///
    /// Panics (at compile time in a `const` context) if `spatial` is 0.
    pub const fn new(channels: usize, spatial: usize) -> Self {
        assert!(spatial >= 1, "global average pooling over an empty plane");
        GlobalAvgPool { channels, spatial }
    }
}

impl<T: Float, const IN: usize, const OUT: usize> Layer<T, IN, OUT> for GlobalAvgPool {
    type Workspace = ();
    type Gradients = ();

    fn forward(&self, x: &Batch<T, IN>, y: &mut Batch<T, OUT>) {
        debug_assert!(
            IN == self.channels * self.spatial && OUT == self.channels,
            "GlobalAvgPool<{IN}, {OUT}> vs {self:?}"
        );
        ensure_batch(y, x.ncols());
        let count = T::cast(self.spatial as f64);
        for (xs, ys) in x.as_slice().chunks_exact(IN).zip(y.as_mut_slice().chunks_exact_mut(OUT)) {
            for (xp, yv) in xs.chunks_exact(self.spatial).zip(ys) {
                *yv = xp.iter().fold(T::zero(), |s, &v| s + v) / count;
            }
        }
    }

    fn forward_train(&mut self, x: &Batch<T, IN>, y: &mut Batch<T, OUT>, _: &mut ()) {
        Layer::<T, IN, OUT>::forward(self, x, y)
    }

    fn backward(
        &self,
        x: &Batch<T, IN>,
        _y: &Batch<T, OUT>,
        dy: &Batch<T, OUT>,
        _: &mut (),
        _: &mut (),
        dx: Option<&mut Batch<T, IN>>,
    ) {
        let Some(dx) = dx else { return };
        debug_assert!(
            IN == self.channels * self.spatial && OUT == self.channels,
            "GlobalAvgPool<{IN}, {OUT}> vs {self:?}"
        );
        ensure_batch(dx, x.ncols());
        let count = T::cast(self.spatial as f64);
        for (dxs, dys) in dx.as_mut_slice().chunks_exact_mut(IN).zip(dy.as_slice().chunks_exact(OUT)) {
            for (dxp, &d) in dxs.chunks_exact_mut(self.spatial).zip(dys) {
                dxp.fill(d / count);
            }
        }
    }
}
