use staticnet::prelude::*;

network! {
    struct Mlp {
        input: [4],,
        dense(8), relu,,
        dense(2),
    }
}

fn main() {}
