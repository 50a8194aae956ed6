//! Adam's update on the device: chapter 06's in-place operator
//! [`UpdateStep<AdamRule>`](chapter_06::optim::UpdateStep), run by
//! `kernels/adam.cu` in one launch that overwrites `p`, `m` and `v` where
//! they lie (chapter 06's composite would run the fused program and copy
//! its outputs back).

use super::on_device;
use crate::backend::{elementwise_launch, suffix};
use crate::emulator::KernelArgs;
use crate::runtime::{DevicePtr, Runtime};
use chapter_02::{Result, Tensor};
use chapter_06::optim::{AdamRule, UpdateStep};

// ANCHOR: adam_update
/// `adam_<dtype>(n, p, g, m, v, v_max, β₁, 1−β₁, β₂, 1−β₂, √(1−β₂ᵗ), ε,
/// η/(1−β₁ᵗ), λ, 1−ηλ, flags)`: one thread per element, the step's numbers
/// as arguments, so the same kernel serves every step.
pub(super) fn update<R: Runtime>(
    op: &UpdateStep<AdamRule>,
    state: &mut [&mut Tensor],
    inputs: &[&Tensor],
) -> Result<()> {
    let name = "adam";
    // Value semantics: the kernel writes the state where it lies, so each
    // state tensor must own exactly its elements (copy-on-write otherwise).
    for t in state.iter_mut() {
        let whole =
            t.is_contiguous() && t.layout().offset() == 0 && t.storage().len() == t.elem_count();
        if !whole || !t.is_storage_unique() {
            **t = t.copy()?;
        }
    }
    let g = inputs[0];
    let (backend, gs) = on_device::<R>(g)?;
    let (g_ptr, _g_copy) = backend.flat(name, gs, g.layout())?;
    let ptr = |t: &Tensor| -> Result<DevicePtr> { Ok(on_device::<R>(t)?.1.ptr()) };
    let v_max = match state.get(3) {
        Some(t) => ptr(t)?,
        None => 0,
    };
    let (c, s) = (op.config, &op.scalars);
    let flags = (c.weight_decay != 0.0) as i32
        | (c.decoupled_weight_decay as i32) << 1
        | (c.maximize as i32) << 2;
    let n = state[0].elem_count();
    if n == 0 {
        return Ok(());
    }
    let args = KernelArgs::new()
        .arg(n as i64)
        .arg(ptr(state[0])?)
        .arg(g_ptr)
        .arg(ptr(state[1])?)
        .arg(ptr(state[2])?)
        .arg(v_max)
        .arg(s[2]) // β₁
        .arg(s[3]) // 1 − β₁
        .arg(s[4]) // β₂
        .arg(s[5]) // 1 − β₂
        .arg(s[6]) // √(1 − β₂ᵗ)
        .arg(s[7]) // ε
        .arg(s[8]) // η / (1 − β₁ᵗ)
        .arg(s[0]) // λ
        .arg(s[1]) // 1 − ηλ
        .arg(flags);
    let kernel = format!("adam_{}", suffix(state[0].dtype()));
    backend.launch(name, &kernel, elementwise_launch(n), args)
}
// ANCHOR_END: adam_update
