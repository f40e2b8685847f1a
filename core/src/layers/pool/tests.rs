//! The poolings against hand-checked values, finite differences and f64.

use super::*;
use crate::float::Float;
use crate::gradcheck::{assert_close, numeric_grad};
use crate::layers::Layer;
use crate::tensor::Batch;

/// Checks a layer's input gradient against finite differences for L = Σ k ⊙ y.
fn check_input_gradient<L: Layer<f64, IN, OUT, Gradients = ()> + Clone, const IN: usize, const OUT: usize>(
    layer: &L,
    x: &Batch<f64, IN>,
    what: &str,
) {
    let k = Batch::<f64, OUT>::from_fn(x.ncols(), |i, j| ((i + 3 * j) as f64 * 0.61).cos());
    let loss = |x: &Batch<f64, IN>| {
        let mut y = Batch::zeros(0);
        layer.forward(x, &mut y);
        y.component_mul(&k).sum()
    };
    let mut l = layer.clone();
    let mut ws = L::Workspace::default();
    let (mut y, mut y_inf) = (Batch::zeros(0), Batch::zeros(0));
    l.forward_train(x, &mut y, &mut ws);
    l.forward(x, &mut y_inf);
    assert_eq!(y, y_inf, "{what}: inference and training outputs differ");
    let mut dx = Batch::from_element(x.ncols(), f64::NAN); // overwritten, not accumulated
    l.backward(x, &y, &k, &mut ws, &mut (), Some(&mut dx));
    let num = numeric_grad(x.as_slice(), |xs| loss(&Batch::from_column_slice(xs)));
    assert_close(dx.as_slice(), &num, 1e-7, what);
}

/// Distinct values in a scrambled order: no ties in any window.
fn distinct<const N: usize>(batch: usize) -> Batch<f64, N> {
    Batch::from_fn(batch, |i, j| (((i + j * N) * 7919) % 1009) as f64 * 0.01 - 5.0)
}

#[test]
fn output_sizes_are_floor_mode() {
    let g = PoolGeometry::new(3, 7, 6, [2, 2], [2, 2]);
    assert_eq!((g.out_height, g.out_width), (3, 3));
    let g = PoolGeometry::new(1, 28, 28, [3, 3], [2, 2]);
    assert_eq!((g.out_height, g.out_width, g.out_features()), (13, 13, 169));
    const G: PoolGeometry = PoolGeometry::new(2, 5, 4, [5, 1], [1, 3]);
    assert_eq!((G.out_height, G.out_width, G.in_features(), G.out_features()), (1, 2, 40, 4));
}

#[test]
fn max_pool_on_hand_checked_values() {
    // One channel 4×4, 2×2 windows, stride 2; and a second channel.
    let p = MaxPool2d::new(PoolGeometry::new(2, 4, 4, [2, 2], [2, 2]));
    #[rustfmt::skip]
    let x = Batch::<f64, 32>::from_column_slice(&[
        1.0, 2.0, 5.0, 6.0,
        3.0, 4.0, 8.0, 7.0,
        -1.0, -2.0, 0.0, 0.0,
        -3.0, -4.0, 0.0, 9.0,
        // channel 1: all equal, the gradient goes to the first of each window
        1.0, 1.0, 1.0, 1.0,
        1.0, 1.0, 1.0, 1.0,
        1.0, 1.0, 1.0, 1.0,
        1.0, 1.0, 1.0, 1.0,
    ]);
    let mut y = Batch::zeros(0);
    Layer::forward(&p, &x, &mut y);
    assert_eq!(y.as_slice(), &[4.0, 8.0, -1.0, 9.0, 1.0, 1.0, 1.0, 1.0]);

    let mut l = p;
    let mut ws = MaxPoolWorkspace::default();
    Layer::forward_train(&mut l, &x, &mut y, &mut ws);
    let dy = Batch::<f64, 8>::from_column_slice(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]);
    let mut dx = Batch::zeros(0);
    Layer::backward(&l, &x, &y, &dy, &mut ws, &mut (), Some(&mut dx));
    let mut expected = [0.0; 32];
    for (at, g) in [(5, 1.0), (6, 2.0), (8, 3.0), (15, 4.0), (16, 5.0), (18, 6.0), (24, 7.0), (26, 8.0)] {
        expected[at] = g;
    }
    assert_eq!(dx.as_slice(), &expected);
}

