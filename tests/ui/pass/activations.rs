// Every activation and every form of `leaky_relu`, checked value by value on
// activation-only networks, then all together between dense layers.
use staticnet::prelude::*;

network! { struct R { input: [3], relu } }
network! { struct LeakyDefault { input: [3], leaky_relu } }
network! { struct LeakyPositional { input: [3], leaky_relu(0.1) } }
network! { struct LeakyKeyword { input: [3], leaky_relu(alpha = 0.25) } }
network! { struct LeakyNegative { input: [3], leaky_relu(-0.5) } }
network! { struct LeakyInt { input: [3], leaky_relu(2) } }
network! { struct S { input: [3], sigmoid } }
network! { struct Th { input: [3], tanh } }
network! { struct G { input: [3], gelu } }
network! { struct Sm { input: [3], softmax } }
network! { struct I { input: [3], identity } }
network! { struct Stacked { input: [3], act: tanh, relu, identity => [3], output: [3] } }

network! {
    /// Every activation between dense layers, all unnamed.
    struct Every {
        input: [3],
        dense(4), relu,
        dense(4), leaky_relu,
        dense(4), leaky_relu(0.1),
        dense(4), leaky_relu(alpha = 0.2),
        dense(4), sigmoid,
        dense(4), tanh,
        dense(4), gelu,
        dense(4), identity,
        dense(2), softmax,
        output: [2],
    }
}

const X: [f32; 3] = [-1.0, 0.0, 2.0];

fn check(name: &str, got: Batch<f32, 3>, expected: [f32; 3]) {
    assert_eq!(got.ncols(), 1, "{name}");
    for (i, (g, e)) in got.iter().zip(expected).enumerate() {
        assert!((g - e).abs() < 1e-5, "{name}[{i}]: got {g}, expected {e}");
    }
}

fn x() -> Batch<f32, 3> {
    Batch::from_column_slice(&X)
}

fn kinds(layers: &[LayerInfo]) -> Vec<&str> {
    layers.iter().map(|l| l.kind).collect()
}

fn main() {
    check("relu", R::new(0).forward(&x()), [0.0, 0.0, 2.0]);
    check("leaky_relu", LeakyDefault::new(0).forward(&x()), [-0.01, 0.0, 2.0]);
    check("leaky_relu(0.1)", LeakyPositional::new(0).forward(&x()), [-0.1, 0.0, 2.0]);
    check("leaky_relu(alpha = 0.25)", LeakyKeyword::new(0).forward(&x()), [-0.25, 0.0, 2.0]);
    check("leaky_relu(-0.5)", LeakyNegative::new(0).forward(&x()), [0.5, 0.0, 2.0]);
    check("leaky_relu(2)", LeakyInt::new(0).forward(&x()), [-2.0, 0.0, 2.0]);
    check("sigmoid", S::new(0).forward(&x()), [0.268_941_42, 0.5, 0.880_797_1]);
    check("tanh", Th::new(0).forward(&x()), [-0.761_594_2, 0.0, 0.964_027_6]);
    // The exact GELU, x·Φ(x), as PyTorch's default.
    check("gelu", G::new(0).forward(&x()), [-0.158_655_26, 0.0, 1.954_499_7]);
    check("softmax", Sm::new(0).forward(&x()), [0.042_010_07, 0.114_195_19, 0.843_794_7]);
    check("identity", I::new(0).forward(&x()), X);
    check("tanh, relu, identity", Stacked::new(0).forward(&x()), [0.0, 0.0, 0.964_027_6]);

    assert_eq!(kinds(R::<f32>::LAYERS), ["relu"]);
    assert_eq!(kinds(LeakyDefault::<f32>::LAYERS), ["leaky_relu(0.01)"]);
    assert_eq!(kinds(LeakyPositional::<f32>::LAYERS), ["leaky_relu(0.1)"]);
    assert_eq!(kinds(LeakyKeyword::<f32>::LAYERS), ["leaky_relu(0.25)"]);
    assert_eq!(kinds(LeakyNegative::<f32>::LAYERS), ["leaky_relu(-0.5)"]);
    assert_eq!(kinds(LeakyInt::<f32>::LAYERS), ["leaky_relu(2)"]);
    assert_eq!(kinds(Sm::<f32>::LAYERS), ["softmax"]);
    assert_eq!(kinds(Stacked::<f32>::LAYERS), ["tanh", "relu", "identity"]);
    let names: Vec<&str> = Stacked::<f32>::LAYERS.iter().map(|l| l.name).collect();
    assert_eq!(names, ["act", "relu_1", "identity_2"]);
    // Activation-only networks have no parameters.
    assert_eq!(R::<f32>::PARAM_COUNT, 0);
    assert_eq!(<Stacked as Params<f32>>::PARAM_COUNT, 0);
    assert_eq!(Stacked::<f32>::INPUT_SIZE, 3);
    assert_eq!(Stacked::<f32>::OUTPUT_SIZE, 3);

    assert_eq!(
        kinds(Every::<f32>::LAYERS),
        [
            "dense(3 -> 4)",
            "relu",
            "dense(4 -> 4)",
            "leaky_relu(0.01)",
            "dense(4 -> 4)",
            "leaky_relu(0.1)",
            "dense(4 -> 4)",
            "leaky_relu(0.2)",
            "dense(4 -> 4)",
            "sigmoid",
            "dense(4 -> 4)",
            "tanh",
            "dense(4 -> 4)",
            "gelu",
            "dense(4 -> 4)",
            "identity",
            "dense(4 -> 2)",
            "softmax",
        ]
    );
    assert_eq!(Every::<f32>::PARAM_COUNT, (3 * 4 + 4) + 7 * (4 * 4 + 4) + (4 * 2 + 2));

    // The softmax head gives a distribution per sample.
    let net = Every::new(7);
    let batch = EveryInput::from_fn(5, |i, j| (i as f32 - 1.0) * (j as f32 + 0.5));
    let y: EveryOutput = net.forward(&batch);
    assert_eq!((y.nrows(), y.ncols()), (2, 5));
    for col in y.column_iter() {
        assert!((col.sum() - 1.0).abs() < 1e-5);
        assert!(col.iter().all(|&p| p > 0.0 && p < 1.0));
    }

    // The generated backward pass agrees with finite differences through every activation.
    let mut net = Every::<f64>::init(Init::Glorot, 3);
    let batch = EveryInput::<f64>::from_fn(4, |i, j| 0.3 * i as f64 - 0.2 * j as f64 + 0.1);
    let target = EveryOutput::<f64>::from_fn(4, |i, j| if (i + j) % 2 == 0 { 1.0 } else { 0.0 });
    let worst = staticnet::gradcheck::check_network(&mut net, &MeanSquaredError, &batch, &target, 1e-6);
    assert!(worst <= 1e-6);
}
