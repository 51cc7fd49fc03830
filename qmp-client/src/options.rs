//! Connection options, the per-command timeout table, and what the server says
//! about itself (greeting, version).

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use serde::Deserialize;

use crate::error::Error;

/// Whether to enable out-of-band execution during negotiation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OobPolicy {
    /// Enable `oob` when the greeting offers it (the default).
    #[default]
    IfOffered,
    /// Never enable it (saves QEMU parsing 31 request bytes once).
    Never,
    /// Fail to connect unless it is offered.
    Require,
}

/// Connection options. Build with [`Options::new`] and the setters.
#[derive(Debug, Clone)]
pub struct Options {
    pub(crate) connect_timeout: Duration,
    pub(crate) oob: OobPolicy,
    pub(crate) max_message: usize,
    pub(crate) event_capacity: usize,
    pub(crate) negotiate: bool,
    /// Shared, not copied: a fleet of connections holds one table, not one each.
    pub(crate) timeouts: Arc<Timeouts>,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            connect_timeout: Duration::from_secs(5),
            oob: OobPolicy::IfOffered,
            max_message: 10 << 20,
            event_capacity: 1024,
            negotiate: true,
            timeouts: default_timeouts(),
        }
    }
}

/// The built-in table, made once per process.
fn default_timeouts() -> Arc<Timeouts> {
    static TABLE: OnceLock<Arc<Timeouts>> = OnceLock::new();
    TABLE.get_or_init(|| Arc::new(Timeouts::default())).clone()
}

impl Options {
    /// The defaults: 5 s to connect (socket, greeting, negotiation), the call deadlines
    /// of [`Timeouts::default`] (30 s unless the command is known to take longer),
    /// `oob` if offered, 10 MiB messages, 1024 queued events, negotiation on.
    pub fn new() -> Options {
        Options::default()
    }

    /// Deadline for connecting, reading the greeting and negotiating.
    pub fn connect_timeout(mut self, t: Duration) -> Options {
        self.connect_timeout = t;
        self
    }

    /// Default deadline of every call without an entry in the timeout table
    /// (`None`: wait forever). See [`Options::timeouts`] for per-command defaults.
    pub fn timeout(mut self, t: Option<Duration>) -> Options {
        Arc::make_mut(&mut self.timeouts).default = t;
        self
    }

    /// The per-command default deadlines ([`Timeouts`]), replacing the built-in table.
    pub fn timeouts(mut self, t: Timeouts) -> Options {
        self.timeouts = Arc::new(t);
        self
    }

    /// Out-of-band policy.
    pub fn oob(mut self, p: OobPolicy) -> Options {
        self.oob = p;
        self
    }

    /// Largest message accepted from the peer, in bytes.
    pub fn max_message(mut self, bytes: usize) -> Options {
        self.max_message = bytes;
        self
    }

    /// How many events are queued before the oldest is dropped (and counted).
    pub fn event_capacity(mut self, n: usize) -> Options {
        self.event_capacity = n.max(1);
        self
    }

    /// Whether to run `qmp_capabilities` (false for a connection that is already in
    /// command mode, e.g. an inherited fd). With false no greeting is read either.
    pub fn negotiate(mut self, yes: bool) -> Options {
        self.negotiate = yes;
        self
    }
}

/// Default deadlines per command: a call without its own
/// [`Request::timeout`](crate::Request::timeout) waits as long as this table says for its
/// command name, else [`Timeouts::default`].
///
/// The built-in table (after Proxmox VE's, which learnt it in production) is:
/// 30 s for everything else; 10 minutes for commands that can wait on storage
/// (`blockdev-add`, `blockdev-del`, `blockdev-create`, `block-job-*`, `job-*`,
/// `blockdev-mirror`, `drive-mirror`, `blockdev-backup`, `drive-backup`,
/// `block-commit`, `block-stream`, `snapshot-*`, `transaction`, `device_del`,
/// `eject`, `blockdev-snapshot-internal-sync`, the guest agent's `guest-fsfreeze-*`
/// and `guest-fstrim`); one hour for migration and live snapshots
/// (`migrate`, `migrate-incoming`, `query-migrate`, `savevm` through
/// `human-monitor-command` is not matched by name, so pass a timeout to it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timeouts {
    /// The deadline of commands without an entry (`None`: wait forever).
    pub default: Option<Duration>,
    /// Per command name.
    pub commands: BTreeMap<String, Option<Duration>>,
}

