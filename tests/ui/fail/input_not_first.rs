use staticnet::prelude::*;

network! {
    struct Mlp {
        dense(8), relu,
        input: [4],
        dense(2),
    }
}

fn main() {}
