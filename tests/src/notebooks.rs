//! Notebook checks: every evcxr notebook in `notebooks/` compiles as a plain
//! Rust program, so CI catches a notebook that an API change broke without
//! installing Jupyter.
//!
//! A notebook is turned into a program the way evcxr itself reads it:
//!
//! - The leading lines of a code cell that look like `:command args` are
//!   evcxr commands (`:dep`, `:cache`, `:opt`, ...), and lines starting with
//!   `!` are shell commands; blank lines and `//` comments may sit between
//!   them. Everything from the first other line on is Rust. `:dep` lines become
//!   the `[dependencies]` of the generated crate (relative `path`s are taken
//!   relative to the notebook's folder, as Jupyter starts the kernel there);
//!   the other commands only tune evcxr and are dropped.
//! - The Rust of every code cell goes, in order, into one
//!   `fn main() -> Result<(), Box<dyn std::error::Error>>`, so `?` works at
//!   the top level of a cell as it does in evcxr, `let` bindings are visible
//!   to later cells, and items (`fn`, `struct`, `use`) stay where they are —
//!   Rust allows items in a function body, visible to the whole body.
//! - evcxr displays a cell's final expression (one without a `;`). The
//!   program keeps it type-checked but borrows it instead of moving it, as
//!   evcxr does: `x` becomes `let _ = &(x);`. Finding that expression needs
//!   the cell's statements, which [`split_statements`] finds with a small
//!   Rust lexer (strings, chars, lifetimes, comments and brackets).
//!
//! [`write_check_crate`] writes the program and a `Cargo.toml` (with an empty
//! `[workspace]`, so it is not part of ours) under `target/notebook-check/`,
//! and [`cargo_check`] compiles it; compiler messages that point into
//! `src/main.rs` are annotated with the notebook cell and line they come from.

use serde_json::Value;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The kind of a notebook cell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CellKind {
    Code,
    Markdown,
    Raw,
}

/// One cell: its kind, its source text, and (for code cells) the bytes of
/// JSON its stored outputs take.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cell {
    pub kind: CellKind,
    pub source: String,
    pub output_bytes: usize,
    pub execution_count: Option<u64>,
}

/// A Jupyter notebook (nbformat 4), reduced to what the checks need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notebook {
    pub nbformat: u64,
    /// `metadata.kernelspec.name` (`rust` for evcxr).
    pub kernel: Option<String>,
    pub cells: Vec<Cell>,
}

impl Notebook {
    /// Parses the JSON of an `.ipynb` file. A cell's `source` may be one
    /// string or a list of lines, as nbformat allows.
    pub fn parse(json: &str) -> Result<Notebook, String> {
        let doc: Value = serde_json::from_str(json).map_err(|e| format!("not valid JSON: {e}"))?;
        let nbformat = doc
            .get("nbformat")
            .and_then(Value::as_u64)
            .ok_or("no integer `nbformat` field")?;
        let kernel = doc
            .pointer("/metadata/kernelspec/name")
            .and_then(Value::as_str)
            .map(str::to_owned);
        let raw_cells = doc
            .get("cells")
            .and_then(Value::as_array)
            .ok_or("no `cells` list")?;
        let mut cells = Vec::with_capacity(raw_cells.len());
        for (i, cell) in raw_cells.iter().enumerate() {
            let number = i + 1;
            let kind = match cell.get("cell_type").and_then(Value::as_str) {
                Some("code") => CellKind::Code,
                Some("markdown") => CellKind::Markdown,
                Some("raw") => CellKind::Raw,
                other => return Err(format!("cell {number}: unknown cell_type {other:?}")),
            };
            let source = match cell.get("source") {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Array(lines)) => {
                    let mut s = String::new();
                    for line in lines {
                        s.push_str(line.as_str().ok_or_else(|| {
                            format!("cell {number}: a source line is not a string")
                        })?);
                    }
                    s
                }
                _ => {
                    return Err(format!(
                        "cell {number}: no `source` string or list of lines"
                    ))
                }
            };
            let output_bytes = match cell.get("outputs") {
                Some(Value::Array(outputs)) if !outputs.is_empty() => {
                    serde_json::to_string(outputs).map(|s| s.len()).unwrap_or(0)
                }
                _ => 0,
            };
            let execution_count = cell.get("execution_count").and_then(Value::as_u64);
            cells.push(Cell {
                kind,
                source,
                output_bytes,
                execution_count,
            });
        }
        Ok(Notebook {
            nbformat,
            kernel,
            cells,
        })
    }

    /// Reads and parses an `.ipynb` file; errors name the file.
    pub fn read(path: &Path) -> Result<Notebook, String> {
        let json = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        Notebook::parse(&json).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// The code cells with their 1-based position among all cells.
    pub fn code_cells(&self) -> impl Iterator<Item = (usize, &Cell)> {
        self.cells
            .iter()
            .enumerate()
            .filter(|(_, c)| c.kind == CellKind::Code)
            .map(|(i, c)| (i + 1, c))
    }

    /// Bytes of JSON all stored outputs take.
    pub fn output_bytes(&self) -> usize {
        self.cells.iter().map(|c| c.output_bytes).sum()
    }
}

