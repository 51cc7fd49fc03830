//! Typed QMP (QEMU Machine Protocol) and guest agent API, and a thin sync transport.

#![deny(missing_docs)]

pub mod client;
mod command;

pub use command::{Command, EventSet, Timestamp};
