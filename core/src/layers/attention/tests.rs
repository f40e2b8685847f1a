use super::*;
use crate::gradcheck::{assert_close, numeric_grad};
use crate::init::seeded_rng;
use crate::params::{ParamPath, Params};
use rand_distr::StandardNormal;

/// A layer with every parameter (biases too) drawn from N(0, 0.5²).
fn random_layer<T: Float, const S: usize, const D: usize, const H: usize>(
    causal: bool,
    seed: u64,
) -> Attention<T, S, D, H> {
    let mut layer = Attention::zeros(causal).unwrap();
    let mut rng = seeded_rng(seed);
    layer.visit_params_mut(&ParamPath::ROOT, &mut |p| {
        for v in p.value.iter_mut() {
            let z: f64 = StandardNormal.sample(&mut rng);
            *v = T::cast(0.5 * z);
        }
    });
    layer
}

/// Every parameter's values in visiting order, as f64.
fn param_values<T: Float, P: Params<T>>(p: &P) -> Vec<Vec<f64>> {
    let mut values = Vec::new();
    p.visit_params(&ParamPath::ROOT, &mut |p| values.push(p.value.iter().map(|v| v.as_f64()).collect()));
    values
}

fn batch<T: Float, const N: usize>(samples: usize, seed: u64) -> Batch<T, N> {
    let mut rng = seeded_rng(seed);
    Batch::from_fn(samples, |_, _| {
        let z: f64 = StandardNormal.sample(&mut rng);
        T::cast(z)
    })
}

/// `y` by the definition, one sample and one head at a time, in plain loops:
/// PyTorch's `softmax(q kᵀ/√dh + mask) v` with `−inf` above the diagonal.
fn reference<const S: usize, const D: usize, const H: usize, const IN: usize>(
    layer: &Attention<f64, S, D, H>,
    x: &Batch<f64, IN>,
) -> Vec<f64> {
    let p = param_values(layer);
    let (w_in, b_in, w_out, b_out) = (&p[0], &p[1], &p[2], &p[3]);
    let dh = D / H;
    let mut y = Vec::new();
    for sample in x.column_iter() {
        let xs = sample.as_slice();
        // qkv[t][j] = Σ_i w_in[j][i] x[t][i] + b_in[j]
        let qkv: Vec<Vec<f64>> = (0..S)
            .map(|t| {
                (0..3 * D)
                    .map(|j| b_in[j] + (0..D).map(|i| w_in[j * D + i] * xs[t * D + i]).sum::<f64>())
                    .collect()
            })
            .collect();
        let mut ctx = vec![vec![0.0; D]; S];
        for h in 0..H {
            for t in 0..S {
                let scores: Vec<f64> = (0..S)
                    .map(|s| {
                        if layer.causal && s > t {
                            return f64::NEG_INFINITY;
                        }
                        let dot: f64 = (0..dh).map(|c| qkv[t][h * dh + c] * qkv[s][D + h * dh + c]).sum();
                        dot / (dh as f64).sqrt()
                    })
                    .collect();
                let max = scores.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                let e: Vec<f64> = scores.iter().map(|s| (s - max).exp()).collect();
                let total: f64 = e.iter().sum();
                for c in 0..dh {
                    ctx[t][h * dh + c] = (0..S).map(|s| e[s] / total * qkv[s][2 * D + h * dh + c]).sum();
                }
            }
        }
        for row in &ctx {
            for o in 0..D {
                y.push(b_out[o] + (0..D).map(|i| w_out[o * D + i] * row[i]).sum::<f64>());
            }
        }
    }
    y
}

#[test]
fn one_head_one_feature_by_hand() {
    // q = k = v = x, scale 1: y_t = Σ_s softmax_s(x_t x_s) x_s.
    for causal in [false, true] {
        let mut layer = Attention::<f64, 2, 1, 1>::zeros(causal).unwrap();
        layer.visit_params_mut(&ParamPath::ROOT, &mut |p| {
            if p.name.to_string() != "in_proj_bias" && p.name.to_string() != "out_proj.bias" {
                p.value.fill(1.0);
            }
        });
        let x = Batch::<f64, 2>::from_column_slice(&[1.0, 2.0]);
        let mut y = Batch::<f64, 2>::zeros(0);
        Layer::forward(&layer, &x, &mut y);
        let e = std::f64::consts::E;
        // Step 0 sees scores [1, 2] (or only itself when causal); step 1 sees [2, 4].
        let y0 = if causal { 1.0 } else { (1.0 + 2.0 * e) / (1.0 + e) };
        let y1 = (1.0 + 2.0 * e * e) / (1.0 + e * e);
        assert_close(y.as_slice(), &[y0, y1], 1e-14, "hand-computed attention");
    }
}

