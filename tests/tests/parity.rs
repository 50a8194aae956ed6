//! The PyTorch parity suite: every covered fixture case (see
//! `candle_tests::parity::COVERED`) must match PyTorch's outputs and
//! gradients, in float32 and in float64. Run it with the failing cases
//! printed:
//!
//! ```text
//! cargo test -p candle-tests --test parity -- --nocapture
//! ```
//!
//! `CANDLE_FIXTURES=/path/to/fixtures` runs it against another fixture set
//! (`tests/fixtures/generate.py` makes them; see `tests/fixtures/README.md`).

use candle_tests::parity::layout::layout_problems;
use candle_tests::parity::{fixtures_dir, run_suite, Precision};
use std::path::Path;

/// Runs the covered cases of `dir` in both precisions, printing the
/// failures and the summary lines; the summaries of the runs that failed.
fn run_both(dir: &Path) -> Vec<String> {
    // A set laid out differently from the documented format is named first:
    // it explains failures better than the numbers do (not an error by
    // itself: an uncovered group may use a layout we do not check).
    match layout_problems(dir) {
        Ok(problems) => {
            for p in &problems {
                println!("layout: {p}");
            }
        }
        Err(e) => println!("layout: {e}"),
    }
    let mut failed = Vec::new();
    for precision in [Precision::F32, Precision::F64] {
        let report = run_suite(dir, precision).unwrap_or_else(|e| panic!("{e}"));
        println!("{}", report.render());
        if !report.all_passed() {
            failed.push(report.summary_line());
        }
    }
    failed
}

#[test]
fn every_covered_case_matches_pytorch_in_f32_and_f64() {
    let dir = fixtures_dir();
    let failed = run_both(&dir);
    assert!(
        failed.is_empty(),
        "fixtures in {}: {}",
        dir.display(),
        failed.join("; ")
    );
}
