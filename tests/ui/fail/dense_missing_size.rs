use staticnet::prelude::*;

network! {
    struct Mlp {
        input: [4],
        dense,
        dense(),
        dense(bias = false),
    }
}

fn main() {}
