// `dense` in all its forms, `=>` assertions, `output:`, named and unnamed layers,
// and the constants and layer table generated from them.
use staticnet::prelude::*;

network! {
    /// The example from the documentation.
    pub struct Mlp {
        input: [784],
        fc1: dense(256), relu,
        fc2: dense(256 -> 128, bias = false) => [128], leaky_relu(0.1),
        head: dense(10),
        output: [10],
    }
}

network! {
    /// Unnamed layers, every option, assertions after activations too.
    pub struct Mixed {
        input: [6],
        dense(6 -> 5) => [5],
        relu => [5],
        dense(4, bias = false),
        enc: dense(4 -> 3, bias = true) => [3],
        dense(bias = false, 2),
        sigmoid => [2],
    }
}

network! {
    /// A single layer, no bias: easy to compute by hand.
    pub struct Linear {
        input: [2],
        w: dense(3, bias = false),
        output: [3],
    }
}

network! {
    /// A trailing comma is optional.
    pub struct NoTrailingComma { input: [1], dense(1) }
}

fn param_names<N: Params<f32>>(net: &N) -> Vec<(String, Vec<usize>)> {
    let mut names = Vec::new();
    net.visit_params(&ParamPath::ROOT, &mut |p| names.push((p.name.to_string(), p.shape.to_vec())));
    names
}

fn main() {
    // Constants, with exact values.
    assert_eq!(Mlp::<f32>::INPUT_SIZE, 784);
    assert_eq!(Mlp::<f32>::OUTPUT_SIZE, 10);
    assert_eq!(Mlp::<f32>::PARAM_COUNT, 784 * 256 + 256 + 256 * 128 + 128 * 10 + 10);
    assert_eq!(Mlp::<f32>::PARAM_COUNT, 235_018);
    assert_eq!(<Mlp as Params<f32>>::PARAM_COUNT, 235_018);
    assert_eq!(Mlp::<f64>::PARAM_COUNT, 235_018);
    // Usable in const contexts.
    const FEATURES: usize = Mlp::<f32>::INPUT_SIZE * 2;
    let _: [u8; FEATURES] = [0; 1568];

    // The layer table.
    let expected = [
        LayerInfo {
            name: "fc1",
            param_name: "fc1",
            kind: "dense(784 -> 256)",
            input_shape: &[784],
            output_shape: &[256],
            params: 784 * 256 + 256,
            buffers: 0,
            children: &[],
        },
        LayerInfo {
            name: "relu_1",
            param_name: "1",
            kind: "relu",
            input_shape: &[256],
            output_shape: &[256],
            params: 0,
            buffers: 0,
            children: &[],
        },
        LayerInfo {
            name: "fc2",
            param_name: "fc2",
            kind: "dense(256 -> 128, bias = false)",
            input_shape: &[256],
            output_shape: &[128],
            params: 256 * 128,
            buffers: 0,
            children: &[],
        },
        LayerInfo {
            name: "leaky_relu_3",
            param_name: "3",
            kind: "leaky_relu(0.1)",
            input_shape: &[128],
            output_shape: &[128],
            params: 0,
            buffers: 0,
            children: &[],
        },
        LayerInfo {
            name: "head",
            param_name: "head",
            kind: "dense(128 -> 10)",
            input_shape: &[128],
            output_shape: &[10],
            params: 1290,
            buffers: 0,
            children: &[],
        },
    ];
    assert_eq!(Mlp::<f32>::LAYERS, expected);
    let total: usize = Mlp::<f32>::LAYERS.iter().map(|l| l.params).sum();
    assert_eq!(total, Mlp::<f32>::PARAM_COUNT);

    // Parameters: named after the layer, no bias where `bias = false`, PyTorch shapes.
    let mlp = Mlp::new(1);
    let names = param_names(&mlp);
    let expected: Vec<(String, Vec<usize>)> = [
        ("fc1.weight", vec![256, 784]),
        ("fc1.bias", vec![256]),
        ("fc2.weight", vec![128, 256]),
        ("head.weight", vec![10, 128]),
        ("head.bias", vec![10]),
    ]
    .into_iter()
    .map(|(n, s)| (n.to_string(), s))
    .collect();
    assert_eq!(names, expected);
    assert!(mlp.fc2.bias.is_none());
    assert!(mlp.fc1.bias.is_some());
    let y: MlpOutput = mlp.forward(&MlpInput::from_element(4, 0.5));
    assert_eq!((y.nrows(), y.ncols()), (10, 4));
    assert!(y.iter().all(|v| v.is_finite()));

    // Unnamed layers: fields are `{kind}_{position}`, parameters are named by position.
    assert_eq!(Mixed::<f32>::INPUT_SIZE, 6);
    assert_eq!(Mixed::<f32>::OUTPUT_SIZE, 2);
    assert_eq!(Mixed::<f32>::PARAM_COUNT, (6 * 5 + 5) + 5 * 4 + (4 * 3 + 3) + 3 * 2);
    let names: Vec<&str> = Mixed::<f32>::LAYERS.iter().map(|l| l.name).collect();
    assert_eq!(names, ["dense_0", "relu_1", "dense_2", "enc", "dense_4", "sigmoid_5"]);
    let kinds: Vec<&str> = Mixed::<f32>::LAYERS.iter().map(|l| l.kind).collect();
    assert_eq!(
        kinds,
        [
            "dense(6 -> 5)",
            "relu",
            "dense(5 -> 4, bias = false)",
            "dense(4 -> 3)",
            "dense(3 -> 2, bias = false)",
            "sigmoid"
        ]
    );
    let mixed = Mixed::new(2);
    let names: Vec<String> = param_names(&mixed).into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, ["0.weight", "0.bias", "2.weight", "enc.weight", "enc.bias", "4.weight"]);
    let _: &staticnet::layers::Dense<f32, 6, 5> = &mixed.dense_0;
    let _: &staticnet::layers::Dense<f32, 5, 4> = &mixed.dense_2;
    let _: &staticnet::layers::Dense<f32, 4, 3> = &mixed.enc;
    let _: &staticnet::layers::Dense<f32, 3, 2> = &mixed.dense_4;

    // `zeros()` then loaded weights: y = W x, computed by hand.
    let mut lin = Linear::<f32>::zeros();
    assert_eq!(Linear::<f32>::PARAM_COUNT, 6);
    assert!(lin.forward(&LinearInput::from_element(1, 1.0)).iter().all(|&v| v == 0.0));
    // Row-major [out, in]: row o holds the weights into output o.
    lin.visit_params_mut(&ParamPath::ROOT, &mut |p| {
        assert_eq!(p.name.to_string(), "w.weight");
        p.value.copy_from_slice(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    });
    assert_eq!(lin.w.weight_at(1, 0), 3.0);
    let y = lin.forward(&LinearInput::from_column_slice(&[1.0, 10.0, -1.0, 0.0]));
    assert_eq!(y.as_slice(), &[21.0, 43.0, 65.0, -1.0, -3.0, -5.0]);

    assert_eq!(NoTrailingComma::<f32>::PARAM_COUNT, 2);
}
