// The nested network takes [6] but gets [8]: the error names its real shapes,
// on its entry.
use staticnet::prelude::*;

network! {
    struct Encoder { input: [6], dense(4), relu }
}

network! {
    struct Outer {
        input: [8],
        encoder: Encoder => [4],
        dense(2),
    }
}

fn main() {}
