//! Every kind of layer `network!` accepts, exported to ONNX and run in tract
//! (a pure-Rust ONNX runtime): the outputs match staticnet's inference pass to
//! 1e-5 of the output's scale in f32, on random inputs and on MNIST digits.

#[path = "onnx/plain.rs"]
mod plain;
#[path = "onnx/sequences.rs"]
mod sequences;
#[path = "onnx/support.rs"]
mod support;
