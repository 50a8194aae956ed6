//! Just enough Markdown for the book checks: finding fenced code blocks.
//!
//! A fence is a line of three or more backticks or tildes (indentation allowed,
//! so fences inside list items count). It closes at a line of the same
//! character, at least as long, with nothing else on it. The first word of the
//! info string is the language; mdbook splits it at commas (`rust,ignore`).

/// One fenced code block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FencedBlock {
    /// 1-based line of the opening fence.
    pub open_line: usize,
    /// Everything after the opening fence, e.g. `rust,ignore`.
    pub info: String,
    /// The lines between the fences, with their 1-based line numbers.
    pub body: Vec<(usize, String)>,
    /// False when the file ended before a closing fence.
    pub closed: bool,
}

impl FencedBlock {
    /// The block's language: `rust` for `rust,ignore`, empty for a bare fence.
    pub fn language(&self) -> &str {
        self.info
            .split(|c: char| c == ',' || c.is_whitespace())
            .next()
            .unwrap_or("")
    }

    /// Whether mdbook (through rustdoc) treats the block as Rust: tagged
    /// `rust` or not tagged at all.
    pub fn is_rust(&self) -> bool {
        matches!(self.language(), "rust" | "")
    }
}

/// An opening fence: the fence character, its length and the info string.
fn opening_fence(line: &str) -> Option<(char, usize, &str)> {
    let trimmed = line.trim_start();
    let fence_char = trimmed.chars().next()?;
    if fence_char != '`' && fence_char != '~' {
        return None;
    }
    let len = trimmed.chars().take_while(|&c| c == fence_char).count();
    if len < 3 {
        return None;
    }
    let info = trimmed[len..].trim();
    // A backtick fence's info string may not hold backticks (that is inline code).
    if fence_char == '`' && info.contains('`') {
        return None;
    }
    Some((fence_char, len, info))
}

fn is_closing_fence(line: &str, fence_char: char, open_len: usize) -> bool {
    let trimmed = line.trim();
    let len = trimmed.chars().take_while(|&c| c == fence_char).count();
    len >= open_len && trimmed.chars().all(|c| c == fence_char)
}

/// Every fenced code block in `text`, in order.
pub fn fenced_blocks(text: &str) -> Vec<FencedBlock> {
    let mut blocks = Vec::new();
    let mut current: Option<(char, usize, FencedBlock)> = None;
    for (index, line) in text.lines().enumerate() {
        let number = index + 1;
        match current.take() {
            None => {
                if let Some((fence_char, len, info)) = opening_fence(line) {
                    let block = FencedBlock {
                        open_line: number,
                        info: info.to_string(),
                        body: Vec::new(),
                        closed: false,
                    };
                    current = Some((fence_char, len, block));
                }
            }
            Some((fence_char, len, mut block)) => {
                if is_closing_fence(line, fence_char, len) {
                    block.closed = true;
                    blocks.push(block);
                } else {
                    block.body.push((number, line.to_string()));
                    current = Some((fence_char, len, block));
                }
            }
        }
    }
    if let Some((_, _, block)) = current {
        blocks.push(block);
    }
    blocks
}

/// The lines outside fenced code blocks (fence lines excluded), with 1-based numbers.
pub fn prose_lines(text: &str) -> Vec<(usize, &str)> {
    let mut in_code = vec![false; text.lines().count()];
    for block in fenced_blocks(text) {
        let last = match (block.closed, block.body.last()) {
            (true, Some(&(n, _))) => n + 1,
            (true, None) => block.open_line + 1,
            (false, _) => in_code.len(),
        };
        for n in block.open_line..=last.min(in_code.len()) {
            in_code[n - 1] = true;
        }
    }
    text.lines()
        .enumerate()
        .filter(|(i, _)| !in_code[*i])
        .map(|(i, line)| (i + 1, line))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_blocks_with_language_and_lines() {
        let text =
            "intro\n```rust,ignore\nlet a = 1;\n```\n\n~~~~text\n```\nnot a fence end\n~~~~\n";
        let blocks = fenced_blocks(text);
        assert_eq!(blocks.len(), 2);
        assert_eq!(blocks[0].language(), "rust");
        assert_eq!(blocks[0].open_line, 2);
        assert_eq!(blocks[0].body, vec![(3, "let a = 1;".to_string())]);
        assert!(blocks[0].is_rust());
        assert_eq!(blocks[1].language(), "text");
        assert!(!blocks[1].is_rust());
        assert_eq!(blocks[1].body.len(), 2);
        assert!(blocks.iter().all(|b| b.closed));
    }

    #[test]
    fn a_bare_fence_is_rust_and_an_unclosed_fence_is_reported() {
        let blocks = fenced_blocks("```\nfn main() {}\n");
        assert_eq!(blocks.len(), 1);
        assert!(blocks[0].is_rust());
        assert!(!blocks[0].closed);
    }

    #[test]
    fn prose_lines_skip_code() {
        let text = "a\n```\nb\n```\nc";
        let prose: Vec<&str> = prose_lines(text).into_iter().map(|(_, l)| l).collect();
        assert_eq!(prose, vec!["a", "c"]);
    }

    #[test]
    fn inline_code_is_not_a_fence() {
        assert!(fenced_blocks("```rust` is inline code\n").is_empty());
    }
}
