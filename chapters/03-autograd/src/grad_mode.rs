//! Thread-local switches: whether operations record a graph (`no_grad`), and
//! whether every result is checked for NaN and infinity (anomaly mode).

use std::cell::Cell;

thread_local! {
    static GRAD_ENABLED: Cell<bool> = const { Cell::new(true) };
    static ANOMALY: Cell<bool> = const { Cell::new(false) };
}

// ANCHOR: no_grad
/// Whether operations on this thread currently record the graph.
pub fn is_grad_enabled() -> bool {
    GRAD_ENABLED.with(|g| g.get())
}

/// Restores the previous grad mode when dropped.
#[must_use = "grad mode is restored when the guard is dropped"]
pub struct GradModeGuard {
    previous: bool,
}

impl Drop for GradModeGuard {
    fn drop(&mut self) {
        GRAD_ENABLED.with(|g| g.set(self.previous));
    }
}

/// Turns graph recording off until the guard is dropped, like
/// `with torch.no_grad():`. Evaluation and optimiser updates run under it:
/// no graph is built, so nothing is kept alive for a backward pass.
pub fn no_grad() -> GradModeGuard {
    set_grad_enabled(false)
}

/// Turns graph recording on or off until the guard is dropped.
pub fn set_grad_enabled(enabled: bool) -> GradModeGuard {
    let previous = GRAD_ENABLED.with(|g| g.replace(enabled));
    GradModeGuard { previous }
}
// ANCHOR_END: no_grad

/// Whether anomaly detection is on for this thread.
pub fn is_anomaly_enabled() -> bool {
    ANOMALY.with(|a| a.get())
}

/// Restores the previous anomaly mode when dropped.
#[must_use = "anomaly mode is restored when the guard is dropped"]
pub struct AnomalyGuard {
    previous: bool,
}

impl Drop for AnomalyGuard {
    fn drop(&mut self) {
        ANOMALY.with(|a| a.set(self.previous));
    }
}

/// Opt-in anomaly detection (`torch.autograd.detect_anomaly`): every op's
/// output and every gradient is checked, and the first op that produces a
/// NaN or infinity is reported by name with its input shapes. It costs a
/// pass over every result, so it is off by default.
pub fn detect_anomaly() -> AnomalyGuard {
    let previous = ANOMALY.with(|a| a.replace(true));
    AnomalyGuard { previous }
}
