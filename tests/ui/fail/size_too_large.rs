use staticnet::prelude::*;

network! {
    struct HugeInput {
        input: [99999999999999999999999],
        dense(2),
    }
}

network! {
    struct HugeLayer {
        input: [4],
        dense(99999999999999999999999),
        dense(4 -> 99999999999999999999999),
    }
}

fn main() {}
