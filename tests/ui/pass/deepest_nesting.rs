// Blocks nested to the limit (32 levels; a `parallel` block is two) compile and run.
use staticnet::prelude::*;

network! {
    struct Deep {
        input: [4],
        residual { residual { residual { residual { residual { residual { residual { residual { residual { residual { residual { residual { residual { residual { residual { residual { residual { residual { residual { residual { residual { residual { residual { residual { residual { residual { residual { residual { residual { residual { residual { residual { dense(4), relu } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } },
    }
}

network! {
    struct Wide {
        input: [4],
        parallel(add) { branch { parallel(add) { branch { parallel(add) { branch { parallel(add) { branch { parallel(add) { branch { parallel(add) { branch { parallel(add) { branch { parallel(add) { branch { parallel(add) { branch { parallel(add) { branch { parallel(add) { branch { parallel(add) { branch { parallel(add) { branch { parallel(add) { branch { parallel(add) { branch { parallel(add) { branch { dense(4) } branch { relu } } } branch { relu } } } branch { relu } } } branch { relu } } } branch { relu } } } branch { relu } } } branch { relu } } } branch { relu } } } branch { relu } } } branch { relu } } } branch { relu } } } branch { relu } } } branch { relu } } } branch { relu } } } branch { relu } } } branch { relu } },
    }
}

fn main() {
    assert_eq!(Deep::PARAM_COUNT, 4 * 4 + 4);
    assert_eq!(Wide::PARAM_COUNT, 4 * 4 + 4);
    let x = Batch::<f32, 4>::from_element(2, 0.5);
    assert!(Deep::<f32>::new(1).forward(&x).iter().all(|v| v.is_finite()));
    assert!(Wide::<f32>::new(1).forward(&x).iter().all(|v| v.is_finite()));
}
