//! Checks of the built book, the HTML a reader gets.
//!
//! The formulas are rendered to HTML by mdbook-katex while the book is built
//! (see `book.toml`), so a page needs no script and no network to show them.
//! What could go wrong is a formula that reaches the page as TeX: a delimiter
//! the preprocessor did not recognise, or a formula KaTeX could not parse
//! (which it leaves as its source, or with `throw-on-error = false` marks with
//! a `katex-error` span). [`check_page`] finds both, outside code.
//!
//! [`build`] runs `mdbook build` into a fresh folder; when mdbook or
//! mdbook-katex is not installed it returns `None` and the tests skip with a
//! line saying so (`scripts/install-book-tools.sh` installs both; CI runs it
//! before the tests).

use crate::{Problem, Problems};
use std::path::{Path, PathBuf};
use std::process::Command;

/// What a page's text may not contain outside code: TeX's math delimiters.
pub const RAW_TEX: [&str; 5] = ["\\(", "\\)", "\\[", "\\]", "$$"];

/// `html` without the contents of `<pre>`, `<code>`, `<script>` and `<style>`
/// elements and without HTML comments: what a reader sees as prose.
pub fn prose_of(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut rest = html;
    let skipped = [
        ("<pre", "</pre>"),
        ("<code", "</code>"),
        ("<script", "</script>"),
        ("<style", "</style>"),
        ("<!--", "-->"),
    ];
    loop {
        let next = skipped
            .iter()
            .filter_map(|&(open, close)| {
                rest.find(open)
                    .filter(|&at| {
                        // `<code` but not `<codeblock`: the next char ends the name.
                        open.starts_with("<!")
                            || rest[at + open.len()..]
                                .chars()
                                .next()
                                .is_some_and(|c| c == '>' || c.is_whitespace())
                    })
                    .map(|at| (at, close))
            })
            .min_by_key(|&(at, _)| at);
        match next {
            None => {
                out.push_str(rest);
                return out;
            }
            Some((at, close)) => {
                out.push_str(&rest[..at]);
                let after = &rest[at..];
                match after.find(close) {
                    Some(end) => rest = &after[end + close.len()..],
                    None => return out,
                }
            }
        }
    }
}

/// The line of `html` that byte offset `at` is on (1-based).
fn line_of(html: &str, at: usize) -> usize {
    html[..at].matches('\n').count() + 1
}

/// Checks one built page: no TeX delimiter and no lone `$` in its prose, and
/// no KaTeX error anywhere.
pub fn check_page(file: &Path, html: &str) -> Problems {
    let mut problems = Problems::default();
    let main = match (html.find("<main>"), html.find("</main>")) {
        (Some(start), Some(end)) if start < end => &html[start..end],
        _ => html,
    };
    let prose = prose_of(main);
    for delimiter in RAW_TEX.iter().chain(&["$"]) {
        if let Some(at) = prose.find(delimiter) {
            let context: String = prose[at.saturating_sub(30)..]
                .chars()
                .take(70)
                .collect::<String>()
                .replace('\n', " ");
            problems.push(Problem::new(
                file,
                0,
                format!("raw TeX `{delimiter}` reaches the page, near `{context}`: a formula was not rendered"),
            ));
        }
    }
    for (at, _) in html.match_indices("katex-error") {
        problems.push(Problem::new(
            file,
            line_of(html, at),
            "KaTeX could not render a formula (a katex-error span)",
        ));
    }
    problems
}

/// Every `.html` file below `dir`, sorted.
pub fn html_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "html") {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// Checks every page of a built book in `dir` (mdbook's own pages, such as
/// `print.html` and `404.html`, too).
pub fn check_built(dir: &Path) -> Problems {
    let mut problems = Problems::default();
    for file in html_files(dir) {
        let rel = file.strip_prefix(dir).unwrap_or(&file).to_path_buf();
        match std::fs::read_to_string(&file) {
            Ok(html) => problems.extend(check_page(&rel, &html)),
            Err(e) => problems.push(Problem::new(&rel, 0, format!("cannot read: {e}"))),
        }
    }
    problems
}

/// A built book: where it is, and what `mdbook build` printed.
#[derive(Debug, Clone)]
pub struct Built {
    pub dir: PathBuf,
    pub log: String,
}

/// Finds `tool` on `PATH` or in cargo's bin folder.
fn find_tool(tool: &str) -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")));
    dirs.extend(cargo_home.map(|h| h.join("bin")));
    dirs.into_iter().map(|d| d.join(tool)).find(|p| p.is_file())
}

/// Builds the book of the workspace at `root` into a fresh folder under the
/// system's temporary folder. `Err` says why it was not built: a missing tool
/// (the caller skips) or a failed build (the caller fails).
pub fn build(root: &Path) -> Result<Built, BuildError> {
    let mdbook = find_tool("mdbook").ok_or(BuildError::Missing("mdbook"))?;
    let katex = find_tool("mdbook-katex").ok_or(BuildError::Missing("mdbook-katex"))?;
    let dir = std::env::temp_dir().join(format!("candle-book-check-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    // mdbook finds its preprocessors on PATH.
    let mut path = vec![katex.parent().unwrap_or(Path::new("")).to_path_buf()];
    if let Some(p) = std::env::var_os("PATH") {
        path.extend(std::env::split_paths(&p));
    }
    let output = Command::new(&mdbook)
        .arg("build")
        .arg("--dest-dir")
        .arg(&dir)
        .current_dir(root)
        .env("PATH", std::env::join_paths(path).unwrap_or_default())
        .output()
        .map_err(|e| BuildError::Failed(format!("cannot run {}: {e}", mdbook.display())))?;
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    if !output.status.success() {
        return Err(BuildError::Failed(log));
    }
    Ok(Built { dir, log })
}

/// Why [`build`] built nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BuildError {
    /// The tool is not installed.
    Missing(&'static str),
    /// mdbook ran and failed, with its output.
    Failed(String),
}

/// The lines of mdbook's output that are warnings or errors.
pub fn warnings(log: &str) -> Vec<&str> {
    log.lines()
        .filter(|l| l.contains("WARN") || l.contains("ERROR"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_tex_and_lone_dollars_in_prose_are_caught() {
        let page = "<main><p>the size is \\( \\lceil n / 2 \\rceil \\)</p>\n<p>$$ x^2 $$</p><p>costs $x$</p></main>";
        let problems = check_page(Path::new("02-tensors.html"), page);
        for d in ["`\\(`", "`\\)`", "`$$`", "`$`"] {
            assert!(problems.mention(d), "{d}: {problems}");
        }
    }

    #[test]
    fn tex_in_code_is_fine_and_rendered_math_passes() {
        let page = "<main><p>Run <code>dir=$(candle download gpt2)</code>.</p>\n<pre><code>echo $$ \\(x\\)</code></pre>\n<p><span class=\"katex\"><span class=\"mord\">x</span></span></p><!-- $$ --></main>";
        let problems = check_page(Path::new("a.html"), page);
        assert!(problems.is_empty(), "{problems}");
    }

    #[test]
    fn katex_error_spans_are_caught() {
        let page = "<main>\n<span class=\"katex-error\" title=\"ParseError\">\\frac{</span></main>";
        let problems = check_page(Path::new("a.html"), page);
        assert!(
            problems.mention("a.html:2: KaTeX could not render"),
            "{problems}"
        );
    }

    #[test]
    fn warnings_are_picked_from_the_log() {
        let log = "INFO Book building has started\n WARN mdbook::preprocess::links: file not found\nINFO done";
        assert_eq!(warnings(log).len(), 1);
    }
}
