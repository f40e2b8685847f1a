//! Making a network visible: a Keras-style summary table and a Graphviz graph,
//! both from the layer table `network!` computes while compiling.

use crate::network::LayerInfo;
use std::fmt::Write;

/// `[16, 26, 26]`
fn shape(dims: &[usize]) -> String {
    let dims: Vec<String> = dims.iter().map(|d| d.to_string()).collect();
    format!("[{}]", dims.join(", "))
}

/// `1234567` → `1,234,567`
fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `918.5 KiB`
fn bytes(n: usize) -> String {
    let units = ["B", "KiB", "MiB", "GiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < units.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", units[unit])
    }
}

/// The rows of the table: each layer, and the layers inside blocks indented under it.
fn rows(layers: &[LayerInfo], depth: usize, out: &mut Vec<(String, &'static str, String, usize)>) {
    for l in layers {
        out.push((format!("{}{}", "  ".repeat(depth), l.name), l.kind, shape(l.output_shape), l.params));
        for (b, child) in l.children.iter().enumerate() {
            if l.children.len() > 1 {
                out.push((format!("{}branch {b}", "  ".repeat(depth + 1)), "", String::new(), 0));
            }
            rows(child, depth + 1 + usize::from(l.children.len() > 1), out);
        }
    }
}

/// A Keras-style table: one row per layer with its name, kind, output shape
/// and parameter count (blocks show their layers indented), then the totals.
pub fn summary(network: &str, input: &[usize], layers: &[LayerInfo]) -> String {
    summary_with_input(network, &shape(input), layers)
}

/// [`summary`] of a network whose input is `T` token ids (`input: tokens[T]`):
/// the input row reads `tokens[T]`, as the network declares it.
pub fn token_summary(network: &str, input: &[usize], layers: &[LayerInfo]) -> String {
    summary_with_input(network, &format!("tokens{}", shape(input)), layers)
}

/// [`summary`] with the input's shape as it is to be shown.
fn summary_with_input(network: &str, input: &str, layers: &[LayerInfo]) -> String {
    let mut table = Vec::new();
    rows(layers, 0, &mut table);
    let name_w = table.iter().map(|r| r.0.len()).chain([5]).max().unwrap_or(5);
    let kind_w = table.iter().map(|r| r.1.len()).chain([4]).max().unwrap_or(4);
    let shape_w = table.iter().map(|r| r.2.len()).chain([12, input.len()]).max().unwrap_or(12);
    let params: usize = layers.iter().map(|l| l.params).sum();
    let buffers: usize = layers.iter().map(|l| l.buffers).sum();
    let param_w = thousands(params).len().max(6);
    let width = name_w + kind_w + shape_w + param_w + 6;
    let rule = |c: char| c.to_string().repeat(width);

    let mut out = String::new();
    let _ = writeln!(out, "Network: {network}");
    let _ = writeln!(out, "{}", rule('='));
    let _ = writeln!(
        out,
        "{:<name_w$}  {:<kind_w$}  {:<shape_w$}  {:>param_w$}",
        "layer", "kind", "output shape", "params"
    );
    let _ = writeln!(out, "{}", rule('-'));
    let _ = writeln!(out, "{:<name_w$}  {:<kind_w$}  {:<shape_w$}  {:>param_w$}", "input", "", input, "");
    for (name, kind, out_shape, count) in &table {
        let count = if kind.is_empty() { String::new() } else { thousands(*count) };
        let _ = writeln!(out, "{name:<name_w$}  {kind:<kind_w$}  {out_shape:<shape_w$}  {count:>param_w$}");
    }
    let _ = writeln!(out, "{}", rule('='));
    let _ = writeln!(out, "Total parameters: {} ({} as f32)", thousands(params), bytes(4 * params));
    if buffers > 0 {
        let _ =
            writeln!(out, "Non-trainable buffers: {} ({} as f32)", thousands(buffers), bytes(4 * buffers));
    }
    // Blank columns leave trailing spaces; they would only make diffs noisy.
    out.lines().map(|l| l.trim_end().to_string() + "\n").collect()
}

/// Writes the nodes of `layers` to `out` and their edges to `edges`, starting
/// from node `from`; returns the last node. Edges go outside every cluster:
/// Graphviz puts a node in the cluster where an edge first mentions it.
fn graph(
    layers: &[LayerInfo],
    prefix: &str,
    from: String,
    depth: usize,
    out: &mut String,
    edges: &mut String,
) -> String {
    let quote = |s: &str| s.replace('\\', "\\\\").replace('"', "\\\"");
    let indent = "    ".repeat(depth);
    let mut previous = from;
    for l in layers {
        let id = format!("{prefix}{}", l.name);
        let label =
            if l.name == l.kind { l.name.to_string() } else { format!("{}\\n{}", l.name, quote(l.kind)) };
        if l.children.is_empty() {
            let _ =
                writeln!(out, "{indent}\"{}\" [label=\"{label}\\n{}\"];", quote(&id), shape(l.output_shape));
            let _ = writeln!(edges, "    \"{}\" -> \"{}\";", quote(&previous), quote(&id));
        } else {
            // A block: a cluster with its layers, joined at a node named after the block.
            let _ = writeln!(out, "{indent}subgraph \"cluster_{}\" {{", quote(&id));
            let _ = writeln!(out, "{indent}    label=\"{}\"; style=dashed;", quote(l.name));
            let mut ends = Vec::new();
            for (b, child) in l.children.iter().enumerate() {
                let inner = format!("{id}.{b}.");
                ends.push(graph(child, &inner, previous.clone(), depth + 1, out, edges));
            }
            let _ = writeln!(
                out,
                "{indent}    \"{}\" [label=\"{label}\\n{}\", shape=diamond];",
                quote(&id),
                shape(l.output_shape)
            );
            let _ = writeln!(out, "{indent}}}");
            for end in ends {
                let _ = writeln!(edges, "    \"{}\" -> \"{}\";", quote(&end), quote(&id));
            }
            if l.kind.starts_with("residual") {
                let label = if l.kind.contains("projection") { "projection" } else { "skip" };
                let _ = writeln!(
                    edges,
                    "    \"{}\" -> \"{}\" [style=dashed, label=\"{label}\"];",
                    quote(&previous),
                    quote(&id)
                );
            }
        }
        previous = id;
    }
    previous
}

/// The data-flow graph in Graphviz DOT: one node per layer, labelled with its
/// name, kind and output shape; blocks are clusters whose branches meet at a join.
pub fn to_dot(network: &str, input: &[usize], layers: &[LayerInfo]) -> String {
    dot_with_input(network, &shape(input), layers)
}

/// [`to_dot`] of a network whose input is `T` token ids: the input node reads `tokens[T]`.
pub fn token_dot(network: &str, input: &[usize], layers: &[LayerInfo]) -> String {
    dot_with_input(network, &format!("tokens{}", shape(input)), layers)
}

/// [`to_dot`] with the input's shape as it is to be shown.
fn dot_with_input(network: &str, input: &str, layers: &[LayerInfo]) -> String {
    let quote = |s: &str| s.replace('\\', "\\\\").replace('"', "\\\"");
    let mut out = String::new();
    let _ = writeln!(out, "digraph \"{}\" {{", quote(network));
    let _ = writeln!(out, "    rankdir=TB;");
    let _ = writeln!(out, "    node [shape=box, style=rounded, fontname=\"Helvetica\"];");
    let _ = writeln!(out, "    \"input\" [label=\"input\\n{input}\", shape=ellipse];");
    let mut edges = String::new();
    graph(layers, "", "input".into(), 1, &mut out, &mut edges);
    out.push_str(&edges);
    out.push_str("}\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_well() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1234567), "1,234,567");
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(940_584), "918.5 KiB");
        assert_eq!(bytes(3 << 30), "3.0 GiB");
    }
}
