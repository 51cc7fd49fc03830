//! Parse-phase conformance over QEMU's suite: parse-phase cases must fail with the
//! exact `.err` text, every other case must get through the parse phase.

use std::path::PathBuf;

use super::*;

/// `../shared/qemu` beside the repository, or `$QAPI_SHARED_DIR`.
fn shared_dir() -> PathBuf {
    match std::env::var_os("QAPI_SHARED_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/qemu"),
    }
}

/// Parses `path` and renders the error as the suite's `.err` (folder prefix removed).
fn run(dir: &Path, name: &str, options: &Options) -> Result<ParseOutput, String> {
    parse(&dir.join(name), options)
        .map_err(|e| format!("{e}\n").replace(&format!("{}/", dir.display()), ""))
}

#[test]
fn suite() {
    let tests = shared_dir().join("10.0.2/tests");
    let dir = tests.join("qapi-schema");
    let tsv = std::fs::read_to_string(tests.join("ground-truth.tsv")).expect("ground truth");
    let (mut exact, mut total, mut failures) = (0, 0, Vec::new());
    for row in tsv.lines().skip(1) {
        let cols: Vec<&str> = row.split('\t').collect();
        let (name, result, phase) = (cols[0], cols[1], cols[10]);
        if result == "no-json" || !dir.join(format!("{name}.json")).exists() {
            continue;
        }
        let got = run(&dir, &format!("{name}.json"), &Options::default());
        if matches!(phase, "parse" | "parse-sem" | "io") {
            total += 1;
            let want = std::fs::read_to_string(dir.join(format!("{name}.err"))).unwrap_or_default();
            match got {
                Err(e) if e == want => exact += 1,
                Err(e) => failures.push(format!("{name}: want\n{want}got\n{e}")),
                Ok(_) => failures.push(format!("{name}: want\n{want}got success")),
            }
        } else if let Err(e) = got {
            failures.push(format!("{name}: must pass the parse phase, got\n{e}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{exact}/{total} exact\n{}",
        failures.join("\n")
    );
    eprintln!("{exact}/{total} parse-phase cases exact");
}

#[test]
fn real_schemas() {
    let shared = shared_dir();
    for schema in ["qapi", "qga", "storage-daemon/qapi"] {
        let path = shared.join(format!("10.0.2/{schema}/qapi-schema.json"));
        let out = parse(&path, &Options::default()).unwrap_or_else(|e| panic!("{e}"));
        assert!(out.warnings.is_empty());
        let path = shared.join(format!("7.2.0/{schema}/qapi-schema.json"));
        assert!(
            parse(&path, &Options::default()).is_err(),
            "7.2 {schema} needs Legacy"
        );
        let legacy = Options {
            compat: Compat::Legacy,
        };
        let out = parse(&path, &legacy).unwrap_or_else(|e| panic!("{e}"));
        assert!(!out.warnings.is_empty());
    }
}
