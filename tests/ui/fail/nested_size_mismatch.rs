// A nested network's sizes live in its own `network!`: the compiler checks that
// it takes what comes in and gives what `=>` declares.
use staticnet::prelude::*;

network! {
    struct Encoder { input: [6], dense(4) }
}

network! {
    struct Outer { input: [5], encoder: Encoder => [4], dense(2) }
}

fn main() {}
