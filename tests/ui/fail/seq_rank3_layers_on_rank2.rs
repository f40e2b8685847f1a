// Image layers on a sequence [steps, features]: each is one error naming the shape and what to use.
use staticnet::prelude::*;

network! {
    struct Conv2dOnRows {
        input: [28, 28],
        conv2d(8, kernel = 3),
    }
}

network! {
    struct BatchNormOnRows {
        input: [28, 28],
        bn: batch_norm,
    }
}

network! {
    struct TwoDimensionalPool {
        input: [28, 28],
        max_pool([2, 1]),
    }
}

network! {
    struct PoolTooLong {
        input: [4, 3],
        avg_pool(5),
    }
}

fn main() {}
