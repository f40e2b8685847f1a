// A generic function asking for a network of given sizes rejects one of other sizes.
use staticnet::prelude::*;

network! {
    struct Mlp {
        input: [4],
        dense(2),
    }
}

fn classify<N: Network<f32, 784, 10>>(_net: &N) {}

fn main() {
    classify(&Mlp::new(1));
}
