// The macro cannot see the sizes a layer of the user's own gives: its entry
// declares them after `=>`.
use staticnet::prelude::*;

network! {
    struct Net { input: [8], dense(16), act: MySilu, dense(2) }
}

fn main() {}
