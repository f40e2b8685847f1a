use staticnet::prelude::*;

network! {
    struct Mlp {
        dense(8), relu,
        dense(2),
    }
}

fn main() {}
