//! The CUDA emulator: the chapter's kernels, compiled for the CPU, run
//! the way a GPU runs them.
//!
//! `build.rs` compiles every `kernels/*.cu` file as C++17 together with
//! `emu/cuda_emu.h` (what a kernel needs from CUDA: `threadIdx`,
//! `__syncthreads`, shuffles, atomics...) and `emu/cuda_emu.cpp` (the
//! scheduler). [`Emulator`] implements [`Runtime`], so the CUDA backend,
//! its launch configurations and every kernel are tested on a machine
//! without a GPU, by the same code that drives a real one.
//!
//! # How the CUDA execution model maps onto the CPU
//!
//! | CUDA | emulator |
//! |---|---|
//! | a grid of blocks | the blocks run one after another on the launching OS thread |
//! | a thread of a block | a fiber: a coroutine with its own 64 KiB stack |
//! | `__syncthreads()` | the fiber stops; when every fiber of the block has stopped at a barrier, all go on |
//! | a warp | 32 consecutive fibers; a shuffle or vote completes when every lane of its mask has arrived |
//! | `__shared__` | `thread_local`: one copy per block being run, seen by all its fibers |
//! | global memory | host allocations with poisoned guards around them |
//! | atomics | the compiler's atomic builtins |
//!
//! # Catching bugs instead of hiding them
//!
//! A kernel that works on the emulator should work on the GPU, so the
//! emulator is stricter than most GPUs happen to be:
//!
//! - **Missing `__syncthreads()`.** The threads of a block run in a
//!   [`Schedule`]: forward, reverse or shuffled. A correct kernel gives the
//!   same result under all three; one that reads shared memory before
//!   another thread wrote it does not. Dynamic shared memory starts every
//!   block filled with NaN bytes (`0xFF`).
//! - **Out-of-bounds writes.** Every allocation has 256 guard bytes on each
//!   side; they are checked after each launch, which fails naming the
//!   kernel.
//! - **Out-of-bounds reads and uninitialised memory.** Guards and fresh
//!   allocations are filled with `0xFF` bytes: NaN as a float, −1 as an
//!   integer, so a wrong read shows in the result.
//! - **Barriers not every thread reaches** (a `__syncthreads()` after an
//!   early `return`), **warps that diverge at a collective**, **`__trap()`**,
//!   an **oversized launch**, or a **wrong parameter count**: the launch
//!   fails with [`Error::Device`] naming the kernel, and never hangs.
//!
//! # Limits
//!
//! There is no timing (a kernel's speed on the emulator says nothing about
//! the GPU) and no concurrency between blocks or between threads: they
//! interleave only at barriers and warp collectives, so a data race
//! between blocks, or within a warp between collectives, goes unseen.
//! Every write is visible at once (no memory model, no caches, fences do
//! nothing). Threads are switched only where CUDA makes them wait, so a
//! thread that spins on a flag another thread sets (a hand-made lock)
//! never lets that thread run: the launch hangs, where a GPU may or may
//! not make progress. Static `__shared__` arrays are not poisoned at block start
//! (they keep the previous block's values). A wild pointer far outside
//! every allocation is not caught: it crashes the process, as it may crash
//! the GPU context.

mod abi;

pub use abi::{KernelArgs, RuntimeExt, Strided, MAX_RANK};

use crate::runtime::{DevicePtr, LaunchConfig, Runtime};
use chapter_02::{Error, Result};
use std::alloc::Layout as AllocLayout;
use std::collections::BTreeMap;
use std::ffi::c_void;
use std::sync::Mutex;

/// `struct LaunchArgs` of `emu/cuda_emu.h`.
#[repr(C)]
struct LaunchArgs {
    grid: [u32; 3],
    block: [u32; 3],
    shared_mem_bytes: u32,
    schedule: i32,
    seed: u64,
    error: *mut u8,
    error_capacity: u64,
}

/// A kernel's entry point in the emulator library.
type EntryPoint = unsafe extern "C" fn(*const LaunchArgs, *mut *mut c_void, i32) -> i32;

mod table {
    use super::{EntryPoint, LaunchArgs};
    use std::ffi::c_void;
    include!(concat!(env!("OUT_DIR"), "/emu_kernels.rs"));
}

pub use table::SOURCES;

// ANCHOR: schedule
/// The order in which the threads of a block run between barriers.
///
/// On a GPU the order is whatever the hardware picks, and it changes from
/// run to run; a kernel must not depend on it. The emulator makes it a
/// parameter, so a test can run a kernel under several orders and compare.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Schedule {
    /// Thread 0 first, then 1, 2, ...
    #[default]
    Forward,
    /// The last thread first.
    Reverse,
    /// A new random order for every block, from this seed.
    Shuffled(u64),
}

impl Schedule {
    /// The three schedules tests compare kernels under.
    pub const ALL: [Schedule; 3] = [
        Schedule::Forward,
        Schedule::Reverse,
        Schedule::Shuffled(0x5eed),
    ];
}
// ANCHOR_END: schedule

