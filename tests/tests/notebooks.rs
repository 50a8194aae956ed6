//! The notebooks in `notebooks/` compile, without Jupyter.
//!
//! Each notebook's code cells become one Rust program (see
//! `candle_tests::notebooks`), which is compiled with `cargo check` against
//! candle-lib in a crate under `target/notebook-check/`. The first run checks
//! candle-lib and its dependencies once more (about a minute on two cores);
//! later runs reuse `target/notebook-check/target` and take seconds.
//! Running the notebooks for real is `scripts/run-notebooks.sh`.
//!
//! The tests at the bottom exercise the extraction itself on small notebooks
//! held in memory.

use candle_tests::notebooks::{
    self, final_expression, notebook_paths, parse_dep, program_from, split_cell, split_statements,
    CellKind, Notebook, StatementKind,
};
use candle_tests::workspace_root;
use std::path::{Path, PathBuf};

/// Notebooks may keep small outputs (a printed accuracy); figures and long
/// logs make diffs unreadable, so they are cleared before committing.
const MAX_OUTPUT_BYTES: usize = 20_000;

fn workspace_notebooks() -> Vec<PathBuf> {
    let paths = notebook_paths(&workspace_root().join("notebooks"));
    assert!(
        !paths.is_empty(),
        "no notebooks/*.ipynb under {}",
        workspace_root().display()
    );
    paths
}

#[test]
fn every_notebook_compiles_against_candle_lib() {
    let root = workspace_root();
    let failures: Vec<String> = workspace_notebooks()
        .iter()
        .filter_map(|path| notebooks::check_notebook(path, &root).err())
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn every_notebook_is_nbformat_4_for_the_rust_kernel() {
    for path in workspace_notebooks() {
        let notebook = Notebook::read(&path).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(notebook.nbformat, 4, "{}: nbformat", path.display());
        assert_eq!(
            notebook.kernel.as_deref(),
            Some("rust"),
            "{}: metadata.kernelspec.name must be evcxr's `rust`",
            path.display()
        );
        assert!(
            notebook.cells.iter().any(|c| c.kind == CellKind::Markdown),
            "{}: no markdown cell",
            path.display()
        );
    }
}

#[test]
fn every_notebook_starts_with_cache_and_the_candle_lib_dependency() {
    for path in workspace_notebooks() {
        let notebook = Notebook::read(&path).unwrap_or_else(|e| panic!("{e}"));
        let commands: Vec<String> = notebook
            .code_cells()
            .map(|(_, cell)| split_cell(&cell.source))
            .take_while(|cell| cell.code.trim().is_empty())
            .flat_map(|cell| cell.commands)
            .map(|c| format!("{} {}", c.name, c.args.unwrap_or_default()))
            .collect();
        assert_eq!(
            commands.first().map(String::as_str),
            Some(":cache 500"),
            "{}: the first code cell must be `:cache 500`",
            path.display()
        );
        assert!(
            commands.iter().any(|c| c == r#":dep candle-lib = { path = "../candle-lib" }"#),
            "{}: the first cells must hold `:dep candle-lib = {{ path = \"../candle-lib\" }}`; they hold {commands:?}",
            path.display()
        );
    }
}

#[test]
fn notebooks_are_committed_without_large_outputs() {
    for path in workspace_notebooks() {
        let notebook = Notebook::read(&path).unwrap_or_else(|e| panic!("{e}"));
        assert!(
            notebook.output_bytes() <= MAX_OUTPUT_BYTES,
            "{}: {} bytes of stored outputs (at most {MAX_OUTPUT_BYTES}); clear them before committing \
             (Jupyter: Edit > Clear Outputs of All Cells, or \
             `.venv-notebooks/bin/jupyter nbconvert --clear-output --inplace {}`)",
            path.display(),
            notebook.output_bytes(),
            path.display()
        );
    }
}

// ---------------------------------------------------------------------------
// The extraction, on notebooks held in memory

/// A notebook JSON with these cells (`("code" | "markdown", source)`), the
/// sources given as lists of lines like Jupyter writes them.
fn notebook_json(cells: &[(&str, &str)]) -> String {
    let cells: Vec<serde_json::Value> = cells
        .iter()
        .map(|(kind, source)| {
            let lines: Vec<String> = source.split_inclusive('\n').map(str::to_owned).collect();
            let mut cell =
                serde_json::json!({ "cell_type": kind, "metadata": {}, "source": lines });
            if *kind == "code" {
                cell["outputs"] = serde_json::json!([]);
                cell["execution_count"] = serde_json::Value::Null;
            }
            cell
        })
        .collect();
    serde_json::json!({
        "nbformat": 4,
        "nbformat_minor": 5,
        "metadata": { "kernelspec": { "name": "rust", "display_name": "Rust", "language": "rust" } },
        "cells": cells,
    })
    .to_string()
}

#[test]
fn extraction_reads_source_as_a_string_or_a_list_of_lines() {
    let as_lines = Notebook::parse(&notebook_json(&[("code", "let a = 1;\nlet b = 2;")])).unwrap();
    assert_eq!(as_lines.cells[0].source, "let a = 1;\nlet b = 2;");
    let as_string = Notebook::parse(
        r#"{"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [
            {"cell_type": "code", "metadata": {}, "source": "let a = 1;", "outputs": [], "execution_count": null}]}"#,
    )
    .unwrap();
    assert_eq!(as_string.cells[0].source, "let a = 1;");
    assert_eq!(as_string.kernel, None);
    assert!(
        Notebook::parse(r#"{"cells": []}"#).is_err(),
        "a document without nbformat is not a notebook"
    );
}

#[test]
fn extraction_separates_evcxr_commands_from_rust() {
    let cell = split_cell(
        ":cache 500\n\n// a comment\n:dep rand = \"0.9\"\nlet x = 1;\n:not_a_command_now",
    );
    let names: Vec<&str> = cell.commands.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, [":cache", ":dep"]);
    assert_eq!(cell.commands[1].args.as_deref(), Some("rand = \"0.9\""));
    assert_eq!(cell.commands[1].line, 4);
    // Once Rust starts, the rest of the cell is Rust (as in evcxr).
    assert_eq!(cell.code, "let x = 1;\n:not_a_command_now");
    assert_eq!(cell.code_line, 5);

    let only_commands = split_cell(":opt 2\n!echo hi\n");
    assert_eq!(only_commands.commands.len(), 2);
    assert_eq!(only_commands.commands[1].name, "!");
    assert!(only_commands.code.is_empty());
}

