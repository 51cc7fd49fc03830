//! The lexer: pest (`grammar.pest`) validates a file's text, and [`Tokens`] cuts the
//! tokens from the validated run one at a time, as the parser asks for them (no token
//! list is built); helpers here decode files and reproduce QEMU's lexical error texts
//! and column rule.

use pest::Parser as _;

use crate::ast::Text;

/// The pest parser generated from `grammar.pest`, used as a lexer.
#[derive(pest_derive::Parser)]
#[grammar = "grammar.pest"]
struct QapiLexer;

/// The kind of a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TokKind {
    LBrace,
    RBrace,
    LBracket,
    RBracket,
    Colon,
    Comma,
    Str,
    True,
    False,
    /// A `#` comment; the token text includes the `#`.
    Comment,
    /// End of input, positioned on the final newline (QEMU reports EOF there).
    Eof,
    /// Lexical error: a string that is not valid.
    BadString,
    /// Lexical error: a stray character run.
    Stray,
}

/// A token: kind and byte range in the (normalised) file text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Tok {
    pub kind: TokKind,
    pub start: u32,
    pub end: u32,
}

/// A file's tokens, cut one at a time from the run pest has validated, so that
/// no token list is ever built (memory stays proportional to the text).
pub(crate) struct Tokens {
    /// 1-based line of the last token returned.
    pub line: u32,
    /// Start of that line (QEMU's `line_pos`).
    pub line_pos: usize,
    /// Where the next token is looked for.
    pos: usize,
    /// End of the validated run.
    run_end: usize,
    /// What comes after the run: the end of input or a lexical error.
    last: Tok,
    /// Whether the run is `run_exact`'s (comments end at their line break).
    exact: bool,
}

impl Tokens {
    /// Lexes a whole file. `src` must end with `\n` (see [`decode`]).
    pub(crate) fn new(src: &str) -> Tokens {
        let mut tokens = Tokens {
            line: 1,
            line_pos: 0,
            pos: 0,
            run_end: 0,
            last: Tok {
                kind: TokKind::Eof,
                start: 0,
                end: 0,
            },
            exact: false,
        };
        tokens.validate(src, 0, Rule::file);
        tokens
    }

    /// Has pest validate `src` from `from`, a line start, to the end or the first
    /// lexical error with `rule` (`file` or `file_exact`), and continues cutting
    /// from there.
    fn validate(&mut self, src: &str, from: usize, rule: Rule) {
        let tokens = self;
        tokens.exact = rule == Rule::file_exact;
        tokens.pos = from;
        tokens.run_end = from;
        tokens.last = Tok {
            kind: TokKind::Eof,
            start: src.len().saturating_sub(1) as u32,
            end: src.len() as u32,
        };
        let pairs = match QapiLexer::parse(rule, src.get(from..).unwrap_or("")) {
            Ok(pairs) => pairs,
            // The grammar accepts every input; should pest still fail, report a
            // stray character at its position rather than panic.
            Err(e) => {
                let pos = match e.location {
                    pest::error::InputLocation::Pos(p) => p,
                    pest::error::InputLocation::Span((p, _)) => p,
                };
                tokens.last = Tok {
                    kind: TokKind::Stray,
                    start: (from + pos) as u32,
                    end: (from + pos) as u32 + 1,
                };
                return;
            }
        };
        for pair in pairs {
            let span = pair.as_span();
            let kind = match pair.as_rule() {
                Rule::valid => {
                    tokens.run_end = src.len();
                    continue;
                }
                Rule::run | Rule::run_exact => {
                    tokens.pos = from + span.start();
                    tokens.run_end = from + span.end();
                    continue;
                }
                Rule::bad_string => TokKind::BadString,
                Rule::stray => TokKind::Stray,
                _ => continue,
            };
            tokens.last = Tok {
                kind,
                start: (from + span.start()) as u32,
                end: (from + span.end()) as u32,
            };
        }
        if tokens.last.kind == TokKind::Eof {
            // EOF sits on the final newline, which QEMU never counts as a break.
            tokens.run_end = tokens.run_end.min(src.len().saturating_sub(1));
        }
    }

