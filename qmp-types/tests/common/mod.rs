//! Helpers shared by the transport tests: the harness that runs one test body on both
//! drivers (`driver.rs`, `tokio_driver.rs`), small hand-written typed commands and
//! events (standing in for the generated API), and QEMU startup that fails loudly.

#![allow(dead_code, unused_macros, unused_imports)]

#[macro_use]
mod driver;
pub mod fake_peer;
#[cfg(feature = "tokio")]
mod tokio_driver;

pub use driver::{Blocking, Driver, QgaClient, QmpClient, RunOn, Sub};
#[cfg(feature = "tokio")]
pub use tokio_driver::{Tokio, TokioQga, TokioQmp, TokioSub};

use qmp_types::client::{Instance, Launcher};
use qmp_types::{Command, EventSet, Timestamp};
use serde::{Deserialize, Serialize};

/// Starts a launcher or fails the test with the launcher's message (which says how
/// to install QEMU): live tests never skip.
pub fn start(l: Launcher) -> Instance {
    match l.spawn() {
        Ok(i) => i,
        Err(e) => panic!("live test needs real QEMU: {e}"),
    }
}

/// `query-status`.
pub struct QueryStatus;

/// Its result (subset).
#[derive(Debug, Deserialize, PartialEq)]
pub struct StatusInfo {
    pub running: bool,
    pub status: String,
}

impl Command for QueryStatus {
    const NAME: &'static str = "query-status";
    const HAS_ARGUMENTS: bool = false;
    const ALLOW_OOB: bool = false;
    const SUCCESS_RESPONSE: bool = true;
    type Returns = StatusInfo;
    fn write_arguments(&self, _: &mut Vec<u8>) -> Result<(), serde_json::Error> {
        Ok(())
    }
    fn decode_return(json: &str) -> Result<StatusInfo, serde_json::Error> {
        serde_json::from_str(json)
    }
}

macro_rules! unit_command {
    ($ty:ident, $name:literal, $oob:literal) => {
        /// A no-argument command returning `{}`.
        pub struct $ty;
        impl Command for $ty {
            const NAME: &'static str = $name;
            const HAS_ARGUMENTS: bool = false;
            const ALLOW_OOB: bool = $oob;
            const SUCCESS_RESPONSE: bool = true;
            type Returns = ();
            fn write_arguments(&self, _: &mut Vec<u8>) -> Result<(), serde_json::Error> {
                Ok(())
            }
            fn decode_return(json: &str) -> Result<(), serde_json::Error> {
                serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(json).map(drop)
            }
        }
    };
}

unit_command!(Stop, "stop", false);
unit_command!(Cont, "cont", false);

/// `query-yank` (allow-oob).
pub struct QueryYank;

impl Command for QueryYank {
    const NAME: &'static str = "query-yank";
    const HAS_ARGUMENTS: bool = false;
    const ALLOW_OOB: bool = true;
    const SUCCESS_RESPONSE: bool = true;
    type Returns = Vec<serde_json::Value>;
    fn write_arguments(&self, _: &mut Vec<u8>) -> Result<(), serde_json::Error> {
        Ok(())
    }
    fn decode_return(json: &str) -> Result<Vec<serde_json::Value>, serde_json::Error> {
        serde_json::from_str(json)
    }
}

/// `device_del`.
#[derive(Serialize)]
pub struct DeviceDel {
    pub id: String,
}

impl Command for DeviceDel {
    const NAME: &'static str = "device_del";
    const HAS_ARGUMENTS: bool = true;
    const ALLOW_OOB: bool = false;
    const SUCCESS_RESPONSE: bool = true;
    type Returns = ();
    fn write_arguments(&self, out: &mut Vec<u8>) -> Result<(), serde_json::Error> {
        serde_json::to_writer(out, self)
    }
    fn decode_return(_: &str) -> Result<(), serde_json::Error> {
        Ok(())
    }
}

/// A typed event set with a catch-all.
#[derive(Debug, PartialEq)]
pub enum Ev {
    Stop(Timestamp),
    Resume,
    DeviceDeleted {
        device: Option<String>,
        path: String,
    },
    Other(String),
}

#[derive(Deserialize)]
struct DeviceDeletedData {
    device: Option<String>,
    path: String,
}

impl EventSet for Ev {
    fn decode_event(
        name: &str,
        data: Option<&str>,
        ts: Timestamp,
    ) -> Result<Ev, serde_json::Error> {
        Ok(match name {
            "STOP" => Ev::Stop(ts),
            "RESUME" => Ev::Resume,
            "DEVICE_DELETED" => {
                let d: DeviceDeletedData = serde_json::from_str(data.unwrap_or("null"))?;
                Ev::DeviceDeleted {
                    device: d.device,
                    path: d.path,
                }
            }
            other => Ev::Other(other.to_owned()),
        })
    }
}

/// JSON arguments as a boxed `RawValue`.
pub fn args(v: serde_json::Value) -> Box<serde_json::value::RawValue> {
    serde_json::value::to_raw_value(&v).unwrap()
}
