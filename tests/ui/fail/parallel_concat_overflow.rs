// Branch widths whose concatenation overflows usize are a clean error, not a panic in the macro.
use staticnet::prelude::*;

network! {
    struct HugeConcat {
        input: [18446744073709551615],
        cat: parallel(concat) { branch { identity } branch { identity } },
    }
}

fn main() {}
