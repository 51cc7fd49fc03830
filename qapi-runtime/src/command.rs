//! The traits the generated API implements and the transport executes.
//!
//! They are deliberately non-generic over serde's `Serializer`/`Deserializer`: the
//! generated impls call serde_json inside this crate, so a user's crate that executes
//! a typed command instantiates no serde code of its own (fast rebuilds).

/// A QMP (or guest agent) command: its wire name, its arguments (the implementing
/// value) and its typed return. Every generated command type implements it; the
/// transport executes any `Command`.
pub trait Command {
    /// The wire name, e.g. `query-status`.
    const NAME: &'static str;
    /// Whether the command takes arguments; when false the request has no `arguments` member.
    const HAS_ARGUMENTS: bool;
    /// `allow-oob: true`: the command may be executed out-of-band (`exec-oob`).
    const ALLOW_OOB: bool;
    /// `success-response: false` makes this false: the server sends no reply on success.
    const SUCCESS_RESPONSE: bool;
    /// The typed value of the `return` member of a successful reply.
    type Returns;

    /// Appends the compact JSON `arguments` object to `out` (writes nothing when
    /// [`Command::HAS_ARGUMENTS`] is false).
    fn write_arguments(&self, out: &mut Vec<u8>) -> Result<(), serde_json::Error>;

    /// Decodes the JSON text of the reply's `return` member.
    fn decode_return(json: &str) -> Result<Self::Returns, serde_json::Error>;

    /// Appends the compact JSON of a `return` value to `out` (`{}` for commands that
    /// return nothing): what a server, such as a mock server in a test, replies.
    /// Generated commands implement it; the default refuses, for hand-written commands.
    fn write_return(ret: &Self::Returns, out: &mut Vec<u8>) -> Result<(), serde_json::Error> {
        let _ = (ret, out);
        Err(serde::ser::Error::custom(format!(
            "{}: this command type cannot write its return value",
            Self::NAME
        )))
    }
}

/// The time QEMU attached to an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct Timestamp {
    /// Seconds since the Unix epoch.
    pub seconds: i64,
    /// Microseconds within the second.
    pub microseconds: i64,
}

/// One generated event type: its wire name and how its `data` member decodes, so
/// that a client can subscribe by type and hand out the typed value with no second
/// decode.
pub trait TypedEvent: Sized {
    /// The wire name, e.g. `DEVICE_DELETED`.
    const NAME: &'static str;

    /// Decodes the JSON text of the event's `data` member (`None` when absent).
    fn decode_data(data: Option<&str>) -> Result<Self, serde_json::Error>;

    /// Appends the compact JSON of the event's `data` member to `out`, or nothing for
    /// an event without data (what a server sends).
    fn write_data(&self, out: &mut Vec<u8>);
}

/// A typed event set (the generated `Event` enum of a schema) that the transport can
/// decode received events into.
pub trait EventSet: Sized {
    /// Decodes an event from its wire name, the JSON text of its `data` member (`None`
    /// when absent) and its timestamp. Unknown names must decode (to a catch-all
    /// variant), never fail.
    fn decode_event(
        name: &str,
        data: Option<&str>,
        timestamp: Timestamp,
    ) -> Result<Self, serde_json::Error>;
}

/// A value whose type changed within the supported QEMU range (a string that became
/// an object, a struct that became a union, ...): decoded as this schema's type `T`
/// when it has that shape, kept as JSON otherwise. Either way it serializes back
/// unchanged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Versioned<T> {
    /// The value in this schema's shape.
    Current(T),
    /// The value in another release's shape, as it came.
    Other(serde_json::Value),
}

impl<T> Versioned<T> {
    /// The value, when it has this schema's shape.
    pub fn current(&self) -> Option<&T> {
        match self {
            Versioned::Current(v) => Some(v),
            Versioned::Other(_) => None,
        }
    }

    /// The value, when it has this schema's shape.
    pub fn into_current(self) -> Option<T> {
        match self {
            Versioned::Current(v) => Some(v),
            Versioned::Other(_) => None,
        }
    }
}

impl<T> From<T> for Versioned<T> {
    fn from(v: T) -> Self {
        Versioned::Current(v)
    }
}
