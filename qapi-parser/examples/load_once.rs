//! Loads a schema N times (default once): a target for callgrind and other profilers.
//!
//! `cargo run --release -p qapi-parser --example load_once -- <schema.json> [N] [QEMU X.Y]`

fn main() {
    let mut args = std::env::args().skip(1);
    let path = args.next().unwrap_or_else(|| {
        eprintln!("usage: load_once <schema.json> [N] [QEMU X.Y]");
        std::process::exit(2)
    });
    let runs: usize = args.next().and_then(|n| n.parse().ok()).unwrap_or(1);
    let options = match args.next() {
        Some(v) => qapi_parser::Options::for_release(&v).unwrap_or_else(|e| {
            eprintln!("{e}");
            std::process::exit(2)
        }),
        None => qapi_parser::Options::default(),
    };
    for _ in 0..runs {
        match qapi_parser::load(&path, &options) {
            Ok(schema) => std::hint::black_box(schema),
            Err(err) => {
                eprintln!("{err}");
                std::process::exit(1)
            }
        };
    }
}
