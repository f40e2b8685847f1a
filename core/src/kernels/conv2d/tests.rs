//! The convolution kernels at every level this CPU runs, portable included.

use super::*;
use crate::geometry::Conv2dGeometry;

fn values(len: usize, seed: usize) -> Vec<f32> {
    (0..len).map(|i| (((i * 37 + seed * 11) % 101) as f32 - 50.0) / 17.0).collect()
}

fn assert_near(got: f32, exact: f64, what: &str) {
    assert!((got as f64 - exact).abs() <= 1e-5 * (1.0 + exact.abs()), "{what}: {got} vs {exact}");
}

/// Every row and position count around the vector kernels' blocks (2, 4 or
/// 8 rows; 8 to 24 positions; 3 columns), with and without a starting value,
/// against f64 sums.
#[test]
fn products_match_f64_sums_on_every_block_edge_at_every_level() {
    for isa in crate::kernels::tested_levels("convolution") {
        for (rows, inner, n) in
            [(1, 1, 1), (3, 9, 7), (4, 9, 8), (5, 2, 23), (8, 9, 24), (9, 13, 25), (16, 27, 50)]
        {
            let (a, b, init) = (values(rows * inner, 1), values(inner * n, 2), values(rows, 3));
            for init in [None, Some(&init[..])] {
                let mut out = vec![f32::NAN; rows * n];
                product(isa, &mut out, n, &a, inner, &b, init);
                for (r, p) in (0..rows).flat_map(|r| (0..n).map(move |p| (r, p))) {
                    let start = init.map_or(0.0, |i| i[r] as f64);
                    let exact =
                        (0..inner).fold(start, |s, j| s + a[r * inner + j] as f64 * b[j * n + p] as f64);
                    assert_near(
                        out[r * n + p],
                        exact,
                        &format!("{isa:?} product {rows}×{inner}×{n} at ({r}, {p})"),
                    );
                }
            }
        }
        for (rows, cols, n) in [(1, 1, 1), (3, 2, 7), (4, 3, 8), (5, 4, 9), (8, 9, 23), (9, 7, 676)] {
            let (a, b) = (values(rows * n, 4), values(cols * n, 5));
            let before = values(rows * cols, 6);
            let mut out = before.clone();
            gram_add(isa, &mut out, n, &a, &b);
            for (r, c) in (0..rows).flat_map(|r| (0..cols).map(move |c| (r, c))) {
                let dot = (0..n).map(|p| a[r * n + p] as f64 * b[c * n + p] as f64).sum::<f64>();
                let what = format!("{isa:?} gram {rows}×{cols}×{n} at ({r}, {c})");
                assert_near(out[r * cols + c], before[r * cols + c] as f64 + dot, &what);
            }
        }
    }
}

/// The vector kernels (AVX2 and AVX-512 alike) add the terms of each output of
/// `product` in order with fused multiply-adds: the same bits at either level.
#[test]
fn the_vector_products_are_the_same_ordered_fused_sum() {
    let (rows, inner, n) = (9, 11, 29);
    let (a, b, init) = (values(rows * inner, 7), values(inner * n, 8), values(rows, 9));
    for isa in crate::kernels::tested_levels("convolution").into_iter().filter(|&isa| isa > Isa::Portable) {
        let mut out = vec![0.0f32; rows * n];
        product(isa, &mut out, n, &a, inner, &b, Some(&init));
        for (r, p) in (0..rows).flat_map(|r| (0..n).map(move |p| (r, p))) {
            let fused = (0..inner).fold(init[r], |s, j| a[r * inner + j].mul_add(b[j * n + p], s));
            assert_eq!(out[r * n + p].to_bits(), fused.to_bits(), "{isa:?} at ({r}, {p})");
        }
    }
}

#[test]
fn the_direct_kernels_exist_at_avx512_for_stride_1_along_the_width_only() {
    let g = Conv2dGeometry::symmetric(2, 9, 13, 11, [3, 3], [2, 1], [1, 1], [1, 1]);
    let strided = Conv2dGeometry::symmetric(2, 9, 13, 11, [3, 3], [1, 2], [1, 1], [1, 1]);
    assert!(Direct::new(Isa::Portable, &g).is_none() && Direct::new(Isa::Avx2, &g).is_none());
    assert_eq!(Direct::new(Isa::Avx512, &g).is_some(), Isa::Avx512.supported());
    assert!(Direct::new(Isa::Avx512, &strided).is_none());
}

