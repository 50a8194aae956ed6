//! `SUMMARY.md` and the pages must agree: every entry that is not a draft
//! names a page that exists, every page is listed (mdbook never renders an
//! unlisted page), and every chapter crate `chapters/NN-slug/` has its page
//! `NN-slug.md` (or folder `NN-slug/`) listed as a real entry.
//!
//! A draft entry is `- [Title]()`: mdbook shows the title, greyed out, with no page.

use super::{pages, BOOK_SRC, SUMMARY};
use crate::{Problem, Problems, SourceTree};
use std::path::{Path, PathBuf};

/// One entry of the table of contents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// 1-based line in `SUMMARY.md`.
    pub line: usize,
    pub title: String,
    /// The page, relative to `book/src/`; `None` for a draft.
    pub link: Option<String>,
    /// Whether the entry is a numbered chapter (a list item) rather than an
    /// unnumbered prefix or suffix chapter.
    pub numbered: bool,
    /// Leading spaces of a list item: 0 for a chapter, more for its sections.
    pub indent: usize,
}

impl Entry {
    /// The page as a workspace-relative path, for entries that have one.
    pub fn page(&self) -> Option<PathBuf> {
        let link = self.link.as_deref()?;
        let link = link.split('#').next().unwrap_or(link);
        Some(crate::source_tree::normalize(
            &Path::new(BOOK_SRC).join(link),
        ))
    }
}

/// Parses `[Title](link)` at the start of `s`, with nested brackets in the title.
fn parse_link(s: &str) -> Option<(String, String)> {
    let s = s.strip_prefix('[')?;
    let mut depth = 1;
    let mut title_end = None;
    for (i, c) in s.char_indices() {
        match c {
            '[' => depth += 1,
            ']' => {
                depth -= 1;
                if depth == 0 {
                    title_end = Some(i);
                    break;
                }
            }
            _ => {}
        }
    }
    let title_end = title_end?;
    let rest = s[title_end + 1..].strip_prefix('(')?;
    let link_end = rest.find(')')?;
    let link = rest[..link_end].trim();
    let link = link
        .strip_prefix('<')
        .and_then(|l| l.strip_suffix('>'))
        .unwrap_or(link);
    Some((s[..title_end].to_string(), link.to_string()))
}

/// The entries of a `SUMMARY.md`: list items (`-` or `*`) and the unnumbered
/// prefix/suffix chapters (`[Title](page.md)` on a line of its own).
pub fn entries(summary: &str) -> Vec<Entry> {
    let mut found = Vec::new();
    let mut in_comment = false;
    for (index, line) in summary.lines().enumerate() {
        let trimmed = line.trim();
        if in_comment || trimmed.starts_with("<!--") {
            in_comment = !trimmed.contains("-->");
            continue;
        }
        let list_item = trimmed
            .strip_prefix("- ")
            .or_else(|| trimmed.strip_prefix("* "));
        let item = list_item.unwrap_or(trimmed).trim_start();
        if let Some((title, link)) = parse_link(item) {
            found.push(Entry {
                line: index + 1,
                title,
                link: (!link.is_empty()).then_some(link),
                numbered: list_item.is_some(),
                indent: line.len() - line.trim_start().len(),
            });
        }
    }
    found
}

/// Reads `SUMMARY.md`, or reports that it is missing.
fn read_summary(tree: &dyn SourceTree) -> Result<Vec<Entry>, Problems> {
    match tree.read(Path::new(SUMMARY)) {
        Some(text) => Ok(entries(&text)),
        None => {
            let mut problems = Problems::default();
            problems.push(Problem::new(SUMMARY, 0, "the book has no SUMMARY.md"));
            Err(problems)
        }
    }
}

