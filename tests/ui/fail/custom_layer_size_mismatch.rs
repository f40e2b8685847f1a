// A layer of the user's own takes and gives the sizes it implements
// `CustomLayer` for: the compiler checks them against the network's shapes,
// one error on the entry naming the layer and both shapes.
use staticnet::prelude::*;

/// Doubles every value: any size to the same size.
#[derive(Clone, Debug, Default)]
pub struct Double<T = f32>(std::marker::PhantomData<T>);
staticnet::no_params!(Double<T>);

impl<T: Float, const N: usize> CustomLayer<T, N, N> for Double<T> {
    type Workspace = ();
    fn forward(&self, x: &Batch<T, N>, y: &mut Batch<T, N>) {
        y.zip_apply(x, |y, x| *y = x + x);
    }
    fn backward(&self, _: &Batch<T, N>, _: &Batch<T, N>, dy: &Batch<T, N>, _: &mut (), _: &mut (),
                dx: Option<&mut Batch<T, N>>) {
        if let Some(dx) = dx {
            dx.zip_apply(dy, |dx, dy| *dx = dy + dy);
        }
    }
}

network! {
    struct Net { input: [8], dense(16), double: Double => [12], dense(2) }
}

fn main() {}
