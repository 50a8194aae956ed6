//! The README's quick start: right under the title, one code block with exactly
//! two commands, the main job and the tests. `.ci/run` runs the second one, read
//! from the README at run time, so the README and CI cannot drift apart.

use crate::book::markdown::{fenced_blocks, FencedBlock};
use crate::{Problem, Problems};

/// The README, relative to the workspace root.
pub const README: &str = "README.md";

/// How many lines of text may stand between the title and the quick-start block.
pub const MAX_LINES_BEFORE_QUICK_START: usize = 1;

/// The first fenced code block of the README.
pub fn quick_start_block(readme: &str) -> Option<FencedBlock> {
    fenced_blocks(readme).into_iter().next()
}

/// The commands of a block: its non-blank lines that are not `#` comments,
/// with a leading `$ ` prompt removed.
pub fn commands(block: &FencedBlock) -> Vec<String> {
    block
        .body
        .iter()
        .map(|(_, line)| line.trim())
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(|line| line.strip_prefix("$ ").unwrap_or(line).to_string())
        .collect()
}

/// The README's test command: the second command of the quick-start block.
pub fn test_command(readme: &str) -> Option<String> {
    commands(&quick_start_block(readme)?).into_iter().nth(1)
}

/// Checks the shape of the quick start.
pub fn check_quick_start(readme: &str) -> Problems {
    let mut problems = Problems::default();
    let mut report =
        |line: usize, message: String| problems.push(Problem::new(README, line, message));
    let Some(block) = quick_start_block(readme) else {
        report(
            0,
            "has no code block; the first one must hold the main job and the test command".into(),
        );
        return problems;
    };
    let before: Vec<(usize, &str)> = readme
        .lines()
        .take(block.open_line - 1)
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim()))
        .filter(|(_, l)| !l.is_empty())
        .collect();
    match before.first() {
        Some((_, title)) if title.starts_with("# ") => {
            let text_lines = before.len() - 1;
            if text_lines > MAX_LINES_BEFORE_QUICK_START {
                report(
                    before[1].0,
                    format!(
                        "{text_lines} lines of text stand between the title and the quick-start code block; \
                         at most {MAX_LINES_BEFORE_QUICK_START} (one sentence) may"
                    ),
                );
            }
        }
        _ => report(1, "must start with its `# ` title".into()),
    }
    let found = commands(&block);
    if found.len() != 2 {
        report(
            block.open_line,
            format!(
                "the first code block must hold exactly two commands (the main job, then the tests), found {}: {found:?}",
                found.len()
            ),
        );
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "# Candle\n\nA book.\n\n```sh\ncargo run --release -p candle-lib -- scalar-demo\n\ncargo test --workspace\n```\n\nMore.\n```sh\nextra\n```\n";

    #[test]
    fn a_good_quick_start_passes() {
        assert!(
            check_quick_start(GOOD).is_empty(),
            "{}",
            check_quick_start(GOOD)
        );
        assert_eq!(
            test_command(GOOD).as_deref(),
            Some("cargo test --workspace")
        );
    }

    #[test]
    fn prompts_and_comments_are_not_commands() {
        let readme = "# T\n```console\n# the demo\n$ demo\n$ cargo test\n```\n";
        assert_eq!(test_command(readme).as_deref(), Some("cargo test"));
    }

    #[test]
    fn three_commands_are_caught() {
        let readme = GOOD.replace(
            "cargo test --workspace",
            "cargo build\ncargo test --workspace",
        );
        let problems = check_quick_start(&readme);
        assert!(
            problems.mention("README.md:5: the first code block must hold exactly two commands"),
            "{problems}"
        );
    }

    #[test]
    fn prose_before_the_quick_start_is_caught() {
        let readme = GOOD.replace("A book.", "A book.\n\nAnd a long story about it.");
        assert!(check_quick_start(&readme).mention("2 lines of text stand between"));
    }

    #[test]
    fn a_missing_title_or_block_is_caught() {
        assert!(
            check_quick_start("Candle\n```\na\nb\n```\n").mention("must start with its `# ` title")
        );
        assert!(check_quick_start("# Candle\n").mention("has no code block"));
    }
}
