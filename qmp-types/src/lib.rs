//! Typed QMP (QEMU Machine Protocol) and guest agent API, and a thin sync transport.
//!
//! # Supported QEMU releases
//!
//! The APIs are generated from QEMU 10.0.2's schemas and decode what every QEMU from
//! **6.2** on sends, on every target. A member is required in Rust only where every
//! release of that range, on every target, sends it (replies, events) or requires it
//! (arguments): members under an `if` condition and members that appeared after 6.2 are
//! `Option`s, and their docs say on which builds, or since which release, QEMU always
//! sends them. A member or return whose type changed within the range is a
//! [`Versioned`]. Newer servers' unknown members are ignored, and their unknown enum
//! values, union branches, events and commands decode to `Unrecognized` variants that
//! serialize back unchanged. Branch on what the connected QEMU has, not on version
//! numbers: [`client::Qmp::has_command`], [`client::Qmp::has_event`] and
//! [`client::Qmp::has_argument`].
//!
//! # Testing against a mock server
//!
//! [`client::mock`] serves a script of typed expectations, returns and events, so code
//! that drives QEMU can be tested without QEMU; [`client::mock::MockServer::finish`]
//! lists what departed from the script:
//!
//! ```
//! use std::time::Duration;
//! use qmp_types::client::{mock::Script, ErrorClass, EventFilter};
//! use qmp_types::qmp::{self, commands as c, events as ev};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let mut deleted = ev::DeviceDeleted::new("/machine/peripheral/d0");
//! deleted.device = Some("d0".into());
//! let mock = Script::new()
//!     .expect(&c::QueryStatus)
//!     .returns(&qmp::StatusInfo::new(false, qmp::RunState::Prelaunch))
//!     .expect(&c::DeviceDel::new("d0")) // arguments compared as JSON
//!     .returns(&())
//!     .event(&deleted) // stamped now; event_at for a given timestamp
//!     .expect(&c::DeviceDel::new("d1"))
//!     .fails(ErrorClass::DeviceNotFound, "Device 'd1' not found")
//!     .spawn()?;
//!
//! let mut qmp = mock.connect()?; // or Qmp::connect_unix(mock.path().unwrap())
//! assert_eq!(qmp.execute(&c::QueryStatus)?.status, qmp::RunState::Prelaunch);
//! let filter = EventFilter::name("DEVICE_DELETED");
//! let ((), event) = qmp.execute_and_wait(&c::DeviceDel::new("d0"), &filter, Duration::from_secs(5))?;
//! assert!(matches!(event.decode()?, qmp::Event::DeviceDeleted(d, _) if d == deleted));
//! let err = qmp.execute(&c::DeviceDel::new("d1")).unwrap_err();
//! assert_eq!(err.class(), Some(&ErrorClass::DeviceNotFound));
//! drop(qmp);
//! mock.finish()?;
//! # Ok(()) }
//! ```

#![deny(missing_docs)]

/// The QMP and guest agent client (the `qmp-client` crate).
pub use qmp_client as client;

pub use qapi_runtime::{Command, EventSet, Timestamp, TypedEvent, Versioned};

#[doc(hidden)]
pub use qapi_runtime::runtime;

pub mod jobs;

/// The oldest QEMU release the generated APIs support, `X.Y` (see the crate docs).
pub const MIN_QEMU: &str = env!("QMP_TYPES_MIN_QEMU");

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
