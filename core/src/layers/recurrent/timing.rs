//! Timings of the speed case of issue 19 (`lstm(256)` over 64 steps of 64
//! features, batch 32, f32, one thread), ignored by default:
//! `cargo test -p staticnet-core --lib recurrent::timing -- --ignored --nocapture --test-threads=1`.
//! They print the CPU time of the thread per pass (the machine may be shared, so
//! wall time says little) and, for each product of a pass, its GFLOP/s in the
//! best of several runs.

use super::*;
use crate::init::{seeded_rng, Init};
use crate::layers::Layer;
use crate::params::Params;
use crate::tensor::{Batch, MatRef};

/// The CPU time of this thread, in seconds (the scheduler's count: a few
/// milliseconds coarse, so only for whole passes).
fn cpu() -> f64 {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").unwrap_or_default();
    s.split(' ').next().and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0) * 1e-9
}

/// Seconds since the first call: wall time, for the best of many runs.
fn now() -> f64 {
    static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    START.get_or_init(std::time::Instant::now).elapsed().as_secs_f64()
}

/// A training pass and its backward pass.
#[test]
#[ignore = "a timing, not a test"]
fn timing() {
    use std::time::Instant;
    const T: usize = 64;
    let _threads = crate::tensor::threads::thread_count_lock();
    crate::tensor::set_threads(1);
    let mut l = Lstm::<f32, T, 64, 256>::new(Init::Auto, &mut seeded_rng(1));
    let x = Batch::<f32, { T * 64 }>::from_fn(32, |i, j| ((i * 7 + j) as f32 * 0.1).sin());
    let dy = Batch::<f32, { T * 256 }>::from_fn(32, |i, j| ((i + j) as f32 * 0.3).cos() * 0.01);
    let (mut ws, mut y, mut dx, mut g) =
        (LstmWorkspace::default(), Batch::zeros(0), Batch::zeros(0), l.zero_gradients());
    for round in 0..6 {
        let (start, wall) = (cpu(), Instant::now());
        l.forward_train(&x, &mut y, &mut ws);
        let fwd = cpu() - start;
        l.backward(&x, &y, &dy, &mut ws, &mut g, Some(&mut dx));
        let all = cpu() - start;
        let wall = wall.elapsed();
        println!(
            "round {round}: forward {:.1} ms, with backward {:.1} ms CPU ({wall:?} wall)",
            fwd * 1e3,
            all * 1e3
        );
    }
}

/// The products of [`timing`] one by one: GFLOP/s of each shape (best wall time of several runs).
#[test]
#[ignore = "a timing, not a test"]
fn product_timing() {
    let _threads = crate::tensor::threads::thread_count_lock();
    crate::tensor::set_threads(1);
    let (t, f, h, b) = (64, 64, 256, 32);
    let n = t * b;
    let buf = |len: usize| (0..len).map(|i| ((i % 97) as f32) * 0.01).collect::<Vec<f32>>();
    let (w_ih, w_hh, x, g, hs) = (buf(4 * h * f), buf(4 * h * h), buf(f * n), buf(4 * h * n), buf(h * n));
    let mut out = buf(4 * h * n);
    let mut time = |what: &str, flops: f64, reps: usize, run: &mut dyn FnMut(&mut [f32])| {
        run(&mut out);
        let mut secs = f64::INFINITY;
        for _ in 0..reps * 5 {
            let start = now();
            run(&mut out);
            secs = secs.min(now() - start);
        }
        println!("{what}: {:.2} ms, {:.1} GFLOP/s", secs * 1e3, flops / secs * 1e-9);
    };
    let (w_ih_t, w_hh_t) = (transposed(&w_ih, 4 * h, f), transposed(&w_hh, 4 * h, h));
    time("forward W_ih·X", 2.0 * (4 * h * f * n) as f64, 5, &mut |o| {
        product(
            MatRef::of(&w_ih_t).t(),
            MatRef::of(&view(&x, f, n, f)),
            0.0,
            &mut view_mut(o, 4 * h, n, 4 * h),
        )
    });
    time("forward 64 × W_hh·h", 2.0 * (4 * h * h * n) as f64, 3, &mut |o| {
        for s in 1..t {
            let hp = step(&hs, h, t, b, s);
            product(MatRef::of(&w_hh_t).t(), MatRef::of(&hp), 1.0, &mut step_mut(o, 4 * h, t, b, s));
        }
    });
    let mut packed = crate::kernels::sgemm::PackedA::default();
    crate::tensor::pack_a(&mut packed, MatRef::of(&w_hh_t).t());
    time("forward 64 × W_hh·h, W_hh packed ahead", 2.0 * (4 * h * h * n) as f64, 3, &mut |o| {
        for s in 1..t {
            let hp = step(&hs, h, t, b, s);
            let mut g_t = step_mut(o, 4 * h, t, b, s);
            crate::tensor::gemm_packed_a(&packed, MatRef::of(&w_hh_t).t(), MatRef::of(&hp), 1.0, &mut g_t);
        }
    });
    let mut packed_t = crate::kernels::sgemm::PackedA::default();
    crate::tensor::pack_a(&mut packed_t, MatRef::of(&w_hh_t));
    time("backward 64 × W_hhᵀ·dG, W_hhᵀ packed ahead", 2.0 * (4 * h * h * n) as f64, 3, &mut |o| {
        for s in 1..t {
            let dg = step(&g, 4 * h, t, b, s);
            let mut dh = view_mut(&mut o[..h * b], h, b, h);
            crate::tensor::gemm_packed_a(&packed_t, MatRef::of(&w_hh_t), MatRef::of(&dg), 0.0, &mut dh);
        }
    });
    time("backward 64 × W_hhᵀ·dG", 2.0 * (4 * h * h * n) as f64, 3, &mut |o| {
        for s in 1..t {
            let dg = step(&g, 4 * h, t, b, s);
            product(MatRef::of(&w_hh_t), MatRef::of(&dg), 0.0, &mut view_mut(&mut o[..h * b], h, b, h));
        }
    });
    let dg = view(&g, 4 * h, n, 4 * h);
    time("dW_ih = X·dGᵀ", 2.0 * (4 * h * f * n) as f64, 5, &mut |o| {
        product(
            MatRef::of(&view(&x, f, n, f)),
            MatRef::of(&dg).t(),
            0.0,
            &mut view_mut(&mut o[..f * 4 * h], f, 4 * h, f),
        )
    });
    time("dW_hh = H·dGᵀ", 2.0 * (4 * h * h * n) as f64, 3, &mut |o| {
        product(
            MatRef::of(&view(&hs, h, n, h)),
            MatRef::of(&dg).t(),
            0.0,
            &mut view_mut(&mut o[..h * 4 * h], h, 4 * h, h),
        )
    });
    time("dW_hhᵀ = dG·Hᵀ (the other orientation)", 2.0 * (4 * h * h * n) as f64, 3, &mut |o| {
        product(
            MatRef::of(&dg),
            MatRef::of(&view(&hs, h, n, h)).t(),
            0.0,
            &mut view_mut(&mut o[..h * 4 * h], 4 * h, h, 4 * h),
        )
    });
    time("dX = W_ihᵀ·dG", 2.0 * (4 * h * f * n) as f64, 5, &mut |o| {
        product(MatRef::of(&w_ih_t), MatRef::of(&dg), 0.0, &mut view_mut(&mut o[..f * n], f, n, f))
    });
}
