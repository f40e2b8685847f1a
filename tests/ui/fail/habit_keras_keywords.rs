// Keras' and PyTorch's keyword names: each error says what `network!` writes.
use staticnet::prelude::*;

network! {
    struct KerasConv {
        input: [1, 28, 28],
        conv2d(32, kernel_size = 3),
        conv2d(32, kernel = 3, strides = 2),
        max_pool(pool_size = 2),
        flatten,
        dense(units = 128),
    }
}

fn main() {}
