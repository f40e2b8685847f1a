//! The product against its definition at every level the CPU runs, and the
//! promises of equal bits: wherever a split between threads falls, a `B` read
//! in place or packed, a narrow last panel or a full one.

use super::balance::{Balance, SHARES};
use super::*;
use crate::kernels::tested_levels;
use crate::tensor::threads::thread_count_lock;
use std::sync::atomic::AtomicU32;

/// The definition, in f64.
#[allow(clippy::too_many_arguments)]
fn naive(
    m: usize,
    k: usize,
    n: usize,
    a: &[f32],
    (rsa, csa): (usize, usize),
    b: &[f32],
    (rsb, csb): (usize, usize),
) -> Vec<f64> {
    let mut c = vec![0.0; m * n];
    for i in 0..m {
        for j in 0..n {
            c[i + j * m] = (0..k).map(|p| a[i * rsa + p * csa] as f64 * b[p * rsb + j * csb] as f64).sum();
        }
    }
    c
}

/// The number of elements a `rows×cols` matrix with strides `(rs, cs)` spans.
fn span(rows: usize, cols: usize, (rs, cs): (usize, usize)) -> usize {
    if rows == 0 || cols == 0 {
        0
    } else {
        (rows - 1) * rs + (cols - 1) * cs + 1
    }
}

/// [`sgemm_with`] over slices: `C = alpha·A·B + beta·C` with the given
/// strides, asserting that each slice holds its matrix.
#[allow(clippy::too_many_arguments)]
fn product_at(
    isa: Isa,
    (m, k, n): (usize, usize, usize),
    alpha: f32,
    (a, sa): (&[f32], (usize, usize)),
    (b, sb): (&[f32], (usize, usize)),
    beta: f32,
    (c, sc): (&mut [f32], (usize, usize)),
) {
    assert!(span(m, k, sa) <= a.len() && span(k, n, sb) <= b.len() && span(m, n, sc) <= c.len());
    let (a, b, c) = (a.as_ptr(), b.as_ptr(), c.as_mut_ptr());
    let [rsa, csa, rsb, csb, rsc, csc] = [sa.0, sa.1, sb.0, sb.1, sc.0, sc.1].map(|s| s as isize);
    // SAFETY: each slice spans its matrix (asserted above), and `c`, borrowed
    // mutably, aliases neither `a` nor `b`.
    unsafe { sgemm_with(isa, m, k, n, alpha, a, rsa, csa, b, rsb, csb, beta, c, rsc, csc, None) }
}

/// Checks one shape and layout at level `isa` on 1 and 2 threads (the caller
/// holds the thread-count lock): within rounding of the definition, and the
/// same bits on both thread counts.
#[allow(clippy::too_many_arguments)]
fn check(isa: Isa, m: usize, k: usize, n: usize, a_rows: bool, b_rows: bool, alpha: f32, beta: f32) {
    let a: Vec<f32> = (0..m * k).map(|i| ((i * 7 % 13) as f32 - 6.0) * 0.25).collect();
    let b: Vec<f32> = (0..k * n).map(|i| ((i * 5 % 11) as f32 - 5.0) * 0.5).collect();
    let sa = if a_rows { (k, 1) } else { (1, m) };
    let sb = if b_rows { (n, 1) } else { (1, k) };
    let expected = naive(m, k, n, &a, sa, &b, sb);
    let mut by_threads = Vec::new();
    for threads in [1, 2] {
        threads::set_threads(threads);
        // C column-major, with a NaN that beta = 0 must not read.
        let mut c = vec![if beta == 0.0 { f32::NAN } else { 1.0 }; m * n];
        product_at(isa, (m, k, n), alpha, (&a, sa), (&b, sb), beta, (&mut c, (1, m)));
        for (idx, (&got, &want)) in c.iter().zip(&expected).enumerate() {
            let want = alpha as f64 * want + if beta == 0.0 { 0.0 } else { beta as f64 };
            assert!(
                (got as f64 - want).abs() <= 1e-4 * (1.0 + want.abs()),
                "{isa:?} {m}×{k}×{n} (A row-major {a_rows}, B row-major {b_rows}) at {idx}: {got} vs {want}"
            );
        }
        by_threads.push(c);
    }
    threads::set_threads(1);
    assert!(same_bits(&by_threads[0], &by_threads[1]), "{isa:?} {m}×{k}×{n}: 1 thread vs 2");
}

fn same_bits(x: &[f32], y: &[f32]) -> bool {
    x.len() == y.len() && x.iter().zip(y).all(|(x, y)| x.to_bits() == y.to_bits())
}