#[test]
fn two_heads_by_hand() {
    // D = 2, two heads of one feature: head 0 attends by x's first feature and
    // carries it, head 1 by the second; the output swaps them back and adds 1.
    let mut layer = Attention::<f64, 2, 2, 2>::zeros(false).unwrap();
    layer.visit_params_mut(&ParamPath::ROOT, &mut |p| match p.name.to_string().as_str() {
        // q, k, v rows: each the identity.
        "in_proj_weight" => p.value.copy_from_slice(&[1., 0., 0., 1., 1., 0., 0., 1., 1., 0., 0., 1.]),
        "out_proj.weight" => p.value.copy_from_slice(&[0., 1., 1., 0.]),
        "out_proj.bias" => p.value.fill(1.0),
        _ => {}
    });
    let x = Batch::<f64, 4>::from_column_slice(&[1.0, 0.0, 0.0, 1.0]); // step 0: [1, 0], step 1: [0, 1]
    let mut y = Batch::<f64, 4>::zeros(0);
    Layer::forward(&layer, &x, &mut y);
    let e = std::f64::consts::E;
    // Head 0 (feature 0, values [1, 0]): query 0 scores [1, 0], query 1 scores [0, 0].
    let h0 = [e / (1.0 + e), 0.5];
    // Head 1 (feature 1, values [0, 1]): query 0 scores [0, 0], query 1 scores [0, 1].
    let h1 = [0.5, e / (1.0 + e)];
    assert_close(y.as_slice(), &[1.0 + h1[0], 1.0 + h0[0], 1.0 + h1[1], 1.0 + h0[1]], 1e-14, "two heads");
}

/// The blocked, causal-skipping passes against the definition, over sizes that
/// cover several query blocks and a partial last one.
#[test]
fn forward_matches_the_definition() {
    fn case<const S: usize, const D: usize, const H: usize, const IN: usize>(causal: bool) {
        let layer = random_layer::<f64, S, D, H>(causal, 11);
        let x = batch::<f64, IN>(3, 12);
        let mut y = Batch::<f64, IN>::zeros(0);
        Layer::forward(&layer, &x, &mut y);
        let what = format!("{layer:?}");
        assert_close(y.as_slice(), &reference(&layer, &x), 1e-12, &what);
    }
    for causal in [false, true] {
        case::<5, 4, 1, 20>(causal);
        case::<5, 6, 3, 30>(causal);
        case::<37, 4, 2, 148>(causal);
        case::<64, 2, 1, 128>(causal);
        case::<70, 4, 2, 280>(causal);
        case::<130, 2, 1, 260>(causal);
        case::<1, 3, 1, 3>(causal);
    }
}

/// Analytic gradients of `Σ y ⊙ r` against central differences, for every
/// parameter and the input.
fn check_gradients<const S: usize, const D: usize, const H: usize, const IN: usize>(
    causal: bool,
    samples: usize,
) {
    let mut layer = random_layer::<f64, S, D, H>(causal, 21);
    let x = batch::<f64, IN>(samples, 22);
    let r = batch::<f64, IN>(samples, 23);
    let loss = |layer: &Attention<f64, S, D, H>, x: &Batch<f64, IN>| {
        let mut y = Batch::<f64, IN>::zeros(0);
        Layer::forward(layer, x, &mut y);
        y.component_mul(&r).sum()
    };
    let (mut y, mut dx) = (Batch::<f64, IN>::zeros(0), Batch::zeros(0));
    let mut ws = AttentionWorkspace::default();
    Layer::forward_train(&mut layer, &x, &mut y, &mut ws);
    let mut grads = layer.zero_gradients();
    grads.in_proj_weight.fill(f64::NAN); // overwritten, not accumulated
    grads.out_proj_bias.fill(f64::NAN);
    Layer::backward(&layer, &x, &y, &r, &mut ws, &mut grads, Some(&mut dx));

    let mut analytic = Vec::new();
    Attention::<f64, S, D, H>::visit_grads(&grads, &mut |g| analytic.push(g.to_vec()));
    let mut names = Vec::new();
    layer.visit_params(&ParamPath::ROOT, &mut |p| names.push(p.name.to_string()));
    for (k, values) in param_values(&layer).iter().enumerate() {
        let numeric = numeric_grad(values, |v| {
            let mut probe = layer.clone();
            let mut index = 0;
            probe.visit_params_mut(&ParamPath::ROOT, &mut |p| {
                if index == k {
                    p.value.copy_from_slice(v);
                }
                index += 1;
            });
            loss(&probe, &x)
        });
        let what = format!("{layer:?} {}", names[k]);
        assert_close(&analytic[k], &numeric, 1e-7, &what);
    }
    let numeric = numeric_grad(x.as_slice(), |xs| loss(&layer, &Batch::from_column_slice(xs)));
    assert_close(dx.as_slice(), &numeric, 1e-7, &format!("{layer:?} input"));
}

