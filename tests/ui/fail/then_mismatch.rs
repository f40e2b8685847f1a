// `then` only chains networks whose sizes fit: [4] -> [8] cannot feed [3] -> [2].
use staticnet::prelude::*;

network! {
    struct Encoder {
        input: [4],
        dense(8), relu,
    }
}

network! {
    struct Head {
        input: [3],
        dense(2),
    }
}

fn main() {
    let _ = Encoder::new(1).then(Head::new(2));
}
