//! The 1-D convolution against hand-checked values, a direct loop, finite differences and f32.

use super::*;
use crate::gradcheck::assert_close;
use crate::init::seeded_rng;
use crate::layers::seq_check::{check_gradients, wavy};
use crate::params::{ParamPath, Params};

/// `y[b, t, c] = bias[c] + Σ_f Σ_k W[c, f, k] · x[b, t·s + k·d − p, f]`, zero outside the steps.
fn direct<const STEPS: usize, const F: usize, const OSTEPS: usize, const C: usize, const K: usize>(
    layer: &Conv1d<f64, STEPS, F, OSTEPS, C, K>,
    x: &[f64],
) -> Vec<f64> {
    let g = layer.geometry();
    let mut y = Vec::new();
    for xs in x.chunks_exact(STEPS * F) {
        for t in 0..OSTEPS {
            for c in 0..C {
                let mut sum = layer.bias.as_ref().map_or(0.0, |b| b[c]);
                for f in 0..F {
                    for k in 0..K {
                        let at = (t * g.stride + k * g.dilation) as isize - g.padding as isize;
                        if (0..STEPS as isize).contains(&at) {
                            sum += layer.weight_at(c, f, k) * xs[at as usize * F + f];
                        }
                    }
                }
                y.push(sum);
            }
        }
    }
    y
}

fn strided() -> Conv1d<f64, 7, 3, 4, 2, 3> {
    let g = Conv1dGeometry::new(7, 3, 2, 2, 2).unwrap();
    let mut layer = Conv1d::<f64, 7, 3, 4, 2, 3>::new(g, true, Init::Glorot, &mut seeded_rng(5)).unwrap();
    layer.bias.as_mut().unwrap().as_mut_slice().copy_from_slice(&[0.25, -0.5]);
    layer
}

#[test]
fn a_padded_convolution_on_hand_checked_values() {
    // x = [1, 2, 3] (one feature), w = [1, 10], bias 0.5, padding 1:
    // the padded steps [0, 1, 2, 3, 0] give [10, 21, 32, 3] + 0.5.
    let mut layer =
        Conv1d::<f64, 3, 1, 4, 1, 2>::zeros(Conv1dGeometry::new(3, 2, 1, 1, 1).unwrap(), true).unwrap();
    layer.weight_mut().copy_from_slice(&[1.0, 10.0]);
    layer.bias.as_mut().unwrap()[0] = 0.5;
    let x = Batch::<f64, 3>::from_column_slice(&[1.0, 2.0, 3.0]);
    let mut y = Batch::<f64, 4>::zeros(0);
    Layer::forward(&layer, &x, &mut y);
    assert_eq!(y.as_slice(), &[10.5, 21.5, 32.5, 3.5]);
}

#[test]
fn stride_padding_and_dilation_match_a_direct_loop() {
    let layer = strided();
    let x = wavy::<21>(3, 1);
    let mut y = Batch::<f64, 8>::zeros(0);
    Layer::forward(&layer, &x, &mut y);
    assert_close(y.as_slice(), &direct(&layer, x.as_slice()), 1e-14, "conv1d vs direct loop");

    let g = Conv1dGeometry::new(6, 2, 1, 0, 1).unwrap();
    let layer = Conv1d::<f64, 6, 4, 5, 3, 2>::new(g, false, Init::He, &mut seeded_rng(6)).unwrap();
    let x = wavy::<24>(2, 2);
    let mut y = Batch::<f64, 15>::zeros(0);
    Layer::forward(&layer, &x, &mut y);
    assert_close(y.as_slice(), &direct(&layer, x.as_slice()), 1e-14, "conv1d without bias");
}

#[test]
fn gradients_match_finite_differences() {
    check_gradients::<_, 21, 8>(&mut strided(), &wavy(3, 3), "conv1d stride 2 padding 2 dilation 2");
    let g = Conv1dGeometry::new(5, 3, 1, 1, 1).unwrap();
    let mut layer = Conv1d::<f64, 5, 2, 5, 3, 3>::new(g, true, Init::Glorot, &mut seeded_rng(7)).unwrap();
    check_gradients::<_, 10, 15>(&mut layer, &wavy(2, 4), "conv1d same padding");
    let g = Conv1dGeometry::new(9, 2, 3, 0, 3).unwrap();
    let mut layer = Conv1d::<f64, 9, 2, 2, 2, 2>::new(g, false, Init::Glorot, &mut seeded_rng(8)).unwrap();
    check_gradients::<_, 18, 4>(&mut layer, &wavy(2, 5), "conv1d without bias, skipping steps");
}

#[test]
fn inference_between_training_and_backward_changes_nothing() {
    let layer = strided();
    let (x, other, dy) = (wavy::<21>(2, 1), wavy::<21>(2, 9), wavy::<8>(2, 4));
    let run = |infer_between: bool| {
        let (mut l, mut ws, mut y) = (layer.clone(), Conv1dWorkspace::default(), Batch::<f64, 8>::zeros(0));
        l.forward_train(&x, &mut y, &mut ws);
        if infer_between {
            l.forward_with(&other, &mut Batch::<f64, 8>::zeros(0), &mut ws);
        }
        let (mut g, mut dx) = (l.zero_gradients(), Batch::<f64, 21>::zeros(0));
        l.backward(&x, &y, &dy, &mut ws, &mut g, Some(&mut dx));
        (g.weight().to_vec(), dx)
    };
    assert_eq!(run(false), run(true));
}

