//! Documentation blocks as QEMU 5.2's `get_doc` and `QAPIDoc` read them: a line-by-line
//! state machine (body, argument, feature and "various" sections), indentation taken from
//! each section's first line, `# =` headings splitting free-form blocks, no rST rules.
//!
//! Its output is the same [`ParsedDoc`] as 10.0's reader, so the later phases are shared.

use crate::ast::{InfoId, ParsedDoc, RawSection};
use crate::lexer::TokKind;
use crate::model::SectionKind;
use crate::parser::cursor::{Ctx, FileState, PResult};

/// What the next line continues (5.2's `_append_line`).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Body,
    Args,
    Features,
    Various,
}

/// One section: its kind, tag or member name, text so far and expected indentation.
struct Section {
    kind: SectionKind,
    name: Option<String>,
    text: String,
    indent: usize,
    info: InfoId,
}

/// A block under construction (5.2's `QAPIDoc`); sections are kept in text order, which is
/// 5.2's body, arguments, features, other sections.
struct Doc {
    info: InfoId,
    symbol: Option<String>,
    sections: Vec<Section>,
    mode: Mode,
    /// Whether the last section is still open (5.2's `_section` is not `None`).
    open: bool,
}

/// Drops the first `n` characters of `s` (Python's `s[n:]`).
fn skip_chars(s: &str, n: usize) -> &str {
    s.char_indices().nth(n).map_or("", |(i, _)| &s[i..])
}

/// Length in characters of the leading whitespace (Python's `\s*`).
fn leading_space(s: &str) -> usize {
    s.chars().take_while(|c| c.is_whitespace()).count()
}

/// 5.2's `_is_section_tag`.
fn section_tag(name: &str) -> Option<SectionKind> {
    Some(match name {
        "Returns:" => SectionKind::Returns,
        "Since:" => SectionKind::Since,
        "Note:" | "Notes:" => SectionKind::Note,
        "Example:" | "Examples:" => SectionKind::Example,
        "TODO:" => SectionKind::Todo,
        _ => return None,
    })
}

/// The first word (Python's `line.split(' ', 1)[0]`).
fn first_word(line: &str) -> &str {
    line.split(' ').next().unwrap_or("")
}

fn is_symbol_word(name: &str) -> bool {
    name.starts_with('@') && name.ends_with(':') && name.len() > 1
}

/// A section header line's text with the header replaced by spaces, and the indentation
/// that follows lines must keep (0 when the header stands alone).
fn after_header(line: &str, header_chars: usize) -> (String, usize) {
    let rest = skip_chars(line, header_chars);
    let rest_trimmed = skip_chars(rest, leading_space(rest));
    let indent = header_chars + leading_space(rest);
    if rest_trimmed.is_empty() {
        (String::new(), 0)
    } else {
        (" ".repeat(indent) + rest_trimmed, indent)
    }
}

impl Doc {
    fn new(info: InfoId) -> Doc {
        Doc {
            info,
            symbol: None,
            sections: vec![Section {
                kind: SectionKind::Plain,
                name: None,
                text: String::new(),
                indent: 0,
                info,
            }],
            mode: Mode::Body,
            open: true,
        }
    }

    fn body_text(&self) -> &str {
        &self.sections[0].text
    }

    fn current_text(&self) -> &str {
        self.sections.last().map_or("", |s| s.text.as_str())
    }

    /// 5.2's `Section.append`.
    fn section_append(&mut self, f: &mut FileState, ctx: &mut Ctx, line: &str) -> PResult<()> {
        let Some(s) = self.sections.last_mut() else {
            return Ok(());
        };
        let mut line = line;
        if !line.is_empty() {
            if leading_space(line) < s.indent {
                let msg = format!(
                    "unexpected de-indent (expected at least {} spaces)",
                    s.indent
                );
                return Err(f.error(ctx, msg));
            }
            line = skip_chars(line, s.indent);
        }
        s.text.push_str(line.trim_end());
        s.text.push('\n');
        Ok(())
    }

    /// 5.2's `_append_freeform`.
    fn freeform(&mut self, f: &mut FileState, ctx: &mut Ctx, line: &str) -> PResult<()> {
        if let Some(rest) = line.strip_prefix('@') {
            let word: String = rest.chars().take_while(|c| !c.is_whitespace()).collect();
            // `@\S+:` matches up to the last colon of the word.
            if let Some(colon) = word.rfind(':').filter(|&c| c > 0) {
                let msg = format!(
                    "'@{}' not allowed in free-form documentation",
                    &word[..=colon]
                );
                return Err(f.error(ctx, msg));
            }
        }
        self.section_append(f, ctx, line)
    }

