//! One problem found by a check, with the file and line it is about.

use std::fmt;
use std::path::{Path, PathBuf};

/// A problem a check found: `file:line: message`, like a compiler diagnostic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Path relative to the workspace root, e.g. `book/src/02-tensors.md`.
    pub file: PathBuf,
    /// 1-based line number; 0 when the problem is about the whole file.
    pub line: usize,
    pub message: String,
}

impl Problem {
    pub fn new(file: impl AsRef<Path>, line: usize, message: impl Into<String>) -> Self {
        Problem {
            file: file.as_ref().to_path_buf(),
            line,
            message: message.into(),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.file.display(), self.message)
        } else {
            write!(f, "{}:{}: {}", self.file.display(), self.line, self.message)
        }
    }
}

/// The problems of one check. `assert_none` turns them into one readable test failure.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Problems(pub Vec<Problem>);

impl Problems {
    pub fn push(&mut self, problem: Problem) {
        self.0.push(problem);
    }

    pub fn extend(&mut self, other: Problems) {
        self.0.extend(other.0);
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Problem> {
        self.0.iter()
    }

    /// True when some problem's message contains `needle` (for the checkers' own tests).
    pub fn mention(&self, needle: &str) -> bool {
        self.0.iter().any(|p| p.to_string().contains(needle))
    }

    /// Panics with every problem on its own line, headed by what the check was about.
    #[track_caller]
    pub fn assert_none(&self, check: &str) {
        if !self.0.is_empty() {
            let list: Vec<String> = self.0.iter().map(|p| format!("  {p}")).collect();
            panic!(
                "{check}: {} problem(s)\n{}\n",
                self.0.len(),
                list.join("\n")
            );
        }
    }
}

impl fmt::Display for Problems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for p in &self.0 {
            writeln!(f, "{p}")?;
        }
        Ok(())
    }
}
