use staticnet::prelude::*;

network! {
    pub enum Mlp {
        input: [4],
        dense(2),
    }
}

network! {
    fn mlp() {}
}

fn main() {}
