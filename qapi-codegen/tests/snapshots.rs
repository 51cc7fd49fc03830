//! Snapshot tests: the code generated for each of our test schemas in `schema/*.json`
//! must equal `tests/snapshots/<name>.rs` (update with `UPDATE_EXPECT=1`). The
//! snapshots are compiled under `#![deny(warnings)]` by `tests/generated.rs`.

use std::path::{Path, PathBuf};

fn schema_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../schema")
}

fn check(schema: &Path) {
    let loaded = qapi_parser::load(schema, &qapi_parser::Options::default())
        .unwrap_or_else(|e| panic!("{e}"));
    let name = schema.file_stem().unwrap().to_string_lossy().into_owned();
    let label = schema.file_name().unwrap().to_string_lossy().into_owned();
    let mut cfg = qapi_codegen::Config::new();
    let older = older_releases(schema, &mut cfg);
    let older: Vec<qapi_codegen::Release<'_>> = older
        .iter()
        .map(|(version, schema)| qapi_codegen::Release {
            version: *version,
            schema,
        })
        .collect();
    let text = cfg.generate_with(&loaded, &older, &label);
    expect_test::expect_file![format!("snapshots/{name}.rs")].assert_eq(&text);
    // The IR too, so a changed snapshot tells whether lowering or emission moved.
    let ir = cfg.lower_with(&loaded, &older, &label);
    expect_test::expect_file![format!("snapshots/{name}.ir.txt")].assert_eq(&format!("{ir:#?}\n"));
}

/// The older releases of a hazard schema `NAME.json`: `NAME.older/X.Y.json`, with the
/// range's start in `NAME.older/min_qemu`.
fn older_releases(
    schema: &Path,
    cfg: &mut qapi_codegen::Config,
) -> Vec<(qapi_codegen::QemuVersion, qapi_parser::Schema)> {
    let dir = schema.with_extension("older");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let min = std::fs::read_to_string(dir.join("min_qemu")).expect("NAME.older/min_qemu");
    cfg.min_qemu(qapi_codegen::QemuVersion::parse(&min).expect("min_qemu is X.Y"));
    let mut out: Vec<_> = entries
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .map(|p| {
            let v = p.file_stem().unwrap().to_string_lossy().into_owned();
            let v = qapi_codegen::QemuVersion::parse(&v).expect("older schemas are X.Y.json");
            let s = qapi_parser::load(&p, &qapi_parser::Options::default())
                .unwrap_or_else(|e| panic!("{e}"));
            (v, s)
        })
        .collect();
    out.sort_by_key(|(v, _)| *v);
    out
}

#[test]
fn snapshots() {
    let mut schemas: Vec<PathBuf> = std::fs::read_dir(schema_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    schemas.sort();
    assert!(schemas.len() >= 8, "test schemas missing");
    for s in &schemas {
        check(s);
    }
}

#[test]
fn generation_is_deterministic() {
    let schema = schema_dir().join("flat-union.json");
    let loaded = qapi_parser::load(&schema, &qapi_parser::Options::default()).unwrap();
    let cfg = qapi_codegen::Config::new();
    assert_eq!(cfg.generate(&loaded, "x"), cfg.generate(&loaded, "x"));
}

#[test]
fn filter_keeps_what_the_kept_entities_use() {
    let schema = schema_dir().join("commands.json");
    let loaded = qapi_parser::load(&schema, &qapi_parser::Options::default()).unwrap();
    let mut cfg = qapi_codegen::Config::new();
    cfg.filter(|name| name == "query-infos" || name == "CHANGED");
    let ir = cfg.lower(&loaded, "commands.json");
    let names = |items: &[qapi_codegen::ir::Item]| -> Vec<String> {
        items
            .iter()
            .map(|i| match i {
                qapi_codegen::ir::Item::Struct(s) => s.meta.ident.clone(),
                qapi_codegen::ir::Item::Enum(e) => e.meta.ident.clone(),
                qapi_codegen::ir::Item::Union(u) => u.meta.ident.clone(),
                qapi_codegen::ir::Item::Alternate(a) => a.meta.ident.clone(),
            })
            .collect()
    };
    assert_eq!(names(&ir.types), ["Info"]);
    assert_eq!(names(&ir.commands.items), ["QueryInfos"]);
    assert_eq!(names(&ir.events.items), ["Changed"]);
}
