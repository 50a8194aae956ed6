//! The shipped data sets match the SHA-256 sums recorded beside them, in the
//! format of `sha256sum` (so `cd data && sha256sum -c SHA256SUMS` checks the
//! same thing from the shell).

use crate::{Problem, Problems};
use sha2::{Digest, Sha256};
use std::fs;
use std::path::{Path, PathBuf};

/// One line of a `SHA256SUMS` file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sum {
    pub line: usize,
    /// Lower-case hex digest.
    pub sha256: String,
    /// Path relative to the folder of the sums file.
    pub path: String,
}

/// Parses `sha256sum` output: `<64 hex>  <path>` (or `<64 hex> *<path>` for binary mode).
pub fn parse(text: &str) -> Result<Vec<Sum>, (usize, String)> {
    let mut sums = Vec::new();
    for (index, line) in text.lines().enumerate() {
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let parsed = line.split_once(' ').and_then(|(hash, rest)| {
            let path = rest.strip_prefix(' ').or_else(|| rest.strip_prefix('*'))?;
            let ok = hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit());
            (ok && !path.is_empty()).then(|| (hash.to_ascii_lowercase(), path.to_string()))
        });
        match parsed {
            Some((sha256, path)) => sums.push(Sum {
                line: index + 1,
                sha256,
                path,
            }),
            None => return Err((index + 1, format!("not a `sha256sum` line: {line:?}"))),
        }
    }
    Ok(sums)
}

/// Lower-case hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Checks every file a sums file lists. `root` is the workspace root and
/// `sums_file` is relative to it; problems name the sums file and line.
pub fn check_sums_file(root: &Path, sums_file: &Path) -> (Problems, Vec<PathBuf>) {
    let mut problems = Problems::default();
    let mut listed = Vec::new();
    let Ok(text) = fs::read_to_string(root.join(sums_file)) else {
        problems.push(Problem::new(sums_file, 0, "checksum file is missing"));
        return (problems, listed);
    };
    let sums = match parse(&text) {
        Ok(sums) => sums,
        Err((line, message)) => {
            problems.push(Problem::new(sums_file, line, message));
            return (problems, listed);
        }
    };
    let dir = sums_file.parent().unwrap_or(Path::new(""));
    for sum in sums {
        let file = dir.join(&sum.path);
        listed.push(file.clone());
        match fs::read(root.join(&file)) {
            Err(_) => problems.push(Problem::new(
                sums_file,
                sum.line,
                format!("{} is listed but missing", file.display()),
            )),
            Ok(bytes) => {
                let actual = sha256_hex(&bytes);
                if actual != sum.sha256 {
                    problems.push(Problem::new(
                        sums_file,
                        sum.line,
                        format!(
                            "{} has sha256 {actual}, but {} is recorded; if the change is intended, \
                             update the sum and data/README.md",
                            file.display(),
                            sum.sha256
                        ),
                    ));
                }
            }
        }
    }
    (problems, listed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_of_known_input() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn parses_sha256sum_output() {
        let hash = "a".repeat(64);
        let sums = parse(&format!("{hash}  mnist/x.gz\n\n{hash} *b.bin\n")).unwrap();
        assert_eq!(sums.len(), 2);
        assert_eq!(sums[0].path, "mnist/x.gz");
        assert_eq!(sums[1].path, "b.bin");
        assert_eq!(sums[1].line, 3);
        assert!(parse("xyz  file\n").is_err());
    }

    #[test]
    fn a_changed_or_missing_file_is_caught() {
        let root = std::env::temp_dir().join(format!("candle-checksums-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        fs::create_dir_all(root.join("d")).unwrap();
        fs::write(root.join("d/a.txt"), b"abc").unwrap();
        fs::write(root.join("d/b.txt"), b"changed").unwrap();
        let good = sha256_hex(b"abc");
        let stale = sha256_hex(b"original");
        fs::write(
            root.join("d/SHA256SUMS"),
            format!("{good}  a.txt\n{stale}  b.txt\n{good}  gone.txt\n"),
        )
        .unwrap();
        let (problems, listed) = check_sums_file(&root, Path::new("d/SHA256SUMS"));
        fs::remove_dir_all(&root).unwrap();
        assert_eq!(listed.len(), 3);
        assert_eq!(problems.len(), 2, "{problems}");
        assert!(
            problems.mention("d/SHA256SUMS:2: d/b.txt has sha256"),
            "{problems}"
        );
        assert!(
            problems.mention("d/SHA256SUMS:3: d/gone.txt is listed but missing"),
            "{problems}"
        );
    }
}
