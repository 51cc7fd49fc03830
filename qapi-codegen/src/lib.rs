//! Generates typed Rust for QMP from a checked QAPI [`qapi_parser::Schema`].
//!
//! The pipeline is `Schema` -> [`ir::File`] (every decision, in `lower`) -> tokens
//! (`emit`, decision-free) -> text (prettyplease, `print`). Deterministic: the same schema and
//! configuration always give the same bytes.
//!
//! In a build script, the common case is one call:
//!
//! ```no_run
//! // build.rs
//! qapi_codegen::compile("qapi/qapi-schema.json", "qmp.rs").unwrap();
//! ```
//!
//! and in the crate, `pub mod qmp { include!(concat!(env!("OUT_DIR"), "/qmp.rs")); }`.
//! The generated code needs `serde_json` and `qapi-runtime` (the `Command` trait and the
//! JSON codec the generated types decode and encode with) as dependencies; serde's traits
//! are implemented through `qapi-runtime`'s re-export, so `serde` itself is optional.
//! The generated code names an item of `qapi-runtime` that carries `qapi-codegen`'s
//! version (`runtime::QAPI_CODEGEN_0_1`), so a mismatched pair fails to compile
//! with that name in the message.
//! [`Config`] covers the rest.

#![deny(missing_docs)]

pub mod docs;
mod emit;
pub mod ir;
mod lower;
pub mod names;
mod print;
pub mod range;

pub use range::{QemuVersion, Release};

pub use qapi_parser;

use std::fmt;
use std::path::{Path, PathBuf};

/// An error of [`Config::compile`] or [`compile`]. Its `Display` is the whole message,
/// the cause included; it has no `source()`.
#[derive(Debug)]
pub enum Error {
    /// The schema did not load (QEMU's message format).
    Schema(Box<qapi_parser::Error>),
    /// Reading or writing a file failed.
    Io(PathBuf, std::io::Error),
    /// `OUT_DIR` is not set (not running in a build script) and no output path was given.
    NoOutDir,
    /// An older release given to [`Config::older_schema`] has no rules in the parser.
    Release(QemuVersion, String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Schema(e) => write!(f, "{e}"),
            Error::Io(p, e) => write!(f, "{}: {e}", p.display()),
            Error::NoOutDir => f.write_str("OUT_DIR is not set: run from a build script"),
            Error::Release(v, e) => write!(f, "older schema of QEMU {v}: {e}"),
        }
    }
}

/// The message already says the cause (the schema error, the I/O error), so there is no
/// `source()`: a reporter walking the chain (`{:#}`, anyhow) prints it once.
impl std::error::Error for Error {}

impl From<qapi_parser::Error> for Error {
    fn from(e: qapi_parser::Error) -> Self {
        Error::Schema(Box::new(e))
    }
}

/// An entity filter: keeps the commands, events and types whose QAPI name it accepts.
pub type Filter = Box<dyn Fn(&str) -> bool>;

/// Generation settings, in the shape of prost-build's `Config`.
pub struct Config {
    pub(crate) options: qapi_parser::Options,
    pub(crate) crate_path: String,
    pub(crate) commands_module: String,
    pub(crate) events_module: String,
    pub(crate) filter: Option<Filter>,
    pub(crate) derives: Vec<String>,
    pub(crate) provenance: Option<String>,
    pub(crate) rerun_if_changed: bool,
    pub(crate) min_qemu: Option<QemuVersion>,
    pub(crate) older: Vec<(QemuVersion, PathBuf)>,
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("options", &self.options)
            .field("crate_path", &self.crate_path)
            .field("commands_module", &self.commands_module)
            .field("events_module", &self.events_module)
            .field("filter", &self.filter.is_some())
            .field("derives", &self.derives)
            .field("provenance", &self.provenance)
            .field("min_qemu", &self.min_qemu)
            .field("older", &self.older)
            .finish()
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            options: qapi_parser::Options::default(),
            crate_path: "::qapi_runtime".to_owned(),
            commands_module: "commands".to_owned(),
            events_module: "events".to_owned(),
            filter: None,
            derives: Vec::new(),
            provenance: None,
            rerun_if_changed: true,
            min_qemu: None,
            older: Vec::new(),
        }
    }
}