/// `C = A·B` (column-major A and C, row-major B) at level `isa` on `threads` threads.
fn product(isa: Isa, m: usize, k: usize, n: usize, threads: usize) -> Vec<f32> {
    let a: Vec<f32> = (0..m * k).map(|i| ((i * 7 % 13) as f32 - 6.0) * 0.37).collect();
    let b: Vec<f32> = (0..k * n).map(|i| ((i * 5 % 11) as f32 - 5.0) * 0.29).collect();
    let mut c = vec![0.0; m * n];
    threads::set_threads(threads);
    product_at(isa, (m, k, n), 1.0, (&a, (1, m)), (&b, (n, 1)), 0.0, (&mut c, (1, m)));
    threads::set_threads(1);
    c
}

#[test]
fn where_a_split_falls_never_changes_a_bit() {
    let _lock = thread_count_lock();
    for isa in tested_levels("sgemm") {
        // Rows split, columns split (a gradient-shaped product), few rows with
        // many columns, whose parts alone would have picked another kernel, and
        // a matrix-vector and an outer product (batch 1, split by rows and columns).
        for (m, k, n) in [(256, 784, 128), (784, 128, 256), (16, 16384, 48), (1024, 300, 1), (784, 1, 256)] {
            let whole = product(isa, m, k, n, 1);
            for share in [1, 200, 512, 900, 1023] {
                SHARES.iter().for_each(|s| s.store(share, Relaxed));
                assert!(
                    same_bits(&product(isa, m, k, n, 2), &whole),
                    "{isa:?} {m}×{k}×{n}, share {share}/1024"
                );
            }
        }
    }
}

#[test]
fn the_balance_learns_the_share_that_evens_the_parts_out() {
    let balance = Balance(Box::leak(Box::new(AtomicU32::new(0))));
    assert_eq!(balance.caller_units(9), 4, "unmeasured: the caller takes the smaller half");
    // The other thread is twice as fast: the caller should take a third.
    for _ in 0..40 {
        let first = balance.caller_units(12);
        balance.learn(first, 12, [first as u64 * 200, (12 - first) as u64 * 100]);
    }
    assert_eq!(balance.caller_units(12), 4);
    assert!((balance.0.load(Relaxed) as i32 - 341).abs() <= 8, "{}", balance.0.load(Relaxed));
    // Never less than a quarter, nor a part left empty.
    for _ in 0..40 {
        balance.learn(3, 12, [3_000_000, 9]);
    }
    assert_eq!(balance.caller_units(12), 3);
    assert_eq!(balance.caller_units(2), 1);
    // A part too quick to time teaches nothing.
    let before = balance.0.load(Relaxed);
    balance.learn(3, 12, [0, 100]);
    assert_eq!(balance.0.load(Relaxed), before);
}

#[test]
fn a_b_read_in_place_gives_the_bits_of_a_packed_one() {
    let _lock = thread_count_lock();
    // The same values of B column-major (contiguous columns: the AVX2 and AVX-512
    // kernels read them in place, the portable one packs them) and row-major
    // (always packed), on 1 and 2 threads; n = 128 leaves a last panel narrower
    // than AVX2's 6 columns, n = 13 one narrower than AVX-512's 8.
    for isa in tested_levels("sgemm") {
        for (m, k, n) in [(256, 784, 128), (64, 50, 13), (16, 900, 12)] {
            let a: Vec<f32> = (0..m * k).map(|i| ((i * 7 % 13) as f32 - 6.0) * 0.37).collect();
            let b_cols: Vec<f32> = (0..k * n).map(|i| ((i * 5 % 11) as f32 - 5.0) * 0.29).collect();
            let b_rows: Vec<f32> = (0..k * n).map(|i| b_cols[(i % n) * k + i / n]).collect();
            for threads in [1, 2] {
                threads::set_threads(threads);
                let run = |b: &[f32], sb: (usize, usize), beta: f32| {
                    let mut c = vec![0.5; m * n];
                    product_at(isa, (m, k, n), 1.0, (&a, (1, m)), (b, sb), beta, (&mut c, (1, m)));
                    c
                };
                for beta in [0.0, 1.0] {
                    let (in_place, packed) = (run(&b_cols, (1, k), beta), run(&b_rows, (n, 1), beta));
                    assert!(
                        same_bits(&in_place, &packed),
                        "{isa:?} {m}×{k}×{n}, {threads} threads, beta {beta}"
                    );
                }
            }
            threads::set_threads(1);
        }
    }
}

