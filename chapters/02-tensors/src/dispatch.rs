//! The kernel registry: operations beyond the primitives, with a kernel per
//! device and a composite fallback.
//!
//! The [`Backend`](crate::Backend) trait is deliberately small, and it is
//! closed: adding a method to it means editing this chapter and every
//! device. But some operations deserve a kernel of their own: a row
//! softmax that reads each row once instead of five times, a layer norm,
//! attention, an optimiser update. They come in through this registry,
//! modelled on PyTorch's dispatcher:
//!
//! - an [`Operator`] is declared once, by the chapter that owns it: its
//!   name, the checks every kernel may rely on, and a *composite*
//!   implementation written with existing tensor operations, which runs on
//!   every device;
//! - a *kernel* is registered per (operator, device kind) by anyone: the
//!   operator's own chapter (a fused CPU kernel), a device's chapter
//!   (chapter 07's CUDA kernels), or a user's crate (a faster kernel for
//!   one device). Neither the `Backend` trait nor the operator's chapter is
//!   edited;
//! - [`call`] validates once, then runs the kernel for the inputs' device
//!   kind if there is one, and the composite otherwise.

use crate::{DeviceKind, Error, Result, Tensor};
use std::any::{Any, TypeId};
use std::collections::{HashMap, HashSet};
use std::sync::{OnceLock, RwLock};

// ANCHOR: operator
/// An operation that can have a kernel per device.
///
/// The operator value carries its parameters (an axis, an epsilon), like a
/// chapter 03 `CustomOp`; its inputs and outputs are tensors of one device.
pub trait Operator: Send + Sync + Sized + 'static {
    /// Shown in errors.
    fn name(&self) -> &'static str;

    /// Validation that every kernel may rely on (shapes, dtypes), run once
    /// before any kernel or the composite. [`call`] has already checked
    /// that there is at least one input and that all inputs share a device.
    fn check(&self, inputs: &[&Tensor]) -> Result<()>;

    /// The reference implementation, written with existing tensor
    /// operations: it runs on every device that has no kernel of its own.
    fn composite(&self, inputs: &[&Tensor]) -> Result<Vec<Tensor>>;

    /// The kernels the operator's own crate provides. They are registered
    /// the first time the operator is used; a kernel that anyone registers
    /// for the same device kind with [`register_kernel`] takes precedence,
    /// whether it was registered before or after.
    fn builtin_kernels() -> Vec<(DeviceKind, Kernel<Self>)> {
        Vec::new()
    }
}

/// A kernel: computes the operator's outputs for inputs of one device kind.
pub type Kernel<O> = fn(&O, &[&Tensor]) -> Result<Vec<Tensor>>;
// ANCHOR_END: operator

/// Which implementation [`call`] runs for an operator on a device kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DispatchPath {
    /// A registered kernel.
    Kernel,
    /// The composite made of existing operations.
    Composite,
}

#[derive(Default)]
struct Registry {
    /// `Kernel<O>` boxed as `Any`, by operator type and device kind.
    kernels: HashMap<(TypeId, DeviceKind), Box<dyn Any + Send + Sync>>,
    /// Operators whose built-in kernels have been installed.
    installed: HashSet<TypeId>,
}

fn registry() -> &'static RwLock<Registry> {
    static REGISTRY: OnceLock<RwLock<Registry>> = OnceLock::new();
    REGISTRY.get_or_init(|| RwLock::new(Registry::default()))
}

fn poisoned() -> Error {
    Error::invalid(
        "kernel registry",
        "a thread panicked while registering a kernel",
    )
}

/// Installs `O`'s built-in kernels once, without replacing kernels that
/// were registered for the same device kinds before.
fn install_builtins<O: Operator>() -> Result<()> {
    install_once(TypeId::of::<O>(), || {
        O::builtin_kernels()
            .into_iter()
            .map(|(kind, k)| (kind, Box::new(k) as Box<dyn Any + Send + Sync>))
            .collect()
    })
}

/// Installs the kernels `builtins` lists for the operator type `id`, the
/// first time only, without replacing kernels registered before.
fn install_once(
    id: TypeId,
    builtins: impl FnOnce() -> Vec<(DeviceKind, Box<dyn Any + Send + Sync>)>,
) -> Result<()> {
    if registry()
        .read()
        .map_err(|_| poisoned())?
        .installed
        .contains(&id)
    {
        return Ok(());
    }
    let mut reg = registry().write().map_err(|_| poisoned())?;
    if reg.installed.insert(id) {
        for (kind, kernel) in builtins() {
            reg.kernels.entry((id, kind)).or_insert(kernel);
        }
    }
    Ok(())
}

// ANCHOR: register_kernel
/// Registers `kernel` for operator `O` on devices of `kind`, replacing any
/// kernel registered before (including `O`'s built-in one).
pub fn register_kernel<O: Operator>(kind: DeviceKind, kernel: Kernel<O>) -> Result<()> {
    install_builtins::<O>()?;
    registry()
        .write()
        .map_err(|_| poisoned())?
        .kernels
        .insert((TypeId::of::<O>(), kind), Box::new(kernel));
    Ok(())
}

/// Removes the kernel of `O` for `kind`, so that the composite runs there.
pub fn unregister_kernel<O: Operator>(kind: DeviceKind) -> Result<()> {
    install_builtins::<O>()?;
    registry()
        .write()
        .map_err(|_| poisoned())?
        .kernels
        .remove(&(TypeId::of::<O>(), kind));
    Ok(())
}

