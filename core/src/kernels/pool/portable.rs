//! The portable 2×2 max pooling, generic over the float type; the vector
//! kernels make the same comparisons lane by lane.

use crate::float::Float;

/// `NaN` tests without `x != x` (which lints flag); compiles to that comparison.
#[inline(always)]
pub(crate) fn is_nan<T: Float>(v: T) -> bool {
    v.partial_cmp(&v).is_none()
}

/// `max(0, x)`, NaN staying NaN (`x < 0` is false for it), as `layers::Relu`.
#[inline(always)]
fn relu<T: Float>(x: T) -> T {
    if x < T::zero() {
        T::zero()
    } else {
        x
    }
}

/// The larger of two (value, position) candidates, `a` coming first in the
/// window: `b` only if it is larger, or if it is NaN and `a` is not, so the
/// first maximum (or the first NaN) wins. Branch-free, so loops vectorise.
#[inline(always)]
pub(super) fn first_max<T: Float>(a: (T, u32), b: (T, u32)) -> (T, u32) {
    let take = (b.0 > a.0) | (is_nan(b.0) & !is_nan(a.0));
    (if take { b.0 } else { a.0 }, if take { b.1 } else { a.1 })
}

/// The first maximum of a 2×2 window, `top = [top-left, top-right]` and
/// `bottom` likewise: (value, position 0..4). Each row's first maximum, then
/// the first of the two, is the window's first maximum in row order.
#[inline(always)]
pub(super) fn max4<T: Float>(top: [T; 2], bottom: [T; 2]) -> (T, u32) {
    let upper = first_max((top[0], 0), (top[1], 1));
    let lower = first_max((bottom[0], 2), (bottom[1], 3));
    first_max(upper, lower)
}

/// [`super::max_pool_2x2`] for any float type.
#[inline(always)]
pub(crate) fn max_pool_2x2<T: Float>(
    xp: &[T],
    w: usize,
    y: &mut [T],
    out_w: usize,
    arg: Option<&mut [u32]>,
    relu: Option<&mut [T]>,
) {
    max_pool_2x2_from(0, xp, w, y, out_w, arg, relu)
}

/// [`max_pool_2x2`] of the windows from `from` on in each row (a vector kernel did the others).
#[inline(always)]
pub(super) fn max_pool_2x2_from<T: Float>(
    from: usize,
    xp: &[T],
    w: usize,
    y: &mut [T],
    out_w: usize,
    mut arg: Option<&mut [u32]>,
    mut relu: Option<&mut [T]>,
) {
    for (r, pair) in xp.chunks_exact(2 * w).enumerate() {
        let pair = match relu.as_deref_mut() {
            Some(relu) => {
                let out = &mut relu[2 * r * w..2 * (r + 1) * w];
                for c in (2 * from..w).chain(w + 2 * from..2 * w) {
                    out[c] = self::relu(pair[c]);
                }
                &*out
            }
            None => pair,
        };
        let (top, bottom) = (&pair[..2 * out_w], &pair[w..w + 2 * out_w]);
        let yr = &mut y[r * out_w..(r + 1) * out_w];
        let mut ar = arg.as_deref_mut().map(|a| &mut a[r * out_w..(r + 1) * out_w]);
        for i in from..out_w {
            let (v, at) = max4([top[2 * i], top[2 * i + 1]], [bottom[2 * i], bottom[2 * i + 1]]);
            yr[i] = v;
            if let Some(ar) = ar.as_deref_mut() {
                ar[i] = at;
            }
        }
    }
}

/// [`super::max_pool_2x2_backward`] for any float type.
#[inline(always)]
pub(crate) fn max_pool_2x2_backward<T: Float>(
    dxp: &mut [T],
    w: usize,
    dy: &[T],
    arg: &[u32],
    out_w: usize,
    relu: Option<(&[T], &mut [T])>,
) {
    max_pool_2x2_backward_from(0, dxp, w, dy, arg, out_w, relu)
}

/// [`max_pool_2x2_backward`] of the windows from `from` on in each row.
///
/// One pass per window, writing both gradients: the window's four positions
/// get `dy` or zero, and through the ReLU the same unless the pooled value was
/// not positive.
#[inline(always)]
pub(super) fn max_pool_2x2_backward_from<T: Float>(
    from: usize,
    dxp: &mut [T],
    w: usize,
    dy: &[T],
    arg: &[u32],
    out_w: usize,
    mut relu: Option<(&[T], &mut [T])>,
) {
    let z = T::zero();
    for (r, pair) in dxp.chunks_exact_mut(2 * w).enumerate() {
        let (top, bottom) = pair.split_at_mut(w);
        let (dyr, ar) = (&dy[r * out_w..(r + 1) * out_w], &arg[r * out_w..(r + 1) * out_w]);
        let window = |i: usize| {
            let (d, at) = (dyr[i], ar[i]);
            [0, 1, 2, 3].map(|k| if at == k { d } else { z })
        };
        match relu.as_mut() {
            None => {
                for i in from..out_w {
                    let g = window(i);
                    (top[2 * i], top[2 * i + 1], bottom[2 * i], bottom[2 * i + 1]) = (g[0], g[1], g[2], g[3]);
                }
            }
            Some((y, dx)) => {
                let yr = &y[r * out_w..(r + 1) * out_w];
                let (dx_top, dx_bottom) = dx[2 * r * w..2 * (r + 1) * w].split_at_mut(w);
                for i in from..out_w {
                    let g = window(i);
                    (top[2 * i], top[2 * i + 1], bottom[2 * i], bottom[2 * i + 1]) = (g[0], g[1], g[2], g[3]);
                    let g = if yr[i] > z { g } else { [z; 4] };
                    (dx_top[2 * i], dx_top[2 * i + 1], dx_bottom[2 * i], dx_bottom[2 * i + 1]) =
                        (g[0], g[1], g[2], g[3]);
                }
            }
        }
    }
}
