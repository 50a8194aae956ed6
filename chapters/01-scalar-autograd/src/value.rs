//! [`Value`]: one scalar that remembers how it was computed, so that it can
//! compute its own derivative.
//!
//! Every arithmetic operation on `Value`s builds a node of a directed acyclic
//! graph (the *expression graph*). A node stores its number (`data`), the
//! operation that produced it, and, for each input, the *local derivative*
//! ∂out/∂input evaluated at the forward values. [`Value::backward`] walks that
//! graph from the output back to the inputs and applies the chain rule.

use std::cell::{Cell, RefCell};
use std::collections::HashSet;
use std::fmt;
use std::hash::{BuildHasherDefault, Hasher};
use std::ops::{Add, Div, Mul, Neg, Sub};
use std::rc::Rc;

// ANCHOR: node
/// A scalar in an expression graph. Cloning a `Value` is cheap and yields a
/// second handle to the *same* node (like `Rc`), so gradients computed through
/// one handle are visible through the other.
#[derive(Clone)]
pub struct Value(Rc<Node>);

/// One node of the expression graph.
struct Node {
    /// The number computed by the forward pass.
    data: Cell<f64>,
    /// ∂(output of the last `backward`)/∂(this node), filled in by `backward`.
    grad: Cell<f64>,
    /// Name of the operation that produced this node; `""` for a leaf.
    op: &'static str,
    /// The inputs of that operation, each with its local derivative.
    inputs: Vec<Edge>,
    /// Optional human-readable name, used by the DOT export.
    label: RefCell<Option<String>>,
}

/// An edge of the graph: `input` fed the operation, and `local_grad` is
/// ∂out/∂input, evaluated at the forward values when the node was built.
struct Edge {
    input: Value,
    local_grad: f64,
}
// ANCHOR_END: node

// ANCHOR: from_op
impl Value {
    /// A leaf: a number that was not computed from other `Value`s (an input,
    /// a parameter or a constant).
    pub fn new(data: f64) -> Value {
        Value::from_op(data, "", [])
    }

    /// The one constructor every operation goes through, and the extension
    /// point for your own operations (the custom-op API of this chapter).
    ///
    /// `data` is the forward result; `inputs` pairs each input with the local
    /// derivative ∂out/∂input. Giving both at the same place is what keeps an
    /// operation's forward and backward next to each other: the backward pass
    /// later only multiplies these numbers by the gradient flowing in.
    pub fn from_op<'a>(
        data: f64,
        op: &'static str,
        inputs: impl IntoIterator<Item = (&'a Value, f64)>,
    ) -> Value {
        let inputs = inputs
            .into_iter()
            .map(|(input, local_grad)| Edge {
                input: input.clone(),
                local_grad,
            })
            .collect();
        Value(Rc::new(Node {
            data: Cell::new(data),
            grad: Cell::new(0.0),
            op,
            inputs,
            label: RefCell::new(None),
        }))
    }
}
// ANCHOR_END: from_op

impl Value {
    /// Gives this value a name (shown by [`Value::to_dot`]); returns `self` so
    /// it chains: `Value::new(2.0).with_label("x")`.
    pub fn with_label(self, label: impl Into<String>) -> Value {
        *self.0.label.borrow_mut() = Some(label.into());
        self
    }

    /// The name given by [`Value::with_label`], if any.
    pub fn label(&self) -> Option<String> {
        self.0.label.borrow().clone()
    }

    /// The number this node holds.
    pub fn data(&self) -> f64 {
        self.0.data.get()
    }

    /// Overwrites the number, which is how an optimizer moves a parameter.
    /// Only meaningful on leaves: nodes computed from this one keep their old
    /// values until the forward pass is run again.
    pub fn set_data(&self, data: f64) {
        self.0.data.set(data);
    }

    /// The gradient left here by the last [`Value::backward`].
    pub fn grad(&self) -> f64 {
        self.0.grad.get()
    }

