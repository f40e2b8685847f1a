// Sizes that depend on a parameter are checked when the network is
// instantiated: a zero size, or more parameters than can be allocated.
use staticnet::prelude::*;

network! {
    pub struct Mlp<const HIDDEN: usize> { input: [784], fc1: dense(HIDDEN), relu, head: dense(10) }
}

fn main() {
    let _empty = Mlp::<0>::new(1);
    let _huge = Mlp::<500_000_000_000_000>::zeros();
}