    /// 5.2's `_end_section`.
    fn end_section(&mut self, f: &mut FileState, ctx: &mut Ctx) -> PResult<()> {
        if !self.open {
            return Ok(());
        }
        self.open = false;
        if let Some(s) = self.sections.last_mut() {
            s.text = s.text.trim().to_string();
            if s.text.is_empty() {
                if let Some(name) = s.name.as_deref() {
                    let msg = format!("empty doc section '{name}'");
                    return Err(f.error(ctx, msg));
                }
            }
        }
        Ok(())
    }

    /// 5.2's `_start_symbol_section` (`@name:` of a member or feature).
    fn start_symbol(
        &mut self,
        f: &mut FileState,
        ctx: &mut Ctx,
        kind: SectionKind,
        name: &str,
        indent: usize,
    ) -> PResult<()> {
        if name.is_empty() {
            return Err(f.error(ctx, "invalid parameter name"));
        }
        if self
            .sections
            .iter()
            .any(|s| s.kind == kind && s.name.as_deref() == Some(name))
        {
            return Err(f.error(ctx, format!("'{name}' parameter name duplicated")));
        }
        self.start(f, ctx, kind, Some(name.to_string()), indent)
    }

    /// 5.2's `_start_section` (`tag` is the section's name without `:`, `None` untagged).
    fn start_section(
        &mut self,
        f: &mut FileState,
        ctx: &mut Ctx,
        tag: Option<&str>,
        indent: usize,
    ) -> PResult<()> {
        if let Some(t @ ("Returns" | "Since")) = tag {
            if self.sections.iter().any(|s| s.name.as_deref() == Some(t)) {
                return Err(f.error(ctx, format!("duplicated '{t}' section")));
            }
        }
        let kind = tag.and_then(|t| section_tag(&format!("{t}:")));
        self.start(
            f,
            ctx,
            kind.unwrap_or(SectionKind::Plain),
            tag.map(str::to_string),
            indent,
        )
    }

    fn start(
        &mut self,
        f: &mut FileState,
        ctx: &mut Ctx,
        kind: SectionKind,
        name: Option<String>,
        indent: usize,
    ) -> PResult<()> {
        self.end_section(f, ctx)?;
        let info = f.info(ctx);
        self.sections.push(Section {
            kind,
            name,
            text: String::new(),
            indent,
            info,
        });
        self.open = true;
        Ok(())
    }

    /// 5.2's `QAPIDoc.append`: one comment line (`val`, starting with `#`).
    fn append(&mut self, f: &mut FileState, ctx: &mut Ctx, val: &str) -> PResult<()> {
        let line = &val[1..];
        if line.is_empty() {
            return self.freeform(f, ctx, line);
        }
        let Some(line) = line.strip_prefix(' ') else {
            return Err(f.error(ctx, "missing space after #"));
        };
        match self.mode {
            Mode::Body => self.body_line(f, ctx, line),
            Mode::Args | Mode::Features => self.symbol_line(f, ctx, line),
            Mode::Various => self.various_line(f, ctx, line),
        }
    }

    /// 5.2's `_append_body_line`.
    fn body_line(&mut self, f: &mut FileState, ctx: &mut Ctx, line: &str) -> PResult<()> {
        let name = first_word(line);
        if self.symbol.is_none() && self.body_text().is_empty() && line.starts_with('@') {
            if !line.ends_with(':') {
                return Err(f.error(ctx, "line should end with ':'"));
            }
            let symbol = &line[1..line.len() - 1];
            if symbol.is_empty() {
                let msg = ctx.rules.symbol_required;
                return Err(f.error(ctx, msg));
            }
            self.symbol = Some(symbol.to_string());
            Ok(())
        } else if self.symbol.is_some() {
            if is_symbol_word(name) {
                self.mode = Mode::Args;
                self.symbol_line(f, ctx, line)
            } else if line == "Features:" {
                self.mode = Mode::Features;
                Ok(())
            } else if section_tag(name).is_some() {
                self.mode = Mode::Various;
                self.various_line(f, ctx, line)
            } else {
                self.freeform(f, ctx, line)
            }
        } else {
            self.freeform(f, ctx, line)
        }
    }

