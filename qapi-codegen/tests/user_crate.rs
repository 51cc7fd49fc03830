//! The README's build-script setup, end to end: a scratch crate outside the workspace
//! generates every hazard schema of `schema/` with `qapi_codegen::compile` in its
//! `build.rs`, the way a user's crate does (the code refers to `::qapi_runtime`, not
//! `crate`), compiles it under `#![deny(warnings)]` with only `qapi-runtime` and
//! `serde_json` as dependencies (no `serde`, no `qmp-types`), and runs a typed round trip;
//! then documents it under `-D warnings`, so every intra-doc link the docs' cross
//! references became resolves from a module of the user's choosing.

use std::path::{Path, PathBuf};
use std::process::Command;

#[test]
fn build_script_setup_compiles_in_a_users_crate() {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let root = manifest.join("..");
    let target = match std::env::var_os("CARGO_TARGET_DIR") {
        Some(t) => PathBuf::from(t),
        None => root.join("target"),
    };
    let krate = target.join("user-crate");
    std::fs::create_dir_all(krate.join("src")).unwrap();
    let write = |p: &str, text: &str| qapi_codegen::write_if_changed(&krate.join(p), text).unwrap();
    let path = |p: &str| root.join(p).canonicalize().unwrap().display().to_string();
    write(
        "Cargo.toml",
        &format!(
            "[package]\nname = \"user-crate\"\nversion = \"0.0.0\"\nedition = \"2021\"\npublish = false\n\n\
             [dependencies]\nqapi-runtime = {{ path = {:?} }}\nserde_json = \"1\"\n\n\
             [build-dependencies]\nqapi-codegen = {{ path = {:?} }}\n\n[workspace]\n",
            path("qapi-runtime"),
            path("qapi-codegen"),
        ),
    );
    let schemas = [
        "alternates",
        "builtins",
        "commands",
        "doc-links",
        "docs-examples",
        "features-conditions",
        "flat-union",
        "keyword-names",
        "name-clashes",
        "recursion",
    ];
    let mut build = String::from("//! Generates the hazard schemas.\n\nfn main() {\n");
    let mut main = String::from(
        "//! Includes the generated modules and runs a round trip.\n\n\
         #![deny(warnings)]\n#![allow(missing_docs)]\n\n",
    );
    for s in schemas {
        let module = s.replace('-', "_");
        build.push_str(&format!(
            "    qapi_codegen::compile({:?}, \"{module}.rs\").unwrap();\n",
            root.join("schema")
                .join(format!("{s}.json"))
                .display()
                .to_string()
        ));
        main.push_str(&format!(
            "pub mod {module} {{\n    include!(concat!(env!(\"OUT_DIR\"), \"/{module}.rs\"));\n}}\n"
        ));
    }
    build.push_str("}\n");
    main.push_str(
        "\nfn main() {\n    \
         use qapi_runtime::Command;\n    \
         let text = r#\"{\"driver\":\"file\",\"filename\":\"/f\",\"node-name\":\"n\"}\"#;\n    \
         let o: flat_union::Opts = serde_json::from_str(text).unwrap();\n    \
         let mut out = Vec::new();\n    \
         flat_union::commands::AddOpts(o).write_arguments(&mut out).unwrap();\n    \
         println!(\"{}\", String::from_utf8(out).unwrap());\n}\n",
    );
    write("build.rs", &build);
    write("src/main.rs", &main);
    // The workspace's lock file pins the same dependency versions, offline.
    if !krate.join("Cargo.lock").exists() {
        std::fs::copy(root.join("Cargo.lock"), krate.join("Cargo.lock")).unwrap();
    }
    let out = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .current_dir(&krate)
        .env("CARGO_TARGET_DIR", target.join("user-crate-target"))
        .args(["run", "--quiet", "--offline"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        stdout.trim(),
        r#"{"node-name":"n","driver":"file","filename":"/f"}"#
    );
    let doc = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .current_dir(&krate)
        .env("CARGO_TARGET_DIR", target.join("user-crate-target"))
        .env("RUSTDOCFLAGS", "-D warnings")
        .args(["doc", "--quiet", "--offline", "--no-deps"])
        .output()
        .unwrap();
    assert!(
        doc.status.success(),
        "cargo doc:\n{}",
        String::from_utf8_lossy(&doc.stderr)
    );
}
