//! Figures: their markup, and that the figure files and the pages agree.
//!
//! Every figure is written in one HTML form, which other tools rely on:
//!
//! ```html
//! <figure id="fig-NN-slug">
//! <img src="figures/NN-name.svg" alt="a full sentence describing what the figure shows">
//! <figcaption><b>Figure N.k.</b> What was measured, on what. Regenerate: <code>the command</code>.</figcaption>
//! </figure>
//! ```
//!
//! [`check_markup`] holds every page to it: no Markdown image (`![alt](path)`,
//! which mdbook renders without a caption), no `<img>` outside a `<figure>`,
//! an alt text of at least [`MIN_ALT_WORDS`] words (a reader who cannot see
//! the image gets the sentence instead), and a caption that starts with the
//! figure's number in its chapter and holds exactly one `<code>`: the command
//! that draws the figure again (for a diagram drawn by hand, the file to edit).
//!
//! [`check_files`] checks that every file in `book/src/figures/` is used by a
//! page (shown, linked, or included; a CSV or log counts when it is linked or
//! included) and that every figure file a page uses exists.

use super::markdown::prose_lines;
use super::{pages, resolve_from_page, BOOK_SRC};
use crate::{Problem, Problems, SourceTree};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// The folder of generated figures and their data.
pub const FIGURES: &str = "book/src/figures";

/// The fewest words an alt text may have: "Loss" tells a reader nothing.
pub const MIN_ALT_WORDS: usize = 6;

/// The value of attribute `name` in an HTML tag's text, if present.
pub fn attribute<'a>(tag: &'a str, name: &str) -> Option<&'a str> {
    let mut rest = tag;
    while let Some(at) = rest.find(name) {
        let before_ok = at == 0 || rest[..at].chars().last().is_some_and(|c| c.is_whitespace());
        let after = &rest[at + name.len()..];
        if before_ok {
            if let Some(value) = after.strip_prefix('=') {
                return match value.chars().next() {
                    Some(q @ ('"' | '\'')) => value[1..].split(q).next(),
                    _ => value.split([' ', '>']).next(),
                };
            }
        }
        rest = after;
    }
    None
}

/// Text with its HTML tags removed and whitespace collapsed.
pub fn strip_tags(html: &str) -> String {
    let mut out = String::new();
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => {
                in_tag = false;
                out.push(' ');
            }
            _ if !in_tag => out.push(c),
            _ => {}
        }
    }
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The chapter number of a page, from its file or folder name (`08-gpt/…` → 8).
fn chapter_of(page: &Path) -> Option<u32> {
    let rel = page.strip_prefix(BOOK_SRC).unwrap_or(page);
    let first = rel.components().next()?.as_os_str().to_str()?;
    let digits: String = first.chars().take_while(|c| c.is_ascii_digit()).collect();
    digits.parse().ok()
}

/// Checks one `<figure>…</figure>` block that starts on `line` of `page`.
fn check_figure(page: &Path, line: usize, block: &str) -> Problems {
    let mut problems = Problems::default();
    let mut problem = |message: String| problems.push(Problem::new(page, line, message));
    let open_end = block.find('>').unwrap_or(block.len());
    match attribute(&block[..open_end], "id") {
        Some(id) if id.starts_with("fig-") => {}
        _ => problem("a <figure> needs an id=\"fig-…\" to link to".into()),
    }
    let images: Vec<&str> = block
        .match_indices("<img")
        .map(|(i, _)| &block[i..])
        .collect();
    if images.len() != 1 {
        problem(format!(
            "a <figure> holds one <img>, this one {}",
            images.len()
        ));
    }
    if let Some(img) = images.first() {
        let tag = &img[..img.find('>').unwrap_or(img.len())];
        let alt = attribute(tag, "alt").unwrap_or("");
        let words = alt.split_whitespace().count();
        if words < MIN_ALT_WORDS {
            problem(format!(
                "alt text `{alt}` has {words} words; describe what the figure shows in a sentence of at least {MIN_ALT_WORDS}"
            ));
        }
    }
    let caption = block.find("<figcaption>").and_then(|start| {
        let inner = &block[start + "<figcaption>".len()..];
        inner.find("</figcaption>").map(|end| &inner[..end])
    });
    let Some(caption) = caption else {
        problem("a <figure> needs a <figcaption>…</figcaption>".into());
        return problems;
    };
    let number = caption.trim_start();
    let expected_start = match chapter_of(page) {
        Some(chapter) => format!("<b>Figure {chapter}."),
        None => "<b>Figure ".to_string(),
    };
    if !number.starts_with(&expected_start) {
        problem(format!(
            "a caption starts with its number, `{expected_start}k.</b>`"
        ));
    }
    if strip_tags(caption).split_whitespace().count() < 8 {
        problem(
            "the caption should say what was measured, on what, and how to regenerate it".into(),
        );
    }
    let codes: Vec<&str> = caption
        .match_indices("<code>")
        .map(|(i, _)| {
            let inner = &caption[i + "<code>".len()..];
            &inner[..inner.find("</code>").unwrap_or(0)]
        })
        .collect();
    match codes.as_slice() {
        [command] if !command.trim().is_empty() => {}
        [_] => problem("the caption's <code> is empty: put the regenerate command in it".into()),
        _ => problem(format!(
            "a caption holds exactly one <code>, the command that regenerates the figure; this one has {}",
            codes.len()
        )),
    }
    problems
}

