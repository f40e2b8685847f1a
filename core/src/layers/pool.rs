//! Pooling over `[C, H, W]` samples: max, average and global average.
//!
//! PyTorch's semantics: `MaxPool2d`/`AvgPool2d` in floor mode without padding
//! (so every window lies inside the image and an average always divides by
//! `kh·kw`), and `AdaptiveAvgPool2d(1)` + flatten for [`GlobalAvgPool`].

use super::Layer;
use crate::float::Float;
use crate::tensor::{ensure_batch, Batch};

/// Sizes of a 2-D pooling, computed by `network!`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolGeometry {
    /// Channels `C` (pooling keeps them).
    pub channels: usize,
    /// Input height `H`.
    pub height: usize,
    /// Input width `W`.
    pub width: usize,
    /// Window size `[kh, kw]`.
    pub kernel: [usize; 2],
    /// Stride `[sh, sw]` (PyTorch's default is the kernel size).
    pub stride: [usize; 2],
    /// Output height `floor((H − kh) / sh) + 1`.
    pub out_height: usize,
    /// Output width `floor((W − kw) / sw) + 1`.
    pub out_width: usize,
}

impl PoolGeometry {
    /// The geometry of a pooling in floor mode without padding.
    ///
    /// Panics (at compile time in a `const` context) if a kernel or stride is 0
    /// or the window is larger than the input.
    pub const fn new(
        channels: usize,
        height: usize,
        width: usize,
        kernel: [usize; 2],
        stride: [usize; 2],
    ) -> Self {
        assert!(
            kernel[0] >= 1 && kernel[1] >= 1 && stride[0] >= 1 && stride[1] >= 1,
            "kernel and stride must be at least 1"
        );
        assert!(kernel[0] <= height && kernel[1] <= width, "the pooling window is larger than the input");
        PoolGeometry {
            channels,
            height,
            width,
            kernel,
            stride,
            out_height: (height - kernel[0]) / stride[0] + 1,
            out_width: (width - kernel[1]) / stride[1] + 1,
        }
    }

    /// Features per input sample, `channels·height·width`: the `IN` parameter.
    pub const fn in_features(&self) -> usize {
        self.channels * self.height * self.width
    }

    /// Features per output sample, `channels·out_height·out_width`: the `OUT` parameter.
    pub const fn out_features(&self) -> usize {
        self.channels * self.out_height * self.out_width
    }

    /// The index, within a channel plane, of the top-left input of output `(oh, ow)`'s window.
    #[inline]
    fn window_start(&self, oh: usize, ow: usize) -> usize {
        oh * self.stride[0] * self.width + ow * self.stride[1]
    }
}

/// `NaN` tests without `x != x` (which lints flag); compiles to that comparison.
#[inline(always)]
fn is_nan<T: Float>(v: T) -> bool {
    v.partial_cmp(&v).is_none()
}

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

/// [`window_max`] of a 2×2 window given as `[top-left, top-right, bottom-left,
/// bottom-right]`: (value, position 0..4), with the same comparisons in the same
/// order, written without branches on the values.
#[inline(always)]
fn max4<T: Float>(v: [T; 4]) -> (T, u32) {
    let (mut best, mut at) = (v[0], 0);
    for (k, &x) in (1u32..).zip(&v[1..]) {
        // Take `x` if it is larger, or if it is the first NaN (`best` is not NaN yet).
        let take = x > best || (is_nan(x) && !is_nan(best));
        best = if take { x } else { best };
        at = if take { k } else { at };
    }
    (best, at)
}

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
    argmax: Vec<u32>,
}

impl MaxPool2d {
    /// A max pooling with the given sizes.
    pub const fn new(geometry: PoolGeometry) -> Self {
        MaxPool2d { geometry }
    }

