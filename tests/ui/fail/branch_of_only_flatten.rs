// `flatten` emits no code, so a branch of nothing else is refused (it once panicked the expansion).
use staticnet::prelude::*;

network! {
    struct N { input: [2, 3, 4], parallel(concat) { branch { flatten } branch { flatten } } }
}

fn main() {}
