// Sizes that overflow usize are clean errors, not panics in the macro.
use staticnet::prelude::*;

network! {
    struct DilatedKernel {
        input: [1, 8, 8],
        conv2d(2, kernel = 3, dilation = 18446744073709551615),
    }
}

network! {
    struct HugePadding {
        input: [1, 8, 8],
        conv2d(2, kernel = 3, padding = 18446744073709551615),
    }
}

network! {
    struct HugeSameKernel {
        input: [1, 8, 8],
        conv2d(2, kernel = 18446744073709551615, padding = same),
    }
}

network! {
    struct HugeOutput {
        input: [1, 8, 8],
        conv2d(18446744073709551615, kernel = 1),
    }
}

network! {
    struct TooLarge {
        input: [1, 8, 8],
        conv2d(2, kernel = 18446744073709551616),
    }
}

fn main() {}
