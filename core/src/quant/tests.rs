//! Quantization: scales and their round trip, per-layer error bounds, and the
//! layers' compact passes against the same layers holding the dequantized weights.

use super::*;
use crate::init::{seeded_rng, Init};
use crate::layers::{Conv2d, Conv2dGeometry, Dense};
use crate::tensor::Batch;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn weights(rows: usize, cols: usize, seed: u64) -> Vec<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    // Rows of very different magnitudes: per-row scales matter.
    (0..rows * cols).map(|k| rng.random_range(-1.0..1.0) * (1.0 + (k / cols) as f32).powi(2)).collect()
}

#[test]
fn int8_scales_map_each_rows_largest_magnitude_to_127() {
    let w = weights(7, 50, 1);
    let c = Compact::int8(&w, 7);
    let (q, scales) = c.int8_parts().unwrap();
    for ((row, q), &s) in w.chunks(50).zip(q.chunks(50)).zip(scales) {
        let max = row.iter().fold(0f32, |m, v| m.max(v.abs()));
        assert_eq!(s, max / 127.0);
        assert_eq!(q.iter().map(|q| q.unsigned_abs()).max(), Some(127));
        // Every weight within half a step of its dequantized value.
        for (&w, &q) in row.iter().zip(q) {
            assert!((w - s * f32::from(q)).abs() <= 0.5 * s * (1.0 + 1e-5), "{w} vs {q}·{s}");
        }
    }
    assert_eq!(c.bytes(), 7 * 50 + 7 * 4);
}

#[test]
fn quantizing_the_dequantized_weight_gives_the_same_values_and_scales() {
    for seed in 0..20 {
        let w = weights(16, 33, seed);
        let c = Compact::int8(&w, 16);
        let again = Compact::int8(&c.dequantized(), 16);
        let ((q1, s1), (q2, s2)) = (c.int8_parts().unwrap(), again.int8_parts().unwrap());
        assert_eq!(q1, q2);
        for (a, b) in s1.iter().zip(s2) {
            assert!((a - b).abs() <= f32::EPSILON * a, "{a} vs {b}");
        }
        let b = Compact::bf16(&w, 16);
        assert_eq!(Compact::bf16(&b.dequantized(), 16).dequantized(), b.dequantized());
    }
}

#[test]
fn zero_rows_and_non_finite_weights() {
    let mut w = vec![0.0f32; 3 * 4];
    w[5] = 2.0;
    w[9] = f32::NAN;
    let c = Compact::int8(&w, 3);
    let (q, s) = c.int8_parts().unwrap();
    assert_eq!((s[0], &q[..4]), (0.0, &[0i8; 4][..]), "an all-zero row stays zero");
    assert_eq!(q[5], 127);
    assert!(s[2].is_nan(), "a NaN weight is not hidden: its row's scale is NaN");
    let mut y = [0.0f32; 3];
    c.gemv(&[1.0; 4], None, &mut y);
    assert!(y[0] == 0.0 && y[1] == 2.0 && y[2].is_nan(), "{y:?}");
}

/// `net` with its dense and conv2d weights replaced by their dequantized values:
/// writing a compact weight turns it back into a full matrix (`Weight`).
fn dequantized_copy<N: Params<f32> + Clone>(q: &Quantized<N>) -> N {
    let mut net = q.network().clone();
    net.visit_params_mut(&ParamPath::ROOT, &mut |_| {});
    let mut compact = 0;
    net.visit_compact(&ParamPath::ROOT, &mut |s| compact += usize::from(s.compact().is_some()));
    assert_eq!(compact, 0, "every weight is a full matrix again");
    net
}

