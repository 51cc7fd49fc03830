//! Typed QMP (QEMU Machine Protocol) and guest agent API, and a thin sync transport.
//!
//! Every command, event and type of QEMU's QMP schema is a Rust item here, generated from
//! QEMU's own schema files (with QEMU's documentation), and [`client`] executes them
//! against a running QEMU: std only, no async runtime, a deadline on every call.
//!
//! # Connect, or launch QEMU
//!
//! [`client::Qmp::connect_unix`] connects to a monitor socket that QEMU listens on
//! (`-qmp unix:PATH,server=on,wait=off`), reads the greeting and negotiates capabilities.
//! [`client::Launcher`] starts QEMU itself, on a private socket, and kills it on drop, so
//! the same code works in integration tests:
//!
//! ```no_run
//! use qmp_types::client::{Launcher, Qmp};
//!
//! # fn main() -> Result<(), qmp_types::client::Error> {
//! let mut qmp = Qmp::connect_unix("/run/vm/qmp.sock")?; // a QEMU that is already running
//! let vm = Launcher::qemu().args(["-machine", "q35", "-S"]).spawn()?; // or one of our own
//! let mut own = vm.connect()?;
//! # let _ = (&mut qmp, &mut own);
//! # Ok(())
//! # }
//! ```
//!
//! # Typed commands
//!
//! Each command is a struct in [`qmp::commands`] implementing [`Command`]; its arguments
//! are fields (required ones through `new`), and [`client::Qmp::execute`] returns its
//! typed result:
//!
//! ```no_run
//! use qmp_types::qmp::{commands as c, RunState};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let vm = qmp_types::client::Launcher::qemu().spawn()?;
//! # let mut qmp = vm.connect()?;
//! let status = qmp.execute(&c::QueryStatus)?;
//! if status.status == RunState::Prelaunch {
//!     qmp.execute(&c::Cont)?;
//! }
//! let version = qmp.execute(&c::QueryVersion)?;
//! println!("QEMU {}.{}", version.qemu.major, version.qemu.minor);
//! # Ok(())
//! # }
//! ```
//!
//! Enums print and parse their wire spelling (`"prelaunch".parse::<RunState>()`), large
//! unions can be built from JSON with `serde_json::from_value`, and
//! [`client::Request::raw`] sends any command by name with any `Serialize` arguments.
//!
//! # Events
//!
//! Events arrive in order and wait in a queue until asked for:
//! [`client::Qmp::next_event`] takes the next one, [`client::Qmp::wait_event`] the next
//! that a [`client::EventFilter`] accepts, and [`client::Request::wait_for`] arms the
//! filter before the command is written, so the event it causes cannot be missed.
//! [`client::EventFilter::of`] takes one generated event type (see [`TypedEvent`]) and
//! hands out `(event, timestamp)`, decoded once:
//!
//! ```no_run
//! use std::time::Duration;
//! use qmp_types::client::{EventFilter, Request};
//! use qmp_types::qmp::{commands as c, events as ev};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let vm = qmp_types::client::Launcher::qemu().spawn()?;
//! # let qmp = vm.connect()?;
//! let stop = Request::new(&c::Stop).timeout(Duration::from_secs(5));
//! let ((), (_stop, ts)) = qmp.execute(stop.wait_for(EventFilter::of::<ev::Stop>()))?;
//! println!("stopped at {}.{:06}", ts.seconds, ts.microseconds);
//! # Ok(())
//! # }
//! ```
//!
//! # Errors and deadlines
//!
//! Every call has a deadline (30 s by default; [`client::Options::timeout`] per
//! connection, [`client::Timeouts`] per command, [`client::Request::timeout`] per call).
//! A timed-out command's outcome is unknown ([`client::Error::Timeout`]): it may still run,
//! and its late reply is discarded by its id. QEMU's own error replies are
//! [`client::Error::Qmp`], with QEMU's class and description and the command's name:
//!
//! ```no_run
//! use qmp_types::client::{Error, ErrorClass};
//! use qmp_types::qmp::commands as c;
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let vm = qmp_types::client::Launcher::qemu().spawn()?;
//! # let mut qmp = vm.connect()?;
//! match qmp.execute(&c::DeviceDel::new("nope")) {
//!     Err(Error::Qmp(e)) if e.class == ErrorClass::DeviceNotFound => println!("{}", e.desc),
//!     other => println!("{other:?}"),
//! }
//! # Ok(())
//! # }
//! ```
//!
//! The guest agent works the same way: [`client::Qga`], with the agent's commands in
//! `qmp_types::qga` (feature `qga`); qemu-storage-daemon's API is
//! `qmp_types::storage_daemon` (feature `storage-daemon`).
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
//! use qmp_types::client::{mock::Script, ErrorClass, EventFilter, Request};
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
//! let qmp = mock.connect()?; // or Qmp::connect_unix(mock.path().unwrap())
//! assert_eq!(qmp.execute(&c::QueryStatus)?.status, qmp::RunState::Prelaunch);
//! let del = c::DeviceDel::new("d0");
//! let unplug = Request::new(&del).timeout(Duration::from_secs(5));
//! let ((), (d, _)) = qmp.execute(unplug.wait_for(EventFilter::of::<ev::DeviceDeleted>()))?;
//! assert_eq!(d, deleted);
//! let err = qmp.execute(&c::DeviceDel::new("d1")).unwrap_err();
//! assert_eq!(err.class(), Some(&ErrorClass::DeviceNotFound));
//! drop(qmp);
//! mock.finish()?;
//! # Ok(()) }
//! ```

//!
//! # Your own schema
//!
//! This crate is what `qapi-codegen` makes of QEMU's schema in a build script. To get the
//! same for another QAPI schema (your own, or a QEMU fork), call
//! `qapi_codegen::compile("qapi/qapi-schema.json", "qmp.rs")` in your `build.rs`,
//! `include!` the output, and depend on `qapi-runtime` and `serde_json`; add `qmp-client`
//! to execute the commands. `qapi_codegen::Config` covers filters, module names, extra
//! derives and a supported range of your own.
//!
//! # The shell
//!
//! `qmp` (crate `qmp-shell`) is a schema-aware shell and one-shot command line built on
//! this crate: `qmp /run/vm/qmp.sock query-status`, or `qmp /run/vm/qmp.sock` for an
//! interactive session with completion, checking and QEMU's documentation (`help COMMAND`).

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
