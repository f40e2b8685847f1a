//! The graph an export builds: ONNX nodes, attributes and initializers as plain
//! Rust values, named under the layer being exported (`block1.body.0.weight`).
//! Encoding it as protobuf is `encode.rs`'s job (feature `onnx`).

use crate::error::{Error, Result};
use crate::float::Float;
use crate::params::{ParamPath, Params};
use std::collections::HashSet;

/// An attribute of a node.
#[derive(Clone, Debug, PartialEq)]
pub enum Attr {
    /// One integer (`axis`, `to`).
    Int(i64),
    /// A list of integers (`kernel_shape`, `pads`, `perm`).
    Ints(Vec<i64>),
    /// One float (`epsilon`, `alpha`).
    Float(f32),
    /// A list of strings (`activations` of the recurrent ops).
    Strings(Vec<String>),
}

/// One ONNX operator application.
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    /// The operator, e.g. `Gemm`.
    pub op: &'static str,
    /// A name unique in the graph, under the layer's name.
    pub name: String,
    /// The values it reads, by name (an empty name is an omitted optional input).
    pub inputs: Vec<String>,
    /// The values it writes.
    pub outputs: Vec<String>,
    /// Its attributes, by name.
    pub attrs: Vec<(&'static str, Attr)>,
}

/// The values of a constant tensor.
#[derive(Clone, Debug, PartialEq)]
pub enum Data {
    /// 32-bit floats (weights: every network is exported in f32).
    F32(Vec<f32>),
    /// 64-bit integers (shapes, indices).
    I64(Vec<i64>),
}

/// A constant tensor stored in the model: a weight or a shape.
#[derive(Clone, Debug, PartialEq)]
pub struct Initializer {
    /// Its name: the parameter's `state_dict` name where it is one.
    pub name: String,
    /// Its shape.
    pub dims: Vec<i64>,
    /// Its values, row-major.
    pub data: Data,
}

/// A layer's parameters (and buffers), as visited through [`Params`], in f32.
pub struct Tensor {
    /// The name under the layer (`weight`, `out_proj.bias`, `running_var`).
    pub name: String,
    /// Its PyTorch shape.
    pub shape: Vec<usize>,
    /// Its values, row-major.
    pub values: Vec<f32>,
}

/// The graph under construction: nodes in execution order, initializers, and the
/// name of the layer being exported (a stack of segments, like a [`ParamPath`]).
#[derive(Debug, Default)]
pub struct Graph {
    /// The nodes, in an order where every value is written before it is read.
    pub nodes: Vec<Node>,
    /// The constant tensors.
    pub initializers: Vec<Initializer>,
    scope: Vec<String>,
    used: HashSet<String>,
}

impl Graph {
    /// An empty graph.
    pub fn new() -> Self {
        Graph::default()
    }

    /// Runs `f` with `segment` appended to the names of what it adds (a layer's
    /// name, `body`, a branch's position).
    pub fn scoped<R>(&mut self, segment: &str, f: impl FnOnce(&mut Graph) -> Result<R>) -> Result<R> {
        self.scope.push(segment.to_string());
        let result = f(self);
        self.scope.pop();
        result
    }

    /// The current scope's name with `last` appended, made unique among the names used so far.
    pub fn fresh(&mut self, last: &str) -> String {
        let base: Vec<&str> =
            self.scope.iter().map(String::as_str).chain([last]).filter(|s| !s.is_empty()).collect();
        let base = base.join(".");
        let mut name = base.clone();
        let mut k = 1;
        while self.used.contains(&name) {
            name = format!("{base}_{k}");
            k += 1;
        }
        self.used.insert(name.clone());
        name
    }

