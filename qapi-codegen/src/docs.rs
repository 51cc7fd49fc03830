//! QEMU's reStructuredText doc comments converted to rustdoc Markdown.
//!
//! Paragraphs and list items become single lines (no lazy continuations for clippy),
//! examples and literal blocks become ```` ```text ```` fences (no doctest runs them),
//! cross references (`@name`, `` `name` ``, `:qapi:type:`name``) become links where the
//! caller's [`Resolve`] gives a destination and code spans otherwise, other rST roles
//! become code spans, and characters rustdoc would read as links or HTML (`[`, `]`, `<`,
//! `>`, bare URLs) are escaped. What a reference names is the caller's decision: this
//! module only finds references and writes text.
//!
//! [`to_text`] renders the same conversion as plain text for a terminal (the `qmp` shell's
//! `help`), so that rustdoc and the shell read QEMU's documentation alike.

/// A cross reference in QEMU's doc text, as written (the name after `@`, `~` and `!`
/// taken off, the target of `title <target>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ref<'a> {
    /// `@name`: a member of the documented definition; before QEMU 10.1, also any
    /// definition or `Type.member`.
    Member(&'a str),
    /// `` `name` `` or `:qapi:ROLE:`name``: a definition, or `Type.member`.
    Definition(&'a str),
}

/// Resolves cross references: the link destination of a reference (for rustdoc, an
/// intra-doc path), or `None` to keep it a code span.
pub type Resolve<'r> = &'r dyn Fn(Ref<'_>) -> Option<String>;

/// Resolves nothing: every reference stays a code span.
pub fn no_links(_: Ref<'_>) -> Option<String> {
    None
}

/// A block of converted text.
#[derive(Debug, Clone, PartialEq)]
enum Block {
    /// A paragraph or list item: indentation, list marker (empty for paragraphs), rST text.
    Text {
        indent: usize,
        marker: String,
        text: String,
    },
    /// A literal block, verbatim lines.
    Fence(Vec<String>),
    /// A blank line.
    Blank,
}

fn indent_of(line: &str) -> usize {
    line.len() - line.trim_start().len()
}

/// Removes the common indentation of all lines after the first (QAPI doc sections keep
/// the source indentation of their continuation lines; the first line is stripped).
/// When the first line is a directive (`.. note:: ...`), its body's indentation is kept:
/// it is what makes the lines after it the directive's.
fn dedent_rest(text: &str) -> Vec<String> {
    let lines: Vec<&str> = text.lines().collect();
    let directive = lines
        .first()
        .is_some_and(|l| l.trim_start().starts_with(".. "));
    let min = lines
        .iter()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|l| indent_of(l))
        .min()
        .filter(|_| !directive)
        .unwrap_or(0);
    lines
        .iter()
        .enumerate()
        .map(|(i, l)| {
            if i == 0 {
                l.trim_end().to_owned()
            } else if l.trim().is_empty() {
                String::new()
            } else {
                l[min.min(indent_of(l))..].trim_end().to_owned()
            }
        })
        .collect()
}

fn dedent(lines: &[String]) -> Vec<String> {
    let min = lines
        .iter()
        .filter(|l| !l.trim().is_empty())
        .map(|l| indent_of(l))
        .min()
        .unwrap_or(0);
    lines
        .iter()
        .map(|l| {
            if l.trim().is_empty() {
                String::new()
            } else {
                l[min..].to_owned()
            }
        })
        .collect()
}

/// Splits a list marker off `content`: `- `, `* `, `+ `, `#. `, `1. `, `1) `, `(1) `.
fn list_marker(content: &str) -> Option<(String, &str)> {
    for m in ["- ", "* ", "+ "] {
        if let Some(rest) = content.strip_prefix(m) {
            return Some((m.trim_end().to_owned(), rest));
        }
    }
    if let Some(rest) = content.strip_prefix("#. ") {
        return Some(("1.".to_owned(), rest));
    }
    let s = content.strip_prefix('(').unwrap_or(content);
    let digits = s.bytes().take_while(u8::is_ascii_digit).count();
    if digits > 0 && digits < 4 {
        let after = &s[digits..];
        if let Some(rest) = after
            .strip_prefix(". ")
            .or_else(|| after.strip_prefix(") "))
        {
            return Some((format!("{}.", &s[..digits]), rest));
        }
    }
    None
}

/// Collects the lines after `start` that belong to an indented block: blank, or
/// indented more than `base`. Returns the block (trailing blanks dropped) and the
/// index after it.
fn take_block(lines: &[String], start: usize, base: usize) -> (Vec<String>, usize) {
    let mut end = start;
    while end < lines.len() && (lines[end].trim().is_empty() || indent_of(&lines[end]) > base) {
        end += 1;
    }
    let mut block: Vec<String> = lines[start..end].to_vec();
    while block.last().is_some_and(|l| l.trim().is_empty()) {
        block.pop();
    }
    (block, end)
}

const ADMONITIONS: [&str; 10] = [
    "note",
    "notes",
    "caution",
    "warning",
    "important",
    "hint",
    "tip",
    "danger",
    "attention",
    "seealso",
];

fn admonition_label(name: &str) -> String {
    match name {
        "seealso" => "See also".to_owned(),
        "notes" => "Note".to_owned(),
        _ => {
            let mut c = name.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        }
    }
}

fn parse_blocks(lines: &[String], out: &mut Vec<Block>) {
    let mut i = 0;
    // Content column of the current list item, for its continuation paragraphs.
    let mut list_col: Option<usize> = None;
    let mut literal_next = false;
    while i < lines.len() {
        let line = &lines[i];
        if line.trim().is_empty() {
            if out.last() != Some(&Block::Blank) && !out.is_empty() {
                out.push(Block::Blank);
            }
            i += 1;
            continue;
        }
        let ind = indent_of(line);
        let content = line.trim_start();
        if literal_next && out.last() == Some(&Block::Blank) {
            literal_next = false;
            let base = match out.iter().rev().nth(1) {
                Some(Block::Text { indent, .. }) => *indent,
                _ => 0,
            };
            if ind > base {
                let (block, end) = take_block(lines, i, base);
                out.push(Block::Fence(dedent(&block)));
                i = end;
                continue;
            }
        }
        if let Some(directive) = content.strip_prefix(".. ") {
            let (name, arg) = match directive.split_once("::") {
                Some((n, a)) => (n.trim(), a.trim()),
                None => ("", ""),
            };
            let (block, end) = take_block(lines, i + 1, ind);
            i = end;
            let block = dedent(&block);
            match name {
                "qmp-example" | "code-block" | "code" | "parsed-literal" => {
                    let mut body = Vec::new();
                    let mut title = None;
                    for (k, l) in block.iter().enumerate() {
                        if body.is_empty() && l.starts_with(':') {
                            if let Some(t) = l.strip_prefix(":title:") {
                                title = Some(t.trim().to_owned());
                            }
                        } else if !(body.is_empty() && l.is_empty()) || k == usize::MAX {
                            body.push(l.clone());
                        }
                    }
                    if name == "qmp-example" {
                        let text = match title {
                            Some(t) => format!("Example: {t}"),
                            None => "Example:".to_owned(),
                        };
                        push_text(out, 0, String::new(), text);
                        out.push(Block::Blank);
                    }
                    out.push(Block::Fence(dedent(&body)));
                }
                n if ADMONITIONS.contains(&n) || n == "admonition" => {
                    let label = if n == "admonition" {
                        arg.to_owned()
                    } else {
                        admonition_label(n)
                    };
                    let mut inner = Vec::new();
                    let mut body = block;
                    if n != "admonition" && !arg.is_empty() {
                        body.insert(0, arg.to_owned());
                    }
                    parse_blocks(&body, &mut inner);
                    match inner.first_mut() {
                        Some(Block::Text { marker, text, .. }) if marker.is_empty() => {
                            *text = format!("**{label}:** {text}");
                        }
                        _ => inner.insert(
                            0,
                            Block::Text {
                                indent: 0,
                                marker: String::new(),
                                text: format!("**{label}:**"),
                            },
                        ),
                    }
                    if out.last().is_some_and(|b| *b != Block::Blank) {
                        out.push(Block::Blank);
                    }
                    out.extend(inner);
                }
                // Comments and directives without a rustdoc equivalent: keep the content only.
                _ => {
                    if !name.is_empty() {
                        parse_blocks(&block, out);
                    }
                }
            }
            list_col = None;
            continue;
        }
        if content.starts_with("-> ") || content.starts_with("<- ") || content == "..." {
            // A legacy (QEMU 7) example transcript: verbatim up to the next blank line.
            let mut end = i;
            while end < lines.len() && !lines[end].trim().is_empty() {
                end += 1;
            }
            out.push(Block::Fence(dedent(&lines[i..end])));
            i = end;
            continue;
        }
        if content.starts_with("+-") || content.starts_with("==") {
            // A table: verbatim up to the next blank line.
            let mut end = i;
            while end < lines.len() && !lines[end].trim().is_empty() {
                end += 1;
            }
            out.push(Block::Fence(dedent(&lines[i..end])));
            i = end;
            continue;
        }
        let (indent, marker, first) = match list_marker(content) {
            Some((m, rest)) => {
                let item_indent = match list_col {
                    Some(c) if ind >= c => c,
                    _ => 0,
                };
                list_col = Some(item_indent + m.len() + 1);
                (item_indent, m, rest)
            }
            None => match list_col {
                Some(c) if ind > 0 => (c, String::new(), content),
                _ => {
                    list_col = None;
                    (0, String::new(), content)
                }
            },
        };
        let mut text = first.trim_end().to_owned();
        i += 1;
        // Continuation lines: until a blank line, a new list item or a directive.
        while i < lines.len() {
            let l = lines[i].trim();
            if l.is_empty()
                || l.starts_with(".. ")
                || (list_marker(l).is_some() && !marker.is_empty())
            {
                break;
            }
            text.push(' ');
            text.push_str(l);
            i += 1;
        }
        if text.ends_with("::") {
            literal_next = true;
            text = text.trim_end_matches("::").trim_end().to_owned();
            if !text.is_empty() && !text.ends_with(':') {
                text.push(':');
            }
        }
        push_text(out, indent, marker, text);
    }
}

fn push_text(out: &mut Vec<Block>, indent: usize, marker: String, text: String) {
    out.push(Block::Text {
        indent,
        marker,
        text,
    });
}

/// Converts one QAPI doc section's text to Markdown lines, its cross references
/// resolved by `resolve`.
pub fn to_markdown(text: &str, resolve: Resolve<'_>) -> Vec<String> {
    let lines = dedent_rest(text);
    let mut blocks = Vec::new();
    parse_blocks(&lines, &mut blocks);
    while blocks.last() == Some(&Block::Blank) {
        blocks.pop();
    }
    let mut out = Vec::new();
    for b in blocks {
        match b {
            Block::Blank => out.push(String::new()),
            Block::Text {
                indent,
                marker,
                text,
            } => {
                let pad = " ".repeat(indent);
                let body = inline(&text, resolve);
                if marker.is_empty() {
                    // A paragraph never continues the previous line (clippy's lazy continuation).
                    if out.last().is_some_and(|l: &String| !l.is_empty()) {
                        out.push(String::new());
                    }
                    out.push(format!("{pad}{body}"));
                } else {
                    out.push(format!("{pad}{marker} {body}"));
                }
            }
            Block::Fence(lines) => {
                if out.last().is_some_and(|l: &String| !l.is_empty()) {
                    out.push(String::new());
                }
                let ticks = "`".repeat(
                    3.max(
                        lines
                            .iter()
                            .map(|l| l.matches('`').count())
                            .max()
                            .unwrap_or(0)
                            + 1,
                    ),
                );
                out.push(format!("{ticks}text"));
                out.extend(lines);
                out.push(ticks);
                out.push(String::new());
            }
        }
    }
    while out.last().is_some_and(|l| l.is_empty()) {
        out.pop();
    }
    // Blank lines never come twice in a row.
    out.dedup_by(|a, b| a.is_empty() && b.is_empty());
    out
}

/// Converts one paragraph to plain one-line Markdown (for `#[deprecated]` notes, where
/// rustdoc resolves no intra-doc links: references stay code spans).
pub fn to_note(text: &str) -> String {
    let joined: Vec<String> = dedent_rest(text)
        .into_iter()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.trim().to_owned())
        .collect();
    inline(&joined.join(" "), &no_links)
}

