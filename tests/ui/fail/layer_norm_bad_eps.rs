// `layer_norm(eps = ..)` needs eps > 0.
use staticnet::prelude::*;

network! {
    struct Cnn {
        input: [2, 4, 4],
        layer_norm(eps = 0),
        layer_norm(eps = 0.0),
        layer_norm(eps = -1e-5),
        flatten,
        ln: layer_norm(eps = small),
    }
}

fn main() {}
