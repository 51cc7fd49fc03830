//! Documentation comment blocks (`## ... ##`), parsed as QEMU 10.0.2's `get_doc*`
//! and `QAPIDoc` do: body, member and feature descriptions, tagged sections.
//!
//! Section text is stored as QEMU stores it: lines without `# `, trailing blanks
//! stripped, blank-line runs between body/plain paragraphs collapsed, and
//! `strip('\n')` applied at the end of the block.

use crate::ast::{InfoId, ParsedDoc, RawSection};
use crate::lexer::{is_py_space, py_rstrip, TokKind};
use crate::model::SectionKind;
use crate::parser::cursor::{BoxedErrors, Ctx, FileState, PResult, Seen};

pub(crate) mod v10_2;
pub(crate) mod v5_2;

/// A doc line: byte range of its text in the file, `None` for the closing `##`.
type Line = Option<(u32, u32)>;

/// The text of a line.
fn text(file: &FileState, line: (u32, u32)) -> &str {
    file.src.get(line.0 as usize..line.1 as usize).unwrap_or("")
}

fn is_blank(line: Line) -> bool {
    matches!(line, Some((a, b)) if a == b)
}

/// QEMU's `get_doc_line`: the current comment as a doc line.
fn doc_line(file: &mut FileState, ctx: &mut Ctx) -> PResult<Line> {
    if file.tok.kind != TokKind::Comment {
        return Err(file.error(ctx, "documentation comment must end with '##'"));
    }
    let val = file.tok_text();
    if val.starts_with("##") {
        if val != "##" {
            return Err(file.error(ctx, "junk after '##' at end of documentation comment"));
        }
        v10_2::end_block(ctx);
        return Ok(None);
    }
    let start = file.tok.start + 2;
    if val == "#" {
        return Ok(Some((start, start)));
    }
    if val.as_bytes().get(1) != Some(&b' ') {
        return Err(file.error(ctx, "missing space after #"));
    }
    let line = py_rstrip(&val[2..]);
    let len = line.len() as u32;
    if ctx.rules.doc_line_format {
        if let Some(problem) = v10_2::check_line(&mut ctx.literal, line) {
            return Err(v10_2::error(file, ctx, problem, start));
        }
    }
    Ok(Some((start, start + len)))
}

/// Reads the next comment as a doc line.
fn next_line(file: &mut FileState, ctx: &mut Ctx) -> PResult<Line> {
    file.accept(ctx, false)?;
    doc_line(file, ctx)
}

/// QEMU's `@([^:]*): *` match at the start of a line: (name, end of match).
fn match_at_name_colon(line: &str) -> Option<(&str, usize)> {
    let rest = line.strip_prefix('@')?;
    let colon = rest.find(':')?;
    let after = &rest[colon + 1..];
    let spaces = after.len() - after.trim_start_matches(' ').len();
    Some((&rest[..colon], 1 + colon + 1 + spaces))
}

/// QEMU's tagged-section match `(Returns|Errors|Since|Notes?|Examples?|TODO)(?!::): *`:
/// (tag as written, end of match).
fn match_tag(line: &str) -> Option<(&str, usize)> {
    const TAGS: [&str; 8] = [
        "Returns", "Errors", "Since", "Notes", "Note", "Examples", "Example", "TODO",
    ];
    for tag in TAGS {
        if let Some(rest) = line.strip_prefix(tag) {
            if rest.starts_with(':') && !rest.starts_with("::") {
                let after = &rest[1..];
                let spaces = after.len() - after.trim_start_matches(' ').len();
                return Some((tag, tag.len() + 1 + spaces));
            }
        }
    }
    None
}

/// Number of leading whitespace characters (QEMU's `\s*` match length).
fn indent(line: &str) -> usize {
    line.chars().take_while(|&c| is_py_space(c)).count()
}

/// A doc block under construction (QEMU's `QAPIDoc`).
struct Doc {
    doc: ParsedDoc,
    /// Member names described so far.
    args: Seen,
    /// Feature names described so far.
    features: Seen,
    /// The text of the last section, built here and copied into it exactly sized
    /// once the section ends (small exact strings are cheap to allocate and free).
    text: String,
}

