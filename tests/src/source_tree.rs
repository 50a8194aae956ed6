//! Read-only access to the files the checks look at: the real workspace on disk,
//! or a small map of files in memory for the checks' own tests.
//!
//! All paths are relative to the workspace root and written with `/`.
//! [`normalize`] resolves `.` and `..` lexically, so a page's
//! `../../chapters/01-scalar-autograd/src/lib.rs` names the same key in both trees.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Component, Path, PathBuf};

/// The files a check may read.
pub trait SourceTree {
    /// The file's text, or `None` when there is no such (UTF-8) file.
    fn read(&self, path: &Path) -> Option<String>;
    /// Whether a file *or* folder exists at `path`.
    fn exists(&self, path: &Path) -> bool;
    /// Whether `path` is a folder.
    fn is_dir(&self, path: &Path) -> bool;
    /// Every file below `dir` (recursively), sorted, as workspace-relative paths.
    fn files_under(&self, dir: &Path) -> Vec<PathBuf>;
    /// The immediate sub-folders of `dir`, sorted, as workspace-relative paths.
    fn dirs_in(&self, dir: &Path) -> Vec<PathBuf>;
}

/// Resolves `.` and `..` without touching the file system. A `..` above the
/// root is kept, so such a path names nothing in either tree.
pub fn normalize(path: &Path) -> PathBuf {
    let mut parts: Vec<Component> = Vec::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => match parts.last() {
                Some(Component::Normal(_)) => {
                    parts.pop();
                }
                _ => parts.push(component),
            },
            other => parts.push(other),
        }
    }
    parts.iter().collect()
}

/// The workspace on disk.
pub struct DiskTree {
    root: PathBuf,
}

impl DiskTree {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        DiskTree { root: root.into() }
    }

    /// The workspace this test crate belongs to.
    pub fn workspace() -> Self {
        DiskTree::new(crate::workspace_root())
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn walk(&self, dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(entries) = fs::read_dir(self.root.join(dir)) else {
            return;
        };
        for entry in entries.flatten() {
            let rel = dir.join(entry.file_name());
            match entry.file_type() {
                Ok(t) if t.is_dir() => self.walk(&rel, out),
                Ok(_) => out.push(rel),
                Err(_) => {}
            }
        }
    }
}

impl SourceTree for DiskTree {
    fn read(&self, path: &Path) -> Option<String> {
        fs::read_to_string(self.root.join(normalize(path))).ok()
    }

    fn exists(&self, path: &Path) -> bool {
        self.root.join(normalize(path)).exists()
    }

    fn is_dir(&self, path: &Path) -> bool {
        self.root.join(normalize(path)).is_dir()
    }

    fn files_under(&self, dir: &Path) -> Vec<PathBuf> {
        let mut out = Vec::new();
        self.walk(&normalize(dir), &mut out);
        out.sort();
        out
    }

    fn dirs_in(&self, dir: &Path) -> Vec<PathBuf> {
        let dir = normalize(dir);
        let Ok(entries) = fs::read_dir(self.root.join(&dir)) else {
            return Vec::new();
        };
        let mut out: Vec<PathBuf> = entries
            .flatten()
            .filter(|e| e.file_type().map(|t| t.is_dir()).unwrap_or(false))
            .map(|e| dir.join(e.file_name()))
            .collect();
        out.sort();
        out
    }
}

/// A few files in memory: `MemoryTree::new(&[("book/src/SUMMARY.md", "...")])`.
/// Folders exist implicitly when some file lies below them.
#[derive(Default, Clone)]
pub struct MemoryTree {
    files: BTreeMap<PathBuf, String>,
}

impl MemoryTree {
    pub fn new(files: &[(&str, &str)]) -> Self {
        let mut tree = MemoryTree::default();
        for (path, text) in files {
            tree.insert(path, text);
        }
        tree
    }

