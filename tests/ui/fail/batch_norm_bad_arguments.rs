// `momentum` lies in [0, 1] (both ends allowed, as in PyTorch); `eps` is positive.
use staticnet::prelude::*;

network! {
    struct Cnn {
        input: [2, 4, 4],
        batch_norm(momentum = 2.0),
        batch_norm(momentum = -0.1),
        batch_norm(momentum = 1.01, eps = 1e-3),
        batch_norm(eps = 0),
        batch_norm(eps = -1e-5),
        batch_norm(momentum = fast),
    }
}

fn main() {}
