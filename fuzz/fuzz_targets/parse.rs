//! Fuzz target: arbitrary bytes as a schema file, loaded and checked by `qapi_parser`.
//!
//! Every input must give `Ok` or a typed `Error`: a panic, a hang (libFuzzer's `-timeout`),
//! a stack overflow or runaway memory (`-rss_limit_mb`) is a bug.
//! Inputs the default rules reject are loaded again with the relaxed compatibility rules,
//! which go further before they stop.
//! The input is written to a file because only the file path decodes raw bytes (UTF-8 errors
//! included); includes it names resolve relative to that file's folder, where nothing else is.

#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use qapi_parser::{load, Compat, Options};

/// A private folder for this fuzzing process's input file.
fn input_path() -> &'static PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        // Memory-backed when possible: the file is rewritten for every input.
        let shm = std::path::Path::new("/dev/shm");
        let base = if shm.is_dir() {
            shm.to_path_buf()
        } else {
            std::env::temp_dir()
        };
        let dir = base.join(format!("qapi-fuzz-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("cannot create the fuzz input folder");
        dir.join("input.json")
    })
}

fuzz_target!(|data: &[u8]| {
    let path = input_path();
    std::fs::write(path, data).expect("cannot write the fuzz input");
    if load(path, &Options::default()).is_err() {
        let mut legacy = Options::default();
        legacy.compat = Compat::Legacy;
        let _ = load(path, &legacy);
    }
});
