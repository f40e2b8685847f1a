#!/usr/bin/env bash
# Regenerates core/src/onnx/proto.rs (the ONNX protobuf types, for prost) from
# tools/onnx_proto/onnx.proto. Needs protoc (Debian: protobuf-compiler). Run once
# after updating the schema; the generated file is committed, so builds never need protoc.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cargo run --quiet --manifest-path "$root/tools/onnx_proto/Cargo.toml" --target-dir "${TMPDIR:-/tmp}/staticnet-onnx-proto-target" -- "$root/core/src/onnx/proto.rs"
rustfmt --edition 2021 "$root/core/src/onnx/proto.rs"
echo "wrote core/src/onnx/proto.rs"