/// Checks the figure markup of one page.
pub fn check_markup_page(page: &Path, text: &str) -> Problems {
    let mut problems = Problems::default();
    let mut open: Option<(usize, String)> = None;
    for (line_number, line) in prose_lines(text) {
        if let Some((start, block)) = open.as_mut() {
            block.push_str(line);
            block.push('\n');
            if line.contains("</figure>") {
                problems.extend(check_figure(page, *start, block));
                open = None;
            }
            continue;
        }
        if line.trim_start().starts_with("<figure") {
            let block = format!("{line}\n");
            if line.contains("</figure>") {
                problems.extend(check_figure(page, line_number, &block));
            } else {
                open = Some((line_number, block));
            }
            continue;
        }
        if line.contains("![") && line[line.find("![").unwrap()..].contains("](") {
            problems.push(Problem::new(
                page,
                line_number,
                "a Markdown image has no caption: write it as <figure> with <img> and <figcaption>",
            ));
        }
        if line.contains("<img") {
            problems.push(Problem::new(
                page,
                line_number,
                "an <img> outside a <figure>: wrap it in <figure> with a <figcaption>",
            ));
        }
    }
    if let Some((start, _)) = open {
        problems.push(Problem::new(page, start, "<figure> is never closed"));
    }
    problems
}

/// Checks the figure markup of every page.
pub fn check_markup(tree: &dyn SourceTree) -> Problems {
    super::check_pages(tree, check_markup_page)
}

/// The local paths a page refers to, with their lines: images and links
/// (`](path)`, `src="path"`, `href="path"`) in prose, and `{{#include path…}}`
/// anywhere (they are usually inside a code block).
pub fn references(text: &str) -> Vec<(usize, String)> {
    let mut found = Vec::new();
    for (line_number, line) in prose_lines(text) {
        for opener in ["](", "src=\"", "href=\""] {
            let closer = if opener == "](" { ')' } else { '"' };
            let mut rest = line;
            while let Some(at) = rest.find(opener) {
                rest = &rest[at + opener.len()..];
                let end = rest.find(closer).unwrap_or(rest.len());
                let target = rest[..end].split_whitespace().next().unwrap_or("");
                found.push((line_number, target.to_string()));
                rest = &rest[end..];
            }
        }
    }
    for (index, line) in text.lines().enumerate() {
        let mut rest = line;
        while let Some(at) = rest.find("{{#include ") {
            let escaped = rest[..at].ends_with('\\');
            rest = &rest[at + "{{#include ".len()..];
            let end = rest.find("}}").unwrap_or(rest.len());
            let path = rest[..end].trim().split(':').next().unwrap_or("");
            if !escaped {
                found.push((index + 1, path.to_string()));
            }
            rest = &rest[end..];
        }
    }
    found
        .into_iter()
        .filter(|(_, target)| {
            !(target.is_empty()
                || target.contains("://")
                || target.starts_with('#')
                || target.starts_with("mailto:"))
        })
        .map(|(line, target)| {
            let path = target.split(['#', '?']).next().unwrap_or("").to_string();
            (line, path)
        })
        .collect()
}

