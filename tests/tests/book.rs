//! The book's sources are consistent with the code they show.
//!
//! Each test runs one checker from `candle_tests::book` on the real workspace;
//! the checkers' own unit tests (in `src/book/`) show that each one catches the
//! problem it is for. Failures read `book/src/page.md:LINE: problem`.

use candle_tests::book::{code_blocks, images, includes, summary};
use candle_tests::DiskTree;

#[test]
fn includes_name_existing_files_anchors_and_lines() {
    includes::check(&DiskTree::workspace())
        .assert_none("{{#include}} directives in book/src/ that name no file, anchor or line");
}

#[test]
fn rust_blocks_show_only_included_code() {
    code_blocks::check(&DiskTree::workspace()).assert_none(&format!(
        "Rust code blocks in book/src/ with more than {} lines written in the page",
        code_blocks::MAX_WRITTEN_LINES
    ));
}

#[test]
fn summary_entries_name_existing_pages() {
    summary::check_entries_exist(&DiskTree::workspace())
        .assert_none("SUMMARY.md entries whose page does not exist");
}

#[test]
fn every_page_is_listed_in_the_summary() {
    summary::check_pages_listed(&DiskTree::workspace())
        .assert_none("pages in book/src/ that SUMMARY.md does not list");
}

#[test]
fn every_chapter_crate_has_a_page_in_the_summary() {
    let tree = DiskTree::workspace();
    assert!(
        !summary::chapter_crates(&tree).is_empty(),
        "found no chapter crates under chapters/ (is the workspace root {}?)",
        tree.root().display()
    );
    summary::check_chapters_have_pages(&tree).assert_none("chapter crates without a book page");
}

#[test]
fn every_image_exists() {
    images::check(&DiskTree::workspace()).assert_none("images in book/src/ that do not exist");
}
