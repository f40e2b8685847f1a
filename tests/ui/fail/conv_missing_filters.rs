use staticnet::prelude::*;

network! {
    struct Cnn {
        input: [1, 8, 8],
        conv2d(kernel = 3),
        conv2d(kernel = 3, stride = 2, padding = 1),
        conv2d(),
        conv2d,
    }
}

fn main() {}
