// Convolutional networks: every conv2d option (single and list forms, `same`
// and `valid`, an even kernel with `same`, dilation, no bias, `in -> out`,
// keywords before the filters), both pools with and without a stride,
// `global_avg_pool`, `flatten`, `batch_norm` and `layer_norm` on rank 1 and
// rank 3, dropout, activations and `=>` on rank-3 shapes. Checks the generated
// constants, layer table, field types and parameter/buffer names against sizes
// worked out by hand, and that both passes give outputs of the right size.
use staticnet::layers::{BatchNorm, Conv2d, Conv2dGeometry, Dense, Dropout, LayerNorm};
use staticnet::prelude::*;

network! {
    /// The example from the documentation.
    pub struct Digits {
        input: [1, 28, 28],
        conv1: conv2d(16, kernel = 3), relu,
        max_pool(2),
        conv2: conv2d(16 -> 32, kernel = 3, padding = 1), batch_norm, relu,
        max_pool(2) => [32, 6, 6],
        flatten => [1152],
        dropout(0.25),
        fc: dense(128), relu,
        head: dense(10),
    }
}

network! {
    /// One convolution per option; the sizes in the comments are PyTorch's
    /// floor((H + 2p − d(k − 1) − 1) / s) + 1.
    pub struct ConvOptions {
        input: [3, 12, 10],
        // H: (12 + 2 − 3)/2 + 1 = 6, W: (10 + 4 − 5)/1 + 1 = 10
        a: conv2d(3 -> 4, kernel = [3, 5], stride = [2, 1], padding = [1, 2]) => [4, 6, 10],
        // An even kernel with `same`: padded 1 at the top/left, 2 at the bottom/right.
        b: conv2d(6, kernel = 4, padding = same, bias = false) => [6, 6, 10],
        // Dilation 2 spans 5: H: 6 − 5 + 1 = 2, W: 10 − 5 + 1 = 6
        c: conv2d(6 -> 8, kernel = 3, stride = 1, padding = valid, dilation = 2) => [8, 2, 6],
        // H: (2 − 1)/1 + 1 = 2, W: span 5, (6 + 2 − 5)/2 + 1 = 2
        d: conv2d(4, kernel = [1, 3], stride = [1, 2], padding = [0, 1], dilation = [1, 2], bias = true) => [4, 2, 2],
        // `same` with a dilation: padded by 2 on each side of a 2×2 input.
        e: conv2d(3, kernel = 3, padding = same, dilation = 2) => [3, 2, 2],
        // Keywords may come before the filters; a 1×1 convolution.
        conv2d(kernel = 1, 5) => [5, 2, 2],
        output: [5, 2, 2],
    }
}

network! {
    /// Pools, norms, dropout and activations on rank-3 and rank-1 shapes.
    pub struct Blocks {
        input: [2, 12, 10],
        bn_in: batch_norm(eps = 1e-3, momentum = 0.5) => [2, 12, 10],
        // H: (12 − 3)/2 + 1 = 5, W: (10 − 2)/2 + 1 = 5
        mp: max_pool([3, 2], stride = 2) => [2, 5, 5],
        leaky_relu(0.2) => [2, 5, 5],
        conv: conv2d(4, kernel = 2, padding = 1), gelu => [4, 6, 6],
        avg_pool(2, stride = 1) => [4, 5, 5],
        avg_pool(2) => [4, 2, 2],
        ln3: layer_norm(eps = 1e-3) => [4, 2, 2],
        relu,
        global_avg_pool => [4],
        bn1: batch_norm(momentum = 1),
        ln1: layer_norm,
        drop: dropout(0.5),
        head: dense(3), softmax,
        output: [3],
    }
}

network! {
    /// Every activation on a rank-3 shape, and `flatten` last.
    pub struct Activations {
        input: [2, 3, 3],
        relu => [2, 3, 3], leaky_relu, sigmoid, tanh, gelu, identity,
        softmax => [2, 3, 3],
        flatten,
        output: [18],
    }
}

fn params<N: Params<f32>>(net: &N) -> Vec<(String, Vec<usize>)> {
    let mut all = Vec::new();
    net.visit_params(&ParamPath::ROOT, &mut |p| {
        assert_eq!(p.value.len(), p.shape.iter().product::<usize>(), "{}", p.name);
        all.push((p.name.to_string(), p.shape.to_vec()));
    });
    all
}

