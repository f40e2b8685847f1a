//! The softmax with AVX2: eight values at a time, the last partial eight
//! through a whole register (masked loads and stores are slow on AMD's Zen 3).

use super::super::simd::avx2::exp;
use std::arch::x86_64::*;

/// The eight lanes of a register as an array.
#[inline]
#[target_feature(enable = "avx2")]
fn lanes(r: __m256) -> [f32; 8] {
    let mut out = [0.0f32; 8];
    // SAFETY: `out` holds 8 f32s, one register (an unaligned store).
    unsafe { _mm256_storeu_ps(out.as_mut_ptr(), r) };
    out
}

/// `v = softmax(v)` in place (see [`super::softmax_prefix`]).
///
/// # Safety
/// The CPU supports AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
pub(super) unsafe fn softmax(v: &mut [f32]) {
    let (chunks, tail) = v.as_chunks_mut::<8>();
    // The maximum: eight running maxima, then the tail.
    let mut max8 = _mm256_set1_ps(f32::NEG_INFINITY);
    for c in chunks.iter() {
        // SAFETY: `c` is 8 f32s, one register (unaligned load).
        max8 = _mm256_max_ps(max8, unsafe { _mm256_loadu_ps(c.as_ptr()) });
    }
    let max = lanes(max8).into_iter().chain(tail.iter().copied()).fold(f32::NEG_INFINITY, f32::max);
    let shift = _mm256_set1_ps(max);
    // e^(v − max) and its sum.
    let mut sum8 = _mm256_setzero_ps();
    for c in chunks.iter_mut() {
        // SAFETY: as above, a load and a store of `c`'s 8 values.
        unsafe {
            let e = exp(_mm256_sub_ps(_mm256_loadu_ps(c.as_ptr()), shift));
            _mm256_storeu_ps(c.as_mut_ptr(), e);
            sum8 = _mm256_add_ps(sum8, e);
        }
    }
    let mut sum = lanes(sum8).iter().sum::<f32>();
    if !tail.is_empty() {
        let mut padded = [f32::NEG_INFINITY; 8];
        padded[..tail.len()].copy_from_slice(tail);
        // SAFETY: `padded` is 8 f32s, one register.
        let e = lanes(exp(_mm256_sub_ps(unsafe { _mm256_loadu_ps(padded.as_ptr()) }, shift)));
        let len = tail.len();
        tail.copy_from_slice(&e[..len]);
        sum += tail.iter().sum::<f32>();
    }
    let inv = 1.0 / sum;
    let inv8 = _mm256_set1_ps(inv);
    for c in chunks.iter_mut() {
        // SAFETY: a load and a store of `c`'s 8 values.
        unsafe { _mm256_storeu_ps(c.as_mut_ptr(), _mm256_mul_ps(_mm256_loadu_ps(c.as_ptr()), inv8)) };
    }
    tail.iter_mut().for_each(|x| *x *= inv);
}
