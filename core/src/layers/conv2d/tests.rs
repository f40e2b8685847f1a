//! The convolution layer against its definition, finite differences and f64.

use super::*;
use crate::gradcheck::{assert_close, numeric_grad};
use crate::init::seeded_rng;
use crate::params::{ParamPath, Params};

/// 1 channel, 3×3 input, one 2×2 filter, stride 1, no padding: 2×2 output.
fn small() -> Conv2d<f64, 9, 4, 4, 1> {
    let g = Conv2dGeometry::symmetric(1, 3, 3, 1, [2, 2], [1, 1], [0, 0], [1, 1]);
    let mut c = Conv2d::<f64, 9, 4, 4, 1>::zeros(g, true).unwrap();
    // PyTorch weight [[[[1, 2], [3, 4]]]], bias [0.5].
    c.weight.as_mut_slice().copy_from_slice(&[1.0, 2.0, 3.0, 4.0]);
    c.bias.as_mut().unwrap()[0] = 0.5;
    c
}

#[test]
fn forward_on_hand_checked_values() {
    let c = small();
    assert_eq!(c.weight_at(0, 0, 1, 0), 3.0);
    // x = [[1, 2, 3], [4, 5, 6], [7, 8, 9]] and its negation.
    let xs: Vec<f64> = (1..=9).map(f64::from).chain((1..=9).map(|v| -f64::from(v))).collect();
    let x = Batch::<f64, 9>::from_column_slice(&xs);
    let mut y = Batch::zeros(0);
    c.forward(&x, &mut y);
    // (0,0): 1+4+12+20 = 37; (0,1): 2+6+15+24 = 47; (1,0): 4+10+21+32 = 67; (1,1): 5+12+24+36 = 77.
    assert_eq!(y.as_slice(), &[37.5, 47.5, 67.5, 77.5, -36.5, -46.5, -66.5, -76.5]);
}

#[test]
fn padding_stride_and_dilation_on_hand_checked_values() {
    // 1 channel 3×3, 2×2 kernel of ones, padding 1, stride 2: 2×2 output of
    // the padded 5×5 image's windows at rows/cols {0, 2}.
    let g = Conv2dGeometry::symmetric(1, 3, 3, 1, [2, 2], [2, 2], [1, 1], [1, 1]);
    assert_eq!((g.out_height, g.out_width), (2, 2));
    let mut c = Conv2d::<f64, 9, 4, 4, 1>::zeros(g, false).unwrap();
    c.weight.fill(1.0);
    let x = Batch::<f64, 9>::from_column_slice(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0]);
    let mut y = Batch::zeros(0);
    c.forward(&x, &mut y);
    // windows: {1}, {2+3}, {4+7}, {5+6+8+9}
    assert_eq!(y.as_slice(), &[1.0, 5.0, 11.0, 28.0]);

    // Dilation 2 on 3×3 with a 2×2 kernel reads the four corners.
    let g = Conv2dGeometry::symmetric(1, 3, 3, 1, [2, 2], [1, 1], [0, 0], [2, 2]);
    assert_eq!((g.out_height, g.out_width), (1, 1));
    let mut c = Conv2d::<f64, 9, 1, 4, 1>::zeros(g, false).unwrap();
    c.weight.as_mut_slice().copy_from_slice(&[1.0, 10.0, 100.0, 1000.0]);
    let mut y = Batch::zeros(0);
    c.forward(&x, &mut y);
    assert_eq!(y.as_slice(), &[1.0 + 30.0 + 700.0 + 9000.0]);
}

