use staticnet::prelude::*;

network! {
    struct OnlyShapes {
        input: [4],
        output: [4],
    }
}

network! {
    struct Empty {}
}

fn main() {}
