//! The `qmp` program: one-shot commands, event streaming and the interactive shell.

fn main() {
    eprintln!("qmp: not yet");
    std::process::exit(2);
}
