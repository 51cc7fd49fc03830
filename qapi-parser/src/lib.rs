//! QAPI front end: reads QEMU's QAPI schema language exactly as QEMU 10.0.2's
//! `scripts/qapi` does and produces a checked, QAPI-faithful [`Schema`]; with
//! [`Options::release`], as another release's does ([`Release`]: 5.2, 7.2, 10.2).
//!
//! ```no_run
//! let schema = qapi_parser::load("qapi/qapi-schema.json", &qapi_parser::Options::default())?;
//! for cmd in schema.commands() {
//!     println!("{}", cmd.name);
//! }
//! # Ok::<(), qapi_parser::Error>(())
//! ```
//!
//! [`dump()`] renders a schema in the format of QEMU's QAPI test suite (`.out` files);
//! `Error`'s `Display` is QEMU's error text (`.err` files), so both can be compared
//! byte for byte with the reference.

mod diagnostic;
mod model;

pub use diagnostic::{Error, Location, Warning};
pub use dump::dump;
pub use model::*;
pub use release::{Release, ReleaseError};

/// How strictly schemas are read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Options {
    /// Which QEMU release's rules apply (default: 10.0, the reference).
    pub release: Release,
    /// Relaxations on top of `release`'s rules.
    pub compat: Compat,
}

impl Options {
    /// The rules of `version`: `"5.2"`, `"7.2.0"`, `"10.2.2"`, ... (see [`Release`]'s
    /// `FromStr`: a version newer than every known release takes the newest rules, one
    /// older than 5.2 is an error).
    pub fn for_release(version: &str) -> Result<Options, ReleaseError> {
        Ok(Options {
            release: version.parse()?,
            compat: Compat::default(),
        })
    }

    /// The effective rule table.
    pub(crate) fn rules(&self) -> release::Rules {
        self.release.rules(self.compat)
    }
}

/// Relaxations on top of [`Options::release`]'s rules.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Compat {
    /// The release's rules, exactly (the default).
    #[default]
    Qemu10,
    /// The release's rules, with the documentation conventions that changed since
    /// QEMU 7.2 relaxed into warnings ([`Schema::warnings`]), so that older schemas
    /// (QEMU 7.2's QMP, QGA and storage-daemon schemas) load. Relaxed, and nothing else:
    /// - `Note:`/`Notes:`/`Example:`/`Examples:` sections and other 7.2-era doc
    ///   layout the parse phase accepts (see the parser's notes);
    /// - members, enum values and alternate branches without a `@name:` description
    ///   (7.2 had no `documentation-exceptions`: they get empty descriptions);
    /// - a `Returns:` section on a command that returns nothing;
    /// - `@name :` (space before the colon), which 7.2 read as plain text, naming no
    ///   member.
    Legacy,
}

mod ast;
mod dump;
mod expr;
mod lexer;
mod parser;
mod release;
mod schema;

/// Loads, parses and checks the schema at `path` and everything it includes.
///
/// Returns the first error QEMU's front end would report, rendered by `Display`
/// exactly as QEMU prints it.
// The public error stays unboxed: it is returned once per load, and callers match on it.
#[allow(clippy::result_large_err)]
pub fn load(path: impl AsRef<std::path::Path>, options: &Options) -> Result<Schema, Error> {
    // Internal phases box their errors (small results on hot paths).
    let parsed = parser::parse(path.as_ref(), options).map_err(|e| *Box::<Error>::from(e))?;
    schema::build(parsed, options)
        .map_err(|e| *e)
        .map(|s| finish(s, options))
}

/// Like [`load`], for a main file given as text: `name` is used in messages and as
/// the base for `include` paths, which are still read from disk.
#[allow(clippy::result_large_err)]
pub fn load_str(name: &str, text: &str, options: &Options) -> Result<Schema, Error> {
    let parsed = parser::parse_str(name, text, options).map_err(|e| *Box::<Error>::from(e))?;
    schema::build(parsed, options)
        .map_err(|e| *e)
        .map(|s| finish(s, options))
}

/// Warnings name what 10.0 would reject: only [`Compat::Legacy`] asks for them. Under an
/// older release's own rules the same conventions are simply that release's language.
fn finish(mut schema: Schema, options: &Options) -> Schema {
    if options.compat != Compat::Legacy {
        schema.warnings.clear();
    }
    schema
}
