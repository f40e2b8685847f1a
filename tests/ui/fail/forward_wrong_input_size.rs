// The input size is part of the type: a batch of the wrong size, or another
// network's input, does not type-check.
use staticnet::prelude::*;

network! {
    struct Mlp {
        input: [784],
        fc1: dense(128), relu,
        head: dense(10),
    }
}

network! {
    struct Small {
        input: [100],
        head: dense(10),
    }
}

fn main() {
    let net = Mlp::new(1);
    let _ = net.forward(&Batch::<f32, 100>::zeros(1));
    let _ = net.forward(&SmallInput::zeros(1));
}
