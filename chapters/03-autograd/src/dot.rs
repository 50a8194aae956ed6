//! Drawing the graph: export to Graphviz DOT.

use crate::Tensor;
use std::collections::HashSet;
use std::fmt::Write;

// ANCHOR: to_dot
impl Tensor {
    /// The graph that produced `self`, in Graphviz DOT: leaves are
    /// ellipses (blue when they require grad), ops are boxes labelled with
    /// the op name and result shape. Render with `dot -Tsvg`.
    pub fn to_dot(&self) -> String {
        let mut out =
            String::from("digraph autograd {\n  rankdir=TB;\n  node [fontname=\"Helvetica\"];\n");
        let mut seen = HashSet::new();
        let mut stack = vec![self.clone()];
        while let Some(t) = stack.pop() {
            if !seen.insert(t.id()) {
                continue;
            }
            let shape = t.shape();
            match &t.0.node {
                None => {
                    let color = if t.requires_grad() {
                        "lightblue"
                    } else {
                        "lightgray"
                    };
                    let _ = writeln!(
                        out,
                        "  t{} [label=\"leaf {shape}\", shape=ellipse, style=filled, fillcolor={color}];",
                        t.id()
                    );
                }
                Some(node) => {
                    let _ = writeln!(
                        out,
                        "  t{} [label=\"{}\\n{shape}\", shape=box];",
                        t.id(),
                        node.op.name()
                    );
                    match node.inputs() {
                        Some(inputs) => {
                            for input in inputs {
                                let _ = writeln!(out, "  t{} -> t{};", input.id(), t.id());
                                stack.push(input);
                            }
                        }
                        None => {
                            let _ = writeln!(
                                out,
                                "  t{}_freed [label=\"(freed by backward)\", shape=plaintext];",
                                t.id()
                            );
                            let _ = writeln!(out, "  t{}_freed -> t{};", t.id(), t.id());
                        }
                    }
                }
            }
        }
        out.push_str("}\n");
        out
    }
}
// ANCHOR_END: to_dot
