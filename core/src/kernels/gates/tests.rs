//! The gate nonlinearities at every level this CPU runs, portable included,
//! against f64's `exp` and `tanh`.

use super::*;
use crate::kernels::tested_levels;

/// Values over every branch: around 0 and the polynomial's edge 0.625, the
/// saturated ranges, past `exp`'s overflow, subnormals, zeros of both signs.
fn values() -> Vec<f32> {
    let mut v: Vec<f32> = (-2000..=2000).map(|i| i as f32 * 0.0123).collect();
    v.extend((-100..=100).map(|i| i as f32 * 1.7));
    v.extend([0.625, -0.625, 0.624_999_9, 1e-30, -1e-30, 1e-40, 0.0, -0.0, 88.0, -88.0, 104.0, -104.0]);
    v.extend([f32::MAX, f32::MIN, f32::MIN_POSITIVE, 1e-8, -3e-5]);
    v
}

/// `got` is within a few ulp of `want` (or, below 1e-37, as close as f32 gets).
#[track_caller]
fn near(got: f32, want: f64, what: &str) {
    let err = (got as f64 - want).abs();
    assert!(err <= 4.0 * f32::EPSILON as f64 * want.abs() + 1e-37, "{what}: got {got}, exact {want}");
}

/// Runs `f` over `v` in slices of every length 0..=40 (vector bodies and every tail).
fn in_pieces(v: &[f32], f: impl Fn(&mut [f32])) -> Vec<f32> {
    let mut out = v.to_vec();
    let (mut at, mut len) = (0, 0);
    while at < out.len() {
        let end = (at + len).min(out.len());
        f(&mut out[at..end]);
        at = end;
        len = (len + 1) % 41;
    }
    out
}

#[test]
fn sigmoid_matches_the_definition_at_every_level() {
    let v = values();
    for isa in tested_levels("gate sigmoid") {
        let got = in_pieces(&v, |s| sigmoid(isa, s));
        for (&x, &g) in v.iter().zip(&got) {
            near(g, 1.0 / (1.0 + (-(x as f64)).exp()), &format!("{isa:?} sigmoid({x})"));
        }
        let mut special = [f32::NAN, f32::INFINITY, f32::NEG_INFINITY];
        sigmoid(isa, &mut special);
        assert!(special[0].is_nan() && special[1] == 1.0 && special[2] == 0.0, "{isa:?}: {special:?}");
    }
}

#[test]
fn tanh_matches_the_definition_at_every_level() {
    let v = values();
    for isa in tested_levels("gate tanh") {
        let got = in_pieces(&v, |s| tanh(isa, s));
        for (&x, &g) in v.iter().zip(&got) {
            near(g, (x as f64).tanh(), &format!("{isa:?} tanh({x})"));
            assert_eq!(g.is_sign_negative(), x.is_sign_negative(), "{isa:?} tanh({x}) keeps the sign");
        }
        let mut special = [f32::NAN, f32::INFINITY, f32::NEG_INFINITY];
        tanh(isa, &mut special);
        assert!(special[0].is_nan() && special[1] == 1.0 && special[2] == -1.0, "{isa:?}: {special:?}");
    }
}

#[test]
fn every_level_gives_the_same_bits_on_every_run() {
    let v = values();
    for isa in tested_levels("gate determinism") {
        let once = in_pieces(&v, |s| tanh(isa, s));
        let again = in_pieces(&v, |s| tanh(isa, s));
        assert_eq!(
            once.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
            again.iter().map(|x| x.to_bits()).collect::<Vec<_>>()
        );
    }
}

#[test]
fn the_lstm_cell_backward_gives_the_same_bits_at_every_level() {
    for n in (1..=40).chain([256]) {
        let v = |len: usize, seed: usize| -> Vec<f32> {
            (0..len).map(|i| (((i * 7 + seed * 13) % 23) as f32 - 11.0) * 0.07).collect()
        };
        let (gates, c_prev, tanh_c, dy, dh_next, dc0) =
            (v(4 * n, 1), v(n, 2), v(n, 3), v(n, 4), v(n, 5), v(n, 6));
        // The formulas in f64 (the portable loop in f64).
        let f64s = |s: &[f32]| s.iter().map(|&x| x as f64).collect::<Vec<f64>>();
        let (mut want_dc, mut want_dz) = (f64s(&dc0), vec![0.0; 4 * n]);
        let args = [&gates, &c_prev, &tanh_c, &dy, &dh_next].map(|s| f64s(s));
        portable::lstm_cell_backward(
            &args[0],
            &args[1],
            &args[2],
            &args[3],
            &args[4],
            &mut want_dc,
            &mut want_dz,
        );
        let mut first: Option<(Vec<f32>, Vec<f32>)> = None;
        for isa in tested_levels("lstm cell backward") {
            let (mut dc, mut dz) = (dc0.clone(), vec![f32::NAN; 4 * n]);
            lstm_cell_backward(isa, &gates, &c_prev, &tanh_c, &dy, &dh_next, &mut dc, &mut dz);
            for (got, want) in dc.iter().chain(&dz).zip(want_dc.iter().chain(&want_dz)) {
                assert!(
                    (*got as f64 - want).abs() <= 1e-5 * (1.0 + want.abs()),
                    "{isa:?}, {n}: {got} vs {want}"
                );
            }
            match &first {
                None => first = Some((dc, dz)),
                Some(bits) => assert!(bits == &(dc, dz), "{isa:?}, {n}: not the portable level's bits"),
            }
        }
    }
}
