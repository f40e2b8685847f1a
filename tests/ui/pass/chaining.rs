// `then` chains networks whose sizes fit; the chain is itself a network.
use staticnet::prelude::*;

network! {
    struct Encoder {
        input: [6],
        fc: dense(4), relu,
    }
}

network! {
    struct Middle {
        input: [4],
        dense(4), tanh,
    }
}

network! {
    struct Head {
        input: [4],
        out: dense(3),
        output: [3],
    }
}

fn run<N: Network<f32, 6, 3>>(net: &N, x: &Batch<f32, 6>) -> Batch<f32, 3> {
    net.forward(x)
}

fn main() {
    let (enc, mid, head) = (Encoder::new(1), Middle::new(2), Head::new(3));
    let x = EncoderInput::from_fn(5, |i, j| i as f32 * 0.1 - j as f32 * 0.2);
    let expected = head.forward(&mid.forward(&enc.forward(&x)));

    let mut chain = enc.clone().then(mid.clone()).then(head.clone());
    let y = run(&chain, &x);
    assert_eq!(y, expected);

    // Parameters are named like an nn.Sequential of the parts.
    assert_eq!(
        <Chain<Chain<Encoder, Middle, 4>, Head, 4> as Params<f32>>::PARAM_COUNT,
        Encoder::<f32>::PARAM_COUNT + Middle::<f32>::PARAM_COUNT + Head::<f32>::PARAM_COUNT
    );
    let mut names = Vec::new();
    chain.visit_params(&ParamPath::ROOT, &mut |p| names.push(p.name.to_string()));
    assert_eq!(
        names,
        ["0.0.fc.weight", "0.0.fc.bias", "0.1.0.weight", "0.1.0.bias", "1.out.weight", "1.out.bias"]
    );

    // Training through the chain: forward_train matches forward, and backward
    // fills the gradients of every part and of the input.
    let mut trace = Default::default();
    let out = chain.forward_train(&x, &mut trace).clone();
    assert_eq!(out, expected);
    let mut grads = chain.zero_gradients();
    let d_out = Batch::<f32, 3>::from_element(5, 1.0);
    let mut d_x = Batch::<f32, 6>::zeros(0);
    chain.backward(&x, &mut trace, &d_out, &mut grads, Some(&mut d_x));
    assert_eq!((d_x.nrows(), d_x.ncols()), (6, 5));
    // Bias gradient of the head is the sum of d_out over the batch.
    assert_eq!(grads.1.out.bias.as_ref().unwrap().as_slice(), &[5.0, 5.0, 5.0]);

    // f64 chains pass a finite-difference gradient check.
    let mut chain = Encoder::<f64>::init(Init::Glorot, 4).then(Head::<f64>::init(Init::Glorot, 5));
    let x = Batch::<f64, 6>::from_fn(3, |i, j| 0.2 * i as f64 - 0.3 * j as f64 + 0.05);
    let target = Batch::<f64, 3>::from_fn(3, |i, j| (i * j) as f64 * 0.1);
    staticnet::gradcheck::check_network(&mut chain, &MeanSquaredError, &x, &target, 1e-6);
}