    /// Adds a node with one output, named after the operator; returns the output's name.
    pub fn op(&mut self, op: &'static str, inputs: &[&str], attrs: Vec<(&'static str, Attr)>) -> String {
        self.op_n(op, inputs, 1, attrs).remove(0)
    }

    /// Adds a node with `outputs` outputs; returns their names.
    pub fn op_n(
        &mut self,
        op: &'static str,
        inputs: &[&str],
        outputs: usize,
        attrs: Vec<(&'static str, Attr)>,
    ) -> Vec<String> {
        let name = self.fresh(op);
        let outputs: Vec<String> = (0..outputs)
            .map(|k| if k == 0 { name.clone() } else { self.fresh(&format!("{op}_out{k}")) })
            .collect();
        let inputs = inputs.iter().map(|s| s.to_string()).collect();
        self.nodes.push(Node { op, name, inputs, outputs: outputs.clone(), attrs });
        outputs
    }

    /// Adds an f32 constant named `last` under the current scope; returns its name.
    pub fn constant(&mut self, last: &str, dims: &[usize], values: Vec<f32>) -> String {
        let name = self.fresh(last);
        let dims = dims.iter().map(|&d| d as i64).collect();
        self.initializers.push(Initializer { name: name.clone(), dims, data: Data::F32(values) });
        name
    }

    /// Adds an i64 constant (a shape, axes or indices); `dims` empty makes a scalar.
    pub fn ints(&mut self, last: &str, dims: &[usize], values: Vec<i64>) -> String {
        let name = self.fresh(last);
        let dims = dims.iter().map(|&d| d as i64).collect();
        self.initializers.push(Initializer { name: name.clone(), dims, data: Data::I64(values) });
        name
    }

    /// The parameters and buffers of `layer`, in f32, named under the layer (`weight`, `running_mean`).
    ///
    /// # Errors
    /// [`Error::OnnxExport`] if a finite value is too large for f32 (an f64
    /// network's): the file would hold an infinity where the network does not.
    pub fn tensors_of<T: Float, P: Params<T>>(&self, layer: &P) -> Result<Vec<Tensor>> {
        let mut out = Vec::new();
        let mut too_big = None;
        let mut add = |p: crate::params::Param<'_, T>| {
            let values: Vec<f32> = p.value.iter().map(|v| v.as_f64() as f32).collect();
            let bad = p.value.iter().zip(&values).find(|(v, f)| v.as_f64().is_finite() && !f.is_finite());
            if let (Some((v, _)), None) = (bad, &too_big) {
                too_big = Some(format!("`{}` holds {:e}, beyond the range of f32", p.name, v.as_f64()));
            }
            out.push(Tensor { name: p.name.to_string(), shape: p.shape.to_vec(), values });
        };
        layer.visit_params(&ParamPath::ROOT, &mut add);
        layer.visit_buffers(&ParamPath::ROOT, &mut add);
        match too_big {
            Some(reason) => Err(Error::OnnxExport { layer: self.layer_name(), reason }),
            None => Ok(out),
        }
    }

    /// Adds the tensor `name` of `tensors` as an initializer (its `state_dict`
    /// name under the current scope); returns its name.
    pub fn param(&mut self, tensors: &[Tensor], name: &str) -> Result<String> {
        let t = tensors
            .iter()
            .find(|t| t.name == name)
            .ok_or_else(|| missing(&self.layer_name(), name, tensors))?;
        Ok(self.constant(name, &t.shape, t.values.clone()))
    }

    /// Like [`Graph::param`], with the values and shape rewritten by `f` first
    /// (a transposed or reordered copy for an operator that wants another
    /// layout), stored as `as_name` under the current scope.
    pub fn param_with(
        &mut self,
        tensors: &[Tensor],
        name: &str,
        as_name: &str,
        f: impl FnOnce(&[usize], &[f32]) -> (Vec<usize>, Vec<f32>),
    ) -> Result<String> {
        let t = tensors
            .iter()
            .find(|t| t.name == name)
            .ok_or_else(|| missing(&self.layer_name(), name, tensors))?;
        let (shape, values) = f(&t.shape, &t.values);
        Ok(self.constant(as_name, &shape, values))
    }

    /// The name of the layer being exported (the scope), for messages.
    pub fn layer_name(&self) -> String {
        self.scope.iter().filter(|s| !s.is_empty()).cloned().collect::<Vec<_>>().join(".")
    }
}

/// A layer did not visit a parameter its exporter reads: a mismatch between
/// the two inside the library, reported rather than written as a wrong file.
fn missing(layer: &str, name: &str, tensors: &[Tensor]) -> Error {
    let have: Vec<&str> = tensors.iter().map(|t| t.name.as_str()).collect();
    Error::OnnxExport {
        layer: layer.to_string(),
        reason: format!("parameter `{name}` not found among {have:?}"),
    }
}
