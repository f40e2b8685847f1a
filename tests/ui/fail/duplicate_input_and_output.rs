use staticnet::prelude::*;

network! {
    struct TwoInputs {
        input: [4],
        input: [4],
        dense(2),
    }
}

network! {
    struct TwoOutputs {
        input: [4],
        dense(2),
        output: [2],
        output: [2],
    }
}

fn main() {}
