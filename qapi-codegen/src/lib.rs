//! Generates typed Rust for QMP from a checked QAPI [`qapi_parser::Schema`].

pub use qapi_parser;
