// `=> [C, H, W]` after convolutions, pools, shape-keeping layers and `flatten`,
// and `output:` on a rank-3 network.
use staticnet::prelude::*;

network! {
    struct Cnn {
        input: [1, 28, 28],
        conv1: conv2d(16, kernel = 3) => [16, 28, 28],
        relu => [16, 26],
        max_pool(2) => [16, 14, 14],
        conv2d(32, kernel = 3, padding = same), batch_norm => [32, 12, 12],
        flatten => [32, 13, 13],
        dense(10),
    }
}

network! {
    struct FeatureMap {
        input: [3, 8, 8],
        conv2d(8, kernel = 3, stride = 2),
        output: [8, 4, 4],
    }
}

fn main() {}