/// The definition, loop by loop: `y[o, oh, ow] = b[o] + Σ w[o, c, i, j] · x[c, ih, iw]`.
fn naive<const IN: usize, const OUT: usize, const PATCH: usize, const COUT: usize>(
    c: &Conv2d<f64, IN, OUT, PATCH, COUT>,
    x: &Batch<f64, IN>,
) -> Batch<f64, OUT> {
    let g = c.geometry();
    Batch::from_fn(x.ncols(), |r, b| {
        let (o, p) = (r / (g.out_height * g.out_width), r % (g.out_height * g.out_width));
        let (oh, ow) = (p / g.out_width, p % g.out_width);
        let mut sum = c.bias.as_ref().map_or(0.0, |b| b[o]);
        for ch in 0..g.in_channels {
            for i in 0..g.kernel[0] {
                for j in 0..g.kernel[1] {
                    let ih = (oh * g.stride[0] + i * g.dilation[0]) as isize - g.padding[0] as isize;
                    let iw = (ow * g.stride[1] + j * g.dilation[1]) as isize - g.padding[1] as isize;
                    if (0..g.height as isize).contains(&ih) && (0..g.width as isize).contains(&iw) {
                        let xi = (ch * g.height + ih as usize) * g.width + iw as usize;
                        sum += c.weight_at(o, ch, i, j) * x[(xi, b)];
                    }
                }
            }
        }
        sum
    })
}

fn check_against_naive<const IN: usize, const OUT: usize, const PATCH: usize, const COUT: usize>(
    g: Conv2dGeometry,
    bias: bool,
) {
    let mut c = Conv2d::<f64, IN, OUT, PATCH, COUT>::new(g, bias, Init::He, &mut seeded_rng(11)).unwrap();
    if let Some(b) = &mut c.bias {
        b.iter_mut().enumerate().for_each(|(i, v)| *v = i as f64 - 0.5);
    }
    let x = Batch::<f64, IN>::from_fn(3, |i, j| ((i * 5 + j * 17) as f64 * 0.23).cos());
    let expected = naive(&c, &x);
    for gemm in [false, true] {
        c.gemm = gemm;
        let mut y = Batch::zeros(0);
        c.forward(&x, &mut y);
        assert_close(y.as_slice(), expected.as_slice(), 1e-12, &format!("{g:?}, gemm = {gemm}"));
    }
}

#[test]
fn forward_matches_the_definition() {
    check_against_naive::<{ 2 * 5 * 5 }, { 3 * 3 * 3 }, 18, 3>(
        Conv2dGeometry::symmetric(2, 5, 5, 3, [3, 3], [1, 1], [0, 0], [1, 1]),
        true,
    );
    check_against_naive::<{ 3 * 6 * 7 }, { 2 * 3 * 4 }, 27, 2>(
        Conv2dGeometry::symmetric(3, 6, 7, 2, [3, 3], [2, 2], [1, 1], [1, 1]),
        false,
    );
    check_against_naive::<{ 2 * 9 * 8 }, { 3 * 5 * 7 }, 12, 3>(
        Conv2dGeometry::symmetric(2, 9, 8, 3, [3, 2], [2, 1], [2, 1], [2, 3]),
        true,
    );
    // Padding larger than the dilated kernel reach: whole rows of zeros.
    check_against_naive::<{ 4 * 4 }, { 2 * 5 * 3 }, 4, 2>(
        Conv2dGeometry::symmetric(1, 4, 4, 2, [2, 2], [2, 3], [3, 2], [1, 1]),
        true,
    );
    check_against_naive::<{ 3 * 4 * 5 }, { 2 * 4 * 5 }, 3, 2>(
        Conv2dGeometry::symmetric(3, 4, 5, 2, [1, 1], [1, 1], [0, 0], [1, 1]),
        true,
    );
    // Stride 1 with the input's width: each tap's columns are one shifted
    // copy (`im2col_shifted`), padded left and right, with dilation, with
    // no vertical padding, and with whole padded rows.
    check_against_naive::<{ 2 * 6 * 7 }, { 3 * 6 * 7 }, 18, 3>(
        Conv2dGeometry::symmetric(2, 6, 7, 3, [3, 3], [1, 1], [1, 1], [1, 1]),
        true,
    );
    check_against_naive::<{ 2 * 6 * 7 }, { 3 * 6 * 7 }, 18, 3>(
        Conv2dGeometry::symmetric(2, 6, 7, 3, [3, 3], [1, 1], [2, 2], [2, 2]),
        false,
    );
    check_against_naive::<{ 2 * 6 * 7 }, { 3 * 4 * 7 }, 18, 3>(
        Conv2dGeometry::symmetric(2, 6, 7, 3, [3, 3], [1, 1], [0, 1], [1, 1]),
        true,
    );
    check_against_naive::<{ 6 * 7 }, { 2 * 10 * 7 }, 3, 2>(
        Conv2dGeometry::symmetric(1, 6, 7, 2, [1, 3], [1, 1], [2, 1], [1, 1]),
        true,
    );
    // The input's width but a vertical stride: not one shifted copy.
    check_against_naive::<{ 2 * 6 * 7 }, { 3 * 3 * 7 }, 18, 3>(
        Conv2dGeometry::symmetric(2, 6, 7, 3, [3, 3], [2, 1], [1, 1], [1, 1]),
        true,
    );
    // A 1×1 kernel with stride is not pointwise: it goes through im2col.
    check_against_naive::<{ 2 * 5 * 5 }, { 3 * 3 * 3 }, 2, 3>(
        Conv2dGeometry::symmetric(2, 5, 5, 3, [1, 1], [2, 2], [0, 0], [1, 1]),
        true,
    );
}