impl Default for Timeouts {
    fn default() -> Timeouts {
        const STORAGE: Duration = Duration::from_secs(600);
        const MIGRATION: Duration = Duration::from_secs(3600);
        let storage = [
            "blockdev-add",
            "blockdev-del",
            "blockdev-create",
            "blockdev-mirror",
            "drive-mirror",
            "blockdev-backup",
            "drive-backup",
            "block-commit",
            "block-stream",
            "block-job-cancel",
            "block-job-complete",
            "block-job-finalize",
            "block-job-dismiss",
            "job-cancel",
            "job-complete",
            "job-finalize",
            "job-dismiss",
            "snapshot-save",
            "snapshot-load",
            "snapshot-delete",
            "blockdev-snapshot-internal-sync",
            "transaction",
            "device_del",
            "eject",
            "guest-fsfreeze-freeze",
            "guest-fsfreeze-freeze-list",
            "guest-fsfreeze-thaw",
            "guest-fstrim",
        ];
        let migration = ["migrate", "migrate-incoming", "query-migrate"];
        let mut commands = BTreeMap::new();
        for c in storage {
            commands.insert(c.to_owned(), Some(STORAGE));
        }
        for c in migration {
            commands.insert(c.to_owned(), Some(MIGRATION));
        }
        Timeouts {
            default: Some(Duration::from_secs(30)),
            commands,
        }
    }
}

impl Timeouts {
    /// An empty table: every command gets `default`.
    pub fn uniform(default: Option<Duration>) -> Timeouts {
        Timeouts {
            default,
            commands: BTreeMap::new(),
        }
    }

    /// Sets the default deadline of one command.
    pub fn command(mut self, name: &str, timeout: Option<Duration>) -> Timeouts {
        self.commands.insert(name.to_owned(), timeout);
        self
    }

    /// The default deadline of `name`.
    pub fn get(&self, name: &str) -> Option<Duration> {
        self.commands.get(name).copied().unwrap_or(self.default)
    }
}

/// QEMU's version from the greeting.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Version {
    /// Major version.
    pub major: i64,
    /// Minor version.
    pub minor: i64,
    /// Micro version (50: development tree, 90 and up: release candidate).
    pub micro: i64,
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.micro)
    }
}

/// The parsed QMP greeting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Greeting {
    /// QEMU's version.
    pub version: Version,
    /// The package string (empty upstream, set by distributions).
    pub package: String,
    /// Offered capabilities, e.g. `oob`.
    pub capabilities: Vec<String>,
    /// The greeting's inner JSON object, verbatim.
    pub json: String,
}

#[derive(Deserialize)]
struct GreetingWire {
    version: VersionWire,
    #[serde(default)]
    capabilities: Vec<String>,
}

#[derive(Deserialize)]
struct VersionWire {
    qemu: Version,
    #[serde(default)]
    package: String,
}

/// The result of `add-fd`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub struct AddFdInfo {
    /// The fd set the descriptor was added to.
    #[serde(rename = "fdset-id")]
    pub fdset_id: i64,
    /// The descriptor's number inside QEMU.
    pub fd: i64,
}

pub(crate) fn parse_greeting(g: &str) -> Result<Greeting, Error> {
    let w: GreetingWire =
        serde_json::from_str(g).map_err(|e| Error::Greeting(format!("{e} in {g}")))?;
    Ok(Greeting {
        version: w.version.qemu,
        package: w.version.package,
        capabilities: w.capabilities,
        json: g.to_owned(),
    })
}
