// `dense` takes features: a [C, H, W] shape needs `flatten` (or
// `global_avg_pool`) first, wherever it comes from.
use staticnet::prelude::*;

network! {
    struct AfterConv {
        input: [1, 8, 8],
        conv1: conv2d(4, kernel = 3), relu,
        head: dense(10),
    }
}

network! {
    struct AfterPool {
        input: [1, 8, 8],
        conv2d(4, kernel = 3),
        max_pool(2), batch_norm, dropout(0.5),
        dense(36 -> 10),
    }
}

fn main() {}