    /// 5.2's `_append_args_line` and `_append_features_line`.
    fn symbol_line(&mut self, f: &mut FileState, ctx: &mut Ctx, line: &str) -> PResult<()> {
        let name = first_word(line);
        if is_symbol_word(name) {
            // `@\S*:\s*`: the word is `@...:` already.
            let (text, indent) = after_header(line, name.chars().count());
            let kind = if self.mode == Mode::Features {
                SectionKind::Feature
            } else {
                SectionKind::Member
            };
            self.start_symbol(f, ctx, kind, &name[1..name.len() - 1], indent)?;
            return self.freeform(f, ctx, &text);
        }
        if section_tag(name).is_some() {
            self.mode = Mode::Various;
            return self.various_line(f, ctx, line);
        }
        let starts_unindented = line.chars().next().is_some_and(|c| !c.is_whitespace());
        if self.current_text().ends_with("\n\n") && starts_unindented {
            if line == "Features:" && self.mode == Mode::Args {
                self.mode = Mode::Features;
            } else {
                self.start_section(f, ctx, None, 0)?;
                self.mode = Mode::Various;
                self.various_line(f, ctx, line)?;
            }
            return Ok(());
        }
        self.freeform(f, ctx, line)
    }

    /// 5.2's `_append_various_line`.
    fn various_line(&mut self, f: &mut FileState, ctx: &mut Ctx, line: &str) -> PResult<()> {
        let name = first_word(line);
        if is_symbol_word(name) {
            // 5.2's `self.sections[0].name`: the first section after the body that is not
            // a member or feature description.
            let first = self
                .sections
                .iter()
                .skip(1)
                .find(|s| !matches!(s.kind, SectionKind::Member | SectionKind::Feature))
                .and_then(|s| s.name.clone());
            let msg = format!(
                "'{name}' can't follow '{}' section",
                first.as_deref().unwrap_or("None")
            );
            return Err(f.error(ctx, msg));
        }
        if section_tag(name).is_some() {
            let (text, indent) = after_header(line, name.chars().count());
            self.start_section(f, ctx, Some(&name[..name.len() - 1]), indent)?;
            return self.freeform(f, ctx, &text);
        }
        self.freeform(f, ctx, line)
    }

    /// The finished block.
    fn end(mut self, f: &mut FileState, ctx: &mut Ctx) -> PResult<ParsedDoc> {
        self.end_section(f, ctx)?;
        Ok(ParsedDoc {
            info: self.info,
            symbol: self.symbol,
            sections: self
                .sections
                .into_iter()
                .map(|s| RawSection {
                    kind: s.kind,
                    name: s
                        .name
                        .filter(|_| matches!(s.kind, SectionKind::Member | SectionKind::Feature)),
                    text: s.text,
                    info: s.info,
                })
                .collect(),
        })
    }
}

/// 5.2's `get_doc`: the blocks of one `##` comment (a `# =` heading after text starts a
/// new free-form block). The current token is the opening `##`; leaves the parser on the
/// first token after the closing `##`.
pub(crate) fn get_docs(f: &mut FileState, ctx: &mut Ctx) -> PResult<Vec<ParsedDoc>> {
    if f.tok_text() != "##" {
        return Err(f.error(ctx, "junk after '##' at start of documentation comment"));
    }
    let info = f.info(ctx);
    let mut docs = Vec::new();
    let mut doc = Doc::new(info);
    f.accept(ctx, false)?;
    while f.tok.kind == TokKind::Comment {
        let val = f.tok_text().to_string();
        if val.starts_with("##") {
            if val != "##" {
                return Err(f.error(ctx, "junk after '##' at end of documentation comment"));
            }
            docs.push(doc.end(f, ctx)?);
            f.accept(ctx, true)?;
            return Ok(docs);
        }
        if val.starts_with("# =") {
            if doc.symbol.is_some() {
                return Err(f.error(ctx, "unexpected '=' markup in definition documentation"));
            }
            if !doc.body_text().is_empty() {
                docs.push(doc.end(f, ctx)?);
                doc = Doc::new(info);
            }
        }
        doc.append(f, ctx, &val)?;
        f.accept(ctx, false)?;
    }
    Err(f.error(ctx, "documentation comment must end with '##'"))
}