fn buffers<N: Params<f32>>(net: &N) -> Vec<(String, Vec<usize>)> {
    let mut all = Vec::new();
    net.visit_buffers(&ParamPath::ROOT, &mut |p| all.push((p.name.to_string(), p.shape.to_vec())));
    all
}

fn owned(list: &[(&str, &[usize])]) -> Vec<(String, Vec<usize>)> {
    list.iter().map(|(n, s)| (n.to_string(), s.to_vec())).collect()
}

fn info(
    name: &'static str,
    param_name: &'static str,
    kind: &'static str,
    input_shape: &'static [usize],
    output_shape: &'static [usize],
    params: usize,
) -> LayerInfo {
    // Only batch norm saves buffers: a running mean and variance per channel.
    let buffers = if kind == "batch_norm" { 2 * output_shape[0] } else { 0 };
    LayerInfo { name, param_name, kind, input_shape, output_shape, params, buffers, children: &[] }
}

/// Runs both passes on a batch of `n` samples and checks the output sizes.
fn run_both<N: Network<f32, IN, OUT>, const IN: usize, const OUT: usize>(net: &mut N, n: usize) {
    let x = Batch::<f32, IN>::from_fn(n, |i, j| ((i * 7 + j * 3) % 11) as f32 / 11.0 - 0.4);
    let y = net.forward(&x);
    assert_eq!((y.nrows(), y.ncols()), (OUT, n));
    assert!(y.iter().all(|v| v.is_finite()));
    let mut trace = N::Trace::default();
    let y = net.forward_train(&x, &mut trace);
    assert_eq!((y.nrows(), y.ncols()), (OUT, n));
    assert!(y.iter().all(|v| v.is_finite()));
    // The trace reports the same output.
    assert_eq!(N::trace_output(&trace).ncols(), n);
}

fn main() {
    digits();
    conv_options();
    blocks();
    activations();
}

