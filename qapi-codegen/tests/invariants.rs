//! ARCHITECTURE.md's invariants that are properties of the code rather than of its
//! source text (those are `xtask`'s tidy tests): output is deterministic, and every
//! error prints its cause once.

use std::path::{Path, PathBuf};

fn schema_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../schema")
}

/// Our hazard schemas, and the imported guest agent schema when it is there.
fn schemas() -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(schema_dir())
        .expect("schema/")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    out.sort();
    let qga =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../qmp-types/qemu-schema/qga/qapi-schema.json");
    if qga.is_file() {
        out.push(qga);
    }
    out
}

/// Output is deterministic: generating the same schema twice (each with its own hash
/// seeds and threads) gives the same bytes.
#[test]
fn generation_twice_gives_identical_bytes() {
    for path in schemas() {
        let generate = || {
            let schema = qapi_parser::load(&path, &qapi_parser::Options::default())
                .unwrap_or_else(|e| panic!("{e}"));
            qapi_codegen::Config::new().generate(&schema, "x.json")
        };
        assert!(
            generate() == generate(),
            "{}: two runs differ",
            path.display()
        );
    }
}

/// No error's `Display` repeats the text of its `source()` (so `{:#}` and anyhow-style
/// chains print every cause once).
fn assert_cause_once(error: &dyn std::error::Error) {
    let mut current = error;
    while let Some(source) = current.source() {
        let (text, cause) = (current.to_string(), source.to_string());
        assert!(
            !text.contains(&cause),
            "`{text}` repeats its source's text `{cause}`"
        );
        current = source;
    }
}

#[test]
fn errors_print_their_cause_once() {
    let dir = std::env::temp_dir().join(format!("qapi-invariants-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("bad.json");
    std::fs::write(&bad, "{ 'struct': 'S', 'data': { 'a': 'Nope' } }\n").unwrap();
    let good = schema_dir().join("commands.json");

    let mut errors: Vec<Box<dyn std::error::Error>> = Vec::new();
    // qapi-parser: a schema error, a missing file, a bad release.
    errors.push(Box::new(
        qapi_parser::load(&bad, &qapi_parser::Options::default()).unwrap_err(),
    ));
    errors.push(Box::new(
        qapi_parser::load(dir.join("missing.json"), &qapi_parser::Options::default()).unwrap_err(),
    ));
    errors.push(Box::new(
        qapi_parser::Options::for_release("1.0").unwrap_err(),
    ));
    // qapi-codegen: every variant of its error.
    let mut cfg = qapi_codegen::Config::new();
    cfg.rerun_if_changed(false);
    errors.push(Box::new(cfg.compile(&bad, dir.join("out.rs")).unwrap_err()));
    errors.push(Box::new(
        cfg.compile(&good, dir.join("no/such/dir/out.rs"))
            .unwrap_err(),
    ));
    errors.push(Box::new(qapi_codegen::Error::NoOutDir));
    errors.push(Box::new(qapi_codegen::Error::Release(
        qapi_codegen::QemuVersion::new(1, 0),
        "no rules".to_owned(),
    )));
    for e in &errors {
        assert_cause_once(e.as_ref());
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
