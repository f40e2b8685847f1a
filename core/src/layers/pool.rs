//! Pooling over `[C, H, W]` samples: max, average and global average.
//!
//! PyTorch's semantics: `MaxPool2d`/`AvgPool2d` in floor mode without padding
//! (so every window lies inside the image and an average always divides by
//! `kh·kw`), and `AdaptiveAvgPool2d(1)` + flatten for [`GlobalAvgPool`].

use super::{Activation, Layer, Relu};
use crate::float::Float;
use crate::kernels::simd::{as_f32, as_f32_mut, has_avx2, has_avx512};
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

/// The larger of two (value, position) candidates, `a` coming first in the
/// window: `b` only if it is larger, or if it is NaN and `a` is not, so the
/// first maximum (or the first NaN) wins. Branch-free, so loops vectorise.
#[inline(always)]
fn first_max<T: Float>(a: (T, u32), b: (T, u32)) -> (T, u32) {
    let take = (b.0 > a.0) | (is_nan(b.0) & !is_nan(a.0));
    (if take { b.0 } else { a.0 }, if take { b.1 } else { a.1 })
}

/// [`window_max`] of a 2×2 window, `top = [top-left, top-right]` and
/// `bottom` likewise: (value, position 0..4). Each row's first maximum, then
/// the first of the two, is the window's first maximum in row order.
#[inline(always)]
fn max4<T: Float>(top: [T; 2], bottom: [T; 2]) -> (T, u32) {
    let upper = first_max((top[0], 0), (top[1], 1));
    let lower = first_max((bottom[0], 2), (bottom[1], 3));
    first_max(upper, lower)
}

