//! `qmp`: a schema-aware shell and one-shot command line for QMP and the QEMU guest
//! agent. The library holds the pure parts (language, typing, completion, help,
//! output) so that they are unit-tested without a terminal or a QEMU.

#![deny(missing_docs)]

pub mod complete;
pub mod conn;
pub mod help;
pub mod output;
pub mod schema;
pub mod suggest;
pub mod syntax;
pub mod typing;