    pub fn insert(&mut self, path: &str, text: &str) {
        self.files
            .insert(normalize(Path::new(path)), text.to_string());
    }
}

impl SourceTree for MemoryTree {
    fn read(&self, path: &Path) -> Option<String> {
        self.files.get(&normalize(path)).cloned()
    }

    fn exists(&self, path: &Path) -> bool {
        let path = normalize(path);
        self.files.contains_key(&path) || self.is_dir(&path)
    }

    fn is_dir(&self, path: &Path) -> bool {
        let path = normalize(path);
        self.files
            .keys()
            .any(|k| k != &path && k.starts_with(&path))
    }

    fn files_under(&self, dir: &Path) -> Vec<PathBuf> {
        let dir = normalize(dir);
        self.files
            .keys()
            .filter(|k| *k != &dir && k.starts_with(&dir))
            .cloned()
            .collect()
    }

    fn dirs_in(&self, dir: &Path) -> Vec<PathBuf> {
        let dir = normalize(dir);
        let mut out: Vec<PathBuf> = self
            .files
            .keys()
            .filter_map(|k| {
                let rest = k.strip_prefix(&dir).ok()?;
                let mut comps = rest.components();
                let first = comps.next()?;
                // Only a component with something below it is a folder.
                comps.next()?;
                Some(dir.join(first))
            })
            .collect();
        out.dedup();
        out.sort();
        out.dedup();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_resolves_parent_components() {
        assert_eq!(
            normalize(Path::new("book/src/../../chapters/01-x/src/lib.rs")),
            PathBuf::from("chapters/01-x/src/lib.rs")
        );
        assert_eq!(normalize(Path::new("./a/./b")), PathBuf::from("a/b"));
        assert_eq!(normalize(Path::new("../a")), PathBuf::from("../a"));
    }

    #[test]
    fn memory_tree_knows_files_and_folders() {
        let tree = MemoryTree::new(&[("a/b/c.txt", "hi"), ("a/d.txt", "yo")]);
        assert_eq!(tree.read(Path::new("a/b/../d.txt")).as_deref(), Some("yo"));
        assert!(tree.is_dir(Path::new("a/b")));
        assert!(!tree.is_dir(Path::new("a/d.txt")));
        assert!(tree.exists(Path::new("a")));
        assert!(!tree.exists(Path::new("a/e.txt")));
        assert_eq!(tree.dirs_in(Path::new("a")), vec![PathBuf::from("a/b")]);
        assert_eq!(tree.files_under(Path::new("a")).len(), 2);
    }

    #[test]
    fn disk_tree_lists_reads_and_resolves() {
        let root = std::env::temp_dir().join(format!("candle-disk-tree-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        fs::create_dir_all(root.join("book/src/figures")).unwrap();
        fs::create_dir_all(root.join("chapters/01-x/src")).unwrap();
        fs::write(root.join("book/src/a.md"), "a").unwrap();
        fs::write(root.join("book/src/figures/f.png"), "png").unwrap();
        fs::write(root.join("chapters/01-x/src/lib.rs"), "lib").unwrap();
        let tree = DiskTree::new(&root);
        let files = tree.files_under(Path::new("book/src"));
        let dirs = tree.dirs_in(Path::new("chapters"));
        let read = tree.read(Path::new("book/src/../../chapters/01-x/src/lib.rs"));
        let figures_is_dir = tree.is_dir(Path::new("book/src/figures"));
        let missing = tree.exists(Path::new("book/src/b.md"));
        fs::remove_dir_all(&root).unwrap();
        assert_eq!(
            files,
            vec![
                PathBuf::from("book/src/a.md"),
                PathBuf::from("book/src/figures/f.png")
            ]
        );
        assert_eq!(dirs, vec![PathBuf::from("chapters/01-x")]);
        assert_eq!(read.as_deref(), Some("lib"));
        assert!(figures_is_dir);
        assert!(!missing);
    }
}
