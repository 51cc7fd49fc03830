//! Generates the typed QMP API (and, behind features, the guest agent and storage
//! daemon APIs) from QEMU's schema files, checked against the pin first.
//!
//! The files come from `qemu-schema/` (filled by `cargo xtask schema import`, ignored by
//! git, shipped in the package) or from the folder `QMP_TYPES_SCHEMA_DIR` names.

#[path = "build/pin.rs"]
#[allow(dead_code)] // `render` is for the importer.
mod pin;

use std::path::PathBuf;

/// (cargo feature or `None` for always, schema path under the import folder, output file).
const APIS: [(Option<&str>, &str, &str); 3] = [
    (None, "qapi/qapi-schema.json", "qmp.rs"),
    (Some("QGA"), "qga/qapi-schema.json", "qga.rs"),
    (
        Some("STORAGE_DAEMON"),
        "storage-daemon/qapi/qapi-schema.json",
        "storage_daemon.rs",
    ),
];

/// The oldest QEMU release the generated APIs support (the crate docs state it).
const MIN_QEMU: qapi_codegen::QemuVersion = qapi_codegen::QemuVersion::new(6, 2);

/// Older releases whose schemas tell what the supported range sends and requires, each
/// imported into `qemu-schema-older/X.Y/` and pinned in `qemu-schema-X.Y.pin`.
const OLDER: [qapi_codegen::QemuVersion; 3] = [
    qapi_codegen::QemuVersion::new(5, 2),
    qapi_codegen::QemuVersion::new(7, 2),
    qapi_codegen::QemuVersion::new(10, 2),
];

fn main() {
    if let Err(e) = run() {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), String> {
    let manifest =
        PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").ok_or("CARGO_MANIFEST_DIR unset")?);
    println!("cargo:rerun-if-env-changed=QMP_TYPES_SCHEMA_DIR");
    let dir = match std::env::var_os("QMP_TYPES_SCHEMA_DIR") {
        Some(d) => PathBuf::from(d),
        None => manifest.join("qemu-schema"),
    };
    let pin_path = manifest.join("qemu-schema.pin");
    println!("cargo:rerun-if-changed={}", pin_path.display());
    let pin_text =
        std::fs::read_to_string(&pin_path).map_err(|e| format!("{}: {e}", pin_path.display()))?;
    let pin = pin::Pin::parse(&pin_text).map_err(|e| format!("{}: {e}", pin_path.display()))?;
    if let Err(bad) = pin.verify(&dir) {
        return Err(format!(
            "qmp-types: QEMU {v}'s schema files in {d} are missing or differ from the pin \
             ({p}): {bad}.\n\nImport them, from the workspace root:\n\n    \
             cargo xtask schema import ../shared/qemu/{v}\n\n(or give the path of a QEMU {v} \
             source tree), or set QMP_TYPES_SCHEMA_DIR to a folder holding QEMU {v}'s \
             qapi/, qga/ and storage-daemon/ schema files.",
            v = pin.version,
            d = dir.display(),
            p = pin_path.display(),
        ));
    }
    println!("cargo:rustc-env=QMP_TYPES_MIN_QEMU={MIN_QEMU}");
    let older_root = manifest.join("qemu-schema-older");
    for v in OLDER {
        let pin_path = manifest.join(format!("qemu-schema-{v}.pin"));
        println!("cargo:rerun-if-changed={}", pin_path.display());
        let text = std::fs::read_to_string(&pin_path)
            .map_err(|e| format!("{}: {e}", pin_path.display()))?;
        let pin = pin::Pin::parse(&text).map_err(|e| format!("{}: {e}", pin_path.display()))?;
        let dir = older_root.join(v.to_string());
        if let Err(bad) = pin.verify(&dir) {
            return Err(format!(
                "qmp-types: QEMU {ver}'s schema files (for the supported range) in {d} are \
                 missing or differ from the pin ({p}): {bad}.\n\nImport them, from the \
                 workspace root:\n\n    cargo xtask prepare\n\n(or `cargo xtask schema import \
                 DIR --older` with a QEMU {ver} source tree).",
                ver = pin.version,
                d = dir.display(),
                p = pin_path.display(),
            ));
        }
    }
    for (feature, schema, out) in APIS {
        if let Some(f) = feature {
            if std::env::var_os(format!("CARGO_FEATURE_{f}")).is_none() {
                continue;
            }
        }
        let mut cfg = qapi_codegen::Config::new();
        cfg.crate_path("crate")
            .provenance(&format!("QEMU {}", pin.version))
            .min_qemu(MIN_QEMU);
        for v in OLDER {
            cfg.older_schema(v, older_root.join(v.to_string()).join(schema));
        }
        cfg.compile(dir.join(schema), out)
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}
