//! Each page numbers its exercises 1, 2, …, n.
//!
//! A page's exercises are the part of the page from a `## Exercise` or
//! `## Exercises` heading to the next heading of level 1 or 2. They are
//! numbered either as headings (`### 1. sin`) or as a top-level ordered list
//! (`1. **Mish** …`, at the start of a line). Where the section has numbered
//! headings, only those count (a list inside an exercise is the exercise's own
//! steps); otherwise the list items at the start of a line count. Code blocks
//! are skipped. A page whose exercises began at 4 because they were cut from a
//! longer list elsewhere reads as if three were missing.

use super::check_pages;
use super::markdown::prose_lines;
use crate::{Problem, Problems, SourceTree};
use std::path::Path;

/// The number of an exercise written on `line`: `### N.` headings and
/// `N. ` list items, as `(number, is_heading)`.
fn exercise_number(line: &str) -> Option<(usize, bool)> {
    let (rest, heading) = match line.strip_prefix("### ") {
        Some(rest) => (rest.trim_start(), true),
        None => (line, false),
    };
    let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
    if digits.is_empty() {
        return None;
    }
    let after = &rest[digits.len()..];
    if !(after.starts_with(". ") || after == ".") {
        return None;
    }
    digits.parse().ok().map(|n| (n, heading))
}

/// The numbered exercises of a section: (line, number, written as a heading).
type Numbered = Vec<(usize, usize, bool)>;

/// Whether `line` is a heading of level 1 or 2.
fn is_section_heading(line: &str) -> bool {
    line.starts_with("# ") || line.starts_with("## ")
}

/// Checks the exercise numbering of one page.
pub fn check_page(page: &Path, text: &str) -> Problems {
    let mut problems = Problems::default();
    let mut section: Option<(usize, Numbered)> = None;
    let mut sections = Vec::new();
    for (line_number, line) in prose_lines(text) {
        if is_section_heading(line) {
            if let Some(done) = section.take() {
                sections.push(done);
            }
            let title = line.trim_start_matches('#').trim();
            if title == "Exercise" || title == "Exercises" {
                section = Some((line_number, Vec::new()));
            }
            continue;
        }
        if let Some((_, numbers)) = section.as_mut() {
            if let Some((n, heading)) = exercise_number(line) {
                numbers.push((line_number, n, heading));
            }
        }
    }
    sections.extend(section);
    for (_, numbers) in sections {
        let any_heading = numbers.iter().any(|&(_, _, heading)| heading);
        let counted = numbers
            .into_iter()
            .filter(|&(_, _, heading)| heading == any_heading);
        for (expected, (line_number, n, _)) in (1..).zip(counted) {
            if n != expected {
                problems.push(Problem::new(
                    page,
                    line_number,
                    format!("exercise numbered {n} where {expected} belongs: number each page's exercises 1, 2, …"),
                ));
                break;
            }
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
    use crate::MemoryTree;

    #[test]
    fn reads_heading_and_list_numbers() {
        assert_eq!(exercise_number("### 2. `roll`"), Some((2, true)));
        assert_eq!(exercise_number("4. **The norm**"), Some((4, false)));
        assert_eq!(exercise_number("   1. nested step"), None);
        assert_eq!(exercise_number("2024 was a year."), None);
        assert_eq!(exercise_number("### More"), None);
    }

    #[test]
    fn exercises_starting_at_four_are_caught() {
        let tree = MemoryTree::new(&[(
            "book/src/04-x/reductions.md",
            "# R\n\n## Exercise\n\nRun it:\n\n4. **The Euclidean norm** (`t`).\n\n## Where\n\n4. not an exercise\n",
        )]);
        let problems = check(&tree);
        assert_eq!(problems.len(), 1, "{problems}");
        assert!(
            problems.mention("book/src/04-x/reductions.md:7: exercise numbered 4 where 1 belongs"),
            "{problems}"
        );
    }

    #[test]
    fn a_gap_between_headings_is_caught_and_steps_inside_exercises_do_not_count() {
        let text = "## Exercises\n\n### 1. A\n\n1. step\n2. step\n\n### 3. C\n";
        let problems = check_page(Path::new("p.md"), text);
        assert!(
            problems.mention("p.md:8: exercise numbered 3 where 2 belongs"),
            "{problems}"
        );
        let good =
            "## Exercises\n\n### 1. A\n\n1. step\n2. step\n\n### 2. B\n```text\n7. code\n```\n";
        assert!(check_page(Path::new("p.md"), good).is_empty());
        let list = "## Exercises\n\n1. **A** x\n   more\n2. **B** y\n";
        assert!(check_page(Path::new("p.md"), list).is_empty());
    }
}