/// The `.ipynb` files directly in `dir`, sorted by name.
pub fn notebook_paths(dir: &Path) -> Vec<PathBuf> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "ipynb") && p.is_file())
                .collect()
        })
        .unwrap_or_default();
    paths.sort();
    paths
}

// ---------------------------------------------------------------------------
// evcxr's reading of a code cell

/// An evcxr command line such as `:dep regex = "1"` (`name` = `:dep`), or a
/// shell line `!ls` (`name` = `!`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvcxrCommand {
    pub name: String,
    pub args: Option<String>,
    /// 1-based line in the cell.
    pub line: usize,
}

/// A code cell split as evcxr splits it: commands first, then Rust.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvcxrCell {
    pub commands: Vec<EvcxrCommand>,
    /// The Rust code, from its first line to the end of the cell.
    pub code: String,
    /// 1-based line of the cell where `code` starts.
    pub code_line: usize,
}

/// Whether `line` is an evcxr command: `^ *(:[^ ]*)( +(.*))?$`, as evcxr's
/// own pattern reads it. Returns the command's name and arguments.
fn parse_command_line(line: &str) -> Option<(String, Option<String>)> {
    let rest = line.trim_start_matches(' ');
    if !rest.starts_with(':') {
        return None;
    }
    let (name, args) = match rest.find(' ') {
        Some(i) => (&rest[..i], rest[i..].trim_start_matches(' ')),
        None => (rest, ""),
    };
    let args = (!args.is_empty()).then(|| args.to_owned());
    Some((name.to_owned(), args))
}

/// Splits a code cell into its leading evcxr commands and its Rust code.
pub fn split_cell(source: &str) -> EvcxrCell {
    let mut commands = Vec::new();
    let mut offset = 0;
    for (i, line) in source.split_inclusive('\n').enumerate() {
        let text = line.trim_end_matches(['\n', '\r']);
        if let Some(shell) = text.strip_prefix('!') {
            commands.push(EvcxrCommand {
                name: "!".into(),
                args: Some(shell.trim().to_owned()),
                line: i + 1,
            });
        } else if let Some((name, args)) = parse_command_line(text) {
            commands.push(EvcxrCommand {
                name,
                args,
                line: i + 1,
            });
        } else if !(text.starts_with("//") || text.trim().is_empty()) {
            return EvcxrCell {
                commands,
                code: source[offset..].to_owned(),
                code_line: i + 1,
            };
        }
        offset += line.len();
    }
    EvcxrCell {
        commands,
        code: String::new(),
        code_line: source.lines().count() + 1,
    }
}

/// A dependency from a `:dep` line: `name = spec`, `spec` being TOML (a
/// version string or an inline table).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dependency {
    pub name: String,
    pub spec: String,
}

