//! The data that ships in `data/` is what `data/README.md` describes: every file
//! has a recorded SHA-256 sum that still matches, and every folder has a section.

use candle_tests::checksums::check_sums_file;
use candle_tests::{workspace_root, Problem, Problems};
use std::fs;
use std::path::{Path, PathBuf};

/// Folders whose files are owned and documented elsewhere (the figure font
/// carries its own licence file); they still need a section in the README.
const NOT_SUMMED: [&str; 1] = ["data/fonts"];

fn files_under(root: &Path, dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(root.join(dir)).unwrap().flatten() {
        let rel = dir.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            files_under(root, &rel, out);
        } else {
            out.push(rel);
        }
    }
}

#[test]
fn data_files_match_their_checksums() {
    let root = workspace_root();
    let mut problems = Problems::default();
    for sums in ["data/SHA256SUMS", "data/mnist/SHA256SUMS"] {
        problems.extend(check_sums_file(&root, Path::new(sums)).0);
    }
    problems.assert_none("data files whose checksum does not match");
}

#[test]
fn every_data_file_has_a_checksum() {
    let root = workspace_root();
    let (_, listed) = check_sums_file(&root, Path::new("data/SHA256SUMS"));
    let mut files = Vec::new();
    files_under(&root, Path::new("data"), &mut files);
    let mut problems = Problems::default();
    for file in files {
        let name = file.file_name().and_then(|n| n.to_str()).unwrap_or("");
        let skip = name == "README.md"
            || name == "SHA256SUMS"
            || NOT_SUMMED.iter().any(|dir| file.starts_with(dir));
        if !skip && !listed.contains(&file) {
            problems.push(Problem::new(
                "data/SHA256SUMS",
                0,
                format!(
                    "{} has no sum: run `cd data && sha256sum {}` and add the line, and describe the file in data/README.md",
                    file.display(),
                    file.strip_prefix("data").unwrap().display()
                ),
            ));
        }
    }
    problems.assert_none("data files without a recorded checksum");
}

#[test]
fn every_data_folder_is_described_in_the_data_readme() {
    let root = workspace_root();
    let readme =
        fs::read_to_string(root.join("data/README.md")).expect("data/README.md is missing");
    let mut problems = Problems::default();
    for entry in fs::read_dir(root.join("data")).unwrap().flatten() {
        if !entry.file_type().unwrap().is_dir() {
            continue;
        }
        let name = entry.file_name().to_string_lossy().to_string();
        let heading = format!("## {name}/");
        if !readme.lines().any(|l| l.starts_with(&heading)) {
            problems.push(Problem::new(
                "data/README.md",
                0,
                format!("data/{name}/ has no section `{heading}` (source, licence, files)"),
            ));
        }
    }
    problems.assert_none("data folders that data/README.md does not describe");
}