#[test]
fn inconsistent_const_generics_are_an_error_at_construction() {
    let g = Conv2dGeometry::symmetric(1, 3, 3, 1, [2, 2], [1, 1], [0, 0], [1, 1]);
    let e = Conv2d::<f64, 9, 9, 4, 1>::zeros(g, true).unwrap_err();
    assert!(matches!(e, Error::InvalidConfig(_)) && e.to_string().contains("disagrees"), "{e}");
    let zero_stride = Conv2dGeometry { stride: [0, 1], ..g };
    let e = Conv2d::<f64, 9, 4, 4, 1>::zeros(zero_stride, true).unwrap_err();
    assert!(e.to_string().contains("at least 1"), "{e}");
}

/// Checks weight, bias and input gradients against finite differences.
/// … through both the small kernels and `tensor::gemm`.
fn check_gradients<const IN: usize, const OUT: usize, const PATCH: usize, const COUT: usize>(
    g: Conv2dGeometry,
    bias: bool,
    batch: usize,
    seed: u64,
) {
    check_gradients_with::<IN, OUT, PATCH, COUT>(g, bias, batch, seed, false);
    check_gradients_with::<IN, OUT, PATCH, COUT>(g, bias, batch, seed, true);
}

fn check_gradients_with<const IN: usize, const OUT: usize, const PATCH: usize, const COUT: usize>(
    g: Conv2dGeometry,
    bias: bool,
    batch: usize,
    seed: u64,
    gemm: bool,
) {
    let mut rng = seeded_rng(seed);
    let mut c = Conv2d::<f64, IN, OUT, PATCH, COUT>::new(g, bias, Init::Glorot, &mut rng).unwrap();
    c.gemm = gemm;
    if let Some(b) = &mut c.bias {
        b.iter_mut().enumerate().for_each(|(i, v)| *v = 0.1 * i as f64 - 0.2);
    }
    let x = Batch::<f64, IN>::from_fn(batch, |i, j| ((i * 7 + j * 13) as f64 * 0.37).sin());
    // Loss L = Σ k ⊙ y with fixed k, so dL/dy = k.
    let k = Batch::<f64, OUT>::from_fn(batch, |i, j| ((i + 3 * j) as f64 * 0.61).cos());
    let loss = |c: &Conv2d<f64, IN, OUT, PATCH, COUT>, x: &Batch<f64, IN>| {
        let mut y = Batch::zeros(0);
        c.forward(x, &mut y);
        y.component_mul(&k).sum()
    };
    let mut ws = Conv2dWorkspace::default();
    let mut y = Batch::zeros(0);
    Layer::forward_train(&mut c, &x, &mut y, &mut ws);
    let mut grads = c.zero_gradients();
    grads.weight.fill(f64::NAN); // overwritten, not accumulated
    let mut dx = Batch::zeros(0);
    Layer::backward(&c, &x, &y, &k, &mut ws, &mut grads, Some(&mut dx));

    let what = format!("{g:?}, bias = {bias}, gemm = {gemm}");
    let num_w = numeric_grad(c.weight.as_slice(), |w| {
        let mut p = c.clone();
        p.weight.as_mut_slice().copy_from_slice(w);
        loss(&p, &x)
    });
    assert_close(grads.weight.as_slice(), &num_w, 1e-7, &format!("weight of {what}"));
    if let Some(b) = &c.bias {
        let num_b = numeric_grad(b.as_slice(), |b| {
            let mut p = c.clone();
            p.bias.as_mut().unwrap().as_mut_slice().copy_from_slice(b);
            loss(&p, &x)
        });
        assert_close(grads.bias.as_ref().unwrap().as_slice(), &num_b, 1e-7, &format!("bias of {what}"));
    } else {
        assert!(grads.bias.is_none());
    }
    let num_x = numeric_grad(x.as_slice(), |xs| loss(&c, &Batch::from_column_slice(xs)));
    assert_close(dx.as_slice(), &num_x, 1e-7, &format!("input of {what}"));
}