#[test]
fn a_narrow_last_panel_gives_the_bits_of_a_full_one() {
    // Columns 6 and 7 of an 8-column product are a last panel of two (the
    // AVX2 kernel's narrow tile); of a 12-column product, part of a whole
    // panel. The same bits, with B read in place or packed, and with a
    // row count that leaves one 16-row panel without a partner.
    let (k, n) = (300, 8);
    for isa in tested_levels("sgemm") {
        for m in [64, 80] {
            let a: Vec<f32> = (0..m * k).map(|i| ((i * 7 % 13) as f32 - 6.0) * 0.37).collect();
            let wide: Vec<f32> = (0..k * 12).map(|i| ((i * 5 % 11) as f32 - 5.0) * 0.29).collect();
            for b_rows in [false, true] {
                let run = |cols: usize| {
                    let mut c = vec![0.0; m * cols];
                    let sb = if b_rows { (12, 1) } else { (1, k) };
                    product_at(isa, (m, k, cols), 1.0, (&a, (1, m)), (&wide, sb), 0.0, (&mut c, (1, m)));
                    c
                };
                let (narrow, full) = (run(n), run(12));
                assert!(same_bits(&narrow, &full[..m * n]), "{isa:?} m {m}, B row-major {b_rows}");
            }
        }
    }
}

#[test]
fn matches_the_definition_for_every_shape_path_and_layout() {
    let _lock = thread_count_lock();
    for isa in tested_levels("sgemm") {
        for &(m, k, n) in &[
            (1, 1, 1),
            (3, 5, 1),
            (37, 300, 1),
            (37, 60, 1),
            (16, 16, 1),
            (5, 9, 1),
            (300, 300, 1),
            (1, 40, 9),
            (13, 1, 7),
            (784, 1, 256),
            (16, 4, 32),
            (3, 16, 32),
            (32, 32, 8),
            (20, 7, 9),
            (16, 32, 3),
            (4, 32, 16),
            (31, 32, 30),
            (12, 20, 5),
            (8, 12, 21),
            (24, 9, 7),
            (10, 1352, 64),
            (10, 128, 128),
            (33, 17, 13),
            (70, 600, 45),
            (256, 784, 128),
            (300, 40, 1100),
            (7, 0, 5),
        ] {
            for (ar, br) in [(false, false), (true, false), (false, true), (true, true)] {
                // Scaled products go through a scratch tile; unscaled ones
                // (alpha 1, beta 0 or 1) write whole tiles straight into C.
                for (alpha, beta) in [(2.0, 0.0), (2.0, 0.5), (1.0, 0.0), (1.0, 1.0)] {
                    check(isa, m, k, n, ar, br, alpha, beta);
                }
            }
        }
    }
}