#[test]
fn gradients_match_finite_differences_with_one_head() {
    check_gradients::<5, 4, 1, 20>(false, 3);
    check_gradients::<5, 4, 1, 20>(true, 3);
}

#[test]
fn gradients_match_finite_differences_with_several_heads() {
    check_gradients::<5, 4, 2, 20>(false, 3);
    check_gradients::<5, 4, 2, 20>(true, 3);
    check_gradients::<5, 6, 3, 30>(false, 3);
    check_gradients::<5, 6, 3, 30>(true, 3);
}

#[test]
fn gradients_match_finite_differences_over_several_causal_blocks() {
    check_gradients::<67, 4, 2, 268>(true, 2);
    check_gradients::<67, 4, 2, 268>(false, 1);
    check_gradients::<130, 2, 1, 260>(true, 1);
}

#[test]
fn a_causal_step_does_not_see_later_steps() {
    const S: usize = 70;
    let layer = random_layer::<f64, S, 4, 2>(true, 31);
    let x = batch::<f64, 280>(2, 32);
    let mut y = Batch::<f64, 280>::zeros(0);
    Layer::forward(&layer, &x, &mut y);
    for t in [0, 7, 63, 64, 69] {
        // Change every input after step t.
        let mut changed = x.clone();
        changed
            .column_iter_mut()
            .for_each(|mut c| c.as_mut_slice()[(t + 1) * 4..].iter_mut().for_each(|v| *v += 3.0));
        let mut y2 = Batch::<f64, 280>::zeros(0);
        Layer::forward(&layer, &changed, &mut y2);
        for b in 0..2 {
            let (before, after) =
                (&y.as_slice()[b * S * 4..(b + 1) * S * 4], &y2.as_slice()[b * S * 4..(b + 1) * S * 4]);
            assert_eq!(before[..(t + 1) * 4], after[..(t + 1) * 4], "sample {b}: steps up to {t} changed");
            if t + 1 < S {
                assert_ne!(before[(t + 1) * 4..], after[(t + 1) * 4..]);
            }
        }
    }
    // Without the mask, step 0 does see them.
    let open = random_layer::<f64, S, 4, 2>(false, 31);
    let (mut y, mut y2) = (Batch::<f64, 280>::zeros(0), Batch::<f64, 280>::zeros(0));
    let mut changed = x.clone();
    changed[(S * 4 - 1, 0)] += 1.0;
    Layer::forward(&open, &x, &mut y);
    Layer::forward(&open, &changed, &mut y2);
    assert_ne!(y.as_slice()[..4], y2.as_slice()[..4]);
}

#[test]
fn probabilities_sum_to_one_over_the_steps_each_query_sees() {
    const S: usize = 18;
    for causal in [false, true] {
        let layer = random_layer::<f64, S, 6, 3>(causal, 41);
        let x = batch::<f64, 108>(2, 42);
        let (mut y, mut ws) = (Batch::<f64, 108>::zeros(0), AttentionWorkspace::default());
        Layer::forward_with(&layer, &x, &mut y, &mut ws);
        let probs = ws.probabilities();
        assert_eq!(probs.len(), 2 * 3 * S * S);
        for (row, p) in probs.chunks_exact(S).enumerate() {
            let t = row % S;
            assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-12, "row {row}");
            if causal {
                assert!(
                    p[..=t].iter().all(|&v| v > 0.0) && p[t + 1..].iter().all(|&v| v == 0.0),
                    "row {row}"
                );
            } else {
                assert!(p.iter().all(|&v| v > 0.0), "row {row}");
            }
        }
    }
}

