//! Softmax cross-entropy of f32 logits with class labels: the loss and its
//! gradient in one pass, several samples at a time, with the vector `exp` and
//! `ln` of [`simd`](super::simd) instead of libm's scalar ones.

use super::Isa;

/// The softmax cross-entropy of `labels.len()` samples of `N` logits each
/// (`z`, sample after sample) at level `isa`: writes the gradient
/// `(softmax(z) − onehot(label))·scale` of each sample to `g` and returns
/// `scale·Σ (logsumexp(z) − z[label])`.
///
/// `None`, having written nothing, at the portable level: the caller's generic
/// code is the portable version. Panics if the CPU lacks `isa`, if the lengths
/// disagree, or if a label is not below `N`.
#[cfg_attr(not(target_arch = "x86_64"), allow(unused_variables))]
pub(crate) fn softmax_cross_entropy<const N: usize>(
    isa: Isa,
    z: &[f32],
    g: &mut [f32],
    labels: &[usize],
    scale: f32,
) -> Option<f32> {
    assert!(
        z.len() == labels.len() * N && g.len() == z.len(),
        "softmax_cross_entropy: {} logits and {} gradients for {} samples of {N}",
        z.len(),
        g.len(),
        labels.len()
    );
    match isa.checked() {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => {
            // SAFETY: `checked` asserted that the CPU has the level's features
            // (AVX-512 F and VL, AVX2, FMA), the kernel's only requirement: it
            // reaches memory through slices and whole registers of fixed arrays.
            let total = unsafe { softmax_cross_entropy_avx512::<N>(z, g, labels, scale) };
            Some(total)
        }
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => {
            // SAFETY: as above: the CPU has AVX2 and FMA.
            let total = unsafe { softmax_cross_entropy_avx2::<N>(z, g, labels, scale) };
            Some(total)
        }
        _ => None,
    }
}

/// [`softmax_cross_entropy`] with AVX-512, sixteen samples at a time.
///
/// # Safety
/// The CPU supports AVX-512F.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn softmax_cross_entropy_avx512<const N: usize>(
    z: &[f32],
    g: &mut [f32],
    labels: &[usize],
    scale: f32,
) -> f32 {
    use super::simd::avx512::{exp, ln};
    use std::arch::x86_64::*;
    let exp_in_place = |v: &mut [f32]| {
        debug_assert!(v.len() <= 16);
        let m = ((1u32 << v.len()) - 1) as __mmask16;
        // SAFETY: the mask selects the first `v.len()` lanes, so the load and the
        // store touch exactly `v`; AVX-512F is this function's.
        unsafe { _mm512_mask_storeu_ps(v.as_mut_ptr(), m, exp(_mm512_maskz_loadu_ps(m, v.as_ptr()))) };
    };
    let ln_in_place = |v: &mut [f32; 16]| {
        // SAFETY: 16 values, a whole register; AVX-512F is this function's.
        unsafe { _mm512_storeu_ps(v.as_mut_ptr(), ln(_mm512_loadu_ps(v.as_ptr()))) }
    };
    softmax_cross_entropy_lanes::<N, 16>(z, g, labels, scale, exp_in_place, ln_in_place)
}

/// [`softmax_cross_entropy`] with AVX2, eight samples at a time.
///
/// # Safety
/// The CPU supports AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn softmax_cross_entropy_avx2<const N: usize>(
    z: &[f32],
    g: &mut [f32],
    labels: &[usize],
    scale: f32,
) -> f32 {
    use super::simd::avx2::{exp, ln};
    use std::arch::x86_64::*;
    let exp_in_place = |v: &mut [f32]| {
        // A last, partial chunk goes through a whole register rather than a
        // masked store (slow on AMD).
        let mut lanes = [0.0f32; 8];
        lanes[..v.len()].copy_from_slice(v);
        // SAFETY: 8 values, a whole register; AVX2 and FMA are this function's.
        unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), exp(_mm256_loadu_ps(lanes.as_ptr()))) };
        let len = v.len();
        v.copy_from_slice(&lanes[..len]);
    };
    let ln_in_place = |v: &mut [f32; 8]| {
        // SAFETY: 8 values, a whole register; AVX2 and FMA are this function's.
        unsafe { _mm256_storeu_ps(v.as_mut_ptr(), ln(_mm256_loadu_ps(v.as_ptr()))) }
    };
    softmax_cross_entropy_lanes::<N, 8>(z, g, labels, scale, exp_in_place, ln_in_place)
}