/// Converts one QAPI doc section's text to plain text for a terminal: the [`to_markdown`]
/// conversion (directives resolved, admonitions labelled, examples set apart, references
/// as their names), with the
/// Markdown syntax taken out again, examples indented by four spaces, and paragraphs and
/// list items wrapped at `width` columns (0: not wrapped).
pub fn to_text(text: &str, width: usize) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut fence: Option<String> = None;
    let mut in_list = false;
    for line in to_markdown(text, &no_links) {
        if let Some(ticks) = &fence {
            if line == *ticks {
                fence = None;
            } else {
                out.push(format!("    {line}"));
            }
            continue;
        }
        let trimmed = line.trim_start();
        if trimmed.starts_with("```") {
            fence = Some(trimmed.trim_end_matches("text").to_owned());
            continue;
        }
        let indent = line.len() - trimmed.len();
        let plain = plain_inline(trimmed);
        // A list item's continuation lines hang under its text, not its marker.
        let hang = match list_marker(&plain) {
            Some((m, _)) => {
                // A list right after a paragraph is set apart from it.
                if !in_list && out.last().is_some_and(|l| !l.is_empty()) {
                    out.push(String::new());
                }
                in_list = true;
                indent + m.len() + 1
            }
            None => {
                in_list &= indent > 0 || plain.is_empty();
                indent
            }
        };
        wrap(&plain, indent, hang, width, &mut out);
    }
    out.join("\n")
}