    /// The next token: each piece of the run tells its kind by its first byte, and
    /// its end is found without checking it again (except that strings are checked
    /// for characters outside printable ASCII: QEMU's lexer rejects those, pest's
    /// grammar does not). After the run, the end of input or the lexical error, for
    /// ever. Counts line breaks on the way.
    pub(crate) fn next(&mut self, src: &str) -> Tok {
        let bytes = src.as_bytes().get(..self.run_end).unwrap_or(&[]);
        while self.pos < self.run_end {
            let i = self.pos;
            let (kind, len) = match bytes[i] {
                b'\n' => {
                    self.pos += 1;
                    self.line += 1;
                    self.line_pos = self.pos;
                    continue;
                }
                b' ' | b'\t'..=b'\r' | 0x1c..=0x1f => {
                    self.pos += 1;
                    continue;
                }
                b':' => (TokKind::Colon, 1),
                b',' => (TokKind::Comma, 1),
                b'{' => (TokKind::LBrace, 1),
                b'}' => (TokKind::RBrace, 1),
                b'[' => (TokKind::LBracket, 1),
                b']' => (TokKind::RBracket, 1),
                // A valid string holds no quote: the next one closes it.
                b'\'' => match bytes[i + 1..]
                    .iter()
                    .position(|&b| b == b'\'' || !(b' '..=b'~').contains(&b))
                {
                    Some(n) if bytes[i + 1 + n] == b'\'' => (TokKind::Str, n + 2),
                    // The parser reports it as QEMU does, and stops there.
                    _ => (TokKind::BadString, 1),
                },
                b'#' => {
                    let len = find_newline(&bytes[i..]).unwrap_or(self.run_end - i);
                    // pest took the next line along as a comment unless it starts
                    // with one of its stops; if it is not one, validate it afresh.
                    let next = i + len + 1;
                    if !self.exact
                        && next < self.run_end
                        && !matches!(bytes[next], b'#' | b'\n' | b'{' | b' ')
                    {
                        // The comment is returned before `bytes` (the old run) is read again.
                        self.validate(src, next, Rule::file_exact);
                    }
                    (TokKind::Comment, len)
                }
                b't' => (TokKind::True, 4),
                b'f' => (TokKind::False, 5),
                // Anything else pest accepted is a non-ASCII blank.
                _ => {
                    self.pos += src
                        .get(i..)
                        .and_then(|s| s.chars().next())
                        .map_or(1, char::len_utf8);
                    continue;
                }
            };
            self.pos = i + len;
            return Tok {
                kind,
                start: i as u32,
                end: (i + len) as u32,
            };
        }
        self.last
    }
}

/// All tokens of a file, up to the end of input or the first lexical error.
#[cfg(test)]
pub(crate) fn lex(src: &str) -> Vec<Tok> {
    let mut tokens = Tokens::new(src);
    let mut toks = Vec::new();
    loop {
        let tok = tokens.next(src);
        toks.push(tok);
        if matches!(tok.kind, TokKind::Eof | TokKind::BadString | TokKind::Stray) {
            return toks;
        }
    }
}

/// Lexes with one pest pair per token: the reference [`Tokens`] is tested against.
#[cfg(test)]
pub(crate) fn lex_reference(src: &str) -> Vec<Tok> {
    let mut toks = Vec::new();
    let pairs = match QapiLexer::parse(Rule::tokens, src) {
        Ok(pairs) => pairs,
        Err(_) => return toks,
    };
    for pair in pairs {
        let span = pair.as_span();
        let text = span.as_str();
        let kind = match pair.as_rule() {
            Rule::punct => match text {
                ":" => TokKind::Colon,
                "," => TokKind::Comma,
                "{" => TokKind::LBrace,
                "}" => TokKind::RBrace,
                "[" => TokKind::LBracket,
                _ => TokKind::RBracket,
            },
            // The parser's lexer also rejects characters outside printable ASCII.
            Rule::string if !text.bytes().all(|b| (b' '..=b'~').contains(&b)) => {
                toks.push(Tok {
                    kind: TokKind::BadString,
                    start: span.start() as u32,
                    end: span.start() as u32 + 1,
                });
                return toks;
            }
            Rule::string => TokKind::Str,
            Rule::comment => TokKind::Comment,
            Rule::literal if text == "true" => TokKind::True,
            Rule::literal => TokKind::False,
            Rule::bad_string => TokKind::BadString,
            Rule::stray => TokKind::Stray,
            _ => continue,
        };
        toks.push(Tok {
            kind,
            start: span.start() as u32,
            end: span.end() as u32,
        });
        if matches!(kind, TokKind::BadString | TokKind::Stray) {
            return toks;
        }
    }
    toks.push(Tok {
        kind: TokKind::Eof,
        start: src.len().saturating_sub(1) as u32,
        end: src.len() as u32,
    });
    toks
}

