use super::*;
use crate::kernels::tested_levels;

/// `len` values spread over `±spread`.
fn values(len: usize, spread: f32) -> Vec<f32> {
    (0..len).map(|i| ((i * 13 % 29) as f32 * 0.77).sin() * spread).collect()
}

/// The definition in f64.
fn exact(v: &[f32]) -> Vec<f64> {
    let max = v.iter().map(|&x| x as f64).fold(f64::NEG_INFINITY, f64::max);
    let sum: f64 = v.iter().map(|&x| (x as f64 - max).exp()).sum();
    v.iter().map(|&x| (x as f64 - max).exp() / sum).collect()
}

#[test]
fn matches_the_definition_at_every_level() {
    for isa in tested_levels("attention softmax") {
        // Runs in whole registers and with tails, every prefix length of a few.
        for len in [0usize, 1, 2, 7, 8, 9, 15, 16, 17, 31, 33, 64, 70] {
            for seen in [0, 1.min(len), len / 2, len.saturating_sub(1), len] {
                for spread in [1.0, 30.0, 1e4] {
                    let mut v = values(len, spread);
                    let want = exact(&v[..seen]);
                    softmax_prefix(isa, &mut v, seen);
                    for (i, (&got, &want)) in v.iter().zip(&want).enumerate() {
                        assert!(
                            (got as f64 - want).abs() <= 1e-6 * want.max(1e-2),
                            "{isa:?} {seen} of {len} (±{spread}), [{i}]: {got} vs {want}"
                        );
                    }
                    assert!(
                        v[seen..].iter().all(|&x| x == 0.0),
                        "{isa:?} {seen} of {len}: masked values are 0"
                    );
                }
            }
        }
    }
}

#[test]
fn a_nan_makes_every_probability_nan_at_every_level() {
    for isa in tested_levels("attention softmax") {
        for (len, at) in [(5, 2), (16, 15), (21, 0), (21, 20)] {
            let mut v = values(len + 3, 3.0);
            v[at] = f32::NAN;
            softmax_prefix(isa, &mut v, len);
            assert!(v[..len].iter().all(|x| x.is_nan()), "{isa:?} {len}, NaN at {at}: {v:?}");
            assert!(v[len..].iter().all(|&x| x == 0.0));
        }
    }
}

#[test]
fn f64_runs_the_portable_softmax_at_any_level() {
    for isa in tested_levels("attention softmax") {
        let mut v: Vec<f64> = values(10, 5.0).into_iter().map(f64::from).collect();
        let want = exact(&values(10, 5.0)[..6]);
        softmax_prefix(isa, &mut v, 6);
        for (got, want) in v.iter().zip(&want) {
            assert!((got - want).abs() < 1e-15, "{got} vs {want}");
        }
        assert_eq!(v[6..], [0.0; 4]);
    }
}
