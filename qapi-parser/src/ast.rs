//! The parse phase's output: spanned QAPI-JSON values, source infos and raw doc blocks.
//!
//! This is the boundary between the syntax side (`lexer`, `parser`, `doc`) and the
//! semantic side (`expr`, `schema`): the parser fills these types, the checks read them.

use crate::diagnostic::{Error, Location};
use crate::model::{Pragma, SectionKind};

/// Byte range in a file's text (after newline normalisation).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Span {
    pub start: u32,
    pub end: u32,
}

/// A QAPI-JSON value: strings, booleans, arrays and objects only (no numbers, no null).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    Str(Text, Span),
    Bool(bool, Span),
    List(Vec<Value>, Span),
    /// Members in source order; keys are unique (duplicates are a parse error).
    Dict(Dict, Span),
}

/// An object's members in source order.
pub(crate) type Dict = Vec<(Text, Value)>;

/// A string of the source: QAPI's own words and built-in type names (most keys and
/// many values) are static, so that the parse allocates only for the others.
pub(crate) type Text = std::borrow::Cow<'static, str>;

impl Value {
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s, _) => Some(s),
            _ => None,
        }
    }
}

/// Looks a key up in an object (objects are small: linear search beats hashing).
pub(crate) fn get<'a>(dict: &'a Dict, key: &str) -> Option<&'a Value> {
    dict.iter().find(|(k, _)| k == key).map(|(_, v)| v)
}

/// Index of a [`InfoData`] in [`Infos`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct InfoId(pub u32);

/// QEMU's `QAPISourceInfo`: file, line, include parent and the definition context.
///
/// Quirk kept on purpose: every token on one source line shares one info, so two
/// definitions starting on the same line share their `defn` (the last one wins).
#[derive(Debug, Clone)]
pub(crate) struct InfoData {
    pub file: std::rc::Rc<str>,
    pub line: u32,
    /// The info of the `include` directive that brought this file in.
    pub parent: Option<InfoId>,
    /// `(meta, name)`, set by the expression checks once the name is known to be a string.
    pub defn: Option<(&'static str, String)>,
}

/// Arena of source infos; errors are rendered from it.
#[derive(Debug, Clone, Default)]
pub(crate) struct Infos {
    pub data: Vec<InfoData>,
}

impl Infos {
    pub fn get(&self, id: InfoId) -> &InfoData {
        &self.data[id.0 as usize]
    }

    pub fn push(&mut self, data: InfoData) -> InfoId {
        self.data.push(data);
        InfoId(self.data.len() as u32 - 1)
    }

    pub fn location(&self, id: InfoId) -> Location {
        let d = self.get(id);
        Location {
            file: String::from(&*d.file),
            line: d.line,
        }
    }

    /// A semantic error at `id` (no column), with include chain and context.
    pub fn error(&self, id: InfoId, message: impl Into<String>) -> Error {
        self.error_col(id, None, message)
    }

    /// An error at `id` with an optional column (syntax errors have one).
    pub fn error_col(&self, id: InfoId, col: Option<u32>, message: impl Into<String>) -> Error {
        let d = self.get(id);
        let mut included_from = Vec::new();
        let mut p = d.parent;
        while let Some(pid) = p {
            let pd = self.get(pid);
            included_from.push((String::from(&*pd.file), pd.line));
            p = pd.parent;
        }
        included_from.reverse();
        Error {
            included_from,
            context: d.defn.as_ref().map(|(m, n)| ((*m).to_owned(), n.clone())),
            location: Some(self.location(id)),
            col,
            message: message.into(),
        }
    }
}

/// One top-level expression in flattened order (QEMU's `expr_elem`).
#[derive(Debug, Clone)]
pub(crate) struct ParsedExpr {
    /// The object; for an include directive `{'include': <path joined to the includer's folder>}`
    /// (QEMU's `os.path.join(dirname(includer), path)`, not normalised).
    pub expr: Dict,
    pub info: InfoId,
    /// Index into [`ParseOutput::docs`] of the definition doc block right before it.
    pub doc: Option<usize>,
}

/// A doc block as parsed, before it is connected to its definition.
#[derive(Debug, Clone)]
pub(crate) struct ParsedDoc {
    /// Info of the opening `##` line.
    pub info: InfoId,
    /// `Some` for definition docs (`@NAME:` first line).
    pub symbol: Option<String>,
    /// All sections in text order; the first is always the body (kind Plain, maybe empty).
    pub sections: Vec<RawSection>,
}

/// One section of a parsed doc block.
#[derive(Debug, Clone)]
pub(crate) struct RawSection {
    pub kind: SectionKind,
    /// Member/feature name for `@name:` sections.
    pub name: Option<String>,
    /// The text as QEMU stores it once the block ends: lines without `# `, trailing
    /// blanks stripped, body/plain paragraphs separated by exactly one empty line,
    /// leading and trailing newlines stripped (the `.out` dump prints it as is).
    pub text: String,
    /// Info of the section's first line.
    pub info: InfoId,
}

/// Everything the parse phase produces.
#[derive(Debug, Clone, Default)]
pub(crate) struct ParseOutput {
    /// Expressions in flattened order, include directives in place.
    pub exprs: Vec<ParsedExpr>,
    /// Every doc block in parser order.
    pub docs: Vec<ParsedDoc>,
    /// Pragmas, already validated (the last value per key wins).
    pub pragma: Pragma,
    pub infos: Infos,
    /// Every file read, main file first, as opened.
    pub files: Vec<std::path::PathBuf>,
    /// Tolerated problems by relaxed rules (`Rules::legacy_docs`).
    pub warnings: Vec<crate::diagnostic::Warning>,
}
