// `conv2d(in -> out, ..)` states its input channels; they must match.
use staticnet::prelude::*;

network! {
    struct FromInput {
        input: [3, 32, 32],
        conv2d(1 -> 16, kernel = 3),
    }
}

network! {
    struct Chained {
        input: [1, 28, 28],
        conv1: conv2d(16, kernel = 3), relu,
        max_pool(2),
        conv2: conv2d(8 -> 32, kernel = 3),
        conv3: conv2d(32 -> 64, kernel = 3),
        conv2d(16 -> 8, kernel = 1),
    }
}

fn main() {}
