//! The README's quick start is two commands, and CI runs its test command.

use candle_tests::readme::{self, README};
use candle_tests::workspace_root;
use std::fs;
use std::process::Command;

fn read_readme() -> String {
    fs::read_to_string(workspace_root().join(README)).expect("README.md is missing")
}

#[test]
fn readme_starts_with_two_commands() {
    readme::check_quick_start(&read_readme()).assert_none("README.md quick start");
}

#[test]
fn ci_runs_the_readme_test_command() {
    let expected = readme::test_command(&read_readme()).expect("README.md has no test command");
    let ci = workspace_root().join(".ci/run");
    let output = Command::new("bash")
        .arg(&ci)
        .arg("--print-test-command")
        .current_dir(workspace_root())
        .output()
        .expect("could not run bash");
    assert!(
        output.status.success(),
        ".ci/run --print-test-command failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let printed = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        printed.trim(),
        expected,
        ".ci/run would run a different test command than the one README.md gives"
    );
    let script = fs::read_to_string(&ci).expect(".ci/run is missing");
    assert!(
        script
            .lines()
            .any(|l| l.trim_start().starts_with("bash -c \"$test_command\"")),
        ".ci/run reads the README's test command but no longer runs it (`bash -c \"$test_command\"`)"
    );
    assert!(
        expected.starts_with("cargo test"),
        "README.md's second quick-start command should run the tests, found `{expected}`"
    );
}

#[cfg(unix)]
#[test]
fn ci_script_is_executable() {
    use std::os::unix::fs::PermissionsExt;
    let mode = fs::metadata(workspace_root().join(".ci/run"))
        .expect(".ci/run is missing")
        .permissions()
        .mode();
    assert!(
        mode & 0o111 != 0,
        ".ci/run is not executable (chmod +x .ci/run)"
    );
}
