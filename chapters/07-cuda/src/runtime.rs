//! The runtime: the few things a GPU driver does for a tensor library.
//!
//! Everything the CUDA backend does on a device goes through this trait:
//! allocate and free device memory, copy bytes between host and device,
//! launch a kernel by name on a grid of blocks, and wait. Two runtimes
//! implement it:
//!
//! - the *driver* runtime, on the CUDA driver API through `cudarc`, for a
//!   real GPU;
//! - the *emulator*, which runs the very same kernel source files compiled
//!   for the CPU, so the backend, its launch configurations and its
//!   kernels are tested on a machine without a GPU.
//!
//! A kernel is launched the way `cuLaunchKernel` takes it: a name, a launch
//! configuration and one pointer per kernel parameter, each pointing at the
//! parameter's value (a device pointer, an `int`, a `float`...).

use chapter_02::Result;
use std::ffi::c_void;

/// An address in a device's memory. On the emulator it is a host address.
pub type DevicePtr = u64;

// ANCHOR: launch_config
/// How many threads run a kernel: a grid of blocks, each of `block`
/// threads, with `shared_mem_bytes` of dynamic shared memory per block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LaunchConfig {
    pub grid: [u32; 3],
    pub block: [u32; 3],
    pub shared_mem_bytes: u32,
}

impl LaunchConfig {
    /// A one-dimensional launch: enough blocks of `threads` threads to give
    /// one thread to each of `n` elements.
    pub fn for_elements(n: usize, threads: u32) -> LaunchConfig {
        let blocks = n.div_ceil(threads as usize).max(1) as u32;
        LaunchConfig {
            grid: [blocks, 1, 1],
            block: [threads, 1, 1],
            shared_mem_bytes: 0,
        }
    }
}
// ANCHOR_END: launch_config

// ANCHOR: runtime
/// What the CUDA backend needs from a device: memory, copies, launches.
pub trait Runtime: Send + Sync + std::fmt::Debug + 'static {
    /// A description for messages: `NVIDIA H200 (sm_90)`, `emulator`.
    fn describe(&self) -> String;
    /// `bytes` of fresh device memory (uninitialised). Out of memory is an
    /// `Error::Device`.
    fn alloc(&self, bytes: usize) -> Result<DevicePtr>;
    /// Returns memory from [`Runtime::alloc`] to the device.
    fn free(&self, ptr: DevicePtr) -> Result<()>;
    /// Host → device.
    fn copy_htod(&self, dst: DevicePtr, src: &[u8]) -> Result<()>;
    /// Device → host; waits for the work queued before it.
    fn copy_dtoh(&self, dst: &mut [u8], src: DevicePtr) -> Result<()>;
    /// Device → device, `bytes` bytes.
    fn copy_dtod(&self, dst: DevicePtr, src: DevicePtr, bytes: usize) -> Result<()>;
    /// Fills `bytes` bytes at `dst` with zeros.
    fn memset_zero(&self, dst: DevicePtr, bytes: usize) -> Result<()>;
    /// Launches the kernel `name` with `params[i]` pointing at the value of
    /// its `i`-th parameter. Returns once the launch is queued; a fault
    /// inside the kernel is reported here or by the next call that waits.
    fn launch(&self, name: &str, cfg: LaunchConfig, params: &mut [*mut c_void]) -> Result<()>;
    /// Waits until all queued work has finished.
    fn synchronize(&self) -> Result<()>;
}
// ANCHOR_END: runtime
