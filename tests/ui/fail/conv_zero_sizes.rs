// Kernels, strides, dilations and pooling windows are at least 1; padding may be 0.
use staticnet::prelude::*;

network! {
    struct Zeros {
        input: [1, 8, 8],
        conv2d(4, kernel = 0),
        conv2d(4, kernel = [3, 0]),
        conv2d(4, kernel = 3, stride = 0),
        conv2d(4, kernel = 3, dilation = [0, 1]),
        conv2d(0, kernel = 3),
        conv2d(0 -> 4, kernel = 3),
        max_pool(0),
        avg_pool(2, stride = [1, 0]),
    }
}

fn main() {}
