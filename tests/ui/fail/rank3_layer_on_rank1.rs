// Convolutions, pools and `flatten` need [C, H, W]; a rank-1 shape is an error.
use staticnet::prelude::*;

network! {
    struct ConvOnInput {
        input: [784],
        conv2d(16, kernel = 3),
    }
}

network! {
    struct MaxPoolAfterDense {
        input: [16],
        fc: dense(64), relu,
        max_pool(2),
    }
}

network! {
    struct AvgPoolOnInput {
        input: [64],
        avg_pool(2, stride = 2),
    }
}

network! {
    struct GlobalPoolTwice {
        input: [8, 4, 4],
        global_avg_pool,
        global_avg_pool,
    }
}

network! {
    struct FlattenTwice {
        input: [2, 3, 3],
        flatten,
        flatten,
        dense(2),
    }
}

network! {
    struct ConvAfterFlatten {
        input: [1, 8, 8],
        flatten => [64],
        c: conv2d(1 -> 4, kernel = 3),
    }
}

fn main() {}
