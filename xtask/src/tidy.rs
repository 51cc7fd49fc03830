//! The repository's invariants, checked as tests (`cargo test -p xtask`) and by `cargo xtask tidy`.
//!
//! - every `.rs` file starts with a `//!` line saying what it is for (generated files,
//!   whose first line carries `@generated`, are exempt);
//! - no file of QEMU's reference material (`../shared/qemu`) or of the QEMU releases fetched
//!   by `cargo xtask qemu fetch` (when fetched) is in the repository, byte for byte;
//! - every crate of the workspace inherits the workspace's lints;
//! - the crate boundaries of ARCHITECTURE.md's invariants ([`BOUNDARIES`]);
//! - no hand-written `.rs` file is over [`MAX_LINES`] lines, and ARCHITECTURE.md is at
//!   most [`MAX_MAP_BYTES`] bytes;
//! - `qapi-parser` never mentions Rust (its names, tools or crates);
//! - emission decides nothing: `qapi-codegen`'s `emit` files compare no strings, rewrite
//!   no text and call neither the docs conversion nor the naming module;
//! - the parser's doc reader reaches the parser only through its cursor;
//! - `qapi-codegen` keeps unordered collections out of everything but lookups;
//! - build scripts use no network or process API, and report what they read.
//!
//! "In the repository" means tracked or not ignored by git (`git ls-files --cached --others
//! --exclude-standard`), so the imported schema (`qmp-types/qemu-schema/`) does not count.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::util::{repo_root, shared_qemu_dir};
use crate::Result;

/// Files this small are too generic to be copies (QEMU has empty `.out` files, for instance).
const MIN_COPY_SIZE: u64 = 32;

/// `cargo xtask tidy`: runs every check and lists the problems.
pub(crate) fn run(args: &[String]) -> Result {
    if let Some(arg) = args.first() {
        return Err(format!("unexpected argument `{arg}`").into());
    }
    let files = repo_files()?;
    let mut problems = Vec::new();
    problems.extend(module_docs(&files));
    problems.extend(qemu_copies(&files)?);
    problems.extend(lints(&files));
    problems.extend(boundaries());
    problems.extend(long_files(&files));
    problems.extend(map_size());
    problems.extend(source_rules(&files));
    problems.extend(build_scripts(&files));
    if problems.is_empty() {
        println!("tidy: {} files, no problems", files.len());
        Ok(())
    } else {
        for problem in &problems {
            println!("{problem}");
        }
        Err(format!("{} problem(s)", problems.len()).into())
    }
}

/// The repository's files (relative paths, sorted) that exist in the working tree.
fn repo_files() -> Result<Vec<PathBuf>> {
    let root = repo_root();
    let output = std::process::Command::new("git")
        .current_dir(&root)
        .args([
            "ls-files",
            "-z",
            "--cached",
            "--others",
            "--exclude-standard",
        ])
        .output();
    let mut files: Vec<PathBuf> = match output {
        Ok(output) if output.status.success() => output
            .stdout
            .split(|&byte| byte == 0)
            .filter(|name| !name.is_empty())
            .map(|name| PathBuf::from(String::from_utf8_lossy(name).into_owned()))
            .collect(),
        // No git (an unpacked archive): walk the tree, skipping what .gitignore lists.
        _ => {
            let mut files = Vec::new();
            walk(&root, Path::new(""), &mut files)?;
            files
        }
    };
    files.retain(|file| root.join(file).is_file());
    files.sort();
    files.dedup();
    Ok(files)
}

/// Folders never part of the repository (build output and imports; see `.gitignore`).
fn ignored_dir(rel: &Path) -> bool {
    let name = rel.file_name().and_then(|name| name.to_str()).unwrap_or("");
    name == ".git"
        || name == "target"
        || rel == Path::new(crate::prepare::IMPORT_DIR)
        || rel == Path::new(crate::schema::OLDER_DIR)
        || rel.starts_with("fuzz/corpus")
        || rel.starts_with("fuzz/artifacts")
}

