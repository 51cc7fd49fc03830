//! Conformance against QEMU 10.0.2's own QAPI test suite (levels L0-L4), the golden
//! dumps of the three real schemas, QEMU 7.2.0's schemas under `Compat::Legacy`, and
//! our own cases in `tests/data/` (expected `.err`/`.out`, `UPDATE_EXPECT=1` rewrites).
//!
//! A plain `main` (`harness = false`): cases run with the working directory set to
//! their folder and a bare file name, exactly as QEMU's suite runs them, and the
//! working directory is process-wide.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use qapi_parser::{Compat, Options};

/// `../shared/qemu` beside the repository, or `$QAPI_SHARED_DIR`.
fn shared_dir() -> PathBuf {
    match std::env::var_os("QAPI_SHARED_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/qemu"),
    }
}

/// Include-only helpers of QEMU's suite: not cases of their own.
const HELPERS: &[&str] = &[
    "include-cycle-b",
    "include-cycle-c",
    "include-repetition-sub",
    "include-simple-sub",
    "sub-sub-module",
];

/// What loading a schema produced: `(err text, out text)`.
struct Outcome {
    err: String,
    out: String,
}

/// Loads `name` with the working directory set to `dir`.
fn run(dir: &Path, name: &str, options: &Options) -> Outcome {
    let prev = std::env::current_dir().expect("cwd");
    std::env::set_current_dir(dir).expect("chdir to case folder");
    let result = qapi_parser::load(name, options);
    std::env::set_current_dir(prev).expect("chdir back");
    match result {
        Ok(schema) => {
            let mut err = String::new();
            for w in &schema.warnings {
                let _ = writeln!(err, "{w}");
            }
            Outcome {
                err,
                out: qapi_parser::dump(&schema),
            }
        }
        Err(e) => Outcome {
            err: format!("{e}\n"),
            out: String::new(),
        },
    }
}

/// The primary error line of an `.err` text: the first line that is neither an
/// include-chain line nor the `In META 'NAME':` context.
fn primary(err: &str) -> &str {
    err.lines()
        .find(|l| {
            !(l.starts_with("In file included from ") || (l.contains(": In ") && l.ends_with("':")))
        })
        .unwrap_or("")
}

/// `FILE:LINE[:COL]` of a primary error line (everything before the first `": "`).
fn location(line: &str) -> &str {
    line.split(": ").next().unwrap_or("")
}

fn message(line: &str) -> &str {
    line.split_once(": ").map_or(line, |(_, m)| m)
}

/// The first level (L0-L4) at which `got` disagrees with the expectation, if any.
fn broken_level(exp_err: &str, exp_out: &str, got: &Outcome) -> Option<usize> {
    if exp_err.is_empty() != got.err.is_empty() {
        return Some(0);
    }
    let (pe, pg) = (primary(exp_err), primary(&got.err));
    if location(pe) != location(pg) {
        return Some(1);
    }
    if message(pe) != message(pg) {
        return Some(2);
    }
    if exp_err != got.err {
        return Some(3);
    }
    if exp_out != got.out {
        return Some(4);
    }
    None
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// QEMU's suite: every case, levels L0-L4. Returns failure descriptions.
fn suite(failures: &mut Vec<String>) {
    let dir = shared_dir().join("10.0.2/tests/qapi-schema");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| {
            panic!(
                "no QEMU suite at {}: {e} (set QAPI_SHARED_DIR)",
                dir.display()
            )
        })
        .filter_map(|e| {
            let n = e.ok()?.file_name().into_string().ok()?;
            n.strip_suffix(".err").map(str::to_string)
        })
        .filter(|n| !HELPERS.contains(&n.as_str()))
        .collect();
    names.sort();
    let mut passed = [0usize; 5];
    let mut applicable = [0usize; 5];
    for name in &names {
        let exp_err = read(&dir.join(format!("{name}.err")));
        let exp_out = read(&dir.join(format!("{name}.out")));
        let got = run(&dir, &format!("{name}.json"), &Options::default());
        let broken = broken_level(&exp_err, &exp_out, &got);
        // L4 applies to accepted cases only.
        let levels = if exp_err.is_empty() { 5 } else { 4 };
        for level in 0..levels {
            applicable[level] += 1;
            if broken.is_none_or(|b| b > level) {
                passed[level] += 1;
            }
        }
        if let Some(level) = broken {
            failures.push(format!(
                "suite case {name}: broke at L{level}\n--- expected .err\n{exp_err}--- got .err\n{}{}",
                got.err,
                if level == 4 {
                    diff_hint(&exp_out, &got.out)
                } else {
                    String::new()
                }
            ));
        }
    }
    println!("QEMU 10.0.2 suite: {} cases", names.len());
    for level in 0..5 {
        println!("  L{level}: {}/{}", passed[level], applicable[level]);
    }
}

/// Both dumps when they are short, else the first differing line of each with a
/// little context.
fn diff_hint(exp: &str, got: &str) -> String {
    if exp == got {
        return String::new();
    }
    if exp.len() + got.len() < 6000 {
        return format!("--- expected .out\n{exp}--- got .out\n{got}");
    }
    let (e, g): (Vec<&str>, Vec<&str>) = (exp.lines().collect(), got.lines().collect());
    let i = e.iter().zip(&g).take_while(|(a, b)| a == b).count();
    let from = i.saturating_sub(3);
    format!(
        "--- expected .out from line {}\n{}\n--- got .out from line {}\n{}\n",
        from + 1,
        e[from..e.len().min(i + 3)].join("\n"),
        from + 1,
        g[from..g.len().min(i + 3)].join("\n"),
    )
}