fn digits() {
    assert_eq!(Digits::INPUT_SHAPE, &[1, 28, 28]);
    assert_eq!(Digits::OUTPUT_SHAPE, &[10]);
    assert_eq!(Digits::INPUT_SIZE, 784);
    assert_eq!(Digits::OUTPUT_SIZE, 10);
    let conv1 = 16 * 1 * 3 * 3 + 16;
    let conv2 = 32 * 16 * 3 * 3 + 32;
    let bn = 2 * 32;
    let fc = 1152 * 128 + 128;
    let head = 128 * 10 + 10;
    assert_eq!(Digits::PARAM_COUNT, conv1 + conv2 + bn + fc + head);
    assert_eq!(Digits::PARAM_COUNT, 153_738);
    assert_eq!(<Digits<f64> as Params<f64>>::PARAM_COUNT, 153_738);
    let expected = [
        info("conv1", "conv1", "conv2d(1 -> 16, kernel = 3)", &[1, 28, 28], &[16, 26, 26], 160),
        info("relu_1", "1", "relu", &[16, 26, 26], &[16, 26, 26], 0),
        info("max_pool_2", "2", "max_pool(2)", &[16, 26, 26], &[16, 13, 13], 0),
        info("conv2", "conv2", "conv2d(16 -> 32, kernel = 3, padding = 1)", &[16, 13, 13], &[32, 13, 13], 4640),
        info("batch_norm_4", "4", "batch_norm", &[32, 13, 13], &[32, 13, 13], 64),
        info("relu_5", "5", "relu", &[32, 13, 13], &[32, 13, 13], 0),
        info("max_pool_6", "6", "max_pool(2)", &[32, 13, 13], &[32, 6, 6], 0),
        info("flatten_7", "7", "flatten", &[32, 6, 6], &[1152], 0),
        info("dropout_8", "8", "dropout(0.25)", &[1152], &[1152], 0),
        info("fc", "fc", "dense(1152 -> 128)", &[1152], &[128], 147_584),
        info("relu_10", "10", "relu", &[128], &[128], 0),
        info("head", "head", "dense(128 -> 10)", &[128], &[10], 1290),
    ];
    assert_eq!(Digits::LAYERS, expected);
    let saved: Vec<usize> = Digits::LAYERS.iter().map(|l| l.buffers).collect();
    assert_eq!(saved, [0, 0, 0, 0, 64, 0, 0, 0, 0, 0, 0, 0]);
    let total: usize = Digits::LAYERS.iter().map(|l| l.params).sum();
    assert_eq!(total, Digits::PARAM_COUNT);

    let mut net = Digits::new(1);
    // Fields: the layers with parameters or state, with their sizes as const generics.
    let _: &Conv2d<f32, 784, { 16 * 26 * 26 }, 9, 16> = &net.conv1;
    let _: &Conv2d<f32, { 16 * 13 * 13 }, { 32 * 13 * 13 }, { 16 * 9 }, 32> = &net.conv2;
    let _: &BatchNorm<f32, { 32 * 13 * 13 }, 32> = &net.batch_norm_4;
    let _: &Dropout = &net.dropout_8;
    let _: &Dense<f32, 1152, 128> = &net.fc;
    assert_eq!(net.dropout_8.p(), 0.25);
    assert_eq!((net.batch_norm_4.eps, net.batch_norm_4.momentum), (1e-5, 0.1));
    assert_eq!(
        net.conv2.geometry(),
        Conv2dGeometry {
            in_channels: 16,
            height: 13,
            width: 13,
            out_channels: 32,
            kernel: [3, 3],
            stride: [1, 1],
            padding: [1, 1],
            dilation: [1, 1],
            out_height: 13,
            out_width: 13,
        }
    );
    assert_eq!(
        params(&net),
        owned(&[
            ("conv1.weight", &[16, 1, 3, 3]),
            ("conv1.bias", &[16]),
            ("conv2.weight", &[32, 16, 3, 3]),
            ("conv2.bias", &[32]),
            ("4.weight", &[32]),
            ("4.bias", &[32]),
            ("fc.weight", &[128, 1152]),
            ("fc.bias", &[128]),
            ("head.weight", &[10, 128]),
            ("head.bias", &[10]),
        ])
    );
    assert_eq!(buffers(&net), owned(&[("4.running_mean", &[32]), ("4.running_var", &[32])]));
    run_both(&mut net, 3);
    let y: DigitsOutput = net.forward(&DigitsInput::from_element(2, 0.5));
    assert_eq!((y.nrows(), y.ncols()), (10, 2));

    // Every initialisation fills the convolutions; the same seed gives the same weights.
    let he = Digits::<f64>::init(Init::He, 7);
    let glorot = Digits::<f64>::init(Init::Glorot, 7);
    assert!(he.conv1.weight.iter().any(|&w| w != 0.0));
    assert!(he.conv1.bias.as_ref().unwrap().iter().all(|&b| b == 0.0));
    assert_eq!(he.conv2.weight.as_slice(), Digits::<f64>::init(Init::He, 7).conv2.weight.as_slice());
    assert_ne!(he.conv2.weight.as_slice(), glorot.conv2.weight.as_slice());
    // Glorot uniform with PyTorch's fans: fan_in = 16·9, fan_out = 32·9.
    let limit = (6.0f64 / (16.0 * 9.0 + 32.0 * 9.0)).sqrt();
    assert!(glorot.conv2.weight.iter().all(|w| w.abs() <= limit));
    assert!(Digits::<f32>::zeros().conv1.weight.iter().all(|&w| w == 0.0));
}

