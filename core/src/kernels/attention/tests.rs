use super::*;
use crate::kernels::tested_levels;

/// Deterministic values in ±1.
fn values(len: usize, seed: usize) -> Vec<f32> {
    (0..len).map(|i| ((i * 7919 + seed * 104_729) % 1000) as f32 / 500.0 - 1.0).collect()
}

/// One head's forward and backward in f64, by the definitions: (probs, ctx rows, dqkv rows).
fn reference(shape: &HeadShape, h: usize, qkv: &[f32], dctx: &[f32]) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let (s, d, dh) = (shape.steps, shape.dim, shape.head_dim);
    let at = |off: usize, t: usize, i: usize| qkv[t * 3 * d + off + h * dh + i] as f64;
    let (q, k, v) = (|t, i| at(0, t, i), |t, i| at(d, t, i), |t, i| at(2 * d, t, i));
    let dc = |t: usize, i: usize| dctx[t * d + h * dh + i] as f64;
    let scale = shape.scale as f64;
    let mut probs = vec![0.0; s * s];
    for t in 0..s {
        let seen = shape.seen(t);
        let scores: Vec<f64> =
            (0..seen).map(|key| (0..dh).map(|i| k(key, i) * q(t, i)).sum::<f64>() * scale).collect();
        let max = scores.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let sum: f64 = scores.iter().map(|x| (x - max).exp()).sum();
        for (key, x) in scores.iter().enumerate() {
            probs[t * s + key] = (x - max).exp() / sum;
        }
    }
    let m = |key: usize, t: usize| probs[t * s + key];
    let mut ctx = vec![0.0; d * s];
    for t in 0..s {
        for i in 0..dh {
            ctx[t * d + h * dh + i] = (0..s).map(|key| m(key, t) * v(key, i)).sum();
        }
    }
    let mut ds = vec![0.0; s * s];
    for t in 0..s {
        let dm: Vec<f64> = (0..s).map(|key| (0..dh).map(|i| v(key, i) * dc(t, i)).sum()).collect();
        let dot: f64 = (0..s).map(|key| dm[key] * m(key, t)).sum();
        for key in 0..s {
            ds[t * s + key] = m(key, t) * (dm[key] - dot);
        }
    }
    let mut dqkv = vec![0.0; 3 * d * s];
    for t in 0..s {
        for i in 0..dh {
            dqkv[t * 3 * d + h * dh + i] = (0..s).map(|key| ds[t * s + key] * k(key, i)).sum::<f64>() * scale;
            dqkv[t * 3 * d + d + h * dh + i] = (0..s).map(|u| ds[u * s + t] * q(u, i)).sum::<f64>() * scale;
            dqkv[t * 3 * d + 2 * d + h * dh + i] = (0..s).map(|u| m(t, u) * dc(u, i)).sum();
        }
    }
    (probs, ctx, dqkv)
}

fn close(what: &str, got: &[f32], want: &[f64]) {
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        assert!((g as f64 - w).abs() <= 2e-5 * (1.0 + w.abs()), "{what}[{i}]: {g} vs {w}");
    }
}

#[test]
fn heads_match_the_definitions_at_every_level() {
    for isa in tested_levels("attention heads") {
        for (steps, head_dim, heads) in [(16, 16, 1), (32, 32, 2), (64, 32, 4), (48, 48, 2), (16, 64, 3)] {
            for causal in [false, true] {
                let d = head_dim * heads;
                let scale = 1.0 / (head_dim as f32).sqrt();
                let shape = HeadShape { steps, dim: d, head_dim, causal, scale };
                if !shape.supported(isa) {
                    assert_eq!(isa, Isa::Avx2, "only AVX2 keeps the products");
                    continue;
                }
                let (qkv, dctx) = (values(3 * d * steps, 1), values(d * steps, 2));
                for h in 0..heads {
                    let (mut probs, mut ctx) = (vec![f32::NAN; steps * steps], vec![0.0; d * steps]);
                    let ok = forward(isa, &shape, h, &qkv, &mut probs, &mut ctx);
                    assert!(ok, "{isa:?} {shape:?} {} {:?}", shape.supported(isa), &probs[..4]);
                    let (mut dprobs, mut dqkv) = (vec![f32::NAN; steps * steps], vec![0.0; 3 * d * steps]);
                    assert!(backward(isa, &shape, h, &qkv, &probs, &dctx, &mut dprobs, &mut dqkv));
                    let (want_p, want_c, want_d) = reference(&shape, h, &qkv, &dctx);
                    let what = format!("{isa:?} S {steps} dh {head_dim} head {h} causal {causal}");
                    close(&format!("{what} probs"), &probs, &want_p);
                    let rows = |v: &[f32], per: usize| -> Vec<f32> {
                        v.iter()
                            .enumerate()
                            .map(|(i, &x)| if (i % per) / head_dim % heads == h { x } else { 0.0 })
                            .collect()
                    };
                    close(&format!("{what} ctx"), &rows(&ctx, d), &want_c);
                    close(&format!("{what} dqkv"), &rows(&dqkv, 3 * d), &want_d);
                }
            }
        }
    }
}

#[test]
fn unsupported_shapes_are_left_to_the_caller() {
    let shape = HeadShape { steps: 10, dim: 32, head_dim: 16, causal: true, scale: 0.25 };
    let (qkv, mut probs, mut ctx) = (vec![0.0; 960], vec![7.0; 100], vec![7.0; 320]);
    assert!(!forward(Isa::Portable, &shape, 0, &qkv, &mut probs, &mut ctx));
    assert!(probs.iter().chain(&ctx).all(|&x| x == 7.0), "nothing written");
}
