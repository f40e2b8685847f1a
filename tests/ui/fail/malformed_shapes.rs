use staticnet::prelude::*;

network! {
    struct Mlp {
        input: 784,
        dense(8) => 8,
        dense(4) => [],
        dense(2) => [two],
        output: [2, ],
    }
}

fn main() {}