fn conv_options() {
    assert_eq!(ConvOptions::INPUT_SHAPE, &[3, 12, 10]);
    assert_eq!(ConvOptions::OUTPUT_SHAPE, &[5, 2, 2]);
    assert_eq!(ConvOptions::INPUT_SIZE, 360);
    assert_eq!(ConvOptions::OUTPUT_SIZE, 20);
    let expected = [
        info(
            "a",
            "a",
            "conv2d(3 -> 4, kernel = [3, 5], stride = [2, 1], padding = [1, 2])",
            &[3, 12, 10],
            &[4, 6, 10],
            4 * 3 * 3 * 5 + 4,
        ),
        info("b", "b", "conv2d(4 -> 6, kernel = 4, padding = same, bias = false)", &[4, 6, 10], &[6, 6, 10], 6 * 4 * 4 * 4),
        info("c", "c", "conv2d(6 -> 8, kernel = 3, dilation = 2)", &[6, 6, 10], &[8, 2, 6], 8 * 6 * 9 + 8),
        info(
            "d",
            "d",
            "conv2d(8 -> 4, kernel = [1, 3], stride = [1, 2], padding = [0, 1], dilation = [1, 2])",
            &[8, 2, 6],
            &[4, 2, 2],
            4 * 8 * 3 + 4,
        ),
        info("e", "e", "conv2d(4 -> 3, kernel = 3, padding = same, dilation = 2)", &[4, 2, 2], &[3, 2, 2], 3 * 4 * 9 + 3),
        info("conv2d_5", "5", "conv2d(3 -> 5, kernel = 1)", &[3, 2, 2], &[5, 2, 2], 5 * 3 + 5),
    ];
    assert_eq!(ConvOptions::LAYERS, expected);
    assert_eq!(ConvOptions::PARAM_COUNT, 184 + 384 + 440 + 100 + 111 + 20);

    let mut net = ConvOptions::new(3);
    let _: &Conv2d<f32, 360, 240, 45, 4> = &net.a;
    let _: &Conv2d<f32, 240, 360, 64, 6> = &net.b;
    let _: &Conv2d<f32, 360, 96, 54, 8> = &net.c;
    let _: &Conv2d<f32, 96, 16, 24, 4> = &net.d;
    let _: &Conv2d<f32, 16, 12, 36, 3> = &net.e;
    let _: &Conv2d<f32, 12, 20, 3, 5> = &net.conv2d_5;
    assert!(net.b.bias.is_none());
    assert!(net.d.bias.is_some());
    // The geometry handed to the layers: `same` pads (k − 1)/2 at the top/left
    // (the rest, at the bottom/right, follows from the output size).
    let g = net.a.geometry();
    assert_eq!((g.kernel, g.stride, g.padding, g.dilation), ([3, 5], [2, 1], [1, 2], [1, 1]));
    assert_eq!((g.out_height, g.out_width), (6, 10));
    let g = net.b.geometry();
    assert_eq!((g.kernel, g.stride, g.padding, g.dilation), ([4, 4], [1, 1], [1, 1], [1, 1]));
    let g = net.c.geometry();
    assert_eq!((g.kernel, g.stride, g.padding, g.dilation), ([3, 3], [1, 1], [0, 0], [2, 2]));
    let g = net.d.geometry();
    assert_eq!((g.kernel, g.stride, g.padding, g.dilation), ([1, 3], [1, 2], [0, 1], [1, 2]));
    let g = net.e.geometry();
    assert_eq!((g.kernel, g.stride, g.padding, g.dilation), ([3, 3], [1, 1], [2, 2], [2, 2]));
    assert_eq!((g.height, g.width, g.out_height, g.out_width), (2, 2, 2, 2));
    assert_eq!(
        params(&net),
        owned(&[
            ("a.weight", &[4, 3, 3, 5]),
            ("a.bias", &[4]),
            ("b.weight", &[6, 4, 4, 4]),
            ("c.weight", &[8, 6, 3, 3]),
            ("c.bias", &[8]),
            ("d.weight", &[4, 8, 1, 3]),
            ("d.bias", &[4]),
            ("e.weight", &[3, 4, 3, 3]),
            ("e.bias", &[3]),
            ("5.weight", &[5, 3, 1, 1]),
            ("5.bias", &[5]),
        ])
    );
    assert!(buffers(&net).is_empty());
    run_both(&mut net, 2);
}

