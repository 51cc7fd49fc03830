//! Typed QMP (QEMU Machine Protocol) and guest agent API, and a thin sync transport.

#![deny(missing_docs)]

mod command;

pub use command::{Command, EventSet, Timestamp};
