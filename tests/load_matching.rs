//! Partial loading (`persist::load_matching`, `persist::Matching`): what fits is
//! loaded, the rest reported; PyTorch's wrapper prefixes are stripped; renames.

use staticnet::persist::{self, load_matching, Matching, SkipReason, Skipped};
use staticnet::prelude::*;
use std::path::{Path, PathBuf};

network! { struct Mlp { input: [4], fc1: dense(8), relu, fc2: dense(3), output: [3] } }
network! { struct Wider { input: [4], fc1: dense(8), relu, fc2: dense(5), output: [5] } }
network! { struct Renamed { input: [4], hidden: dense(8), relu, head: dense(3), extra: dense(3), output: [3] } }

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/compact").join(name)
}

fn weights<T: Float, N: Params<T>>(net: &N) -> Vec<f64> {
    let mut out = Vec::new();
    net.visit_params(&ParamPath::ROOT, &mut |p| out.extend(p.value.iter().map(|v| v.as_f64())));
    out
}

#[test]
fn pytorch_wrapper_prefixes_are_stripped() {
    let plain = Mlp::<f32>::load(fixture("mlp_f32.safetensors")).unwrap();
    for file in ["mlp_module.safetensors", "mlp_orig_mod.safetensors"] {
        // A strict load names every tensor as unexpected…
        assert!(Mlp::<f32>::load(fixture(file)).is_err());
        // …load_matching strips the prefix and loads everything.
        let mut net = Mlp::<f32>::zeros();
        let report = load_matching(&mut net, fixture(file)).unwrap();
        assert!(report.is_complete(), "{file}: {report}");
        assert_eq!(report.loaded, ["fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"]);
        assert_eq!(weights(&net), weights(&plain));
    }
}

#[test]
fn what_does_not_fit_is_skipped_or_missing_and_the_rest_loads() {
    let source = Mlp::<f32>::load(fixture("mlp_f32.safetensors")).unwrap();
    let mut net = Wider::<f32>::init(Init::Auto, 5);
    let before = net.fc2.weight.as_slice().to_vec();
    let report = load_matching(&mut net, fixture("mlp_module.safetensors")).unwrap();
    assert_eq!(report.loaded, ["fc1.weight", "fc1.bias"]);
    assert_eq!(report.missing, ["fc2.weight", "fc2.bias"]);
    assert_eq!(
        report.skipped,
        [
            Skipped {
                name: "module.fc2.bias".into(),
                reason: SkipReason::Shape { expected: vec![5], found: vec![3] }
            },
            Skipped {
                name: "module.fc2.weight".into(),
                reason: SkipReason::Shape { expected: vec![5, 8], found: vec![3, 8] }
            },
        ]
    );
    assert_eq!(net.fc1.weight.as_slice(), source.fc1.weight.as_slice());
    assert_eq!(net.fc2.weight.as_slice(), &before[..], "missing parameters are left as they were");
    assert_eq!(
        report.to_string(),
        "loaded 2 tensors, skipped 2, missing 2\n  \
         skipped `module.fc2.bias`: shape [3], the network's is [5]\n  \
         skipped `module.fc2.weight`: shape [3, 8], the network's is [5, 8]\n  \
         missing `fc2.weight` (left as it was)\n  \
         missing `fc2.bias` (left as it was)"
    );
}

#[test]
fn renames_by_closure_and_by_table() {
    let source = Mlp::<f64>::load(fixture("mlp_f16.safetensors")).unwrap();
    let mut net = Renamed::<f64>::zeros();
    let report = Matching::pytorch()
        .rename(|name| name.strip_prefix("fc1.").map(|rest| format!("hidden.{rest}")))
        .rename_map([("fc2.weight", "head.weight"), ("fc2.bias", "head.bias")])
        .load(&mut net, fixture("mlp_f16.safetensors"))
        .unwrap();
    assert_eq!(report.loaded, ["hidden.weight", "hidden.bias", "head.weight", "head.bias"]);
    assert_eq!(report.missing, ["extra.weight", "extra.bias"]);
    assert!(report.skipped.is_empty());
    assert_eq!(net.hidden.weight.as_slice(), source.fc1.weight.as_slice());
    assert_eq!(net.head.bias.as_deref().unwrap().as_slice(), source.fc2.bias.as_deref().unwrap().as_slice());
    // Unmatched names say what they were looked up as.
    let report = Matching::new()
        .rename_map([("fc1.bias", "nothing")])
        .load(&mut net, fixture("mlp_f32.safetensors"))
        .unwrap();
    assert!(report.skipped.contains(&Skipped {
        name: "fc1.bias".into(),
        reason: SkipReason::NoSuchParameter { mapped: "nothing".into() }
    }));
    assert!(report.to_string().contains("skipped `fc1.bias` (as `nothing`): no such parameter"), "{report}");
}

#[test]
fn a_broken_file_is_an_error_and_changes_nothing() {
    let mut net = Mlp::<f32>::init(Init::Auto, 1);
    let before = weights(&net);
    let bytes = std::fs::read(fixture("mlp_f32.safetensors")).unwrap();
    assert!(matches!(
        Matching::pytorch().load_bytes(&mut net, &bytes[..bytes.len() - 3]),
        Err(Error::Format { .. })
    ));
    assert!(matches!(load_matching(&mut net, fixture("no-such-file")), Err(Error::Io { .. })));
    assert_eq!(weights(&net), before);
    let _ = persist::to_bytes(&net).unwrap();
}
