use staticnet::prelude::*;

network! {
    struct Mlp {
        input: [4],
        dropout,
        dropout(),
        dropout(p = 0.5),
    }
}

fn main() {}