#[test]
fn max_pool_propagates_nan() {
    let p = MaxPool2d::new(PoolGeometry::new(1, 2, 4, [2, 2], [2, 2]));
    // NaN first in its window, and NaN after a larger value; other windows are unaffected.
    for x in [[f64::NAN, 1.0, 2.0, 3.0, 0.0, 0.0, 0.0, 0.0], [0.0, 9.0, 2.0, 3.0, f64::NAN, 0.0, 0.0, 5.0]] {
        let x = Batch::<f64, 8>::from_column_slice(&x);
        let mut y = Batch::<f64, 2>::zeros(0);
        Layer::forward(&p, &x, &mut y);
        assert!(y[0].is_nan(), "{y}");
        assert!(!y[1].is_nan());
    }
    let x = Batch::<f64, 8>::from_column_slice(&[f64::NEG_INFINITY; 8]);
    let mut y = Batch::<f64, 2>::zeros(0);
    Layer::forward(&p, &x, &mut y);
    assert_eq!(y.as_slice(), &[f64::NEG_INFINITY; 2]);
}

#[test]
fn avg_and_global_pool_on_hand_checked_values() {
    // 1 channel 3×3, 2×2 windows with stride 1 (overlapping).
    let p = AvgPool2d::new(PoolGeometry::new(1, 3, 3, [2, 2], [1, 1]));
    let x = Batch::<f64, 9>::from_column_slice(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0]);
    let mut y = Batch::<f64, 4>::zeros(0);
    Layer::forward(&p, &x, &mut y);
    assert_eq!(y.as_slice(), &[3.0, 4.0, 6.0, 7.0]);
    let mut dx = Batch::zeros(0);
    let dy = Batch::<f64, 4>::from_element(1, 4.0);
    Layer::backward(&p, &x, &y, &dy, &mut (), &mut (), Some(&mut dx));
    // Each input counts the windows covering it.
    assert_eq!(dx.as_slice(), &[1.0, 2.0, 1.0, 2.0, 4.0, 2.0, 1.0, 2.0, 1.0]);

    let gp = GlobalAvgPool::new(2, 3);
    let x =
        Batch::<f64, 6>::from_column_slice(&[1.0, 2.0, 6.0, -1.0, -1.0, 5.0, 0.0, 0.0, 3.0, 9.0, 9.0, 9.0]);
    let mut y = Batch::<f64, 2>::zeros(0);
    Layer::forward(&gp, &x, &mut y);
    assert_eq!(y.as_slice(), &[3.0, 1.0, 1.0, 9.0]);
}

#[test]
fn input_gradients_match_finite_differences() {
    let max = MaxPool2d::new(PoolGeometry::new(2, 5, 6, [2, 3], [2, 3]));
    check_input_gradient::<_, 60, 8>(&max, &distinct(3), "max pool");
    // Overlapping rows (stride < kernel) and skipped columns (stride > kernel).
    let max = MaxPool2d::new(PoolGeometry::new(2, 6, 7, [3, 2], [1, 3]));
    check_input_gradient::<_, 84, 16>(&max, &distinct(2), "max pool, overlapping");
    let avg = AvgPool2d::new(PoolGeometry::new(2, 7, 6, [3, 2], [2, 3]));
    check_input_gradient::<_, 84, 12>(&avg, &distinct(3), "avg pool");
    let avg = AvgPool2d::new(PoolGeometry::new(3, 5, 5, [2, 2], [1, 1]));
    check_input_gradient::<_, 75, 48>(&avg, &distinct(2), "avg pool, stride 1");
    check_input_gradient::<_, 36, 3>(&GlobalAvgPool::new(3, 12), &distinct(4), "global avg pool");
}