fn walk(root: &Path, rel: &Path, files: &mut Vec<PathBuf>) -> Result {
    for entry in std::fs::read_dir(root.join(rel))? {
        let entry = entry?;
        let rel = rel.join(entry.file_name());
        let kind = entry.file_type()?;
        if kind.is_dir() {
            if !ignored_dir(&rel) {
                walk(root, &rel, files)?;
            }
        } else if kind.is_file() {
            files.push(rel);
        }
    }
    Ok(())
}

/// Every `.rs` file starts with a `//!` line (or is marked `@generated` on its first line).
fn module_docs(files: &[PathBuf]) -> Vec<String> {
    let root = repo_root();
    files
        .iter()
        .filter(|file| file.extension().is_some_and(|ext| ext == "rs"))
        .filter_map(|file| {
            let text = std::fs::read_to_string(root.join(file)).unwrap_or_default();
            let first = text.lines().next().unwrap_or("");
            if first.starts_with("//!") || first.contains("@generated") {
                None
            } else {
                Some(format!(
                    "{}: the first line must be a `//!` comment saying what the file is for",
                    file.display()
                ))
            }
        })
        .collect()
}

/// No file of the repository has exactly the content of a file of QEMU's reference material
/// or of a fetched release.
fn qemu_copies(files: &[PathBuf]) -> Result<Vec<String>> {
    let shared = shared_qemu_dir();
    if !shared.is_dir() {
        return Err(format!(
            "QEMU reference material not found at {} (set QAPI_SHARED_DIR)",
            shared.display()
        )
        .into());
    }
    let mut by_size: BTreeMap<u64, Vec<PathBuf>> = BTreeMap::new();
    let releases = crate::releases::cache_root();
    for dir in [&shared, &releases] {
        if !dir.is_dir() {
            continue;
        }
        let mut originals = Vec::new();
        walk(dir, Path::new(""), &mut originals)?;
        for original in originals {
            let path = dir.join(original);
            let size = std::fs::metadata(&path)?.len();
            if size >= MIN_COPY_SIZE {
                by_size.entry(size).or_default().push(path);
            }
        }
    }
    let root = repo_root();
    let mut problems = Vec::new();
    for file in files {
        let path = root.join(file);
        let Ok(meta) = std::fs::metadata(&path) else {
            continue;
        };
        let Some(candidates) = by_size.get(&meta.len()) else {
            continue;
        };
        let content = std::fs::read(&path)?;
        for candidate in candidates {
            if std::fs::read(candidate)? == content {
                problems.push(format!(
                    "{}: a copy of QEMU's {}; QEMU's files are read from ../shared/qemu or the release cache, never committed",
                    file.display(),
                    candidate
                        .strip_prefix(&shared)
                        .or_else(|_| candidate.strip_prefix(&releases))
                        .unwrap_or(candidate)
                        .display()
                ));
                // One report per file, even if several releases have the same file.
                break;
            }
        }
    }
    Ok(problems)
}

/// Every crate's `Cargo.toml` inherits the workspace lints (`[lints] workspace = true`).
///
/// The fuzz crate is its own workspace (it needs nightly-only flags and libFuzzer, which CI
/// does not build), so it cannot inherit them and is exempt.
fn lints(files: &[PathBuf]) -> Vec<String> {
    let root = repo_root();
    let mut problems = Vec::new();
    for file in files {
        if file.file_name().is_none_or(|name| name != "Cargo.toml") || file.starts_with("fuzz") {
            continue;
        }
        let text = std::fs::read_to_string(root.join(file)).unwrap_or_default();
        let lines: Vec<&str> = text
            .lines()
            .map(str::trim)
            .filter(|line| !line.is_empty() && !line.starts_with('#'))
            .collect();
        let ok = if file == Path::new("Cargo.toml") {
            lines
                .iter()
                .any(|line| line.starts_with("[workspace.lints"))
        } else {
            lines
                .windows(2)
                .any(|pair| pair[0] == "[lints]" && pair[1].replace(' ', "") == "workspace=true")
        };
        if !ok {
            problems.push(format!(
                "{}: must inherit the workspace lints (`[lints]` then `workspace = true`)",
                file.display()
            ));
        }
    }
    problems
}

