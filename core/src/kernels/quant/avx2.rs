//! The compact-weight products with AVX2 and FMA: four rows at a time (each
//! input vector loaded once for the four). bfloat16: two 8-lane f32 partial sums
//! per row, the weights widened in registers (zero-extend, shift into the high
//! half). int8: the input in 16-bit fixed point and integer multiply-adds
//! (`vpmaddwd`: 16 products in one instruction, where widening to f32 costs
//! three per 8), exact in 32-bit sums.

use std::arch::x86_64::*;

/// A compact weight type: eight of them widened to f32 lanes.
trait Widen: Copy {
    /// Eight values from `p` as f32 lanes.
    ///
    /// # Safety
    /// The CPU has AVX2; `p` points to eight readable values.
    unsafe fn load8(p: *const Self) -> __m256;
    /// One value as f32.
    fn scalar(self) -> f32;
}

impl Widen for i8 {
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn load8(p: *const i8) -> __m256 {
        // SAFETY: eight bytes readable from `p` (the caller's contract); unaligned load.
        let bytes = unsafe { _mm_loadl_epi64(p.cast()) };
        _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(bytes))
    }
    fn scalar(self) -> f32 {
        f32::from(self)
    }
}

impl Widen for u16 {
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn load8(p: *const u16) -> __m256 {
        // SAFETY: eight u16 (16 bytes) readable from `p` (the caller's contract); unaligned load.
        let halves = unsafe { _mm_loadu_si128(p.cast()) };
        _mm256_castsi256_ps(_mm256_slli_epi32::<16>(_mm256_cvtepu16_epi32(halves)))
    }
    fn scalar(self) -> f32 {
        f32::from_bits(u32::from(self) << 16)
    }
}

/// The sum of the eight lanes.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn hsum(v: __m256) -> f32 {
    let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
    let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    _mm_cvtss_f32(_mm_add_ss(s, _mm_shuffle_ps::<1>(s, s)))
}

/// `y[o] = scale[o]·Σ_i w[o, i]·x[i] + bias[o]` (scale 1 without `scales`).
///
/// # Safety
/// The CPU has AVX2 and FMA; `w` holds `y.len()` rows of `x.len()` values and
/// `scales`, `bias` (when given) `y.len()` values each.
#[target_feature(enable = "avx2,fma")]
unsafe fn gemv<W: Widen>(w: &[W], scales: Option<&[f32]>, x: &[f32], bias: Option<&[f32]>, y: &mut [f32]) {
    let (n, rows) = (x.len(), y.len());
    let pairs = n / 16 * 16;
    let finish = |o: usize, sum: f32| scales.map_or(sum, |s| s[o] * sum) + bias.map_or(0.0, |b| b[o]);
    // The scalar tail of row `o` from column `from`.
    let tail = |o: usize, from: usize| -> f32 {
        w[o * n + from..(o + 1) * n].iter().zip(&x[from..]).map(|(&w, &x)| w.scalar() * x).sum()
    };
    let (wp, xp) = (w.as_ptr(), x.as_ptr());
    let mut o = 0;
    while o + 4 <= rows {
        // Rows `o..o + 4` exist, and every load below reads
        // columns `i..i + 8` with `i + 8 <= n`, inside its row and inside `x`.
        let p = [0, 1, 2, 3].map(|r| wp.wrapping_add((o + r) * n));
        let mut acc = [[_mm256_setzero_ps(); 2]; 4];
        let mut i = 0;
        while i < pairs {
            // SAFETY: see above.
            let (x0, x1) = unsafe { (_mm256_loadu_ps(xp.add(i)), _mm256_loadu_ps(xp.add(i + 8))) };
            for (a, p) in acc.iter_mut().zip(&p) {
                // SAFETY: see above.
                let (w0, w1) = unsafe { (W::load8(p.add(i)), W::load8(p.add(i + 8))) };
                a[0] = _mm256_fmadd_ps(w0, x0, a[0]);
                a[1] = _mm256_fmadd_ps(w1, x1, a[1]);
            }
            i += 16;
        }
        if i + 8 <= n {
            // SAFETY: see above.
            let x0 = unsafe { _mm256_loadu_ps(xp.add(i)) };
            for (a, p) in acc.iter_mut().zip(&p) {
                // SAFETY: see above.
                a[0] = _mm256_fmadd_ps(unsafe { W::load8(p.add(i)) }, x0, a[0]);
            }
            i += 8;
        }
        for (r, a) in acc.iter().enumerate() {
            y[o + r] = finish(o + r, hsum(_mm256_add_ps(a[0], a[1])) + tail(o + r, i));
        }
        o += 4;
    }
    while o < rows {
        // SAFETY: as above, for row `o` alone.
        let p = unsafe { wp.add(o * n) };
        let mut a = _mm256_setzero_ps();
        let mut i = 0;
        while i + 8 <= n {
            // SAFETY: columns `i..i + 8` of row `o` and of `x`.
            a = unsafe { _mm256_fmadd_ps(W::load8(p.add(i)), _mm256_loadu_ps(xp.add(i)), a) };
            i += 8;
        }
        y[o] = finish(o, hsum(a) + tail(o, i));
        o += 1;
    }
}

