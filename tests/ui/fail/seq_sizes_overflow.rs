// Sizes of sequence layers past `usize` are errors, never a panic or a wrap.
use staticnet::prelude::*;

network! {
    struct Steps {
        input: [18446744073709551615, 1],
        dense(2),
    }
}

network! {
    struct Hidden {
        input: [2, 3],
        lstm(18446744073709551615),
    }
}

network! {
    struct Padding {
        input: [2, 3],
        conv1d(2, kernel = 3, padding = 18446744073709551615),
    }
}

network! {
    struct Attention {
        input: [4, 4294967296],
        attention(heads = 1),
    }
}

fn main() {}
