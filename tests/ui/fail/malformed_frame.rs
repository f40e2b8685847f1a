use staticnet::prelude::*;

network! {
    struct A { input: [4], dense(2) }
    struct B { input: [4], dense(2) }
}

network! {
    struct NoBody;
}

network! {}

fn main() {}
