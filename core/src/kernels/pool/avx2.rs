//! 2×2 max pooling with AVX2 (CPUs without AVX-512): whole blocks of 8
//! windows, the even and odd columns of 16 values separated by a shuffle and
//! a lane permutation. The kernels return how many windows of each row they
//! did; the portable loops do the rest (masked stores are slow on AMD's Zen 3).
//! The same comparisons as [`super::portable::max4`], lane by lane.

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

/// [`super::portable::first_max`] on 8 lanes (the positions as integers in float lanes).
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
///
/// # Safety
/// The CPU supports AVX2; 16 values from `row` (and from `relu`) are in bounds.
#[inline(always)]
unsafe fn load_pairs(row: *const f32, relu: Option<*mut f32>) -> (__m256, __m256) {
    // SAFETY: the caller's bounds.
    let (mut lo, mut hi) = unsafe { (_mm256_loadu_ps(row), _mm256_loadu_ps(row.add(8))) };
    if let Some(relu) = relu {
        // `x < 0` is false for NaN, which passes through (as `Relu`).
        let zero = _mm256_setzero_ps();
        lo = _mm256_andnot_ps(_mm256_cmp_ps::<_CMP_LT_OQ>(lo, zero), lo);
        hi = _mm256_andnot_ps(_mm256_cmp_ps::<_CMP_LT_OQ>(hi, zero), hi);
        // SAFETY: the caller's bounds.
        unsafe { _mm256_storeu_ps(relu, lo) };
        // SAFETY: as above.
        unsafe { _mm256_storeu_ps(relu.add(8), hi) };
    }
    // Per 128-bit lane [lo0 lo2 hi0 hi2 | lo4 lo6 hi4 hi6], then the 64-bit pairs in order.
    let order = |v: __m256| _mm256_castpd_ps(_mm256_permute4x64_pd::<0xD8>(_mm256_castps_pd(v)));
    (order(_mm256_shuffle_ps::<0x88>(lo, hi)), order(_mm256_shuffle_ps::<0xDD>(lo, hi)))
}

/// Stores `even` and `odd` interleaved as 16 consecutive values.
///
/// # Safety
/// The CPU supports AVX2; 16 values from `row` are in bounds.
#[inline(always)]
unsafe fn store_pairs(row: *mut f32, even: __m256, odd: __m256) {
    let (lo, hi) = (_mm256_unpacklo_ps(even, odd), _mm256_unpackhi_ps(even, odd));
    // SAFETY: the caller's bounds.
    unsafe { _mm256_storeu_ps(row, _mm256_permute2f128_ps::<0x20>(lo, hi)) };
    // SAFETY: as above.
    unsafe { _mm256_storeu_ps(row.add(8), _mm256_permute2f128_ps::<0x31>(lo, hi)) };
}

/// [`super::max_pool_2x2`] for whole blocks of 8 windows; returns the windows done per row.
///
/// # Safety
/// The CPU supports AVX2; the lengths are those `super::max_pool_2x2` asserts.
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
        let mut relu_at = |c: usize| relu.as_deref_mut().map(|x| x[2 * r * w + c..].as_mut_ptr());
        for i0 in blocks(out_w) {
            let c = 2 * i0;
            // SAFETY: 16 values from `c` lie within each row (i0 + 8 ≤ out_w, 2·out_w ≤ w).
            let (t0, t1) = unsafe { load_pairs(pair[c..].as_ptr(), relu_at(c)) };
            // SAFETY: as above, in the second row.
            let (b0, b1) = unsafe { load_pairs(pair[w + c..].as_ptr(), relu_at(w + c)) };
            // SAFETY: the CPU supports AVX2 (this function's contract).
            let upper = unsafe { first_max((t0, idx(0)), (t1, idx(1))) };
            // SAFETY: as above.
            let lower = unsafe { first_max((b0, idx(2)), (b1, idx(3))) };
            // SAFETY: as above.
            let (v, at) = unsafe { first_max(upper, lower) };
            let out = r * out_w + i0;
            // SAFETY: 8 outputs from `out` lie within the row of `y` (and `arg`).
            unsafe { _mm256_storeu_ps(y[out..out + 8].as_mut_ptr(), v) };
            if let Some(arg) = arg.as_deref_mut() {
                // SAFETY: as above.
                unsafe { _mm256_storeu_ps(arg[out..out + 8].as_mut_ptr().cast(), at) };
            }
        }
    }
    done(out_w)
}

/// [`super::max_pool_2x2_backward`] for whole blocks of 8 windows; returns the windows done per row.
///
/// # Safety
/// The CPU supports AVX2; the lengths are those `super::max_pool_2x2_backward` asserts.
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
            // SAFETY: as above.
            let at = unsafe { _mm256_loadu_si256(arg[out..out + 8].as_ptr().cast()) };
            let is = |k| _mm256_castsi256_ps(_mm256_cmpeq_epi32(at, _mm256_set1_epi32(k)));
            let pick = |k| _mm256_and_ps(is(k), d);
            // SAFETY: the slice holds the 16 values stored.
            unsafe { store_pairs(top[c..c + 16].as_mut_ptr(), pick(0), pick(1)) };
            // SAFETY: as above.
            unsafe { store_pairs(bottom[c..c + 16].as_mut_ptr(), pick(2), pick(3)) };
            if let Some((y, dx)) = relu.as_mut() {
                // SAFETY: the slice holds the 8 values loaded.
                let y = unsafe { _mm256_loadu_ps(y[out..out + 8].as_ptr()) };
                let positive = _mm256_cmp_ps::<_CMP_GT_OQ>(y, _mm256_setzero_ps());
                let pick = |k| _mm256_and_ps(positive, pick(k));
                let row = 2 * r * w + c;
                // SAFETY: the slice holds the 16 values stored.
                unsafe { store_pairs(dx[row..row + 16].as_mut_ptr(), pick(0), pick(1)) };
                // SAFETY: as above.
                unsafe { store_pairs(dx[row + w..row + w + 16].as_mut_ptr(), pick(2), pick(3)) };
            }
        }
    }
    done(out_w)
}