fn blocks() {
    assert_eq!(Blocks::INPUT_SHAPE, &[2, 12, 10]);
    assert_eq!(Blocks::OUTPUT_SHAPE, &[3]);
    assert_eq!((Blocks::INPUT_SIZE, Blocks::OUTPUT_SIZE), (240, 3));
    let expected = [
        info("bn_in", "bn_in", "batch_norm", &[2, 12, 10], &[2, 12, 10], 4),
        info("mp", "mp", "max_pool([3, 2], stride = 2)", &[2, 12, 10], &[2, 5, 5], 0),
        info("leaky_relu_2", "2", "leaky_relu(0.2)", &[2, 5, 5], &[2, 5, 5], 0),
        info("conv", "conv", "conv2d(2 -> 4, kernel = 2, padding = 1)", &[2, 5, 5], &[4, 6, 6], 4 * 2 * 4 + 4),
        info("gelu_4", "4", "gelu", &[4, 6, 6], &[4, 6, 6], 0),
        info("avg_pool_5", "5", "avg_pool(2, stride = 1)", &[4, 6, 6], &[4, 5, 5], 0),
        info("avg_pool_6", "6", "avg_pool(2)", &[4, 5, 5], &[4, 2, 2], 0),
        // Layer norm over the whole sample: one weight per value.
        info("ln3", "ln3", "layer_norm", &[4, 2, 2], &[4, 2, 2], 2 * 16),
        info("relu_8", "8", "relu", &[4, 2, 2], &[4, 2, 2], 0),
        info("global_avg_pool_9", "9", "global_avg_pool", &[4, 2, 2], &[4], 0),
        info("bn1", "bn1", "batch_norm", &[4], &[4], 8),
        info("ln1", "ln1", "layer_norm", &[4], &[4], 8),
        info("drop", "drop", "dropout(0.5)", &[4], &[4], 0),
        info("head", "head", "dense(4 -> 3)", &[4], &[3], 15),
        info("softmax_14", "14", "softmax", &[3], &[3], 0),
    ];
    assert_eq!(Blocks::LAYERS, expected);
    let saved: Vec<usize> = Blocks::LAYERS.iter().map(|l| l.buffers).collect();
    assert_eq!(saved, [4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 8, 0, 0, 0, 0]);
    assert_eq!(Blocks::PARAM_COUNT, 4 + 36 + 32 + 8 + 8 + 15);

    let mut net = Blocks::new(5);
    let _: &BatchNorm<f32, 240, 2> = &net.bn_in;
    let _: &Conv2d<f32, 50, 144, 8, 4> = &net.conv;
    let _: &LayerNorm<f32, 16> = &net.ln3;
    let _: &BatchNorm<f32, 4, 4> = &net.bn1;
    let _: &LayerNorm<f32, 4> = &net.ln1;
    let _: &Dropout = &net.drop;
    assert_eq!((net.bn_in.eps, net.bn_in.momentum), (1e-3, 0.5));
    assert_eq!((net.bn1.eps, net.bn1.momentum), (1e-5, 1.0));
    assert_eq!((net.ln3.eps, net.ln1.eps), (1e-3, 1e-5));
    assert_eq!((net.ln3.shape(), net.ln1.shape()), (&[4usize, 2, 2][..], &[4usize][..]));
    assert_eq!(net.drop.p(), 0.5);
    assert_eq!(
        params(&net),
        owned(&[
            ("bn_in.weight", &[2]),
            ("bn_in.bias", &[2]),
            ("conv.weight", &[4, 2, 2, 2]),
            ("conv.bias", &[4]),
            ("ln3.weight", &[4, 2, 2]),
            ("ln3.bias", &[4, 2, 2]),
            ("bn1.weight", &[4]),
            ("bn1.bias", &[4]),
            ("ln1.weight", &[4]),
            ("ln1.bias", &[4]),
            ("head.weight", &[3, 4]),
            ("head.bias", &[3]),
        ])
    );
    assert_eq!(
        buffers(&net),
        owned(&[
            ("bn_in.running_mean", &[2]),
            ("bn_in.running_var", &[2]),
            ("bn1.running_mean", &[4]),
            ("bn1.running_var", &[4]),
        ])
    );
    // Norm layers start at their identity: weight 1, bias 0; running stats 0 and 1.
    assert!(net.ln3.weight.iter().all(|&w| w == 1.0) && net.ln3.bias.iter().all(|&b| b == 0.0));
    assert!(net.bn_in.running_mean.iter().all(|&m| m == 0.0));
    assert!(net.bn_in.running_var.iter().all(|&v| v == 1.0));
    run_both(&mut net, 4);
    // The softmax head gives a distribution per sample.
    let y = net.forward(&BlocksInput::from_fn(3, |i, j| (i as f32 * 0.37 + j as f32).sin()));
    for col in y.column_iter() {
        assert!((col.sum() - 1.0).abs() < 1e-5);
    }
}

fn activations() {
    let kinds: Vec<&str> = Activations::LAYERS.iter().map(|l| l.kind).collect();
    assert_eq!(
        kinds,
        ["relu", "leaky_relu(0.01)", "sigmoid", "tanh", "gelu", "identity", "softmax", "flatten"]
    );
    assert!(Activations::LAYERS[..7].iter().all(|l| l.input_shape == [2, 3, 3] && l.output_shape == [2, 3, 3]));
    assert_eq!(Activations::LAYERS[7].output_shape, &[18]);
    assert_eq!((Activations::INPUT_SIZE, Activations::OUTPUT_SIZE, Activations::PARAM_COUNT), (18, 18, 0));
    let mut net = Activations::new(0);
    run_both(&mut net, 2);
    // Element-wise activations act on each value; softmax over all C·H·W values of a sample.
    let x = ActivationsInput::from_fn(2, |i, j| 0.1 + i as f32 * 0.05 + j as f32);
    let y = net.forward(&x);
    for (col, xc) in y.column_iter().zip(x.column_iter()) {
        assert!((col.sum() - 1.0).abs() < 1e-5);
        // Positive inputs in increasing order: every activation here keeps the order.
        assert!(xc.iter().zip(xc.iter().skip(1)).all(|(a, b)| a < b));
        assert!(col.iter().zip(col.iter().skip(1)).all(|(a, b)| a < b));
    }
}
