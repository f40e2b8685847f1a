//! im2col and its adjoint col2im: one input sample unfolded into the columns
//! the products read, and column gradients folded back onto the input.

use super::Conv2dGeometry;
use crate::float::Float;
use crate::geometry::for_each_tap;

/// Unfolds one input sample `x` (`[CIN, H, W]`) into point-major columns:
/// `cols[k·OH·OW + oh·OW + ow]` is the input under kernel tap `k` for output
/// `(oh, ow)`, or zero where that falls in the padding.
pub(super) fn im2col<T: Float>(g: &Conv2dGeometry, x: &[T], cols: &mut [T]) {
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
pub(super) fn col2im<T: Float>(g: &Conv2dGeometry, dcols: &[T], dx: &mut [T]) {
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
