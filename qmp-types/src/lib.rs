//! Typed QMP (QEMU Machine Protocol) and guest agent API, and a thin sync transport.

#![deny(missing_docs)]

pub mod client;
mod command;

pub use command::{Command, EventSet, Timestamp, Versioned};

#[doc(hidden)]
pub mod runtime;

/// The QMP API of QEMU, generated from the pinned schema (`qemu-schema.pin`): types at
/// the root, one type per command in [`qmp::commands`] (each implementing [`Command`]),
/// one per event in [`qmp::events`], and the [`qmp::Event`], [`qmp::AnyCommand`] and
/// [`qmp::AnyReturn`] enums.
pub mod qmp {
    include!(concat!(env!("OUT_DIR"), "/qmp.rs"));
}

/// The guest agent (QGA) API, generated from the pinned schema (feature `qga`).
#[cfg(feature = "qga")]
pub mod qga {
    include!(concat!(env!("OUT_DIR"), "/qga.rs"));
}

/// The qemu-storage-daemon API, generated from the pinned schema (feature `storage-daemon`).
#[cfg(feature = "storage-daemon")]
pub mod storage_daemon {
    include!(concat!(env!("OUT_DIR"), "/storage_daemon.rs"));
}
