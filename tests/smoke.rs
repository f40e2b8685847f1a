use staticnet::prelude::*;

network! {
    /// A test network.
    pub struct Mlp {
        input: [784],
        fc1: dense(256), relu,
        fc2: dense(128), relu,
        head: dense(10),
    }
}

#[test]
fn smoke() {
    let net = Mlp::new(1);
    let x = MlpInput::zeros(3);
    let y = net.forward(&x);
    assert_eq!(y.ncols(), 3);
}
