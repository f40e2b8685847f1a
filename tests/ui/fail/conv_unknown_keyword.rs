// Unknown keywords name the layer and list the ones it takes; positional extras are refused.
use staticnet::prelude::*;

network! {
    struct Cnn {
        input: [4, 8, 8],
        conv2d(8, kernel = 3, groups = 2),
        conv2d(8, kernal = 3),
        max_pool(2, padding = 1),
        avg_pool(2, strides = 2),
        batch_norm(affine = false),
        batch_norm(eps = 1e-3, eps = 1e-4),
        layer_norm(momentum = 0.1),
        global_avg_pool(2),
        flatten(1),
    }
}

network! {
    struct Positional {
        input: [4, 8, 8],
        conv2d(8, 3),
        max_pool(2, 2),
        batch_norm(0.1),
        layer_norm(1e-5),
    }
}

fn main() {}
