//! The autograd `Tensor`: a chapter-02 tensor plus the bookkeeping that lets
//! gradients flow back to it.

use crate::grad_mode::is_grad_enabled;
use crate::op::Node;
use crate::sync::{lock, read, write};
use chapter_02::{
    default_device, DType, Device, Error, Result, Shape, Tensor as RawTensor, WithDType,
};
use std::ops::Range;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

// ANCHOR: tensor
/// A tensor that can take part in differentiation.
///
/// It wraps the raw tensor of chapter 02 (its *data*) and adds:
/// - `requires_grad`: whether gradients should be computed for it;
/// - `node`: for a result of an operation, the operation and its inputs
///   (the edge of the graph that `backward` walks); `None` for leaves;
/// - `grad`: where `backward` accumulates d(output)/d(self) for leaves (and
///   for intermediates that asked for it with `retain_grad`).
///
/// Cloning is cheap and shares everything: two clones are the same node.
#[derive(Clone)]
pub struct Tensor(pub(crate) Arc<Inner>);

pub(crate) struct Inner {
    pub(crate) id: u64,
    pub(crate) data: RwLock<RawTensor>,
    pub(crate) requires_grad: AtomicBool,
    pub(crate) retains_grad: AtomicBool,
    pub(crate) grad: Mutex<Option<Tensor>>,
    pub(crate) node: Option<Node>,
}
// ANCHOR_END: tensor

// ANCHOR: next_id
/// A fresh tensor id. `backward` keys gradients by id, so ids must never
/// repeat among tensors that can meet in one graph. A counter does that
/// within one copy of this library; the counter starts at a random point so
/// that two copies linked into one process (as a notebook kernel does, one
/// per cell) draw from ranges that do not overlap in practice.
fn next_id() -> u64 {
    use std::hash::BuildHasher;
    static NEXT_ID: std::sync::OnceLock<AtomicU64> = std::sync::OnceLock::new();
    NEXT_ID
        .get_or_init(|| {
            let start = std::collections::hash_map::RandomState::new()
                .hash_one(std::time::SystemTime::now());
            AtomicU64::new(start)
        })
        .fetch_add(1, Ordering::Relaxed)
}
// ANCHOR_END: next_id

impl Tensor {
    fn build(data: RawTensor, requires_grad: bool, node: Option<Node>) -> Tensor {
        Tensor(Arc::new(Inner {
            id: next_id(),
            data: RwLock::new(data),
            requires_grad: AtomicBool::new(requires_grad),
            retains_grad: AtomicBool::new(false),
            grad: Mutex::new(None),
            node,
        }))
    }

    /// A leaf that does not require gradients (a constant input).
    pub fn from_raw(data: RawTensor) -> Tensor {
        Tensor::build(data, false, None)
    }

    /// A leaf that requires gradients (a parameter, or an input we
    /// differentiate with respect to).
    pub fn param(data: RawTensor) -> Result<Tensor> {
        let t = Tensor::from_raw(data);
        t.set_requires_grad(true)?;
        Ok(t)
    }

    /// The result of an operation; used by [`Tensor::apply`](crate::CustomOp).
    pub(crate) fn from_op(data: RawTensor, node: Node) -> Tensor {
        Tensor::build(data, true, Some(node))
    }

    /// A unique id, stable for the tensor's lifetime (used by `backward`
    /// to find nodes and by the DOT export).
    pub fn id(&self) -> u64 {
        self.0.id
    }

    /// The values (a cheap, shared handle to the raw tensor).
    pub fn data(&self) -> RawTensor {
        read(&self.0.data).clone()
    }

    /// Replaces the values of a leaf in place, keeping its identity, its
    /// gradient and its place in any optimiser (what `p.data = ...` or an
    /// in-place update does in PyTorch). The shape and dtype must not change.
    pub fn set_data(&self, data: RawTensor) -> Result<()> {
        if !self.is_leaf() {
            return Err(Error::invalid(
                "set_data",
                "only leaf tensors can be updated in place",
            ));
        }
        let mut d = write(&self.0.data);
        if d.shape() != data.shape() || d.dtype() != data.dtype() {
            return Err(Error::ShapeMismatch {
                op: "set_data",
                lhs: d.shape().clone(),
                rhs: data.shape().clone(),
                detail: format!(" (dtype {} vs {})", d.dtype(), data.dtype()),
            });
        }
        *d = data;
        Ok(())
    }

