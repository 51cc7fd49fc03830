//! The transport's error types: QEMU's own errors (class, description, command) and
//! everything that can go wrong on the wire, while connecting or while launching QEMU.

use std::fmt;
use std::io;
use std::time::Duration;

/// The error class of a QMP error reply (`QapiErrorClass`). Unknown classes (a
/// downstream QEMU may add some) are kept verbatim in [`ErrorClass::Other`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorClass {
    /// `GenericError`: nearly every error.
    GenericError,
    /// `CommandNotFound`: unknown or disabled command, or not negotiated yet.
    CommandNotFound,
    /// `DeviceNotActive`.
    DeviceNotActive,
    /// `DeviceNotFound`.
    DeviceNotFound,
    /// `KVMMissingCap`.
    KVMMissingCap,
    /// A class this client does not know.
    Other(String),
}

impl ErrorClass {
    /// Maps the wire spelling to a class.
    pub fn from_wire(class: &str) -> ErrorClass {
        match class {
            "GenericError" => ErrorClass::GenericError,
            "CommandNotFound" => ErrorClass::CommandNotFound,
            "DeviceNotActive" => ErrorClass::DeviceNotActive,
            "DeviceNotFound" => ErrorClass::DeviceNotFound,
            "KVMMissingCap" => ErrorClass::KVMMissingCap,
            other => ErrorClass::Other(other.to_owned()),
        }
    }

    /// The wire spelling of the class.
    pub fn as_str(&self) -> &str {
        match self {
            ErrorClass::GenericError => "GenericError",
            ErrorClass::CommandNotFound => "CommandNotFound",
            ErrorClass::DeviceNotActive => "DeviceNotActive",
            ErrorClass::DeviceNotFound => "DeviceNotFound",
            ErrorClass::KVMMissingCap => "KVMMissingCap",
            ErrorClass::Other(s) => s,
        }
    }
}

impl fmt::Display for ErrorClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error reply from QEMU (or the guest agent) to one command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QmpError {
    /// The command that failed.
    pub command: String,
    /// QEMU's error class.
    pub class: ErrorClass,
    /// QEMU's human-readable description (do not parse it).
    pub desc: String,
}

impl fmt::Display for QmpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} failed: {}: {}", self.command, self.class, self.desc)
    }
}

impl std::error::Error for QmpError {}

/// Everything a transport call can fail with.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// QEMU answered the command with an error.
    Qmp(QmpError),
    /// The socket could not be opened.
    Connect {
        /// What was being connected to.
        endpoint: String,
        /// The OS error.
        source: io::Error,
    },
    /// An I/O error on an established connection.
    Io {
        /// The command in flight, if any.
        command: Option<String>,
        /// The OS error.
        source: io::Error,
    },
    /// The deadline passed. For a command, the outcome is unknown: it may still run,
    /// and its late reply will be discarded.
    Timeout {
        /// What was being waited for (a command name, "greeting", "event", ...).
        waiting_for: String,
        /// How long the call waited.
        waited: Duration,
    },
    /// The peer closed the connection. When `command` is set, the command was sent
    /// but no reply came: its outcome is unknown.
    Disconnected {
        /// The command in flight, if any.
        command: Option<String>,
    },
    /// The greeting was missing or malformed.
    Greeting(String),
    /// `qmp_capabilities` failed, or a required capability was not offered.
    Negotiation(String),
    /// The peer sent something that is not a well-formed QMP message.
    Protocol {
        /// What was wrong.
        reason: String,
        /// The start of the offending bytes (lossy UTF-8, at most 200 bytes).
        excerpt: String,
    },
    /// A message exceeded the configured maximum size; the rest of it is skipped.
    TooLarge {
        /// The configured limit in bytes.
        limit: usize,
    },
    /// The reply's `return` member did not decode into the command's typed result.
    Decode {
        /// The command.
        command: String,
        /// serde_json's error.
        source: serde_json::Error,
        /// The JSON text that failed to decode (at most 1000 bytes).
        json: String,
    },
    /// The command's arguments could not be encoded.
    Encode {
        /// The command.
        command: String,
        /// serde_json's error.
        source: serde_json::Error,
    },
    /// `exec-oob` was asked for but out-of-band execution was not negotiated on this
    /// connection (or the command does not allow it).
    OobUnavailable {
        /// The command.
        command: String,
        /// Why.
        reason: &'static str,
    },
    /// File descriptors cannot be passed on this connection (TCP, or the guest agent).
    FdPassingUnsupported {
        /// The command.
        command: String,
        /// Why.
        reason: &'static str,
    },
    /// A program the launcher needs is not installed.
    MissingBinary {
        /// The program name.
        program: String,
        /// Exactly how to install it.
        install: String,
    },
    /// A launched process failed to start or exited early.
    Launch {
        /// The program.
        program: String,
        /// What happened, including its stderr when available.
        reason: String,
    },
}