/// The f32 layer (through `kernels::attention` where it takes the shape) and
/// the f64 one (always the products) give the same outputs, probabilities and
/// gradients, within `tol`. The weights shrink as `√(8/D)`, so the scores
/// stay as spread as at `D = 8` (sharper softmaxes lose f32 digits at any level).
fn f32_and_f64_agree<const S: usize, const D: usize, const H: usize, const IN: usize>(seed: u64, tol: f64) {
    for causal in [false, true] {
        let mut l64 = random_layer::<f64, S, D, H>(causal, seed);
        let shrink = (8.0 / D as f64).sqrt();
        l64.visit_params_mut(&ParamPath::ROOT, &mut |p| p.value.iter_mut().for_each(|v| *v *= shrink));
        let mut l32 = Attention::<f32, S, D, H>::zeros(causal).unwrap();
        let values = param_values(&l64);
        let mut k = 0;
        l32.visit_params_mut(&ParamPath::ROOT, &mut |p| {
            p.value.iter_mut().zip(&values[k]).for_each(|(v, &w)| *v = w as f32);
            k += 1;
        });
        let x64 = batch::<f64, IN>(4, seed + 1);
        let r64 = batch::<f64, IN>(4, seed + 2);
        let (x32, r32) = (x64.map(|v| v as f32), r64.map(|v| v as f32));
        let (mut y64, mut y32) = (Batch::<f64, IN>::zeros(0), Batch::<f32, IN>::zeros(0));
        let (mut dx64, mut dx32) = (Batch::zeros(0), Batch::zeros(0));
        let (mut ws64, mut ws32) = (AttentionWorkspace::default(), AttentionWorkspace::default());
        let (mut g64, mut g32) = (l64.zero_gradients(), l32.zero_gradients());
        Layer::forward_train(&mut l64, &x64, &mut y64, &mut ws64);
        Layer::forward_train(&mut l32, &x32, &mut y32, &mut ws32);
        Layer::backward(&l64, &x64, &y64, &r64, &mut ws64, &mut g64, Some(&mut dx64));
        Layer::backward(&l32, &x32, &y32, &r32, &mut ws32, &mut g32, Some(&mut dx32));
        let what = format!("[{S}, {D}], {H} heads, causal {causal}");
        assert_close(y32.as_slice(), y64.as_slice(), tol, &format!("y {what}"));
        assert_close(
            ws32.probabilities(),
            ws64.probabilities(),
            tol / 10.0,
            &format!("probabilities {what}"),
        );
        assert_close(dx32.as_slice(), dx64.as_slice(), tol, &format!("dx {what}"));
        let (mut a, mut b) = (Vec::new(), Vec::new());
        Attention::<f64, S, D, H>::visit_grads(&g64, &mut |g| a.push(g.to_vec()));
        Attention::<f32, S, D, H>::visit_grads(&g32, &mut |g| b.push(g.to_vec()));
        for (g32, g64) in b.iter().zip(&a) {
            assert_close(g32, g64, tol, &format!("parameter gradient {what}"));
        }
    }
}

#[test]
fn f32_agrees_with_f64() {
    // Heads of 4 features: the products at every level.
    f32_and_f64_agree::<20, 8, 2, 160>(51, 1e-4);
    // Heads of 16 and 32 features: `kernels::attention` at AVX-512 and portably.
    f32_and_f64_agree::<20, 32, 2, 640>(61, 1e-4);
    f32_and_f64_agree::<64, 64, 2, 4096>(71, 1e-4);
}