/// A crate, the only normal dependencies it may have (`None`: any), and the
/// dependencies it must never have.
type Boundary = (
    &'static str,
    Option<&'static [&'static str]>,
    &'static [&'static str],
);

/// The architecture's boundaries, as crate dependencies.
const BOUNDARIES: &[Boundary] = &[
    // The parser knows nothing of Rust or of the transport.
    ("qapi-parser", Some(&["pest", "pest_derive", "memchr"]), &[]),
    // What generated code calls: serde and serde_json only (and no build script).
    ("qapi-runtime", Some(&["serde", "serde_json"]), &[]),
    // The transport does not depend on the generator or on generated code.
    (
        "qmp-client",
        None,
        &["qmp-types", "qapi-codegen", "qapi-parser"],
    ),
    // The generator does not depend on what it generates for.
    (
        "qapi-codegen",
        None,
        &["qapi-runtime", "qmp-client", "qmp-types"],
    ),
];

/// The names under `[dependencies]` of a manifest.
fn dependencies(manifest: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut inside = false;
    for line in manifest.lines().map(str::trim) {
        if line.starts_with('[') {
            inside = line == "[dependencies]";
        } else if inside && !line.is_empty() && !line.starts_with('#') {
            let name = line.split(['=', '.', ' ']).next().unwrap_or_default();
            out.push(name.to_owned());
        }
    }
    out
}

/// Every crate keeps to [`BOUNDARIES`]; `qapi-runtime` has no build script.
fn boundaries() -> Vec<String> {
    let root = repo_root();
    let mut problems = Vec::new();
    for (krate, only, never) in BOUNDARIES {
        let path = root.join(krate).join("Cargo.toml");
        let Ok(text) = std::fs::read_to_string(&path) else {
            problems.push(format!("{}: missing", path.display()));
            continue;
        };
        for dep in dependencies(&text) {
            if never.contains(&dep.as_str()) || only.is_some_and(|o| !o.contains(&dep.as_str())) {
                problems.push(format!(
                    "{krate}: must not depend on `{dep}` (see ARCHITECTURE.md, Invariants)"
                ));
            }
        }
    }
    if root.join("qapi-runtime/build.rs").exists() {
        problems.push("qapi-runtime: must have no build script".to_owned());
    }
    problems
}

/// Longer hand-written `.rs` files should be split by job.
const MAX_LINES: usize = 1000;

/// ARCHITECTURE.md is a map, not a history: at most this many bytes.
const MAX_MAP_BYTES: usize = 15_000;

/// ARCHITECTURE.md stays within [`MAX_MAP_BYTES`].
fn map_size() -> Vec<String> {
    match std::fs::metadata(repo_root().join("ARCHITECTURE.md")) {
        Ok(m) if m.len() as usize <= MAX_MAP_BYTES => Vec::new(),
        Ok(m) => vec![format!(
            "ARCHITECTURE.md: {} bytes, more than {MAX_MAP_BYTES}: numbers go to BENCHMARKS.md, history to commit messages",
            m.len()
        )],
        Err(e) => vec![format!("ARCHITECTURE.md: {e}")],
    }
}

/// Whether `file` is a hand-written Rust source: `.rs`, not a snapshot of generated code,
/// not marked `@generated`.
fn hand_written_rs(file: &Path, text: &str) -> bool {
    file.extension().is_some_and(|ext| ext == "rs")
        && !file.components().any(|c| c.as_os_str() == "snapshots")
        && !text.lines().next().unwrap_or("").contains("@generated")
}

/// No hand-written `.rs` file is over [`MAX_LINES`] lines.
fn long_files(files: &[PathBuf]) -> Vec<String> {
    let root = repo_root();
    let mut problems = Vec::new();
    for file in files {
        let Ok(text) = std::fs::read_to_string(root.join(file)) else {
            continue;
        };
        if !hand_written_rs(file, &text) {
            continue;
        }
        let lines = text.lines().count();
        let name = file.to_string_lossy().replace('\\', "/");
        if lines > MAX_LINES {
            problems.push(format!(
                "{name}: {lines} lines, more than {MAX_LINES}: split it by job"
            ));
        }
    }
    problems
}