#[test]
fn extraction_parses_dep_lines_and_makes_paths_absolute() {
    let base = workspace_root().join("notebooks");
    let dep = parse_dep(r#"candle-lib = { path = "../candle-lib" }"#, &base).unwrap();
    assert_eq!(dep.name, "candle-lib");
    let expected = workspace_root().join("candle-lib");
    assert_eq!(dep.spec, format!("{{ path = \"{}\" }}", expected.display()));

    let with_features = parse_dep(
        r#"plotters = { version = "0.3.7", default-features = false, features = ["evcxr"] }"#,
        &base,
    )
    .unwrap();
    assert_eq!(with_features.name, "plotters");
    assert_eq!(
        with_features.spec,
        r#"{ version = "0.3.7", default-features = false, features = ["evcxr"] }"#
    );

    assert_eq!(parse_dep("regex", &base).unwrap().spec, "\"*\"");
    assert_eq!(parse_dep(r#"regex="1""#, &base).unwrap().spec, "\"1\"");
    // `:dep ../candle-lib`: a local crate by path; the name comes from its Cargo.toml.
    let local = parse_dep("../candle-lib", &base).unwrap();
    assert_eq!(local.name, "candle-lib");
    assert!(
        local.spec.contains(&expected.display().to_string()),
        "{}",
        local.spec
    );
    assert!(parse_dep("regex 1", &base).is_err());
}

#[test]
fn extraction_finds_statements_and_the_final_expression() {
    let kinds = |code: &str| -> Vec<(StatementKind, bool)> {
        split_statements(code)
            .unwrap()
            .iter()
            .map(|s| (s.kind, s.has_semicolon))
            .collect()
    };
    use StatementKind::{Expr, Item, Let};
    assert_eq!(kinds("let a = 1;\na + 1"), [(Let, true), (Expr, false)]);
    assert_eq!(
        kinds("use std::{fmt, io};\nfn f() -> u8 { 1 }\nf()"),
        [(Item, true), (Item, false), (Expr, false)]
    );
    // Block-like expressions end at their `}`; `else` continues an `if`.
    assert_eq!(
        kinds("for i in 0..3 { }\nif a { 1 } else { 2 }"),
        [(Expr, false), (Expr, false)]
    );
    assert_eq!(
        kinds("#[derive(Debug)]\nstruct S { a: u8 }\nS { a: 1 }"),
        [(Item, false), (Expr, false)]
    );
    // Braces, `;` and quotes inside strings, chars and comments are not code.
    let tricky = "let s = \"}; {\"; // }\nlet c = '{'; /* ; } */ let r = r#\"\"}\"#;\nlet l: &'static str = s;\ns";
    assert_eq!(
        kinds(tricky),
        [
            (Let, true),
            (Let, true),
            (Let, true),
            (Let, true),
            (Expr, false)
        ]
    );
    // A closure body with `;` inside an expression.
    assert_eq!(
        kinds("v.iter().for_each(|x| { let y = x; });\nv"),
        [(Expr, true), (Expr, false)]
    );

    let code = "let v = vec![1];\nv.len() // shown\n";
    let expr = final_expression(code).unwrap().unwrap();
    assert_eq!(&code[expr.start..expr.end], "v.len()");
    assert_eq!(final_expression("let a = 1;").unwrap(), None);
    assert_eq!(final_expression("fn f() {}").unwrap(), None);
    assert!(split_statements("let a = (1;").is_err());
    assert!(split_statements("let s = \"open;").is_err());
}

#[test]
fn extraction_puts_cells_in_one_main_and_borrows_the_displayed_expression() {
    let json = notebook_json(&[
        ("markdown", "# Title\nnot code"),
        ("code", ":cache 500"),
        (
            "code",
            ":dep candle-lib = { path = \"../candle-lib\" }\nuse std::collections::BTreeMap;",
        ),
        ("code", "let v = vec![1, 2, 3];\nv"),
        (
            "code",
            "fn total(v: &[i32]) -> i32 { v.iter().sum() }\nlet t = total(&v);\nt",
        ),
    ]);
    let notebook = Notebook::parse(&json).unwrap();
    let program =
        program_from(&notebook, &workspace_root().join("notebooks"), "test.ipynb").unwrap();
    assert_eq!(program.dependencies.len(), 1);
    assert_eq!(program.dependencies[0].name, "candle-lib");
    let main = &program.main_rs;
    assert!(main.contains(
        "fn main() -> ::std::result::Result<(), ::std::boxed::Box<dyn ::std::error::Error>> {"
    ));
    assert!(
        main.contains("let _ = &(v);"),
        "the displayed `v` is borrowed, not moved:\n{main}"
    );
    assert!(main.contains("let _ = &(t);"), "{main}");
    assert!(
        !main.contains(":cache") && !main.contains(":dep") && !main.contains("# Title"),
        "{main}"
    );
    let first = main.find("let v = vec!").unwrap();
    assert!(
        first < main.find("fn total").unwrap(),
        "cells stay in order"
    );
    // Lines map back to cells: `let t = ...` is line 2 of cell 5.
    let line = main
        .lines()
        .position(|l| l.starts_with("let t = total"))
        .unwrap()
        + 1;
    assert_eq!(program.locate(line), Some((5, 2)));
    let annotated = program.annotate(&format!("  --> src/main.rs:{line}:9"), "test.ipynb");
    assert!(
        annotated.contains("[test.ipynb, cell 5, line 2]"),
        "{annotated}"
    );
}

/// Compiles generated programs for real (no dependencies: a second each): a
/// notebook whose cells end in expressions compiles, and one with a type
/// error fails with the cell it is in.
#[test]
fn extraction_output_compiles_and_errors_point_at_the_cell() {
    let root = notebooks::check_root(&workspace_root()).join("selftest");
    let target = notebooks::check_root(&workspace_root()).join("target");
    let check = |name: &str, cells: &[(&str, &str)]| {
        let notebook = Notebook::parse(&notebook_json(cells)).unwrap();
        let program = program_from(&notebook, Path::new("."), name).unwrap();
        let dir = root.join(name);
        notebooks::write_crate(&dir, &format!("notebook-selftest-{name}"), &program, None).unwrap();
        notebooks::cargo_check(&dir, &target).map_err(|out| program.annotate(&out, name))
    };
    let good = [
        ("markdown", "# Works"),
        ("code", ":cache 500\nuse std::collections::BTreeMap;"),
        ("code", "let mut counts: BTreeMap<&str, i64> = BTreeMap::new();\nfor w in \"a b a\".split(' ') { *counts.entry(w).or_insert(0) += 1; }\ncounts"),
        ("code", "fn parse(s: &str) -> Result<i64, std::num::ParseIntError> { s.parse() }\nlet n = parse(\"42\")?;\nif n > 0 { n } else { -n }"),
        ("code", "let total: i64 = counts.values().sum::<i64>() + n;\ntotal"),
    ];
    if let Err(out) = check("good", &good) {
        panic!("a valid notebook did not compile:\n{out}");
    }
    let bad = [
        ("code", "let a: u8 = 1;"),
        ("markdown", "text"),
        ("code", "let b = 2;\nlet c: String = a;"),
    ];
    let out = check("bad", &bad).expect_err("a type error must fail the check");
    assert!(out.contains("mismatched types"), "{out}");
    assert!(
        out.contains("[bad, cell 3, line 2]"),
        "the error names the cell and line:\n{out}"
    );
}
