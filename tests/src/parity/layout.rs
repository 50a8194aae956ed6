//! Checking that a fixture folder is laid out as `tests/fixtures/README.md`
//! says, before any number is compared.
//!
//! The parity run reports a case whose file misses a key as a failed case,
//! which is right for a library run but says little about a fixture set made
//! elsewhere (by `tests/fixtures/generate.py`, or a set we have not seen).
//! [`layout_problems`] reads the manifest and every file it names and lists
//! what does not fit the documented format: a key missing from the float32 or
//! the float64 file, a stored shape or dtype that is not the manifest's, an
//! output without its loss weight `w`, a gradient whose input is missing or
//! has another shape, a tolerance that is not a pair of bounds, an
//! `lr_schedulers.json` whose count is not the manifest's. The same check
//! passes on the shipped set and on the generator's output, which is what
//! "the generator writes the shipped format" means in a test.

use super::fixture_file::FixtureFile;
use super::manifest::{Case, Manifest, Role};
use super::runner::weight_for;
use chapter_02::DType;
use serde_json::Value;
use std::collections::HashMap;
use std::path::Path;

/// Groups with layouts of their own that this check does not look into
/// (their chapters read them): GPT-2's folder and the tokenizer's strings.
const UNCHECKED_GROUPS: &[&str] = &["gpt2_tiny", "tokenizer"];

/// Every way `dir` departs from the documented fixture format, one line
/// each (`case id: what`). `Err` only when the manifest cannot be read.
pub fn layout_problems(dir: &Path) -> Result<Vec<String>, String> {
    let manifest = Manifest::load(&dir.join("manifest.json"))?;
    let mut files: HashMap<String, Result<FixtureFile, String>> = HashMap::new();
    let mut problems = Vec::new();
    let mut ids = std::collections::BTreeSet::new();
    for case in &manifest.cases {
        if !ids.insert(case.id.as_str()) {
            problems.push(format!("{}: the id is used twice", case.id));
        }
        if UNCHECKED_GROUPS.contains(&case.group.as_str()) {
            continue;
        }
        let mut say = |what: String| problems.push(format!("{}: {what}", case.id));
        if case.group == "lr_schedulers" {
            check_schedules(dir, case, &mut say);
            continue;
        }
        if case.tensors.is_empty() {
            continue;
        }
        for (tol, which) in [(&case.tol, "tol"), (&case.tol_f64, "tol_f64")] {
            if tol.as_ref().and_then(|t| t.bounds()).is_none() {
                say(format!("`{which}` is not {{rtol, atol}}"));
            }
        }
        for (name, float) in [(&case.file, DType::F32), (&case.file_f64, DType::F64)] {
            let Some(name) = name else {
                say(format!("no {float} file is named"));
                continue;
            };
            let file = files
                .entry(name.clone())
                .or_insert_with(|| FixtureFile::load(&dir.join(name)));
            match file {
                Ok(file) => check_tensors(case, file, float, &mut say),
                Err(e) => say(e.clone()),
            }
        }
        check_roles(case, &mut say);
    }
    Ok(problems)
}

/// Every tensor of `case` is in `file` with the manifest's shape, and with
/// its dtype (floats as `float`, the file's precision).
fn check_tensors(case: &Case, file: &FixtureFile, float: DType, say: &mut impl FnMut(String)) {
    for spec in &case.tensors {
        let t = match file.get(&spec.key) {
            Ok(t) => t,
            Err(e) => {
                say(e);
                continue;
            }
        };
        if t.dims() != spec.shape.as_slice() {
            say(format!(
                "`{}` has shape {:?} in {}, the manifest says {:?}",
                spec.key,
                t.dims(),
                file.path().display(),
                spec.shape
            ));
        }
        let want = match spec.dtype.as_str() {
            "f32" | "f64" => float.as_str(),
            other => other,
        };
        if t.dtype().as_str() != want {
            say(format!(
                "`{}` is {} in {}, expected {want}",
                spec.key,
                t.dtype(),
                file.path().display()
            ));
        }
    }
}

