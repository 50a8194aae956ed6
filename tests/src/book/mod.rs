//! Checks of the mdbook sources in `book/src/`.
//!
//! The book shows code only by including it from the chapter crates (see
//! ARCHITECTURE.md), so most of what can go wrong with it is a broken
//! reference: an include whose file or anchor is gone, a page missing from
//! `SUMMARY.md`, an image that was never generated. mdbook itself only warns
//! about these and still builds; these checks make them test failures.
//!
//! Each submodule holds one kind of check:
//! - [`markdown`]: the little Markdown reading the checks share (fenced code blocks).
//! - [`includes`]: `{{#include}}`-style directives name existing files, anchors and lines.
//! - [`code_blocks`]: Rust code in the book comes from tested crates, not from the prose.
//! - [`summary`]: `SUMMARY.md` and the pages agree, and every chapter crate has a page.
//! - [`images`]: every image a page shows exists.
//! - [`figures`]: figures are `<figure>`s with an alt sentence and a caption
//!   holding the regenerate command; every figure file is used, none missing.
//! - [`figure_size`]: a figure's text is shown at a legible size.
//! - [`exercises`]: each page numbers its exercises from 1.
//! - [`html`]: the built book has no raw TeX and no KaTeX error.

pub mod code_blocks;
pub mod exercises;
pub mod figure_size;
pub mod figures;
pub mod html;
pub mod images;
pub mod includes;
pub mod markdown;
pub mod summary;

use crate::{Problems, SourceTree};
use std::path::{Path, PathBuf};

/// The book's source folder, relative to the workspace root (`src` in `book.toml`).
pub const BOOK_SRC: &str = "book/src";

/// The book's table of contents.
pub const SUMMARY: &str = "book/src/SUMMARY.md";

/// Every Markdown page below `book/src/` (including `SUMMARY.md`), sorted.
pub fn pages(tree: &dyn SourceTree) -> Vec<PathBuf> {
    tree.files_under(Path::new(BOOK_SRC))
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect()
}

/// Runs `check` on every page and collects what it finds. A page that cannot
/// be read as UTF-8 is itself a problem.
pub fn check_pages(
    tree: &dyn SourceTree,
    mut check: impl FnMut(&Path, &str) -> Problems,
) -> Problems {
    let mut problems = Problems::default();
    for page in pages(tree) {
        match tree.read(&page) {
            Some(text) => problems.extend(check(&page, &text)),
            None => problems.push(crate::Problem::new(&page, 0, "page is not valid UTF-8")),
        }
    }
    problems
}

/// Resolves a path written in `page` (relative to the page's folder) to a
/// workspace-relative path.
pub fn resolve_from_page(page: &Path, written: &str) -> PathBuf {
    let dir = page.parent().unwrap_or(Path::new(""));
    crate::source_tree::normalize(&dir.join(written))
}
