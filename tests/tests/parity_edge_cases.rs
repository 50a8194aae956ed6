//! `tests/fixtures/edge_cases`: a small fixture set made by
//! `tests/fixtures/generate.py --variant edges` (the exact command is in its
//! manifest), with the argument forms the shipped set does not use: negative
//! and multiple dims, `dim=None` with `keepdim`, `-1` in shapes, 0-d and
//! size-1 tensors, empty split sections, one- and three-operand einsum,
//! `padding_idx`, `eps=None`, probability targets, class weights,
//! `reduction='none'`, optimizer flags (`maximize`, `amsgrad`, `nesterov`),
//! other norm types and schedule parameters. It proves, on every test run,
//! that the suite reads what the generator writes and that the library
//! agrees with PyTorch on those arguments. Always this folder, whatever
//! `CANDLE_FIXTURES` says (that variable is for `--test parity`).
//!
//! ```text
//! cargo test -p candle-tests --test parity_edge_cases -- --nocapture
//! ```

use candle_tests::parity::layout::layout_problems;
use candle_tests::parity::{default_fixtures_dir, run_suite, Precision};

#[test]
fn the_generators_edge_cases_match_pytorch_in_f32_and_f64() {
    let dir = default_fixtures_dir().join("edge_cases");
    let problems = layout_problems(&dir).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        problems.is_empty(),
        "layout of {}: {problems:#?}",
        dir.display()
    );
    let mut failed = Vec::new();
    for precision in [Precision::F32, Precision::F64] {
        let report = run_suite(&dir, precision).unwrap_or_else(|e| panic!("{e}"));
        for line in report.failure_lines() {
            println!("edge cases: {line}");
        }
        println!(
            "edge cases ({precision:?}): {}/{} passed",
            report.passed(),
            report.total()
        );
        assert!(report.total() >= 80, "{}", report.summary_line());
        if !report.all_passed() {
            failed.push(format!(
                "{precision:?}: {}/{}",
                report.passed(),
                report.total()
            ));
        }
    }
    assert!(
        failed.is_empty(),
        "{}: {}",
        dir.display(),
        failed.join("; ")
    );
}
