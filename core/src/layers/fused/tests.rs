//! The fused passes against the layers one by one.

use crate::float::Float;
use crate::init::{seeded_rng, Init};
use crate::layers::pool::tests::{assert_same, awkward, bits};
use crate::layers::{
    Dense, Layer, MaxPool2d, MaxPoolWorkspace, PoolGeometry, Relu, ReluDenseTrace, ReluPoolTrace,
};
use crate::params::Params;
use crate::tensor::Batch;

/// One training step of `relu, max_pool` layer by layer and fused, in `T`:
/// (relu out, pool out, d relu out, dx) of both.
fn relu_pool_both_ways<T: Float, const IN: usize, const OUT: usize>(
    g: PoolGeometry,
    x: &Batch<f64, IN>,
) -> [[Vec<u64>; 4]; 2] {
    let x = x.map(T::cast);
    let dy = Batch::<T, OUT>::from_fn(x.ncols(), |i, j| T::cast(((i * 7 + j) % 11) as f64 - 5.0));
    let mut pool = MaxPool2d::new(g);
    let mut ws = MaxPoolWorkspace::default();
    let (mut r, mut y, mut dr, mut dx) = (Batch::zeros(0), Batch::zeros(0), Batch::zeros(0), Batch::zeros(0));
    Layer::forward_train(&mut Relu, &x, &mut r, &mut ());
    Layer::forward_train(&mut pool, &r, &mut y, &mut ws);
    Layer::backward(&pool, &r, &y, &dy, &mut ws, &mut (), Some(&mut dr));
    Layer::backward(&Relu, &x, &r, &dr, &mut (), &mut (), Some(&mut dx));
    let apart = [bits(r.as_slice()), bits(y.as_slice()), bits(dr.as_slice()), bits(dx.as_slice())];
    let mut ws = MaxPoolWorkspace::default();
    let (mut r, mut y, mut dr) = (Batch::from_element(1, T::one()), Batch::zeros(0), Batch::zeros(0));
    let mut dx = Batch::from_element(x.ncols(), T::cast(f64::NAN));
    pool.forward_train_after_relu(&x, &mut r, &mut y, &mut ws);
    let trace = ReluPoolTrace { x: &x, relu: &r, pooled: &y };
    pool.backward_after_relu(trace, &dy, &mut ws, &mut dr, Some(&mut dx));
    let fused = [bits(r.as_slice()), bits(y.as_slice()), bits(dr.as_slice()), bits(dx.as_slice())];
    [apart, fused]
}

#[test]
fn relu_then_max_pool_fused_equals_layer_by_layer_in_f32_and_f64() {
    // 40 wide: 20 outputs per row; AVX-512: a vector of 16 and a masked tail of 4; AVX2: two blocks of 8, and one overlapping them.
    let g = PoolGeometry::new(3, 6, 40, [2, 2], [2, 2]);
    let x = awkward::<720>(3);
    let [apart, fused] = relu_pool_both_ways::<f64, 720, 180>(g, &x);
    assert_same(&apart, &fused, "f64");
    let [apart32, fused32] = relu_pool_both_ways::<f32, 720, 180>(g, &x);
    assert_same(&apart32, &fused32, "f32");
    // The f32 kernels (vectorised where the CPU allows) pick the same
    // maxima, so everything equals the f64 path's values.
    assert_same(&apart32, &apart, "f32 vs f64");
    // A plane the windows do not tile, 9 windows per row: the vector kernels'
    // block of 8 and an overlapping last one, against the f64 path.
    let g = PoolGeometry::new(2, 5, 19, [2, 2], [2, 2]);
    let x = awkward::<190>(2);
    let [apart32, _] = relu_pool_both_ways::<f32, 190, 36>(g, &x);
    let [apart64, _] = relu_pool_both_ways::<f64, 190, 36>(g, &x);
    assert_same(&apart32, &apart64, "f32 vs f64, 19 wide");
    // Windows that do not tile the plane (odd sizes, other shapes) go layer by layer.
    for g in [PoolGeometry::new(2, 5, 7, [2, 2], [2, 2]), PoolGeometry::new(2, 5, 7, [3, 2], [1, 2])] {
        let x = awkward::<70>(2);
        let out = g.out_features();
        let [apart, fused] = match out {
            12 => relu_pool_both_ways::<f32, 70, 12>(g, &x),
            _ => relu_pool_both_ways::<f32, 70, 18>(g, &x),
        };
        assert_same(&apart, &fused, &format!("{g:?}"));
    }
}

