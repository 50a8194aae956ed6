//! Tests of the parity harness itself: it must find the fixtures, and it
//! must fail when the numbers are wrong.

use super::*;
use safetensors::tensor::TensorView;
use safetensors::{Dtype, SafeTensors};
use serde_json::Value;
use std::fs;
use std::path::Path;

#[test]
fn the_fixture_folder_comes_from_candle_fixtures_when_set() {
    assert_eq!(resolve_fixtures_dir(None), default_fixtures_dir());
    assert_eq!(
        resolve_fixtures_dir(Some(OsString::new())),
        default_fixtures_dir()
    );
    assert_eq!(
        resolve_fixtures_dir(Some(OsString::from("/elsewhere/fixtures"))),
        PathBuf::from("/elsewhere/fixtures")
    );
    assert!(default_fixtures_dir().ends_with("fixtures"));
}

#[test]
fn coverage_selects_groups_and_ops() {
    let m = manifest::Manifest::load(&default_fixtures_dir().join("manifest.json")).unwrap();
    let covered =
        |id: &str| coverage_for(m.cases.iter().find(|c| c.id == id).unwrap(), COVERED).is_some();
    assert!(covered("add_0") && covered("max_0") && covered("split_1") && covered("einsum_1"));
    assert!(covered("causal_softmax_0"));
    assert!(covered("sdpa_0") && covered("mha_0") && covered("gpt2_tiny"));
    assert!(covered("conv2d_0") && covered("max_pool2d_0") && covered("conv_transpose2d_1"));
    assert!(covered("resnet_basic_block") && covered("resnet_basic_block_downsample"));
}

/// A temporary fixture folder, removed on drop.
struct TempFixtures(PathBuf);

