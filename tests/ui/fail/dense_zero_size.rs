use staticnet::prelude::*;

network! {
    struct Mlp {
        input: [4],
        dense(0),
        dense(0 -> 3),
        dense(4 -> 0),
    }
}

fn main() {}
