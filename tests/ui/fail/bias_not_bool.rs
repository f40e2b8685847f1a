use staticnet::prelude::*;

network! {
    struct Mlp {
        input: [4],
        dense(3, bias = 1),
        dense(3, bias = no),
        dense(3, bias = "false"),
    }
}

fn main() {}
