//! The parse phase (QEMU's `parser.py`): files, includes, pragmas, expressions, doc blocks.
//!
//! The lexer (`lexer.rs`, a pest grammar) turns each file into tokens; this module
//! walks them exactly as QEMU's `accept()`/`get_expr()` do, iteratively (no
//! recursion, so deep nesting cannot overflow the stack), and handles includes with
//! an explicit stack of open files. `cursor` is the token cursor over one file, `doc`
//! the doc block reader, which uses the cursor only.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::ast::{
    Dict, InfoData, InfoId, Infos, ParseOutput, ParsedDoc, ParsedExpr, Span, Text, Value,
};
use crate::lexer::{self, TokKind};
use crate::release::PragmaList;
use crate::{Error, Options};

use cursor::{BoxedErrors, Ctx, FileState, Frame, PResult, Seen};

/// Nesting deeper than this is rejected (QEMU itself dies of Python's recursion limit
/// at about 490 levels; real schemas nest fewer than 10).
pub(crate) const MAX_DEPTH: usize = 256;

/// Parses the schema file at `path` and everything it includes.
// The crate's interface returns `Error` unboxed; only the internals box it.
#[allow(clippy::result_large_err)]
pub(crate) fn parse(path: &Path, options: &Options) -> Result<ParseOutput, Error> {
    let name = path.to_string_lossy().into_owned();
    let bytes = std::fs::read(path)
        .map_err(|e| Error::plain(format!("can't read schema file '{name}': {}", strerror(&e))))?;
    Parser::new(options)
        .run(name, path.to_path_buf(), Source::Bytes(bytes))
        .map_err(|e| *e)
}

/// Parses `text` as the schema file `name`; includes are read from disk relative to
/// `name` (for `load_str`, tests and fuzzing).
#[allow(clippy::result_large_err)]
pub(crate) fn parse_str(name: &str, text: &str, options: &Options) -> Result<ParseOutput, Error> {
    Parser::new(options)
        .run(
            name.to_owned(),
            PathBuf::from(name),
            Source::Text(text.to_owned()),
        )
        .map_err(|e| *e)
}

/// A file's content before decoding.
enum Source {
    Bytes(Vec<u8>),
    Text(String),
}

impl Error {
    /// An error without location (the main file could not be read).
    pub(crate) fn plain(message: String) -> Error {
        Error {
            included_from: Vec::new(),
            context: None,
            location: None,
            col: None,
            message,
        }
    }
}

/// `strerror()` of an I/O error, as Python's `OSError.strerror`.
fn strerror(e: &std::io::Error) -> String {
    let s = e.to_string();
    match s.rfind(" (os error ") {
        Some(i) if e.raw_os_error().is_some() => s[..i].to_owned(),
        _ => s,
    }
}

/// The expression reader (QEMU's `get_expr`), over the cursor.
impl FileState {
    fn span(&self) -> Span {
        Span {
            start: self.tok.start,
            end: self.tok.end,
        }
    }

    /// The value of the current string token.
    fn str_value(&self) -> Text {
        lexer::string_value(self.tok_text())
    }

    /// After a key string: reads `:`, moves to the value and checks the key is new.
    fn member_key(&mut self, ctx: &mut Ctx, members: &Dict, seen: &mut Seen) -> PResult<Text> {
        let key = self.str_value();
        self.accept(ctx, true)?;
        if self.tok.kind != TokKind::Colon {
            return Err(self.error(ctx, "expected ':'"));
        }
        self.accept(ctx, true)?;
        if seen.contains(members.iter().map(|(k, _)| &**k), &key) {
            return Err(self.error(ctx, format!("duplicate key '{key}'")));
        }
        seen.add(&key);
        Ok(key)
    }

