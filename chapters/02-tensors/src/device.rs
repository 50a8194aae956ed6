//! `Device`: a cheap handle to a backend.

use crate::backend::Backend;
use crate::cpu::CpuBackend;
use std::fmt;
use std::sync::{Arc, OnceLock};

// ANCHOR: device
/// Where a tensor lives. Cloning is cheap (a reference count).
///
/// `Device::cpu()` is always available; chapter 07 adds `cuda(0)` by
/// implementing [`Backend`] for a CUDA device and wrapping it with
/// [`Device::new`]. Nothing else in the library names a concrete device.
#[derive(Clone)]
pub struct Device {
    backend: Arc<dyn Backend>,
}

impl Device {
    /// The host CPU.
    pub fn cpu() -> Device {
        static CPU: OnceLock<Device> = OnceLock::new();
        CPU.get_or_init(|| Device::new(Arc::new(CpuBackend)))
            .clone()
    }

    /// A device backed by any implementation of [`Backend`].
    pub fn new(backend: Arc<dyn Backend>) -> Device {
        Device { backend }
    }

    pub fn backend(&self) -> &dyn Backend {
        self.backend.as_ref()
    }

    /// `cpu`, `cuda:0`, ...
    pub fn name(&self) -> String {
        self.backend.name()
    }

    pub fn is_cpu(&self) -> bool {
        self.name() == "cpu"
    }
}
// ANCHOR_END: device

impl PartialEq for Device {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.backend, &other.backend) || self.name() == other.name()
    }
}
impl Eq for Device {}

impl Default for Device {
    fn default() -> Self {
        Device::cpu()
    }
}

impl fmt::Debug for Device {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Device({})", self.name())
    }
}

impl fmt::Display for Device {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}