/// Reads the arguments of `:dep` as evcxr does: `name = spec`, `name` alone
/// (any version), or a path to a local crate (`../foo`), whose package name
/// is read from its `Cargo.toml`. A relative `path = "..."` is resolved
/// against `base` (the notebook's folder) and made absolute.
pub fn parse_dep(args: &str, base: &Path) -> Result<Dependency, String> {
    let args = args.trim();
    let (name, spec) = match args.find(['=', ' ']) {
        Some(i) => {
            let rest = args[i..].trim_start_matches(' ');
            let spec = rest
                .strip_prefix('=')
                .ok_or_else(|| format!("`:dep {args}`: expected `name = ...` or just a name"))?;
            (args[..i].to_owned(), spec.trim().to_owned())
        }
        None => (args.to_owned(), String::new()),
    };
    if name.is_empty() {
        return Err(":dep needs a crate name".into());
    }
    if name.starts_with('.') || name.starts_with('/') {
        let dir = base.join(&name);
        let package = package_name(&dir.join("Cargo.toml"))?;
        let spec = format!(
            "{{ path = \"{}\" }}",
            toml_escape(&absolute(&dir).to_string_lossy())
        );
        return Ok(Dependency {
            name: package,
            spec,
        });
    }
    if spec.is_empty() {
        return Ok(Dependency {
            name,
            spec: "\"*\"".into(),
        });
    }
    Ok(Dependency {
        name,
        spec: absolutize_path(&spec, base),
    })
}

/// Rewrites `path = "rel"` in a TOML dependency spec to an absolute path
/// (relative to `base`); other specs come back unchanged.
pub fn absolutize_path(spec: &str, base: &Path) -> String {
    let Some(key) = find_path_key(spec) else {
        return spec.to_owned();
    };
    let after_key = &spec[key + "path".len()..];
    let Some(eq) = after_key.find('=') else {
        return spec.to_owned();
    };
    if !after_key[..eq].trim().is_empty() {
        return spec.to_owned();
    }
    let value = after_key[eq + 1..].trim_start();
    let Some(quoted) = value.strip_prefix('"') else {
        return spec.to_owned();
    };
    let Some(close) = quoted.find('"') else {
        return spec.to_owned();
    };
    let path = Path::new(&quoted[..close]);
    if path.is_absolute() {
        return spec.to_owned();
    }
    let value_start = spec.len() - value.len();
    format!(
        "{}\"{}\"{}",
        &spec[..value_start],
        toml_escape(&absolute(&base.join(path)).to_string_lossy()),
        &quoted[close + 1..]
    )
}

/// Byte offset of a `path` key (not part of a longer word) in a TOML spec.
fn find_path_key(spec: &str) -> Option<usize> {
    let bytes = spec.as_bytes();
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_' || b == b'-';
    spec.match_indices("path").map(|(i, _)| i).find(|&i| {
        let before_ok = i == 0 || !word(bytes[i - 1]);
        let after_ok = bytes.get(i + 4).is_none_or(|&b| !word(b));
        before_ok && after_ok
    })
}

/// `path` made absolute and, where it exists, canonical (no `..`).
fn absolute(path: &Path) -> PathBuf {
    path.canonicalize().unwrap_or_else(|_| path.to_path_buf())
}

fn toml_escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

/// The `name` of the `[package]` in a `Cargo.toml`.
fn package_name(manifest: &Path) -> Result<String, String> {
    let text =
        std::fs::read_to_string(manifest).map_err(|e| format!("{}: {e}", manifest.display()))?;
    let mut in_package = false;
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            in_package = line == "[package]";
        } else if in_package {
            if let Some(rest) = line.strip_prefix("name") {
                if let Some(value) = rest.trim_start().strip_prefix('=') {
                    return Ok(value.trim().trim_matches('"').to_owned());
                }
            }
        }
    }
    Err(format!("{}: no [package] name", manifest.display()))
}

// ---------------------------------------------------------------------------
// Statements of a cell

/// What a top-level statement of a cell is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatementKind {
    /// `let ...;`
    Let,
    /// An item: `fn`, `struct`, `use`, `impl`, `macro_rules!`, ...
    Item,
    /// An expression (a call, a macro, a block-like `for`/`if`/`match`, ...).
    Expr,
}

/// One top-level statement: `code[start..end]`, `end` just past its last
/// token (its `;` when it has one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Statement {
    pub start: usize,
    pub end: usize,
    pub kind: StatementKind,
    pub has_semicolon: bool,
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Lifetime,
    Literal,
    Open(char),
    Close(char),
    Punct(char),
}

