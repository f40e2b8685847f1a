// An entry that fails to parse stays as a placeholder of unknown shape, so
// each network reports only its parse error: no spurious shape mismatch
// downstream of it.
use staticnet::prelude::*;

network! {
    struct A { input: [4], dense(8) junk, dense(8 -> 2) }
}

network! {
    struct B { input: [4], fc1: dense(8 ->), fc2: dense(8 -> 2), output: [2] }
}

network! {
    struct C { input: [4], dense(8), relu, dense(3) => [3] extra, output: [3] }
}

network! {
    struct D { input: [4], dense(8), output: [2] junk }
}

fn main() {}
