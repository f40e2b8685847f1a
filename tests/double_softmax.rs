//! A network that ends in `softmax` (or `sigmoid`) with a loss that applies
//! the same activation itself is refused with `Error::ActivationTwice`, never
//! trained silently; `predict` does not apply softmax to outputs that already
//! are probabilities; `CrossEntropyOnProbabilities` trains such a network.

use staticnet::prelude::*;
use std::path::Path;

network! {
    struct Probabilities { input: [4], dense(16), relu, dense(3), softmax }
}

network! {
    struct Logits { input: [4], dense(16), relu, dense(3) }
}

network! {
    struct Sigmoids { input: [4], dense(3), sigmoid }
}

fn iris() -> Dataset<f32, 4, Labels> {
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("data/iris.csv")).unwrap();
    let (mut features, mut labels) = (Vec::new(), Vec::new());
    for line in text.lines().skip(1) {
        let fields: Vec<&str> = line.split(',').collect();
        features.extend(fields[..4].iter().map(|f| f.parse::<f32>().unwrap()));
        labels.push(fields[4].trim().parse::<usize>().unwrap());
    }
    Dataset::new(Batch::from_column_slice(&features), labels).unwrap()
}

fn weights<N: Params<f32>>(net: &N) -> Vec<f32> {
    let mut all = Vec::new();
    net.visit_params(&ParamPath::ROOT, &mut |p| all.extend_from_slice(p.value));
    all
}

#[test]
fn softmax_then_softmax_cross_entropy_is_refused_with_the_fix() {
    assert_eq!(<Probabilities as Network<f32, 4, 3>>::FINAL_ACTIVATION, Some("softmax"));
    assert_eq!(<Logits as Network<f32, 4, 3>>::FINAL_ACTIVATION, None);
    let data = iris();
    let mut net = Probabilities::new(1);
    let before = weights(&net);
    let err = Trainer::new(Adam::new(0.01))
        .epochs(1)
        .verbose(false)
        .fit(&mut net, &SoftmaxCrossEntropy, &data, None)
        .unwrap_err();
    assert!(
        matches!(err, Error::ActivationTwice { activation: "softmax", ref loss } if loss == "SoftmaxCrossEntropy")
    );
    let message = err.to_string();
    assert!(message.contains("remove the final `softmax`"), "{message}");
    assert!(message.contains("CrossEntropyOnProbabilities"), "{message}");
    assert_eq!(weights(&net), before, "nothing was trained");
    let err = evaluate(&net, &SoftmaxCrossEntropy, &data, 32).unwrap_err();
    assert!(matches!(err, Error::ActivationTwice { activation: "softmax", .. }), "{err}");
}

#[test]
fn sigmoid_then_binary_cross_entropy_is_refused() {
    let x = Batch::<f32, 4>::zeros(2);
    let data = Dataset::new(x, Batch::<f32, 3>::zeros(2)).unwrap();
    let err = Trainer::new(Sgd::new(0.1))
        .verbose(false)
        .fit(&mut Sigmoids::new(0), &BinaryCrossEntropy, &data, None)
        .unwrap_err();
    assert!(matches!(err, Error::ActivationTwice { activation: "sigmoid", .. }), "{err}");
    assert!(err.to_string().contains("remove the final `sigmoid`"), "{err}");
}

#[test]
fn predict_does_not_apply_softmax_twice() {
    let net = Probabilities::new(2);
    let x = Batch::<f32, 4>::from_fn(5, |i, j| (i + j) as f32 * 0.3 - 1.0);
    let (out, predicted) = (net.forward(&x), net.predict(&x));
    assert_eq!(predicted, out);
    for p in predicted.column_iter() {
        assert!((p.sum() - 1.0).abs() < 1e-5);
    }
    // A network of logits still gets the softmax of its outputs.
    let logits = Logits::new(2);
    let p = logits.predict(&x);
    assert_ne!(p, logits.forward(&x));
    assert!((p.column(0).sum() - 1.0).abs() < 1e-5);
}

#[test]
fn a_softmax_network_trains_with_cross_entropy_on_probabilities() {
    let data = iris();
    let mut net = Probabilities::new(3);
    let before = evaluate(&net, &CrossEntropyOnProbabilities, &data, 64).unwrap();
    Trainer::new(Adam::new(0.01))
        .epochs(60)
        .batch_size(16)
        .seed(1)
        .verbose(false)
        .fit(&mut net, &CrossEntropyOnProbabilities, &data, None)
        .unwrap();
    let after = evaluate(&net, &CrossEntropyOnProbabilities, &data, 64).unwrap();
    assert!(after.loss < before.loss * 0.3, "{} -> {}", before.loss, after.loss);
    assert!(after.accuracy.unwrap() > 0.9, "{:?}", after.accuracy);
}