/// 2×2 max pooling with stride 2 of one channel plane `w` wide into `y`
/// (`out_w` wide), recording each output's window position in `arg` when given.
///
/// With `relu` (only when the windows tile the plane), the plane first goes
/// through a ReLU, written to `relu`, and the pooling reads those values: both
/// layers in one pass over the input.
#[inline(always)]
fn max_pool_2x2<T: Float>(
    xp: &[T],
    w: usize,
    y: &mut [T],
    out_w: usize,
    mut arg: Option<&mut [u32]>,
    mut relu: Option<&mut [T]>,
) {
    if let (Some(xp), Some(y), true) = (as_f32(xp), as_f32_mut(y), has_avx512()) {
        let relu = relu.map(|r| as_f32_mut(r).unwrap_or_default());
        // SAFETY: the CPU has AVX-512, just checked; the slices are as `avx512` requires.
        #[cfg(target_arch = "x86_64")]
        return unsafe { avx512::max_pool_2x2(xp, w, y, out_w, arg, relu) };
    }
    // With AVX2, whole blocks of 8 windows per row in registers; the rest below.
    let mut from = 0;
    #[cfg(target_arch = "x86_64")]
    if let (Some(xp), Some(y), true) = (as_f32(xp), as_f32_mut(y), has_avx2()) {
        let relu = relu.as_deref_mut().map(|r| as_f32_mut(r).unwrap_or_default());
        // SAFETY: the CPU has AVX2, just checked; the slices are as `avx2` requires.
        from = unsafe { avx2::max_pool_2x2(xp, w, y, out_w, arg.as_deref_mut(), relu) };
    }
    for (r, pair) in xp.chunks_exact(2 * w).enumerate() {
        let pair = match relu.as_deref_mut() {
            Some(relu) => {
                let out = &mut relu[2 * r * w..2 * (r + 1) * w];
                for c in (2 * from..w).chain(w + 2 * from..2 * w) {
                    out[c] = Relu::value(pair[c]);
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

/// The backward pass of [`max_pool_2x2`] when the windows tile the plane:
/// every input gets its window's gradient if it was the maximum, else zero.
///
/// With `relu = (y, dx)`, the pooling's input came from a ReLU: its input
/// gradient goes on into `dx`, zero where the ReLU's input was not positive,
/// which at a window's maximum is where the pooled `y` is not.
#[inline(always)]
fn max_pool_2x2_backward<T: Float>(
    dxp: &mut [T],
    w: usize,
    dy: &[T],
    arg: &[u32],
    out_w: usize,
    mut relu: Option<(&[T], &mut [T])>,
) {
    if let (Some(dxp), Some(dy), true) = (as_f32_mut(dxp), as_f32(dy), has_avx512()) {
        let relu = relu.map(|(y, dx)| (as_f32(y).unwrap_or_default(), as_f32_mut(dx).unwrap_or_default()));
        // SAFETY: as in `max_pool_2x2`.
        #[cfg(target_arch = "x86_64")]
        return unsafe { avx512::max_pool_2x2_backward(dxp, w, dy, arg, out_w, relu) };
    }
    let mut from = 0;
    #[cfg(target_arch = "x86_64")]
    if let (Some(dxp), Some(dy), true) = (as_f32_mut(dxp), as_f32(dy), has_avx2()) {
        let relu =
            relu.as_mut().map(|(y, dx)| (as_f32(y).unwrap_or_default(), as_f32_mut(dx).unwrap_or_default()));
        // SAFETY: as in `max_pool_2x2`.
        from = unsafe { avx2::max_pool_2x2_backward(dxp, w, dy, arg, out_w, relu) };
    }
    let z = T::zero();
    // One pass per window, writing both gradients: the window's four
    // positions get `dy` or zero, and through the ReLU the same unless the
    // pooled value was not positive (two passes, the second indexing `y` by
    // `i / 2`, made this a third of the cnn's training step without AVX-512).
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

/// The 2×2 kernels for f32 with AVX2 (CPUs without AVX-512): whole blocks of
/// 8 windows, the even and odd columns of 16 values separated by a shuffle
/// and a lane permutation. They return how many windows of each row they did;
/// the portable loops do the rest (no masked stores: a dozen cycles each on
/// AMD's Zen 3). The same comparisons as [`max4`], lane by lane.
#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    /// The first windows of the blocks of 8 in a row of `out_w`: the last
    /// block overlaps the one before when 8 does not divide `out_w` (its
    /// windows are computed twice, with the same result, rather than through
    /// a masked or scalar tail).
    fn blocks(out_w: usize) -> impl Iterator<Item = usize> {
        let tail = (out_w > 8 && !out_w.is_multiple_of(8)).then(|| out_w - 8);
        (0..out_w / 8).map(|b| 8 * b).chain(tail)
    }

    /// How many windows of each row [`blocks`] covers: all, or none when a row has fewer than 8.
    fn done(out_w: usize) -> usize {
        if out_w >= 8 {
            out_w
        } else {
            0
        }
    }

    /// [`super::first_max`] on 8 lanes (the positions as integers in float lanes).
    #[inline(always)]
    unsafe fn first_max(a: (__m256, __m256), b: (__m256, __m256)) -> (__m256, __m256) {
        let greater = _mm256_cmp_ps::<_CMP_GT_OQ>(b.0, a.0);
        let b_nan = _mm256_cmp_ps::<_CMP_UNORD_Q>(b.0, b.0);
        let a_nan = _mm256_cmp_ps::<_CMP_UNORD_Q>(a.0, a.0);
        let take = _mm256_or_ps(greater, _mm256_andnot_ps(a_nan, b_nan));
        (_mm256_blendv_ps(a.0, b.0, take), _mm256_blendv_ps(a.1, b.1, take))
    }

    /// Loads 16 consecutive values as their even and odd columns; with
    /// `relu`, through a ReLU whose values are also stored there.
    #[inline(always)]
    unsafe fn load_pairs(row: *const f32, relu: Option<*mut f32>) -> (__m256, __m256) {
        let (mut lo, mut hi) = unsafe { (_mm256_loadu_ps(row), _mm256_loadu_ps(row.add(8))) };
        if let Some(relu) = relu {
            // `x < 0` is false for NaN, which passes through (as `Relu`).
            let zero = _mm256_setzero_ps();
            lo = _mm256_andnot_ps(_mm256_cmp_ps::<_CMP_LT_OQ>(lo, zero), lo);
            hi = _mm256_andnot_ps(_mm256_cmp_ps::<_CMP_LT_OQ>(hi, zero), hi);
            unsafe { _mm256_storeu_ps(relu, lo) };
            unsafe { _mm256_storeu_ps(relu.add(8), hi) };
        }
        // Per 128-bit lane [lo0 lo2 hi0 hi2 | lo4 lo6 hi4 hi6], then the 64-bit pairs in order.
        let order = |v: __m256| _mm256_castpd_ps(_mm256_permute4x64_pd::<0xD8>(_mm256_castps_pd(v)));
        (order(_mm256_shuffle_ps::<0x88>(lo, hi)), order(_mm256_shuffle_ps::<0xDD>(lo, hi)))
    }

    /// Stores `even` and `odd` interleaved as 16 consecutive values.
    #[inline(always)]
    unsafe fn store_pairs(row: *mut f32, even: __m256, odd: __m256) {
        let (lo, hi) = (_mm256_unpacklo_ps(even, odd), _mm256_unpackhi_ps(even, odd));
        unsafe { _mm256_storeu_ps(row, _mm256_permute2f128_ps::<0x20>(lo, hi)) };
        unsafe { _mm256_storeu_ps(row.add(8), _mm256_permute2f128_ps::<0x31>(lo, hi)) };
    }

    /// See [`super::max_pool_2x2`]; returns the windows done per row.
    ///
    /// # Safety
    /// The CPU supports AVX2.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn max_pool_2x2(
        xp: &[f32],
        w: usize,
        y: &mut [f32],
        out_w: usize,
        mut arg: Option<&mut [u32]>,
        mut relu: Option<&mut [f32]>,
    ) -> usize {
        let idx = |k| _mm256_castsi256_ps(_mm256_set1_epi32(k));
        for (r, pair) in xp.chunks_exact(2 * w).enumerate() {
            debug_assert!(y.len() >= (r + 1) * out_w && 2 * out_w <= w);
            let mut relu_at = |c: usize| relu.as_deref_mut().map(|x| x[2 * r * w + c..].as_mut_ptr());
            for i0 in blocks(out_w) {
                let c = 2 * i0;
                // SAFETY: 16 values from `c` lie within each row (i0 + 8 ≤ out_w, 2·out_w ≤ w).
                let (t0, t1) = unsafe { load_pairs(pair[c..].as_ptr(), relu_at(c)) };
                let (b0, b1) = unsafe { load_pairs(pair[w + c..].as_ptr(), relu_at(w + c)) };
                let upper = unsafe { first_max((t0, idx(0)), (t1, idx(1))) };
                let lower = unsafe { first_max((b0, idx(2)), (b1, idx(3))) };
                let (v, at) = unsafe { first_max(upper, lower) };
                let out = r * out_w + i0;
                // SAFETY: 8 outputs from `out` lie within the row of `y` (and `arg`).
                unsafe { _mm256_storeu_ps(y[out..out + 8].as_mut_ptr(), v) };
                if let Some(arg) = arg.as_deref_mut() {
                    unsafe { _mm256_storeu_ps(arg[out..out + 8].as_mut_ptr().cast(), at) };
                }
            }
        }
        done(out_w)
    }

    /// See [`super::max_pool_2x2_backward`]; returns the windows done per row.
    ///
    /// # Safety
    /// The CPU supports AVX2.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn max_pool_2x2_backward(
        dxp: &mut [f32],
        w: usize,
        dy: &[f32],
        arg: &[u32],
        out_w: usize,
        mut relu: Option<(&[f32], &mut [f32])>,
    ) -> usize {
        for (r, pair) in dxp.chunks_exact_mut(2 * w).enumerate() {
            let (top, bottom) = pair.split_at_mut(w);
            for i0 in blocks(out_w) {
                let (out, c) = (r * out_w + i0, 2 * i0);
                // SAFETY: 8 outputs from `out`, 16 inputs from `c` in each row (as in the forward pass).
                let d = unsafe { _mm256_loadu_ps(dy[out..out + 8].as_ptr()) };
                let at = unsafe { _mm256_loadu_si256(arg[out..out + 8].as_ptr().cast()) };
                let is = |k| _mm256_castsi256_ps(_mm256_cmpeq_epi32(at, _mm256_set1_epi32(k)));
                let pick = |k| _mm256_and_ps(is(k), d);
                unsafe { store_pairs(top[c..c + 16].as_mut_ptr(), pick(0), pick(1)) };
                unsafe { store_pairs(bottom[c..c + 16].as_mut_ptr(), pick(2), pick(3)) };
                if let Some((y, dx)) = relu.as_mut() {
                    let y = unsafe { _mm256_loadu_ps(y[out..out + 8].as_ptr()) };
                    let positive = _mm256_cmp_ps::<_CMP_GT_OQ>(y, _mm256_setzero_ps());
                    let pick = |k| _mm256_and_ps(positive, pick(k));
                    let row = 2 * r * w + c;
                    unsafe { store_pairs(dx[row..row + 16].as_mut_ptr(), pick(0), pick(1)) };
                    unsafe { store_pairs(dx[row + w..row + w + 16].as_mut_ptr(), pick(2), pick(3)) };
                }
            }
        }
        done(out_w)
    }
}

/// The 2×2 kernels for f32 with AVX-512: 16 windows per step, the even and odd
/// columns of each row separated by one permutation, the row's end handled by
/// masked loads and stores. The same comparisons as [`max4`], lane by lane.
#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::*;

    /// The lowest `n` bits set (`n ≤ 16`).
    #[inline(always)]
    fn mask(n: usize) -> __mmask16 {
        ((1u32 << n) - 1) as __mmask16
    }

    /// [`super::first_max`] on 16 lanes.
    #[inline(always)]
    unsafe fn first_max(a: (__m512, __m512i), b: (__m512, __m512i)) -> (__m512, __m512i) {
        let greater = _mm512_cmp_ps_mask::<_CMP_GT_OQ>(b.0, a.0);
        let b_nan = _mm512_cmp_ps_mask::<_CMP_UNORD_Q>(b.0, b.0);
        let a_nan = _mm512_cmp_ps_mask::<_CMP_UNORD_Q>(a.0, a.0);
        let take = greater | (b_nan & !a_nan);
        (_mm512_mask_blend_ps(take, a.0, b.0), _mm512_mask_blend_epi32(take, a.1, b.1))
    }

    /// Loads `2·n` consecutive values (`n ≤ 16`) as their even and odd columns;
    /// with `relu`, through a ReLU whose values are also stored there.
    #[inline(always)]
    unsafe fn load_pairs(row: &[f32], n: usize, relu: Option<&mut [f32]>) -> (__m512, __m512) {
        debug_assert!(row.len() >= 2 * n);
        let p = row.as_ptr();
        let (m_lo, m_hi) = (mask((2 * n).min(16)), mask((2 * n).saturating_sub(16)));
        let mut lo = _mm512_maskz_loadu_ps(m_lo, p);
        // Masked-off lanes are not read, so the pointer may run past the row.
        let mut hi = _mm512_maskz_loadu_ps(m_hi, p.wrapping_add(16));
        if let Some(relu) = relu {
            debug_assert!(relu.len() >= 2 * n);
            // `x < 0` is false for NaN, which passes through (as `Relu`).
            let zero = _mm512_setzero_ps();
            lo = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask::<_CMP_NLT_UQ>(lo, zero), lo);
            hi = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask::<_CMP_NLT_UQ>(hi, zero), hi);
            _mm512_mask_storeu_ps(relu.as_mut_ptr(), m_lo, lo);
            _mm512_mask_storeu_ps(relu.as_mut_ptr().wrapping_add(16), m_hi, hi);
        }
        let even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
        let odd = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
        (_mm512_permutex2var_ps(lo, even, hi), _mm512_permutex2var_ps(lo, odd, hi))
    }

    /// Stores `even` and `odd` interleaved as `2·n` consecutive values.
    #[inline(always)]
    unsafe fn store_pairs(row: &mut [f32], n: usize, even: __m512, odd: __m512) {
        debug_assert!(row.len() >= 2 * n);
        let p = row.as_mut_ptr();
        let first = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
        let second = _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
        _mm512_mask_storeu_ps(p, mask((2 * n).min(16)), _mm512_permutex2var_ps(even, first, odd));
        let hi = _mm512_permutex2var_ps(even, second, odd);
        _mm512_mask_storeu_ps(p.wrapping_add(16), mask((2 * n).saturating_sub(16)), hi);
    }

    /// See [`super::max_pool_2x2`].
    ///
    /// # Safety
    /// The CPU supports AVX-512F.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn max_pool_2x2(
        xp: &[f32],
        w: usize,
        y: &mut [f32],
        out_w: usize,
        mut arg: Option<&mut [u32]>,
        mut relu: Option<&mut [f32]>,
    ) {
        let idx = |k| _mm512_set1_epi32(k);
        for (r, pair) in xp.chunks_exact(2 * w).enumerate() {
            let (top, bottom) = pair.split_at(w);
            let mut relu_rows = relu.as_deref_mut().map(|x| x[2 * r * w..2 * (r + 1) * w].split_at_mut(w));
            for i0 in (0..out_w).step_by(16) {
                let n = (out_w - i0).min(16);
                let cols = 2 * i0..2 * out_w;
                let (relu_top, relu_bottom) = match relu_rows.as_mut() {
                    Some((t, b)) => (Some(&mut t[cols.clone()]), Some(&mut b[cols.clone()])),
                    None => (None, None),
                };
                let (t0, t1) = load_pairs(&top[cols.clone()], n, relu_top);
                let (b0, b1) = load_pairs(&bottom[cols], n, relu_bottom);
                let upper = first_max((t0, idx(0)), (t1, idx(1)));
                let lower = first_max((b0, idx(2)), (b1, idx(3)));
                let (v, at) = first_max(upper, lower);
                let out = r * out_w + i0;
                let yr = &mut y[out..out + n];
                _mm512_mask_storeu_ps(yr.as_mut_ptr(), mask(n), v);
                if let Some(arg) = arg.as_deref_mut() {
                    let ar = &mut arg[out..out + n];
                    _mm512_mask_storeu_epi32(ar.as_mut_ptr().cast(), mask(n), at);
                }
            }
        }
    }

    /// See [`super::max_pool_2x2_backward`].
    ///
    /// # Safety
    /// The CPU supports AVX-512F.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn max_pool_2x2_backward(
        dxp: &mut [f32],
        w: usize,
        dy: &[f32],
        arg: &[u32],
        out_w: usize,
        mut relu: Option<(&[f32], &mut [f32])>,
    ) {
        let at_is = |at, k| _mm512_cmpeq_epi32_mask(at, _mm512_set1_epi32(k));
        for (r, pair) in dxp.chunks_exact_mut(2 * w).enumerate() {
            let (top, bottom) = pair.split_at_mut(w);
            let mut relu_rows = relu
                .as_mut()
                .map(|(y, dx)| (&y[r * out_w..], dx[2 * r * w..2 * (r + 1) * w].split_at_mut(w)));
            for i0 in (0..out_w).step_by(16) {
                let n = (out_w - i0).min(16);
                let out = r * out_w + i0;
                let (dyr, ar) = (&dy[out..out + n], &arg[out..out + n]);
                let d = _mm512_maskz_loadu_ps(mask(n), dyr.as_ptr());
                let at = _mm512_maskz_loadu_epi32(mask(n), ar.as_ptr().cast());
                let pick = |k| _mm512_maskz_mov_ps(at_is(at, k), d);
                let cols = 2 * i0..2 * out_w;
                store_pairs(&mut top[cols.clone()], n, pick(0), pick(1));
                store_pairs(&mut bottom[cols.clone()], n, pick(2), pick(3));
                if let Some((y, (dx_top, dx_bottom))) = relu_rows.as_mut() {
                    let yr = &y[i0..i0 + n];
                    let y = _mm512_maskz_loadu_ps(mask(n), yr.as_ptr());
                    let positive = _mm512_cmp_ps_mask::<_CMP_GT_OQ>(y, _mm512_setzero_ps());
                    let pick = |k| _mm512_maskz_mov_ps(at_is(at, k) & positive, d);
                    store_pairs(&mut dx_top[cols.clone()], n, pick(0), pick(1));
                    store_pairs(&mut dx_bottom[cols], n, pick(2), pick(3));
                }
            }
        }
    }
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
        self.relu_pool(x.as_slice(), relu_out.as_mut_slice(), y.as_mut_slice(), &mut ws.argmax);
    }

    /// [`MaxPool2d::forward_train_after_relu`] on whole samples given as slices
    /// (any number of them; 2×2 tiles only).
    pub(crate) fn relu_pool<T: Float>(&self, x: &[T], relu_out: &mut [T], y: &mut [T], argmax: &mut [u32]) {
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
    /// the gradient of the ReLU's output into `d_relu_out` and, when asked for,
    /// of its input `x` into `dx`, as `Layer::backward` of the pooling, then of
    /// the ReLU, would compute them.
    #[allow(clippy::too_many_arguments)]
    pub fn backward_after_relu<T: Float, const IN: usize, const OUT: usize>(
        &self,
        x: &Batch<T, IN>,
        relu_out: &Batch<T, IN>,
        y: &Batch<T, OUT>,
        dy: &Batch<T, OUT>,
        ws: &mut MaxPoolWorkspace,
        d_relu_out: &mut Batch<T, IN>,
        dx: Option<&mut Batch<T, IN>>,
    ) {
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
        self.relu_pool_backward(d_relu_out.as_mut_slice(), dy.as_slice(), &ws.argmax, y.as_slice(), dx);
    }

    /// [`MaxPool2d::backward_after_relu`] on whole samples given as slices (any
    /// number of them; 2×2 tiles only): `y`, `dy` and `argmax` of the pooling,
    /// the gradients into `d_relu_out` and `dx`.
    pub(crate) fn relu_pool_backward<T: Float>(
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

    /// Values with ties, zeros of both signs, negatives, NaN and infinities, all
    /// exact in f32 and f64.
    fn awkward<const N: usize>(batch: usize) -> Batch<f64, N> {
        Batch::from_fn(batch, |i, j| match (i * 31 + j * 17) % 23 {
            0 => f64::NAN,
            1 => f64::INFINITY,
            2 => f64::NEG_INFINITY,
            3 => -0.0,
            4 | 5 => 0.0,
            6..=8 => 1.5,
            k => (k as f64 - 12.0) * 0.25,
        })
    }

    fn bits<T: Float>(v: &[T]) -> Vec<u64> {
        // NaN compares unequal to itself; compare NaN-ness and values.
        v.iter().map(|x| if x.as_f64().is_nan() { u64::MAX } else { x.as_f64().to_bits() }).collect()
    }

    /// One training step of `relu, max_pool` layer by layer and fused, in `T`:
    /// (relu out, pool out, d relu out, dx) of both.
    fn relu_pool_both_ways<T: Float, const IN: usize, const OUT: usize>(
        g: PoolGeometry,
        x: &Batch<f64, IN>,
    ) -> [[Vec<u64>; 4]; 2] {
        let x = x.map(T::cast);
        let dy = Batch::<T, OUT>::from_fn(x.ncols(), |i, j| T::cast(((i * 7 + j) % 11) as f64 - 5.0));
        let mut pool = MaxPool2d::new(g);
        let mut ws = MaxPoolWorkspace::default();
        let (mut r, mut y, mut dr, mut dx) =
            (Batch::zeros(0), Batch::zeros(0), Batch::zeros(0), Batch::zeros(0));
        Layer::forward_train(&mut Relu, &x, &mut r, &mut ());
        Layer::forward_train(&mut pool, &r, &mut y, &mut ws);
        Layer::backward(&pool, &r, &y, &dy, &mut ws, &mut (), Some(&mut dr));
        Layer::backward(&Relu, &x, &r, &dr, &mut (), &mut (), Some(&mut dx));
        let apart = [bits(r.as_slice()), bits(y.as_slice()), bits(dr.as_slice()), bits(dx.as_slice())];
        let mut ws = MaxPoolWorkspace::default();
        let (mut r, mut y, mut dr) = (Batch::from_element(1, T::one()), Batch::zeros(0), Batch::zeros(0));
        let mut dx = Batch::from_element(x.ncols(), T::cast(f64::NAN));
        pool.forward_train_after_relu(&x, &mut r, &mut y, &mut ws);
        pool.backward_after_relu(&x, &r, &y, &dy, &mut ws, &mut dr, Some(&mut dx));
        let fused = [bits(r.as_slice()), bits(y.as_slice()), bits(dr.as_slice()), bits(dx.as_slice())];
        [apart, fused]
    }

    /// Asserts `a == b`, naming the first difference rather than printing both.
    fn assert_same<T: PartialEq + std::fmt::Debug>(a: &[Vec<T>], b: &[Vec<T>], what: &str) {
        for (k, (a, b)) in a.iter().zip(b).enumerate() {
            assert_eq!(a.len(), b.len(), "{what}: part {k} lengths");
            if let Some(i) = (0..a.len()).find(|&i| a[i] != b[i]) {
                panic!("{what}: part {k} differs first at {i}: {:?} vs {:?}", a[i], b[i]);
            }
        }
    }

    #[test]
    fn relu_then_max_pool_fused_equals_layer_by_layer_in_f32_and_f64() {
        // 40 wide: 20 outputs per row; AVX-512: a vector of 16 and a masked tail of 4; AVX2: two blocks of 8, and one overlapping them.
        let g = PoolGeometry::new(3, 6, 40, [2, 2], [2, 2]);
        let x = awkward::<720>(3);
        let [apart, fused] = relu_pool_both_ways::<f64, 720, 180>(g, &x);
        assert_same(&apart, &fused, "f64");
        let [apart32, fused32] = relu_pool_both_ways::<f32, 720, 180>(g, &x);
        assert_same(&apart32, &fused32, "f32");
        // The f32 kernels (vectorised where the CPU allows) pick the same
        // maxima, so everything equals the f64 path's values.
        assert_same(&apart32, &apart, "f32 vs f64");
        // A plane the windows do not tile, 9 windows per row: the vector kernels'
        // block of 8 and an overlapping last one, against the f64 path.
        let g = PoolGeometry::new(2, 5, 19, [2, 2], [2, 2]);
        let x = awkward::<190>(2);
        let [apart32, _] = relu_pool_both_ways::<f32, 190, 36>(g, &x);
        let [apart64, _] = relu_pool_both_ways::<f64, 190, 36>(g, &x);
        assert_same(&apart32, &apart64, "f32 vs f64, 19 wide");
        // Windows that do not tile the plane (odd sizes, other shapes) go layer by layer.
        for g in [PoolGeometry::new(2, 5, 7, [2, 2], [2, 2]), PoolGeometry::new(2, 5, 7, [3, 2], [1, 2])] {
            let x = awkward::<70>(2);
            let out = g.out_features();
            let [apart, fused] = match out {
                12 => relu_pool_both_ways::<f32, 70, 12>(g, &x),
                _ => relu_pool_both_ways::<f32, 70, 18>(g, &x),
            };
            assert_same(&apart, &fused, &format!("{g:?}"));
        }
    }

    /// One training step of a max pooling in `T`: (output, arg-max, input gradient).
    fn pool_step<T: Float, const IN: usize, const OUT: usize>(
        g: PoolGeometry,
        x: &Batch<f64, IN>,
    ) -> (Vec<u64>, Vec<u32>, Vec<u64>) {
        let (x, mut p) = (x.map(T::cast), MaxPool2d::new(g));
        let dy = Batch::<T, OUT>::from_fn(x.ncols(), |i, j| T::cast((i + 3 * j) as f64));
        let (mut ws, mut y, mut dx) = (MaxPoolWorkspace::default(), Batch::zeros(0), Batch::zeros(0));
        Layer::forward_train(&mut p, &x, &mut y, &mut ws);
        Layer::backward(&p, &x, &y, &dy, &mut ws, &mut (), Some(&mut dx));
        (bits(y.as_slice()), ws.argmax, bits(dx.as_slice()))
    }

    #[test]
    fn max_pool_in_f32_equals_f64_on_ties_nan_and_tails() {
        // 2×2 tiles with 17 outputs per row (a vector and a 1-wide tail).
        let g = PoolGeometry::new(2, 4, 34, [2, 2], [2, 2]);
        let x = awkward::<272>(3);
        assert_eq!(pool_step::<f32, 272, 68>(g, &x), pool_step::<f64, 272, 68>(g, &x));
        // A last row and column that no window covers.
        let g = PoolGeometry::new(2, 5, 35, [2, 2], [2, 2]);
        let x = awkward::<350>(3);
        assert_eq!(pool_step::<f32, 350, 68>(g, &x), pool_step::<f64, 350, 68>(g, &x));
    }
}