/// Every non-draft entry names a Markdown page that exists.
pub fn check_entries_exist(tree: &dyn SourceTree) -> Problems {
    let entries = match read_summary(tree) {
        Ok(entries) => entries,
        Err(problems) => return problems,
    };
    let mut problems = Problems::default();
    for entry in entries {
        let (Some(link), Some(page)) = (entry.link.as_deref(), entry.page()) else {
            continue;
        };
        let mut report = |message: String| {
            problems.push(Problem::new(
                SUMMARY,
                entry.line,
                format!("[{}]({link}): {message}", entry.title),
            ))
        };
        if link.contains("://") {
            report("a SUMMARY entry must be a page of the book, not a web link".into());
        } else if page.extension().is_none_or(|e| e != "md") {
            report("a SUMMARY entry must name a .md page".into());
        } else if !tree.exists(&page) || tree.is_dir(&page) {
            report(format!(
                "page {} does not exist (write it, or make the entry a draft: `[{}]()`)",
                page.display(),
                entry.title
            ));
        }
    }
    problems
}

/// Every page below `book/src/` is listed in `SUMMARY.md`.
pub fn check_pages_listed(tree: &dyn SourceTree) -> Problems {
    let entries = match read_summary(tree) {
        Ok(entries) => entries,
        Err(problems) => return problems,
    };
    let listed: Vec<PathBuf> = entries.iter().filter_map(Entry::page).collect();
    let mut problems = Problems::default();
    for page in pages(tree) {
        if page == Path::new(SUMMARY) || listed.contains(&page) {
            continue;
        }
        problems.push(Problem::new(
            &page,
            0,
            "page is not listed in book/src/SUMMARY.md, so mdbook never renders it",
        ));
    }
    problems
}

/// The chapter crates: folders `chapters/NN-slug/` that hold a `Cargo.toml`.
pub fn chapter_crates(tree: &dyn SourceTree) -> Vec<String> {
    tree.dirs_in(Path::new("chapters"))
        .into_iter()
        .filter(|dir| tree.exists(&dir.join("Cargo.toml")))
        .filter_map(|dir| Some(dir.file_name()?.to_str()?.to_string()))
        .filter(|name| {
            let b = name.as_bytes();
            b.len() > 3 && b[0].is_ascii_digit() && b[1].is_ascii_digit() && b[2] == b'-'
        })
        .collect()
}

