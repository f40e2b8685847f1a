//! 2×2 max pooling with AVX-512: 16 windows per step, the even and odd
//! columns of each row separated by one permutation, the row's end handled by
//! masked loads and stores. The same comparisons as
//! [`super::portable::max4`], lane by lane.

use std::arch::x86_64::*;

/// The lowest `n` bits set (`n ≤ 16`).
#[inline(always)]
fn mask(n: usize) -> __mmask16 {
    ((1u32 << n) - 1) as __mmask16
}

/// [`super::portable::first_max`] on 16 lanes.
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
///
/// # Safety
/// The CPU supports AVX-512F; `row` (and `relu`) hold at least `2·n` values.
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
///
/// # Safety
/// The CPU supports AVX-512F; `row` holds at least `2·n` values.
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

/// [`super::max_pool_2x2`].
///
/// # Safety
/// The CPU supports AVX-512F; the lengths are those `super::max_pool_2x2` asserts.
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

/// [`super::max_pool_2x2_backward`].
///
/// # Safety
/// The CPU supports AVX-512F; the lengths are those `super::max_pool_2x2_backward` asserts.
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
        let mut relu_rows =
            relu.as_mut().map(|(y, dx)| (&y[r * out_w..], dx[2 * r * w..2 * (r + 1) * w].split_at_mut(w)));
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