#[test]
fn max_pool_training_reuses_its_workspace() {
    let mut p = MaxPool2d::new(PoolGeometry::new(4, 8, 8, [2, 2], [2, 2]));
    let x = distinct::<256>(6);
    let dy = Batch::<f64, 64>::from_element(6, 1.0);
    let (mut y, mut dx) = (Batch::zeros(0), Batch::zeros(0));
    let mut ws = MaxPoolWorkspace::default();
    Layer::forward_train(&mut p, &x, &mut y, &mut ws);
    Layer::backward(&p, &x, &y, &dy, &mut ws, &mut (), Some(&mut dx));
    let before = (ws.argmax.as_ptr(), ws.argmax.capacity(), y.as_ptr(), dx.as_ptr());
    Layer::forward_train(&mut p, &x, &mut y, &mut ws);
    Layer::backward(&p, &x, &y, &dy, &mut ws, &mut (), Some(&mut dx));
    assert_eq!((ws.argmax.as_ptr(), ws.argmax.capacity(), y.as_ptr(), dx.as_ptr()), before);
}

/// Values with ties, zeros of both signs, negatives, NaN and infinities, all
/// exact in f32 and f64.
pub(in crate::layers) fn awkward<const N: usize>(batch: usize) -> Batch<f64, N> {
    Batch::from_fn(batch, |i, j| match (i * 31 + j * 17) % 23 {
        0 => f64::NAN,
        1 => f64::INFINITY,
        2 => f64::NEG_INFINITY,
        3 => -0.0,
        4 | 5 => 0.0,
        6..=8 => 1.5,
        k => (k as f64 - 12.0) * 0.25,
    })
}

pub(in crate::layers) fn bits<T: Float>(v: &[T]) -> Vec<u64> {
    // NaN compares unequal to itself; compare NaN-ness and values.
    v.iter().map(|x| if x.as_f64().is_nan() { u64::MAX } else { x.as_f64().to_bits() }).collect()
}

/// Asserts `a == b`, naming the first difference rather than printing both.
pub(in crate::layers) fn assert_same<T: PartialEq + std::fmt::Debug>(a: &[Vec<T>], b: &[Vec<T>], what: &str) {
    for (k, (a, b)) in a.iter().zip(b).enumerate() {
        assert_eq!(a.len(), b.len(), "{what}: part {k} lengths");
        if let Some(i) = (0..a.len()).find(|&i| a[i] != b[i]) {
            panic!("{what}: part {k} differs first at {i}: {:?} vs {:?}", a[i], b[i]);
        }
    }
}

/// One training step of a max pooling in `T`: (output, arg-max, input gradient).
fn pool_step<T: Float, const IN: usize, const OUT: usize>(
    g: PoolGeometry,
    x: &Batch<f64, IN>,
) -> (Vec<u64>, Vec<u32>, Vec<u64>) {
    let (x, mut p) = (x.map(T::cast), MaxPool2d::new(g));
    let dy = Batch::<T, OUT>::from_fn(x.ncols(), |i, j| T::cast((i + 3 * j) as f64));
    let (mut ws, mut y, mut dx) = (MaxPoolWorkspace::default(), Batch::zeros(0), Batch::zeros(0));
    Layer::forward_train(&mut p, &x, &mut y, &mut ws);
    Layer::backward(&p, &x, &y, &dy, &mut ws, &mut (), Some(&mut dx));
    (bits(y.as_slice()), ws.argmax, bits(dx.as_slice()))
}

#[test]
fn max_pool_in_f32_equals_f64_on_ties_nan_and_tails() {
    // 2×2 tiles with 17 outputs per row (a vector and a 1-wide tail).
    let g = PoolGeometry::new(2, 4, 34, [2, 2], [2, 2]);
    let x = awkward::<272>(3);
    assert_eq!(pool_step::<f32, 272, 68>(g, &x), pool_step::<f64, 272, 68>(g, &x));
    // A last row and column that no window covers.
    let g = PoolGeometry::new(2, 5, 35, [2, 2], [2, 2]);
    let x = awkward::<350>(3);
    assert_eq!(pool_step::<f32, 350, 68>(g, &x), pool_step::<f64, 350, 68>(g, &x));
}
