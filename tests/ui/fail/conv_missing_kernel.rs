use staticnet::prelude::*;

network! {
    struct Cnn {
        input: [1, 8, 8],
        conv2d(16),
        conv2d(16 -> 8, stride = 2),
        c: conv2d(8, padding = same, bias = false),
    }
}

fn main() {}