/// [`super::int8_gemv`] with AVX2: `x` in 16-bit fixed point (`xq`, see
/// [`super::fixed_point`]), the int8 weights sign-extended to 16 bits, and
/// `vpmaddwd` products summed in 32-bit integers, flushed to f32 every
/// [`super::FLUSH`] columns so they cannot overflow; a non-finite `x` takes the
/// widening f32 kernel, so NaN propagates.
///
/// # Safety
/// The CPU has AVX2 and FMA; the sizes agree (`super::check`).
#[target_feature(enable = "avx2,fma")]
pub(super) unsafe fn int8_gemv(q: &[i8], scales: &[f32], x: &[f32], bias: Option<&[f32]>, y: &mut [f32]) {
    let convert = |x: &[f32], xq: &mut [i16]| {
        // SAFETY: the caller's contract (AVX2); `with_fixed_point` sizes `xq` as `x`.
        unsafe { fixed_point(x, xq) }
    };
    super::with_fixed_point(x, convert, |fixed| match fixed {
        // SAFETY: the caller's contract.
        None => unsafe { gemv(q, Some(scales), x, bias, y) },
        // SAFETY: the caller's contract; `xq` has `x.len()` values.
        Some((xq, unit)) => unsafe { int8_fixed(q, scales, xq, unit, bias, y) },
    })
}

/// `xq = round(x · 2¹⁴ / max |x|)` (`xq` all zero when `x` is), returning
/// `max |x|`, or `None` (leaving `xq` unspecified) if `x` holds a NaN or an infinity.
///
/// # Safety
/// The CPU has AVX2; `xq.len() == x.len()`.
#[target_feature(enable = "avx2,fma")]
unsafe fn fixed_point(x: &[f32], xq: &mut [i16]) -> Option<f32> {
    let sign = _mm256_set1_ps(-0.0);
    let (chunks, tail) = x.as_chunks::<8>();
    let (mut max, mut bad) = (_mm256_setzero_ps(), _mm256_setzero_ps());
    for c in chunks {
        // SAFETY: eight values of `x`.
        let a = _mm256_andnot_ps(sign, unsafe { _mm256_loadu_ps(c.as_ptr()) });
        max = _mm256_max_ps(max, a);
        // Not less than infinity, or unordered: an infinity or a NaN.
        bad = _mm256_or_ps(bad, _mm256_cmp_ps::<_CMP_NLT_UQ>(a, _mm256_set1_ps(f32::INFINITY)));
    }
    if _mm256_movemask_ps(bad) != 0 || !tail.iter().all(|v| v.is_finite()) {
        return None;
    }
    let max = tail.iter().fold(hmax(max), |m, v| m.max(v.abs()));
    if max == 0.0 {
        xq.fill(0);
        return Some(0.0);
    }
    let scale = super::FIXED_ONE / max;
    let (qchunks, qtail) = xq.as_chunks_mut::<8>();
    for (c, q) in chunks.iter().zip(qchunks) {
        // SAFETY: eight values of `x`; eight of `xq` written.
        unsafe {
            let i = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(c.as_ptr()), _mm256_set1_ps(scale)));
            let packed = _mm_packs_epi32(_mm256_castsi256_si128(i), _mm256_extracti128_si256::<1>(i));
            _mm_storeu_si128(q.as_mut_ptr().cast(), packed);
        }
    }
    qtail.iter_mut().zip(tail).for_each(|(q, &v)| *q = (v * scale).round_ties_even() as i16);
    Some(max)
}