#[derive(Debug, Clone)]
struct Token {
    tok: Tok,
    start: usize,
    end: usize,
}

/// A small Rust lexer: enough to find brackets, `;` and keywords, skipping
/// comments, strings (raw, byte, C), char literals and lifetimes. Returns an
/// error on an unterminated string, comment or char.
fn lex(code: &str) -> Result<Vec<Token>, String> {
    let b = code.as_bytes();
    let n = b.len();
    let mut out = Vec::new();
    let mut i = 0;
    let is_ident_start = |c: u8| c.is_ascii_alphabetic() || c == b'_' || c >= 0x80;
    let is_ident = |c: u8| c.is_ascii_alphanumeric() || c == b'_' || c >= 0x80;
    while i < n {
        let c = b[i];
        let start = i;
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        if c == b'/' && b.get(i + 1) == Some(&b'/') {
            while i < n && b[i] != b'\n' {
                i += 1;
            }
            continue;
        }
        if c == b'/' && b.get(i + 1) == Some(&b'*') {
            let mut depth = 1;
            i += 2;
            while depth > 0 {
                if i + 1 >= n {
                    return Err("unterminated block comment".into());
                }
                if b[i] == b'/' && b[i + 1] == b'*' {
                    depth += 1;
                    i += 2;
                } else if b[i] == b'*' && b[i + 1] == b'/' {
                    depth -= 1;
                    i += 2;
                } else {
                    i += 1;
                }
            }
            continue;
        }
        if c == b'"' {
            i = skip_string(b, i)?;
            out.push(Token {
                tok: Tok::Literal,
                start,
                end: i,
            });
            continue;
        }
        if c == b'\'' {
            // A char literal ('x', '\n', '\u{..}', a multi-byte char) or a
            // lifetime / loop label ('a).
            if b.get(i + 1) == Some(&b'\\') {
                i = skip_char(b, i)?;
                out.push(Token {
                    tok: Tok::Literal,
                    start,
                    end: i,
                });
                continue;
            }
            let next_char_len = code[i + 1..].chars().next().map_or(0, char::len_utf8);
            if next_char_len > 0 && b.get(i + 1 + next_char_len) == Some(&b'\'') {
                i += 2 + next_char_len;
                out.push(Token {
                    tok: Tok::Literal,
                    start,
                    end: i,
                });
                continue;
            }
            i += 1;
            while i < n && is_ident(b[i]) {
                i += 1;
            }
            out.push(Token {
                tok: Tok::Lifetime,
                start,
                end: i,
            });
            continue;
        }
        if c.is_ascii_digit() {
            while i < n
                && (is_ident(b[i])
                    || (b[i] == b'.' && b.get(i + 1).is_some_and(u8::is_ascii_digit)))
            {
                i += 1;
            }
            out.push(Token {
                tok: Tok::Literal,
                start,
                end: i,
            });
            continue;
        }
        if is_ident_start(c) {
            while i < n && is_ident(b[i]) {
                i += 1;
            }
            let word = &code[start..i];
            let next = b.get(i).copied();
            // String and char prefixes: b"..", b'..', c"..", r".." / r#".."#, br, cr.
            if matches!(word, "r" | "br" | "cr") && matches!(next, Some(b'"') | Some(b'#')) {
                if let Some(end) = skip_raw_string(b, i) {
                    i = end;
                    out.push(Token {
                        tok: Tok::Literal,
                        start,
                        end: i,
                    });
                    continue;
                }
                if word == "r" && next == Some(b'#') {
                    // A raw identifier, r#type.
                    i += 1;
                    while i < n && is_ident(b[i]) {
                        i += 1;
                    }
                    out.push(Token {
                        tok: Tok::Ident(code[start + 2..i].to_owned()),
                        start,
                        end: i,
                    });
                    continue;
                }
            }
            if matches!(word, "b" | "c") && next == Some(b'"') {
                i = skip_string(b, i)?;
                out.push(Token {
                    tok: Tok::Literal,
                    start,
                    end: i,
                });
                continue;
            }
            if word == "b" && next == Some(b'\'') {
                i = skip_char(b, i)?;
                out.push(Token {
                    tok: Tok::Literal,
                    start,
                    end: i,
                });
                continue;
            }
            out.push(Token {
                tok: Tok::Ident(word.to_owned()),
                start,
                end: i,
            });
            continue;
        }
        let ch = code[i..].chars().next().unwrap_or(' ');
        i += ch.len_utf8();
        let tok = match ch {
            '(' | '[' | '{' => Tok::Open(ch),
            ')' | ']' | '}' => Tok::Close(ch),
            _ => Tok::Punct(ch),
        };
        out.push(Token { tok, start, end: i });
    }
    Ok(out)
}

