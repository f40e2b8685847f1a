// A pooling window must fit the (unpadded) input.
use staticnet::prelude::*;

network! {
    struct MaxTooLarge {
        input: [2, 4, 4],
        max_pool(5),
    }
}

network! {
    struct AvgTooTallAfterConv {
        input: [1, 6, 6],
        conv1: conv2d(2, kernel = 3),
        avg_pool([5, 2], stride = 1),
    }
}

network! {
    struct SecondPoolTooLarge {
        input: [3, 8, 8],
        max_pool(2), max_pool(2),
        pool: max_pool(3),
    }
}

fn main() {}
