//! The PTX embedded in the crate: built from the current kernel sources,
//! loadable by the GPU machines' driver, and what `scripts/build-ptx.sh`
//! makes of a kernel file.

use chapter_07::ptx::{self, MODULES, SOURCES_STAMP};
use std::path::Path;
use std::process::Command;

fn crate_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn driver_ptx_is_not_stale() {
    let now = ptx::sources_stamp(&crate_dir().join("kernels")).unwrap();
    assert_eq!(
        now, SOURCES_STAMP,
        "the embedded PTX was built from other kernel sources: run \
         scripts/install-nvrtc.sh && scripts/build-ptx.sh, and commit chapters/07-cuda/ptx/"
    );
}

#[test]
fn driver_ptx_loads_on_cuda_13_0_drivers() {
    // Driver 580 (CUDA 13.0) knows PTX ISA versions up to 9.0.
    for m in MODULES {
        let v = ptx::ptx_version(m.ptx).expect("a .version line");
        let (major, minor) = v.split_once('.').unwrap();
        let v = (major.parse::<u32>().unwrap(), minor.parse::<u32>().unwrap());
        assert!(
            v <= (9, 0),
            "{} sm_{}: PTX ISA {v:?} is newer than driver 580 loads",
            m.name,
            m.arch
        );
        assert_eq!(
            ptx::ptx_target(m.ptx),
            Some(format!("sm_{}", m.arch).as_str())
        );
    }
}

#[test]
fn driver_ptx_best_arch_never_exceeds_the_device() {
    for m in MODULES {
        let best = ptx::best_for(m.name, 90).unwrap();
        assert!(best.arch <= 90);
        assert!(ptx::best_for(m.name, 70).is_none_or(|b| b.arch <= 70));
    }
    assert!(ptx::best_for("no such module", 90).is_none());
}

#[test]
fn driver_ptx_stamp_is_sha256sum_of_sha256sums() {
    // What `sha256sum * | sha256sum` prints for the sample folder.
    let mut files = vec![
        ("b.cu".to_string(), b"two".to_vec()),
        ("a.cuh".to_string(), b"one".to_vec()),
    ];
    let stamp = ptx::stamp_of(&mut files);
    let have_sha = Command::new("sha256sum").arg("--version").output().is_ok();
    if have_sha {
        let dir = std::env::temp_dir().join(format!("candle-stamp-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("a.cuh"), "one").unwrap();
        std::fs::write(dir.join("b.cu"), "two").unwrap();
        let out = Command::new("sh")
            .arg("-c")
            .arg("LC_ALL=C sha256sum a.cuh b.cu | sha256sum")
            .current_dir(&dir)
            .output()
            .unwrap();
        let shell = String::from_utf8(out.stdout).unwrap();
        assert_eq!(shell.split_whitespace().next().unwrap(), stamp);
        assert_eq!(ptx::sources_stamp(&dir).unwrap(), stamp);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

/// The script end to end on the sample kernel: PTX with a loadable
/// `.version`, and a list that embeds them with the right stamp.
#[test]
fn driver_ptx_build_script_compiles_the_sample_kernel() {
    let root = crate_dir().join("../..");
    let venv = std::env::var_os("NVRTC_VENV")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| root.join("target/nvrtc-venv"));
    if !venv.join("bin/python").exists() {
        println!(
            "skipped: no NVRTC venv at {} (run scripts/install-nvrtc.sh)",
            venv.display()
        );
        return;
    }
    let src = crate_dir().join("tests/sample-kernels");
    let out = std::env::temp_dir().join(format!("candle-ptx-{}", std::process::id()));
    let run = Command::new("bash")
        .arg(root.join("scripts/build-ptx.sh"))
        .arg(&src)
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let list = std::fs::read_to_string(out.join("kernels.rs")).unwrap();
    assert!(list.contains(&ptx::sources_stamp(&src).unwrap()));
    let p = std::fs::read_to_string(out.join("sample.sm_80.ptx")).unwrap();
    assert_eq!(ptx::ptx_version(&p), Some("9.0"));
    assert!(list.contains("include_str!(\"sample.sm_80.ptx\")"));
    // The sample has no arch-specific code: its compute_90 PTX would be
    // the same, and is not kept.
    assert!(!out.join("sample.sm_90.ptx").exists());
    // The committed copy the driver tests embed is the same PTX.
    let committed = std::fs::read_to_string(src.join("ptx/sample.sm_80.ptx")).unwrap();
    assert_eq!(
        p, committed,
        "tests/sample-kernels/ptx is stale: rerun build-ptx.sh on it"
    );
    std::fs::remove_dir_all(&out).unwrap();
}
