//! The PyTorch parity suite: every covered fixture case (see
//! `candle_tests::parity::COVERED`) must match PyTorch's outputs and
//! gradients, in float32 and in float64. Run it with the failing cases
//! printed:
//!
//! ```text
//! cargo test -p candle-tests --test parity -- --nocapture
//! ```
//!
//! `CANDLE_FIXTURES=/path/to/fixtures` runs it against another fixture set.

use candle_tests::parity::{fixtures_dir, run_suite, Precision};

#[test]
fn every_covered_case_matches_pytorch_in_f32_and_f64() {
    let dir = fixtures_dir();
    let mut summaries = Vec::new();
    for precision in [Precision::F32, Precision::F64] {
        let report = run_suite(&dir, precision).unwrap_or_else(|e| panic!("{e}"));
        println!("{}", report.render());
        if !report.all_passed() {
            summaries.push(report.summary_line());
        }
    }
    assert!(
        summaries.is_empty(),
        "fixtures in {}: {}",
        dir.display(),
        summaries.join("; ")
    );
}