    /// Resets this node's gradient to zero. Leaves *accumulate* gradients over
    /// calls to `backward` (as in PyTorch), so a training loop zeroes its
    /// parameters before each backward pass.
    pub fn zero_grad(&self) {
        self.0.grad.set(0.0);
    }

    /// The operation that produced this value (`"+"`, `"tanh"`, ...), or `""`
    /// for a leaf.
    pub fn op(&self) -> &'static str {
        self.0.op
    }

    /// True for values not computed from other values.
    pub fn is_leaf(&self) -> bool {
        self.0.inputs.is_empty()
    }

    /// The inputs of the operation that produced this value, each with its
    /// local derivative ∂self/∂input.
    pub fn inputs(&self) -> impl Iterator<Item = (&Value, f64)> {
        self.0.inputs.iter().map(|e| (&e.input, e.local_grad))
    }

    /// True if both handles point at the same graph node.
    pub fn ptr_eq(&self, other: &Value) -> bool {
        Rc::ptr_eq(&self.0, &other.0)
    }

    /// The node's address: equal for two handles exactly when they share a
    /// node (valid while the node is alive).
    pub(crate) fn id(&self) -> *const () {
        Rc::as_ptr(&self.0).cast()
    }

    fn add_grad(&self, delta: f64) {
        self.0.grad.set(self.0.grad.get() + delta);
    }
}

// ANCHOR: topo
impl Value {
    /// Every node this value depends on (itself included), ordered so that
    /// each node comes after all of its inputs.
    ///
    /// This is a depth-first search with an explicit stack instead of
    /// recursion: a recursive version overflows the thread's stack on a chain
    /// of about 100 000 nodes. A stack entry `(node, true)` means "all inputs
    /// of `node` have been emitted, emit `node` now".
    pub fn topological_order(&self) -> Vec<Value> {
        let mut order = Vec::new();
        let mut visited = AddressSet::default();
        let mut stack: Vec<(&Value, bool)> = vec![(self, false)];
        while let Some((node, inputs_done)) = stack.pop() {
            if inputs_done {
                order.push(node.clone());
                continue;
            }
            if !visited.insert(node.id()) {
                continue; // reached again through another path: already handled
            }
            stack.push((node, true));
            for edge in node.0.inputs.iter().rev() {
                if !visited.contains(&edge.input.id()) {
                    stack.push((&edge.input, false));
                }
            }
        }
        order
    }
}
// ANCHOR_END: topo

/// A set of node addresses. The standard library's default hasher (SipHash)
/// resists keys chosen by an attacker, which addresses are not; one
/// multiplication spreads them just as well and makes the topological sort
/// about twice as fast.
type AddressSet = HashSet<*const (), BuildHasherDefault<AddressHasher>>;

#[derive(Default)]
struct AddressHasher(u64);