/// The body of the vector softmax cross-entropies, `L` samples at a time:
/// `exp_in_place` takes up to `L` values, `ln_in_place` exactly `L`. Inlined
/// into each level's entry point, so it is compiled for that level.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn softmax_cross_entropy_lanes<const N: usize, const L: usize>(
    z: &[f32],
    g: &mut [f32],
    labels: &[usize],
    scale: f32,
    exp_in_place: impl Fn(&mut [f32]),
    ln_in_place: impl Fn(&mut [f32; L]),
) -> f32 {
    let mut total = 0.0f32;
    let chunks = z.chunks(L * N).zip(g.chunks_mut(L * N)).zip(labels.chunks(L));
    for ((zc, gc), lc) in chunks {
        let (mut maxs, mut sums) = ([0.0f32; L], [1.0f32; L]);
        for ((zs, gs), max) in zc.chunks_exact(N).zip(gc.chunks_exact_mut(N)).zip(&mut maxs) {
            *max = zs.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            gs.iter_mut().zip(zs).for_each(|(g, &z)| *g = z - *max);
        }
        gc.chunks_mut(L).for_each(&exp_in_place);
        for (gs, sum) in gc.chunks_exact(N).zip(&mut sums) {
            *sum = gs.iter().sum();
        }
        let mut lse = sums;
        ln_in_place(&mut lse);
        let samples = zc.chunks_exact(N).zip(gc.chunks_exact_mut(N)).zip(lc);
        for (((zs, gs), &label), ((&sum, &lse), &max)) in samples.zip(sums.iter().zip(&lse).zip(&maxs)) {
            total += (max + lse) - zs[label];
            let inv = scale / sum;
            gs.iter_mut().for_each(|v| *v *= inv);
            gs[label] -= scale;
        }
    }
    total * scale
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::tested_levels;

    /// Logits for `batch` samples of `N` classes, spread over `±spread`, and their labels.
    fn samples<const N: usize>(batch: usize, spread: f32) -> (Vec<f32>, Vec<usize>) {
        let z = (0..batch * N).map(|i| ((i * 13 % 29) as f32 * 0.77).sin() * spread).collect();
        (z, (0..batch).map(|j| (j * 5) % N).collect())
    }

    /// The definition in f64: the summed loss times `scale`, and the gradients.
    fn exact<const N: usize>(z: &[f32], labels: &[usize], scale: f64) -> (f64, Vec<f64>) {
        let mut total = 0.0;
        let mut grads = Vec::new();
        for (zs, &label) in z.chunks_exact(N).zip(labels) {
            let max = zs.iter().map(|&v| v as f64).fold(f64::NEG_INFINITY, f64::max);
            let sum: f64 = zs.iter().map(|&v| (v as f64 - max).exp()).sum();
            total += max + sum.ln() - zs[label] as f64;
            grads.extend(
                zs.iter().enumerate().map(|(i, &v)| {
                    ((v as f64 - max).exp() / sum - if i == label { 1.0 } else { 0.0 }) * scale
                }),
            );
        }
        (total * scale, grads)
    }

    fn agrees<const N: usize>(isa: Isa, batch: usize, spread: f32) {
        let (z, labels) = samples::<N>(batch, spread);
        let scale = 1.0 / batch as f32;
        let mut g = vec![f32::NAN; z.len()];
        let got = softmax_cross_entropy::<N>(isa, &z, &mut g, &labels, scale);
        let Some(loss) = got else {
            assert_eq!(isa, Isa::Portable, "only the portable level leaves it to the caller");
            assert!(g.iter().all(|v| v.is_nan()), "nothing written");
            return;
        };
        let (want, grads) = exact::<N>(&z, &labels, scale as f64);
        assert!(
            (loss as f64 - want).abs() <= 1e-5 * want.abs().max(1.0),
            "{isa:?} {N}×{batch}: {loss} vs {want}"
        );
        for (i, (&g, &w)) in g.iter().zip(&grads).enumerate() {
            assert!((g as f64 - w).abs() <= 1e-6, "{isa:?} {N}×{batch}, gradient {i}: {g} vs {w}");
        }
    }

    #[test]
    fn matches_the_definition_at_every_level() {
        for isa in tested_levels("softmax cross-entropy") {
            // Batches in whole registers of samples and with tails; logits large and small.
            agrees::<3>(isa, 37, 2.0);
            agrees::<10>(isa, 5, 30.0);
            agrees::<10>(isa, 64, 1e4);
            agrees::<1>(isa, 17, 1.0);
            agrees::<7>(isa, 16, 0.1);
        }
    }

    #[test]
    fn a_sample_gets_the_same_bits_in_any_lane_or_alone() {
        // Samples are independent lanes: a sample's gradient does not depend on
        // where in a register it falls, or on the samples beside it.
        for isa in tested_levels("softmax cross-entropy") {
            let (z, labels) = samples::<10>(21, 8.0);
            let mut g = vec![0.0; z.len()];
            if softmax_cross_entropy::<10>(isa, &z, &mut g, &labels, 0.25).is_none() {
                continue;
            }
            for (j, (zs, gs)) in z.chunks_exact(10).zip(g.chunks_exact(10)).enumerate() {
                let mut alone = [0.0; 10];
                softmax_cross_entropy::<10>(isa, zs, &mut alone, &labels[j..j + 1], 0.25);
                let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(gs), bits(&alone), "{isa:?} sample {j}");
            }
        }
    }

    #[test]
    fn nan_logits_give_a_nan_loss() {
        for isa in tested_levels("softmax cross-entropy") {
            let z = [0.0, f32::NAN, 1.0, 2.0, 3.0, 4.0];
            let mut g = [0.0; 6];
            if let Some(loss) = softmax_cross_entropy::<3>(isa, &z, &mut g, &[0, 1], 0.5) {
                assert!(loss.is_nan(), "{isa:?}");
            }
        }
    }
}
