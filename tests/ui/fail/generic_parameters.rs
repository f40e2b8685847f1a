// A network is generic over sizes only: `const NAME: usize`, used by name.
use staticnet::prelude::*;

network! {
    struct ScalarParam<T: Float> { input: [4], dense(2) }
}

network! {
    struct NotUsize<const N: u32> { input: [4], dense(2) }
}

network! {
    struct Undeclared<const N: usize> { input: [M], dense(N) }
}

network! {
    struct Shadowing<const T: usize> { input: [T], dense(2) }
}

fn main() {}