/// Position of the first `\n`, eight bytes at a time (comment lines are long).
fn find_newline(bytes: &[u8]) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    const NEWLINES: u64 = 0x0a0a_0a0a_0a0a_0a0a;
    let mut chunks = bytes.chunks_exact(8);
    let mut offset = 0;
    for chunk in &mut chunks {
        let mut word = [0; 8];
        word.copy_from_slice(chunk);
        let x = u64::from_le_bytes(word) ^ NEWLINES;
        // Some byte is zero (was a newline) iff this is non-zero; its lowest set
        // bit is in the first such byte (borrows only reach bytes above it).
        let found = x.wrapping_sub(ONES) & !x & HIGHS;
        if found != 0 {
            return Some(offset + (found.trailing_zeros() / 8) as usize);
        }
        offset += 8;
    }
    bytes[offset..]
        .iter()
        .position(|&b| b == b'\n')
        .map(|i| offset + i)
}

/// Python's `str.isspace()`: Unicode `White_Space` plus U+001C..U+001F.
pub(crate) fn is_py_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// Python's `str.rstrip()` (no arguments).
pub(crate) fn py_rstrip(s: &str) -> &str {
    // Most lines end in a printable ASCII character: nothing to strip.
    match s.as_bytes().last() {
        Some(b'!'..=b'~') | None => s,
        _ => s.trim_end_matches(is_py_space),
    }
}

/// QEMU's error column for a token at byte `pos` on the line starting at `line_pos`.
///
/// Counts code points; a TAB maps `col` to `(col + 7) % 8 + 1`, which is not a tab
/// stop (a quirk kept on purpose).
pub(crate) fn column(src: &str, line_pos: usize, pos: usize) -> u32 {
    let mut col: u32 = 1;
    for ch in src.get(line_pos..pos).unwrap_or("").chars() {
        col = if ch == '\t' {
            (col + 7) % 8 + 1
        } else {
            col.saturating_add(1)
        };
    }
    col
}

/// The message of a stray-character error at `pos`: the run up to the next
/// structural, blank or quote character.
pub(crate) fn stray_message(src: &str, pos: usize) -> String {
    let rest = src.get(pos..).unwrap_or("");
    let end = rest
        .find(|c: char| "[]{}:,'".contains(c) || is_py_space(c))
        .unwrap_or(rest.len());
    format!("stray '{}'", &rest[..end])
}

/// The message QEMU gives for the string starting with the quote at `pos`, scanning
/// it character by character as QEMU does. `None` if the string is valid.
pub(crate) fn string_error(src: &str, pos: usize) -> Option<String> {
    let mut chars = src.get(pos + 1..).unwrap_or("").chars();
    let mut esc = false;
    loop {
        let Some(ch) = chars.next() else {
            return Some("missing terminating \"'\"".to_owned());
        };
        if ch == '\n' {
            return Some("missing terminating \"'\"".to_owned());
        }
        if esc {
            if ch != '\\' {
                return Some(format!("unknown escape \\{ch}"));
            }
            esc = false;
        } else if ch == '\\' {
            esc = true;
            continue;
        } else if ch == '\'' {
            return None;
        }
        if !(' '..='~').contains(&ch) {
            return Some("funny character in string".to_owned());
        }
    }
}

