//! The poolings over steps against hand-checked values, finite differences and f32.

use super::*;
use crate::gradcheck::assert_close;
use crate::layers::seq_check::{check_input, wavy};

/// Two samples of 5 steps of 2 features: feature 0 counts up, feature 1 down
/// with a tie in steps 1 and 2.
#[rustfmt::skip]
fn sequence() -> Batch<f64, 10> {
    Batch::from_column_slice(&[
        1.0, 9.0,   2.0, 8.0,   3.0, 8.0,   4.0, 7.0,   5.0, 6.0,
        -1.0, 0.0,  -2.0, 0.5,  0.0, 0.5,  -4.0, 0.0,  -5.0, 1.0,
    ])
}

#[test]
fn max_pool_on_hand_checked_values_routes_to_the_first_maximum() {
    // Windows of 2 steps, stride 2: steps (0, 1) and (2, 3); step 4 unused.
    let mut pool = MaxPool1d::<5, 2, 2>::new(2, 2).unwrap();
    let x = sequence();
    let (mut y, mut ws) = (Batch::<f64, 4>::zeros(0), MaxPool1dWorkspace::default());
    pool.forward_train(&x, &mut y, &mut ws);
    assert_eq!(y.as_slice(), &[2.0, 9.0, 4.0, 8.0, -1.0, 0.5, 0.0, 0.5]);
    let dy = Batch::<f64, 4>::from_column_slice(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]);
    let mut dx = Batch::from_element(2, f64::NAN);
    pool.backward(&x, &y, &dy, &mut ws, &mut (), Some(&mut dx));
    #[rustfmt::skip]
    assert_eq!(dx.as_slice(), &[
        0.0, 2.0,  1.0, 0.0,  0.0, 4.0,  3.0, 0.0,  0.0, 0.0,
        5.0, 0.0,  0.0, 6.0,  7.0, 8.0,  0.0, 0.0,  0.0, 0.0,
    ]);
    // Overlapping windows of 3, stride 1: the gradients of windows sharing a
    // maximum add up, and a tie goes to the first step (sample 1, feature 1:
    // 0.5 at steps 1 and 2, in windows (0, 1, 2) and (1, 2, 3)).
    let mut pool = MaxPool1d::<5, 2, 3>::new(3, 1).unwrap();
    let (mut y, mut ws) = (Batch::<f64, 6>::zeros(0), MaxPool1dWorkspace::default());
    pool.forward_train(&x, &mut y, &mut ws);
    assert_eq!(y.as_slice(), &[3.0, 9.0, 4.0, 8.0, 5.0, 8.0, 0.0, 0.5, 0.0, 0.5, 0.0, 1.0]);
    let dy = Batch::<f64, 6>::from_element(2, 1.0);
    pool.backward(&x, &y, &dy, &mut ws, &mut (), Some(&mut dx));
    #[rustfmt::skip]
    assert_eq!(dx.as_slice(), &[
        0.0, 1.0,  0.0, 1.0,  1.0, 1.0,  1.0, 0.0,  1.0, 0.0,
        0.0, 0.0,  0.0, 2.0,  3.0, 0.0,  0.0, 0.0,  0.0, 1.0,
    ]);
}

#[test]
fn max_pool_propagates_nan() {
    let pool = MaxPool1d::<3, 1, 1>::new(3, 1).unwrap();
    let mut y = Batch::<f64, 1>::zeros(0);
    Layer::forward(&pool, &Batch::<f64, 3>::from_column_slice(&[1.0, f64::NAN, 5.0]), &mut y);
    assert!(y[0].is_nan());
}

#[test]
fn average_pools_divide_by_the_window() {
    let pool = AvgPool1d::<5, 2, 2>::new(3, 2).unwrap(); // steps (0, 1, 2) and (2, 3, 4)
    let mut y = Batch::<f64, 4>::zeros(0);
    Layer::forward(&pool, &sequence(), &mut y);
    assert_close(y.as_slice(), &[2.0, 25.0 / 3.0, 4.0, 7.0, -1.0, 1.0 / 3.0, -3.0, 0.5], 1e-15, "avg pool");
    let global = GlobalAvgPool1d::<5, 2>::new();
    let mut y = Batch::<f64, 2>::zeros(0);
    Layer::forward(&global, &sequence(), &mut y);
    assert_close(y.as_slice(), &[3.0, 7.6, -2.4, 0.4], 1e-15, "global avg pool");
}

