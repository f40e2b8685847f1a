// A malformed `output:` followed by a layer is misplaced: reported on the entry, not at the macro call.
use staticnet::prelude::*;

network! {
    struct N { input: [4], output: (3), dense(3) }
}

fn main() {}