/// Bytes of poisoned guard on each side of an allocation.
const GUARD: usize = 256;
/// The guard and fresh-memory pattern: all ones (NaN as a float, −1 as an
/// integer).
const POISON: u8 = 0xFF;

#[derive(Debug)]
struct Allocation {
    /// Start of the block, guards included.
    base: usize,
    /// Bytes the user asked for.
    bytes: usize,
}

impl Allocation {
    fn layout(&self) -> AllocLayout {
        AllocLayout::from_size_align(self.bytes + 2 * GUARD, GUARD).expect("allocation size")
    }
    /// Where in the guards (as an offset from the user's start) the
    /// pattern was overwritten, first in front, then behind.
    fn damaged_guard(&self) -> Option<isize> {
        // SAFETY: the block is `bytes + 2·GUARD` bytes, owned by this allocation.
        let front = unsafe { std::slice::from_raw_parts(self.base as *const u8, GUARD) };
        let back = unsafe {
            std::slice::from_raw_parts((self.base + GUARD + self.bytes) as *const u8, GUARD)
        };
        if let Some(i) = front.iter().position(|&b| b != POISON) {
            return Some(i as isize - GUARD as isize);
        }
        back.iter()
            .position(|&b| b != POISON)
            .map(|i| (self.bytes + i) as isize)
    }
    fn repair_guards(&self) {
        // SAFETY: as above.
        unsafe {
            std::ptr::write_bytes(self.base as *mut u8, POISON, GUARD);
            std::ptr::write_bytes((self.base + GUARD + self.bytes) as *mut u8, POISON, GUARD);
        }
    }
}

// ANCHOR: emulator
/// A [`Runtime`] that runs the kernels on the CPU; see the module docs.
#[derive(Debug, Default)]
pub struct Emulator {
    /// Live allocations by the address handed out.
    allocations: Mutex<BTreeMap<DevicePtr, Allocation>>,
    schedule: Mutex<Schedule>,
    /// One launch at a time, like one stream, so a damaged guard is blamed
    /// on the right kernel.
    launching: Mutex<()>,
}
// ANCHOR_END: emulator

const DEVICE: &str = "emulator";

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Emulator {
    /// An emulator whose blocks run in the order `CANDLE_EMU_SCHEDULE`
    /// names (`forward`, `reverse`, `shuffled:<seed>`), forward by default.
    pub fn new() -> Self {
        let schedule = match std::env::var("CANDLE_EMU_SCHEDULE").as_deref() {
            Ok("reverse") => Schedule::Reverse,
            Ok(s) if s.starts_with("shuffled") => Schedule::Shuffled(
                s.split(':')
                    .nth(1)
                    .and_then(|x| x.parse().ok())
                    .unwrap_or(1),
            ),
            _ => Schedule::Forward,
        };
        let emulator = Emulator::default();
        emulator.set_schedule(schedule);
        emulator
    }

    /// Runs later launches under `schedule`.
    pub fn set_schedule(&self, schedule: Schedule) {
        *lock(&self.schedule) = schedule;
    }

    pub fn schedule(&self) -> Schedule {
        *lock(&self.schedule)
    }

    /// The names of every kernel in `kernels/*.cu`, sorted.
    pub fn kernels() -> impl Iterator<Item = &'static str> {
        table::KERNELS.iter().map(|(n, _)| *n)
    }

    /// Bytes currently allocated (without guards), and how many allocations.
    pub fn allocated(&self) -> (usize, usize) {
        let a = lock(&self.allocations);
        (a.values().map(|x| x.bytes).sum(), a.len())
    }

    fn find_kernel(name: &str) -> Option<(&'static str, EntryPoint)> {
        [table::KERNELS, table::TEST_KERNELS].iter().find_map(|t| {
            t.binary_search_by(|(n, _)| (*n).cmp(name))
                .ok()
                .map(|i| t[i])
        })
    }

    /// Checks that `[ptr, ptr + len)` lies inside one allocation.
    fn check_range(&self, op: &'static str, ptr: DevicePtr, len: usize) -> Result<()> {
        let a = lock(&self.allocations);
        let inside = a
            .range(..=ptr)
            .next_back()
            .is_some_and(|(&start, al)| ptr + len as u64 <= start + al.bytes as u64);
        if inside {
            Ok(())
        } else {
            Err(Error::device(
                op,
                DEVICE,
                format!("{len} bytes at 0x{ptr:x} are not inside one allocation"),
            ))
        }
    }

    /// After a launch: every guard must still hold the poison pattern.
    fn check_guards(&self, kernel: &'static str) -> Result<()> {
        let a = lock(&self.allocations);
        for (&start, al) in a.iter() {
            if let Some(at) = al.damaged_guard() {
                al.repair_guards();
                let place = if at < 0 {
                    format!("{} bytes before its start", -at)
                } else {
                    format!("at byte {at}, past its end")
                };
                return Err(Error::device(
                    kernel,
                    DEVICE,
                    format!(
                        "out-of-bounds write: the allocation at 0x{start:x} ({} bytes) was written {place}",
                        al.bytes
                    ),
                ));
            }
        }
        Ok(())
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let a = std::mem::take(&mut *lock(&self.allocations));
        for al in a.values() {
            // SAFETY: allocated in `alloc` with this layout.
            unsafe { std::alloc::dealloc(al.base as *mut u8, al.layout()) };
        }
    }
}

