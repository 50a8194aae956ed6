//! A kernel that faults loses the CUDA context for good: the driver says
//! so, at the fault and at every later call. Its own test binary, since
//! the fault breaks the (shared) context of the whole process.

use chapter_07::driver::{device_count, driver_library_present, Driver};
use chapter_07::ptx::EmbeddedPtx;
use chapter_07::{LaunchConfig, Runtime};
use std::ffi::c_void;

#[allow(dead_code)]
mod sample {
    use super::EmbeddedPtx;
    include!("sample-kernels/ptx/kernels.rs");
}

#[test]
fn driver_reports_an_illegal_address_as_a_sticky_error() {
    if !driver_library_present() || !device_count().is_ok_and(|n| n > 0) {
        println!("skipped: no GPU to fault on");
        return;
    }
    let d = Driver::open(0).unwrap();
    d.load_ptx("sample", sample::MODULES[0].ptx).unwrap();
    let mut bad: u64 = 0x10;
    let mut params = [&mut bad as *mut u64 as *mut c_void];
    let cfg = LaunchConfig {
        grid: [1, 1, 1],
        block: [32, 1, 1],
        shared_mem_bytes: 0,
    };
    // The launch itself is queued fine; the fault surfaces when we wait.
    let first = d
        .launch("sample_poke", cfg, &mut params)
        .and_then(|_| d.synchronize());
    let msg = first.unwrap_err().to_string();
    println!("{msg}");
    assert!(msg.contains("CUDA_ERROR_ILLEGAL_ADDRESS"), "{msg}");
    assert!(msg.contains("sticky"), "{msg}");
    assert!(msg.contains("sample_poke"), "names the last kernel: {msg}");
    let later = d.alloc(16).unwrap_err().to_string();
    assert!(
        later.contains("unusable") && later.contains("CUDA_ERROR_ILLEGAL_ADDRESS"),
        "{later}"
    );
}
