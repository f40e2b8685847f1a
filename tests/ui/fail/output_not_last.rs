use staticnet::prelude::*;

network! {
    struct Mlp {
        input: [4],
        dense(8),
        output: [2],
        relu,
        dense(2),
    }
}

fn main() {}