impl Doc {
    fn new(info: InfoId, mut text: String) -> Doc {
        text.clear();
        Doc {
            doc: ParsedDoc {
                info,
                symbol: None,
                sections: {
                    // Blocks have a few sections; avoid regrowing for most.
                    let mut sections = Vec::with_capacity(8);
                    sections.push(RawSection {
                        kind: SectionKind::Plain,
                        name: None,
                        text: String::new(),
                        info,
                    });
                    sections
                },
            },
            args: Seen::default(),
            features: Seen::default(),
            text,
        }
    }

    fn append_line(&mut self, line: &str) {
        self.text.push_str(line);
        self.text.push('\n');
    }

    /// Stores the text of the last section, without leading and trailing newlines
    /// (QEMU strips them when the block ends).
    fn finish_section(&mut self) {
        if let Some(section) = self.doc.sections.last_mut() {
            section.text = String::from(self.text.trim_matches('\n'));
        }
        self.text.clear();
    }

    fn has(&self, kind: SectionKind) -> bool {
        self.doc.sections.iter().any(|s| s.kind == kind)
    }

    fn push(&mut self, kind: SectionKind, name: Option<String>, info: InfoId) {
        self.finish_section();
        self.doc.sections.push(RawSection {
            kind,
            name,
            text: String::new(),
            info,
        });
    }

    /// Continues the current plain section, or starts one.
    fn ensure_untagged_section(&mut self, info: InfoId) {
        if let Some(last) = self.doc.sections.last_mut() {
            if last.kind == SectionKind::Plain {
                if !self.text.ends_with("\n\n") {
                    self.text.push('\n');
                }
                return;
            }
        }
        self.push(SectionKind::Plain, None, info);
    }

    fn new_tagged_section(&mut self, ctx: &Ctx, info: InfoId, kind: SectionKind) -> PResult<()> {
        if matches!(
            kind,
            SectionKind::Returns | SectionKind::Errors | SectionKind::Since
        ) && self.has(kind)
        {
            return Err(ctx
                .infos
                .error_boxed(info, format!("duplicated '{}' section", kind.name())));
        }
        self.push(kind, None, info);
        Ok(())
    }

    /// A member or feature description `@name:`.
    fn new_description(
        &mut self,
        ctx: &Ctx,
        info: InfoId,
        name: String,
        kind: SectionKind,
    ) -> PResult<()> {
        if name.is_empty() {
            return Err(ctx.infos.error_boxed(info, "invalid parameter name"));
        }
        let names = self
            .doc
            .sections
            .iter()
            .filter(|s| s.kind == kind)
            .filter_map(|s| s.name.as_deref());
        let seen = if kind == SectionKind::Feature {
            &mut self.features
        } else {
            &mut self.args
        };
        if seen.contains(names, &name) {
            return Err(ctx
                .infos
                .error_boxed(info, format!("'{name}' parameter name duplicated")));
        }
        seen.add(&name);
        self.push(kind, Some(name), info);
        Ok(())
    }

    /// QEMU's `QAPIDoc.end`: strips the texts and requires text in tagged sections.
    fn end(mut self, ctx: &mut Ctx) -> PResult<ParsedDoc> {
        self.finish_section();
        ctx.doc_text = std::mem::take(&mut self.text);
        for section in &self.doc.sections {
            if section.kind != SectionKind::Plain && section.text.is_empty() {
                return Err(ctx.infos.error_boxed(
                    section.info,
                    format!("text required after '{}:'", section.kind.name()),
                ));
            }
        }
        Ok(self.doc)
    }
}

/// QEMU's `get_doc_indented`: the rest of a description or tagged section.
/// Returns the first line that is not part of it.
fn get_doc_indented(file: &mut FileState, ctx: &mut Ctx, doc: &mut Doc) -> PResult<Line> {
    let mut line = next_line(file, ctx)?;
    while is_blank(line) {
        doc.append_line("");
        line = next_line(file, ctx)?;
    }
    let Some(first) = line else {
        return Ok(None);
    };
    let want = indent(text(file, first));
    if want == 0 {
        let t = text(file, first);
        let empty = !doc.doc.sections.is_empty() && doc.text.trim_matches('\n').is_empty();
        if ctx.rules.legacy_docs && empty && !is_section_start(t) {
            // QEMU 7.2 read unindented text after a bare `@name:` or `Tag:` line.
            let warning = file.error(
                ctx,
                "unindented text after a bare section header (QEMU 10.0 requires indentation)",
            );
            ctx.warn(*warning);
            return get_doc_unindented(file, ctx, doc, first);
        }
        return Ok(line);
    }
    doc.append_line(text(file, first));
    let mut prev_line_blank = false;
    loop {
        let line = next_line(file, ctx)?;
        let Some(l) = line else {
            return Ok(None);
        };
        let t = text(file, l);
        if match_at_name_colon(t).is_some() {
            return Ok(line);
        }
        if !t.is_empty() && indent(t) < want {
            if prev_line_blank {
                return Ok(line);
            }
            return Err(file.error(
                ctx,
                format!("unexpected de-indent (expected at least {want} spaces)"),
            ));
        }
        doc.append_line(t);
        // Set after every line, not only blank ones: QEMU's quirk, kept.
        prev_line_blank = true;
    }
}