/// Every figure file is used by some page, and every figure file a page
/// uses exists.
pub fn check_files(tree: &dyn SourceTree) -> Problems {
    let mut problems = Problems::default();
    let figures = Path::new(FIGURES);
    let mut used: BTreeSet<PathBuf> = BTreeSet::new();
    for page in pages(tree) {
        let Some(text) = tree.read(&page) else {
            continue;
        };
        for (line, written) in references(&text) {
            let resolved = resolve_from_page(&page, &written);
            if !resolved.starts_with(figures) {
                continue;
            }
            if !tree.exists(&resolved) {
                problems.push(Problem::new(
                    &page,
                    line,
                    format!(
                        "figure file `{written}` ({}) does not exist",
                        resolved.display()
                    ),
                ));
            }
            used.insert(resolved);
        }
    }
    for file in tree.files_under(figures) {
        if !used.contains(&file) {
            problems.push(Problem::new(
                &file,
                0,
                "no page shows, links or includes this figure file: use it where it belongs, or delete it",
            ));
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MemoryTree;

    const GOOD: &str = "<figure id=\"fig-01-loss\">\n<img src=\"figures/01-loss.svg\" alt=\"The loss falls from 1.1 to 0.01 over 100 steps.\">\n<figcaption><b>Figure 1.1.</b> The loss of the moons run at every step, seed 0. Regenerate: <code>cargo run -p candle-lib -- scalar-demo</code>.</figcaption>\n</figure>\n";

    #[test]
    fn the_agreed_form_passes() {
        let problems = check_markup_page(Path::new("book/src/01-x.md"), GOOD);
        assert!(problems.is_empty(), "{problems}");
    }

    #[test]
    fn images_without_captions_and_one_word_alt_texts_are_caught() {
        let page = Path::new("book/src/06-x.md");
        let problems = check_markup_page(page, "![Loss](figures/06-loss.png)\n");
        assert!(
            problems.mention("06-x.md:1: a Markdown image has no caption"),
            "{problems}"
        );
        let problems = check_markup_page(
            page,
            "<img src=\"figures/a.png\" alt=\"A long enough description of it\">\n",
        );
        assert!(
            problems.mention("an <img> outside a <figure>"),
            "{problems}"
        );
        let one_word = GOOD.replace("The loss falls from 1.1 to 0.01 over 100 steps.", "Loss");
        let problems = check_markup_page(Path::new("book/src/01-x.md"), &one_word);
        assert!(
            problems.mention("alt text `Loss` has 1 words"),
            "{problems}"
        );
    }

    #[test]
    fn captions_without_a_command_or_number_are_caught() {
        let page = Path::new("book/src/01-x.md");
        let no_code = GOOD.replace(
            "<code>cargo run -p candle-lib -- scalar-demo</code>",
            "by hand",
        );
        assert!(check_markup_page(page, &no_code).mention("exactly one <code>"));
        let two_codes = GOOD.replace("The loss", "The <code>loss</code>");
        assert!(check_markup_page(page, &two_codes).mention("this one has 2"));
        let no_caption = GOOD
            .replace("<figcaption>", "<p>")
            .replace("</figcaption>", "</p>");
        assert!(check_markup_page(page, &no_caption).mention("needs a <figcaption>"));
        let wrong_chapter = GOOD.replace("Figure 1.1.", "Figure 2.1.");
        assert!(check_markup_page(page, &wrong_chapter).mention("`<b>Figure 1.k.</b>`"));
        let no_id = GOOD.replace(" id=\"fig-01-loss\"", "");
        assert!(check_markup_page(page, &no_id).mention("id=\"fig-…\""));
        let unclosed = GOOD.replace("</figure>", "");
        assert!(check_markup_page(page, &unclosed).mention("never closed"));
    }

    #[test]
    fn unused_and_missing_figure_files_are_caught() {
        let tree = MemoryTree::new(&[
            ("book/src/figures/01-loss.svg", "svg"),
            ("book/src/figures/01-loss.csv", "csv"),
            ("book/src/figures/01-log.txt", "log"),
            ("book/src/figures/01-forgotten.png", "png"),
            (
                "book/src/01-x.md",
                "# 01\n```text\n{{#include figures/01-log.txt}}\n```\n<img src=\"figures/01-loss.svg\"> [CSV](figures/01-loss.csv)\n<a href=\"figures/01-gone.png\">PNG</a>\n`\\{{#include figures/01-escaped.txt}}`\n",
            ),
        ]);
        let problems = check_files(&tree);
        assert_eq!(problems.len(), 2, "{problems}");
        assert!(
            problems.mention("book/src/figures/01-forgotten.png"),
            "{problems}"
        );
        assert!(
            problems.mention("book/src/01-x.md:6: figure file `figures/01-gone.png`"),
            "{problems}"
        );
    }

    #[test]
    fn reads_attributes_and_strips_tags() {
        let tag = "<img src=\"a.svg\" alt='two words' width=300";
        assert_eq!(attribute(tag, "src"), Some("a.svg"));
        assert_eq!(attribute(tag, "alt"), Some("two words"));
        assert_eq!(attribute(tag, "width"), Some("300"));
        assert_eq!(attribute(tag, "id"), None);
        assert_eq!(
            strip_tags("<b>Figure 1.</b> the <code>x</code>"),
            "Figure 1. the x"
        );
    }
}