#[test]
fn a_compact_weight_reads_as_its_dequantized_values_and_frees_the_matrix() {
    let mut rng = seeded_rng(6);
    let mut layer = Dense::<f32, 40, 9>::new(true, Init::Auto, &mut rng);
    assert_eq!((layer.weight.compact().is_none(), layer.weight.bytes()), (true, 4 * 40 * 9));
    let compact = Compact::int8(layer.weight.as_slice(), 9);
    let values = compact.dequantized();
    layer.weight.set_compact(compact);
    assert_eq!(layer.weight.bytes(), 40 * 9 + 4 * 9, "only the int8 values and scales");
    let copy = layer.clone();
    assert_eq!(layer.weight.as_slice(), &values[..], "read as the dequantized matrix");
    assert_eq!(layer.weight.bytes(), 40 * 9 + 4 * 9 + 4 * 40 * 9, "…widened once, kept beside it");
    assert_eq!(copy.weight.bytes(), 40 * 9 + 4 * 9, "a clone holds no widened copy");
    layer.weight[(3, 2)] = 5.0;
    assert!(layer.weight.compact().is_none(), "written: a full matrix again");
    assert_eq!(layer.weight.bytes(), 4 * 40 * 9);
    assert_eq!(layer.weight_at(2, 3), 5.0);
    assert_eq!(layer.weight_at(2, 4), values[2 * 40 + 4]);
}

#[test]
fn a_compact_dense_layer_computes_what_its_dequantized_weight_does() {
    let mut rng = seeded_rng(3);
    let layer = Dense::<f32, 37, 21>::new(true, Init::Auto, &mut rng);
    for q in [layer.quantized::<Int8>(), layer.quantized::<Bf16>()] {
        let plain = dequantized_copy(&q);
        for n in [1, 3, 4, 64] {
            let x = Batch::<f32, 37>::from_fn(n, |i, j| ((i * 7 + j * 3) as f32).sin());
            let (mut a, mut b) = (Batch::zeros(n), Batch::zeros(n));
            q.network().forward(&x, &mut a);
            plain.forward(&x, &mut b);
            // The int8 GEMV's input in 16-bit fixed point (kernels::quant) errs by up to 2⁻¹⁵ of max |x| per product.
            assert!((&a - &b).amax() < 2e-4 * b.amax().max(1.0), "batch {n}: {}", (&a - &b).amax());
            // …and the fused ReLU pass too.
            let mut r = Batch::zeros(n);
            q.network().forward_relu(&x, &mut a, &mut r);
            assert_eq!(r, a.map(|v| v.max(0.0)));
        }
        assert_eq!(q.layers().len(), 1);
        assert_eq!(q.layers()[0].name, "weight");
    }
}

#[test]
fn a_compact_conv_layer_computes_what_its_dequantized_weight_does() {
    let mut rng = seeded_rng(4);
    let g = Conv2dGeometry::symmetric(3, 9, 9, 5, [3, 3], [1, 1], [1, 1], [1, 1]);
    let layer = Conv2d::<f32, 243, 405, 27, 5>::new(g, true, Init::Auto, &mut rng).unwrap();
    let q = layer.quantized::<Int8>();
    let plain = dequantized_copy(&q);
    let x = Batch::<f32, 243>::from_fn(3, |i, j| ((i * 5 + j * 11) as f32).cos());
    let conv = |l: &Conv2d<f32, 243, 405, 27, 5>| {
        let mut y = Batch::zeros(3);
        l.forward(&x, &mut y);
        y
    };
    let (a, b) = (conv(q.network()), conv(&plain));
    assert!((&a - &b).amax() < 1e-5 * b.amax(), "{}", (&a - &b).amax());
    let exact = conv(&layer);
    let error = (&a - &exact).norm() / exact.norm();
    assert!(error > 0.0 && error < 0.01, "int8 relative error {error}");
}

#[test]
fn relative_errors_per_layer_are_within_the_formats_bounds() {
    let mut rng = seeded_rng(5);
    let layer = Dense::<f32, 300, 40>::new(true, Init::Auto, &mut rng);
    let int8 = layer.quantized::<Int8>().layers()[0].relative_error;
    let bf16 = layer.quantized::<Bf16>().layers()[0].relative_error;
    // Uniform weights: int8's rounding error is step/√12 with step = max/127, about 0.4%
    // of the rows' RMS; bfloat16's is below 2⁻⁹ relative per weight.
    assert!(int8 > 1e-3 && int8 < 6e-3, "int8 {int8}");
    assert!(bf16 > 1e-4 && bf16 < 2f64.powi(-9), "bf16 {bf16}");
}