/// The kernel of `O` for `kind`, if one is registered.
pub fn kernel_for<O: Operator>(kind: DeviceKind) -> Result<Option<Kernel<O>>> {
    install_builtins::<O>()?;
    let reg = registry().read().map_err(|_| poisoned())?;
    Ok(reg
        .kernels
        .get(&(TypeId::of::<O>(), kind))
        .and_then(|k| k.downcast_ref::<Kernel<O>>())
        .copied())
}

/// Whether [`call`] would run a kernel or the composite for `O` on `kind`.
pub fn dispatch_path<O: Operator>(kind: DeviceKind) -> Result<DispatchPath> {
    Ok(match kernel_for::<O>(kind)? {
        Some(_) => DispatchPath::Kernel,
        None => DispatchPath::Composite,
    })
}
// ANCHOR_END: register_kernel

// ANCHOR: call
/// Runs `op` on `inputs`: validation once, then the kernel registered for
/// the inputs' device kind, or the composite.
pub fn call<O: Operator>(op: &O, inputs: &[&Tensor]) -> Result<Vec<Tensor>> {
    let first = inputs
        .first()
        .ok_or_else(|| Error::invalid(op.name(), "needs at least one input"))?;
    for t in &inputs[1..] {
        if t.device() != first.device() {
            return Err(Error::DeviceMismatch {
                op: op.name(),
                lhs: first.device().name(),
                rhs: t.device().name(),
            });
        }
    }
    op.check(inputs)?;
    match kernel_for::<O>(first.device().kind())? {
        Some(kernel) => kernel(op, inputs),
        None => op.composite(inputs),
    }
}
// ANCHOR_END: call

// ANCHOR: in_place_operator
/// An operation that overwrites some of its tensors where they lie: an
/// optimiser's update `(p, m, v) ← update(p, m, v, g)`. Like an
/// [`Operator`], it has a composite that runs on every device and kernels
/// per device kind; its *state* tensors are read and written, its *inputs*
/// only read.
pub trait InPlaceOperator: Send + Sync + Sized + 'static {
    /// Shown in errors.
    fn name(&self) -> &'static str;

    /// Validation that every kernel may rely on, run once before any
    /// kernel or the composite. [`call_in_place`] has already checked that
    /// there is at least one state tensor and that all tensors share a
    /// device.
    fn check(&self, state: &[&Tensor], inputs: &[&Tensor]) -> Result<()>;

    /// The reference implementation, with existing tensor operations.
    fn composite(&self, state: &mut [&mut Tensor], inputs: &[&Tensor]) -> Result<()>;

    /// The kernels the operator's own crate provides (see
    /// [`Operator::builtin_kernels`]).
    fn builtin_kernels() -> Vec<(DeviceKind, InPlaceKernel<Self>)> {
        Vec::new()
    }
}

/// A kernel of an [`InPlaceOperator`] for one device kind.
pub type InPlaceKernel<O> = fn(&O, &mut [&mut Tensor], &[&Tensor]) -> Result<()>;

/// Installs `O`'s built-in in-place kernels once.
fn install_in_place_builtins<O: InPlaceOperator>() -> Result<()> {
    install_once(TypeId::of::<O>(), || {
        O::builtin_kernels()
            .into_iter()
            .map(|(kind, k)| (kind, Box::new(k) as Box<dyn Any + Send + Sync>))
            .collect()
    })
}

/// Registers `kernel` for the in-place operator `O` on devices of `kind`,
/// replacing any kernel registered before (a built-in one included).
pub fn register_in_place_kernel<O: InPlaceOperator>(
    kind: DeviceKind,
    kernel: InPlaceKernel<O>,
) -> Result<()> {
    install_in_place_builtins::<O>()?;
    registry()
        .write()
        .map_err(|_| poisoned())?
        .kernels
        .insert((TypeId::of::<O>(), kind), Box::new(kernel));
    Ok(())
}

/// Removes the kernel of `O` for `kind`, so that the composite runs there.
pub fn unregister_in_place_kernel<O: InPlaceOperator>(kind: DeviceKind) -> Result<()> {
    install_in_place_builtins::<O>()?;
    registry()
        .write()
        .map_err(|_| poisoned())?
        .kernels
        .remove(&(TypeId::of::<O>(), kind));
    Ok(())
}

/// The in-place kernel of `O` for `kind`, if one is registered.
pub fn in_place_kernel_for<O: InPlaceOperator>(
    kind: DeviceKind,
) -> Result<Option<InPlaceKernel<O>>> {
    install_in_place_builtins::<O>()?;
    let reg = registry().read().map_err(|_| poisoned())?;
    Ok(reg
        .kernels
        .get(&(TypeId::of::<O>(), kind))
        .and_then(|k| k.downcast_ref::<InPlaceKernel<O>>())
        .copied())
}

/// Runs `op` on `state` and `inputs`: validation once, then the kernel
/// registered for their device kind, or the composite.
pub fn call_in_place<O: InPlaceOperator>(
    op: &O,
    state: &mut [&mut Tensor],
    inputs: &[&Tensor],
) -> Result<()> {
    let device = match state.first() {
        Some(t) => t.device().clone(),
        None => return Err(Error::invalid(op.name(), "needs at least one state tensor")),
    };
    for t in state.iter().map(|t| &**t).chain(inputs.iter().copied()) {
        if t.device() != &device {
            return Err(Error::DeviceMismatch {
                op: op.name(),
                lhs: device.name(),
                rhs: t.device().name(),
            });
        }
    }
    {
        let state_refs: Vec<&Tensor> = state.iter().map(|t| &**t).collect();
        op.check(&state_refs, inputs)?;
    }
    match in_place_kernel_for::<O>(device.kind())? {
        Some(kernel) => kernel(op, state, inputs),
        None => op.composite(state, inputs),
    }
}
// ANCHOR_END: in_place_operator
