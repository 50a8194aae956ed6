//! The driver runtime. On a machine without a GPU, opening a device is a
//! clear error (not a panic); on a GPU machine, the same file checks
//! memory, copies and launches against the real device.

use chapter_02::Error;
use chapter_07::allocator::CachingAllocator;
use chapter_07::driver::{device_count, driver_library_present, Driver};
use chapter_07::ptx::EmbeddedPtx;
use chapter_07::{LaunchConfig, Runtime};
use std::ffi::c_void;
use std::sync::Arc;

/// The sample kernels' PTX, embedded as the crate embeds the chapter's.
#[allow(dead_code)]
mod sample {
    use super::EmbeddedPtx;
    include!("sample-kernels/ptx/kernels.rs");
}

/// The GPU to test on, or `None` after one line saying why not.
fn gpu() -> Option<Driver> {
    if !driver_library_present() {
        println!("skipped: no CUDA driver library on this machine");
        return None;
    }
    match device_count() {
        Ok(0) | Err(_) => {
            println!("skipped: the CUDA driver sees no GPU");
            None
        }
        Ok(_) => Some(Driver::open(0).expect("cuda:0 opens")),
    }
}

#[test]
fn driver_open_without_a_gpu_is_a_clear_error() {
    if driver_library_present() && device_count().is_ok_and(|n| n > 0) {
        // A GPU machine: the error is for an ordinal out of range.
        let n = device_count().unwrap();
        let err = Driver::open(n).unwrap_err();
        let msg = err.to_string();
        assert!(
            matches!(&err, Error::Device { op: "open", device, .. } if *device == format!("cuda:{n}")),
            "{msg}"
        );
        assert!(msg.contains(&format!("has {n} CUDA device")), "{msg}");
        return;
    }
    let err = Driver::open(0).unwrap_err();
    let msg = err.to_string();
    match &err {
        Error::Device { op, device, .. } => {
            assert_eq!(*op, "open");
            assert_eq!(device, "cuda:0");
        }
        other => panic!("not a device error: {other:?}"),
    }
    assert!(
        msg.contains("no CUDA driver library")
            || msg.contains("sees no GPU")
            || msg.contains("cuInit"),
        "{msg}"
    );
    // Asking again gives the same answer (the probe is remembered).
    assert_eq!(
        Driver::open(3).unwrap_err().to_string(),
        msg.replace("cuda:0", "cuda:3")
    );
}

#[test]
fn driver_embeds_the_sample_ptx_through_the_generated_list() {
    // One PTX for compute_80: the compute_90 one would be the same, so
    // the script keeps only the lower arch, which sm_90 GPUs also run.
    assert_eq!(sample::MODULES.len(), 1);
    assert_eq!(sample::ARCHS, &[80, 90]);
    for m in sample::MODULES {
        assert_eq!(m.name, "sample");
        assert!(m.ptx.contains(".entry sample_scale"));
        assert_eq!(
            chapter_07::ptx::ptx_target(m.ptx),
            Some(format!("sm_{}", m.arch).as_str())
        );
    }
}

#[test]
fn driver_describes_the_gpu() {
    let Some(d) = gpu() else { return };
    let desc = d.describe();
    let (major, minor) = d.compute_capability();
    println!(
        "cuda:0 is {desc}; driver CUDA version {:?}",
        Driver::driver_version()
    );
    assert!(desc.contains(&format!("sm_{major}{minor}")), "{desc}");
    assert!(!d.name().is_empty());
    let (free, total) = d.memory_info().unwrap();
    assert!(free <= total && total > 0);
}

#[test]
fn driver_copies_bytes_there_and_back() {
    let Some(d) = gpu() else { return };
    let data: Vec<u8> = (0..10_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let a = d.alloc(data.len()).unwrap();
    let b = d.alloc(data.len()).unwrap();
    d.copy_htod(a, &data).unwrap();
    d.copy_dtod(b, a, data.len()).unwrap();
    let mut back = vec![0u8; data.len()];
    d.copy_dtoh(&mut back, b).unwrap();
    assert_eq!(back, data);
    d.memset_zero(b, 100).unwrap();
    d.copy_dtoh(&mut back, b).unwrap();
    assert!(back[..100].iter().all(|&x| x == 0));
    assert_eq!(back[100..], data[100..]);
    d.free(a).unwrap();
    d.free(b).unwrap();
}

#[test]
fn driver_launches_a_kernel_from_embedded_ptx() {
    let Some(d) = gpu() else { return };
    let (major, minor) = d.compute_capability();
    let cc = major * 10 + minor;
    let ptx = sample::MODULES
        .iter()
        .filter(|m| m.arch <= cc)
        .max_by_key(|m| m.arch)
        .unwrap();
    d.load_ptx("sample", ptx.ptx).unwrap();
    let n = 100_000usize;
    let input: Vec<f32> = (0..n).map(|i| i as f32 * 0.5).collect();
    let bytes: Vec<u8> = input.iter().flat_map(|x| x.to_le_bytes()).collect();
    let x = d.alloc(4 * n).unwrap();
    let y = d.alloc(4 * n).unwrap();
    d.copy_htod(x, &bytes).unwrap();
    let (mut out, mut inp, mut a, mut len) = (y, x, 3.0f32, n as u64);
    let mut params = [
        &mut out as *mut u64 as *mut c_void,
        &mut inp as *mut u64 as *mut c_void,
        &mut a as *mut f32 as *mut c_void,
        &mut len as *mut u64 as *mut c_void,
    ];
    // Fewer blocks than elements need: the grid-stride loop covers the rest.
    let cfg = LaunchConfig {
        grid: [40, 1, 1],
        block: [256, 1, 1],
        shared_mem_bytes: 0,
    };
    d.launch("sample_scale", cfg, &mut params).unwrap();
    d.synchronize().unwrap();
    let mut back = vec![0u8; 4 * n];
    d.copy_dtoh(&mut back, y).unwrap();
    for (i, c) in back.chunks_exact(4).enumerate() {
        assert_eq!(f32::from_le_bytes(c.try_into().unwrap()), 3.0 * input[i]);
    }
    let err = d.launch("no_such_kernel", cfg, &mut params).unwrap_err();
    assert!(
        err.to_string().contains("no kernel named `no_such_kernel`"),
        "{err}"
    );
    d.free(x).unwrap();
    d.free(y).unwrap();
}

#[test]
fn driver_loads_every_embedded_chapter_module() {
    let Some(d) = gpu() else { return };
    d.load_embedded().unwrap();
    println!("loaded modules: {:?}", d.loaded_modules());
}

#[test]
fn driver_out_of_memory_is_a_clear_error_and_the_allocator_recovers() {
    let Some(d) = gpu() else { return };
    let d = Arc::new(d);
    let err = d.alloc(1 << 50).unwrap_err();
    assert!(err.to_string().contains("out of memory"), "{err}");
    let alloc = CachingAllocator::new(d.clone());
    let a = alloc.alloc(1 << 20).unwrap();
    drop(a);
    let err = alloc.alloc(1 << 50).unwrap_err();
    assert!(err.to_string().contains("out of memory"), "{err}");
    assert_eq!(
        alloc.reserved_bytes(),
        0,
        "the cache was emptied before giving up"
    );
    assert!(alloc.alloc(1 << 20).is_ok(), "the device is still usable");
}