/// The f32 kernels (AVX-512 where the CPU has it: rows in blocks of 8,
/// positions in vectors of 16, so 11 channels, 20 or 40 taps and rows of 9
/// leave partial blocks everywhere) agree with the f64 computation.
fn f32_agrees_with_f64<const IN: usize, const OUT: usize, const PATCH: usize, const COUT: usize>(
    g: Conv2dGeometry,
) {
    let c64 = Conv2d::<f64, IN, OUT, PATCH, COUT>::new(g, true, Init::He, &mut seeded_rng(5)).unwrap();
    let mut c32 = Conv2d::<f32, IN, OUT, PATCH, COUT>::zeros(g, true).unwrap();
    c32.weight.iter_mut().zip(c64.weight.iter()).for_each(|(a, &b)| *a = b as f32);
    let bias = c64.bias.as_ref().unwrap().iter().map(|&b| b as f32);
    c32.bias.as_mut().unwrap().iter_mut().zip(bias).for_each(|(a, b)| *a = b);
    let x = Batch::<f64, IN>::from_fn(3, |i, j| ((i * 5 + j * 17) as f64 * 0.23).cos());
    let dy = Batch::<f64, OUT>::from_fn(3, |i, j| ((i + 3 * j) as f64 * 0.61).cos());
    for gemm in [false, true] {
        let (mut c64, mut c32) = (c64.clone(), c32.clone());
        (c64.gemm, c32.gemm) = (gemm, gemm);
        let (mut ws, mut y, mut dx) = (Conv2dWorkspace::default(), Batch::zeros(0), Batch::zeros(0));
        let mut grads = c64.zero_gradients();
        Layer::forward_train(&mut c64, &x, &mut y, &mut ws);
        Layer::backward(&c64, &x, &y, &dy, &mut ws, &mut grads, Some(&mut dx));
        let bias = grads.bias.as_ref().unwrap().as_slice().to_vec();
        let expected =
            [y.as_slice().to_vec(), dx.as_slice().to_vec(), grads.weight.as_slice().to_vec(), bias];
        let (x, dy) = (x.map(|v| v as f32), dy.map(|v| v as f32));
        let (mut ws, mut y, mut dx) = (Conv2dWorkspace::default(), Batch::zeros(0), Batch::zeros(0));
        let mut grads = c32.zero_gradients();
        Layer::forward_train(&mut c32, &x, &mut y, &mut ws);
        Layer::backward(&c32, &x, &y, &dy, &mut ws, &mut grads, Some(&mut dx));
        let mut y_inf = Batch::zeros(0);
        c32.forward(&x, &mut y_inf);
        assert_eq!(y, y_inf, "{g:?}: inference differs from training");
        let got =
            [y.as_slice(), dx.as_slice(), grads.weight.as_slice(), grads.bias.as_ref().unwrap().as_slice()];
        let parts = ["output", "input gradient", "weight gradient", "bias gradient"];
        for ((got, expected), what) in got.iter().zip(&expected).zip(parts) {
            let got: Vec<f64> = got.iter().map(|&v| v as f64).collect();
            assert_close(&got, expected, 1e-5, &format!("{what}, {g:?}, gemm = {gemm}"));
        }
    }
}