impl Error {
    /// The QEMU error reply, if this is one.
    pub fn qmp(&self) -> Option<&QmpError> {
        match self {
            Error::Qmp(e) => Some(e),
            _ => None,
        }
    }

    /// The QEMU error class, if this is an error reply.
    pub fn class(&self) -> Option<&ErrorClass> {
        self.qmp().map(|e| &e.class)
    }

    /// True when a command was sent but its outcome is unknown (timeout or disconnect).
    pub fn outcome_unknown(&self) -> bool {
        matches!(
            self,
            Error::Timeout { .. } | Error::Disconnected { command: Some(_) }
        )
    }

    pub(crate) fn protocol(reason: impl Into<String>, bytes: &[u8]) -> Error {
        let n = bytes.len().min(200);
        Error::Protocol {
            reason: reason.into(),
            excerpt: String::from_utf8_lossy(&bytes[..n]).into_owned(),
        }
    }

    pub(crate) fn decode(command: &str, source: serde_json::Error, json: &str) -> Error {
        // Kept in the error's text: secrets withheld as in the wire trace.
        let json = super::redact::redact(json);
        let mut end = json.len().min(1000);
        while !json.is_char_boundary(end) {
            end -= 1;
        }
        Error::Decode {
            command: command.to_owned(),
            source,
            json: json[..end].to_owned(),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Qmp(e) => e.fmt(f),
            Error::Connect { endpoint, source } => {
                write!(f, "cannot connect to {endpoint}: {source}")
            }
            Error::Io {
                command: Some(c),
                source,
            } => write!(f, "I/O error during {c}: {source}"),
            Error::Io {
                command: None,
                source,
            } => write!(f, "I/O error: {source}"),
            Error::Timeout {
                waiting_for,
                waited,
            } => write!(
                f,
                "timed out after {waited:?} waiting for {waiting_for} (outcome unknown)"
            ),
            Error::Disconnected { command: Some(c) } => write!(
                f,
                "connection closed while {c} was in flight: outcome unknown"
            ),
            Error::Disconnected { command: None } => f.write_str("connection closed by peer"),
            Error::Greeting(m) => write!(f, "bad or missing QMP greeting: {m}"),
            Error::Negotiation(m) => write!(f, "capabilities negotiation failed: {m}"),
            Error::Protocol { reason, excerpt } => {
                write!(f, "protocol error: {reason} (received {excerpt:?})")
            }
            Error::TooLarge { limit } => write!(
                f,
                "message larger than the {limit}-byte limit (raise Options::max_message)"
            ),
            Error::Decode {
                command,
                source,
                json,
            } => write!(
                f,
                "cannot decode the reply of {command}: {source} in {json}"
            ),
            Error::Encode { command, source } => {
                write!(f, "cannot encode the arguments of {command}: {source}")
            }
            Error::OobUnavailable { command, reason } => {
                write!(f, "cannot run {command} out-of-band: {reason}")
            }
            Error::FdPassingUnsupported { command, reason } => {
                write!(f, "cannot pass file descriptors with {command}: {reason}")
            }
            Error::MissingBinary { program, install } => {
                write!(f, "{program} not found on PATH. {install}")
            }
            Error::Launch { program, reason } => write!(f, "{program}: {reason}"),
        }
    }
}

/// Every variant's `Display` already includes its cause (QEMU's reply, the OS or
/// serde error), so `source()` returns `None`: an error reporter that walks the
/// chain prints each cause once. The cause itself is a public field of the variant.
impl std::error::Error for Error {}
