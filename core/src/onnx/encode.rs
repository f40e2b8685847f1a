//! A built [`Model`] as ONNX protobuf bytes (prost, with the types of `proto.rs`).

use super::graph::{Attr, Data, Initializer, Node};
use super::proto::{
    attribute_proto::AttributeType, tensor_proto::DataType, tensor_shape_proto,
    tensor_shape_proto::dimension, type_proto, AttributeProto, GraphProto, ModelProto, NodeProto,
    OperatorSetIdProto, TensorProto, TensorShapeProto, TypeProto, ValueInfoProto,
};
use super::{Model, OPSET};
use prost::Message;

/// ONNX's IR version 8 is the one that goes with opset 17 (ONNX 1.12).
const IR_VERSION: i64 = 8;

/// The model as the bytes of an `.onnx` file.
pub fn to_bytes(model: &Model) -> Vec<u8> {
    let graph = GraphProto {
        name: Some(model.name.clone()),
        node: model.graph.nodes.iter().map(node).collect(),
        initializer: model.graph.initializers.iter().map(tensor).collect(),
        input: vec![value_info(&model.input.0, &model.input.1)],
        output: vec![value_info(&model.output.0, &model.output.1)],
        ..Default::default()
    };
    let proto = ModelProto {
        ir_version: Some(IR_VERSION),
        opset_import: vec![OperatorSetIdProto { domain: Some(String::new()), version: Some(OPSET) }],
        producer_name: Some("staticnet".into()),
        producer_version: Some(env!("CARGO_PKG_VERSION").into()),
        doc_string: Some(format!("{}: the inference pass, exported by staticnet", model.name)),
        graph: Some(graph),
        ..Default::default()
    };
    proto.encode_to_vec()
}

fn node(n: &Node) -> NodeProto {
    NodeProto {
        name: Some(n.name.clone()),
        op_type: Some(n.op.into()),
        input: n.inputs.clone(),
        output: n.outputs.clone(),
        attribute: n.attrs.iter().map(|(name, a)| attribute(name, a)).collect(),
        ..Default::default()
    }
}

fn attribute(name: &str, a: &Attr) -> AttributeProto {
    let mut p = AttributeProto { name: Some(name.into()), ..Default::default() };
    let kind = match a {
        Attr::Int(i) => {
            p.i = Some(*i);
            AttributeType::Int
        }
        Attr::Ints(v) => {
            p.ints = v.clone();
            AttributeType::Ints
        }
        Attr::Float(f) => {
            p.f = Some(*f);
            AttributeType::Float
        }
        Attr::Strings(v) => {
            p.strings = v.iter().map(|s| s.as_bytes().to_vec()).collect();
            AttributeType::Strings
        }
    };
    p.r#type = Some(kind as i32);
    p
}

fn tensor(t: &Initializer) -> TensorProto {
    let (data_type, raw) = match &t.data {
        Data::F32(v) => (DataType::Float, v.iter().flat_map(|x| x.to_le_bytes()).collect()),
        Data::I64(v) => (DataType::Int64, v.iter().flat_map(|x| x.to_le_bytes()).collect()),
    };
    TensorProto {
        name: Some(t.name.clone()),
        dims: t.dims.clone(),
        data_type: Some(data_type as i32),
        raw_data: Some(raw),
        ..Default::default()
    }
}

/// A float tensor `[batch, ..sample]`, the batch a named dynamic dimension.
fn value_info(name: &str, sample: &[usize]) -> ValueInfoProto {
    let batch = dimension::Value::DimParam("batch".into());
    let dims = std::iter::once(batch).chain(sample.iter().map(|&d| dimension::Value::DimValue(d as i64)));
    let dim = dims.map(|v| tensor_shape_proto::Dimension { value: Some(v), denotation: None }).collect();
    let tensor =
        type_proto::Tensor { elem_type: Some(DataType::Float as i32), shape: Some(TensorShapeProto { dim }) };
    ValueInfoProto {
        name: Some(name.into()),
        r#type: Some(TypeProto { value: Some(type_proto::Value::TensorType(tensor)), denotation: None }),
        ..Default::default()
    }
}