impl Config {
    /// The default configuration: everything generated, commands in `commands`, events
    /// in `events`, runtime from `::qapi_runtime`.
    pub fn new() -> Self {
        Self::default()
    }

    /// The parser options (e.g. `Compat::Legacy` for QEMU 7 schemas).
    pub fn parser_options(&mut self, options: qapi_parser::Options) -> &mut Self {
        self.options = options;
        self
    }

    /// Path of the crate providing `Command`, `EventSet`, `Timestamp` and `runtime`.
    ///
    /// # Arguments
    /// * `path` - a Rust path, `::qapi_runtime` by default (`::qmp_types` works too: it
    ///   re-exports the runtime).
    pub fn crate_path(&mut self, path: &str) -> &mut Self {
        self.crate_path = path.to_owned();
        self
    }

    /// Module layout: the names of the submodules holding command and event types.
    ///
    /// Commands, events and types are in separate namespaces so QAPI names never clash
    /// (e.g. command `blockdev-backup` and type `BlockdevBackup`).
    pub fn modules(&mut self, commands: &str, events: &str) -> &mut Self {
        self.commands_module = commands.to_owned();
        self.events_module = events.to_owned();
        self
    }

    /// Generates only the commands, events and types whose QAPI name passes `filter`,
    /// plus every type they use.
    ///
    /// # Examples
    /// ```
    /// let mut cfg = qapi_codegen::Config::new();
    /// cfg.filter(|name| name.starts_with("query-"));
    /// ```
    pub fn filter(&mut self, filter: impl Fn(&str) -> bool + 'static) -> &mut Self {
        self.filter = Some(Box::new(filter));
        self
    }

    /// Adds a derive (e.g. `PartialOrd`) to every generated struct and enum.
    pub fn derive(&mut self, path: &str) -> &mut Self {
        self.derives.push(path.to_owned());
        self
    }

    /// A provenance note for the `@generated` header, e.g. `QEMU 10.0.2`.
    pub fn provenance(&mut self, note: &str) -> &mut Self {
        self.provenance = Some(note.to_owned());
        self
    }

    /// Whether [`Config::compile`] prints `cargo:rerun-if-changed` lines (default true).
    pub fn rerun_if_changed(&mut self, on: bool) -> &mut Self {
        self.rerun_if_changed = on;
        self
    }

    /// The oldest QEMU release the generated API supports (the supported range runs
    /// from it to the schema's own release). A member is required in Rust only where
    /// every release of the range, on every target, sends it (replies, events) or
    /// requires it (arguments): members under an `if` condition, and members that
    /// appeared after `min_qemu`, are `Option`s.
    ///
    /// When members appeared is learned from the older releases' schemas given to
    /// [`Config::older_schema`] and, between two of them, from QEMU's "(since X.Y)"
    /// notes. Unset (the default), the range is the schema's own release: only
    /// conditional members become optional.
    pub fn min_qemu(&mut self, version: QemuVersion) -> &mut Self {
        self.min_qemu = Some(version);
        self
    }

    /// An older QEMU release's schema (its main file, e.g. `qapi/qapi-schema.json` of
    /// QEMU 7.2), read by [`Config::compile`] for the supported range (see
    /// [`Config::min_qemu`]). Give releases around and inside the range: the release
    /// just before `min_qemu` tells what `min_qemu` already had.
    pub fn older_schema(&mut self, version: QemuVersion, path: impl AsRef<Path>) -> &mut Self {
        self.older.push((version, path.as_ref().to_owned()));
        self
    }

    /// Generates formatted Rust source for a loaded schema. `label` names the schema in
    /// the header (e.g. its file name).
    pub fn generate(&self, schema: &qapi_parser::Schema, label: &str) -> String {
        self.generate_with(schema, &[], label)
    }