/// `b[i] == '"'`: the index just past the closing quote.
fn skip_string(b: &[u8], mut i: usize) -> Result<usize, String> {
    i += 1;
    while i < b.len() {
        match b[i] {
            b'\\' => i += 2,
            b'"' => return Ok(i + 1),
            _ => i += 1,
        }
    }
    Err("unterminated string literal".into())
}

/// `b[i] == '\''`: the index just past the closing quote of a char literal.
fn skip_char(b: &[u8], mut i: usize) -> Result<usize, String> {
    i += 1;
    while i < b.len() {
        match b[i] {
            b'\\' => i += 2,
            b'\'' => return Ok(i + 1),
            b'\n' => break,
            _ => i += 1,
        }
    }
    Err("unterminated character literal".into())
}

/// At `#*"`: the index past the raw string's closing `"#*`, or `None` if
/// this is not a raw string.
fn skip_raw_string(b: &[u8], mut i: usize) -> Option<usize> {
    let mut hashes = 0;
    while b.get(i) == Some(&b'#') {
        hashes += 1;
        i += 1;
    }
    if b.get(i) != Some(&b'"') {
        return None;
    }
    i += 1;
    while i < b.len() {
        if b[i] == b'"'
            && b[i + 1..]
                .iter()
                .take(hashes)
                .filter(|&&c| c == b'#')
                .count()
                == hashes
        {
            return Some(i + 1 + hashes);
        }
        i += 1;
    }
    None
}

const ITEM_KEYWORDS: &[&str] = &[
    "fn",
    "struct",
    "enum",
    "union",
    "trait",
    "impl",
    "mod",
    "use",
    "extern",
    "type",
    "const",
    "static",
    "macro_rules",
    "pub",
];

/// How a statement that starts at `toks[0]` ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ending {
    /// At the first `;` outside brackets.
    Semicolon,
    /// At a `;`, or at the `}` that closes its first outer brace block
    /// (items with bodies, `{ }` macros, block-like expressions). For `if`
    /// and `match`, an `else`, `.` or `?` after the `}` continues it.
    SemicolonOrBlock,
}

/// The word of an identifier token.
fn ident(t: Option<&Token>) -> Option<&str> {
    match t.map(|t| &t.tok) {
        Some(Tok::Ident(s)) => Some(s.as_str()),
        _ => None,
    }
}

fn classify(toks: &[Token]) -> (StatementKind, Ending) {
    // Skip outer attributes: `#[...]`.
    let mut k = 0;
    while toks.get(k).is_some_and(|t| t.tok == Tok::Punct('#'))
        && toks.get(k + 1).is_some_and(|t| t.tok == Tok::Open('['))
    {
        let mut depth = 0;
        k += 1;
        while let Some(t) = toks.get(k) {
            match t.tok {
                Tok::Open(_) => depth += 1,
                Tok::Close(_) => depth -= 1,
                _ => {}
            }
            k += 1;
            if depth == 0 {
                break;
            }
        }
    }
    let first = ident(toks.get(k));
    let second = toks.get(k + 1).map(|t| &t.tok);
    match first {
        Some("let") => (StatementKind::Let, Ending::Semicolon),
        Some("unsafe" | "async")
            if matches!(second, Some(Tok::Open('{'))) || ident(toks.get(k + 1)) == Some("move") =>
        {
            (StatementKind::Expr, Ending::SemicolonOrBlock)
        }
        Some("unsafe" | "async") => (StatementKind::Item, Ending::SemicolonOrBlock),
        Some(word) if ITEM_KEYWORDS.contains(&word) => {
            (StatementKind::Item, Ending::SemicolonOrBlock)
        }
        Some("if" | "match" | "for" | "while" | "loop") => {
            (StatementKind::Expr, Ending::SemicolonOrBlock)
        }
        // `name! { ... }`: a macro called with braces ends at its `}`.
        Some(_)
            if second == Some(&Tok::Punct('!'))
                && toks.get(k + 2).is_some_and(|t| t.tok == Tok::Open('{')) =>
        {
            (StatementKind::Expr, Ending::SemicolonOrBlock)
        }
        _ => match toks.get(k).map(|t| &t.tok) {
            Some(Tok::Open('{')) => (StatementKind::Expr, Ending::SemicolonOrBlock),
            // A loop label: `'outer: for ...`.
            Some(Tok::Lifetime) if second == Some(&Tok::Punct(':')) => {
                (StatementKind::Expr, Ending::SemicolonOrBlock)
            }
            _ => (StatementKind::Expr, Ending::Semicolon),
        },
    }
}

