//! `Device`: a cheap handle to a backend, with an identity.
//!
//! A device has a *kind* (`cpu`, `cuda`, ...) and an *ordinal* (which GPU),
//! written `cuda:1`; two handles are the same device exactly when their
//! identities are equal. Kinds are an open set: a later chapter (or a
//! user's crate) registers a kind with a function that opens its devices,
//! and from then on [`Device::parse`] and the `CANDLE_DEVICE` variable know
//! it.

use crate::backend::Backend;
use crate::cpu::CpuBackend;
use crate::{Error, Result};
use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, OnceLock, RwLock};

// ANCHOR: device_id
/// A family of devices that share kernels: `cpu`, `cuda`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DeviceKind(&'static str);

impl DeviceKind {
    /// The host CPU.
    pub const CPU: DeviceKind = DeviceKind("cpu");

    /// A kind named `name` (lower case, no `:`), e.g. `DeviceKind::new("cuda")`.
    pub const fn new(name: &'static str) -> Self {
        DeviceKind(name)
    }

    pub fn name(self) -> &'static str {
        self.0
    }
}

/// Which device: a kind and an ordinal. Written `cpu` (the CPU has one
/// ordinal) or `kind:ordinal`, e.g. `cuda:0`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DeviceId {
    pub kind: DeviceKind,
    pub ordinal: usize,
}

impl fmt::Display for DeviceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.kind == DeviceKind::CPU && self.ordinal == 0 {
            f.write_str("cpu")
        } else {
            write!(f, "{}:{}", self.kind.0, self.ordinal)
        }
    }
}
// ANCHOR_END: device_id

// ANCHOR: device
/// Where a tensor lives. Cloning is cheap (a reference count).
///
/// `Device::cpu()` is always available; chapter 07 registers the `cuda`
/// kind, whose backend implements [`Backend`] for a GPU, and
/// `Device::parse("cuda:0")` opens it. Nothing else in the library names a
/// concrete device: layers and loaders use the device of the tensors they
/// are given, or [`default_device`].
#[derive(Clone)]
pub struct Device {
    backend: Arc<dyn Backend>,
    id: DeviceId,
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
        let id = backend.id();
        Device { backend, id }
    }

    pub fn backend(&self) -> &dyn Backend {
        self.backend.as_ref()
    }

    /// Kind and ordinal.
    pub fn id(&self) -> DeviceId {
        self.id
    }

    pub fn kind(&self) -> DeviceKind {
        self.id.kind
    }

    /// `cpu`, `cuda:0`, ...
    pub fn name(&self) -> String {
        self.id.to_string()
    }

    pub fn is_cpu(&self) -> bool {
        self.id.kind == DeviceKind::CPU
    }

    /// Waits for every queued operation on this device to finish. Timing
    /// code must call it before reading the clock: a GPU returns from a
    /// launch long before the kernel is done.
    pub fn synchronize(&self) -> Result<()> {
        self.backend.synchronize()
    }

    /// Opens the device named `name`: `cpu`, `cuda`, `cuda:1`, ... The kind
    /// must have been registered (see [`register_device_kind`]); an unknown
    /// kind is an error that lists the known ones, and a known kind whose
    /// device cannot be opened (no driver, no such ordinal) is the error
    /// its opener returns. Never a silent fallback to the CPU.
    pub fn parse(name: &str) -> Result<Device> {
        let trimmed = name.trim();
        let (kind, ordinal) = match trimmed.split_once(':') {
            None => (trimmed, 0),
            Some((k, o)) => {
                let ordinal = o.parse::<usize>().map_err(|_| {
                    Error::invalid(
                        "Device::parse",
                        format!("`{name}`: the ordinal after `:` must be a number, like cuda:0"),
                    )
                })?;
                (k, ordinal)
            }
        };
        let opener = device_kinds()
            .read()
            .map_err(|_| Error::invalid("Device::parse", "the device registry is poisoned"))?
            .get(kind)
            .copied();
        match opener {
            Some(open) => open(ordinal),
            None => Err(Error::invalid(
                "Device::parse",
                format!(
                    "unknown device `{name}`; known devices: {}",
                    known_device_kinds().join(", ")
                ),
            )),
        }
    }
}
// ANCHOR_END: device