/// A layer and batch large enough that every product of a step is split on 2 threads.
fn split_sized() -> (Dense<f32, 128, 96>, Batch<f32, 128>, Batch<f32, 96>) {
    let mut d = Dense::<f32, 128, 96>::new(true, Init::He, &mut seeded_rng(5));
    d.bias.as_mut().unwrap().iter_mut().enumerate().for_each(|(i, b)| *b = (i as f32 * 0.3).sin());
    let x = Batch::<f32, 128>::from_fn(128, |i, j| ((i * 7 + j * 3) as f32 * 0.11).sin());
    let dy = Batch::<f32, 96>::from_fn(128, |i, j| ((i * 5 + j * 11) as f32 * 0.13).cos());
    (d, x, dy)
}

#[test]
fn fused_relu_passes_match_layer_by_layer_bit_for_bit_on_any_thread_count() {
    let (d, x, dy) = split_sized();
    let relu = Relu;
    let _threads = crate::tensor::threads::thread_count_lock();
    // Layer by layer, one thread: the reference.
    crate::set_threads(1);
    let (mut y, mut r) = (Batch::zeros(0), Batch::zeros(0));
    d.forward(&x, &mut y);
    crate::layers::Activation::forward(&relu, &y, &mut r);
    let mut g = d.zero_gradients();
    let (mut dx, mut d_pre) = (Batch::zeros(0), Batch::zeros(0));
    // As if `x` were a ReLU's output of `pre = x`: relu(x) is the input.
    let mut input = Batch::zeros(0);
    crate::layers::Activation::forward(&relu, &x, &mut input);
    d.backward(&input, &dy, &mut g, Some(&mut dx));
    crate::layers::Activation::backward(&relu, &x, &input, &dx, &mut d_pre);
    assert!(r.iter().any(|&v| v == 0.0) && r.iter().any(|&v| v > 0.0), "the ReLU gates some values");
    // The bias gradient is the sum of dy over the batch.
    for (o, &db) in g.bias.as_ref().unwrap().iter().enumerate() {
        let sum: f32 = dy.row(o).iter().sum();
        assert!((db - sum).abs() <= 1e-4 * (1.0 + sum.abs()), "bias gradient {o}: {db} vs {sum}");
    }
    for threads in [1, 2] {
        crate::set_threads(threads);
        let (mut y2, mut r2) = (Batch::zeros(0), Batch::zeros(0));
        d.forward_relu(&x, &mut y2, &mut r2);
        assert_eq!(
            (y2.as_slice(), r2.as_slice()),
            (y.as_slice(), r.as_slice()),
            "forward, {threads} threads"
        );
        let mut g2 = d.zero_gradients();
        let (mut dx2, mut d_pre2) = (Batch::zeros(0), Batch::zeros(0));
        d.backward_through_relu(ReluDenseTrace { pre: &x, x: &input }, &dy, &mut g2, &mut dx2, &mut d_pre2);
        assert_eq!(g2.weight.as_slice(), g.weight.as_slice(), "weight gradient, {threads} threads");
        assert_eq!(g2.bias, g.bias, "bias gradient, {threads} threads");
        assert_eq!(
            (dx2.as_slice(), d_pre2.as_slice()),
            (dx.as_slice(), d_pre.as_slice()),
            "{threads} threads"
        );
    }
    crate::set_threads(1);
}

#[test]
fn a_forward_split_by_rows_matches_one_thread_bit_for_bit() {
    // 256 outputs of 300 inputs for 128 samples: deeper than the batch, so 2 threads
    // split the product by rows (outputs), and each thread's epilogue sees part columns.
    let mut d = Dense::<f32, 300, 256>::new(true, Init::He, &mut seeded_rng(6));
    d.bias.as_mut().unwrap().iter_mut().enumerate().for_each(|(i, b)| *b = (i as f32 * 0.3).sin());
    let x = Batch::<f32, 300>::from_fn(128, |i, j| ((i * 7 + j * 3) as f32 * 0.11).sin());
    let _threads = crate::tensor::threads::thread_count_lock();
    let [one, two] = [1, 2].map(|threads| {
        crate::set_threads(threads);
        let (mut y, mut r) = (Batch::zeros(0), Batch::zeros(0));
        d.forward_relu(&x, &mut y, &mut r);
        (y, r)
    });
    crate::set_threads(1);
    assert!(one.1.iter().any(|&v| v == 0.0) && one.1.iter().any(|&v| v > 0.0), "the ReLU gates some values");
    assert!(one == two, "2 threads differ from 1");
    // And the one-thread result is W x + b.
    let (j, o) = (77, 200);
    let want: f64 = d.bias.as_ref().unwrap()[o] as f64
        + (0..300).map(|i| d.weight[(i, o)] as f64 * x[(i, j)] as f64).sum::<f64>();
    assert!((one.0[(o, j)] as f64 - want).abs() < 1e-4, "{} vs {want}", one.0[(o, j)]);
}
