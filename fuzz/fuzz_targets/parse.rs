//! Fuzz target: arbitrary bytes as a schema file, loaded and checked by `qapi_parser`.
//!
//! Every input must give `Ok` or a typed `Error`: a panic, a hang (libFuzzer's `-timeout`),
//! a stack overflow or runaway memory (`-rss_limit_mb`) is a bug.
//! Inputs the default rules reject are loaded again with the relaxed compatibility rules,
//! which go further before they stop, and with every other QEMU release's rules.
//! UTF-8 inputs go through `load_str` (in memory, fast), named as a file in a folder that does
//! not exist, so that the includes they name fail the same way every time.
//! Other inputs are written to a file and go through `load`, the only route that decodes raw
//! bytes (and reports invalid UTF-8).

#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use qapi_parser::{load, load_str, Compat, Options, Release, Schema};

/// The name UTF-8 inputs are loaded under.
const NAME: &str = "/nonexistent-qapi-fuzz/input.json";

/// A private file for this fuzzing process's non-UTF-8 inputs.
fn input_path() -> &'static PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        // Memory-backed when possible: the file is rewritten for every such input.
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

fn load_both(load: impl Fn(&Options) -> Result<Schema, qapi_parser::Error>) {
    if load(&Options::default()).is_err() {
        let mut legacy = Options::default();
        legacy.compat = Compat::Legacy;
        let _ = load(&legacy);
        for release in Release::ALL {
            let mut options = Options::default();
            options.release = release;
            if options != Options::default() {
                let _ = load(&options);
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    match std::str::from_utf8(data) {
        Ok(text) => load_both(|options| load_str(NAME, text, options)),
        Err(_) => {
            let path = input_path();
            std::fs::write(path, data).expect("cannot write the fuzz input");
            load_both(|options| load(path, options));
        }
    }
});
