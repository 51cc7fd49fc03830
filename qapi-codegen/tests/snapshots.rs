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
    cfg.crate_path("crate");
    let text = cfg.generate(&loaded, &label);
    expect_test::expect_file![format!("snapshots/{name}.rs")].assert_eq(&text);
    // The IR too, so a changed snapshot tells whether lowering or emission moved.
    let ir = cfg.lower(&loaded, &label);
    expect_test::expect_file![format!("snapshots/{name}.ir.txt")].assert_eq(&format!("{ir:#?}\n"));
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
