use staticnet::prelude::*;

network! {
    struct Mlp {
        input: [4],
        fc: dense(8), relu,
        fc: dense(2),
    }
}

fn main() {}