    /// Runs `f` on the values of a leaf, in place, keeping its identity,
    /// gradient and place in any optimiser: how an optimiser applies its
    /// update without a fresh buffer (PyTorch's `p.add_(...)` under
    /// `no_grad`). `f` must not change the shape or dtype.
    pub fn update_data<T>(&self, f: impl FnOnce(&mut RawTensor) -> Result<T>) -> Result<T> {
        if !self.is_leaf() {
            return Err(Error::invalid(
                "update_data",
                "only leaf tensors can be updated in place",
            ));
        }
        let mut d = write(&self.0.data);
        let (shape, dtype) = (d.shape().clone(), d.dtype());
        let out = f(&mut d)?;
        if d.shape() != &shape || d.dtype() != dtype {
            return Err(Error::ShapeMismatch {
                op: "update_data",
                lhs: shape,
                rhs: d.shape().clone(),
                detail: format!(
                    " (dtype {} vs {}): the update changed them",
                    dtype,
                    d.dtype()
                ),
            });
        }
        Ok(out)
    }

    // ANCHOR: slice_assign_in_place
    /// Writes `src`'s values into the region of `self` that `ranges` selects,
    /// in place (chapter 02's
    /// [`slice_assign_`](chapter_02::Tensor::slice_assign_)): the tensor
    /// keeps its identity, and with unshared storage nothing is copied. A
    /// KV cache appends each new token's keys this way.
    ///
    /// Like PyTorch, an in-place write is refused where it would corrupt a
    /// gradient: on a tensor that requires grad while grad mode is on, and
    /// on the result of an operation (whose backward may still read it).
    pub fn slice_assign_(&self, ranges: &[Range<usize>], src: &Tensor) -> Result<()> {
        if !self.is_leaf() || (self.requires_grad() && is_grad_enabled()) {
            return Err(Error::invalid(
                "slice_assign_",
                "an in-place write needs a leaf that does not require grad \
                 (or grad mode off, e.g. inside no_grad)",
            ));
        }
        let src = src.data();
        write(&self.0.data).slice_assign_(ranges, &src)
    }
    // ANCHOR_END: slice_assign_in_place

    pub fn shape(&self) -> Shape {
        self.data().shape().clone()
    }
    pub fn dims(&self) -> Vec<usize> {
        self.data().dims().to_vec()
    }
    pub fn rank(&self) -> usize {
        self.data().rank()
    }
    pub fn elem_count(&self) -> usize {
        self.data().elem_count()
    }
    pub fn dtype(&self) -> DType {
        self.data().dtype()
    }
    pub fn device(&self) -> Device {
        self.data().device().clone()
    }

    /// A leaf has no producing operation: user-created tensors and parameters.
    pub fn is_leaf(&self) -> bool {
        self.0.node.is_none()
    }

    pub fn requires_grad(&self) -> bool {
        self.0.requires_grad.load(Ordering::Relaxed)
    }

    /// Marks a leaf as needing gradients (`x.requires_grad_(True)`).
    /// Only float leaves can: integers have no derivative, and a non-leaf's
    /// flag follows from its inputs.
    pub fn set_requires_grad(&self, requires: bool) -> Result<()> {
        if !self.is_leaf() {
            return Err(Error::invalid(
                "requires_grad",
                "can only be set on leaf tensors; use detach() to make a new leaf",
            ));
        }
        if requires && !self.dtype().is_float() {
            return Err(Error::UnsupportedDType {
                op: "requires_grad",
                dtype: self.dtype(),
            });
        }
        self.0.requires_grad.store(requires, Ordering::Relaxed);
        Ok(())
    }

    /// Builder form of [`set_requires_grad`](Self::set_requires_grad).
    pub fn requires_grad_(self) -> Result<Tensor> {
        self.set_requires_grad(true)?;
        Ok(self)
    }

    /// Asks `backward` to keep this intermediate's gradient too.
    pub fn retain_grad(&self) {
        self.0.retains_grad.store(true, Ordering::Relaxed);
    }

    pub(crate) fn keeps_grad(&self) -> bool {
        self.requires_grad() && (self.is_leaf() || self.0.retains_grad.load(Ordering::Relaxed))
    }

    // ANCHOR: grad_access
    /// The accumulated gradient. An error (not a silent `None`) when it
    /// cannot exist: the tensor does not require grad, or it is an
    /// intermediate that did not ask to `retain_grad`.
    pub fn grad(&self) -> Result<Tensor> {
        if !self.requires_grad() {
            return Err(Error::invalid(
                "grad",
                "this tensor does not require grad (call requires_grad_() on the leaf first)",
            ));
        }
        if !self.keeps_grad() {
            return Err(Error::invalid("grad", "this tensor is not a leaf, so backward does not keep its gradient; call retain_grad() before backward"));
        }
        self.grad_opt()
            .ok_or_else(|| Error::invalid("grad", "no gradient yet: call backward() first"))
    }

    /// The accumulated gradient if there is one (what optimisers read).
    pub fn grad_opt(&self) -> Option<Tensor> {
        lock(&self.0.grad).clone()
    }

