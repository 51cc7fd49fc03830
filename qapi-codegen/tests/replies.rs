//! Real traffic: generate the QMP API of QEMU 7.2.0 and decode every reply of the
//! transcript recorded from it (`../shared/qemu/replies/caps_7.2.0_x86_64.replies`)
//! through `AnyReturn::decode`, each serializing back to equal JSON.
//!
//! The generated code is compiled in a scratch crate (in the target folder) so this
//! test needs no build script; it is slow the first time (a debug build of ~2 MB of
//! generated code).

use std::path::{Path, PathBuf};
use std::process::Command;

fn shared_dir() -> PathBuf {
    match std::env::var_os("QAPI_SHARED_DIR") {
        Some(d) => PathBuf::from(d),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/qemu"),
    }
}

#[test]
fn qemu_7_2_replies_round_trip() {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let shared = shared_dir();
    let schema = shared.join("7.2.0/qapi/qapi-schema.json");
    let mut options = qapi_parser::Options::default();
    options.compat = qapi_parser::Compat::Legacy;
    let loaded = qapi_parser::load(&schema, &options).unwrap_or_else(|e| panic!("{e}"));
    let mut cfg = qapi_codegen::Config::new();
    cfg.provenance("QEMU 7.2.0");
    let code = cfg.generate(&loaded, "qapi-schema.json");

    let target = match std::env::var_os("CARGO_TARGET_DIR") {
        Some(t) => PathBuf::from(t),
        None => manifest.join("../target"),
    };
    let krate = target.join("replies-7.2.0");
    std::fs::create_dir_all(krate.join("src")).unwrap();
    let write = |p: &str, text: &str| qapi_codegen::write_if_changed(&krate.join(p), text).unwrap();
    let runtime = manifest.join("../qapi-runtime").canonicalize().unwrap();
    write(
        "Cargo.toml",
        &format!(
            "[package]\nname = \"replies\"\nversion = \"0.0.0\"\nedition = \"2021\"\npublish = false\n\n\
             [dependencies]\nqapi-runtime = {{ path = {:?} }}\nserde_json = \"1\"\n\n[workspace]\n",
            runtime.display().to_string()
        ),
    );
    write("src/qmp.rs", &code);
    let copy = |from: PathBuf, to: &str| write(to, &std::fs::read_to_string(from).unwrap());
    copy(manifest.join("tests/programs/replies.rs"), "src/main.rs");
    // Pin the same serde versions as the workspace, offline.
    let lock = manifest.join("../Cargo.lock");
    if !krate.join("Cargo.lock").exists() {
        std::fs::copy(&lock, krate.join("Cargo.lock")).unwrap();
    }
    let out = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .current_dir(&krate)
        .env("CARGO_TARGET_DIR", target.join("replies-target"))
        .args(["run", "--quiet", "--offline", "--"])
        .arg(shared.join("replies/caps_7.2.0_x86_64.replies"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{stdout}");
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
