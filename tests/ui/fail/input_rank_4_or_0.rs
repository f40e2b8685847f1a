// An input is `[features]`, `[steps, features]` or `[channels, height, width]`.
use staticnet::prelude::*;

network! {
    struct Rank4 {
        input: [8, 1, 28, 28],
        conv2d(4, kernel = 3),
    }
}

network! {
    struct Rank0 {
        input: [],
        dense(10),
    }
}

fn main() {}
