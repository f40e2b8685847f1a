use staticnet::prelude::*;

network! {
    struct Mlp {
        input: [4],
        dense(3, bias = true, bias = false),
    }
}

fn main() {}