/// One line of [`inline`]'s Markdown as plain text: code spans and emphasis markers
/// dropped, escapes undone, links as `label (url)`.
fn plain_inline(line: &str) -> String {
    let chars: Vec<char> = line.chars().collect();
    let mut out = String::with_capacity(line.len());
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '\\' if i + 1 < chars.len() => {
                out.push(chars[i + 1]);
                i += 2;
            }
            '`' => {
                let ticks = chars[i..].iter().take_while(|&&t| t == '`').count();
                let close = (i + ticks..chars.len())
                    .find(|&k| chars[k..].iter().take_while(|&&t| t == '`').count() == ticks);
                match close {
                    Some(end) => {
                        let span: String = chars[i + ticks..end].iter().collect();
                        out.push_str(span.trim());
                        i = end + ticks;
                    }
                    None => {
                        out.push(c);
                        i += 1;
                    }
                }
            }
            '*' if chars.get(i + 1) == Some(&'*') => i += 2,
            '<' if line[line.char_indices().nth(i).map_or(0, |(b, _)| b)..]
                .starts_with("<http") =>
            {
                let end = (i..chars.len())
                    .find(|&k| chars[k] == '>')
                    .unwrap_or(chars.len());
                out.extend(&chars[i + 1..end]);
                i = end + 1;
            }
            '[' => {
                // `[label](url)`, as inline() writes `text <url>`_ hyperlinks.
                let close = (i..chars.len()).find(|&k| chars[k] == ']' && chars[k - 1] != '\\');
                match close {
                    Some(k) if chars.get(k + 1) == Some(&'(') => {
                        let end = (k..chars.len())
                            .find(|&e| chars[e] == ')')
                            .unwrap_or(chars.len());
                        let label: String = chars[i + 1..k].iter().collect();
                        let url: String = chars[k + 2..end].iter().collect();
                        out.push_str(&plain_inline(&label));
                        out.push_str(&format!(" ({url})"));
                        i = end + 1;
                    }
                    _ => {
                        out.push(c);
                        i += 1;
                    }
                }
            }
            _ => {
                out.push(c);
                i += 1;
            }
        }
    }
    out
}

