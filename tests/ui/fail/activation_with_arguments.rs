use staticnet::prelude::*;

network! {
    struct Mlp {
        input: [4],
        dense(3), relu(2),
        sigmoid(0.5),
        tanh(x),
        softmax(dim = 0),
        gelu(approximate = true),
        identity(1),
    }
}

fn main() {}