#[test]
fn f32_kernels_agree_with_f64() {
    // No padding: the direct kernels read the input itself.
    f32_agrees_with_f64::<{ 2 * 9 * 13 }, { 11 * 6 * 9 }, 40, 11>(Conv2dGeometry::symmetric(
        2,
        9,
        13,
        11,
        [4, 5],
        [1, 1],
        [0, 0],
        [1, 1],
    ));
    // Padding, dilation and a vertical stride: they read a padded copy.
    f32_agrees_with_f64::<{ 2 * 9 * 13 }, { 11 * 5 * 13 }, 20, 11>(Conv2dGeometry::symmetric(
        2,
        9,
        13,
        11,
        [2, 5],
        [2, 1],
        [2, 2],
        [3, 1],
    ));
    // A horizontal stride: im2col.
    f32_agrees_with_f64::<{ 9 * 13 }, { 3 * 7 * 6 }, 9, 3>(Conv2dGeometry::symmetric(
        1,
        9,
        13,
        3,
        [3, 3],
        [1, 2],
        [0, 0],
        [1, 1],
    ));
}

#[test]
fn backward_matches_finite_differences() {
    // Plain 3×3, several channels, batch 3.
    check_gradients::<{ 2 * 5 * 5 }, { 3 * 3 * 3 }, 18, 3>(
        Conv2dGeometry::symmetric(2, 5, 5, 3, [3, 3], [1, 1], [0, 0], [1, 1]),
        true,
        3,
        1,
    );
    // Stride and padding, no bias.
    check_gradients::<{ 3 * 6 * 7 }, { 2 * 3 * 4 }, 27, 2>(
        Conv2dGeometry::symmetric(3, 6, 7, 2, [3, 3], [2, 2], [1, 1], [1, 1]),
        false,
        2,
        2,
    );
    // Rectangular kernel, different strides, paddings and dilations per axis.
    let g = Conv2dGeometry::symmetric(2, 9, 8, 3, [3, 2], [2, 1], [2, 1], [2, 3]);
    assert_eq!((g.out_height, g.out_width), (5, 7));
    check_gradients::<{ 2 * 9 * 8 }, { 3 * 5 * 7 }, 12, 3>(g, true, 2, 3);
    // Stride larger than the kernel: some inputs are never read.
    check_gradients::<{ 8 * 8 }, { 2 * 3 * 3 }, 4, 2>(
        Conv2dGeometry::symmetric(1, 8, 8, 2, [2, 2], [3, 3], [0, 0], [1, 1]),
        true,
        2,
        4,
    );
    // Pointwise (1×1): the fast path without im2col.
    check_gradients::<{ 3 * 4 * 5 }, { 2 * 4 * 5 }, 3, 2>(
        Conv2dGeometry::symmetric(3, 4, 5, 2, [1, 1], [1, 1], [0, 0], [1, 1]),
        true,
        3,
        5,
    );
}

