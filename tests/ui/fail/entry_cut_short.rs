// An entry or frame that ends too early is reported on its last token, not at the macro call.
use staticnet::prelude::*;

network! {
    struct Cut { input: [4], dense(3) => }
}

network! {
    pub struct
}

fn main() {}
