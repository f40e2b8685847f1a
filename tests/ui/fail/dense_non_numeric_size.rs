use staticnet::prelude::*;

network! {
    struct Mlp {
        input: [4],
        dense(hidden),
        dense(1.5),
        dense(-3),
        dense("8"),
        dense(4 -> wide),
    }
}

fn main() {}
