use super::*;
use crate::kernels::tested_levels;

/// Deterministic values in ±`spread`.
fn values(len: usize, seed: usize, spread: f32) -> Vec<f32> {
    (0..len).map(|i| (((i * 7919 + seed * 104_729) % 1000) as f32 / 500.0 - 1.0) * spread).collect()
}

/// One sample's forward and backward in f64, by the definitions: (probs, ctx, dqkv).
fn reference(shape: &HeadShape, qkv: &[f32], dctx: &[f32]) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let (s, d, dh) = (shape.steps, shape.dim, shape.head_dim());
    let scale = 1.0 / (dh as f64).sqrt();
    let (mut probs, mut ctx, mut dqkv) =
        (vec![0.0; shape.heads * s * s], vec![0.0; d * s], vec![0.0; 3 * d * s]);
    for h in 0..shape.heads {
        let at = |off: usize, t: usize, i: usize| qkv[t * 3 * d + off + h * dh + i] as f64;
        let (q, k, v) = (|t, i| at(0, t, i), |t, i| at(d, t, i), |t, i| at(2 * d, t, i));
        let dc = |t: usize, i: usize| dctx[t * d + h * dh + i] as f64;
        let m = &mut probs[h * s * s..][..s * s];
        for t in 0..s {
            let seen = shape.seen(t);
            let scores: Vec<f64> =
                (0..seen).map(|key| (0..dh).map(|i| k(key, i) * q(t, i)).sum::<f64>() * scale).collect();
            let max = scores.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let sum: f64 = scores.iter().map(|x| (x - max).exp()).sum();
            for (key, x) in scores.iter().enumerate() {
                m[t * s + key] = (x - max).exp() / sum;
            }
        }
        let m = &probs[h * s * s..][..s * s];
        let mm = |key: usize, t: usize| m[t * s + key];
        let mut ds = vec![0.0; s * s];
        for t in 0..s {
            for i in 0..dh {
                ctx[t * d + h * dh + i] = (0..s).map(|key| mm(key, t) * v(key, i)).sum();
            }
            let dm: Vec<f64> = (0..s).map(|key| (0..dh).map(|i| v(key, i) * dc(t, i)).sum()).collect();
            let dot: f64 = (0..s).map(|key| dm[key] * mm(key, t)).sum();
            for key in 0..s {
                ds[t * s + key] = mm(key, t) * (dm[key] - dot);
            }
        }
        for t in 0..s {
            for i in 0..dh {
                let dq = (0..s).map(|key| ds[t * s + key] * k(key, i)).sum::<f64>() * scale;
                let dk = (0..s).map(|u| ds[u * s + t] * q(u, i)).sum::<f64>() * scale;
                let dv = (0..s).map(|u| mm(t, u) * dc(u, i)).sum();
                dqkv[t * 3 * d + h * dh + i] = dq;
                dqkv[t * 3 * d + d + h * dh + i] = dk;
                dqkv[t * 3 * d + 2 * d + h * dh + i] = dv;
            }
        }
    }
    (probs, ctx, dqkv)
}

#[track_caller]
fn close(what: &str, got: &[f32], want: &[f64]) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        assert!((g as f64 - w).abs() <= 2e-5 * (1.0 + w.abs()), "{what}[{i}]: {g} vs {w}");
    }
}