/// A rule about what some source files never contain: the files (by path prefix, and
/// paths excepted), the forbidden texts, and why.
struct SourceRule {
    prefixes: &'static [&'static str],
    except: &'static [&'static str],
    forbidden: &'static [&'static str],
    why: &'static str,
}

const SOURCE_RULES: &[SourceRule] = &[
    SourceRule {
        prefixes: &["qapi-parser/src/"],
        // Unit tests may hold raw strings (`r#"`).
        except: &["tests.rs"],
        forbidden: &[
            "Rust",
            "rustdoc",
            "serde",
            "heck",
            "quote!",
            "syn::",
            "proc_macro",
            // QAPI's own rules say "CamelCase"; these are Rust's naming tools.
            "UpperCamel",
            "snake_case",
            "r#",
        ],
        why: "the parser knows nothing of Rust: Rust naming and layout are decided in qapi-codegen's lower",
    },
    SourceRule {
        prefixes: &["qapi-codegen/src/emit.rs", "qapi-codegen/src/emit/"],
        except: &[],
        forbidden: &[
            "crate::docs",
            "crate::names",
            "to_markdown",
            "== \"",
            "!= \"",
            ".starts_with(",
            ".ends_with(",
            ".contains(",
            ".replace(",
            ".split(",
            ".lines()",
            ".to_lowercase(",
            ".to_uppercase(",
        ],
        why: "emission makes no decisions: names, doc text and layout are decided in lower",
    },
    SourceRule {
        prefixes: &["qapi-parser/src/parser/doc.rs", "qapi-parser/src/parser/doc/"],
        except: &[],
        forbidden: &[
            "crate::parser::{",
            "crate::parser::Parser",
            "crate::parser::parse",
            "super::super",
            "get_expr",
        ],
        why: "the doc reader depends on the parser's cursor only (`parser::cursor`), never on the parser",
    },
    SourceRule {
        prefixes: &["qapi-codegen/src/"],
        // Lookups only; nothing iterates them.
        except: &["qapi-codegen/src/range.rs"],
        forbidden: &["HashMap", "HashSet"],
        why: "output is deterministic: ordered collections only",
    },
];

/// Whether `line` contains `word`, not as part of a longer name (`heck` is not in `check`).
fn contains_word(line: &str, word: &str) -> bool {
    let name_char = |c: char| c.is_alphanumeric() || c == '_';
    let starts = word.starts_with(name_char);
    let ends = word.ends_with(name_char);
    line.match_indices(word).any(|(at, _)| {
        let before = line[..at].chars().next_back();
        let after = line[at + word.len()..].chars().next();
        let longer_before = starts && before.is_some_and(name_char);
        let longer_after = ends && after.is_some_and(name_char);
        !(longer_before || longer_after)
    })
}

/// Every [`SOURCE_RULES`] rule holds.
fn source_rules(files: &[PathBuf]) -> Vec<String> {
    let root = repo_root();
    let mut problems = Vec::new();
    for file in files {
        let name = file.to_string_lossy().replace('\\', "/");
        if !name.ends_with(".rs") {
            continue;
        }
        for rule in SOURCE_RULES {
            if !rule.prefixes.iter().any(|p| name.starts_with(p))
                || rule.except.iter().any(|e| name.ends_with(e))
            {
                continue;
            }
            let text = std::fs::read_to_string(root.join(file)).unwrap_or_default();
            for (n, line) in text.lines().enumerate() {
                if let Some(word) = rule.forbidden.iter().find(|w| contains_word(line, w)) {
                    problems.push(format!("{name}:{}: `{word}`: {}", n + 1, rule.why));
                }
            }
        }
    }
    problems
}

/// What a build script must not name: network and process APIs (a process could reach
/// the network, or read files Cargo does not know of).
const BUILD_SCRIPT_FORBIDDEN: &[&str] = &[
    "std::net",
    "TcpStream",
    "UdpSocket",
    "ToSocketAddrs",
    "process::Command",
    "Command::new",
    "http://",
    "https://",
    "curl",
    "reqwest",
    "ureq",
];