    /// Like [`Config::generate`], with older releases' schemas for the supported range.
    pub fn generate_with(
        &self,
        schema: &qapi_parser::Schema,
        older: &[Release<'_>],
        label: &str,
    ) -> String {
        emit::format(&self.lower_with(schema, older, label))
    }

    /// The IR for a loaded schema (for tests and tools).
    pub fn lower(&self, schema: &qapi_parser::Schema, label: &str) -> ir::File {
        self.lower_with(schema, &[], label)
    }

    /// The IR for a loaded schema and older releases' schemas.
    pub fn lower_with(
        &self,
        schema: &qapi_parser::Schema,
        older: &[Release<'_>],
        label: &str,
    ) -> ir::File {
        lower::lower(schema, older, self, label)
    }

    /// Loads `schema` and writes the generated code to `out` (relative paths are taken
    /// relative to `OUT_DIR`), printing `cargo:rerun-if-changed` for every file read.
    pub fn compile(&self, schema: impl AsRef<Path>, out: impl AsRef<Path>) -> Result<(), Error> {
        let (text, files) = self.generate_file(schema.as_ref());
        if self.rerun_if_changed {
            for f in &files {
                println!("cargo:rerun-if-changed={}", f.display());
            }
        }
        let text = text?;
        let out = out.as_ref();
        let out = if out.is_absolute() {
            out.to_owned()
        } else {
            match std::env::var_os("OUT_DIR") {
                Some(dir) => Path::new(&dir).join(out),
                None if out.parent().is_some_and(|p| !p.as_os_str().is_empty()) => out.to_owned(),
                None => return Err(Error::NoOutDir),
            }
        };
        write_if_changed(&out, &text)
    }
}

impl Config {
    /// Loads the schema at `path` and the older releases' schemas (each on a thread of
    /// its own, so the range costs no wall time) and generates the source. Also returns
    /// every file read, for `cargo:rerun-if-changed`, even when loading failed.
    pub fn generate_file(&self, path: &Path) -> (Result<String, Error>, Vec<PathBuf>) {
        let (main, older) = std::thread::scope(|scope| {
            let handles: Vec<_> = self
                .older
                .iter()
                .map(|(version, p)| {
                    let load = move || load_release(p, *version);
                    match std::thread::Builder::new().spawn_scoped(scope, load) {
                        Ok(h) => Err(h),
                        // No thread to be had: load it here.
                        Err(_) => Ok(load_release(p, *version)),
                    }
                })
                .collect();
            let main = qapi_parser::load(path, &self.options).map_err(Error::from);
            let older: Vec<Result<qapi_parser::Schema, Error>> = handles
                .into_iter()
                .zip(&self.older)
                .map(|(h, (version, p))| match h {
                    Ok(r) => r,
                    Err(h) => h.join().unwrap_or_else(|_| load_release(p, *version)),
                })
                .collect();
            (main, older)
        });
        let mut files = vec![path.to_owned()];
        files.extend(self.older.iter().map(|(_, p)| p.clone()));
        for s in main.iter().chain(older.iter().flatten()) {
            files.extend(s.files.iter().cloned());
        }
        files.sort();
        files.dedup();
        let result = (|| {
            let main = main?;
            let older: Vec<(QemuVersion, qapi_parser::Schema)> = self
                .older
                .iter()
                .map(|(v, _)| *v)
                .zip(older)
                .map(|(v, s)| s.map(|s| (v, s)))
                .collect::<Result<_, _>>()?;
            let older: Vec<Release<'_>> = older
                .iter()
                .map(|(version, schema)| Release {
                    version: *version,
                    schema,
                })
                .collect();
            let label = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            Ok(self.generate_with(&main, &older, &label))
        })();
        (result, files)
    }
}

/// Loads an older release's schema under the rules that release's front end applies.
fn load_release(path: &Path, version: QemuVersion) -> Result<qapi_parser::Schema, Error> {
    let options = qapi_parser::Options::for_release(&version.to_string())
        .map_err(|e| Error::Release(version, e.to_string()))?;
    Ok(qapi_parser::load(path, &options)?)
}

/// Writes `text` to `path` unless it already holds exactly that (keeps mtimes stable).
pub fn write_if_changed(path: &Path, text: &str) -> Result<(), Error> {
    if std::fs::read_to_string(path).is_ok_and(|old| old == text) {
        return Ok(());
    }
    std::fs::write(path, text).map_err(|e| Error::Io(path.to_owned(), e))
}

/// The common case: generates the schema at `schema` into `OUT_DIR/out` with the
/// default [`Config`].
pub fn compile(schema: impl AsRef<Path>, out: impl AsRef<Path>) -> Result<(), Error> {
    Config::new().compile(schema, out)
}