/// The dumps of QEMU 10.0.2's three real schemas against the reference's goldens.
fn goldens(failures: &mut Vec<String>) {
    let root = shared_dir().join("10.0.2");
    for (folder, golden) in [
        ("qapi", "q10-qapi.out"),
        ("qga", "q10-qga.out"),
        ("storage-daemon/qapi", "q10-storage-daemon.out"),
    ] {
        let got = run(&root.join(folder), "qapi-schema.json", &Options::default());
        let exp = read(&root.join("golden").join(golden));
        if got.err.is_empty() && got.out == exp {
            println!("golden {golden}: identical ({} bytes)", exp.len());
        } else {
            println!("golden {golden}: DIFFERENT");
            failures.push(format!(
                "golden {golden}\n--- got .err\n{}{}",
                got.err,
                diff_hint(&exp, &got.out)
            ));
        }
    }
}

/// QEMU 7.2.0's schemas: they load under `Compat::Legacy` and fail under the default.
fn legacy(failures: &mut Vec<String>) {
    let root = shared_dir().join("7.2.0");
    let mut legacy = Options::default();
    legacy.compat = Compat::Legacy;
    for folder in ["qapi", "qga", "storage-daemon/qapi"] {
        let dir = root.join(folder);
        let relaxed = run(&dir, "qapi-schema.json", &legacy);
        let strict = run(&dir, "qapi-schema.json", &Options::default());
        let warnings = relaxed
            .err
            .lines()
            .filter(|l| l.starts_with("warning: "))
            .count();
        let loaded = !relaxed.out.is_empty();
        let rejected = strict.out.is_empty() && !strict.err.is_empty();
        println!(
            "7.2.0 {folder}: Legacy {} ({warnings} warnings), default {}",
            if loaded { "loads" } else { "FAILS" },
            if rejected { "rejects" } else { "ACCEPTS" }
        );
        // Tally the warnings by kind (message with quoted names blanked).
        let mut kinds = std::collections::BTreeMap::new();
        for l in relaxed.err.lines() {
            let l = l.trim_start_matches("warning: ");
            if primary(l).is_empty() {
                continue;
            }
            let msg = message(l);
            let kind: String = msg
                .split('\'')
                .enumerate()
                .map(|(i, p)| if i % 2 == 1 { "_" } else { p })
                .collect::<Vec<_>>()
                .join("'");
            *kinds.entry(kind).or_insert(0) += 1;
        }
        for (kind, n) in kinds {
            println!("    {n:4} x {kind}");
        }
        if !loaded {
            failures.push(format!("7.2.0 {folder} under Legacy:\n{}", relaxed.err));
        }
        if !rejected {
            failures.push(format!("7.2.0 {folder} accepted under the default rules"));
        }
    }
}

/// Our own cases: `tests/data/NAME.json` with expected `NAME.err` and `NAME.out`
/// (missing means empty). Cases named `legacy-*` load under `Compat::Legacy`; their
/// `.err` also holds the warnings.
fn own_cases(failures: &mut Vec<String>) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data");
    let update = std::env::var_os("UPDATE_EXPECT").is_some();
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .map(|rd| {
            rd.filter_map(|e| {
                let n = e.ok()?.file_name().into_string().ok()?;
                n.strip_suffix(".json").map(str::to_string)
            })
            .collect()
        })
        .unwrap_or_default();
    names.retain(|n| !n.ends_with("-sub"));
    names.sort();
    let mut ok = 0;
    for name in &names {
        let mut options = Options::default();
        if name.starts_with("legacy-") {
            options.compat = Compat::Legacy;
        }
        let got = run(&dir, &format!("{name}.json"), &options);
        let (err_path, out_path) = (
            dir.join(format!("{name}.err")),
            dir.join(format!("{name}.out")),
        );
        if update {
            for (path, text) in [(&err_path, &got.err), (&out_path, &got.out)] {
                if text.is_empty() {
                    let _ = std::fs::remove_file(path);
                } else {
                    std::fs::write(path, text).expect("write expectation");
                }
            }
            ok += 1;
            continue;
        }
        let (exp_err, exp_out) = (read(&err_path), read(&out_path));
        if exp_err == got.err && exp_out == got.out {
            ok += 1;
        } else {
            failures.push(format!(
                "own case {name} (UPDATE_EXPECT=1 to accept)\n--- expected .err\n{exp_err}--- got .err\n{}{}",
                got.err,
                diff_hint(&exp_out, &got.out)
            ));
        }
    }
    println!("own cases (tests/data): {ok}/{}", names.len());
}

fn main() {
    let mut failures = Vec::new();
    suite(&mut failures);
    goldens(&mut failures);
    legacy(&mut failures);
    own_cases(&mut failures);
    if !failures.is_empty() {
        for f in &failures {
            eprintln!("\n==== {f}");
        }
        eprintln!("\n{} conformance failure(s)", failures.len());
        std::process::exit(1);
    }
}