#[test]
fn gradients_match_finite_differences() {
    let x = wavy::<14>(3, 1); // 7 steps of 2 features
    check_input::<_, 14, 6>(&mut MaxPool1d::<7, 2, 3>::new(2, 2).unwrap(), &x, &mut (), "max pool");
    check_input::<_, 14, 10>(
        &mut MaxPool1d::<7, 2, 5>::new(3, 1).unwrap(),
        &x,
        &mut (),
        "overlapping max pool",
    );
    check_input::<_, 14, 4>(&mut AvgPool1d::<7, 2, 2>::new(3, 3).unwrap(), &x, &mut (), "avg pool");
    check_input::<_, 14, 10>(
        &mut AvgPool1d::<7, 2, 5>::new(3, 1).unwrap(),
        &x,
        &mut (),
        "overlapping avg pool",
    );
    check_input::<_, 14, 2>(&mut GlobalAvgPool1d::<7, 2>::new(), &x, &mut (), "global avg pool");
}

#[test]
fn f32_agrees_with_f64() {
    let x = wavy::<14>(2, 3);
    let x32 = x.map(|v| v as f32);
    let max = MaxPool1d::<7, 2, 3>::new(2, 2).unwrap();
    let (mut y64, mut y32) = (Batch::<f64, 6>::zeros(0), Batch::<f32, 6>::zeros(0));
    Layer::forward(&max, &x, &mut y64);
    Layer::forward(&max, &x32, &mut y32);
    assert_close(y32.as_slice(), y64.as_slice(), 1e-7, "f32 max pool");
    let avg = AvgPool1d::<7, 2, 3>::new(2, 2).unwrap();
    Layer::forward(&avg, &x, &mut y64);
    Layer::forward(&avg, &x32, &mut y32);
    assert_close(y32.as_slice(), y64.as_slice(), 1e-6, "f32 avg pool");
}

#[test]
fn impossible_windows_are_errors() {
    let message = |r: Result<MaxPool1d<4, 2, 2>>| r.unwrap_err().to_string();
    assert!(message(MaxPool1d::new(2, 0)).contains("at least 1"));
    assert!(message(MaxPool1d::new(0, 1)).contains("at least 1"));
    assert!(message(MaxPool1d::new(5, 1)).contains("longer than the 4 steps"));
    let wrong = message(MaxPool1d::new(2, 1));
    assert!(wrong.contains("gives 3 steps, not 2") && wrong.contains("MaxPool1d<4, 2, 2>"), "{wrong}");
    assert!(AvgPool1d::<4, 2, 2>::new(3, 1).is_ok());
    assert!(AvgPool1d::<4, 2, 2>::new(3, 2).is_err());
    assert!(AvgPool1d::<4, 0, 2>::new(2, 2).is_err());
    let pool = AvgPool1d::<4, 2, 2>::new(3, 1).unwrap();
    assert_eq!((pool.kernel(), pool.stride()), (3, 1));
}

#[test]
fn const_construction_agrees_with_new() {
    const MAX: MaxPool1d<7, 2, 3> = MaxPool1d::with_window(2, 2);
    const AVG: AvgPool1d<7, 2, 5> = AvgPool1d::with_window(3, 1);
    assert_eq!((MAX, AVG), (MaxPool1d::new(2, 2).unwrap(), AvgPool1d::new(3, 1).unwrap()));
}

#[test]
#[should_panic(expected = "do not give OSTEPS steps")]
fn const_construction_refuses_sizes_that_disagree() {
    std::hint::black_box(MaxPool1d::<7, 2, 4>::with_window(2, 2));
}

#[test]
#[should_panic(expected = "training pass on the same batch")]
fn max_pool_backward_refuses_a_workspace_of_another_batch() {
    let mut pool = MaxPool1d::<7, 2, 3>::new(2, 2).unwrap();
    let (mut y, mut ws) = (Batch::<f64, 6>::zeros(0), MaxPool1dWorkspace::default());
    pool.forward_train(&wavy::<14>(2, 1), &mut y, &mut ws);
    let mut dx = Batch::<f64, 14>::zeros(0);
    pool.backward(&wavy::<14>(3, 1), &wavy::<6>(3, 1), &wavy::<6>(3, 1), &mut ws, &mut (), Some(&mut dx));
}