/// Splits Rust code (the body of a cell) into its top-level statements.
/// Fails on unbalanced brackets or unterminated literals.
pub fn split_statements(code: &str) -> Result<Vec<Statement>, String> {
    let toks = lex(code)?;
    let mut statements = Vec::new();
    let mut s = 0;
    while s < toks.len() {
        if toks[s].tok == Tok::Punct(';') {
            // A stray `;` (an empty statement).
            s += 1;
            continue;
        }
        let (kind, ending) = classify(&toks[s..]);
        let mut depth: Vec<char> = Vec::new();
        let mut j = s;
        let mut end = None;
        while j < toks.len() {
            match toks[j].tok {
                Tok::Open(c) => depth.push(c),
                Tok::Close(c) => {
                    let open = depth
                        .pop()
                        .ok_or_else(|| format!("unmatched `{c}` at byte {}", toks[j].start))?;
                    let expected = match open {
                        '(' => ')',
                        '[' => ']',
                        _ => '}',
                    };
                    if c != expected {
                        return Err(format!(
                            "`{open}` closed by `{c}` at byte {}",
                            toks[j].start
                        ));
                    }
                    if c == '}' && depth.is_empty() && ending == Ending::SemicolonOrBlock {
                        let next = toks.get(j + 1).map(|t| &t.tok);
                        let continues = match next {
                            Some(Tok::Ident(w)) => w == "else",
                            Some(Tok::Punct('.' | '?')) => true,
                            _ => false,
                        };
                        if !continues {
                            let semicolon = next == Some(&Tok::Punct(';'));
                            end = Some((j + usize::from(semicolon), semicolon));
                            break;
                        }
                    }
                }
                Tok::Punct(';') if depth.is_empty() => {
                    end = Some((j, true));
                    break;
                }
                _ => {}
            }
            j += 1;
        }
        if !depth.is_empty() {
            return Err(format!("unclosed `{}`", depth[depth.len() - 1]));
        }
        let (last, has_semicolon) = end.unwrap_or((toks.len() - 1, false));
        statements.push(Statement {
            start: toks[s].start,
            end: toks[last].end,
            kind,
            has_semicolon,
        });
        s = last + 1;
    }
    Ok(statements)
}

/// The statement evcxr displays: the last one, if it is an expression
/// without a `;`.
pub fn final_expression(code: &str) -> Result<Option<Statement>, String> {
    Ok(split_statements(code)?
        .last()
        .copied()
        .filter(|s| s.kind == StatementKind::Expr && !s.has_semicolon))
}

// ---------------------------------------------------------------------------
// The generated program

/// A notebook as one Rust program.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Program {
    /// `src/main.rs`.
    pub main_rs: String,
    /// From the `:dep` lines, in order (a later `:dep` of the same crate wins).
    pub dependencies: Vec<Dependency>,
    /// For each line of `main_rs` (index = line - 1): the notebook cell
    /// (1-based, among all cells) and the line in that cell it came from.
    pub line_map: Vec<Option<(usize, usize)>>,
}

