//! `cargo xtask`: project automation (tests, demo, benchmarks, fuzzing, schema import).

fn main() {
    eprintln!("usage: cargo xtask <test|demo|bench|fuzz|schema>");
    std::process::exit(2);
}