impl TempFixtures {
    fn new(tag: &str) -> TempFixtures {
        let dir = std::env::temp_dir().join(format!("candle-parity-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        TempFixtures(dir)
    }
}

impl Drop for TempFixtures {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// The shipped manifest reduced to the cases `ids` (plus an extra `case`).
fn write_manifest(dir: &Path, ids: &[&str], extra: Option<Value>) {
    let text = fs::read_to_string(default_fixtures_dir().join("manifest.json")).unwrap();
    let mut m: Value = serde_json::from_str(&text).unwrap();
    let cases = m["cases"].as_array_mut().unwrap();
    cases.retain(|c| ids.contains(&c["id"].as_str().unwrap()));
    cases.extend(extra);
    fs::write(
        dir.join("manifest.json"),
        serde_json::to_string(&m).unwrap(),
    )
    .unwrap();
}

/// Copies a safetensors file, changing element 0 of each tensor in `keys`
/// (floats by +0.01, integers by +1).
fn copy_perturbed(from: &Path, to: &Path, keys: &[&str]) {
    let bytes = fs::read(from).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let mut entries: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> = st
        .tensors()
        .into_iter()
        .map(|(n, v)| (n, v.dtype(), v.shape().to_vec(), v.data().to_vec()))
        .collect();
    for key in keys {
        let e = entries
            .iter_mut()
            .find(|e| e.0 == *key)
            .expect("key to perturb");
        match e.1 {
            Dtype::F32 => {
                let v = f32::from_le_bytes(e.3[0..4].try_into().unwrap()) + 0.01;
                e.3[0..4].copy_from_slice(&v.to_le_bytes());
            }
            Dtype::I64 => {
                let v = i64::from_le_bytes(e.3[0..8].try_into().unwrap()) + 1;
                e.3[0..8].copy_from_slice(&v.to_le_bytes());
            }
            other => panic!("cannot perturb {other:?}"),
        }
    }
    let views: Vec<(String, TensorView<'_>)> = entries
        .iter()
        .map(|(n, d, s, b)| (n.clone(), TensorView::new(*d, s.clone(), b).unwrap()))
        .collect();
    fs::write(to, safetensors::serialize(views, None).unwrap()).unwrap();
}

#[test]
fn a_perturbed_fixture_makes_its_case_fail() {
    let tmp = TempFixtures::new("perturbed");
    let src = default_fixtures_dir();
    write_manifest(&tmp.0, &["add_0", "exp_0", "exp_1", "max_0"], None);
    copy_perturbed(
        &src.join("elementwise.safetensors"),
        &tmp.0.join("elementwise.safetensors"),
        &["exp_1/out", "exp_0/grad_x"],
    );
    copy_perturbed(
        &src.join("reductions.safetensors"),
        &tmp.0.join("reductions.safetensors"),
        &["max_0/indices"],
    );
    for f in ["elementwise.f64.safetensors", "reductions.f64.safetensors"] {
        fs::copy(src.join(f), tmp.0.join(f)).unwrap();
    }

    let report = run_suite(&tmp.0, Precision::F32).unwrap();
    let text = report.render();
    assert_eq!(report.summary_line(), "parity: 1/4 cases passed", "{text}");
    assert!(text.contains("FAIL exp_1: out[0, 0] = "), "{text}");
    assert!(text.contains("FAIL exp_0: grad_x[0] = "), "{text}");
    assert!(text.contains("FAIL max_0: indices[0, 0] = "), "{text}");
    assert!(text.contains("integers must be equal"), "{text}");
    // The float64 files were not touched.
    let report = run_suite(&tmp.0, Precision::F64).unwrap();
    assert_eq!(
        report.summary_line(),
        "parity (f64): 4/4 cases passed",
        "{}",
        report.render()
    );
}

#[test]
fn a_case_that_cannot_run_counts_as_failed_with_its_reason() {
    let tmp = TempFixtures::new("unrunnable");
    let src = default_fixtures_dir();
    let text = fs::read_to_string(src.join("manifest.json")).unwrap();
    let m: Value = serde_json::from_str(&text).unwrap();
    let mut odd = m["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "add_0")
        .unwrap()
        .clone();
    odd["id"] = "odd_0".into();
    odd["op"] = "frobnicate".into();
    write_manifest(&tmp.0, &["add_0"], Some(odd));
    // The f32 file is corrupt, the f64 one fine.
    fs::write(
        tmp.0.join("elementwise.safetensors"),
        b"\x10\0\0\0\0\0\0\0{\"oops\": 1}     ",
    )
    .unwrap();
    fs::copy(
        src.join("elementwise.f64.safetensors"),
        tmp.0.join("elementwise.f64.safetensors"),
    )
    .unwrap();

    let report = run_suite(&tmp.0, Precision::F32).unwrap();
    assert_eq!(report.passed(), 0);
    for o in &report.outcomes {
        let f = o.failure.as_deref().unwrap();
        assert!(f.contains("elementwise.safetensors"), "{f}");
    }
    let report = run_suite(&tmp.0, Precision::F64).unwrap();
    assert_eq!(report.summary_line(), "parity (f64): 1/2 cases passed");
    let f = report.outcome("odd_0").unwrap().failure.as_deref().unwrap();
    assert!(
        f.contains("frobnicate") && f.contains("no dispatcher entry"),
        "{f}"
    );
    // A missing manifest is the one error that stops the whole run.
    let err = run_suite(&tmp.0.join("nowhere"), Precision::F32).unwrap_err();
    assert!(err.contains("manifest.json"), "{err}");
}

/// A custom checker: passes when the case's file holds a tensor `<id>/param0`
/// (and crashes on `adam`).
fn has_param0(env: &CaseEnv<'_>) -> Result<(), Failure> {
    env.file()?.get(&format!("{}/param0", env.case.id))?;
    if env.case.id == "adam" {
        panic!("checker crashed on {}", env.case.id);
    }
    Ok(())
}

#[test]
fn groups_with_their_own_layout_run_through_a_custom_check() {
    let coverage = [Coverage::custom("optimizers", has_param0)];
    let report = run_suite_with(&default_fixtures_dir(), Precision::F32, &coverage).unwrap();
    let m = manifest::Manifest::load(&default_fixtures_dir().join("manifest.json")).unwrap();
    let n = m.cases.iter().filter(|c| c.group == "optimizers").count();
    assert_eq!(report.total(), n);
    // Every case passes but the one whose checker panicked, which fails with the message.
    for o in &report.outcomes {
        match &o.failure {
            None => assert_ne!(o.id, "adam"),
            Some(f) => assert!(
                o.id == "adam" && f.contains("panicked: checker crashed"),
                "{f}"
            ),
        }
    }
}

#[test]
fn inputs_with_a_stored_gradient_and_weights_named_after_their_output_need_no_flags() {
    // A generator that leaves out `differentiable` and `for_output` still
    // says enough: `grad_a` exists, so `a` is differentiated; `w_1` weighs `out_1`.
    let tmp = TempFixtures::new("implicit");
    let src = default_fixtures_dir();
    let text = fs::read_to_string(src.join("manifest.json")).unwrap();
    let mut m: Value = serde_json::from_str(&text).unwrap();
    let cases = m["cases"].as_array_mut().unwrap();
    cases.retain(|c| c["id"] == "add_0" || c["id"] == "split_0");
    for case in cases.iter_mut() {
        for t in case["tensors"].as_array_mut().unwrap() {
            let t = t.as_object_mut().unwrap();
            t.remove("differentiable");
            t.remove("for_output");
        }
    }
    fs::write(tmp.0.join("manifest.json"), m.to_string()).unwrap();
    for f in ["elementwise", "shape"] {
        for ext in ["safetensors", "f64.safetensors"] {
            let name = format!("{f}.{ext}");
            fs::copy(src.join(&name), tmp.0.join(&name)).unwrap();
        }
    }
    for precision in [Precision::F32, Precision::F64] {
        let report = run_suite(&tmp.0, precision).unwrap();
        assert_eq!(report.total(), 2);
        assert!(report.all_passed(), "{}", report.render());
    }
}
