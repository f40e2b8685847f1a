use staticnet::prelude::*;

network! {
    struct Mlp {
        input: [4],
        dense(3, 4),
        dense(3 -> 2, 5),
        dense(2, 2 -> 1),
    }
}

fn main() {}
