//! Networks generic over sizes (`struct Mlp<const HIDDEN: usize>`): one
//! declaration, several instantiations, each statically shaped, with
//! gradients, names, persistence and training like any other network.

use staticnet::gradcheck::check_network;
use staticnet::prelude::*;

network! {
    /// A classifier whose hidden width is chosen where it is used.
    pub struct Mlp<const HIDDEN: usize> {
        input: [6],
        fc1: dense(HIDDEN), tanh,
        block: residual { dense(HIDDEN), tanh, dense(HIDDEN) },
        norm: layer_norm,
        head: dense(3),
        output: [3],
    }
}

network! {
    /// Input width and code size are both parameters; the code size has a default.
    pub struct Encoder<const IN: usize, const CODE: usize = 4> {
        input: [IN],
        fc: dense(8), tanh,
        code: dense(CODE),
    }
}

network! {
    /// A generic network nested in a generic network, passing its parameter on.
    pub struct Classifier<const FEATURES: usize> {
        input: [FEATURES],
        encoder: Encoder<FEATURES, 5> => [5],
        bn: batch_norm,
        down: residual(projection) { dense(7), relu },
        join: parallel(add) { branch { dense(FEATURES) } branch { dense(FEATURES), tanh } },
        head: dense(2),
    }
}

fn inputs<const N: usize>(batch: usize) -> Batch<f64, N> {
    Batch::from_fn(batch, |i, j| ((i * 5 + j * 3) as f64 * 0.613).sin() * 1.3)
}

fn names<T: Float, N: Params<T>>(net: &N) -> Vec<(String, usize)> {
    let mut out = Vec::new();
    net.visit_params(&ParamPath::ROOT, &mut |p| out.push((p.name.to_string(), p.value.len())));
    out
}

#[test]
fn each_instantiation_has_its_own_shapes_and_counts() {
    let dense = |i: usize, o: usize| i * o + o;
    for (count, layers) in
        [(Mlp::<4>::PARAM_COUNT, Mlp::<4>::LAYERS), (Mlp::<9>::PARAM_COUNT, Mlp::<9>::LAYERS)]
    {
        let h = layers[0].output_shape[0];
        assert_eq!(count, dense(6, h) + 2 * dense(h, h) + 2 * h + dense(h, 3));
        assert_eq!(layers.iter().map(|l| l.params).sum::<usize>(), count);
        let norm = layers.iter().find(|l| l.name == "norm").unwrap();
        assert_eq!((norm.input_shape, norm.output_shape), (&[h][..], &[h][..]));
    }
    assert_eq!(Mlp::<4>::LAYERS[0].output_shape, &[4]);
    assert_eq!(Mlp::<9>::LAYERS[0].output_shape, &[9]);
    assert_eq!(<Mlp<9, f64> as Params<f64>>::PARAM_COUNT, Mlp::<9>::PARAM_COUNT);
    // The default size parameter.
    assert_eq!(Encoder::<3>::OUTPUT_SIZE, 4);
    assert_eq!(Encoder::<3, 2>::OUTPUT_SIZE, 2);
    assert_eq!(Encoder::<3>::PARAM_COUNT, dense(3, 8) + dense(8, 4));
    // The aliases take the parameter their size is.
    let x: EncoderInput<3> = Batch::zeros(2);
    let y: EncoderOutput<4> = Encoder::<3>::new(0).forward(&x);
    assert_eq!(y.shape(), (4, 2));
}

#[test]
fn summaries_name_the_instantiation() {
    let summary = Mlp::<4>::summary();
    assert!(summary.starts_with("Network: Mlp<4>"), "{summary}");
    assert!(summary.contains("dense(6 -> HIDDEN)"), "{summary}");
    let dot = Classifier::<6>::to_dot();
    assert!(dot.contains("Classifier<6>"), "{dot}");
}

#[test]
fn parameters_nest_under_the_layer_names() {
    let net = Classifier::<6>::new(1);
    let names = names::<f32, _>(&net);
    let expected = [
        ("encoder.fc.weight", 8 * 6),
        ("encoder.fc.bias", 8),
        ("encoder.code.weight", 5 * 8),
        ("encoder.code.bias", 5),
        ("bn.weight", 5),
        ("bn.bias", 5),
        ("down.body.0.weight", 7 * 5),
        ("down.body.0.bias", 7),
        ("down.projection.weight", 7 * 5),
        ("down.projection.bias", 7),
        ("join.0.0.weight", 6 * 7),
        ("join.0.0.bias", 6),
        ("join.1.0.weight", 6 * 7),
        ("join.1.0.bias", 6),
        ("head.weight", 2 * 6),
        ("head.bias", 2),
    ];
    let expected: Vec<(String, usize)> = expected.iter().map(|(n, c)| (n.to_string(), *c)).collect();
    assert_eq!(names, expected);
    assert_eq!(names.iter().map(|(_, c)| c).sum::<usize>(), Classifier::<6>::PARAM_COUNT);
}

#[test]
fn gradients_match_finite_differences() {
    let mut mlp = Mlp::<5, f64>::init(Init::Glorot, 3);
    let worst = check_network(&mut mlp, &SoftmaxCrossEntropy, &inputs(6), &vec![0, 1, 2, 1, 0, 2], 1e-6);
    assert!(worst < 1e-6, "{worst}");
    let mut net = Classifier::<4, f64>::init(Init::Glorot, 4);
    let worst = check_network(&mut net, &SoftmaxCrossEntropy, &inputs(5), &vec![0, 1, 1, 0, 1], 1e-6);
    assert!(worst < 1e-6, "{worst}");
}

#[test]
fn saved_weights_load_into_the_same_instantiation_only() {
    let net = Mlp::<5>::new(7);
    let bytes = persist::to_bytes(&net).unwrap();
    let mut same = Mlp::<5>::zeros();
    persist::load_from_bytes(&mut same, &bytes).unwrap();
    let x = Batch::<f32, 6>::from_fn(3, |i, j| (i + 2 * j) as f32 * 0.1);
    assert_eq!(net.forward(&x), same.forward(&x));
    // Another width is another network: every mismatched tensor is named, nothing loads.
    let mut other = Mlp::<6>::zeros();
    let err = persist::load_from_bytes(&mut other, &bytes).unwrap_err();
    let message = err.to_string();
    assert!(
        message.contains("fc1.weight") && message.contains("[6, 6]") && message.contains("[5, 6]"),
        "{message}"
    );
    assert!(persist::to_bytes(&other).unwrap() == persist::to_bytes(&Mlp::<6>::zeros()).unwrap());
}

#[test]
fn an_instantiation_trains() {
    // Two well-separated classes in 6 features.
    let n = 64;
    let x = Batch::<f32, 6>::from_fn(n, |i, j| {
        let class = (j % 2) as f32;
        (class * 2.0 - 1.0) + ((i * 7 + j * 13) as f32 * 0.37).sin() * 0.4
    });
    let data = Dataset::new(x, (0..n).map(|j| j % 2).collect()).unwrap();
    let mut net = Classifier::<6>::new(3);
    let before = evaluate(&net, &SoftmaxCrossEntropy, &data, 16).unwrap();
    let history = Trainer::new(Adam::new(0.01))
        .epochs(20)
        .batch_size(16)
        .verbose(false)
        .fit(&mut net, &SoftmaxCrossEntropy, &data, None)
        .unwrap();
    let after = history.last().unwrap();
    assert!(after.train.loss < before.loss / 4.0, "{} -> {}", before.loss, after.train.loss);
    assert_eq!(evaluate(&net, &SoftmaxCrossEntropy, &data, 16).unwrap().accuracy, Some(1.0));
}