    /// Runs the pooling over every sample, reporting each output's arg-max to `record`.
    fn pool<T: Float, const IN: usize, const OUT: usize>(
        &self,
        x: &Batch<T, IN>,
        y: &mut Batch<T, OUT>,
        mut record: impl FnMut(usize, u32),
    ) {
        let g = &self.geometry;
        debug_assert!(IN == g.in_features() && OUT == g.out_features(), "MaxPool2d<{IN}, {OUT}> vs {g:?}");
        ensure_batch(y, x.ncols());
        let (plane_in, plane_out) = (g.height * g.width, g.out_height * g.out_width);
        let mut n = 0;
        let two_by_two = g.kernel == [2, 2] && g.stride == [2, 2];
        for (xs, ys) in x.as_slice().chunks_exact(IN).zip(y.as_mut_slice().chunks_exact_mut(OUT)) {
            for (xp, yp) in xs.chunks_exact(plane_in).zip(ys.chunks_exact_mut(plane_out)) {
                if two_by_two {
                    // The common 2×2 window, stride 2: the same comparisons in the
                    // same order as `window_max`, without its loops.
                    let w = g.width;
                    for (oh, yr) in yp.chunks_exact_mut(g.out_width).enumerate() {
                        let top = 2 * oh * w;
                        let (r0, r1) = (&xp[top..top + w], &xp[top + w..top + 2 * w]);
                        for (ow, yv) in yr.iter_mut().enumerate() {
                            let i = 2 * ow;
                            let (v, at) = max4([r0[i], r0[i + 1], r1[i], r1[i + 1]]);
                            *yv = v;
                            record(n, at);
                            n += 1;
                        }
                    }
                    continue;
                }
                for (oh, yr) in yp.chunks_exact_mut(g.out_width).enumerate() {
                    for (ow, yv) in yr.iter_mut().enumerate() {
                        let (v, at) = window_max(xp, g.window_start(oh, ow), g.width, g.kernel);
                        *yv = v;
                        record(n, at);
                        n += 1;
                    }
                }
            }
        }
    }
}

impl<T: Float, const IN: usize, const OUT: usize> Layer<T, IN, OUT> for MaxPool2d {
    type Workspace = MaxPoolWorkspace;
    type Gradients = ();

    fn forward(&self, x: &Batch<T, IN>, y: &mut Batch<T, OUT>) {
        self.pool(x, y, |_, _| {})
    }