    /// Forgets the accumulated gradient (PyTorch's `set_to_none=True`).
    pub fn zero_grad(&self) {
        *lock(&self.0.grad) = None;
    }

    /// Replaces the accumulated gradient (used by gradient clipping).
    pub fn set_grad(&self, grad: Option<Tensor>) {
        *lock(&self.0.grad) = grad;
    }
    // ANCHOR_END: grad_access

    /// A new leaf sharing the same values, cut off from the graph.
    pub fn detach(&self) -> Tensor {
        Tensor::from_raw(self.data())
    }

    /// The name of the operation that produced this tensor (`None` for leaves).
    pub fn op_name(&self) -> Option<&'static str> {
        self.0.node.as_ref().map(|n| n.op.name())
    }
}

// Convenience constructors and readers that forward to chapter 02.
impl Tensor {
    /// A 1-D constant on the [default device](chapter_02::default_device).
    pub fn new<T: WithDType>(data: &[T]) -> Result<Tensor> {
        Ok(Tensor::from_raw(RawTensor::from_vec(
            data.to_vec(),
            data.len(),
            &default_device()?,
        )?))
    }
    pub fn from_vec<T: WithDType>(
        data: Vec<T>,
        shape: impl Into<Shape>,
        device: &Device,
    ) -> Result<Tensor> {
        Ok(Tensor::from_raw(RawTensor::from_vec(data, shape, device)?))
    }
    pub fn zeros(shape: impl Into<Shape>, dtype: DType, device: &Device) -> Result<Tensor> {
        Ok(Tensor::from_raw(RawTensor::zeros(shape, dtype, device)?))
    }
    pub fn ones(shape: impl Into<Shape>, dtype: DType, device: &Device) -> Result<Tensor> {
        Ok(Tensor::from_raw(RawTensor::ones(shape, dtype, device)?))
    }
    pub fn full(
        value: f64,
        shape: impl Into<Shape>,
        dtype: DType,
        device: &Device,
    ) -> Result<Tensor> {
        Ok(Tensor::from_raw(RawTensor::full(
            value, shape, dtype, device,
        )?))
    }
    pub fn randn(
        mean: f64,
        std: f64,
        shape: impl Into<Shape>,
        dtype: DType,
        device: &Device,
    ) -> Result<Tensor> {
        Ok(Tensor::from_raw(RawTensor::randn(
            mean, std, shape, dtype, device,
        )?))
    }
    pub fn rand(
        lo: f64,
        hi: f64,
        shape: impl Into<Shape>,
        dtype: DType,
        device: &Device,
    ) -> Result<Tensor> {
        Ok(Tensor::from_raw(RawTensor::rand(
            lo, hi, shape, dtype, device,
        )?))
    }
    pub fn to_vec<T: WithDType>(&self) -> Result<Vec<T>> {
        self.data().to_vec()
    }
    pub fn to_vec_f64(&self) -> Result<Vec<f64>> {
        self.data().to_vec_f64()
    }
    pub fn item(&self) -> Result<f64> {
        self.data().item()
    }
}

impl From<RawTensor> for Tensor {
    fn from(t: RawTensor) -> Self {
        Tensor::from_raw(t)
    }
}

impl std::fmt::Display for Tensor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = self.data().to_string();
        // Show autograd state where PyTorch does: after the values.
        let s = s.trim_end_matches(')');
        match (self.op_name(), self.requires_grad()) {
            (Some(op), _) => write!(f, "{s}, grad_fn={op})"),
            (None, true) => write!(f, "{s}, requires_grad=true)"),
            (None, false) => write!(f, "{s})"),
        }
    }
}

impl std::fmt::Debug for Tensor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Tensor[shape={}, dtype={}, requires_grad={}",
            self.shape(),
            self.dtype(),
            self.requires_grad()
        )?;
        if let Some(op) = self.op_name() {
            write!(f, ", grad_fn={op}")?;
        }
        write!(f, "]")
    }
}

// ANCHOR: iterative_drop
/// Dropping the last handle to the head of a long chain would otherwise
/// drop each input inside the previous drop, one stack frame per op: a
/// 100 000-op chain would overflow the stack. We unlink the chain with an
/// explicit stack instead.
impl Drop for Inner {
    fn drop(&mut self) {
        let Some(node) = self.node.as_ref() else {
            return;
        };
        let mut stack: Vec<Tensor> = node.take_inputs().unwrap_or_default();
        while let Some(t) = stack.pop() {
            // Only the last owner may unlink; others leave the node alive.
            if let Some(inner) = Arc::into_inner(t.0) {
                if let Some(n) = inner.node.as_ref() {
                    stack.extend(n.take_inputs().unwrap_or_default());
                }
                // `inner` drops here with an empty node: no recursion.
            }
        }
    }
}
// ANCHOR_END: iterative_drop
