//! QEMU 10.2's doc line checks (`_validate_doc_line_format`): at most 70 columns, two
//! spaces between sentences, except inside literal blocks (after a `::` or
//! `.. qmp-example::` line, up to a line indented less than the block's first line).

use crate::diagnostic::Error;
use crate::lexer;
use crate::parser::cursor::{BoxedErrors, Ctx, FileState, Literal};

/// Ends the block's literal state (at its closing `##`).
pub(super) fn end_block(ctx: &mut Ctx) {
    ctx.literal = Literal::default();
}

/// What is wrong with a doc line.
pub(super) enum Problem {
    TooLong,
    /// One space after the sentence end at this byte offset of the line.
    SingleSpace(usize),
}

/// Checks the doc line `line` (the text after `# `, right-stripped), updating the block's
/// literal state; `None` when it is fine.
pub(super) fn check_line(lit: &mut Literal, line: &str) -> Option<Problem> {
    if is_literal_start(line) {
        *lit = Literal {
            on: true,
            indent: 0,
        };
    } else if lit.on && !line.is_empty() {
        let indent = line.chars().take_while(|c| c.is_whitespace()).count();
        if lit.indent == 0 {
            lit.indent = indent;
        } else if indent < lit.indent {
            lit.on = false;
        }
    }
    if lit.on {
        return None;
    }
    if line.len() + 2 > 70 && line.chars().count() + 2 > 70 && !is_url_line(line) {
        return Some(Problem::TooLong);
    }
    single_space(line).map(Problem::SingleSpace)
}

/// The error for `problem` on the current doc line, whose text starts at byte `start`.
pub(super) fn error(
    file: &mut FileState,
    ctx: &mut Ctx,
    problem: Problem,
    start: u32,
) -> Box<Error> {
    match problem {
        Problem::TooLong => file.error(ctx, "documentation line longer than 70 characters"),
        Problem::SingleSpace(at) => {
            // QEMU points just after the sentence's end.
            let col = lexer::column(&file.src, file.line_pos(), start as usize + at + 1);
            let id = file.info(ctx);
            ctx.infos.error_col_boxed(
                id,
                Some(col),
                "Use two spaces between sentences\nIf this not the end of a sentence, please report a bug.",
            )
        }
    }
}

/// `(\.\. +qmp-example)? *::$` matched at the start.
fn is_literal_start(line: &str) -> bool {
    let mut rest = line;
    if let Some(r) = rest.strip_prefix("..") {
        let r2 = r.trim_start_matches(' ');
        if r2.len() < r.len() {
            if let Some(r3) = r2.strip_prefix("qmp-example") {
                rest = r3;
            }
        }
    }
    rest.trim_start_matches(' ') == "::"
}

/// ` *(https?|ftp)://[^ ]*$`.
fn is_url_line(line: &str) -> bool {
    let rest = line.trim_start_matches(' ');
    ["http://", "https://", "ftp://"]
        .iter()
        .any(|p| rest.strip_prefix(p).is_some_and(|r| !r.contains(' ')))
}

/// The byte offset of the first `.`, `!` or `?` followed by one space and `[A-Z0-9(]`,
/// scanning as Python's `re.finditer(r'(\be\.g\.|^ *\d\.|([.!?])) [A-Z0-9(]')` does: an
/// `e.g.` or a leading list number matches too, but is skipped.
fn single_space(line: &str) -> Option<usize> {
    let b = line.as_bytes();
    let follows = |i: usize| {
        b.get(i) == Some(&b' ')
            && b.get(i + 1)
                .is_some_and(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == b'(')
    };
    let word = |c: u8| c.is_ascii_alphanumeric() || c == b'_' || c >= 0x80;
    let mut i = 0;
    while i < b.len() {
        // `\be\.g\.`
        if b[i..].starts_with(b"e.g.") && (i == 0 || !word(b[i - 1])) && follows(i + 4) {
            i += 6;
            continue;
        }
        // `^ *\d\.`
        if i == 0 {
            let n = b.iter().take_while(|&&c| c == b' ').count();
            if b.get(n).is_some_and(u8::is_ascii_digit)
                && b.get(n + 1) == Some(&b'.')
                && follows(n + 2)
            {
                i = n + 4;
                continue;
            }
        }
        if matches!(b[i], b'.' | b'!' | b'?') && follows(i + 1) {
            return Some(i);
        }
        i += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::{is_literal_start, is_url_line, single_space};

    #[test]
    fn sentence_spacing() {
        assert_eq!(single_space("separated by two spaces. But"), Some(23));
        assert_eq!(single_space("two spaces.  Fine"), None);
        assert_eq!(single_space("e.g. This is fine"), None);
        assert_eq!(single_space("1. First item"), None);
        assert_eq!(single_space("see 1. First"), Some(5));
        assert_eq!(single_space("Done! Next"), Some(4));
        assert_eq!(single_space("version 1.2 Foo"), None);
    }

    #[test]
    fn literal_and_urls() {
        assert!(is_literal_start("::"));
        assert!(is_literal_start("  ::"));
        assert!(is_literal_start(".. qmp-example::"));
        assert!(is_literal_start(".. qmp-example ::"));
        assert!(!is_literal_start("Example::"));
        assert!(!is_literal_start("..qmp-example::"));
        assert!(is_url_line("  https://example.org/a/very/long/path"));
        assert!(!is_url_line("see https://example.org"));
    }
}