/// The value of a valid string token: quotes removed, `\\` unescaped.
pub(crate) fn string_value(text: &str) -> Text {
    let inner = text.get(1..text.len().saturating_sub(1)).unwrap_or("");
    if let Some(word) = common_word(inner) {
        Text::Borrowed(word)
    } else if inner.contains('\\') {
        Text::Owned(inner.replace("\\\\", "\\"))
    } else {
        Text::Owned(inner.to_owned())
    }
}

/// The static copy of `s` if it is one of the strings schemas repeat most (keys of
/// QAPI's own, built-in types): no allocation for them.
fn common_word(s: &str) -> Option<&'static str> {
    Some(match s {
        "data" => "data",
        "struct" => "struct",
        "command" => "command",
        "if" => "if",
        "enum" => "enum",
        "type" => "type",
        "base" => "base",
        "name" => "name",
        "returns" => "returns",
        "features" => "features",
        "allow-preconfig" => "allow-preconfig",
        "include" => "include",
        "event" => "event",
        "union" => "union",
        "alternate" => "alternate",
        "discriminator" => "discriminator",
        "boxed" => "boxed",
        "gen" => "gen",
        "success-response" => "success-response",
        "coroutine" => "coroutine",
        "allow-oob" => "allow-oob",
        "all" => "all",
        "any" => "any",
        "not" => "not",
        "str" => "str",
        "int" => "int",
        "bool" => "bool",
        "number" => "number",
        "size" => "size",
        "null" => "null",
        "int8" => "int8",
        "int16" => "int16",
        "int32" => "int32",
        "int64" => "int64",
        "uint8" => "uint8",
        "uint16" => "uint16",
        "uint32" => "uint32",
        "uint64" => "uint64",
        "unstable" => "unstable",
        "deprecated" => "deprecated",
        _ => return None,
    })
}

/// Why a file's bytes are not a schema text.
pub(crate) struct DecodeError {
    /// 1-based line of the problem.
    pub line: u32,
    /// QEMU-style column of the problem.
    pub col: u32,
    /// The message.
    pub message: String,
}

/// Decodes a file as QEMU reads it: UTF-8 with universal newlines (`\r\n` and `\r`
/// become `\n`), plus a final `\n` if it is empty or lacks one.
///
/// QEMU crashes on invalid UTF-8; we report where it is instead.
pub(crate) fn decode(bytes: Vec<u8>) -> Result<String, DecodeError> {
    let text = match String::from_utf8(bytes) {
        Ok(text) => text,
        Err(e) => {
            let valid = e.utf8_error().valid_up_to();
            let bytes = e.as_bytes();
            let prefix = normalise_newlines(String::from_utf8_lossy(&bytes[..valid]).into_owned());
            let line = prefix.matches('\n').count() as u32 + 1;
            let line_pos = prefix.rfind('\n').map_or(0, |i| i + 1);
            return Err(DecodeError {
                line,
                col: column(&prefix, line_pos, prefix.len()),
                message: format!("invalid UTF-8 (byte 0x{:02x})", bytes[valid]),
            });
        }
    };
    Ok(finish(text))
}

/// Normalises newlines and appends the final `\n` QEMU adds.
pub(crate) fn finish(text: String) -> String {
    let mut text = normalise_newlines(text);
    if !text.ends_with('\n') {
        text.push('\n');
    }
    text
}

