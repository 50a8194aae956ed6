//! Drawing the expression graph: export to Graphviz's DOT language.

use crate::Value;
use std::collections::HashMap;
use std::fmt::Write;

// ANCHOR: to_dot
impl Value {
    /// The graph that computed this value, in Graphviz's DOT language
    /// (render it with `dot -Tsvg graph.dot -o graph.svg`).
    ///
    /// Each value is a box showing its label, `data` and `grad`; each
    /// operation is an ellipse between its inputs and its result, and the edge
    /// from an input into an operation is labelled with the local derivative
    /// ∂out/∂input that `backward` multiplies by. Nodes are numbered in
    /// topological order, so the text is the same on every run.
    pub fn to_dot(&self) -> String {
        let order = self.topological_order();
        let index: HashMap<*const (), usize> =
            order.iter().enumerate().map(|(i, v)| (v.id(), i)).collect();
        let mut dot = String::from("digraph expression {\n  rankdir=TB;\n");
        dot.push_str("  node [fontname=\"DejaVu Sans\", fontsize=11];\n");
        dot.push_str("  edge [fontname=\"DejaVu Sans\", fontsize=9];\n");
        for (i, value) in order.iter().enumerate() {
            let name = value
                .label()
                .map(|l| format!("{} | ", escape(&l)))
                .unwrap_or_default();
            let (data, grad) = (number(value.data()), number(value.grad()));
            let _ = writeln!(
                dot,
                "  v{i} [shape=record, label=\"{{ {name}data {data} | grad {grad} }}\"];"
            );
            if value.is_leaf() {
                continue;
            }
            let _ = writeln!(dot, "  op{i} [label=\"{}\"];", escape(value.op()));
            let _ = writeln!(dot, "  op{i} -> v{i};");
            for (input, local_grad) in value.inputs() {
                let j = index[&input.id()];
                let _ = writeln!(dot, "  v{j} -> op{i} [label=\"{}\"];", number(local_grad));
            }
        }
        dot.push_str("}\n");
        dot
    }
}
// ANCHOR_END: to_dot

/// A number with at most four decimals and no trailing zeros: 0.5, −2, 0.7864.
fn number(x: f64) -> String {
    let text = format!("{x:.4}");
    let text = if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.')
    } else {
        &text
    };
    if text == "-0" {
        "0".to_string()
    } else {
        text.to_string()
    }
}

/// Escapes the characters that DOT record labels treat specially.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '{' | '}' | '|' | '<' | '>' | '"' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

// ANCHOR: example
/// The small graph drawn in the book: out = tanh(x·y + x) at x = 0.5,
/// y = −2. `x` is used twice (a diamond), so its gradient is the sum of two
/// paths: ∂out/∂x = (1 − out²)·(y + 1).
pub fn example_graph() -> Value {
    let x = Value::new(0.5).with_label("x");
    let y = Value::new(-2.0).with_label("y");
    let z = (&x * &y).with_label("z");
    let s = (&z + &x).with_label("s");
    let out = s.tanh().with_label("out");
    out.backward();
    out
}
// ANCHOR_END: example