    /// Reads one value (QEMU's `get_expr`), iteratively.
    fn get_expr(&mut self, ctx: &mut Ctx) -> PResult<Value> {
        // One stack for all expressions of the file (emptied by every success).
        let mut stack = std::mem::take(&mut self.frames);
        stack.clear();
        'value: loop {
            let mut value = match self.tok.kind {
                TokKind::LBrace | TokKind::LBracket => {
                    if stack.len() >= MAX_DEPTH {
                        return Err(self.error(ctx, "nesting too deep"));
                    }
                    let start = self.tok.start;
                    let is_dict = self.tok.kind == TokKind::LBrace;
                    self.accept(ctx, true)?;
                    let close = if is_dict {
                        TokKind::RBrace
                    } else {
                        TokKind::RBracket
                    };
                    if self.tok.kind == close {
                        let span = Span {
                            start,
                            end: self.tok.end,
                        };
                        self.accept(ctx, true)?;
                        if is_dict {
                            Value::Dict(Vec::new(), span)
                        } else {
                            Value::List(Vec::new(), span)
                        }
                    } else if is_dict {
                        if self.tok.kind != TokKind::Str {
                            return Err(self.error(ctx, "expected string or '}'"));
                        }
                        let mut seen = Seen::default();
                        let key = self.member_key(ctx, &Vec::new(), &mut seen)?;
                        stack.push(Frame::Dict {
                            start,
                            members: Vec::with_capacity(4),
                            key,
                            seen,
                        });
                        continue 'value;
                    } else {
                        if !matches!(
                            self.tok.kind,
                            TokKind::LBrace
                                | TokKind::LBracket
                                | TokKind::Str
                                | TokKind::True
                                | TokKind::False
                        ) {
                            return Err(
                                self.error(ctx, "expected '{', '[', ']', string, or boolean")
                            );
                        }
                        stack.push(Frame::List {
                            start,
                            items: Vec::with_capacity(4),
                        });
                        continue 'value;
                    }
                }
                TokKind::Str => {
                    let v = Value::Str(self.str_value(), self.span());
                    self.accept(ctx, true)?;
                    v
                }
                TokKind::True | TokKind::False => {
                    let v = Value::Bool(self.tok.kind == TokKind::True, self.span());
                    self.accept(ctx, true)?;
                    v
                }
                _ => return Err(self.error(ctx, "expected '{', '[', string, or boolean")),
            };
            // A value is complete: store it in its container, then close containers
            // or move on to the next element.
            loop {
                match stack.pop() {
                    None => {
                        self.frames = stack;
                        return Ok(value);
                    }
                    Some(Frame::Dict {
                        start,
                        mut members,
                        key,
                        mut seen,
                    }) => {
                        members.push((key, value));
                        if self.tok.kind == TokKind::RBrace {
                            let end = self.tok.end;
                            self.accept(ctx, true)?;
                            value = Value::Dict(members, Span { start, end });
                            continue;
                        }
                        if self.tok.kind != TokKind::Comma {
                            return Err(self.error(ctx, "expected ',' or '}'"));
                        }
                        self.accept(ctx, true)?;
                        if self.tok.kind != TokKind::Str {
                            return Err(self.error(ctx, "expected string"));
                        }
                        let key = self.member_key(ctx, &members, &mut seen)?;
                        stack.push(Frame::Dict {
                            start,
                            members,
                            key,
                            seen,
                        });
                        continue 'value;
                    }
                    Some(Frame::List { start, mut items }) => {
                        items.push(value);
                        if self.tok.kind == TokKind::RBracket {
                            let end = self.tok.end;
                            self.accept(ctx, true)?;
                            value = Value::List(items, Span { start, end });
                            continue;
                        }
                        if self.tok.kind != TokKind::Comma {
                            return Err(self.error(ctx, "expected ',' or ']'"));
                        }
                        self.accept(ctx, true)?;
                        stack.push(Frame::List { start, items });
                        continue 'value;
                    }
                }
            }
        }
    }
}

/// The parse of one schema: the stack of open files and the output so far.
struct Parser {
    ctx: Ctx,
    out: ParseOutput,
    cwd: String,
    /// Absolute paths of every file opened (QEMU's `_included`).
    included: BTreeSet<String>,
    stack: Vec<FileState>,
    /// Texts of the files done with, reused to read the next ones: freeing (and
    /// allocating) each large text makes the allocator consolidate its free lists
    /// every time.
    spare: Vec<Vec<u8>>,
}

impl Parser {
    fn new(options: &Options) -> Parser {
        Parser {
            ctx: Ctx {
                infos: Infos::default(),
                warnings: Vec::new(),
                rules: options.rules(),
                doc_text: String::new(),
                literal: Default::default(),
            },
            out: ParseOutput::default(),
            cwd: std::env::current_dir()
                .map(|p| p.to_string_lossy().into_owned())
                .unwrap_or_default(),
            included: BTreeSet::new(),
            stack: Vec::new(),
            spare: Vec::new(),
        }
    }

    /// Reads a file into the largest spare buffer.
    fn read(&mut self, path: &str) -> std::io::Result<Vec<u8>> {
        use std::io::Read as _;
        let largest = (0..self.spare.len()).max_by_key(|&i| self.spare[i].capacity());
        let mut buf = largest.map_or_else(Vec::new, |i| self.spare.swap_remove(i));
        buf.clear();
        std::fs::File::open(path)?.read_to_end(&mut buf)?;
        Ok(buf)
    }