/// Whether a line starts a new section of a definition doc block.
fn is_section_start(t: &str) -> bool {
    t == "Features:"
        || t.starts_with('=')
        || match_tag(t).is_some()
        || match_at_name_colon(t).is_some()
}

/// A description or section as QEMU 7.2 read it (legacy only): from `first`, up to
/// a section start or an unindented line after a blank line.
fn get_doc_unindented(
    file: &mut FileState,
    ctx: &mut Ctx,
    doc: &mut Doc,
    first: (u32, u32),
) -> PResult<Line> {
    doc.append_line(text(file, first));
    let mut prev_line_blank = false;
    loop {
        let line = next_line(file, ctx)?;
        let Some(l) = line else {
            return Ok(None);
        };
        let t = text(file, l);
        if is_section_start(t) || (prev_line_blank && indent(t) == 0 && !t.is_empty()) {
            return Ok(line);
        }
        doc.append_line(t);
        prev_line_blank = t.is_empty();
    }
}

/// The body of a `Note:` or `Example:` section as QEMU 7.2 read it (legacy only):
/// every line, indented or not, up to the next section start.
fn get_doc_legacy_section(file: &mut FileState, ctx: &mut Ctx, doc: &mut Doc) -> PResult<Line> {
    loop {
        let line = next_line(file, ctx)?;
        let Some(l) = line else {
            return Ok(None);
        };
        let t = text(file, l);
        if t == "Features:" || match_tag(t).is_some() || match_at_name_colon(t).is_some() {
            return Ok(line);
        }
        doc.append_line(t);
    }
}

/// QEMU's `get_doc_paragraph`: lines up to a blank line or the end of the block.
fn get_doc_paragraph(file: &mut FileState, ctx: &mut Ctx, doc: &mut Doc) -> PResult<Line> {
    loop {
        let line = next_line(file, ctx)?;
        match line {
            None => return Ok(None),
            Some(l) if l.0 == l.1 => return Ok(line),
            Some(l) => doc.append_line(text(file, l)),
        }
    }
}

/// Parses a doc block; the current token is its opening `##` comment. Leaves the
/// parser on the first token after the block.
pub(crate) fn get_doc(file: &mut FileState, ctx: &mut Ctx) -> PResult<ParsedDoc> {
    if file.tok_text() != "##" {
        return Err(file.error(ctx, "junk after '##' at start of documentation comment"));
    }
    let info = file.info(ctx);
    // Most blocks' sections fit in 1 KB: one buffer for all of them.
    let mut buf = std::mem::take(&mut ctx.doc_text);
    buf.reserve(1024);
    let mut doc = Doc::new(info, buf);
    let line = next_line(file, ctx)?;
    match line {
        Some(l) if text(file, l).starts_with('@') => definition_doc(file, ctx, &mut doc, l)?,
        _ => freeform_doc(file, ctx, &mut doc, line)?,
    }
    file.accept(ctx, true)?;
    doc.end(ctx)
}