impl Hasher for AddressHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.write_usize(byte as usize ^ self.0 as usize);
        }
    }

    fn write_usize(&mut self, address: usize) {
        // Fibonacci hashing: multiply by 2⁶⁴/φ, then fold the well-mixed high
        // half onto the low bits (addresses end in zero bits, products too).
        let product = (address as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        self.0 = product ^ (product >> 32);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

// ANCHOR: backward
impl Value {
    /// Reverse-mode differentiation: fills in, for every node `v` this value
    /// depends on, `v.grad() = ∂self/∂v`.
    ///
    /// The chain rule says ∂self/∂v = Σ over the nodes `u` that use `v` of
    /// ∂self/∂u · ∂u/∂v. Visiting nodes in reverse topological order
    /// guarantees that `u.grad()` is complete before it is passed on, and the
    /// `+=` performs the sum when `v` feeds several nodes (`a * a`, diamonds).
    ///
    /// Interior nodes are reset first, so their gradients always describe this
    /// call; leaves (parameters) accumulate across calls until
    /// [`Value::zero_grad`].
    pub fn backward(&self) {
        let order = self.topological_order();
        for node in order.iter().filter(|node| !node.is_leaf()) {
            node.zero_grad();
        }
        self.add_grad(1.0); // ∂self/∂self = 1
        for node in order.iter().rev() {
            let grad = node.grad();
            for edge in &node.0.inputs {
                edge.input.add_grad(edge.local_grad * grad);
            }
        }
    }
}
// ANCHOR_END: backward

// ANCHOR: drop
/// Dropping the last handle to the output of a long chain would, with the
/// compiler-generated drop, drop its input, which drops *its* input, and so
/// on: one stack frame per node, a stack overflow at around 100 000 nodes.
/// Instead we unlink the inputs and free them from a heap-allocated stack:
/// a node whose last handle we hold gives us its own inputs to free next.
impl Drop for Node {
    fn drop(&mut self) {
        // The node's own list of inputs becomes the to-do list (no new allocation).
        let mut pending = std::mem::take(&mut self.inputs);
        while let Some(edge) = pending.pop() {
            if let Ok(mut input) = Rc::try_unwrap(edge.input.0) {
                // We held the last handle: adopt its inputs, then `input` is
                // dropped here with an empty list, so this recurses one level only.
                pending.append(&mut input.inputs);
            } // otherwise another handle keeps that node alive; its count just drops
        }
    }
}
// ANCHOR_END: drop

// The operations. Each one computes its result and, in the same place, the
// derivative of that result with respect to each input.

// ANCHOR: add_mul
/// out = a + b; ∂out/∂a = 1, ∂out/∂b = 1: addition hands the incoming gradient
/// unchanged to both inputs.
impl Add<&Value> for &Value {
    type Output = Value;
    fn add(self, rhs: &Value) -> Value {
        Value::from_op(self.data() + rhs.data(), "+", [(self, 1.0), (rhs, 1.0)])
    }
}

/// out = a · b; ∂out/∂a = b, ∂out/∂b = a: each input's gradient is scaled by
/// the *other* input.
impl Mul<&Value> for &Value {
    type Output = Value;
    fn mul(self, rhs: &Value) -> Value {
        let (a, b) = (self.data(), rhs.data());
        Value::from_op(a * b, "*", [(self, b), (rhs, a)])
    }
}
// ANCHOR_END: add_mul

/// out = a − b; ∂out/∂a = 1, ∂out/∂b = −1.
impl Sub<&Value> for &Value {
    type Output = Value;
    fn sub(self, rhs: &Value) -> Value {
        Value::from_op(self.data() - rhs.data(), "-", [(self, 1.0), (rhs, -1.0)])
    }
}

/// out = a / b; ∂out/∂a = 1/b, ∂out/∂b = −a/b². Division by zero gives ±∞ or
/// NaN, as it does for `f64`.
impl Div<&Value> for &Value {
    type Output = Value;
    fn div(self, rhs: &Value) -> Value {
        let (a, b) = (self.data(), rhs.data());
        Value::from_op(a / b, "/", [(self, 1.0 / b), (rhs, -a / (b * b))])
    }
}

/// out = −a; ∂out/∂a = −1.
impl Neg for &Value {
    type Output = Value;
    fn neg(self) -> Value {
        Value::from_op(-self.data(), "neg", [(self, -1.0)])
    }
}

impl Neg for Value {
    type Output = Value;
    fn neg(self) -> Value {
        -&self
    }
}

// ANCHOR: unary
impl Value {
    /// out = xᵏ for a constant exponent k; ∂out/∂x = k·xᵏ⁻¹. A negative base
    /// with a non-integer k gives NaN, as `f64::powf` does.
    pub fn powf(&self, k: f64) -> Value {
        let x = self.data();
        Value::from_op(x.powf(k), "powf", [(self, k * x.powf(k - 1.0))])
    }

    /// out = eˣ; ∂out/∂x = eˣ = out, so the forward result is reused.
    pub fn exp(&self) -> Value {
        let out = self.data().exp();
        Value::from_op(out, "exp", [(self, out)])
    }

    /// out = ln x (x > 0); ∂out/∂x = 1/x.
    pub fn ln(&self) -> Value {
        let x = self.data();
        Value::from_op(x.ln(), "ln", [(self, 1.0 / x)])
    }

    /// out = tanh x; ∂out/∂x = 1 − tanh²x = 1 − out².
    pub fn tanh(&self) -> Value {
        let out = self.data().tanh();
        Value::from_op(out, "tanh", [(self, 1.0 - out * out)])
    }

    /// out = max(0, x); ∂out/∂x = 1 for x > 0, else 0 (at the kink x = 0 we
    /// pick 0, one valid subgradient, as PyTorch does).
    pub fn relu(&self) -> Value {
        let x = self.data();
        let slope = if x > 0.0 { 1.0 } else { 0.0 };
        Value::from_op(x.max(0.0), "relu", [(self, slope)])
    }

    /// out = σ(x) = 1/(1 + e⁻ˣ); ∂out/∂x = σ(x)(1 − σ(x)) = out·(1 − out).
    pub fn sigmoid(&self) -> Value {
        let out = 1.0 / (1.0 + (-self.data()).exp());
        Value::from_op(out, "sigmoid", [(self, out * (1.0 - out))])
    }
}
// ANCHOR_END: unary

// ANCHOR: sum
/// Σᵢ xᵢ as one node with n inputs, each with ∂out/∂xᵢ = 1. One n-ary node
/// instead of a chain of n − 1 additions keeps the graph small. The sum of
/// nothing is a fresh leaf holding 0.
impl<'a> std::iter::Sum<&'a Value> for Value {
    fn sum<I: Iterator<Item = &'a Value>>(iter: I) -> Value {
        let terms: Vec<&Value> = iter.collect();
        let total = terms.iter().map(|v| v.data()).sum();
        Value::from_op(total, "sum", terms.into_iter().map(|v| (v, 1.0)))
    }
}
// ANCHOR_END: sum

impl std::iter::Sum<Value> for Value {
    fn sum<I: Iterator<Item = Value>>(iter: I) -> Value {
        let terms: Vec<Value> = iter.collect();
        terms.iter().sum()
    }
}

impl From<f64> for Value {
    fn from(data: f64) -> Value {
        Value::new(data)
    }
}

impl fmt::Debug for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = f.debug_struct("Value");
        if let Some(label) = self.label() {
            s.field("label", &label);
        }
        s.field("data", &self.data()).field("grad", &self.grad());
        if !self.is_leaf() {
            s.field("op", &self.op());
        }
        s.finish()
    }
}