#[test]
fn parameters_have_pytorch_names_shapes_and_count() {
    let mut layer = Attention::<f32, 5, 6, 3>::zeros(true).unwrap();
    let root = ParamPath::ROOT.join("att1");
    let mut seen = Vec::new();
    layer.visit_params(&root, &mut |p| seen.push((p.name.to_string(), p.shape.to_vec(), p.value.len())));
    let expected = [
        ("att1.in_proj_weight".to_string(), vec![18, 6], 108),
        ("att1.in_proj_bias".to_string(), vec![18], 18),
        ("att1.out_proj.weight".to_string(), vec![6, 6], 36),
        ("att1.out_proj.bias".to_string(), vec![6], 6),
    ];
    assert_eq!(seen, expected);
    let mut seen_mut = Vec::new();
    layer.visit_params_mut(&root, &mut |p| {
        seen_mut.push((p.name.to_string(), p.shape.to_vec(), p.value.len()))
    });
    assert_eq!(seen_mut, expected);
    let g = layer.zero_gradients();
    let mut with_grads = Vec::new();
    layer.visit_params_with_grads(&g, &root, &mut |p, gr| {
        assert_eq!(p.value.len(), gr.len());
        with_grads.push(p.name.to_string());
    });
    assert_eq!(with_grads, expected.map(|e| e.0));
    assert_eq!(Attention::<f32, 5, 6, 3>::PARAM_COUNT, 168);
    assert_eq!(Attention::<f32, 5, 6, 3>::HEAD_DIM, 2);
    assert_eq!(format!("{layer:?}"), "Attention([5, 6], heads = 3, causal = true)");
    assert!(layer.causal());
}

#[test]
fn in_proj_weight_rows_are_query_key_value_in_pytorch_order() {
    // Row j of in_proj_weight (PyTorch `[3D, D]`) makes feature j of [q k v]:
    // setting only the value rows to the identity makes ctx = x averaged.
    let mut layer = Attention::<f64, 3, 2, 1>::zeros(false).unwrap();
    layer.visit_params_mut(&ParamPath::ROOT, &mut |p| match p.name.to_string().as_str() {
        "in_proj_weight" => {
            p.value.fill(0.0);
            p.value[4 * 2] = 1.0; // row 4 (v feature 0), column 0
            p.value[5 * 2 + 1] = 1.0; // row 5 (v feature 1), column 1
        }
        "out_proj.weight" => p.value.copy_from_slice(&[1.0, 0.0, 0.0, 1.0]),
        _ => {}
    });
    // q = k = 0: uniform attention, every step gets the mean of the steps.
    let x = Batch::<f64, 6>::from_column_slice(&[1.0, 2.0, 3.0, 4.0, 5.0, 9.0]);
    let mut y = Batch::<f64, 6>::zeros(0);
    Layer::forward(&layer, &x, &mut y);
    assert_close(y.as_slice(), &[3.0, 5.0, 3.0, 5.0, 3.0, 5.0], 1e-14, "mean of the values");
}

#[test]
fn heads_that_do_not_divide_the_features_are_an_error() {
    let e = Attention::<f32, 5, 6, 4>::zeros(false).unwrap_err();
    assert_eq!(e.to_string(), "invalid setting: Attention: 4 heads do not divide 6 features (6 % 4 = 2)");
    let e = Attention::<f32, 5, 6, 4>::new(true, Init::Auto, &mut seeded_rng(1)).unwrap_err();
    assert!(e.to_string().contains("4 heads do not divide 6 features"), "{e}");
    let e = Attention::<f32, 5, 6, 0>::zeros(false).unwrap_err();
    assert!(e.to_string().contains("with 0 heads"), "{e}");
    let e = Attention::<f32, 0, 6, 2>::zeros(false).unwrap_err();
    assert!(e.to_string().contains("[0, 6]"), "{e}");
}

#[test]
fn new_initialises_like_pytorch() {
    let layer = Attention::<f64, 4, 64, 4>::new(false, Init::Auto, &mut seeded_rng(3)).unwrap();
    let p = param_values(&layer);
    let stats = |w: &[f64]| {
        let mean = w.iter().sum::<f64>() / w.len() as f64;
        (mean, w.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / w.len() as f64)
    };
    // Xavier uniform over [3D, D]: U(±sqrt(6/(4D))), variance bound²/3.
    let bound = (6.0f64 / 256.0).sqrt();
    assert!(p[0].iter().all(|w| w.abs() <= bound));
    let (mean, var) = stats(&p[0]);
    assert!(mean.abs() < 0.005 && (var / (bound * bound / 3.0) - 1.0).abs() < 0.05, "{mean} {var}");
    // nn.Linear's default: U(±1/sqrt(D)).
    let bound = 1.0 / 8.0;
    assert!(p[2].iter().all(|w| w.abs() <= bound));
    let (_, var) = stats(&p[2]);
    assert!((var / (bound * bound / 3.0) - 1.0).abs() < 0.1, "{var}");
    assert!(p[1].iter().chain(&p[3]).all(|&b| b == 0.0));
    // The same seed gives the same layer; He draws normal weights instead.
    let again = Attention::<f64, 4, 64, 4>::new(false, Init::Glorot, &mut seeded_rng(3)).unwrap();
    assert_eq!(param_values(&again), p);
    let he = Attention::<f64, 4, 64, 4>::new(false, Init::He, &mut seeded_rng(3)).unwrap();
    let (_, var) = stats(&param_values(&he)[0]);
    assert!((var / (2.0 / 64.0) - 1.0).abs() < 0.05, "{var}");
}