/// A definition doc block, from its `@symbol:` line.
fn definition_doc(
    file: &mut FileState,
    ctx: &mut Ctx,
    doc: &mut Doc,
    first: (u32, u32),
) -> PResult<()> {
    let t = text(file, first);
    if !t.ends_with(':') {
        return Err(file.error(ctx, "line should end with ':'"));
    }
    let symbol = &t[1..t.len() - 1];
    if symbol.is_empty() {
        return Err(file.error(ctx, "name required after '@'"));
    }
    doc.doc.symbol = Some(symbol.to_owned());
    let mut line = next_line(file, ctx)?;
    let mut no_more_args = false;
    while line.is_some() {
        while is_blank(line) {
            line = next_line(file, ctx)?;
        }
        let Some(l) = line else {
            break;
        };
        let t = text(file, l);
        if t == "Features:" {
            if doc.has(SectionKind::Feature) {
                return Err(file.error(ctx, "duplicated 'Features:' line"));
            }
            line = next_line(file, ctx)?;
            while is_blank(line) {
                line = next_line(file, ctx)?;
            }
            line = descriptions(file, ctx, doc, line, SectionKind::Feature)?;
            if !doc.has(SectionKind::Feature) {
                return Err(file.error(ctx, "feature descriptions expected"));
            }
            no_more_args = true;
        } else if let Some((name, _)) = match_at_name_colon(t) {
            if no_more_args {
                let msg = format!("description of '@{name}:' follows a section");
                return Err(file.error(ctx, msg));
            }
            line = descriptions(file, ctx, doc, line, SectionKind::Member)?;
            no_more_args = true;
        } else if let Some((tag, end)) = match_tag(t) {
            let kind = match tag {
                "Returns" => SectionKind::Returns,
                "Errors" => SectionKind::Errors,
                "Since" => SectionKind::Since,
                "TODO" => SectionKind::Todo,
                _ => {
                    let (kind, msg) = if tag.starts_with("Note") {
                        (
                            SectionKind::Note,
                            format!(
                                "The '{tag}' section is no longer supported. Please use \
                                 rST's '.. note::' or '.. admonition:: notes' directives, \
                                 or another suitable admonition instead."
                            ),
                        )
                    } else {
                        (
                            SectionKind::Example,
                            format!(
                                "The '{tag}' section is no longer supported. Please use \
                                 the '.. qmp-example::' directive, or other suitable \
                                 markup instead."
                            ),
                        )
                    };
                    let error = file.error(ctx, msg);
                    if !ctx.rules.legacy_docs {
                        return Err(error);
                    }
                    ctx.warn(*error);
                    kind
                }
            };
            let info = file.info(ctx);
            doc.new_tagged_section(ctx, info, kind)?;
            let rest = &text(file, l)[end..];
            if !rest.is_empty() {
                doc.append_line(rest);
            }
            line = if matches!(kind, SectionKind::Note | SectionKind::Example) {
                get_doc_legacy_section(file, ctx, doc)?
            } else {
                get_doc_indented(file, ctx, doc)?
            };
            no_more_args = true;
        } else if t.starts_with('=') && ctx.rules.heading_rules {
            return Err(file.error(ctx, "unexpected '=' markup in definition documentation"));
        } else {
            let info = file.info(ctx);
            doc.ensure_untagged_section(info);
            doc.append_line(text(file, l));
            line = get_doc_paragraph(file, ctx, doc)?;
        }
    }
    Ok(())
}

/// A run of `@name:` descriptions (members or features).
fn descriptions(
    file: &mut FileState,
    ctx: &mut Ctx,
    doc: &mut Doc,
    mut line: Line,
    kind: SectionKind,
) -> PResult<Line> {
    while let Some(l) = line {
        let Some((name, end)) =
            match_at_name_colon(text(file, l)).map(|(name, end)| (name.to_owned(), end))
        else {
            break;
        };
        let info = file.info(ctx);
        doc.new_description(ctx, info, name, kind)?;
        let rest = &text(file, l)[end..];
        if !rest.is_empty() {
            doc.append_line(rest);
        }
        line = get_doc_indented(file, ctx, doc)?;
    }
    Ok(line)
}

/// A free-form doc block, from its first line.
fn freeform_doc(file: &mut FileState, ctx: &mut Ctx, doc: &mut Doc, mut line: Line) -> PResult<()> {
    let info = file.info(ctx);
    doc.ensure_untagged_section(info);
    let mut first = true;
    while let Some(l) = line {
        let t = text(file, l);
        if let Some((name, _)) = match_at_name_colon(t) {
            let msg = format!("'@{name}:' not allowed in free-form documentation");
            return Err(file.error(ctx, msg));
        }
        if t.starts_with('=') && !first && ctx.rules.heading_rules {
            let error = file.error(ctx, "'=' heading must come first in a comment block");
            if !ctx.rules.legacy_docs {
                return Err(error);
            }
            ctx.warn(*error);
        }
        doc.append_line(text(file, l));
        line = next_line(file, ctx)?;
        first = false;
    }
    Ok(())
}