/// The input of `g` at `(c, ih, iw)` (padded positions read as zero).
fn input_at(g: &Conv2dGeometry, x: &[f32], c: usize, ih: isize, iw: isize) -> f64 {
    let inside = (0..g.height as isize).contains(&ih) && (0..g.width as isize).contains(&iw);
    if inside {
        x[(c * g.height + ih as usize) * g.width + iw as usize] as f64
    } else {
        0.0
    }
}

/// Every (output channel, position, tap) with the input under the tap.
fn taps(g: &Conv2dGeometry, x: &[f32]) -> Vec<(usize, usize, usize, f64)> {
    let (ohw, [kh, kw]) = (g.out_height * g.out_width, g.kernel);
    let mut all = Vec::new();
    for (o, p) in (0..g.out_channels).flat_map(|o| (0..ohw).map(move |p| (o, p))) {
        let (oh, ow) = (p / g.out_width, p % g.out_width);
        for k in 0..g.patch() {
            let (c, i, j) = (k / (kh * kw), k / kw % kh, k % kw);
            let ih = (oh * g.stride[0] + i * g.dilation[0]) as isize - g.padding[0] as isize;
            let iw = (ow * g.stride[1] + j * g.dilation[1]) as isize - g.padding[1] as isize;
            all.push((o, p, k, input_at(g, x, c, ih, iw)));
        }
    }
    all
}

/// The direct kernels against the definition, with and without padding and
/// with partial blocks of rows and positions.
#[test]
fn the_direct_kernels_compute_the_convolution() {
    let geometries = [
        Conv2dGeometry::symmetric(2, 9, 13, 11, [4, 5], [1, 1], [0, 0], [1, 1]),
        Conv2dGeometry::symmetric(2, 9, 13, 11, [2, 5], [2, 1], [2, 2], [3, 1]),
    ];
    let mut ran = false;
    for isa in crate::kernels::tested_levels("convolution") {
        for g in &geometries {
            let Some(direct) = Direct::new(isa, g) else { continue };
            ran = true;
            let (ohw, patch, cout) = (g.out_height * g.out_width, g.patch(), g.out_channels);
            let (x, w, bias) = (values(g.in_features(), 1), values(cout * patch, 2), values(cout, 3));
            let dy = values(cout * ohw, 4);
            let mut scratch = vec![f32::NAN; direct.scratch_len()];
            let mut y = vec![f32::NAN; cout * ohw];
            direct.forward(&w, Some(&bias), &x, &mut scratch, &mut y);
            let (mut dw, mut db) = (vec![0.0; cout * patch], vec![0.0; cout]);
            direct.weight_grad(&x, &dy, &mut dw, Some(&mut db), &mut scratch);
            let mut exact = bias.iter().flat_map(|&b| vec![b as f64; ohw]).collect::<Vec<_>>();
            let mut exact_dw = vec![0.0; cout * patch];
            for (o, p, k, v) in taps(g, &x) {
                exact[o * ohw + p] += w[o * patch + k] as f64 * v;
                exact_dw[o * patch + k] += dy[o * ohw + p] as f64 * v;
            }
            for (i, (&got, &e)) in y.iter().zip(&exact).enumerate() {
                assert_near(got, e, &format!("{isa:?} direct forward {g:?} at {i}"));
            }
            for (i, (&got, &e)) in dw.iter().zip(&exact_dw).enumerate() {
                assert_near(got, e, &format!("{isa:?} direct weight gradient {g:?} at {i}"));
            }
            for (o, &got) in db.iter().enumerate() {
                let e = dy[o * ohw..(o + 1) * ohw].iter().map(|&v| v as f64).sum::<f64>();
                assert_near(got, e, &format!("{isa:?} direct bias gradient {g:?} at {o}"));
            }
        }
    }
    if !ran {
        eprintln!("note: no level of this CPU has the direct convolution kernels (AVX-512): not run here");
    }
}
