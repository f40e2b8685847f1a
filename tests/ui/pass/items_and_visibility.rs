// Doc comments and attributes carry over, visibility applies to every
// generated item, and several networks live side by side in one module.
#![deny(missing_docs)]
//! A crate that denies missing docs: the generated items must be documented.

/// Public, so `missing_docs` checks what `network!` generates for `Head`.
pub mod models {
    use staticnet::prelude::*;

    network! {
        /// A private-to-the-crate encoder.
        #[allow(dead_code)]
        #[must_use]
        pub(crate) struct Encoder {
            input: [8],
            fc: dense(4), tanh,
        }
    }

    network! {
        /// A public head.
        pub struct Head {
            input: [4],
            out: dense(2),
        }
    }

    /// A nested module.
    pub mod nested {
        use staticnet::prelude::*;

        network! {
            /// Visible to the parent module only.
            pub(super) struct Inner {
                input: [2],
                dense(1),
            }
        }

        network! {
            /// Visible to the parent module only.
            #[allow(dead_code)]
            pub(in crate::models) struct Unused {
                input: [2],
                dense(1),
            }
        }
    }

    pub(crate) fn inner_param_count() -> usize {
        nested::Inner::<f32>::PARAM_COUNT
    }
}

use models::{Encoder, EncoderInput, EncoderOutput, Head, HeadInput, HeadOutput};
use staticnet::prelude::*;

fn main() {
    // Aliases of each network, distinct from the other network's.
    let enc = Encoder::new(1);
    let hidden: EncoderOutput = enc.forward(&EncoderInput::from_element(3, 1.0));
    let _: &HeadInput = &hidden;
    let head = Head::new(2);
    let y: HeadOutput = head.forward(&hidden);
    assert_eq!((y.nrows(), y.ncols()), (2, 3));
    // tanh keeps the encoder's output in (-1, 1).
    assert!(hidden.iter().all(|v| v.abs() < 1.0));

    // The generated structs are ordinary types: Clone, Debug, Default buffers.
    let copy = enc.clone();
    assert_eq!(copy.fc.weight.as_slice(), enc.fc.weight.as_slice());
    let debug = format!("{head:?}");
    assert!(debug.contains("Head"), "{debug}");
    assert!(debug.contains("out"), "{debug}");
    let buffers = models::HeadBuffers::<f32>::default();
    assert_eq!(buffers.out.ncols(), 0);
    let _trace = models::EncoderTrace::<f32>::default();
    let grads: models::HeadGradients = head.zero_gradients();
    assert_eq!(grads.out.weight.as_slice(), &[0.0; 8]);

    assert_eq!(models::inner_param_count(), 3);
}
