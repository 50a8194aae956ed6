//! `{{#include}}`, `{{#rustdoc_include}}` and `{{#playground}}` directives must
//! name a file that exists and, when they name one, an anchor or lines it has.
//!
//! The forms (as mdbook parses them; the path is relative to the page):
//!
//! | directive | includes |
//! |---|---|
//! | `{{#include file.rs}}` | the whole file |
//! | `{{#include file.rs:name}}` | the lines between `ANCHOR: name` and `ANCHOR_END: name` |
//! | `{{#include file.rs:10}}` | line 10 |
//! | `{{#include file.rs:10:20}}` | lines 10 to 20 |
//! | `{{#include file.rs:10:}}`, `{{#include file.rs::20}}` | from line 10 / up to line 20 |
//!
//! A directive written with a backslash, `\{{#include ...}}`, is shown as text
//! and not processed. mdbook only warns about a missing file and silently
//! includes to the end of the file when an `ANCHOR_END` is missing; here both
//! are failures.

use super::{check_pages, resolve_from_page};
use crate::{Problem, Problems, SourceTree};
use std::path::Path;

/// What part of the file a directive includes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selection {
    Whole,
    Anchor(String),
    /// 1-based, inclusive line numbers; `None` is open-ended.
    Lines {
        first: Option<usize>,
        last: Option<usize>,
    },
}

/// One `{{#kind args}}` directive found in a page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Directive {
    /// 1-based line of the page.
    pub line: usize,
    /// `include`, `rustdoc_include`, `playground`, `title`, ...
    pub kind: String,
    /// Everything between the kind and the closing braces, trimmed.
    pub args: String,
    /// The directive as written, for messages.
    pub raw: String,
}

/// The directive kinds whose first argument is a file.
pub const FILE_DIRECTIVES: [&str; 3] = ["include", "rustdoc_include", "playground"];

/// The directive kinds mdbook knows.
pub const KNOWN_DIRECTIVES: [&str; 4] = ["include", "rustdoc_include", "playground", "title"];

impl Directive {
    /// The file path as written and what it selects from that file, for file directives.
    pub fn target(&self) -> Option<(&str, Selection)> {
        if !FILE_DIRECTIVES.contains(&self.kind.as_str()) {
            return None;
        }
        let file_arg = self.args.split_whitespace().next().unwrap_or("");
        let (path, rest) = match file_arg.split_once(':') {
            Some((path, rest)) => (path, Some(rest)),
            None => (file_arg, None),
        };
        // `playground` takes attributes, not a selection.
        if self.kind == "playground" {
            return Some((file_arg, Selection::Whole));
        }
        Some((path, parse_selection(rest)))
    }
}

/// mdbook's reading of what follows the first `:`.
fn parse_selection(rest: Option<&str>) -> Selection {
    let Some(rest) = rest else {
        return Selection::Whole;
    };
    let mut parts = rest.splitn(2, ':');
    let first_part = parts.next().unwrap_or("");
    let last_part = parts.next();
    let first = match first_part.parse::<usize>() {
        Ok(n) => Some(n),
        Err(_) if first_part.is_empty() => None,
        Err(_) => return Selection::Anchor(first_part.to_string()),
    };
    let last = match last_part {
        // `file:10` is the single line 10.
        None => first,
        Some(s) => s.parse::<usize>().ok(),
    };
    if first.is_none() && last.is_none() {
        Selection::Whole
    } else {
        Selection::Lines { first, last }
    }
}

/// Every unescaped `{{#...}}` directive in a page, in order.
pub fn directives(text: &str) -> Vec<Directive> {
    let mut found = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let mut rest = line;
        let mut offset = 0;
        while let Some(start) = rest.find("{{") {
            let abs = offset + start;
            let after = &rest[start + 2..];
            let Some(end) = after.find("}}") else { break };
            let escaped = line[..abs].ends_with('\\');
            let inner = after[..end].trim_start();
            if !escaped && !after[..end].contains('}') {
                if let Some(body) = inner.strip_prefix('#') {
                    let kind_len = body
                        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                        .unwrap_or(body.len());
                    let (kind, args) = body.split_at(kind_len);
                    if !kind.is_empty() && args.starts_with(char::is_whitespace) {
                        found.push(Directive {
                            line: index + 1,
                            kind: kind.to_string(),
                            args: args.trim().to_string(),
                            raw: format!("{{{{{}}}}}", &after[..end]),
                        });
                    }
                }
            }
            let consumed = start + 2 + end + 2;
            offset += consumed;
            rest = &rest[consumed..];
        }
    }
    found
}

