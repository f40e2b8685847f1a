use staticnet::prelude::*;

network! {
    struct ZeroInput {
        input: [0],
        dense(2),
    }
}

network! {
    struct ZeroAssertionAndOutput {
        input: [4],
        dense(2) => [0],
        output: [0],
    }
}

fn main() {}