#[test]
fn the_core_matches_the_definitions_at_every_level() {
    let shapes = [
        (16, 16, 1),
        (64, 32, 4),
        (50, 32, 2),
        (7, 16, 3),
        (64, 64, 2),
        (33, 48, 2),
        (1, 32, 1),
        (61, 16, 2),
    ];
    for isa in tested_levels("attention core") {
        for (steps, head_dim, heads) in shapes {
            for causal in [false, true] {
                let d = head_dim * heads;
                let shape = HeadShape { steps, dim: d, heads, causal };
                if !shape.supported(isa) {
                    assert_eq!(isa, Isa::Avx2, "only AVX2 keeps the products");
                    continue;
                }
                let (qkv, dctx) = (values(3 * d * steps, 1, 2.0), values(d * steps, 2, 1.0));
                let (mut probs, mut ctx) = (vec![f32::NAN; heads * steps * steps], vec![f32::NAN; d * steps]);
                assert!(forward(isa, &shape, &qkv, &mut probs, &mut ctx));
                let mut dqkv = vec![f32::NAN; qkv.len()];
                assert!(backward(isa, &shape, &qkv, &probs, &dctx, &mut dqkv));
                let (want_p, want_c, want_d) = reference(&shape, &qkv, &dctx);
                let what = format!("{isa:?} S {steps} dh {head_dim} heads {heads} causal {causal}");
                close(&format!("{what} probs"), &probs, &want_p);
                close(&format!("{what} ctx"), &ctx, &want_c);
                close(&format!("{what} dqkv"), &dqkv, &want_d);
                if causal {
                    let above = |t: usize, key: usize| key > t;
                    let masked = |p: &[f32]| {
                        p.chunks_exact(steps * steps).all(|m| {
                            (0..steps)
                                .all(|t| (0..steps).all(|key| !above(t, key) || m[t * steps + key] == 0.0))
                        })
                    };
                    assert!(masked(&probs), "{what}: masked probabilities are exact zeros");
                }
            }
        }
    }
}

#[test]
fn unsupported_shapes_are_left_to_the_caller() {
    for shape in [
        HeadShape { steps: 65, dim: 32, heads: 1, causal: true },
        HeadShape { steps: 8, dim: 24, heads: 1, causal: false },
        HeadShape { steps: 8, dim: 40, heads: 2, causal: false },
    ] {
        let (s, d) = (shape.steps, shape.dim);
        let qkv = vec![0.0; 3 * d * s];
        let (mut probs, mut ctx) = (vec![7.0; shape.heads * s * s], vec![7.0; d * s]);
        for isa in tested_levels("attention core") {
            assert!(!forward(isa, &shape, &qkv, &mut probs, &mut ctx), "{shape:?}");
        }
        assert!(probs.iter().chain(&ctx).all(|&x| x == 7.0), "nothing written");
    }
}

/// Timing, not a check: `cargo test --release -p staticnet-core --lib attention_core_timing -- --ignored --nocapture`.
#[test]
#[ignore]
fn attention_core_timing() {
    let isa = Isa::active();
    for (batch, causal) in [(1usize, true), (32, true), (1, false)] {
        let shape = HeadShape { steps: 64, dim: 128, heads: 4, causal };
        let reps = 64 / batch.min(64) + 1;
        let (s, d) = (64, 128);
        let qkv = values(3 * d * s * batch, 1, 2.0);
        let dctx = values(d * s * batch, 2, 1.0);
        let (mut probs, mut ctx) = (vec![0.0; 4 * s * s * batch], vec![0.0; d * s * batch]);
        let mut dqkv = vec![0.0; qkv.len()];
        let (mut fwd, mut bwd) = (f64::MAX, f64::MAX);
        for _ in 0..200 {
            let start = std::time::Instant::now();
            for _ in 0..reps {
                for b in 0..batch {
                    let (p, c) = (&mut probs[b * 4 * s * s..][..4 * s * s], &mut ctx[b * d * s..][..d * s]);
                    forward(isa, &shape, &qkv[b * 3 * d * s..][..3 * d * s], p, c);
                }
            }
            fwd = fwd.min(start.elapsed().as_secs_f64() / (reps * batch) as f64);
            let start = std::time::Instant::now();
            for _ in 0..reps {
                for b in 0..batch {
                    let x = &qkv[b * 3 * d * s..][..3 * d * s];
                    let (p, dc) = (&probs[b * 4 * s * s..][..4 * s * s], &dctx[b * d * s..][..d * s]);
                    backward(isa, &shape, x, p, dc, &mut dqkv[b * 3 * d * s..][..3 * d * s]);
                }
            }
            bwd = bwd.min(start.elapsed().as_secs_f64() / (reps * batch) as f64);
        }
        println!(
            "batch {batch}, causal {causal}: forward {:.2} us, backward {:.2} us per sample",
            fwd * 1e6,
            bwd * 1e6
        );
    }
}