#[test]
fn a_second_step_with_the_same_batch_reuses_every_buffer() {
    let mut layer = random_layer::<f32, 12, 8, 2>(true, 61);
    let x = batch::<f32, 96>(4, 62);
    let (mut y, mut dx) = (Batch::<f32, 96>::zeros(0), Batch::zeros(0));
    let mut ws = AttentionWorkspace::default();
    let mut g = layer.zero_gradients();
    let ptrs = |ws: &AttentionWorkspace<f32>| {
        [
            ws.qkv.as_ptr(),
            ws.probs.as_ptr(),
            ws.ctx.as_ptr(),
            ws.dctx.as_ptr(),
            ws.dprobs.as_ptr(),
            ws.dqkv.as_ptr(),
        ]
    };
    Layer::forward_train(&mut layer, &x, &mut y, &mut ws);
    Layer::backward(&layer, &x, &y, &x, &mut ws, &mut g, Some(&mut dx));
    let before = (ptrs(&ws), y.as_ptr(), dx.as_ptr());
    let first = (y.clone(), dx.clone());
    Layer::forward_train(&mut layer, &x, &mut y, &mut ws);
    Layer::backward(&layer, &x, &y, &x, &mut ws, &mut g, Some(&mut dx));
    assert_eq!(before, (ptrs(&ws), y.as_ptr(), dx.as_ptr()));
    assert_eq!(first, (y, dx), "the same step gives the same bits");
}

#[test]
fn results_do_not_depend_on_the_thread_count() {
    let _lock = crate::tensor::threads::thread_count_lock();
    let mut layer = random_layer::<f32, 16, 8, 2>(true, 71);
    let x = batch::<f32, 128>(32, 72);
    let r = batch::<f32, 128>(32, 73);
    let run = |layer: &mut Attention<f32, 16, 8, 2>| {
        let (mut y, mut dx, mut ws) =
            (Batch::<f32, 128>::zeros(0), Batch::zeros(0), AttentionWorkspace::default());
        let mut g = layer.zero_gradients();
        Layer::forward_train(layer, &x, &mut y, &mut ws);
        Layer::backward(&*layer, &x, &y, &r, &mut ws, &mut g, Some(&mut dx));
        let mut grads = Vec::new();
        Attention::<f32, 16, 8, 2>::visit_grads(&g, &mut |g| grads.push(g.to_vec()));
        (y, dx, grads)
    };
    let previous = crate::tensor::threads();
    crate::tensor::set_threads(1);
    let one = run(&mut layer);
    crate::tensor::set_threads(2);
    let two = run(&mut layer);
    crate::tensor::set_threads(previous);
    assert!(one == two, "1 and 2 threads differ");
}

#[test]
fn an_empty_batch_gives_empty_outputs_and_zero_gradients() {
    fn case<T: Float>() {
        let mut layer = random_layer::<T, 5, 4, 2>(true, 81);
        let x = Batch::<T, 20>::zeros(0);
        let (mut y, mut dx) = (Batch::<T, 20>::zeros(3), Batch::<T, 20>::zeros(3));
        let mut ws = AttentionWorkspace::default();
        let mut g = layer.zero_gradients();
        g.in_proj_weight.fill(T::one());
        g.out_proj_weight.fill(T::one());
        Layer::forward_train(&mut layer, &x, &mut y, &mut ws);
        Layer::backward(&layer, &x, &y, &y, &mut ws, &mut g, Some(&mut dx));
        assert_eq!((y.ncols(), dx.ncols()), (0, 0));
        Attention::<T, 5, 4, 2>::visit_grads(&g, &mut |g| assert!(g.iter().all(|&v| v == T::zero())));
    }
    case::<f32>();
    case::<f64>();
}