/// The largest of the eight lanes.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn hmax(v: __m256) -> f32 {
    let m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
    let m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    _mm_cvtss_f32(_mm_max_ss(m, _mm_shuffle_ps::<1>(m, m)))
}

/// The eight 32-bit lanes summed, as f32.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn hsum_i32(v: __m256i) -> f32 {
    hsum(_mm256_cvtepi32_ps(v))
}

/// `y[o] = scales[o]·unit·Σ_i q[o, i]·xq[i] + bias[o]`.
///
/// # Safety
/// The CPU has AVX2 and FMA; `q` holds `y.len()` rows of `xq.len()` values,
/// `scales` and `bias` (when given) `y.len()` values.
#[target_feature(enable = "avx2,fma")]
unsafe fn int8_fixed(q: &[i8], scales: &[f32], xq: &[i16], unit: f32, bias: Option<&[f32]>, y: &mut [f32]) {
    let (n, rows) = (xq.len(), y.len());
    let finish = |o: usize, sum: f32| scales[o] * unit * sum + bias.map_or(0.0, |b| b[o]);
    let tail = |o: usize, from: usize| -> i32 {
        q[o * n + from..(o + 1) * n].iter().zip(&xq[from..]).map(|(&w, &x)| i32::from(w) * i32::from(x)).sum()
    };
    let (qp, xp) = (q.as_ptr(), xq.as_ptr());
    let full = n / 16 * 16;
    let mut o = 0;
    while o + 4 <= rows {
        // Rows `o..o + 4` exist, and every load below reads
        // columns `i..i + 16` with `i + 16 <= n`, inside its row and inside `xq`.
        let p = [0, 1, 2, 3].map(|r| qp.wrapping_add((o + r) * n));
        let mut sums = [0.0f32; 4];
        let mut start = 0;
        while start < full {
            let end = (start + super::FLUSH).min(full);
            let mut acc = [_mm256_setzero_si256(); 4];
            let mut i = start;
            while i < end {
                // SAFETY: see above.
                let xv = unsafe { _mm256_loadu_si256(xp.add(i).cast()) };
                for (a, p) in acc.iter_mut().zip(&p) {
                    // SAFETY: see above.
                    let w = _mm256_cvtepi8_epi16(unsafe { _mm_loadu_si128(p.add(i).cast()) });
                    *a = _mm256_add_epi32(*a, _mm256_madd_epi16(w, xv));
                }
                i += 16;
            }
            for (s, a) in sums.iter_mut().zip(&acc) {
                *s += hsum_i32(*a);
            }
            start = end;
        }
        for (r, s) in sums.iter().enumerate() {
            y[o + r] = finish(o + r, s + tail(o + r, full) as f32);
        }
        o += 4;
    }
    while o < rows {
        let mut sum = 0.0f32;
        let mut start = 0;
        while start < full {
            let end = (start + super::FLUSH).min(full);
            let mut acc = _mm256_setzero_si256();
            let mut i = start;
            while i < end {
                // SAFETY: columns `i..i + 16` of row `o` and of `xq`.
                let (w, xv) = unsafe {
                    (_mm_loadu_si128(qp.add(o * n + i).cast()), _mm256_loadu_si256(xp.add(i).cast()))
                };
                acc = _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_cvtepi8_epi16(w), xv));
                i += 16;
            }
            sum += hsum_i32(acc);
            start = end;
        }
        y[o] = finish(o, sum + tail(o, full) as f32);
        o += 1;
    }
}

/// [`super::bf16_gemv`] with AVX2.
///
/// # Safety
/// The CPU has AVX2 and FMA; the sizes agree (`super::check`).
#[target_feature(enable = "avx2,fma")]
pub(super) unsafe fn bf16_gemv(w: &[u16], x: &[f32], bias: Option<&[f32]>, y: &mut [f32]) {
    // SAFETY: the caller's contract.
    unsafe { gemv(w, None, x, bias, y) }
}
