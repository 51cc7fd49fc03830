//! A thin, synchronous client for QMP (the QEMU Machine Protocol) and the guest agent,
//! plus a launcher that starts QEMU on demand.
//!
//! No async runtime: one buffered reader per socket, integer ids on every request,
//! deadlines on every call, events queued (bounded) while a command waits for its
//! reply. The wire format is compact (QEMU parses requests a byte at a time).
//!
//! # Connecting and executing
//!
//! ```no_run
//! use qmp_client::{Qmp, Options, Endpoint};
//! # fn main() -> Result<(), qmp_client::Error> {
//! let mut qmp = Qmp::connect(Endpoint::Unix("/run/qmp.sock".into()), &Options::new())?;
//! println!("QEMU {}", qmp.greeting().unwrap().version);
//! // By name with JSON arguments (typed commands work through `execute`).
//! let status = qmp.execute_raw("query-status", None)?;
//! println!("{}", status.get());
//! # Ok(()) }
//! ```
//!
//! # Events
//!
//! Events that arrive while a command waits are queued, never lost (up to
//! [`Options::event_capacity`]; drops are counted). A filter armed before the command
//! is written cannot miss the event the command causes:
//!
//! ```no_run
//! use std::time::Duration;
//! use qmp_client::{EventFilter, Qmp};
//! # fn main() -> Result<(), qmp_client::Error> {
//! # let mut qmp = Qmp::connect_unix("/run/qmp.sock")?;
//! let args = serde_json::value::to_raw_value(&serde_json::json!({"id": "disk0"})).unwrap();
//! let deleted = EventFilter::name("DEVICE_DELETED")
//!     .matching(|e| e.data_value()["device"] == "disk0");
//! let (_, event) = qmp.execute_raw_and_wait("device_del", Some(&args), &deleted, Duration::from_secs(5))?;
//! println!("{} at {:?}", event.name(), event.timestamp());
//! while let Some(e) = qmp.poll_event()? {
//!     println!("also got {}", e.name());
//! }
//! # Ok(()) }
//! ```
//!
//! # What the connected QEMU has
//!
//! Branch on capabilities, not version numbers: the server's own `query-qmp-schema`
//! is fetched on first use and cached on the connection.
//!
//! ```no_run
//! use qmp_client::Qmp;
//! # fn main() -> Result<(), qmp_client::Error> {
//! # let mut qmp = Qmp::connect_unix("/run/qmp.sock")?;
//! let reopen = qmp.has_command("blockdev-reopen")?;
//! let unplug = qmp.has_event("DEVICE_DELETED")?;
//! let compat = qmp.has_argument("query-machines", "compat-props")?; // QEMU 9.1+
//! let audio = qmp.has_command("query-audiodevs")?; // 10.0+
//! # Ok(()) }
//! ```
//!
//! # Launching QEMU
//!
//! ```no_run
//! use qmp_client::Launcher;
//! # fn main() -> Result<(), qmp_client::Error> {
//! let vm = Launcher::qemu().args(["-S"]).spawn()?; // killed and reaped on drop
//! let mut qmp = vm.connect()?;
//! qmp.execute_raw("cont", None)?;
//! let ga = Launcher::guest_agent().spawn()?;
//! let mut qga = ga.connect_qga()?;
//! qga.execute_raw("guest-ping", None)?;
//! # Ok(()) }
//! ```
//!
//! # Tracing
//!
//! Every message in and out is logged at `trace` level under the `log` target
//! [`WIRE_TARGET`]; nothing is formatted unless that level is enabled.
//!
//! The trace never shows secrets: their values are replaced by `"<redacted>"` (the bytes
//! on the wire are unchanged; so is the rest of the message). Redacted, in both
//! directions: every member named `password` or ending in `-password`, at any depth
//! (`set_password`, `change-vnc-password`, `guest-set-user-password`); `data` of any
//! object whose `qom-type` is `secret` (`object-add`, plain or encrypted with `keyid`);
//! `qom-set`'s `value` when `property` is `data` or a password; and in
//! `human-monitor-command`, what follows `set_password PROTOCOL` and
//! `change vnc password`, and `object_add`'s `data=` and `password=` values. Ids that
//! only name a secret (`key-secret`, `password-secret`, `keyid`) stay visible. A
//! message that does not parse as JSON is withheld whole. The JSON excerpt kept in
//! [`Error::Decode`] follows the same rules.

mod conn;
mod error;
mod fd;
mod framing;
mod introspect;
mod launcher;
#[cfg(feature = "libvirt")]
pub mod libvirt;
pub mod mock;
pub mod monitor;
mod qga;
mod qmp;
mod redact;
#[cfg(feature = "tls")]
pub mod tls;

pub use conn::{Endpoint, Stats, WIRE_TARGET};
pub use error::{Error, ErrorClass, QmpError};
pub use introspect::{Argument, ServerSchema};
pub use launcher::{find_binary, Instance, Launcher, Program};
pub use qga::Qga;
pub use qmp::{AddFdInfo, Call, Event, EventFilter, Greeting, OobPolicy, Options, Qmp, Version};
