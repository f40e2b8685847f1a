//! Unit tests of name mapping and of the dtype conversions.

use super::matching::Matching;
use super::tensors::{decode, Tensor};
use half::{bf16, f16};
use safetensors::{Dtype, View};

#[test]
fn prefixes_are_stripped_repeatedly_then_renames_apply_in_order() {
    let m = Matching::pytorch()
        .rename(|n| n.strip_prefix("features.").map(|r| format!("conv.{r}")))
        .rename_map([("conv.0.weight", "c1.weight")]);
    assert_eq!(m.network_name("module._orig_mod.features.0.weight"), "c1.weight");
    assert_eq!(m.network_name("_orig_mod.module.fc.bias"), "fc.bias");
    assert_eq!(m.network_name("modules.fc.bias"), "modules.fc.bias");
    assert_eq!(Matching::new().network_name("module.fc.bias"), "module.fc.bias");
}

#[test]
fn half_types_convert_exactly_and_f64_rounds_to_nearest() {
    let values = [0.1f64, -2.5, 1e-3, 65504.0, 3.0e38];
    for (dtype, width) in [(Dtype::F16, 2), (Dtype::BF16, 2), (Dtype::F32, 4), (Dtype::F64, 8)] {
        let t = Tensor::floats_as(vec![values.len()], &values, dtype);
        assert_eq!(t.data().len(), values.len() * width);
        let mut wide = [0f64; 5];
        decode(dtype, &t.data(), &mut wide);
        let mut narrow = [0f32; 5];
        decode(dtype, &t.data(), &mut narrow);
        for ((&v, &w), &n) in values.iter().zip(&wide).zip(&narrow) {
            let expected = match dtype {
                Dtype::F16 => f16::from_f64(v).to_f64(),
                Dtype::BF16 => bf16::from_f64(v).to_f64(),
                Dtype::F32 => v as f32 as f64,
                _ => v,
            };
            assert_eq!(w.to_bits(), expected.to_bits(), "{dtype:?} {v}");
            assert_eq!(n.to_bits(), (expected as f32).to_bits(), "{dtype:?} {v} into f32");
        }
    }
    // 3e38 overflows F16 to infinity; 0.1 in BF16 keeps 8 significant bits.
    let t = Tensor::floats_as(vec![2], &[3.0e38f32, 0.1], Dtype::F16);
    let mut out = [0f32; 2];
    decode(Dtype::F16, &t.data(), &mut out);
    assert!(out[0].is_infinite());
    let t = Tensor::floats_as(vec![1], &[0.1f32], Dtype::BF16);
    decode(Dtype::BF16, &t.data(), &mut out[..1]);
    assert_eq!(out[0], 205.0 / 2048.0);
}