/// Universal newlines: `\r\n` and lone `\r` become `\n`.
fn normalise_newlines(text: String) -> String {
    if memchr::memchr(b'\r', text.as_bytes()).is_none() {
        return text;
    }
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\r' {
            if chars.peek() == Some(&'\n') {
                chars.next();
            }
            out.push('\n');
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(src: &str) -> Vec<TokKind> {
        lex(src).into_iter().map(|t| t.kind).collect()
    }

    #[test]
    fn tokens() {
        use TokKind::*;
        assert_eq!(
            kinds("{ 'a': [true, false] } # c\n"),
            [LBrace, Str, Colon, LBracket, True, Comma, False, RBracket, RBrace, Comment, Eof]
        );
        assert_eq!(kinds("trueX\n"), [True, Stray]);
        assert_eq!(kinds("'a\\x'\n"), [BadString]);
        assert_eq!(kinds("'a\\\\b'\u{a0}\u{1f}\n"), [Str, Eof]);
        // Lines pest took along with a comment are validated again.
        assert_eq!(kinds("# c\nx\n"), [Comment, Stray]);
        assert_eq!(
            kinds("# c\n#d\n}# e\n'a\\x'\n"),
            [Comment, Comment, RBrace, Comment, BadString]
        );
        assert_eq!(kinds("# c\n\t[\n"), [Comment, LBracket, Eof]);
        assert_eq!(
            kinds("#\n}\n#\n]\n#\nx\n"),
            [Comment, RBrace, Comment, RBracket, Comment, Stray]
        );
        for src in [
            "#\n}\n#\n]\n#\n[\n",
            "# c\nx\n",
            "# c\n#d\n}# e\n'a\\x'\n",
            "# c\n\t[\n",
            "#\n{\n",
        ] {
            same_tokens(src);
        }
    }

    /// The run splitter and the one-pair-per-token grammar agree.
    fn same_tokens(src: &str) {
        assert_eq!(lex(src), lex_reference(src), "{src:?}");
    }

    #[test]
    fn splitter_matches_reference() {
        let shared = match std::env::var_os("QAPI_SHARED_DIR") {
            Some(dir) => std::path::PathBuf::from(dir),
            None => std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/qemu"),
        };
        let mut files = 0;
        for dir in [
            "10.0.2/tests/qapi-schema",
            "10.0.2/qapi",
            "10.0.2/qga",
            "7.2.0/qapi",
        ] {
            let Ok(entries) = std::fs::read_dir(shared.join(dir)) else {
                continue;
            };
            for entry in entries.flatten() {
                if let Ok(bytes) = std::fs::read(entry.path()) {
                    if let Ok(src) = decode(bytes) {
                        same_tokens(&src);
                        files += 1;
                    }
                }
            }
        }
        assert!(
            files > 400,
            "only {files} files found under {}",
            shared.display()
        );
        // Random mixes of the characters that matter.
        let alphabet: Vec<char> = " \t\n\u{b}\u{1c}\u{a0}\u{2028}#'\\{}[]:,truefalsexé\""
            .chars()
            .collect();
        let mut seed: u64 = 0x5eed;
        for _ in 0..3000 {
            let mut src = String::new();
            for _ in 0..(seed % 40) {
                seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                src.push(alphabet[(seed >> 33) as usize % alphabet.len()]);
            }
            src.push('\n');
            same_tokens(&src);
        }
    }

    #[test]
    fn newlines() {
        // 0x0b next to a newline is what the word trick flags wrongly.
        for fill in [b'#', 0x0b] {
            for len in 0..40 {
                for at in 0..=len {
                    let mut bytes = vec![fill; len];
                    if at < len {
                        bytes[at] = b'\n';
                    }
                    let want = bytes.iter().position(|&b| b == b'\n');
                    assert_eq!(find_newline(&bytes), want, "{len} {at}");
                }
            }
        }
    }

    #[test]
    fn columns() {
        assert_eq!(column("\tx", 0, 1), 1);
        assert_eq!(column("ab\tx", 0, 3), 3);
        assert_eq!(column("é x", 0, 3), 3);
    }

    #[test]
    fn strings() {
        assert_eq!(
            string_error("'a\\u'", 0).as_deref(),
            Some("unknown escape \\u")
        );
        assert_eq!(
            string_error("'a\n", 0).as_deref(),
            Some("missing terminating \"'\"")
        );
        assert_eq!(
            string_error("'é\\x'", 0).as_deref(),
            Some("funny character in string")
        );
        assert_eq!(string_value("'a\\\\b'"), "a\\b");
    }

    #[test]
    fn decoding() {
        assert_eq!(
            decode(b"a\r\nb\rc".to_vec()).ok().as_deref(),
            Some("a\nb\nc\n")
        );
        let e = decode(b"ab\n\tc\xff".to_vec()).err().unwrap();
        assert_eq!((e.line, e.col), (2, 2));
    }
}