/// Wraps `text` at `width` columns into `out`: the first line indented by `indent`, the
/// others by `hang`. Words longer than a line stay whole.
fn wrap(text: &str, indent: usize, hang: usize, width: usize, out: &mut Vec<String>) {
    if text.is_empty() {
        out.push(String::new());
        return;
    }
    let mut line = " ".repeat(indent);
    let mut empty = true;
    for word in text.split(' ').filter(|w| !w.is_empty()) {
        if !empty && width > 0 && line.chars().count() + 1 + word.chars().count() > width {
            out.push(std::mem::replace(&mut line, " ".repeat(hang)));
            empty = true;
        }
        if !empty {
            line.push(' ');
        }
        line.push_str(word);
        empty = false;
    }
    out.push(line);
}

fn code_span(s: &str) -> String {
    let s = s.trim();
    if s.contains('`') {
        format!("`` {s} ``")
    } else if s.is_empty() {
        String::new()
    } else {
        format!("`{s}`")
    }
}

fn push_escaped(out: &mut String, c: char) {
    match c {
        '[' | ']' | '<' | '>' | '|' => {
            out.push('\\');
            out.push(c);
        }
        _ => out.push(c),
    }
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.'
}

/// A definition's cross reference (`name`, `~Type.member`, `!name`, `title <name>`): a link
/// where `resolve` gives a destination, a code span of its label otherwise.
fn reference(out: &mut String, text: &str, resolve: Resolve<'_>) {
    let text = text.trim();
    if let Some(rest) = text.strip_prefix('!') {
        // `!` asks for no link.
        out.push_str(&code_span(rest.trim_start_matches('~')));
        return;
    }
    let titled = text
        .strip_suffix('>')
        .and_then(|t| t.find('<').map(|lt| (t[..lt].trim(), t[lt + 1..].trim())))
        .filter(|(title, _)| !title.is_empty());
    let (label, target) = match (titled, text.strip_prefix('~')) {
        (Some((title, target)), _) => (title, target),
        // `~Type.member` shows the last part.
        (None, Some(t)) => (t.rsplit('.').next().unwrap_or(t), t),
        (None, None) => (text, text),
    };
    link(out, label, resolve(Ref::Definition(target)));
}

