//! The pooling kernels at every level this CPU runs, portable included: every
//! level must give the bits of the portable f64 loops, alone or fused with the ReLU.

use super::*;

/// Values with ties, zeros of both signs, negatives, NaN and infinities, all exact in f32.
fn awkward(len: usize, seed: usize) -> Vec<f32> {
    (0..len)
        .map(|i| match (i * 31 + seed * 17) % 23 {
            0 => f32::NAN,
            1 => f32::INFINITY,
            2 => f32::NEG_INFINITY,
            3 => -0.0,
            4 | 5 => 0.0,
            6..=8 => 1.5,
            k => (k as f32 - 12.0) * 0.25,
        })
        .collect()
}

/// Bits to compare, NaN as one value (its sign and payload are not specified).
fn bits<T: crate::float::Float>(v: &[T]) -> Vec<u64> {
    v.iter().map(|x| if x.as_f64().is_nan() { u64::MAX } else { x.as_f64().to_bits() }).collect()
}

/// (plane width, rows, windows per row): vectors of 16 with masked tails, blocks
/// of 8 that overlap, rows of fewer than 8 windows, and planes the windows do not tile.
const PLANES: [(usize, usize, usize); 5] = [(40, 6, 20), (34, 4, 17), (10, 4, 5), (19, 5, 9), (35, 5, 17)];

/// One plane's forward and backward at `isa`, with or without the ReLU: (relu
/// output, pooled, arg-max, input gradient, gradient through the ReLU).
fn run(isa: Isa, (w, h, out_w): (usize, usize, usize), relu: bool, seed: usize) -> [Vec<u64>; 5] {
    let x = awkward(w * h, seed);
    let tiles = w == 2 * out_w && h % 2 == 0;
    let out = (h / 2) * out_w;
    let (mut y, mut arg, mut r) = (vec![f32::NAN; out], vec![9; out], vec![f32::NAN; w * h]);
    max_pool_2x2(isa, &x, w, &mut y, out_w, Some(&mut arg), relu.then_some(&mut r[..]));
    let dy: Vec<f32> = (0..out).map(|i| ((i * 7 + seed) % 11) as f32 - 5.0).collect();
    let (mut dxp, mut dx) = (vec![f32::NAN; w * h], vec![f32::NAN; w * h]);
    if tiles {
        let through = relu.then_some((&y[..], &mut dx[..]));
        max_pool_2x2_backward(isa, &mut dxp, w, &dy, &arg, out_w, through);
    }
    [bits(&r), bits(&y), arg.iter().map(|&a| a as u64).collect(), bits(&dxp), bits(&dx)]
}

/// [`run`] in f64 through the portable loops.
fn run_f64((w, h, out_w): (usize, usize, usize), relu: bool, seed: usize) -> [Vec<u64>; 5] {
    let x: Vec<f64> = awkward(w * h, seed).iter().map(|&v| v as f64).collect();
    let tiles = w == 2 * out_w && h % 2 == 0;
    let out = (h / 2) * out_w;
    let (mut y, mut arg, mut r) = (vec![f64::NAN; out], vec![9; out], vec![f64::NAN; w * h]);
    portable::max_pool_2x2(&x, w, &mut y, out_w, Some(&mut arg), relu.then_some(&mut r[..]));
    let dy: Vec<f64> = (0..out).map(|i| ((i * 7 + seed) % 11) as f64 - 5.0).collect();
    let (mut dxp, mut dx) = (vec![f64::NAN; w * h], vec![f64::NAN; w * h]);
    if tiles {
        let through = relu.then_some((&y[..], &mut dx[..]));
        portable::max_pool_2x2_backward(&mut dxp, w, &dy, &arg, out_w, through);
    }
    [bits(&r), bits(&y), arg.iter().map(|&a| a as u64).collect(), bits(&dxp), bits(&dx)]
}

#[test]
fn every_level_gives_the_bits_of_the_portable_f64_loops() {
    for isa in crate::kernels::tested_levels("pooling") {
        for (k, &plane) in PLANES.iter().enumerate() {
            let tiles = plane.0 == 2 * plane.2 && plane.1 % 2 == 0;
            for relu in [false, tiles] {
                let (got, want) = (run(isa, plane, relu, k), run_f64(plane, relu, k));
                for (part, (g, w)) in got.iter().zip(&want).enumerate() {
                    if let Some(i) = (0..g.len()).find(|&i| g[i] != w[i]) {
                        panic!("{isa:?}, plane {plane:?}, relu {relu}: part {part} differs first at {i}");
                    }
                }
            }
        }
    }
}

/// The ReLU fused into the pooling gives what a ReLU and then the pooling give.
#[test]
fn the_fused_relu_equals_a_relu_then_the_pooling_at_every_level() {
    for isa in crate::kernels::tested_levels("pooling") {
        for (k, &(w, h, out_w)) in PLANES.iter().enumerate().filter(|(_, p)| p.0 == 2 * p.2 && p.1 % 2 == 0) {
            let x = awkward(w * h, k);
            let out = (h / 2) * out_w;
            let (mut fused_r, mut fused_y, mut fused_arg) = (vec![0.0; w * h], vec![0.0; out], vec![0; out]);
            max_pool_2x2(isa, &x, w, &mut fused_y, out_w, Some(&mut fused_arg), Some(&mut fused_r));
            let r: Vec<f32> = x.iter().map(|&v| if v < 0.0 { 0.0 } else { v }).collect();
            let (mut y, mut arg) = (vec![0.0; out], vec![0; out]);
            max_pool_2x2(isa, &r, w, &mut y, out_w, Some(&mut arg), None);
            assert_eq!(bits(&fused_r), bits(&r), "{isa:?}, {w} wide: ReLU output");
            assert_eq!((bits(&fused_y), fused_arg), (bits(&y), arg), "{isa:?}, {w} wide: pooled");
        }
    }
}
