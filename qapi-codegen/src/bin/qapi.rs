//! The `qapi` command-line program: `qapi check FILE`, `qapi dump FILE`, `qapi gen FILE -o OUT.rs`.

fn main() {
    eprintln!("qapi: not implemented yet");
    std::process::exit(2);
}
