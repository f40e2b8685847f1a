//! The GELU and its derivative at every level this CPU runs, portable
//! included, against f64 (`Φ` through libm's f64 `erfc`, exact in the tails).

use super::*;
use crate::kernels::tested_levels;

/// The bound, in units of f32's epsilon relative to the scale of the exact value: the
/// worst cases are near x = −√2, where `½ + x·T(x²)` cancels (4 to 5 ulp there).
const ULPS: f64 = 6.0;

/// Values over every branch: a dense sweep of ±14 (where the negative side
/// underflows), the branch edges ±√2 and ±2√2 with their neighbours, the
/// clamp ±16, huge and tiny values, zeros of both signs.
fn values() -> Vec<f32> {
    let mut v: Vec<f32> = (-14_000..=14_000).map(|i| i as f32 * 1e-3).collect();
    for edge in [SMALL, MID, LIMIT, 0.75] {
        let mut up = edge;
        let mut down = edge;
        for _ in 0..4 {
            v.extend([up, down, -up, -down]);
            up = f32::from_bits(up.to_bits() + 1);
            down = f32::from_bits(down.to_bits() - 1);
        }
    }
    v.extend([13.5, -13.5, 20.0, -20.0, 1e10, -1e10, f32::MAX, f32::MIN, 1e-8, -3e-5, 1e-30, -1e-30]);
    v.extend([1e-40, -1e-40, f32::MIN_POSITIVE, 0.0, -0.0]);
    v
}

/// `Φ(x)` and `φ(x)` in f64.
fn exact(x: f32) -> (f64, f64) {
    let x = x as f64;
    let cdf = 0.5 * libm::erfc(-x * std::f64::consts::FRAC_1_SQRT_2);
    (cdf, (-0.5 * x * x).exp() / (2.0 * std::f64::consts::PI).sqrt())
}

/// `got` is within [`ULPS`] of `want` relative to `scale`, or within a few
/// subnormal steps (2^−149) times `factor`, plus the last rounding: where `Φ` or `φ` is subnormal
/// (x < −13), f32 holds them to that step, and the result is them times `factor`.
#[track_caller]
fn near(got: f32, want: f64, scale: f64, factor: f64, what: &str) {
    let err = (got as f64 - want).abs();
    let bound = ULPS * f32::EPSILON as f64 * scale + (2.0 * factor + 1.0) * 2f64.powi(-149);
    assert!(err <= bound, "{what}: got {got}, exact {want}");
}

/// Runs `f` over `v` in slices of every length 0..=40 (vector bodies and every tail).
fn in_pieces(v: &mut [f32], f: impl Fn(std::ops::Range<usize>, &mut [f32])) {
    let (mut at, mut len) = (0, 0);
    while at < v.len() {
        let end = (at + len).min(v.len());
        f(at..end, &mut v[at..end]);
        at = end;
        len = (len + 1) % 41;
    }
}

#[test]
fn gelu_matches_the_erf_form_at_every_level() {
    let v = values();
    for isa in tested_levels("gelu") {
        let mut got = v.clone();
        in_pieces(&mut got, |_, s| gelu(isa, s));
        for (&x, &g) in v.iter().zip(&got) {
            let want = x as f64 * exact(x).0;
            near(g, want, want.abs(), (x as f64).abs(), &format!("{isa:?} gelu({x})"));
        }
        let mut special = [f32::NAN, f32::INFINITY, f32::NEG_INFINITY, -0.0];
        gelu(isa, &mut special);
        assert!(
            special[0].is_nan() && special[1] == f32::INFINITY && special[2] == 0.0,
            "{isa:?}: {special:?}"
        );
        assert!(special[3] == 0.0 && special[3].is_sign_negative(), "{isa:?}: gelu(−0) = −0");
    }
}

#[test]
fn gelu_backward_matches_the_derivative_at_every_level() {
    let v = values();
    // Output gradients of both signs and several sizes, so the product is checked too.
    let g: Vec<f32> = (0..v.len()).map(|i| [1.0, -0.5, 3.0, 1e-3][i % 4]).collect();
    for isa in tested_levels("gelu backward") {
        let mut got = g.clone();
        in_pieces(&mut got, |range, s| gelu_backward(isa, &v[range], s));
        for ((&x, &dy), &d) in v.iter().zip(&g).zip(&got) {
            let (cdf, density) = exact(x);
            let xd = if x.is_finite() { x as f64 * density } else { 0.0 };
            // Relative to |Φ| + |x·φ|: the derivative crosses 0 near x = −0.75.
            let floor = dy.abs() as f64 * (1.0 + (x as f64).abs().min(16.0));
            near(
                d,
                dy as f64 * (cdf + xd),
                dy.abs() as f64 * (cdf + xd.abs()),
                floor,
                &format!("{isa:?} gelu'({x})·{dy}"),
            );
        }
        let mut special = [1.0f32; 3];
        gelu_backward(isa, &[f32::NAN, f32::INFINITY, f32::NEG_INFINITY], &mut special);
        assert!(special[0].is_nan() && special[1] == 1.0 && special[2] == 0.0, "{isa:?}: {special:?}");
    }
}

#[test]
fn the_training_pass_gives_the_bits_of_gelu_and_of_its_backward_pass() {
    let v = values();
    for isa in tested_levels("gelu and derivative") {
        let (mut y, mut d) = (vec![0.0; v.len()], vec![0.0; v.len()]);
        // Pieces of every length 0..=40, as `in_pieces` cuts them.
        let (mut at, mut len) = (0, 0);
        while at < v.len() {
            let end = (at + len).min(v.len());
            gelu_and_derivative(isa, &v[at..end], &mut y[at..end], &mut d[at..end]);
            at = end;
            len = (len + 1) % 41;
        }
        let mut value = v.clone();
        gelu(isa, &mut value);
        let mut slope = vec![1.0; v.len()];
        gelu_backward(isa, &v, &mut slope);
        let bits = |s: &[f32]| s.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&y), bits(&value), "{isa:?}: gelu");
        assert_eq!(bits(&d), bits(&slope), "{isa:?}: gelu'");
    }
}

#[test]
#[should_panic(expected = "differ in length")]
fn gelu_backward_rejects_slices_of_different_lengths() {
    gelu_backward(Isa::active(), &[1.0, 2.0], &mut [1.0]);
}

#[test]
fn every_level_gives_the_same_bits_on_every_run() {
    let v = values();
    for isa in tested_levels("gelu determinism") {
        let mut once = v.clone();
        let mut again = v.clone();
        gelu(isa, &mut once);
        in_pieces(&mut again, |_, s| gelu(isa, s));
        assert_eq!(
            once.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
            again.iter().map(|x| x.to_bits()).collect::<Vec<_>>()
        );
    }
}
