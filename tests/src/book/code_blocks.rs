//! Rust in the book comes from the chapter crates, where it is compiled and
//! tested. A Rust code block may hold `{{#include}}` lines and at most
//! [`MAX_WRITTEN_LINES`] lines written in the page itself (a one-line call in
//! prose is fine; a function is not).
//!
//! A fence with no language counts as Rust, because that is how `mdbook test`
//! (through rustdoc) reads it; shell output goes in a `text` or `console` block.

use super::check_pages;
use super::includes::{directives, FILE_DIRECTIVES};
use super::markdown::fenced_blocks;
use crate::{Problem, Problems, SourceTree};
use std::path::Path;

/// The most lines of Rust a page may write itself in one block.
pub const MAX_WRITTEN_LINES: usize = 3;

/// Whether a line is nothing but one file directive such as `{{#include f.rs:a}}`.
fn is_include_line(line: &str) -> bool {
    let trimmed = line.trim();
    let found = directives(trimmed);
    found.len() == 1
        && FILE_DIRECTIVES.contains(&found[0].kind.as_str())
        && trimmed.starts_with("{{")
        && trimmed.ends_with("}}")
}

/// Checks one page's code blocks.
pub fn check_page(page: &Path, text: &str) -> Problems {
    let mut problems = Problems::default();
    for block in fenced_blocks(text) {
        if !block.closed {
            problems.push(Problem::new(
                page,
                block.open_line,
                format!(
                    "code fence `{}` is never closed, so the rest of the page renders as code",
                    block.info
                ),
            ));
        }
        if !block.is_rust() {
            continue;
        }
        let written: Vec<usize> = block
            .body
            .iter()
            .filter(|(_, line)| !line.trim().is_empty() && !is_include_line(line))
            .map(|(n, _)| *n)
            .collect();
        if written.len() > MAX_WRITTEN_LINES {
            let fence = if block.info.is_empty() {
                "untagged (so Rust)".to_string()
            } else {
                format!("```{}", block.info)
            };
            problems.push(Problem::new(
                page,
                block.open_line,
                format!(
                    "{fence} block has {} lines of code written in the page (lines {}-{}); at most {MAX_WRITTEN_LINES} are allowed: \
                     move the code into a chapter crate between `// ANCHOR: name` and `// ANCHOR_END: name` and \
                     write `{{{{#include ../../chapters/NN-slug/src/file.rs:name}}}}` here \
                     (or tag the block `text` if it is not Rust)",
                    written.len(),
                    written[0],
                    written[written.len() - 1],
                ),
            ));
        }
    }
    problems
}

/// Checks every page of the book.
pub fn check(tree: &dyn SourceTree) -> Problems {
    check_pages(tree, check_page)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_text(text: &str) -> Problems {
        check_page(Path::new("book/src/p.md"), text)
    }

    #[test]
    fn includes_and_three_written_lines_pass() {
        let text = "```rust\n{{#include ../../a.rs:x}}\n  {{#rustdoc_include ../../a.rs:y}}\n\nlet a = 1;\nlet b = 2;\n\nlet c = a + b;\n```\n";
        assert!(check_text(text).is_empty());
    }

    #[test]
    fn a_four_line_rust_block_is_caught() {
        let text = "# Page\n\n```rust,ignore\nfn main() {\n    let a = 1;\n    println!(\"{a}\");\n}\n```\n";
        let problems = check_text(text);
        assert_eq!(problems.len(), 1, "{problems}");
        assert_eq!(problems.0[0].line, 3);
        assert!(
            problems.mention("book/src/p.md:3: ```rust,ignore block has 4 lines"),
            "{problems}"
        );
    }

    #[test]
    fn an_untagged_block_counts_as_rust() {
        let text = "```\na\nb\nc\nd\n```\n";
        assert!(check_text(text).mention("untagged (so Rust)"));
    }

    #[test]
    fn text_blocks_may_be_long() {
        let text = "```text\na\nb\nc\nd\ne\n```\n```console\n$ cargo test\na\nb\nc\n```\n";
        assert!(check_text(text).is_empty());
    }

    #[test]
    fn code_after_an_include_on_the_same_line_counts() {
        let text = "```rust\n{{#include a.rs}} let x = 1;\na\nb\nc\n```\n";
        assert!(check_text(text).mention("4 lines"));
    }

    #[test]
    fn an_unclosed_fence_is_caught() {
        assert!(check_text("```text\nnever closed\n").mention("never closed"));
    }
}
