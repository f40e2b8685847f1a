//! Weights stored as F16, BF16, F64 or F32 load into f32 and f64 networks, converted
//! (`persist::load_into`), and `persist::save_as` stores a network in another dtype.
//! The fixtures are a PyTorch model's `state_dict` in each dtype, with the outputs
//! PyTorch computes from the stored weights (`tools/gen_compact_fixtures.py`).

use staticnet::persist::{self, Dtype, Matching};
use staticnet::prelude::*;
use std::path::{Path, PathBuf};

network! { struct Mlp { input: [4], fc1: dense(8), relu, fc2: dense(3), output: [3] } }
// The fixture's inputs `x` [5, 4] and outputs `y_*` [5, 3], read as bias-free dense weights.
network! { struct Xs { input: [4], x: dense(5, bias = false) } }
network! { struct Ys { input: [3], y: dense(5, bias = false) } }

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/compact").join(name)
}

/// The five inputs, one per column.
fn inputs<T: Float>() -> Batch<T, 4> {
    let mut xs = Xs::<T>::zeros();
    let report =
        Matching::new().rename_map([("x", "x.weight")]).load(&mut xs, fixture("io.safetensors")).unwrap();
    assert_eq!(report.loaded, ["x.weight"]);
    Batch::from_column_slice(xs.x.weight.as_slice())
}

/// PyTorch's outputs for the weights stored as `dtype`, row-major [5, 3].
fn outputs(dtype: &str) -> Vec<f64> {
    let mut ys = Ys::<f64>::zeros();
    let name = format!("y_{dtype}");
    Matching::new()
        .rename_map([(name.as_str(), "y.weight")])
        .load(&mut ys, fixture("io.safetensors"))
        .unwrap();
    ys.y.weight.as_slice().to_vec()
}

fn max_error<T: Float>(net: &Mlp<T>, expected: &[f64]) -> f64 {
    let y = net.forward(&inputs::<T>());
    y.as_slice().iter().zip(expected).map(|(a, b)| (a.as_f64() - b).abs()).fold(0.0, f64::max)
}

#[test]
fn pytorch_files_in_every_float_dtype_load_into_f32_and_f64_networks() {
    for dtype in ["f32", "f16", "bf16", "f64"] {
        let path = fixture(&format!("mlp_{dtype}.safetensors"));
        let expected = outputs(dtype);
        let wide = Mlp::<f64>::load(&path).unwrap();
        let narrow = Mlp::<f32>::load(&path).unwrap();
        // F16, BF16 and F32 widen exactly to f64: the same outputs as PyTorch's float64 pass.
        let wide_tolerance = if dtype == "f64" { 1e-14 } else { 1e-6 };
        assert!(
            max_error(&wide, &expected) < wide_tolerance,
            "{dtype} into f64: {}",
            max_error(&wide, &expected)
        );
        assert!(max_error(&narrow, &expected) < 1e-5, "{dtype} into f32: {}", max_error(&narrow, &expected));
    }
    // Half precision weights are not the f32 ones: the outputs differ, so the test above could fail.
    let (f32_out, bf16_out) = (outputs("f32"), outputs("bf16"));
    assert!(f32_out.iter().zip(&bf16_out).any(|(a, b)| (a - b).abs() > 1e-4));
}

/// The size of a safetensors file's data section (after the 8-byte length and the header).
fn data_len(bytes: &[u8]) -> usize {
    bytes.len() - 8 - u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize
}

#[test]
fn save_as_rounds_to_the_dtype_and_loads_back() {
    let net = Mlp::<f32>::init(Init::Auto, 7);
    let full = persist::to_bytes(&net).unwrap();
    for (dtype, bound) in
        [(Dtype::BF16, 2f32.powi(-8)), (Dtype::F16, 2f32.powi(-11)), (Dtype::F64, 0.0), (Dtype::F32, 0.0)]
    {
        let bytes = persist::to_bytes_as(&net, dtype).unwrap();
        let mut back = Mlp::<f32>::zeros();
        persist::load_from_bytes(&mut back, &bytes).unwrap();
        let (a, b) = (net.fc1.weight.as_slice(), back.fc1.weight.as_slice());
        for (a, b) in a.iter().zip(b) {
            assert!((a - b).abs() <= bound * a.abs(), "{dtype:?}: {a} became {b}");
        }
        if bound > 0.0 {
            assert_eq!(data_len(&bytes) * 2, data_len(&full), "{dtype:?}: half the bytes");
            assert!(a.iter().zip(b).any(|(a, b)| a != b), "{dtype:?} rounds");
        }
    }
    // The file on disk, in BF16, is what PyTorch reads: the dtype is in the header.
    let path = std::env::temp_dir().join(format!("staticnet-bf16-{}.safetensors", std::process::id()));
    persist::save_as(&net, &path, Dtype::BF16).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    let n = 8 + u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header = std::str::from_utf8(&bytes[8..n]).unwrap();
    assert_eq!(header.matches("\"BF16\"").count(), 4, "{header}");
    std::fs::remove_file(&path).ok();
}

#[test]
fn f64_networks_save_bf16_and_f32_networks_load_it() {
    let wide = Mlp::<f64>::init(Init::Auto, 3);
    let bytes = persist::to_bytes_as(&wide, Dtype::BF16).unwrap();
    let mut narrow = Mlp::<f32>::zeros();
    persist::load_from_bytes(&mut narrow, &bytes).unwrap();
    let (a, b) = (wide.fc2.weight.as_slice(), narrow.fc2.weight.as_slice());
    assert!(a.iter().zip(b).all(|(a, &b)| (a - f64::from(b)).abs() <= a.abs() / 256.0));
}