#[test]
fn small_affine_is_the_product_plus_bias_and_its_relu() {
    let mut by_level = Vec::new();
    for isa in tested_levels("small_affine") {
        let mut outputs = Vec::new();
        // Rows in whole blocks of four and not; depths in whole registers, masked tails and both.
        for (m, k) in [(1, 1), (3, 16), (8, 8), (9, 4), (16, 4), (16, 16), (17, 33), (130, 250)] {
            let a: Vec<f32> = (0..m * k).map(|i| ((i * 7 % 13) as f32 - 6.0) * 0.25).collect();
            let x: Vec<f32> = (0..k).map(|i| ((i * 5 % 11) as f32 - 5.0) * 0.5).collect();
            let bias: Vec<f32> = (0..m).map(|i| (i as f32 * 0.7).sin()).collect();
            let product = naive(m, k, 1, &a, (k, 1), &x, (1, k));
            for with_bias in [false, true] {
                let (mut y, mut r) = (vec![f32::NAN; m], vec![f32::NAN; m]);
                let bias = with_bias.then_some(&bias[..]);
                if isa == Isa::Portable {
                    // No kernel at this level: the caller's general path, nothing written.
                    assert!(!small_affine(isa, &a, &x, bias, &mut y, Some(&mut r)));
                    assert!(y.iter().chain(&r).all(|v| v.is_nan()));
                    continue;
                }
                assert!(small_affine(isa, &a, &x, bias, &mut y, Some(&mut r)));
                for i in 0..m {
                    let want = product[i] + bias.map_or(0.0, |b| b[i] as f64);
                    assert!(
                        (y[i] as f64 - want).abs() <= 1e-5 * (1.0 + want.abs()),
                        "{isa:?} {m}×{k} row {i}: {} vs {want}",
                        y[i]
                    );
                    let relu = if y[i] < 0.0 { 0.0 } else { y[i] };
                    assert_eq!(r[i].to_bits(), relu.to_bits(), "{isa:?} {m}×{k} row {i}");
                }
                let mut y2 = vec![0.0; m];
                assert!(small_affine(isa, &a, &x, bias, &mut y2, None));
                assert!(same_bits(&y2, &y), "{isa:?} without the ReLU output, {m}×{k}");
                outputs.extend(y);
            }
        }
        if isa == Isa::Portable {
            continue;
        }
        // A NaN passes the ReLU, as `Relu::value` lets it, in whole blocks and in the last one.
        let (a, x) = ([1.0f32; 9], [1.0f32]);
        let bias = [f32::NAN, -3.0, -2.0, 3.0, f32::NAN, 0.0, 0.5, -1.0, f32::NAN];
        let (mut y, mut r) = ([0.0; 9], [0.0; 9]);
        assert!(small_affine(isa, &a, &x, Some(&bias), &mut y, Some(&mut r)));
        for ((&y, &r), &b) in y.iter().zip(&r).zip(&bias) {
            assert_eq!(y.to_bits(), (1.0 + b).to_bits());
            assert_eq!(r.to_bits(), if y < 0.0 { 0.0f32 } else { y }.to_bits(), "relu({y})");
        }
        assert!(r[0].is_nan() && r[4].is_nan() && r[8].is_nan());
        // Larger layers are split across threads by the general path instead.
        let big = vec![0.0f32; PAR_MIN_MV_MACS];
        assert!(!small_affine(isa, &big, &big[..256], None, &mut [0.0; 256], None));
        by_level.push((isa, outputs));
    }
    // AVX-512 CPUs run AVX2's kernel: the same bits.
    if let [(_, avx2), (_, avx512)] = &by_level[..] {
        assert!(same_bits(avx2, avx512), "small_affine: AVX2 and AVX-512 differ");
    }
}

#[test]
fn a_prepacked_a_gives_the_bits_of_one_packed_per_product() {
    let _lock = thread_count_lock();
    // An LSTM's step products (W_hh·h: many rows, a batch of columns; W_hhᵀ·dG:
    // a deep inner dimension over several slices), odd sizes with padded
    // panels, A in both layouts, C accumulated (beta = 1) and overwritten.
    let shapes = [(1024, 256, 32, true), (256, 1024, 32, false), (70, 300, 9, true), (33, 17, 40, false)];
    for isa in tested_levels("sgemm with A packed ahead") {
        for (m, k, n, a_rows) in shapes {
            let a: Vec<f32> = (0..m * k).map(|i| ((i * 7 % 13) as f32 - 6.0) * 0.25).collect();
            let b: Vec<f32> = (0..k * n).map(|i| ((i * 5 % 11) as f32 - 5.0) * 0.5).collect();
            let (rsa, csa) = if a_rows { (k as isize, 1) } else { (1, m as isize) };
            let mut packed = PackedA::default();
            // SAFETY: `a` holds the m×k matrix with these strides; the CPU has `isa`.
            unsafe { packed.pack(isa, m, k, a.as_ptr(), rsa, csa) };
            let pre = packed.panels(isa, m, k);
            assert!(pre.is_some());
            for (threads, beta) in [(1, 0.0), (2, 0.0), (1, 1.0), (2, 1.0)] {
                threads::set_threads(threads);
                let mut c = [vec![0.5f32; m * n], vec![0.5f32; m * n]];
                for (c, pre) in c.iter_mut().zip([None, pre]) {
                    let (bp, cp) = (b.as_ptr(), c.as_mut_ptr());
                    let mi = m as isize;
                    // SAFETY: each slice holds its matrix (A as packed, B column-major k×n,
                    // C column-major m×n), and C aliases neither; `pre` is `a` packed at `isa`.
                    unsafe {
                        entry(
                            isa,
                            pre,
                            m,
                            k,
                            n,
                            1.0,
                            a.as_ptr(),
                            rsa,
                            csa,
                            bp,
                            1,
                            k as isize,
                            beta,
                            cp,
                            1,
                            mi,
                            None,
                        )
                    };
                }
                assert!(same_bits(&c[0], &c[1]), "{isa:?} {m}×{k}×{n}, {threads} threads, beta {beta}");
            }
            threads::set_threads(1);
            // Packed for another shape or level: ignored.
            assert!(packed.panels(isa, m + 1, k).is_none());
        }
    }
}
