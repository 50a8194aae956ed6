//! Lesson: look at the graph. `to_dot` writes the recorded graph in
//! Graphviz's DOT language: leaves as ellipses (blue when they require
//! grad), each op as a box with its name and result shape, edges from
//! inputs to results. The chapter's figure is drawn from it.
//! `cargo test -p chapter-03 dot` runs these.

mod common;

// The example that prints the book's figure; we reuse its graph here.
#[path = "../examples/graph_dot.rs"]
#[allow(dead_code)]
mod graph_dot;

use common::*;

/// Renames the node ids `t17`, `t42`, ... to `t1`, `t2`, ... in order of
/// first appearance: ids are process-wide counters, so they depend on what
/// else ran first.
fn normalize_ids(dot: &str) -> String {
    let mut seen: Vec<String> = Vec::new();
    let mut out = String::new();
    let chars: Vec<char> = dot.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let starts_id = chars[i] == 't'
            && (i == 0 || !chars[i - 1].is_alphanumeric())
            && chars.get(i + 1).is_some_and(|c| c.is_ascii_digit());
        if !starts_id {
            out.push(chars[i]);
            i += 1;
            continue;
        }
        let mut j = i + 1;
        while j < chars.len() && chars[j].is_ascii_digit() {
            j += 1;
        }
        let id: String = chars[i..j].iter().collect();
        let n = match seen.iter().position(|s| *s == id) {
            Some(p) => p + 1,
            None => {
                seen.push(id);
                seen.len()
            }
        };
        out.push_str(&format!("t{n}"));
        i = j;
    }
    out
}

#[test]
fn dot_shows_op_names_shapes_and_edges() {
    let x = constant(&[1.0; 6], (2, 3));
    let w = leaf(&[0.5; 3], (3, 1));
    let y = x.matmul(&w).unwrap().tanh().unwrap().sum_all().unwrap();
    let dot = y.to_dot();
    assert!(dot.starts_with("digraph autograd {"), "{dot}");
    assert!(dot.trim_end().ends_with('}'));
    assert!(
        dot.contains(r#"label="matmul\n[2, 1]", shape=box"#),
        "{dot}"
    );
    assert!(dot.contains(r#"label="tanh\n[2, 1]", shape=box"#), "{dot}");
    assert!(dot.contains(r#"label="sum\n[]", shape=box"#), "{dot}");
    // The constant is grey, the parameter blue.
    assert!(
        dot.contains(r#"label="leaf [2, 3]", shape=ellipse, style=filled, fillcolor=lightgray"#),
        "{dot}"
    );
    assert!(
        dot.contains(r#"label="leaf [3, 1]", shape=ellipse, style=filled, fillcolor=lightblue"#),
        "{dot}"
    );
    // Edges run from inputs to results: x and w into matmul, and so on.
    assert_eq!(dot.matches(" -> ").count(), 4, "{dot}");
    assert!(dot.contains(&format!("t{} -> t", x.id())));
    assert!(dot.contains(&format!("t{} -> t", w.id())));
}

#[test]
fn dot_marks_a_graph_freed_by_backward() {
    let x = leaf(&[1.0, 2.0], 2);
    let y = x.exp().unwrap().sum_all().unwrap();
    y.backward().unwrap();
    let dot = y.to_dot();
    assert!(dot.contains(r#"label="sum\n[]""#), "{dot}");
    assert!(dot.contains("(freed by backward)"), "{dot}");
    assert!(!dot.contains("exp"), "the freed part is gone: {dot}");
}

#[test]
fn dot_draws_a_shared_node_once() {
    let a = leaf(&[1.0, 2.0], 2);
    let y = a.mul(&a).unwrap();
    let dot = y.to_dot();
    assert_eq!(dot.matches("leaf [2]").count(), 1, "{dot}");
    // Two edges from a to mul, one per use.
    assert_eq!(
        dot.matches(&format!("t{} -> t{};", a.id(), y.id())).count(),
        2,
        "{dot}"
    );
}

#[test]
fn dot_committed_figure_is_up_to_date() {
    let fresh = graph_dot::figure_graph().unwrap().to_dot();
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../book/src/figures/03-graph.dot"
    );
    let committed = std::fs::read_to_string(path).expect("book/src/figures/03-graph.dot exists");
    assert_eq!(
        normalize_ids(&committed),
        normalize_ids(&fresh),
        "regenerate it: cargo run -p chapter-03 --example graph_dot > book/src/figures/03-graph.dot"
    );
    for op in ["matmul", "add", "tanh", "sub", "powf", "sum", "affine"] {
        assert!(
            fresh.contains(&format!("label=\"{op}\\n")),
            "{op} missing from {fresh}"
        );
    }
}
