// f32 by default, f64 on request; every initialisation; seeds are reproducible.
use staticnet::prelude::*;

network! {
    struct Mlp {
        input: [16],
        fc1: dense(32), relu,
        fc2: dense(32), tanh,
        head: dense(4),
    }
}

fn weights<T: Float, N: Params<T>>(net: &N) -> Vec<f64> {
    let mut all = Vec::new();
    net.visit_params(&ParamPath::ROOT, &mut |p| all.extend(p.value.iter().map(|v| v.as_f64())));
    all
}

fn main() {
    // `new` is f32.
    let net = Mlp::new(1);
    let _: &Mlp<f32> = &net;
    let out: MlpOutput<f32> = net.forward(&MlpInput::<f32>::from_element(2, 0.25));
    assert_eq!(out.ncols(), 2);

    // f64 with each initialisation.
    let glorot = Mlp::<f64>::init(Init::Glorot, 1);
    let he = Mlp::<f64>::init(Init::He, 1);
    let auto = Mlp::<f64>::init(Init::Auto, 1);
    let x = MlpInput::<f64>::from_fn(3, |i, j| (i as f64 - 8.0) / 8.0 + j as f64);
    let y: MlpOutput<f64> = glorot.forward(&x);
    assert_eq!((y.nrows(), y.ncols()), (4, 3));
    assert!(y.iter().all(|v| v.is_finite()));

    // Glorot uniform stays within ±sqrt(6 / (fan_in + fan_out)).
    let limit = (6.0f64 / (16.0 + 32.0)).sqrt();
    assert!(glorot.fc1.weight.iter().all(|w| w.abs() <= limit));
    assert!(glorot.fc1.weight.iter().any(|&w| w != 0.0));
    // Biases start at zero.
    assert!(glorot.fc1.bias.as_ref().unwrap().iter().all(|&b| b == 0.0));
    // Auto: He before relu (fc1), Glorot before tanh (fc2) and for the head.
    assert_eq!(auto.fc1.weight.as_slice(), he.fc1.weight.as_slice());
    assert_ne!(auto.fc1.weight.as_slice(), glorot.fc1.weight.as_slice());

    // Same seed, same weights; another seed, other weights.
    assert_eq!(weights(&Mlp::<f64>::init(Init::Glorot, 1)), weights(&glorot));
    assert_ne!(weights(&Mlp::<f64>::init(Init::Glorot, 2)), weights(&glorot));
    assert_eq!(weights(&Mlp::new(5)), weights(&Mlp::<f32>::init(Init::Auto, 5)));
    assert_eq!(weights(&glorot).len(), Mlp::<f64>::PARAM_COUNT);

    // zeros() in both precisions.
    assert!(weights(&Mlp::<f64>::zeros()).iter().all(|&w| w == 0.0));
    assert!(Mlp::<f32>::zeros().forward(&MlpInput::from_element(1, 1.0)).iter().all(|&v| v == 0.0));
}
