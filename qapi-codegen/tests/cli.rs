//! The `qapi check` / `qapi dump` contract, run on the built binary over QEMU's suite:
//! with the working directory at the case's folder and a bare file name, `dump` prints
//! exactly the `.out` text and exits 0, or prints exactly the `.err` text on stderr and
//! exits non-zero; `check` does the same without the dump.

use std::path::{Path, PathBuf};
use std::process::Command;

/// `../shared/qemu` beside the repository, or `$QAPI_SHARED_DIR`.
fn shared_dir() -> PathBuf {
    match std::env::var_os("QAPI_SHARED_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/qemu"),
    }
}

/// Runs `qapi CMD FILE` in `dir`: (exit success, stdout, stderr).
fn qapi(cmd: &str, dir: &Path, file: &str) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_qapi"))
        .args([cmd, file])
        .current_dir(dir)
        .output()
        .expect("run qapi");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Checks one case against its expected `.err`/`.out`; returns a complaint if any.
fn check_case(dir: &Path, name: &str) -> Option<String> {
    let read =
        |ext: &str| std::fs::read_to_string(dir.join(format!("{name}.{ext}"))).unwrap_or_default();
    let (exp_err, exp_out) = (read("err"), read("out"));
    let file = format!("{name}.json");
    let accepted = exp_err.is_empty();
    let (ok, out, err) = qapi("dump", dir, &file);
    if ok != accepted || out != exp_out || err != exp_err {
        return Some(format!(
            "qapi dump {file}: exit ok={ok} (want {accepted})\n--- stderr\n{err}--- want\n{exp_err}--- stdout equal: {}",
            out == exp_out
        ));
    }
    let (ok, out, err) = qapi("check", dir, &file);
    if ok != accepted || !out.is_empty() || err != exp_err {
        return Some(format!(
            "qapi check {file}: exit ok={ok} (want {accepted})\n--- stderr\n{err}--- want\n{exp_err}"
        ));
    }
    None
}

#[test]
fn suite_contract() {
    let dir = shared_dir().join("10.0.2/tests/qapi-schema");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .expect("QEMU suite (set QAPI_SHARED_DIR)")
        .filter_map(|e| {
            let n = e.ok()?.file_name().into_string().ok()?;
            n.strip_suffix(".err").map(str::to_string)
        })
        .collect();
    names.sort();
    assert!(names.len() > 150, "suite not found at {}", dir.display());
    let failures: Vec<String> = names.iter().filter_map(|n| check_case(&dir, n)).collect();
    assert!(
        failures.is_empty(),
        "{} of {} cases break the contract:\n{}",
        failures.len(),
        names.len(),
        failures.join("\n")
    );
}

#[test]
fn golden_dump() {
    let root = shared_dir().join("10.0.2");
    let (ok, out, err) = qapi("dump", &root.join("qga"), "qapi-schema.json");
    assert!(ok, "{err}");
    let golden = std::fs::read_to_string(root.join("golden/q10-qga.out")).expect("golden");
    assert!(
        out == golden,
        "qapi dump of the QGA schema differs from the golden"
    );
}

#[test]
fn usage_errors() {
    let dir = std::env::temp_dir();
    let (ok, _, err) = qapi("frobnicate", &dir, "x.json");
    assert!(!ok && err.contains("unknown command"), "{err}");
    let (ok, _, err) = qapi("check", &dir, "--bogus");
    assert!(!ok && err.contains("unknown option"), "{err}");
}