    fn forward_train(&mut self, x: &Batch<T, IN>, y: &mut Batch<T, OUT>, ws: &mut MaxPoolWorkspace) {
        let len = OUT * x.ncols();
        if ws.argmax.len() != len {
            ws.argmax.clear();
            ws.argmax.resize(len, 0);
        }
        let argmax = &mut ws.argmax;
        // `n` runs over 0..len in order; the closure is inlined into the loop.
        self.pool(x, y, |n, at| argmax[n] = at)
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
        assert!(
            ws.argmax.len() == OUT * x.ncols(),
            "MaxPool2d::backward needs the workspace of a training pass on the same batch"
        );
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
        let samples = dx.as_mut_slice().chunks_exact_mut(IN).zip(dy.as_slice().chunks_exact(OUT));
        for ((dxs, dys), args) in samples.zip(ws.argmax.chunks_exact(OUT)) {
            let planes = dxs.chunks_exact_mut(plane_in).zip(dys.chunks_exact(plane_out));
            for ((dxp, dyp), argp) in planes.zip(args.chunks_exact(plane_out)) {
                if tiles && g.kernel == [2, 2] {
                    // The common 2×2 window, stride 2: two rows at a time, no bounds checks.
                    let rows = dxp.chunks_exact_mut(2 * w).zip(dyp.chunks_exact(g.out_width));
                    for ((pair, dyr), argr) in rows.zip(argp.chunks_exact(g.out_width)) {
                        let (r0, r1) = pair.split_at_mut(w);
                        let cells = r0.chunks_exact_mut(2).zip(r1.chunks_exact_mut(2));
                        for ((top, bottom), (&d, &at)) in cells.zip(dyr.iter().zip(argr)) {
                            let z = T::zero();
                            top[0] = if at == 0 { d } else { z };
                            top[1] = if at == 1 { d } else { z };
                            bottom[0] = if at == 2 { d } else { z };
                            bottom[1] = if at == 3 { d } else { z };
                        }
                    }
                    continue;
                }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gradcheck::{assert_close, numeric_grad};

    /// Checks a layer's input gradient against finite differences for L = Σ k ⊙ y.
    fn check_input_gradient<
        L: Layer<f64, IN, OUT, Gradients = ()> + Clone,
        const IN: usize,
        const OUT: usize,
    >(
        layer: &L,
        x: &Batch<f64, IN>,
        what: &str,
    ) {
        let k = Batch::<f64, OUT>::from_fn(x.ncols(), |i, j| ((i + 3 * j) as f64 * 0.61).cos());
        let loss = |x: &Batch<f64, IN>| {
            let mut y = Batch::zeros(0);
            layer.forward(x, &mut y);
            y.component_mul(&k).sum()
        };
        let mut l = layer.clone();
        let mut ws = L::Workspace::default();
        let (mut y, mut y_inf) = (Batch::zeros(0), Batch::zeros(0));
        l.forward_train(x, &mut y, &mut ws);
        l.forward(x, &mut y_inf);
        assert_eq!(y, y_inf, "{what}: inference and training outputs differ");
        let mut dx = Batch::from_element(x.ncols(), f64::NAN); // overwritten, not accumulated
        l.backward(x, &y, &k, &mut ws, &mut (), Some(&mut dx));
        let num = numeric_grad(x.as_slice(), |xs| loss(&Batch::from_column_slice(xs)));
        assert_close(dx.as_slice(), &num, 1e-7, what);
    }

    /// Distinct values in a scrambled order: no ties in any window.
    fn distinct<const N: usize>(batch: usize) -> Batch<f64, N> {
        Batch::from_fn(batch, |i, j| (((i + j * N) * 7919) % 1009) as f64 * 0.01 - 5.0)
    }

    #[test]
    fn output_sizes_are_floor_mode() {
        let g = PoolGeometry::new(3, 7, 6, [2, 2], [2, 2]);
        assert_eq!((g.out_height, g.out_width), (3, 3));
        let g = PoolGeometry::new(1, 28, 28, [3, 3], [2, 2]);
        assert_eq!((g.out_height, g.out_width, g.out_features()), (13, 13, 169));
        const G: PoolGeometry = PoolGeometry::new(2, 5, 4, [5, 1], [1, 3]);
        assert_eq!((G.out_height, G.out_width, G.in_features(), G.out_features()), (1, 2, 40, 4));
    }

    #[test]
    fn max_pool_on_hand_checked_values() {
        // One channel 4×4, 2×2 windows, stride 2; and a second channel.
        let p = MaxPool2d::new(PoolGeometry::new(2, 4, 4, [2, 2], [2, 2]));
        #[rustfmt::skip]
        let x = Batch::<f64, 32>::from_column_slice(&[
            1.0, 2.0, 5.0, 6.0,
            3.0, 4.0, 8.0, 7.0,
            -1.0, -2.0, 0.0, 0.0,
            -3.0, -4.0, 0.0, 9.0,
            // channel 1: all equal, the gradient goes to the first of each window
            1.0, 1.0, 1.0, 1.0,
            1.0, 1.0, 1.0, 1.0,
            1.0, 1.0, 1.0, 1.0,
            1.0, 1.0, 1.0, 1.0,
        ]);
        let mut y = Batch::zeros(0);
        Layer::forward(&p, &x, &mut y);
        assert_eq!(y.as_slice(), &[4.0, 8.0, -1.0, 9.0, 1.0, 1.0, 1.0, 1.0]);

        let mut l = p;
        let mut ws = MaxPoolWorkspace::default();
        Layer::forward_train(&mut l, &x, &mut y, &mut ws);
        let dy = Batch::<f64, 8>::from_column_slice(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]);
        let mut dx = Batch::zeros(0);
        Layer::backward(&l, &x, &y, &dy, &mut ws, &mut (), Some(&mut dx));
        let mut expected = [0.0; 32];
        for (at, g) in [(5, 1.0), (6, 2.0), (8, 3.0), (15, 4.0), (16, 5.0), (18, 6.0), (24, 7.0), (26, 8.0)] {
            expected[at] = g;
        }
        assert_eq!(dx.as_slice(), &expected);
    }

    #[test]
    fn max_pool_propagates_nan() {
        let p = MaxPool2d::new(PoolGeometry::new(1, 2, 4, [2, 2], [2, 2]));
        // NaN first in its window, and NaN after a larger value; other windows are unaffected.
        for x in
            [[f64::NAN, 1.0, 2.0, 3.0, 0.0, 0.0, 0.0, 0.0], [0.0, 9.0, 2.0, 3.0, f64::NAN, 0.0, 0.0, 5.0]]
        {
            let x = Batch::<f64, 8>::from_column_slice(&x);
            let mut y = Batch::<f64, 2>::zeros(0);
            Layer::forward(&p, &x, &mut y);
            assert!(y[0].is_nan(), "{y}");
            assert!(!y[1].is_nan());
        }
        let x = Batch::<f64, 8>::from_column_slice(&[f64::NEG_INFINITY; 8]);
        let mut y = Batch::<f64, 2>::zeros(0);
        Layer::forward(&p, &x, &mut y);
        assert_eq!(y.as_slice(), &[f64::NEG_INFINITY; 2]);
    }

    #[test]
    fn avg_and_global_pool_on_hand_checked_values() {
        // 1 channel 3×3, 2×2 windows with stride 1 (overlapping).
        let p = AvgPool2d::new(PoolGeometry::new(1, 3, 3, [2, 2], [1, 1]));
        let x = Batch::<f64, 9>::from_column_slice(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0]);
        let mut y = Batch::<f64, 4>::zeros(0);
        Layer::forward(&p, &x, &mut y);
        assert_eq!(y.as_slice(), &[3.0, 4.0, 6.0, 7.0]);
        let mut dx = Batch::zeros(0);
        let dy = Batch::<f64, 4>::from_element(1, 4.0);
        Layer::backward(&p, &x, &y, &dy, &mut (), &mut (), Some(&mut dx));
        // Each input counts the windows covering it.
        assert_eq!(dx.as_slice(), &[1.0, 2.0, 1.0, 2.0, 4.0, 2.0, 1.0, 2.0, 1.0]);

        let gp = GlobalAvgPool::new(2, 3);
        let x = Batch::<f64, 6>::from_column_slice(&[
            1.0, 2.0, 6.0, -1.0, -1.0, 5.0, 0.0, 0.0, 3.0, 9.0, 9.0, 9.0,
        ]);
        let mut y = Batch::<f64, 2>::zeros(0);
        Layer::forward(&gp, &x, &mut y);
        assert_eq!(y.as_slice(), &[3.0, 1.0, 1.0, 9.0]);
    }

    #[test]
    fn input_gradients_match_finite_differences() {
        let max = MaxPool2d::new(PoolGeometry::new(2, 5, 6, [2, 3], [2, 3]));
        check_input_gradient::<_, 60, 8>(&max, &distinct(3), "max pool");
        // Overlapping rows (stride < kernel) and skipped columns (stride > kernel).
        let max = MaxPool2d::new(PoolGeometry::new(2, 6, 7, [3, 2], [1, 3]));
        check_input_gradient::<_, 84, 16>(&max, &distinct(2), "max pool, overlapping");
        let avg = AvgPool2d::new(PoolGeometry::new(2, 7, 6, [3, 2], [2, 3]));
        check_input_gradient::<_, 84, 12>(&avg, &distinct(3), "avg pool");
        let avg = AvgPool2d::new(PoolGeometry::new(3, 5, 5, [2, 2], [1, 1]));
        check_input_gradient::<_, 75, 48>(&avg, &distinct(2), "avg pool, stride 1");
        check_input_gradient::<_, 36, 3>(&GlobalAvgPool::new(3, 12), &distinct(4), "global avg pool");
    }

    #[test]
    fn max_pool_training_reuses_its_workspace() {
        let mut p = MaxPool2d::new(PoolGeometry::new(4, 8, 8, [2, 2], [2, 2]));
        let x = distinct::<256>(6);
        let dy = Batch::<f64, 64>::from_element(6, 1.0);
        let (mut y, mut dx) = (Batch::zeros(0), Batch::zeros(0));
        let mut ws = MaxPoolWorkspace::default();
        Layer::forward_train(&mut p, &x, &mut y, &mut ws);
        Layer::backward(&p, &x, &y, &dy, &mut ws, &mut (), Some(&mut dx));
        let before = (ws.argmax.as_ptr(), ws.argmax.capacity(), y.as_ptr(), dx.as_ptr());
        Layer::forward_train(&mut p, &x, &mut y, &mut ws);
        Layer::backward(&p, &x, &y, &dy, &mut ws, &mut (), Some(&mut dx));
        assert_eq!((ws.argmax.as_ptr(), ws.argmax.capacity(), y.as_ptr(), dx.as_ptr()), before);
    }
}
