//! Lessons about the graph itself: shared nodes accumulate, the order of the
//! backward pass, deep graphs without recursion, zeroing, and drawing it.

use approx::assert_relative_eq;
use chapter_01::{example_graph, Value};

// ANCHOR: shared_node
#[test]
fn shared_node_a_times_a_accumulates_both_uses() {
    // b = a·a uses a twice; each use contributes ∂b/∂a along its edge = a,
    // and the two contributions add up: 2a, the derivative of a².
    let a = Value::new(3.0);
    let b = &a * &a;
    b.backward();
    assert_eq!(a.grad(), 6.0);
}

#[test]
fn shared_node_diamond_sums_both_paths() {
    //      ┌── c = 2a ──┐
    //  a ──┤            ├── e = c·d
    //      └── d = a+1 ─┘
    // de/da = d·2 + c·1 = 2(a+1) + 2a = 4a + 2
    let a = Value::new(1.5);
    let c = 2.0 * &a;
    let d = &a + 1.0;
    let e = &c * &d;
    e.backward();
    assert_eq!(a.grad(), 4.0 * 1.5 + 2.0);
    assert_eq!(c.grad(), d.data());
    assert_eq!(d.grad(), c.data());
}
// ANCHOR_END: shared_node

#[test]
fn shared_node_reused_many_times_in_a_sum() {
    // s = x + x + ... + x (ten times) = 10x, ds/dx = 10.
    let x = Value::new(0.3);
    let s: Value = std::iter::repeat_n(&x, 10).sum();
    s.backward();
    assert_eq!(x.grad(), 10.0);
}

#[test]
fn topological_order_puts_inputs_before_outputs() {
    let a = Value::new(1.0);
    let b = Value::new(2.0);
    let c = &a * &b;
    let d = &c + &a;
    let e = d.tanh();
    let order = e.topological_order();
    assert_eq!(order.len(), 5, "each node exactly once, even a used twice");
    let position = |v: &Value| order.iter().position(|o| o.ptr_eq(v)).unwrap();
    for node in &order {
        for (input, _) in node.inputs() {
            assert!(position(input) < position(node));
        }
    }
    assert!(order.last().unwrap().ptr_eq(&e));
}

#[test]
fn backward_twice_accumulates_into_leaves_only() {
    // Leaves accumulate (call zero_grad between steps), interior nodes do not:
    // their gradient always belongs to the last backward.
    let x = Value::new(2.0);
    let y = &x * 3.0;
    let z = y.tanh();
    z.backward();
    let (once_x, once_y) = (x.grad(), y.grad());
    z.backward();
    assert_relative_eq!(x.grad(), 2.0 * once_x);
    assert_relative_eq!(y.grad(), once_y);
    x.zero_grad();
    z.backward();
    assert_relative_eq!(x.grad(), once_x);
}

#[test]
fn zero_grad_resets_a_gradient() {
    let x = Value::new(2.0);
    (&x * &x).backward();
    assert_eq!(x.grad(), 4.0);
    x.zero_grad();
    assert_eq!(x.grad(), 0.0);
}

#[test]
fn backward_of_a_leaf_is_one() {
    let x = Value::new(5.0);
    x.backward();
    assert_eq!(x.grad(), 1.0);
}

#[test]
fn operators_accept_owned_borrowed_and_f64_operands() {
    let a = Value::new(6.0);
    let b = Value::new(2.0);
    assert_eq!((&a + &b).data(), 8.0);
    assert_eq!((a.clone() + b.clone()).data(), 8.0);
    assert_eq!((&a - b.clone()).data(), 4.0);
    assert_eq!((a.clone() * &b).data(), 12.0);
    assert_eq!((&a / &b).data(), 3.0);
    assert_eq!((&a + 1.0).data(), 7.0);
    assert_eq!((1.0 - &a).data(), -5.0);
    assert_eq!((a.clone() * 0.5).data(), 3.0);
    assert_eq!((12.0 / b.clone()).data(), 6.0);
    assert_eq!((-&a).data(), -6.0);
    assert_eq!((-a.clone()).data(), -6.0);
    assert_eq!(Value::from(4.0).powf(0.5).data(), 2.0);
}

#[test]
fn forward_values_of_every_operation() {
    let x = Value::new(0.5);
    assert_relative_eq!(x.exp().data(), 0.5f64.exp());
    assert_relative_eq!(x.ln().data(), 0.5f64.ln());
    assert_relative_eq!(x.tanh().data(), 0.5f64.tanh());
    assert_relative_eq!(x.sigmoid().data(), 1.0 / (1.0 + (-0.5f64).exp()));
    assert_eq!(x.relu().data(), 0.5);
    assert_eq!((-&x).relu().data(), 0.0);
    assert_eq!(x.powf(3.0).data(), 0.125);
}

// ANCHOR: deep_chain
/// A chain of 100 000 operations: a recursive topological sort, or the
/// compiler's recursive drop of nested `Rc`s, would overflow the stack.
#[test]
fn deep_chain_of_100_000_nodes_builds_backprops_and_drops() {
    const N: usize = 100_000;
    let x = Value::new(1.0);
    let mut y = x.clone();
    for _ in 0..N {
        y = &y * 1.0001 - 0.0001; // y ← 1.0001·y − 0.0001 keeps y = 1
    }
    y.backward();
    assert_relative_eq!(y.data(), 1.0, epsilon = 1e-9);
    assert_relative_eq!(x.grad(), 1.0001f64.powi(N as i32), max_relative = 1e-9);
    drop(y); // frees 400 000 nodes without recursion
    assert_eq!(x.data(), 1.0, "the leaf we still hold survives");
}
// ANCHOR_END: deep_chain

#[test]
fn deep_chain_of_100_000_nodes_drops_without_backward() {
    let mut y = Value::new(0.0);
    for i in 0..100_000 {
        y = (&y + i as f64).tanh(); // three nodes: the constant, +, tanh
    }
    assert_eq!(y.topological_order().len(), 300_001);
    drop(y);
}

#[test]
fn deep_chain_drop_in_a_thread_with_a_small_stack() {
    // 64 KiB of stack would not even hold a recursive drop of 1 000 nodes.
    std::thread::Builder::new()
        .stack_size(64 * 1024)
        .spawn(|| {
            let mut y = Value::new(1.0);
            for _ in 0..100_000 {
                y = y.sigmoid();
            }
            y.backward();
        })
        .unwrap()
        .join()
        .unwrap();
}

#[test]
fn dot_export_lists_every_node_edge_and_local_derivative() {
    let out = example_graph();
    let dot = out.to_dot();
    assert!(dot.starts_with("digraph expression {"));
    for label in ["x", "y", "z", "s", "out"] {
        assert!(
            dot.contains(&format!("{{ {label} | data")),
            "{label} missing:\n{dot}"
        );
    }
    // per operation: one edge out, one edge in per input: (1+2) + (1+2) + (1+1)
    assert_eq!(dot.matches(" -> ").count(), 8, "{dot}");
    // x feeds both * (local derivative y = −2) and + (local derivative 1)
    assert!(dot.contains("[label=\"-2\"]"), "{dot}");
    // the diamond: ∂out/∂x = (1 − tanh²(s))·(y + 1)
    let s: f64 = 0.5 * -2.0 + 0.5;
    let expected = (1.0 - s.tanh().powi(2)) * (-2.0 + 1.0);
    assert!(
        dot.contains(&format!("{{ x | data 0.5 | grad {expected:.4} }}")),
        "{dot}"
    );
}
