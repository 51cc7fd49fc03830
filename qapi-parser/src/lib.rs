//! QAPI front end: reads QEMU's QAPI schema language exactly as QEMU 10.0.2's
//! `scripts/qapi` does and produces a checked, QAPI-faithful [`Schema`].
//!
//! ```no_run
//! let schema = qapi_parser::load("qapi/qapi-schema.json", &qapi_parser::Options::default())?;
//! for cmd in schema.commands() {
//!     println!("{}", cmd.name);
//! }
//! # Ok::<(), qapi_parser::Error>(())
//! ```

mod diagnostic;
mod model;

pub use diagnostic::{Error, Location, Warning};
pub use dump::dump;
pub use model::*;

/// How strictly schemas are read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Options {
    /// Which QEMU release's rules apply.
    pub compat: Compat,
}

/// The rule set a schema is checked against.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Compat {
    /// QEMU 10.0.2's rules, exactly (the default).
    #[default]
    Qemu10,
    /// QEMU 10.0.2's rules, with the documentation conventions that changed since
    /// QEMU 7.2 relaxed into warnings, so that older schemas load.
    Legacy,
}

mod ast;
mod doc;
mod dump;
mod expr;
mod lexer;
mod parser;
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
    schema::build(parsed, options).map_err(|e| *e)
}
