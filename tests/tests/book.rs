//! The book's sources are consistent with the code they show.
//!
//! Each test runs one checker from `candle_tests::book` on the real workspace;
//! the checkers' own unit tests (in `src/book/`) show that each one catches the
//! problem it is for. Failures read `book/src/page.md:LINE: problem`.

use candle_tests::book::{
    code_blocks, exercises, figure_size, figures, html, images, includes, summary,
};
use candle_tests::{DiskTree, SourceTree};
use std::path::Path;
use std::sync::OnceLock;

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

#[test]
fn figures_have_an_alt_sentence_and_a_caption_with_the_regenerate_command() {
    figures::check_markup(&DiskTree::workspace())
        .assert_none("figures in book/src/ that are not in the agreed <figure> form");
}

#[test]
fn every_figure_file_is_used_and_every_used_one_exists() {
    figures::check_files(&DiskTree::workspace())
        .assert_none("figure files that no page uses, or that a page uses but do not exist");
}

#[test]
fn exercises_are_numbered_from_one_on_each_page() {
    exercises::check(&DiskTree::workspace()).assert_none("exercise numbering in book/src/");
}

/// Figures the figure files' owner is to redraw (narrower, or with larger
/// text): listed here so that the check holds every other figure to the rule
/// now. A listed figure that becomes legible fails the test, so the list only
/// shrinks.
const KNOWN_TOO_SMALL: &[&str] = &[];

#[test]
fn figures_are_shown_at_a_legible_size() {
    let tree = DiskTree::workspace();
    let root = tree.root().to_path_buf();
    let css = std::fs::read_to_string(root.join("book/theme/candle.css"))
        .expect("book/theme/candle.css (the book's stylesheet) is readable");
    let max_width = figure_size::figure_max_width(&css)
        .expect("book/theme/candle.css sets --figure-max-width: NNNpx");
    let room = figure_size::figure_room(max_width);
    let mut problems = candle_tests::Problems::default();
    let mut now_legible = Vec::new();
    let mut checked = 0;
    for file in tree.files_under(Path::new(figures::FIGURES)) {
        let bytes = std::fs::read(root.join(&file)).expect("figure file is readable");
        let size = match file.extension().and_then(|e| e.to_str()) {
            Some("svg") => figure_size::svg_size(&String::from_utf8_lossy(&bytes)),
            Some("png") => figure_size::png_size(&bytes).map(|mut png| {
                // The PNG drawn beside an SVG has the same text.
                let twin = root.join(file.with_extension("svg"));
                png.min_text = std::fs::read_to_string(twin)
                    .ok()
                    .and_then(|svg| figure_size::svg_size(&svg))
                    .and_then(|svg| svg.min_text.map(|t| t * png.width / svg.width));
                png
            }),
            _ => continue,
        };
        let Some(size) = size else {
            problems.push(candle_tests::Problem::new(
                &file,
                0,
                "cannot read the image's size",
            ));
            continue;
        };
        checked += 1;
        let found = figure_size::check_image(&file, &size, room);
        let known = KNOWN_TOO_SMALL
            .iter()
            .any(|k| file == Path::new(k) || file.with_extension("svg") == Path::new(k));
        match (known, found.is_empty()) {
            (false, _) => problems.extend(found),
            (true, true) => now_legible.push(file.display().to_string()),
            (true, false) => {}
        }
    }
    assert!(checked > 0, "found no figures under {}", figures::FIGURES);
    problems.assert_none("figures whose text is shown too small to read");
    assert!(
        now_legible.is_empty(),
        "these figures are legible now: remove them from KNOWN_TOO_SMALL: {now_legible:?}"
    );
}

/// The book built once for all the HTML checks of this binary, or why not.
fn built_book() -> Option<&'static html::Built> {
    static BUILT: OnceLock<Result<html::Built, html::BuildError>> = OnceLock::new();
    match BUILT.get_or_init(|| html::build(&candle_tests::workspace_root())) {
        Ok(built) => Some(built),
        Err(html::BuildError::Missing(tool)) => {
            eprintln!(
                "skipped: {tool} is not installed, so the built book is not checked (scripts/install-book-tools.sh installs it)"
            );
            None
        }
        Err(html::BuildError::Failed(log)) => panic!("mdbook build failed:\n{log}"),
    }
}

#[test]
fn book_builds_without_warnings() {
    let Some(built) = built_book() else { return };
    let warnings = html::warnings(&built.log);
    assert!(
        warnings.is_empty(),
        "mdbook build printed warnings:\n{}",
        warnings.join("\n")
    );
}

#[test]
fn book_html_has_no_raw_tex_and_no_katex_errors() {
    let Some(built) = built_book() else { return };
    assert!(
        !html::html_files(&built.dir).is_empty(),
        "mdbook wrote no HTML to {}",
        built.dir.display()
    );
    html::check_built(&built.dir)
        .assert_none("pages of the built book where a formula was not rendered");
}