#[test]
fn asymmetric_same_padding_for_an_even_kernel() {
    // PyTorch's padding="same" with a 4×2 kernel on 5×5: 1 row on top, 2 at
    // the bottom, none left, 1 right; the output keeps the input size.
    let g = Conv2dGeometry {
        in_channels: 2,
        height: 5,
        width: 5,
        out_channels: 2,
        kernel: [4, 2],
        stride: [1, 1],
        padding: [1, 0],
        dilation: [1, 1],
        out_height: 5,
        out_width: 5,
    };
    check_gradients::<50, 50, 16, 2>(g, true, 2, 6);

    // Values: a kernel of ones counts the in-image taps of a ones image
    // (times 2 input channels).
    let mut c = Conv2d::<f64, 50, 50, 16, 2>::zeros(g, false).unwrap();
    c.weight.fill(1.0);
    let x = Batch::<f64, 50>::from_element(1, 1.0);
    let mut y = Batch::zeros(0);
    c.forward(&x, &mut y);
    // Top-left: rows −1..3 (one padded) and columns 0..2.
    assert_eq!(y[(0, 0)], 2.0 * 3.0 * 2.0);
    // Bottom-right: rows 3..7 (two padded) and columns 4..6 (one padded).
    assert_eq!(y[(24, 0)], 2.0 * 2.0 * 1.0);
    // Centre: the whole 4×2 window.
    assert_eq!(y[(12, 0)], 2.0 * 4.0 * 2.0);
}

#[test]
fn inference_and_training_passes_agree_and_training_reuses_its_buffers() {
    passes_agree_and_reuse_buffers(false);
    passes_agree_and_reuse_buffers(true);
}

fn passes_agree_and_reuse_buffers(gemm: bool) {
    let g = Conv2dGeometry::symmetric(3, 8, 8, 4, [3, 3], [1, 1], [1, 1], [1, 1]);
    let mut c = Conv2d::<f32, 192, 256, 27, 4>::new(g, true, Init::He, &mut seeded_rng(9)).unwrap();
    c.gemm = gemm;
    let x = Batch::<f32, 192>::from_fn(5, |i, j| ((i * 3 + j) as f32 * 0.11).sin());
    let dy = Batch::<f32, 256>::from_fn(5, |i, j| ((i + j) as f32 * 0.07).cos());
    let (mut y_inf, mut y_train) = (Batch::zeros(0), Batch::zeros(0));
    c.forward(&x, &mut y_inf);
    let mut ws = Conv2dWorkspace::default();
    Layer::forward_train(&mut c, &x, &mut y_train, &mut ws);
    assert_eq!(y_inf, y_train);

    let mut grads = c.zero_gradients();
    let mut dx = Batch::zeros(0);
    Layer::backward(&c, &x, &y_train, &dy, &mut ws, &mut grads, Some(&mut dx));
    let buffers = |ws: &Conv2dWorkspace<f32>| {
        let (c, d, w, p) = (&ws.cols, &ws.dcols, &ws.wt, &ws.padded);
        (
            c.as_ptr(),
            c.capacity(),
            d.as_ptr(),
            d.capacity(),
            w.as_ptr(),
            w.capacity(),
            p.as_ptr(),
            p.capacity(),
        )
    };
    let before = buffers(&ws);
    let (y_ptr, dx_ptr) = (y_train.as_ptr(), dx.as_ptr());
    let first = grads.weight.clone();
    Layer::forward_train(&mut c, &x, &mut y_train, &mut ws);
    Layer::backward(&c, &x, &y_train, &dy, &mut ws, &mut grads, Some(&mut dx));
    assert_eq!(buffers(&ws), before);
    assert_eq!((y_train.as_ptr(), dx.as_ptr()), (y_ptr, dx_ptr));
    assert_eq!(grads.weight, first);
    // A smaller batch (an epoch's last) shrinks in place, without reallocating.
    let x3 = x.columns(0, 3).into_owned();
    Layer::forward_train(&mut c, &x3, &mut y_train, &mut ws);
    assert_eq!((ws.cols.as_ptr(), ws.padded.as_ptr()), (before.0, before.6));
    // Kernels that read the input directly keep no columns.
    assert_eq!(ws.cols.len(), if c.direct().is_some() { 0 } else { 3 * 27 * 64 });
    assert_eq!(c.direct().is_some(), !gemm && Isa::active() == Isa::Avx512);
}