    /// Opens a file (main or included) and primes its lexer.
    fn open(
        &mut self,
        name: String,
        path: PathBuf,
        source: Source,
        parent: Option<InfoId>,
    ) -> PResult<()> {
        let abs = abspath(&self.cwd, &name);
        self.included.insert(abs.clone());
        let decoded = match source {
            Source::Bytes(bytes) => lexer::decode(bytes),
            Source::Text(text) => Ok(lexer::finish(text)),
        };
        self.out.files.push(path);
        let src = match decoded {
            Ok(src) if src.len() < u32::MAX as usize => src,
            Ok(_) => {
                let id = self.file_info(&name, 1, parent);
                return Err(self.ctx.infos.error_boxed(id, "file too large"));
            }
            Err(e) => {
                let id = self.file_info(&name, e.line, parent);
                return Err(self.ctx.infos.error_col_boxed(id, Some(e.col), e.message));
            }
        };
        let mut file = FileState::new(name, abs, src, parent);
        file.accept(&mut self.ctx, true)?;
        self.stack.push(file);
        Ok(())
    }

    fn file_info(&mut self, name: &str, line: u32, parent: Option<InfoId>) -> InfoId {
        self.ctx.infos.push(InfoData {
            file: name.into(),
            line,
            parent,
            defn: None,
        })
    }

    /// QEMU's `reject_expr_doc`: a definition doc block must be followed by its definition.
    fn reject_expr_doc(&self, doc: Option<usize>) -> PResult<()> {
        if let Some(doc) = doc.and_then(|i| self.out.docs.get(i)) {
            if let Some(symbol) = &doc.symbol {
                return Err(self.ctx.infos.error_boxed(
                    doc.info,
                    format!("documentation for '{symbol}' is not followed by the definition"),
                ));
            }
        }
        Ok(())
    }

    fn run(mut self, name: String, path: PathBuf, source: Source) -> PResult<ParseOutput> {
        self.open(name, path, source, None)?;
        while let Some(file) = self.stack.last_mut() {
            match file.tok.kind {
                TokKind::Eof => {
                    let doc = file.cur_doc;
                    self.reject_expr_doc(doc)?;
                    if let Some(file) = self.stack.pop() {
                        self.spare.push(file.src.into_bytes());
                    }
                    continue;
                }
                TokKind::Comment => {
                    let doc = file.cur_doc;
                    self.reject_expr_doc(doc)?;
                    let Some(file) = self.stack.last_mut() else {
                        break;
                    };
                    if self.ctx.rules.doc_v5_2 {
                        let docs = doc::v5_2::get_docs(file, &mut self.ctx)?;
                        file.cur_doc = self.out.docs.len().checked_add(docs.len() - 1);
                        self.out.docs.extend(docs);
                        continue;
                    }
                    let doc: ParsedDoc = doc::get_doc(file, &mut self.ctx)?;
                    file.cur_doc = Some(self.out.docs.len());
                    self.out.docs.push(doc);
                    continue;
                }
                _ => {}
            }
            let info = file.info(&mut self.ctx);
            let expr = file.get_expr(&mut self.ctx)?;
            let cur_doc = file.cur_doc.take();
            let Value::Dict(dict, _) = expr else {
                return Err(self
                    .ctx
                    .infos
                    .error_boxed(info, "top-level expression must be an object"));
            };
            if dict.iter().any(|(k, _)| k == "include") {
                self.reject_expr_doc(cur_doc)?;
                self.include(dict, info)?;
            } else if dict.iter().any(|(k, _)| k == "pragma") {
                self.reject_expr_doc(cur_doc)?;
                self.pragma(dict, info)?;
            } else {
                if let Some(doc) = cur_doc.and_then(|i| self.out.docs.get(i)) {
                    if doc.symbol.is_none() {
                        return Err(self
                            .ctx
                            .infos
                            .error_boxed(doc.info, "definition documentation required"));
                    }
                }
                self.out.exprs.push(ParsedExpr {
                    expr: dict,
                    info,
                    doc: cur_doc,
                });
            }
        }
        self.out.infos = self.ctx.infos;
        self.out.warnings = self.ctx.warnings;
        Ok(self.out)
    }

    /// An `include` directive: records it, then opens the file unless already read.
    fn include(&mut self, mut dict: Dict, info: InfoId) -> PResult<()> {
        if dict.len() != 1 {
            return Err(self
                .ctx
                .infos
                .error_boxed(info, "invalid 'include' directive"));
        }
        let Some((key, Value::Str(include, span))) = dict.pop() else {
            return Err(self
                .ctx
                .infos
                .error_boxed(info, "value of 'include' must be a string"));
        };
        let Some(file) = self.stack.last() else {
            return Ok(());
        };
        let incl_fname = path_join(&path_dirname(&file.name), &include);
        self.out.exprs.push(ParsedExpr {
            expr: vec![(key, Value::Str(Text::Owned(incl_fname.clone()), span))],
            info,
            doc: None,
        });
        let abs = abspath(&self.cwd, &incl_fname);
        if self.stack.iter().any(|f| f.abs == abs) {
            return Err(self
                .ctx
                .infos
                .error_boxed(info, format!("inclusion loop for {include}")));
        }
        if self.included.contains(&abs) {
            return Ok(());
        }
        let bytes = match self.read(&incl_fname) {
            Ok(bytes) => bytes,
            Err(e) => {
                self.included.insert(abs);
                return Err(self.ctx.infos.error_boxed(
                    info,
                    format!("can't read include file '{incl_fname}': {}", strerror(&e)),
                ));
            }
        };
        self.open(
            incl_fname.clone(),
            PathBuf::from(incl_fname),
            Source::Bytes(bytes),
            Some(info),
        )
    }

