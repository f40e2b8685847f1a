// Blocks nest at most 32 levels; the body that goes deeper is refused before anything recurses.
use staticnet::prelude::*;

network! {
    struct Deep {
        input: [4],
        residual { residual { residual { residual { residual { residual { residual { residual { residual { residual { residual { residual { residual { residual { residual { residual { residual { residual { residual { residual { residual { residual { residual { residual { residual { residual { residual { residual { residual { residual { residual { residual { residual { dense(4) } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } },
    }
}

fn main() {}