#[test]
#[should_panic(expected = "training pass on the same batch")]
fn backward_refuses_a_workspace_of_another_batch() {
    let mut layer = strided();
    let (mut ws, mut y) = (Conv1dWorkspace::default(), Batch::<f64, 8>::zeros(0));
    layer.forward_train(&wavy::<21>(2, 1), &mut y, &mut ws);
    let mut g = layer.zero_gradients();
    layer.backward(&wavy::<21>(3, 1), &wavy::<8>(3, 1), &wavy::<8>(3, 1), &mut ws, &mut g, None);
}

#[test]
fn params_are_reported_as_pytorch_does() {
    let layer = strided();
    let mut seen = Vec::new();
    layer.visit_params(&ParamPath::ROOT.join("conv"), &mut |p| {
        seen.push((p.name.to_string(), p.shape.to_vec(), p.value.to_vec()))
    });
    assert_eq!((seen[0].0.as_str(), seen[0].1.as_slice()), ("conv.weight", &[2, 3, 3][..]));
    // Row-major [C, F, K]: weight[1, 2, 1] is at (1·3 + 2)·3 + 1 = 16.
    assert_eq!(seen[0].2[16], layer.weight_at(1, 2, 1));
    assert_eq!(seen[1], ("conv.bias".into(), vec![2], vec![0.25, -0.5]));
    assert_eq!((layer.param_count(), <Conv1d<f64, 7, 3, 4, 2, 3> as Params<f64>>::PARAM_COUNT), (20, 20));
    let plain = Conv1d::<f64, 7, 3, 4, 2, 3>::zeros(layer.geometry(), false).unwrap();
    assert_eq!(plain.param_count(), 18);
}

#[test]
fn he_init_uses_pytorchs_fan_in() {
    let g = Conv1dGeometry::new(8, 4, 1, 0, 1).unwrap();
    let layer = Conv1d::<f64, 8, 16, 5, 64, 4>::new(g, true, Init::He, &mut seeded_rng(9)).unwrap();
    let w = layer.weight();
    let var = w.iter().map(|v| v * v).sum::<f64>() / w.len() as f64;
    // N(0, 2 / fan_in) with fan_in = F·K = 64: variance 1/32.
    assert!((var * 32.0 - 1.0).abs() < 0.1, "variance {var}");
    assert!(layer.bias.as_ref().unwrap().iter().all(|&b| b == 0.0));
}

#[test]
fn sizes_that_disagree_with_the_geometry_are_errors() {
    let g = Conv1dGeometry::new(7, 3, 2, 2, 2).unwrap(); // 4 output steps
    assert!(Conv1d::<f64, 7, 3, 4, 2, 3>::zeros(g, true).is_ok());
    let wrong_out = Conv1d::<f64, 7, 3, 5, 2, 3>::zeros(g, true).unwrap_err().to_string();
    assert!(wrong_out.contains("OSTEPS = 5") && wrong_out.contains("out_steps: 4"), "{wrong_out}");
    assert!(Conv1d::<f64, 8, 3, 4, 2, 3>::zeros(g, true).is_err());
    assert!(Conv1d::<f64, 7, 3, 4, 2, 2>::zeros(g, true).is_err());
    assert!(Conv1d::<f64, 7, 0, 4, 2, 3>::zeros(g, true).is_err());
    assert!(Conv1d::<f64, 7, 3, 4, 0, 3>::new(g, true, Init::He, &mut seeded_rng(0)).is_err());
}

#[test]
fn f32_agrees_with_f64() {
    let l64 = strided();
    let mut l32 = Conv1d::<f32, 7, 3, 4, 2, 3>::zeros(l64.geometry(), true).unwrap();
    l32.weight_mut().iter_mut().zip(l64.weight()).for_each(|(a, &b)| *a = b as f32);
    l32.bias.as_mut().unwrap().as_mut_slice().copy_from_slice(&[0.25, -0.5]);
    let x64 = wavy::<21>(4, 2);
    let (mut y64, mut y32) = (Batch::<f64, 8>::zeros(0), Batch::<f32, 8>::zeros(0));
    Layer::forward(&l64, &x64, &mut y64);
    Layer::forward(&l32, &x64.map(|v| v as f32), &mut y32);
    assert_close(y32.as_slice(), y64.as_slice(), 1e-5, "f32 conv1d");
}

#[test]
fn results_do_not_depend_on_the_thread_count() {
    let _lock = crate::tensor::threads::thread_count_lock();
    let g = Conv1dGeometry::new(64, 3, 1, 1, 1).unwrap();
    let layer = Conv1d::<f32, 64, 64, 64, 128, 3>::new(g, true, Init::He, &mut seeded_rng(10)).unwrap();
    let x = wavy::<4096>(16, 1).map(|v| v as f32);
    let dy = wavy::<8192>(16, 2).map(|v| v as f32);
    let run = |threads: usize| {
        crate::tensor::set_threads(threads);
        let (mut l, mut ws, mut y) = (layer.clone(), Conv1dWorkspace::default(), Batch::zeros(0));
        l.forward_train(&x, &mut y, &mut ws);
        let (mut g, mut dx) = (l.zero_gradients(), Batch::zeros(0));
        l.backward(&x, &y, &dy, &mut ws, &mut g, Some(&mut dx));
        (y, g.weight().to_vec(), g.bias.as_ref().unwrap().as_slice().to_vec(), dx)
    };
    let (one, two) = (run(1), run(2));
    crate::tensor::set_threads(1);
    assert!(one == two, "1 and 2 threads differ");
}