/// Generic cases (tensors with roles): at least one input and one output,
/// a `w` of the same shape for every output, a gradient only of an input
/// and with its shape.
fn check_roles(case: &Case, say: &mut impl FnMut(String)) {
    if case.tensors.iter().all(|t| t.role.is_none()) {
        return; // optimizers, clipping: a layout of their own
    }
    if case.with_role(Role::Input).next().is_none() || case.with_role(Role::Output).next().is_none()
    {
        say("a generic case needs inputs and outputs".into());
    }
    for out in case.with_role(Role::Output) {
        match weight_for(case, &out.name) {
            Ok(w) if w.shape != out.shape => say(format!(
                "`{}` has shape {:?}, its output `{}` {:?}",
                w.name, w.shape, out.name, out.shape
            )),
            Ok(_) => {}
            Err(f) => say(f.0),
        }
    }
    for g in case.with_role(Role::Grad) {
        let of =
            g.of.as_deref()
                .unwrap_or_else(|| g.name.trim_start_matches("grad_"));
        match case.with_role(Role::Input).find(|i| i.name == of) {
            Some(i) if i.shape != g.shape => say(format!(
                "`{}` has shape {:?}, its input `{of}` {:?}",
                g.name, g.shape, i.shape
            )),
            Some(_) => {}
            None => say(format!("`{}` is the gradient of no input `{of}`", g.name)),
        }
    }
}

/// `lr_schedulers.json`: a `schedulers` list as long as the manifest's
/// `count`, each with a class, `lrs` numbers and, when present, as many
/// `momentums`.
fn check_schedules(dir: &Path, case: &Case, say: &mut impl FnMut(String)) {
    let name = case.file.as_deref().unwrap_or("lr_schedulers.json");
    let json: Value = match std::fs::read_to_string(dir.join(name))
        .map_err(|e| e.to_string())
        .and_then(|t| serde_json::from_str(&t).map_err(|e| e.to_string()))
    {
        Ok(v) => v,
        Err(e) => return say(format!("{name}: {e}")),
    };
    let Some(list) = json["schedulers"].as_array() else {
        return say(format!("{name}: no `schedulers` list"));
    };
    if let Some(n) = case.extra.get("count").and_then(Value::as_u64) {
        if n as usize != list.len() {
            say(format!(
                "the manifest counts {n} schedulers, {name} lists {}",
                list.len()
            ));
        }
    }
    for (i, s) in list.iter().enumerate() {
        let lrs = s["lrs"].as_array().map(Vec::len);
        let numbers = |v: &Value| {
            v.as_array()
                .is_some_and(|a| a.iter().all(|x| x.as_f64().is_some()))
        };
        if s["scheduler"].as_str().is_none() || !numbers(&s["lrs"]) || lrs == Some(0) {
            say(format!(
                "{name}: scheduler #{i} needs a `scheduler` class and `lrs` numbers"
            ));
        }
        if !s["momentums"].is_null()
            && (!numbers(&s["momentums"]) || s["momentums"].as_array().map(Vec::len) != lrs)
        {
            say(format!(
                "{name}: scheduler #{i}: `momentums` must be as many numbers as `lrs`"
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parity::default_fixtures_dir;
    use std::fs;

    #[test]
    fn the_shipped_set_and_the_generators_edge_cases_have_the_documented_layout() {
        for dir in [
            default_fixtures_dir(),
            default_fixtures_dir().join("edge_cases"),
        ] {
            let problems = layout_problems(&dir).unwrap();
            assert!(problems.is_empty(), "{}: {problems:#?}", dir.display());
        }
    }

    #[test]
    fn a_wrong_shape_a_missing_weight_and_a_stray_gradient_are_named() {
        let src = default_fixtures_dir().join("edge_cases");
        let dir = std::env::temp_dir().join(format!("candle-layout-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let text = fs::read_to_string(src.join("manifest.json")).unwrap();
        let mut m: Value = serde_json::from_str(&text).unwrap();
        let cases = m["cases"].as_array_mut().unwrap();
        cases.retain(|c| c["id"] == "sum_0" || c["group"] == "lr_schedulers");
        let case = &mut cases[0];
        for t in case["tensors"].as_array_mut().unwrap() {
            match t["role"].as_str() {
                Some("output") => t["shape"] = serde_json::json!([9]),
                Some("w") => t["role"] = "aux".into(),
                Some("grad") => t["of"] = "y".into(),
                _ => {}
            }
        }
        case["tol_f64"] = "loose".into();
        cases[1]["count"] = 99.into();
        fs::write(dir.join("manifest.json"), m.to_string()).unwrap();
        for f in [
            "reductions.safetensors",
            "reductions.f64.safetensors",
            "lr_schedulers.json",
        ] {
            fs::copy(src.join(f), dir.join(f)).unwrap();
        }
        let problems = layout_problems(&dir).unwrap().join("\n");
        fs::remove_dir_all(&dir).unwrap();
        for want in [
            "sum_0: `sum_0/out` has shape [1, 1, 1] in",
            "the manifest says [9]",
            "sum_0: the fixture has no loss weight for output `out`",
            "sum_0: `grad_x` is the gradient of no input `y`",
            "sum_0: `tol_f64` is not {rtol, atol}",
            "lr_schedulers: the manifest counts 99 schedulers",
        ] {
            assert!(problems.contains(want), "{want:?} not in:\n{problems}");
        }
    }
}