#[test]
fn nan_in_the_input_reaches_the_output() {
    let c = small();
    let x = Batch::<f64, 9>::from_column_slice(&[1.0, 2.0, 3.0, 4.0, f64::NAN, 6.0, 7.0, 8.0, 9.0]);
    let mut y = Batch::zeros(0);
    c.forward(&x, &mut y);
    assert!(y.iter().all(|v| v.is_nan()), "{y}");
}

#[test]
fn visits_params_under_pytorch_names_and_shapes() {
    let g = Conv2dGeometry::symmetric(2, 4, 4, 3, [3, 2], [1, 1], [0, 0], [1, 1]);
    let mut c = Conv2d::<f32, 32, 18, 12, 3>::new(g, true, Init::He, &mut seeded_rng(0)).unwrap();
    assert_eq!(c.param_count(), 12 * 3 + 3);
    assert_eq!(<Conv2d<f32, 32, 18, 12, 3> as Params<f32>>::PARAM_COUNT, 39);
    let mut seen = Vec::new();
    c.visit_params(&ParamPath::ROOT.join("conv1"), &mut |p| {
        seen.push((p.name.to_string(), p.shape.to_vec(), p.value.len()))
    });
    assert_eq!(seen, [("conv1.weight".into(), vec![3, 2, 3, 2], 36), ("conv1.bias".into(), vec![3], 3)]);
    // Row-major [out, in, kh, kw]: element [o=1, c=1, i=2, j=0] is at ((1·2 + 1)·3 + 2)·2 + 0 = 22.
    c.visit_params_mut(&ParamPath::ROOT, &mut |p| {
        if p.name.last() == "weight" {
            p.value[22] = 42.0;
        }
    });
    assert_eq!(c.weight_at(1, 1, 2, 0), 42.0);
    c.bias = None;
    let mut names = Vec::new();
    c.visit_params(&ParamPath::ROOT.join("conv1"), &mut |p| names.push(p.name.to_string()));
    assert_eq!(names, ["conv1.weight"]);
    assert_eq!(c.param_count(), 36);
}

#[test]
fn he_init_uses_pytorch_fan_in() {
    let g = Conv2dGeometry::symmetric(16, 12, 12, 32, [3, 3], [1, 1], [1, 1], [1, 1]);
    let c = Conv2d::<f64, 2304, 4608, 144, 32>::new(g, false, Init::He, &mut seeded_rng(4)).unwrap();
    let w = c.weight.as_slice();
    let var = w.iter().map(|v| v * v).sum::<f64>() / w.len() as f64;
    assert!((var / (2.0 / 144.0) - 1.0).abs() < 0.1, "{var}");
}

#[test]
fn the_product_routine_is_a_function_of_the_level_and_the_float_type() {
    use super::products::products_through_gemm;
    // At AVX2, f32 layers from 2048 weights take the packed product; elsewhere from 128·128.
    for (isa, weights, f32_gemm, f64_gemm) in [
        (Isa::Avx2, 2047, false, false),
        (Isa::Avx2, 2048, true, false),
        (Isa::Avx512, 2048, false, false),
        (Isa::Portable, 2048, false, false),
        (Isa::Avx512, 128 * 128, true, true),
    ] {
        assert_eq!(products_through_gemm::<f32>(isa, weights), f32_gemm, "f32, {isa:?}, {weights}");
        assert_eq!(products_through_gemm::<f64>(isa, weights), f64_gemm, "f64, {isa:?}, {weights}");
    }
}