/// Implements `op` for every mix of owned and borrowed `Value`s and `f64`
/// (on either side) by forwarding to the `&Value op &Value` implementation
/// above. An `f64` becomes a constant leaf of the graph.
macro_rules! forward_binary_op {
    ($trait:ident, $method:ident) => {
        impl $trait<Value> for Value {
            type Output = Value;
            fn $method(self, rhs: Value) -> Value {
                (&self).$method(&rhs)
            }
        }
        impl $trait<&Value> for Value {
            type Output = Value;
            fn $method(self, rhs: &Value) -> Value {
                (&self).$method(rhs)
            }
        }
        impl $trait<Value> for &Value {
            type Output = Value;
            fn $method(self, rhs: Value) -> Value {
                self.$method(&rhs)
            }
        }
        impl $trait<f64> for &Value {
            type Output = Value;
            fn $method(self, rhs: f64) -> Value {
                self.$method(&Value::new(rhs))
            }
        }
        impl $trait<f64> for Value {
            type Output = Value;
            fn $method(self, rhs: f64) -> Value {
                (&self).$method(&Value::new(rhs))
            }
        }
        impl $trait<&Value> for f64 {
            type Output = Value;
            fn $method(self, rhs: &Value) -> Value {
                (&Value::new(self)).$method(rhs)
            }
        }
        impl $trait<Value> for f64 {
            type Output = Value;
            fn $method(self, rhs: Value) -> Value {
                (&Value::new(self)).$method(&rhs)
            }
        }
    };
}

forward_binary_op!(Add, add);
forward_binary_op!(Sub, sub);
forward_binary_op!(Mul, mul);
forward_binary_op!(Div, div);
