//! Every image a page shows exists: Markdown `![alt](path)` and HTML
//! `<img src="path">`, relative to the page. Web addresses are not checked
//! (the book builds offline); code blocks are skipped.

use super::markdown::prose_lines;
use super::{check_pages, resolve_from_page};
use crate::{Problem, Problems, SourceTree};
use std::path::Path;

/// The image paths written on one line of prose.
pub fn image_paths(line: &str) -> Vec<String> {
    let mut found = Vec::new();
    // Markdown: ![alt](path "title")
    let mut rest = line;
    while let Some(start) = rest.find("![") {
        rest = &rest[start + 2..];
        let Some(close) = rest.find("](") else { break };
        let after = &rest[close + 2..];
        let Some(end) = after.find(')') else { break };
        let target = after[..end].trim();
        let path = if let Some(inner) = target.strip_prefix('<') {
            inner.split('>').next().unwrap_or("")
        } else {
            target.split_whitespace().next().unwrap_or("")
        };
        found.push(path.to_string());
        rest = &after[end..];
    }
    // HTML: <img ... src="path" ...>
    let mut rest = line;
    while let Some(start) = rest.find("<img") {
        rest = &rest[start + 4..];
        let tag_end = rest.find('>').unwrap_or(rest.len());
        let tag = &rest[..tag_end];
        if let Some(src) = tag.find("src=") {
            let value = &tag[src + 4..];
            let path = match value.chars().next() {
                Some(q @ ('"' | '\'')) => value[1..].split(q).next().unwrap_or(""),
                _ => value.split_whitespace().next().unwrap_or(""),
            };
            found.push(path.to_string());
        }
        rest = &rest[tag_end..];
    }
    found
}

fn is_local(path: &str) -> bool {
    !(path.contains("://") || path.starts_with("data:") || path.starts_with("//"))
}

/// Checks one page's images.
pub fn check_page(tree: &dyn SourceTree, page: &Path, text: &str) -> Problems {
    let mut problems = Problems::default();
    for (line_number, line) in prose_lines(text) {
        for written in image_paths(line) {
            if written.is_empty() {
                problems.push(Problem::new(page, line_number, "image with no path"));
                continue;
            }
            if !is_local(&written) {
                continue;
            }
            let without_fragment = written.split(['#', '?']).next().unwrap_or(&written);
            let resolved = resolve_from_page(page, without_fragment);
            if !tree.exists(&resolved) || tree.is_dir(&resolved) {
                problems.push(Problem::new(
                    page,
                    line_number,
                    format!(
                        "image `{written}` ({}) does not exist; figures are generated and committed under book/src/figures/",
                        resolved.display()
                    ),
                ));
            }
        }
    }
    problems
}

/// Checks every page of the book.
pub fn check(tree: &dyn SourceTree) -> Problems {
    check_pages(tree, |page, text| check_page(tree, page, text))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MemoryTree;

    #[test]
    fn finds_markdown_and_html_images() {
        assert_eq!(
            image_paths(
                r#"See ![loss](figures/loss.png "Loss") and <img alt="x" src="figures/a.svg" width=300>."#
            ),
            vec!["figures/loss.png", "figures/a.svg"]
        );
        assert_eq!(
            image_paths("<img src='b.png'/> ![](<c d.png>)"),
            vec!["c d.png", "b.png"]
        );
        assert!(image_paths("[a link](page.md)").is_empty());
    }

    #[test]
    fn a_missing_image_is_caught_and_present_ones_pass() {
        let tree = MemoryTree::new(&[
            ("book/src/figures/moons.png", "png"),
            (
                "book/src/01-x.md",
                "# 01\n![moons](figures/moons.png)\n\n![boundary](figures/boundary.png)\n<img src=\"https://example.com/x.png\">\n```text\n![not an image](nope.png)\n```\n",
            ),
        ]);
        let problems = check(&tree);
        assert_eq!(problems.len(), 1, "{problems}");
        assert!(
            problems.mention("book/src/01-x.md:4: image `figures/boundary.png` (book/src/figures/boundary.png) does not exist"),
            "{problems}"
        );
    }
}
