//! The compact-weight products with AVX-512F: the AVX2 kernels' shape (four
//! rows at a time, two partial sums per row) with 16 lanes.

use std::arch::x86_64::*;

/// A compact weight type: sixteen of them widened to f32 lanes.
trait Widen: Copy {
    /// Sixteen values from `p` as f32 lanes.
    ///
    /// # Safety
    /// The CPU has AVX-512F; `p` points to sixteen readable values.
    unsafe fn load16(p: *const Self) -> __m512;
    /// One value as f32.
    fn scalar(self) -> f32;
}

impl Widen for i8 {
    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn load16(p: *const i8) -> __m512 {
        // SAFETY: sixteen bytes readable from `p` (the caller's contract); unaligned load.
        let bytes = unsafe { _mm_loadu_si128(p.cast()) };
        _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(bytes))
    }
    fn scalar(self) -> f32 {
        f32::from(self)
    }
}

impl Widen for u16 {
    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn load16(p: *const u16) -> __m512 {
        // SAFETY: sixteen u16 (32 bytes) readable from `p` (the caller's contract); unaligned load.
        let halves = unsafe { _mm256_loadu_si256(p.cast()) };
        _mm512_castsi512_ps(_mm512_slli_epi32::<16>(_mm512_cvtepu16_epi32(halves)))
    }
    fn scalar(self) -> f32 {
        f32::from_bits(u32::from(self) << 16)
    }
}

/// `y[o] = scale[o]·Σ_i w[o, i]·x[i] + bias[o]` (scale 1 without `scales`).
///
/// # Safety
/// The CPU has AVX-512F; `w` holds `y.len()` rows of `x.len()` values and
/// `scales`, `bias` (when given) `y.len()` values each.
#[target_feature(enable = "avx512f")]
unsafe fn gemv<W: Widen>(w: &[W], scales: Option<&[f32]>, x: &[f32], bias: Option<&[f32]>, y: &mut [f32]) {
    let (n, rows) = (x.len(), y.len());
    let pairs = n / 32 * 32;
    let finish = |o: usize, sum: f32| scales.map_or(sum, |s| s[o] * sum) + bias.map_or(0.0, |b| b[o]);
    // The scalar tail of row `o` from column `from`.
    let tail = |o: usize, from: usize| -> f32 {
        w[o * n + from..(o + 1) * n].iter().zip(&x[from..]).map(|(&w, &x)| w.scalar() * x).sum()
    };
    let (wp, xp) = (w.as_ptr(), x.as_ptr());
    let mut o = 0;
    while o + 4 <= rows {
        // Rows `o..o + 4` exist, and every load below reads
        // columns `i..i + 16` with `i + 16 <= n`, inside its row and inside `x`.
        let p = [0, 1, 2, 3].map(|r| wp.wrapping_add((o + r) * n));
        let mut acc = [[_mm512_setzero_ps(); 2]; 4];
        let mut i = 0;
        while i < pairs {
            // SAFETY: see above.
            let (x0, x1) = unsafe { (_mm512_loadu_ps(xp.add(i)), _mm512_loadu_ps(xp.add(i + 16))) };
            for (a, p) in acc.iter_mut().zip(&p) {
                // SAFETY: see above.
                let (w0, w1) = unsafe { (W::load16(p.add(i)), W::load16(p.add(i + 16))) };
                a[0] = _mm512_fmadd_ps(w0, x0, a[0]);
                a[1] = _mm512_fmadd_ps(w1, x1, a[1]);
            }
            i += 32;
        }
        if i + 16 <= n {
            // SAFETY: see above.
            let x0 = unsafe { _mm512_loadu_ps(xp.add(i)) };
            for (a, p) in acc.iter_mut().zip(&p) {
                // SAFETY: see above.
                a[0] = _mm512_fmadd_ps(unsafe { W::load16(p.add(i)) }, x0, a[0]);
            }
            i += 16;
        }
        for (r, a) in acc.iter().enumerate() {
            y[o + r] = finish(o + r, _mm512_reduce_add_ps(_mm512_add_ps(a[0], a[1])) + tail(o + r, i));
        }
        o += 4;
    }
    while o < rows {
        // SAFETY: as above, for row `o` alone.
        let p = unsafe { wp.add(o * n) };
        let mut a = _mm512_setzero_ps();
        let mut i = 0;
        while i + 16 <= n {
            // SAFETY: columns `i..i + 16` of row `o` and of `x`.
            a = unsafe { _mm512_fmadd_ps(W::load16(p.add(i)), _mm512_loadu_ps(xp.add(i)), a) };
            i += 16;
        }
        y[o] = finish(o, _mm512_reduce_add_ps(a) + tail(o, i));
        o += 1;
    }
}

/// [`super::int8_gemv`] with AVX-512F.
///
/// # Safety
/// The CPU has AVX-512F; the sizes agree (`super::check`).
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn int8_gemv(q: &[i8], scales: &[f32], x: &[f32], bias: Option<&[f32]>, y: &mut [f32]) {
    // SAFETY: the caller's contract.
    unsafe { gemv(q, Some(scales), x, bias, y) }
}

/// [`super::bf16_gemv`] with AVX-512F.
///
/// # Safety
/// The CPU has AVX-512F; the sizes agree (`super::check`).
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn bf16_gemv(w: &[u16], x: &[f32], bias: Option<&[f32]>, y: &mut [f32]) {
    // SAFETY: the caller's contract.
    unsafe { gemv(w, None, x, bias, y) }
}