/// Build scripts (`build.rs` and the modules beside it in `build/`) do no network I/O and
/// start no process; one that reads a file prints `cargo:rerun-if-changed`. (What
/// `qapi_codegen::compile` reads, it reports itself: every file the parser loaded.)
fn build_scripts(files: &[PathBuf]) -> Vec<String> {
    let root = repo_root();
    let mut problems = Vec::new();
    for file in files {
        let name = file.to_string_lossy().replace('\\', "/");
        let in_build_dir = file
            .parent()
            .is_some_and(|p| p.file_name().is_some_and(|n| n == "build"));
        let is_script = file.file_name().is_some_and(|n| n == "build.rs");
        if !(is_script || in_build_dir && name.ends_with(".rs")) || name.starts_with("fuzz/") {
            continue;
        }
        let text = std::fs::read_to_string(root.join(file)).unwrap_or_default();
        for (n, line) in text.lines().enumerate() {
            if let Some(word) = BUILD_SCRIPT_FORBIDDEN.iter().find(|w| line.contains(*w)) {
                problems.push(format!(
                    "{name}:{}: `{word}`: build scripts do no network I/O and start no process",
                    n + 1
                ));
            }
        }
        let reads = ["fs::read", "File::open", "read_dir"]
            .iter()
            .any(|r| text.contains(r));
        if is_script && reads && !text.contains("rerun-if-changed") {
            problems.push(format!(
                "{name}: reads files but prints no `cargo:rerun-if-changed`"
            ));
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_none(problems: Vec<String>) {
        assert!(problems.is_empty(), "\n{}\n", problems.join("\n"));
    }

    #[test]
    fn every_rs_file_starts_with_a_module_doc() {
        assert_none(module_docs(&repo_files().unwrap()));
    }

    #[test]
    fn no_qemu_file_is_committed() {
        assert_none(qemu_copies(&repo_files().unwrap()).unwrap());
    }

    #[test]
    fn crates_keep_the_architecture_boundaries() {
        assert_none(boundaries());
    }

    #[test]
    fn every_crate_inherits_the_workspace_lints() {
        assert_none(lints(&repo_files().unwrap()));
    }

    #[test]
    fn no_hand_written_file_is_over_the_limit() {
        assert_none(long_files(&repo_files().unwrap()));
    }

    #[test]
    fn the_architecture_map_stays_short() {
        assert_none(map_size());
    }

    #[test]
    fn sources_keep_the_architecture_rules() {
        assert_none(source_rules(&repo_files().unwrap()));
    }

    #[test]
    fn build_scripts_do_no_network_io() {
        assert_none(build_scripts(&repo_files().unwrap()));
    }

    #[test]
    fn checks_catch_what_they_should() {
        let root = repo_root();
        let rel = PathBuf::from(format!("target/tidy-selftest-{}", std::process::id()));
        let dir = root.join(&rel);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("no_doc.rs"), "fn main() {}\n").unwrap();
        std::fs::write(dir.join("Cargo.toml"), "[package]\nname = \"x\"\n").unwrap();
        std::fs::write(dir.join("long.rs"), "//! Long.\n".repeat(MAX_LINES + 1)).unwrap();
        std::fs::write(dir.join("build.rs"), "//! B.\nuse std::net::TcpStream;\n").unwrap();
        let shared = shared_qemu_dir().join("10.0.2/qga/qapi-schema.json");
        std::fs::copy(&shared, dir.join("copy.json")).unwrap();
        let files: Vec<PathBuf> = [
            "no_doc.rs",
            "Cargo.toml",
            "copy.json",
            "long.rs",
            "build.rs",
        ]
        .map(|name| rel.join(name))
        .to_vec();
        assert_eq!(module_docs(&files).len(), 1);
        assert_eq!(long_files(&files).len(), 1);
        assert_eq!(build_scripts(&files).len(), 1);
        assert!(contains_word("use heck::ToSnakeCase;", "heck"));
        assert!(!contains_word("fn check_docs()", "heck"));
        assert!(contains_word("if a == \"x\"", "== \""));
        assert_eq!(lints(&files).len(), 1);
        assert_eq!(qemu_copies(&files).unwrap().len(), 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