    /// A `pragma` directive: validates every key in order and stores it.
    fn pragma(&mut self, mut dict: Dict, info: InfoId) -> PResult<()> {
        if dict.len() != 1 {
            return Err(self
                .ctx
                .infos
                .error_boxed(info, "invalid 'pragma' directive"));
        }
        let Some((_, Value::Dict(pragma, _))) = dict.pop() else {
            return Err(self
                .ctx
                .infos
                .error_boxed(info, "value of 'pragma' must be an object"));
        };
        let err = |infos: &Infos, msg: String| infos.error_boxed(info, msg);
        let p = &mut self.out.pragma;
        for (name, value) in pragma {
            let list = match &*name {
                "doc-required" => {
                    let Value::Bool(b, _) = value else {
                        return Err(err(
                            &self.ctx.infos,
                            "pragma 'doc-required' must be boolean".to_owned(),
                        ));
                    };
                    p.doc_required = b;
                    continue;
                }
                _ => match self.ctx.rules.pragmas.iter().find(|(n, _)| *n == &*name) {
                    Some((_, PragmaList::CommandName)) => &mut p.command_name_exceptions,
                    Some((_, PragmaList::CommandReturns)) => &mut p.command_returns_exceptions,
                    Some((_, PragmaList::Documentation)) => &mut p.documentation_exceptions,
                    Some((_, PragmaList::MemberName)) => &mut p.member_name_exceptions,
                    None => return Err(err(&self.ctx.infos, format!("unknown pragma '{name}'"))),
                },
            };
            let strings: Option<Vec<String>> = match value {
                Value::List(items, _) => items
                    .into_iter()
                    .map(|v| match v {
                        Value::Str(s, _) => Some(s.into_owned()),
                        _ => None,
                    })
                    .collect(),
                _ => None,
            };
            match strings {
                Some(strings) => *list = strings,
                None => {
                    return Err(err(
                        &self.ctx.infos,
                        format!("pragma {name} must be a list of strings"),
                    ));
                }
            }
        }
        Ok(())
    }
}

/// Python's `os.path.dirname`.
fn path_dirname(p: &str) -> String {
    let i = p.rfind('/').map_or(0, |i| i + 1);
    let head = &p[..i];
    if !head.is_empty() && !head.bytes().all(|b| b == b'/') {
        head.trim_end_matches('/').to_owned()
    } else {
        head.to_owned()
    }
}

/// Python's `os.path.join` for two components.
fn path_join(a: &str, b: &str) -> String {
    if b.starts_with('/') {
        b.to_owned()
    } else if a.is_empty() || a.ends_with('/') {
        format!("{a}{b}")
    } else {
        format!("{a}/{b}")
    }
}

/// Python's `os.path.abspath`: joined to the working directory, then normalised
/// lexically (symbolic links are not resolved).
fn abspath(cwd: &str, p: &str) -> String {
    let joined;
    let p = if p.starts_with('/') {
        p
    } else {
        joined = path_join(cwd, p);
        &joined
    };
    normpath(p)
}

/// Python's `os.path.normpath` (POSIX).
fn normpath(p: &str) -> String {
    if p.is_empty() {
        return ".".to_owned();
    }
    let slashes = if p.starts_with("//") && !p.starts_with("///") {
        2
    } else if p.starts_with('/') {
        1
    } else {
        0
    };
    let mut comps: Vec<&str> = Vec::new();
    for comp in p.split('/') {
        if comp.is_empty() || comp == "." {
            continue;
        }
        if comp != ".." || (slashes == 0 && comps.is_empty()) || comps.last() == Some(&"..") {
            comps.push(comp);
        } else if !comps.is_empty() {
            comps.pop();
        }
    }
    let out = format!("{}{}", "/".repeat(slashes), comps.join("/"));
    if out.is_empty() {
        ".".to_owned()
    } else {
        out
    }
}

pub(crate) mod cursor;
mod doc;

#[cfg(test)]
mod tests;