impl Program {
    /// The notebook cell and line that line `line` (1-based) of `main.rs` comes from.
    pub fn locate(&self, line: usize) -> Option<(usize, usize)> {
        self.line_map.get(line.checked_sub(1)?).copied().flatten()
    }

    /// Appends `[notebook cell C, line L]` to every `src/main.rs:LINE:COL`
    /// in compiler output.
    pub fn annotate(&self, output: &str, notebook: &str) -> String {
        let mut out = String::with_capacity(output.len());
        for line in output.lines() {
            out.push_str(line);
            if let Some(pos) = line.find("src/main.rs:") {
                let digits: String = line[pos + "src/main.rs:".len()..]
                    .chars()
                    .take_while(char::is_ascii_digit)
                    .collect();
                if let Some((cell, cell_line)) = digits.parse().ok().and_then(|l| self.locate(l)) {
                    let _ = write!(out, "   [{notebook}, cell {cell}, line {cell_line}]");
                }
            }
            out.push('\n');
        }
        out
    }
}

/// Builds the program for `notebook`; `base` is the notebook's folder (for
/// relative `:dep` paths) and `name` is shown in the header comment.
pub fn program_from(notebook: &Notebook, base: &Path, name: &str) -> Result<Program, String> {
    let mut dependencies: Vec<Dependency> = Vec::new();
    let mut main_rs = String::new();
    let mut line_map = Vec::new();
    let mut push = |main_rs: &mut String, text: &str, origin: Option<(usize, usize)>| {
        for (i, line) in text.lines().enumerate() {
            main_rs.push_str(line);
            main_rs.push('\n');
            line_map.push(origin.map(|(cell, first)| (cell, first + i)));
        }
    };
    push(
        &mut main_rs,
        &format!(
            "// Generated by candle-tests from {name}: its code cells, in order, in one `main`.\n\
             // Do not edit; edit the notebook.\n\
             #![allow(warnings)]\n\n\
             fn main() -> ::std::result::Result<(), ::std::boxed::Box<dyn ::std::error::Error>> {{"
        ),
        None,
    );
    for (number, cell) in notebook.code_cells() {
        let evcxr = split_cell(&cell.source);
        for command in &evcxr.commands {
            if command.name == ":dep" {
                let args = command.args.as_deref().unwrap_or("");
                let dep = parse_dep(args, base)
                    .map_err(|e| format!("cell {number}, line {}: {e}", command.line))?;
                dependencies.retain(|d| d.name != dep.name);
                dependencies.push(dep);
            }
        }
        if evcxr.code.trim().is_empty() {
            continue;
        }
        push(&mut main_rs, &format!("// ---- cell {number} ----"), None);
        let code = match final_expression(&evcxr.code).map_err(|e| format!("cell {number}: {e}"))? {
            // `let _ = &(expr);` type-checks the displayed value without
            // moving it, as evcxr's display does.
            Some(expr) => format!(
                "{}let _ = &({});{}",
                &evcxr.code[..expr.start],
                &evcxr.code[expr.start..expr.end],
                &evcxr.code[expr.end..]
            ),
            None => evcxr.code.clone(),
        };
        push(&mut main_rs, &code, Some((number, evcxr.code_line)));
    }
    push(&mut main_rs, "    Ok(())\n}", None);
    Ok(Program {
        main_rs,
        dependencies,
        line_map,
    })
}

/// The `Cargo.toml` of the generated crate. Edition 2024, as evcxr compiles
/// cells with it; the empty `[workspace]` keeps the crate out of ours.
pub fn cargo_toml(package: &str, dependencies: &[Dependency]) -> String {
    let mut toml = format!(
        "# Generated by candle-tests (tests/src/notebooks.rs); do not edit.\n\
         [package]\nname = \"{package}\"\nversion = \"0.0.0\"\nedition = \"2024\"\npublish = false\n\n\
         [dependencies]\n"
    );
    for dep in dependencies {
        let _ = writeln!(toml, "{} = {}", dep.name, dep.spec);
    }
    toml.push_str("\n[workspace]\n");
    toml
}

/// A valid package name for the notebook `stem`: `notebook-06-mlp-mnist`.
pub fn package_name_for(stem: &str) -> String {
    let clean: String = stem
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect();
    format!("notebook-{clean}")
}