/// Where a named anchor opens and closes in a source file (1-based lines).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct AnchorLines {
    pub opens: Vec<usize>,
    pub closes: Vec<usize>,
}

/// The lines on which `ANCHOR: name` / `ANCHOR_END: name` appear for `name`.
/// A name is matched whole: `ANCHOR: tape` does not open `tap`.
pub fn anchor_lines(source: &str, name: &str) -> AnchorLines {
    fn names_after<'a>(line: &'a str, marker: &str) -> Vec<&'a str> {
        let mut names = Vec::new();
        let mut rest = line;
        while let Some(pos) = rest.find(marker) {
            let after = rest[pos + marker.len()..].trim_start();
            let len = after
                .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == '-'))
                .unwrap_or(after.len());
            names.push(&after[..len]);
            rest = &rest[pos + marker.len()..];
        }
        names
    }
    let mut lines = AnchorLines::default();
    for (index, line) in source.lines().enumerate() {
        if names_after(line, "ANCHOR:").contains(&name) {
            lines.opens.push(index + 1);
        }
        if names_after(line, "ANCHOR_END:").contains(&name) {
            lines.closes.push(index + 1);
        }
    }
    lines
}

/// Checks the directives of one page against the files in `tree`.
pub fn check_page(tree: &dyn SourceTree, page: &Path, text: &str) -> Problems {
    let mut problems = Problems::default();
    for directive in directives(text) {
        let mut report = |message: String| {
            problems.push(Problem::new(
                page,
                directive.line,
                format!("`{}`: {message}", directive.raw),
            ))
        };
        if !KNOWN_DIRECTIVES.contains(&directive.kind.as_str()) {
            report(format!(
                "mdbook has no `{}` directive (known: {}); write `\\{{{{#...}}}}` to show it as text",
                directive.kind,
                KNOWN_DIRECTIVES.join(", ")
            ));
            continue;
        }
        let Some((written, selection)) = directive.target() else {
            continue;
        };
        if written.is_empty() {
            report("names no file".to_string());
            continue;
        }
        let resolved = resolve_from_page(page, written);
        let Some(source) = tree.read(&resolved) else {
            let why = if tree.is_dir(&resolved) {
                "is a folder, not a file"
            } else {
                "does not exist"
            };
            report(format!("file {} {why}", resolved.display()));
            continue;
        };
        match selection {
            Selection::Whole => {}
            Selection::Anchor(name) => {
                let lines = anchor_lines(&source, &name);
                let file = resolved.display();
                match (lines.opens.as_slice(), lines.closes.as_slice()) {
                    ([], []) => report(format!(
                        "anchor `{name}` not found in {file} (expected `ANCHOR: {name}` and `ANCHOR_END: {name}`)"
                    )),
                    ([], _) => report(format!("{file} has `ANCHOR_END: {name}` but no `ANCHOR: {name}`")),
                    (_, []) => report(format!("{file} has `ANCHOR: {name}` but no `ANCHOR_END: {name}`")),
                    ([open], [close]) if close < open => report(format!(
                        "in {file}, `ANCHOR_END: {name}` (line {close}) comes before `ANCHOR: {name}` (line {open})"
                    )),
                    ([_], [_]) => {}
                    (opens, closes) => report(format!(
                        "anchor `{name}` is defined more than once in {file} (ANCHOR on lines {opens:?}, ANCHOR_END on lines {closes:?})"
                    )),
                }
            }
            Selection::Lines { first, last } => {
                let count = source.lines().count();
                let file = resolved.display();
                if first == Some(0) || last == Some(0) {
                    report("line numbers start at 1".to_string());
                } else if let (Some(f), Some(l)) = (first, last) {
                    if f > l {
                        report(format!("line range {f}:{l} is backwards"));
                    } else if l > count {
                        report(format!(
                            "{file} has {count} lines, fewer than the {l} asked for"
                        ));
                    }
                } else if let Some(n) = first.or(last) {
                    if n > count {
                        report(format!(
                            "{file} has {count} lines, fewer than the {n} asked for"
                        ));
                    }
                }
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

    const SOURCE: &str = "\
use std::fmt;
// ANCHOR: value
pub struct Value;
// ANCHOR_END: value
// ANCHOR: open_only
fn f() {}
";

    fn tree_with_page(page: &str) -> MemoryTree {
        MemoryTree::new(&[
            ("chapters/01-x/src/lib.rs", SOURCE),
            ("book/src/01-x.md", page),
        ])
    }

    fn check_one(page: &str) -> Problems {
        check(&tree_with_page(page))
    }

    #[test]
    fn parses_every_form() {
        let page = "```rust\n{{#include ../../a.rs}}\n{{#include ../../a.rs:anchor}}\n{{#rustdoc_include a.rs:10:20}}\n{{ #include a.rs:3 }}\n{{#include a.rs::7}}\n{{#include a.rs:4:}}\n```\n";
        let targets: Vec<(String, Selection)> = directives(page)
            .iter()
            .map(|d| {
                let (p, s) = d.target().unwrap();
                (p.to_string(), s)
            })
            .collect();
        let lines = |first, last| Selection::Lines { first, last };
        assert_eq!(
            targets,
            vec![
                ("../../a.rs".into(), Selection::Whole),
                ("../../a.rs".into(), Selection::Anchor("anchor".into())),
                ("a.rs".into(), lines(Some(10), Some(20))),
                ("a.rs".into(), lines(Some(3), Some(3))),
                ("a.rs".into(), lines(None, Some(7))),
                ("a.rs".into(), lines(Some(4), None)),
            ]
        );
    }

    #[test]
    fn escaped_directives_are_text() {
        assert!(directives(r"write `\{{#include file.rs:name}}` in a page").is_empty());
    }

    #[test]
    fn a_good_include_passes() {
        let problems = check_one("{{#include ../../chapters/01-x/src/lib.rs:value}}\n{{#include ../../chapters/01-x/src/lib.rs}}\n{{#include ../../chapters/01-x/src/lib.rs:2:4}}\n");
        assert!(problems.is_empty(), "{problems}");
    }

    #[test]
    fn a_missing_file_is_caught() {
        let problems = check_one("text\n{{#include ../../chapters/01-x/src/gone.rs:value}}\n");
        assert_eq!(problems.len(), 1);
        let p = &problems.0[0];
        assert_eq!(p.file, Path::new("book/src/01-x.md"));
        assert_eq!(p.line, 2);
        assert!(
            p.message
                .contains("chapters/01-x/src/gone.rs does not exist"),
            "{p}"
        );
    }

    #[test]
    fn a_missing_anchor_is_caught() {
        let problems = check_one("{{#include ../../chapters/01-x/src/lib.rs:valu}}\n");
        assert!(problems.mention("book/src/01-x.md:1:"), "{problems}");
        assert!(problems.mention("anchor `valu` not found"), "{problems}");
    }

    #[test]
    fn an_anchor_without_its_end_is_caught() {
        let problems = check_one("{{#rustdoc_include ../../chapters/01-x/src/lib.rs:open_only}}\n");
        assert!(
            problems.mention("but no `ANCHOR_END: open_only`"),
            "{problems}"
        );
    }

    #[test]
    fn an_end_before_its_anchor_is_caught() {
        let tree = MemoryTree::new(&[
            ("a.rs", "// ANCHOR_END: x\n// ANCHOR: x\n"),
            ("book/src/p.md", "{{#include ../../a.rs:x}}"),
        ]);
        assert!(check(&tree).mention("comes before"));
    }

    #[test]
    fn a_line_range_past_the_end_is_caught() {
        let problems = check_one("{{#include ../../chapters/01-x/src/lib.rs:5:40}}\n");
        assert!(
            problems.mention("has 6 lines, fewer than the 40 asked for"),
            "{problems}"
        );
        let problems = check_one("{{#include ../../chapters/01-x/src/lib.rs:9}}\n");
        assert!(problems.mention("fewer than the 9"), "{problems}");
        let problems = check_one("{{#include ../../chapters/01-x/src/lib.rs:4:2}}\n");
        assert!(problems.mention("backwards"), "{problems}");
    }

    #[test]
    fn an_unknown_directive_is_caught() {
        let problems = check_one("{{#inclde ../../chapters/01-x/src/lib.rs}}\n");
        assert!(problems.mention("no `inclde` directive"), "{problems}");
    }

    #[test]
    fn anchor_names_match_whole() {
        let lines = anchor_lines("// ANCHOR: tape_entry\n// ANCHOR_END: tape_entry\n", "tape");
        assert_eq!(lines, AnchorLines::default());
    }
}