impl Runtime for Emulator {
    fn describe(&self) -> String {
        DEVICE.to_string()
    }

    // ANCHOR: alloc
    /// Host memory laid out as `[guard | bytes | guard]`, aligned to 256
    /// bytes like `cudaMalloc`, everything filled with `0xFF`.
    fn alloc(&self, bytes: usize) -> Result<DevicePtr> {
        let al = Allocation { base: 0, bytes };
        // SAFETY: the layout has a non-zero size (two guards).
        let base = unsafe { std::alloc::alloc(al.layout()) };
        if base.is_null() {
            return Err(Error::device(
                "alloc",
                DEVICE,
                format!("out of memory ({bytes} bytes)"),
            ));
        }
        // SAFETY: `base` points at `bytes + 2·GUARD` bytes.
        unsafe { std::ptr::write_bytes(base, POISON, bytes + 2 * GUARD) };
        let ptr = (base as usize + GUARD) as DevicePtr;
        lock(&self.allocations).insert(
            ptr,
            Allocation {
                base: base as usize,
                bytes,
            },
        );
        Ok(ptr)
    }
    // ANCHOR_END: alloc

    fn free(&self, ptr: DevicePtr) -> Result<()> {
        let al = lock(&self.allocations).remove(&ptr).ok_or_else(|| {
            Error::device("free", DEVICE, format!("0x{ptr:x} is not an allocation"))
        })?;
        let damaged = al.damaged_guard();
        // SAFETY: allocated in `alloc` with this layout.
        unsafe { std::alloc::dealloc(al.base as *mut u8, al.layout()) };
        match damaged {
            Some(at) => Err(Error::device(
                "free",
                DEVICE,
                format!("the guard of the allocation at 0x{ptr:x} was overwritten (byte {at})"),
            )),
            None => Ok(()),
        }
    }

    fn copy_htod(&self, dst: DevicePtr, src: &[u8]) -> Result<()> {
        self.check_range("copy_htod", dst, src.len())?;
        // SAFETY: the range lies inside a live allocation.
        unsafe { std::ptr::copy_nonoverlapping(src.as_ptr(), dst as *mut u8, src.len()) };
        Ok(())
    }

    fn copy_dtoh(&self, dst: &mut [u8], src: DevicePtr) -> Result<()> {
        self.check_range("copy_dtoh", src, dst.len())?;
        // SAFETY: the range lies inside a live allocation.
        unsafe { std::ptr::copy_nonoverlapping(src as *const u8, dst.as_mut_ptr(), dst.len()) };
        Ok(())
    }

    fn copy_dtod(&self, dst: DevicePtr, src: DevicePtr, bytes: usize) -> Result<()> {
        self.check_range("copy_dtod", src, bytes)?;
        self.check_range("copy_dtod", dst, bytes)?;
        // SAFETY: both ranges lie inside live allocations; they may overlap.
        unsafe { std::ptr::copy(src as *const u8, dst as *mut u8, bytes) };
        Ok(())
    }

    fn memset_zero(&self, dst: DevicePtr, bytes: usize) -> Result<()> {
        self.check_range("memset_zero", dst, bytes)?;
        // SAFETY: the range lies inside a live allocation.
        unsafe { std::ptr::write_bytes(dst as *mut u8, 0, bytes) };
        Ok(())
    }

    // ANCHOR: launch
    /// Runs the whole grid before returning (the emulator has no queue),
    /// then checks every allocation's guards.
    fn launch(&self, name: &str, cfg: LaunchConfig, params: &mut [*mut c_void]) -> Result<()> {
        let Some((kernel, entry)) = Emulator::find_kernel(name) else {
            return Err(Error::device(
                "launch",
                DEVICE,
                format!("no kernel named `{name}`"),
            ));
        };
        let (schedule, seed) = match self.schedule() {
            Schedule::Forward => (0, 0),
            Schedule::Reverse => (1, 0),
            Schedule::Shuffled(s) => (2, s),
        };
        let mut message = vec![0u8; 1024];
        let args = LaunchArgs {
            grid: cfg.grid,
            block: cfg.block,
            shared_mem_bytes: cfg.shared_mem_bytes,
            schedule,
            seed,
            error: message.as_mut_ptr(),
            error_capacity: message.len() as u64,
        };
        let _one_at_a_time = lock(&self.launching);
        // SAFETY: `params` points at the kernel's parameters (the count is
        // checked by the entry point; their types are the caller's promise).
        let rc = unsafe { entry(&args, params.as_mut_ptr(), params.len() as i32) };
        if rc != 0 {
            let end = message
                .iter()
                .position(|&b| b == 0)
                .unwrap_or(message.len());
            return Err(Error::device(
                kernel,
                DEVICE,
                String::from_utf8_lossy(&message[..end]).into_owned(),
            ));
        }
        self.check_guards(kernel)
    }
    // ANCHOR_END: launch

    fn synchronize(&self) -> Result<()> {
        Ok(())
    }
}
