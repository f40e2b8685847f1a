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

/// A Keras-style table: one row per layer with its name, kind, output shape
/// and parameter count, then the totals.
pub fn summary(network: &str, input: &[usize], layers: &[LayerInfo]) -> String {
    let name_w = layers.iter().map(|l| l.name.len()).chain([5]).max().unwrap_or(5);
    let kind_w = layers.iter().map(|l| l.kind.len()).chain([4]).max().unwrap_or(4);
    let shape_w = layers
        .iter()
        .map(|l| shape(l.output_shape).len())
        .chain([12, shape(input).len()])
        .max()
        .unwrap_or(12);
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
    let _ =
        writeln!(out, "{:<name_w$}  {:<kind_w$}  {:<shape_w$}  {:>param_w$}", "input", "", shape(input), "");
    for l in layers {
        let _ = writeln!(
            out,
            "{:<name_w$}  {:<kind_w$}  {:<shape_w$}  {:>param_w$}",
            l.name,
            l.kind,
            shape(l.output_shape),
            thousands(l.params)
        );
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

/// The data-flow graph in Graphviz DOT: one node per layer, labelled with its
/// name, kind and output shape, from the input to the output.
pub fn to_dot(network: &str, input: &[usize], layers: &[LayerInfo]) -> String {
    let quote = |s: &str| s.replace('\\', "\\\\").replace('"', "\\\"");
    let mut out = String::new();
    let _ = writeln!(out, "digraph \"{}\" {{", quote(network));
    let _ = writeln!(out, "    rankdir=TB;");
    let _ = writeln!(out, "    node [shape=box, style=rounded, fontname=\"Helvetica\"];");
    let _ = writeln!(out, "    \"input\" [label=\"input\\n{}\", shape=ellipse];", shape(input));
    for l in layers {
        let label =
            if l.name == l.kind { l.name.to_string() } else { format!("{}\\n{}", l.name, quote(l.kind)) };
        let _ = writeln!(out, "    \"{}\" [label=\"{label}\\n{}\"];", quote(l.name), shape(l.output_shape));
    }
    let mut previous = "input";
    for l in layers {
        let _ = writeln!(out, "    \"{}\" -> \"{}\";", quote(previous), quote(l.name));
        previous = l.name;
    }
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
