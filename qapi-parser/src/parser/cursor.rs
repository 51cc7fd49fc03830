//! The parser's cursor over one file: the current token, `accept()`, line infos and
//! errors at the current token, and the state shared by all files of one parse. The doc
//! reader (`doc.rs`) reads doc blocks through it, so it depends on the cursor only, never
//! on the parser proper.

use std::rc::Rc;

use crate::ast::{Dict, InfoData, InfoId, Infos, Text, Value};
use crate::diagnostic::Warning;
use crate::lexer::{self, Tok, TokKind, Tokens};
use crate::release::Rules;
use crate::Error;

/// A parse-phase result. Errors are boxed to keep the hot paths' results small.
pub(crate) type PResult<T> = Result<T, Box<Error>>;

/// Boxed variants of the [`Infos`] error constructors.
pub(crate) trait BoxedErrors {
    /// [`Infos::error`], boxed.
    fn error_boxed(&self, id: InfoId, message: impl Into<String>) -> Box<Error>;
    /// [`Infos::error_col`], boxed.
    fn error_col_boxed(
        &self,
        id: InfoId,
        col: Option<u32>,
        message: impl Into<String>,
    ) -> Box<Error>;
}

impl BoxedErrors for Infos {
    fn error_boxed(&self, id: InfoId, message: impl Into<String>) -> Box<Error> {
        Box::new(self.error(id, message))
    }
    fn error_col_boxed(
        &self,
        id: InfoId,
        col: Option<u32>,
        message: impl Into<String>,
    ) -> Box<Error> {
        Box::new(self.error_col(id, col, message))
    }
}

/// Finds repeated names among a growing list in constant time per name once the
/// list is long, so that adversarial input cannot make the check quadratic.
#[derive(Default)]
pub(crate) struct Seen {
    /// Hashes of the names so far, kept once there are more than [`Seen::SMALL`].
    hashes: Option<std::collections::HashSet<u64>>,
}

impl Seen {
    const SMALL: usize = 16;

    fn hash(name: &str) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        name.hash(&mut h);
        h.finish()
    }

    /// Whether `name` is among `names` (all names added so far, in order).
    pub fn contains<'a>(
        &mut self,
        names: impl Iterator<Item = &'a str> + Clone,
        name: &str,
    ) -> bool {
        if self.hashes.is_none() {
            if names.clone().nth(Self::SMALL).is_none() {
                return names.clone().any(|n| n == name);
            }
            self.hashes = Some(names.clone().map(Self::hash).collect());
        }
        match &self.hashes {
            Some(hashes) if !hashes.contains(&Self::hash(name)) => false,
            _ => names.clone().any(|n| n == name),
        }
    }

    /// Records `name`, once it has been added to the list.
    pub fn add(&mut self, name: &str) {
        if let Some(hashes) = &mut self.hashes {
            hashes.insert(Self::hash(name));
        }
    }
}

/// State shared by all files of one parse.
pub(crate) struct Ctx {
    pub infos: Infos,
    pub warnings: Vec<Warning>,
    pub rules: Rules,
    /// The section text buffer of doc blocks, handed from one block to the next.
    pub doc_text: String,
    /// 10.2's literal-block state inside the current doc block.
    pub literal: Literal,
}

impl Ctx {
    /// Records a problem tolerated by a relaxed rule (see [`Rules::legacy_docs`]).
    pub fn warn(&mut self, error: Error) {
        self.warnings.push(Warning(error));
    }
}

/// An open container of `FileState::get_expr`'s explicit stack.
pub(super) enum Frame {
    Dict {
        start: u32,
        members: Dict,
        key: Text,
        seen: Seen,
    },
    List {
        start: u32,
        items: Vec<Value>,
    },
}

/// One open file: its text, tokens and QEMU's lexer state.
pub(crate) struct FileState {
    pub(super) name: Rc<str>,
    /// `os.path.abspath` of the name, for QEMU's cycle and repetition checks.
    pub(super) abs: String,
    pub src: String,
    pub(super) tokens: Tokens,
    /// The current token (QEMU's `tok`/`pos`); its line is `tokens.line`.
    pub tok: Tok,
    /// The info of a line, made on first use so that tokens of one line share it.
    pub(super) line_info: Option<(u32, InfoId)>,
    pub(super) parent: Option<InfoId>,
    /// The doc block read just before the current expression (QEMU's `cur_doc`).
    pub(super) cur_doc: Option<usize>,
    /// The containers `get_expr` has open, kept between expressions.
    pub(super) frames: Vec<Frame>,
}

impl FileState {
    pub(super) fn new(name: String, abs: String, src: String, parent: Option<InfoId>) -> FileState {
        let tokens = Tokens::new(&src);
        FileState {
            name: name.into(),
            abs,
            src,
            tokens,
            tok: Tok {
                kind: TokKind::Eof,
                start: 0,
                end: 0,
            },
            line_info: None,
            parent,
            cur_doc: None,
            // Schemas nest a few levels: no regrowth for most files.
            frames: Vec::with_capacity(8),
        }
    }

    /// The info of the current token's line.
    pub fn info(&mut self, ctx: &mut Ctx) -> InfoId {
        let line = self.tokens.line;
        match self.line_info {
            Some((l, id)) if l == line => id,
            _ => {
                let id = ctx.infos.push(InfoData {
                    file: self.name.clone(),
                    line,
                    parent: self.parent,
                    defn: None,
                });
                self.line_info = Some((line, id));
                id
            }
        }
    }

    /// A `QAPIParseError` at the current token (with a column).
    pub fn error(&mut self, ctx: &mut Ctx, message: impl Into<String>) -> Box<Error> {
        let col = lexer::column(&self.src, self.tokens.line_pos, self.tok.start as usize);
        let id = self.info(ctx);
        ctx.infos.error_col_boxed(id, Some(col), message)
    }

    /// Where the current token's line starts.
    pub fn line_pos(&self) -> usize {
        self.tokens.line_pos
    }

    /// The current token's text.
    pub fn tok_text(&self) -> &str {
        self.src
            .get(self.tok.start as usize..self.tok.end as usize)
            .unwrap_or("")
    }

    /// Reads the next token (QEMU's `accept()`): plain comments are skipped unless
    /// `skip_comment` is false; doc comments (`##...`) never are. Lexical errors are
    /// raised here, when the token is read, as QEMU does.
    pub fn accept(&mut self, ctx: &mut Ctx, skip_comment: bool) -> PResult<()> {
        loop {
            let tok = self.tokens.next(&self.src);
            self.tok = tok;
            match tok.kind {
                TokKind::Comment => {
                    if !skip_comment || self.tok_text().starts_with("##") {
                        return Ok(());
                    }
                }
                // Includes strings with characters outside printable ASCII.
                TokKind::BadString => {
                    let msg = lexer::string_error(&self.src, tok.start as usize)
                        .unwrap_or_else(|| "missing terminating \"'\"".to_owned());
                    return Err(self.error(ctx, msg));
                }
                TokKind::Stray => {
                    let msg = lexer::stray_message(&self.src, tok.start as usize);
                    return Err(self.error(ctx, msg));
                }
                _ => return Ok(()),
            }
        }
    }
}

/// Literal-block state across the lines of one doc block (10.2's `_literal_mode`), kept
/// for the doc reader (`doc/v10_2.rs`).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Literal {
    /// Inside a literal block.
    pub on: bool,
    /// The indentation of the block's first line (0 before it).
    pub indent: usize,
}
