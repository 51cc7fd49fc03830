//! Errors and warnings, rendered exactly in QEMU's `FILE:LINE[:COL]: message` format.

use std::fmt;

/// A place in a schema file.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Location {
    /// The path as opened (main file as given; includes joined to the includer's folder, not normalised).
    pub file: String,
    /// 1-based line.
    pub line: u32,
}

/// The first error QEMU's front end would report for a schema.
///
/// `Display` renders it byte for byte as QEMU does (without the final newline):
/// the `In file included from F:L:` chain, the `F: In META 'NAME':` context, then
/// `F:LINE[:COL]: message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    /// Include chain, outermost includer first: (file, line of the `include`).
    pub included_from: Vec<(String, u32)>,
    /// `(meta, name)` of the definition being checked, e.g. `("struct", "Foo")`.
    pub context: Option<(String, String)>,
    /// Where; `None` for errors with no location (unreadable main file).
    pub location: Option<Location>,
    /// 1-based column, for syntax errors only.
    pub col: Option<u32>,
    /// The message; it may span lines.
    pub message: String,
}

impl std::error::Error for Error {}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Some(loc) = &self.location else {
            return f.write_str(&self.message);
        };
        for (file, line) in &self.included_from {
            writeln!(f, "In file included from {file}:{line}:")?;
        }
        if let Some((meta, name)) = &self.context {
            writeln!(f, "{}: In {meta} '{name}':", loc.file)?;
        }
        write!(f, "{}:{}", loc.file, loc.line)?;
        if let Some(col) = self.col {
            write!(f, ":{col}")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// A problem tolerated under [`crate::Compat::Legacy`] that QEMU 10.0.2 would reject.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning(pub Error);

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "warning: {}", self.0)
    }
}
