// Sizes are `k` or `[height, width]`: a list of another length is an error.
use staticnet::prelude::*;

network! {
    struct Cnn {
        input: [1, 8, 8],
        conv2d(4, kernel = [3, 3, 3]),
        conv2d(4, kernel = [3]),
        conv2d(4, kernel = []),
        conv2d(4, kernel = 3, stride = [1, 1, 1]),
        conv2d(4, kernel = 3, padding = [1, 1, 1, 1]),
        conv2d(4, kernel = 3, dilation = [2]),
        max_pool([2, 2, 2]),
        avg_pool(2, stride = [2]),
    }
}

fn main() {}