/// `label` as a code span, linked to `dest` if any. A destination that is the label
/// itself is written as a collapsed reference (`` [`X`][] ``): rustdoc calls `[X](X)`
/// redundant, and a shortcut `[X]` could run into a following `(` or `:`.
fn link(out: &mut String, label: &str, dest: Option<String>) {
    let span = code_span(label);
    match dest {
        Some(dest) if !span.is_empty() => {
            if out.ends_with('!') {
                // Not an image.
                out.pop();
                out.push_str("\\!");
            }
            if dest == label.trim() {
                out.push_str(&format!("[{span}][]"));
            } else {
                out.push_str(&format!("[{span}]({dest})"));
            }
        }
        _ => out.push_str(&span),
    }
}

/// Converts inline rST markup in one line of text, cross references resolved by
/// `resolve`.
pub fn inline(text: &str, resolve: Resolve<'_>) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    let at = |i: usize, s: &str| -> bool {
        s.chars()
            .enumerate()
            .all(|(n, c)| chars.get(i + n) == Some(&c))
    };
    let find = |from: usize, s: &str| -> Option<usize> { (from..chars.len()).find(|&k| at(k, s)) };
    let word_start = |i: usize| i == 0 || !chars[i - 1].is_alphanumeric();
    while i < chars.len() {
        let c = chars[i];
        if at(i, "``") {
            if let Some(end) = find(i + 2, "``") {
                let s: String = chars[i + 2..end].iter().collect();
                out.push_str(&code_span(&s));
                i = end + 2;
                continue;
            }
        }
        if c == ':' && word_start(i) {
            // :role:`text` or :domain:role:`text`
            let mut k = i + 1;
            while k < chars.len()
                && (chars[k].is_ascii_alphanumeric() || chars[k] == ':' || chars[k] == '-')
            {
                k += 1;
            }
            if k > i + 2 && chars[k - 1] == ':' && chars.get(k) == Some(&'`') {
                if let Some(end) = find(k + 1, "`") {
                    let role: String = chars[i + 1..k - 1].iter().collect();
                    let raw: String = chars[k + 1..end].iter().collect();
                    let s = raw.trim_start_matches(['~', '!']);
                    match s.find('<') {
                        _ if role.starts_with("qapi:") => {
                            reference(&mut out, &raw, resolve);
                        }
                        Some(lt) if s.ends_with('>') && (role == "doc" || role == "ref") => {
                            for ch in s[..lt].trim().chars() {
                                push_escaped(&mut out, ch);
                            }
                        }
                        _ if role == "doc" || role == "ref" => {
                            for ch in s.chars() {
                                push_escaped(&mut out, ch);
                            }
                        }
                        _ => out.push_str(&code_span(s)),
                    }
                    i = end + 1;
                    continue;
                }
            }
        }
        if c == '`' {
            if let Some(end) = find(i + 1, "`") {
                let s: String = chars[i + 1..end].iter().collect();
                let mut after = end + 1;
                if chars.get(after) == Some(&'_') {
                    // `text <url>`_ hyperlink.
                    while chars.get(after) == Some(&'_') {
                        after += 1;
                    }
                    match (s.find('<'), s.ends_with('>')) {
                        (Some(lt), true) => {
                            let label = s[..lt].trim();
                            let url = &s[lt + 1..s.len() - 1];
                            out.push('[');
                            for ch in label.chars() {
                                push_escaped(&mut out, ch);
                            }
                            out.push_str("](");
                            out.push_str(url);
                            out.push(')');
                        }
                        _ => {
                            for ch in s.chars() {
                                push_escaped(&mut out, ch);
                            }
                        }
                    }
                } else {
                    // The default role: a cross reference (QEMU 10.1 on).
                    reference(&mut out, &s, resolve);
                }
                i = after;
                continue;
            }
        }
        if c == '@'
            && word_start(i)
            && chars
                .get(i + 1)
                .is_some_and(|n| n.is_ascii_alphabetic() || *n == '_')
        {
            let mut k = i + 1;
            while k < chars.len() && is_name_char(chars[k]) {
                k += 1;
            }
            while k > i + 1 && matches!(chars[k - 1], '.' | '-') {
                k -= 1;
            }
            let s: String = chars[i + 1..k].iter().collect();
            link(&mut out, &s, resolve(Ref::Member(&s)));
            i = k;
            continue;
        }
        if (at(i, "http://") || at(i, "https://")) && word_start(i) {
            let mut k = i;
            while k < chars.len()
                && !chars[k].is_whitespace()
                && !matches!(chars[k], '<' | '>' | '"' | '\'' | '`')
            {
                k += 1;
            }
            while k > i && matches!(chars[k - 1], '.' | ',' | ';' | ':' | ')') {
                k -= 1;
            }
            let url: String = chars[i..k].iter().collect();
            out.push('<');
            out.push_str(&url);
            out.push('>');
            i = k;
            continue;
        }
        if i == 0 && (c == '#' || c == '=') {
            out.push('\\');
        }
        push_escaped(&mut out, c);
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(rst: &str, expect: expect_test::Expect) {
        expect.assert_eq(&to_markdown(rst, &no_links).join("\n"));
    }

    #[test]
    fn inline_markup() {
        check(
            "Use @node-name with ``literal`` and :qapi:type:`BlockdevOptions`, see `text <https://qemu.org>`_ or https://example.com/x.\n    Also [brackets] and <id>, *emph*.",
            expect_test::expect![[r#"Use `node-name` with `literal` and `BlockdevOptions`, see [text](https://qemu.org) or <https://example.com/x>. Also \[brackets\] and \<id\>, *emph*."#]],
        );
    }

    #[test]
    fn cross_references() {
        // A resolver knowing a command, a type with a field and a same-named type.
        let resolve = |r: Ref<'_>| match r {
            Ref::Member("device") => Some("field@Cmd::device".to_owned()),
            Ref::Member(n) | Ref::Definition(n) => match n {
                "query-jobs" => Some("commands::QueryJobs".to_owned()),
                "Info.type" => Some("field@Info::type".to_owned()),
                "Info" => Some("Info".to_owned()),
                _ => None,
            },
        };
        let md = to_markdown(
            "See @device, @query-jobs, `Info.type`, :qapi:type:`~Info.type`, `all <Info>`, \
             :qapi:cmd:`!query-jobs`, `Info`(s), wow!@Info, @nosuch and `-smp 2`.",
            &resolve,
        );
        expect_test::expect![[r#"See [`device`](field@Cmd::device), [`query-jobs`](commands::QueryJobs), [`Info.type`](field@Info::type), [`type`](field@Info::type), [`all`](Info), `query-jobs`, [`Info`][](s), wow\![`Info`][], `nosuch` and `-smp 2`."#]]
        .assert_eq(&md.join("\n"));
    }

    #[test]
    fn examples_and_literals() {
        check(
            "Query the status.\n\n.. qmp-example::\n   :title: Basic\n\n    -> { \"execute\": \"query-status\" }\n    <- { \"return\": {} }\n\nThe form is::\n\n    a  b\n      c\n\nAfter.",
            expect_test::expect![[r#"
                Query the status.

                Example: Basic

                ```text
                -> { "execute": "query-status" }
                <- { "return": {} }
                ```

                The form is:

                ```text
                a  b
                  c
                ```

                After."#]],
        );
    }

    #[test]
    fn lists_and_notes() {
        check(
            "Values:\n\n- one, which is\n  long\n- two\n\n  more about two\n\n.. note:: This is\n   important.\n\nEnd.",
            expect_test::expect![[r#"
                Values:

                - one, which is long
                - two

                  more about two

                **Note:** This is important.

                End."#]],
        );
    }

    #[test]
    fn plain_text_for_a_terminal() {
        let rst = "Query @node-name, see :qapi:cmd:`query-block-jobs` and `docs <https://qemu.org>`_.\n\n.. admonition:: Notes\n\n   Only [some] jobs.\n\n- one, a fairly long list item that is going to wrap around the given width\n- two\n\n.. qmp-example::\n\n    -> { \"execute\": \"query-status\" }\n    <- { \"return\": {} }";
        expect_test::expect![[r#"
            Query node-name, see query-block-jobs and docs (https://qemu.org).

            Notes: Only [some] jobs.

            - one, a fairly long list item that is going to wrap around the given
              width
            - two

            Example:

                -> { "execute": "query-status" }
                <- { "return": {} }"#]]
        .assert_eq(&to_text(rst, 70));
    }

    #[test]
    fn section_opening_with_a_directive() {
        check(
            ".. note:: When this command completes, the device may not be removed\n   from the guest.\n\nSince: 0.14",
            expect_test::expect![[r#"
                **Note:** When this command completes, the device may not be removed from the guest.

                Since: 0.14"#]],
        );
    }

    #[test]
    fn member_continuation_lines() {
        check(
            "If true, the shutdown was triggered by a guest request (such\n    as a guest-initiated ACPI shutdown request)",
            expect_test::expect![[r#"If true, the shutdown was triggered by a guest request (such as a guest-initiated ACPI shutdown request)"#]],
        );
    }
}
