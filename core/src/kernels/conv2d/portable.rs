//! The portable small products, generic over the float type: written so the
//! compiler vectorizes them (along the output positions, or across explicit
//! 8-lane accumulators), with no bounds checks in inner loops.

use crate::float::Float;
use crate::tensor::lane_sum;

/// [`super::product`] for any float type.
pub(crate) fn product<T: Float>(out: &mut [T], n: usize, a: &[T], inner: usize, b: &[T], init: Option<&[T]>) {
    product_impl(out, n, a, inner, b, init)
}

/// [`super::gram_add`] for any float type.
pub(crate) fn gram_add<T: Float>(out: &mut [T], n: usize, a: &[T], b: &[T]) {
    gram_add_impl(out, n, a, b)
}

/// The sum of `v`, over 8 interleaved partial sums.
pub(crate) fn sum<T: Float>(v: &[T]) -> T {
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
