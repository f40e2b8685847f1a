//! The softmax with AVX-512: sixteen values at a time, the last partial
//! sixteen through masked loads and stores.

use super::super::simd::avx512::exp;
use std::arch::x86_64::*;

/// `v = softmax(v)` in place (see [`super::softmax_prefix`]).
///
/// # Safety
/// The CPU supports AVX-512F.
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn softmax(v: &mut [f32]) {
    let (chunks, tail) = v.as_chunks_mut::<16>();
    let mask = ((1u32 << tail.len()) - 1) as __mmask16;
    let neg_inf = _mm512_set1_ps(f32::NEG_INFINITY);
    // The maximum: sixteen running maxima, the tail's missing lanes −∞.
    let mut max16 = neg_inf;
    for c in chunks.iter() {
        // SAFETY: `c` is 16 f32s, one register (unaligned load).
        max16 = _mm512_max_ps(max16, unsafe { _mm512_loadu_ps(c.as_ptr()) });
    }
    // SAFETY: the mask selects the first `tail.len()` lanes: the load reads exactly `tail`.
    max16 = _mm512_max_ps(max16, unsafe { _mm512_mask_loadu_ps(neg_inf, mask, tail.as_ptr()) });
    let shift = _mm512_set1_ps(_mm512_reduce_max_ps(max16));
    // e^(v − max) and its sum.
    let mut sum16 = _mm512_setzero_ps();
    for c in chunks.iter_mut() {
        // SAFETY: a load and a store of `c`'s 16 values.
        unsafe {
            let e = exp(_mm512_sub_ps(_mm512_loadu_ps(c.as_ptr()), shift));
            _mm512_storeu_ps(c.as_mut_ptr(), e);
            sum16 = _mm512_add_ps(sum16, e);
        }
    }
    // SAFETY: masked to the first `tail.len()` lanes, the load and the store touch exactly `tail`.
    unsafe {
        let e = exp(_mm512_sub_ps(_mm512_maskz_loadu_ps(mask, tail.as_ptr()), shift));
        _mm512_mask_storeu_ps(tail.as_mut_ptr(), mask, e);
        sum16 = _mm512_mask_add_ps(sum16, mask, sum16, e);
    }
    let inv = _mm512_set1_ps(1.0 / _mm512_reduce_add_ps(sum16));
    for c in chunks.iter_mut() {
        // SAFETY: a load and a store of `c`'s 16 values.
        unsafe { _mm512_storeu_ps(c.as_mut_ptr(), _mm512_mul_ps(_mm512_loadu_ps(c.as_ptr()), inv)) };
    }
    // SAFETY: masked to `tail`, as above.
    unsafe {
        let t = _mm512_mul_ps(_mm512_maskz_loadu_ps(mask, tail.as_ptr()), inv);
        _mm512_mask_storeu_ps(tail.as_mut_ptr(), mask, t);
    }
}