/// Writes the crate for the notebook at `path` into `dir` (created if
/// needed): `Cargo.toml`, `src/main.rs`, and a copy of `lock` (the
/// workspace's `Cargo.lock`, so the crate resolves offline to the versions
/// the workspace already built). Returns the program.
pub fn write_check_crate(path: &Path, dir: &Path, lock: Option<&Path>) -> Result<Program, String> {
    let notebook = Notebook::read(path)?;
    let base = absolute(path.parent().unwrap_or(Path::new(".")));
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let file_name = path
        .file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let program = program_from(&notebook, &base, &format!("notebooks/{file_name}"))
        .map_err(|e| format!("{}: {e}", path.display()))?;
    write_crate(dir, &package_name_for(&stem), &program, lock)?;
    Ok(program)
}

/// Writes `program` as the crate `package` in `dir`.
pub fn write_crate(
    dir: &Path,
    package: &str,
    program: &Program,
    lock: Option<&Path>,
) -> Result<(), String> {
    let io = |p: &Path, e: std::io::Error| format!("{}: {e}", p.display());
    let src = dir.join("src");
    std::fs::create_dir_all(&src).map_err(|e| io(&src, e))?;
    write_if_changed(
        &dir.join("Cargo.toml"),
        &cargo_toml(package, &program.dependencies),
    )
    .map_err(|e| io(dir, e))?;
    write_if_changed(&src.join("main.rs"), &program.main_rs).map_err(|e| io(&src, e))?;
    if let Some(lock) = lock.filter(|l| l.is_file()) {
        let text = std::fs::read_to_string(lock).map_err(|e| io(lock, e))?;
        write_if_changed(&dir.join("Cargo.lock"), &text).map_err(|e| io(dir, e))?;
    }
    Ok(())
}

/// Writes only when the content differs, so cargo's fingerprints (file
/// modification times) stay fresh and a rerun compiles nothing.
fn write_if_changed(path: &Path, content: &str) -> std::io::Result<()> {
    if std::fs::read_to_string(path).is_ok_and(|old| old == content) {
        return Ok(());
    }
    std::fs::write(path, content)
}

/// The cargo that runs this test (the one `cargo test` was started with).
pub fn cargo_binary() -> PathBuf {
    std::env::var_os("CARGO")
        .or_else(|| option_env!("CARGO").map(Into::into))
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("cargo"))
}

/// Runs `cargo check --offline` on the crate in `dir` with `target_dir` as
/// its target folder. On failure returns cargo's output.
pub fn cargo_check(dir: &Path, target_dir: &Path) -> Result<(), String> {
    let output = Command::new(cargo_binary())
        .args([
            "check",
            "--offline",
            "--quiet",
            "--color",
            "never",
            "--manifest-path",
        ])
        .arg(dir.join("Cargo.toml"))
        .env("CARGO_TARGET_DIR", target_dir)
        .output()
        .map_err(|e| format!("could not run {}: {e}", cargo_binary().display()))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "cargo check ({}) failed:\n{}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}

/// The folder the generated crates go into: `<target>/notebook-check`,
/// `<target>` being `$CARGO_TARGET_DIR` or the workspace's `target/`.
pub fn check_root(workspace: &Path) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map(|t| {
            if t.is_absolute() {
                t
            } else {
                workspace.join(t)
            }
        })
        .unwrap_or_else(|| workspace.join("target"));
    target.join("notebook-check")
}

/// Generates and compiles the crate of one notebook; the error holds the
/// compiler's output with notebook locations.
pub fn check_notebook(path: &Path, workspace: &Path) -> Result<(), String> {
    let root = check_root(workspace);
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let dir = root.join(&stem);
    let program = write_check_crate(path, &dir, Some(&workspace.join("Cargo.lock")))?;
    let file_name = path
        .file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    cargo_check(&dir, &root.join("target")).map_err(|out| {
        format!(
            "notebooks/{file_name} does not compile (generated crate: {}):\n{}",
            dir.display(),
            program.annotate(&out, &format!("notebooks/{file_name}"))
        )
    })
}