/// Every chapter crate has its page listed as a real (non-draft) entry.
pub fn check_chapters_have_pages(tree: &dyn SourceTree) -> Problems {
    let entries = match read_summary(tree) {
        Ok(entries) => entries,
        Err(problems) => return problems,
    };
    let top_level: Vec<&Entry> = entries
        .iter()
        .filter(|e| e.numbered && e.indent == 0)
        .collect();
    let mut problems = Problems::default();
    for chapter in chapter_crates(tree) {
        let page = Path::new(BOOK_SRC).join(format!("{chapter}.md"));
        let folder = Path::new(BOOK_SRC).join(&chapter);
        let listed = entries
            .iter()
            .filter_map(Entry::page)
            .any(|p| p == page || p.starts_with(&folder));
        if !listed {
            // Point at the chapter's place in the table of contents: its NN-th
            // top-level numbered entry, which is usually a draft until the page exists.
            let place = chapter[..2]
                .parse::<usize>()
                .ok()
                .and_then(|nn| top_level.get(nn.checked_sub(1)?));
            let (line, now) = match place {
                Some(entry) if entry.link.is_none() => (
                    entry.line,
                    format!("; its entry `[{}]()` is a draft", entry.title),
                ),
                Some(entry) => (entry.line, String::new()),
                None => (0, String::new()),
            };
            problems.push(Problem::new(
                SUMMARY,
                line,
                format!(
                    "chapter crate chapters/{chapter}/ has no page{now}: write {} (or a folder {}/) and list it as \
                     `- [Title]({chapter}.md)` (a draft entry `- [Title]()` does not count)",
                    page.display(),
                    folder.display()
                ),
            ));
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MemoryTree;

    const SUMMARY_TEXT: &str = "\
# Summary

[Introduction](introduction.md)

# Chapters

- [Scalar autograd](01-scalar-autograd.md)
- [Tensors and devices](02-tensors/index.md)
    - [Strides](02-tensors/strides.md)
- [Autograd on tensors]()
<!-- - [Hidden](hidden.md) -->
";

    fn tree(extra: &[(&str, &str)]) -> MemoryTree {
        let mut tree = MemoryTree::new(&[
            ("book/src/SUMMARY.md", SUMMARY_TEXT),
            ("book/src/introduction.md", "# Introduction"),
            ("book/src/01-scalar-autograd.md", "# 01"),
            ("book/src/02-tensors/index.md", "# 02"),
            ("book/src/02-tensors/strides.md", "# strides"),
            ("chapters/01-scalar-autograd/Cargo.toml", ""),
            ("chapters/02-tensors/Cargo.toml", ""),
        ]);
        for (path, text) in extra {
            tree.insert(path, text);
        }
        tree
    }

    #[test]
    fn parses_entries_and_drafts() {
        let found = entries(SUMMARY_TEXT);
        let links: Vec<Option<&str>> = found.iter().map(|e| e.link.as_deref()).collect();
        assert_eq!(
            links,
            vec![
                Some("introduction.md"),
                Some("01-scalar-autograd.md"),
                Some("02-tensors/index.md"),
                Some("02-tensors/strides.md"),
                None,
            ]
        );
        assert_eq!(found[4].title, "Autograd on tensors");
        assert_eq!(found[4].line, 10);
        assert_eq!(
            parse_link("[`Tensor` [sic]](t.md)"),
            Some(("`Tensor` [sic]".into(), "t.md".into()))
        );
    }

    #[test]
    fn a_consistent_book_passes() {
        let tree = tree(&[]);
        assert!(check_entries_exist(&tree).is_empty());
        assert!(check_pages_listed(&tree).is_empty());
        assert!(check_chapters_have_pages(&tree).is_empty());
    }

    #[test]
    fn a_missing_page_is_caught() {
        let mut tree = tree(&[]);
        tree.insert(
            "book/src/SUMMARY.md",
            &format!("{SUMMARY_TEXT}- [Gone](gone.md)\n"),
        );
        let problems = check_entries_exist(&tree);
        assert!(
            problems.mention(
                "book/src/SUMMARY.md:12: [Gone](gone.md): page book/src/gone.md does not exist"
            ),
            "{problems}"
        );
    }

    #[test]
    fn an_unlisted_page_is_caught() {
        let problems = check_pages_listed(&tree(&[("book/src/hidden.md", "# hidden")]));
        assert_eq!(problems.len(), 1, "{problems}");
        assert!(problems.mention("book/src/hidden.md: page is not listed"));
    }

    #[test]
    fn a_chapter_without_a_page_is_caught() {
        let problems = check_chapters_have_pages(&tree(&[("chapters/03-autograd/Cargo.toml", "")]));
        assert_eq!(problems.len(), 1, "{problems}");
        assert!(
            problems.mention(
                "book/src/SUMMARY.md:10: chapter crate chapters/03-autograd/ has no page; \
                 its entry `[Autograd on tensors]()` is a draft"
            ),
            "{problems}"
        );
        let problems = check_chapters_have_pages(&tree(&[("chapters/07-cuda/Cargo.toml", "")]));
        assert!(
            problems.mention("book/src/SUMMARY.md: chapter crate chapters/07-cuda/ has no page:"),
            "{problems}"
        );
    }

    #[test]
    fn a_draft_entry_does_not_count_as_a_chapter_page() {
        let mut tree = tree(&[]);
        tree.insert(
            "book/src/SUMMARY.md",
            "- [Scalar autograd]()\n- [Tensors](02-tensors/index.md)\n- [S](02-tensors/strides.md)\n",
        );
        let problems = check_chapters_have_pages(&tree);
        assert!(
            problems.mention("chapters/01-scalar-autograd/ has no page"),
            "{problems}"
        );
        assert!(!problems.mention("02-tensors"), "{problems}");
    }

    #[test]
    fn a_missing_summary_is_caught() {
        let tree = MemoryTree::new(&[("book/src/introduction.md", "")]);
        assert!(check_entries_exist(&tree).mention("no SUMMARY.md"));
    }
}