/// Opens device `ordinal` of a registered kind.
pub type DeviceOpener = fn(usize) -> Result<Device>;

fn device_kinds() -> &'static RwLock<BTreeMap<&'static str, DeviceOpener>> {
    static KINDS: OnceLock<RwLock<BTreeMap<&'static str, DeviceOpener>>> = OnceLock::new();
    KINDS.get_or_init(|| {
        let mut kinds: BTreeMap<&'static str, DeviceOpener> = BTreeMap::new();
        kinds.insert("cpu", open_cpu);
        RwLock::new(kinds)
    })
}

fn open_cpu(ordinal: usize) -> Result<Device> {
    if ordinal != 0 {
        return Err(Error::invalid(
            "Device::parse",
            format!("there is one CPU device, `cpu` (cpu:0); got cpu:{ordinal}"),
        ));
    }
    Ok(Device::cpu())
}

// ANCHOR: register_device_kind
/// Makes a device kind known to [`Device::parse`] and `CANDLE_DEVICE`.
/// Chapter 07 calls `register_device_kind(DeviceKind::new("cuda"), open)`;
/// registering a kind again replaces its opener.
pub fn register_device_kind(kind: DeviceKind, open: DeviceOpener) {
    if let Ok(mut kinds) = device_kinds().write() {
        kinds.insert(kind.name(), open);
    }
}

/// The names of the registered kinds, sorted (`cpu` always among them).
pub fn known_device_kinds() -> Vec<&'static str> {
    match device_kinds().read() {
        Ok(kinds) => kinds.keys().copied().collect(),
        Err(_) => vec!["cpu"],
    }
}

fn default_override() -> &'static RwLock<Option<Device>> {
    static OVERRIDE: OnceLock<RwLock<Option<Device>>> = OnceLock::new();
    OVERRIDE.get_or_init(|| RwLock::new(None))
}

/// Makes `device` the process's default device, ahead of `CANDLE_DEVICE`
/// (`None` goes back to the variable). A program's `--device` option calls
/// it once, at start-up, after opening the device with [`Device::parse`],
/// so that a device that cannot be opened is refused before any work.
pub fn set_default_device(device: Option<Device>) {
    if let Ok(mut d) = default_override().write() {
        *d = device;
    }
}

/// The device set by [`set_default_device`]; otherwise the one named by
/// the environment variable `CANDLE_DEVICE`, or the CPU when it is unset or
/// empty. This is where layers, optimisers, loaders and the test suites put
/// tensors that have no other device to follow, so `CANDLE_DEVICE=cuda
/// cargo test` runs the whole suite on the GPU. An unknown or unavailable
/// device is an error naming the variable, never a silent fallback to the
/// CPU.
pub fn default_device() -> Result<Device> {
    if let Some(d) = default_override().read().ok().and_then(|d| d.clone()) {
        return Ok(d);
    }
    match std::env::var("CANDLE_DEVICE") {
        Ok(name) if !name.trim().is_empty() => Device::parse(&name).map_err(|e| {
            Error::invalid(
                "default_device",
                format!("CANDLE_DEVICE={name}: {}", error_message(&e)),
            )
        }),
        _ => Ok(Device::cpu()),
    }
}
// ANCHOR_END: register_device_kind

/// The message of an error without its `op: ` prefix.
fn error_message(e: &Error) -> String {
    match e {
        Error::Invalid { msg, .. } => msg.clone(),
        other => other.to_string(),
    }
}

impl PartialEq for Device {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id
    }
}
impl Eq for Device {}

impl std::hash::Hash for Device {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.id.hash(state)
    }
}

impl fmt::Debug for Device {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Device({})", self.id)
    }
}

impl fmt::Display for Device {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.id)
    }
}
