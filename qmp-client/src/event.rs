//! Events: [`RawEvent`] as received, and [`EventFilter`], which selects events by
//! name and hands them out decoded once (typed with [`EventFilter::of`], as a whole
//! event set with [`EventFilter::set`], or raw).

use std::any::Any;
use std::fmt;
use std::sync::Arc;

use qapi_runtime::{EventSet, Timestamp, TypedEvent};

use crate::error::Error;

/// An event as received: the message is kept whole, name and data are slices of it.
/// Cloning shares the message (each subscription and the connection's queue hold the
/// same one).
#[derive(Clone)]
pub struct RawEvent {
    text: Arc<str>,
    name: (usize, usize),
    owned_name: Option<Box<str>>,
    data: Option<(usize, usize)>,
    timestamp: Timestamp,
    seq: u64,
}

impl RawEvent {
    /// An event from its wire JSON (`{"event": NAME, "data": {...}, "timestamp":
    /// {...}}`), for events that reach a program some other way (through libvirt, a log).
    pub fn from_json(text: &str) -> Result<RawEvent, Error> {
        #[derive(serde::Deserialize)]
        struct Wire<'a> {
            #[serde(borrow)]
            event: std::borrow::Cow<'a, str>,
            #[serde(borrow, default)]
            data: Option<&'a serde_json::value::RawValue>,
            #[serde(default)]
            timestamp: Timestamp,
        }
        let w: Wire<'_> = serde_json::from_str(text).map_err(|e| Error::Protocol {
            reason: format!("not an event: {e}"),
            excerpt: text.chars().take(200).collect(),
        })?;
        Ok(RawEvent::new(
            text,
            &w.event,
            w.data.map(|d| d.get()),
            w.timestamp,
            0,
        ))
    }

    pub(crate) fn new(
        text: &str,
        name: &str,
        data: Option<&str>,
        timestamp: Timestamp,
        seq: u64,
    ) -> RawEvent {
        let base = text.as_ptr() as usize;
        let range = |s: &str| -> Option<(usize, usize)> {
            let at = (s.as_ptr() as usize).checked_sub(base)?;
            (at + s.len() <= text.len()).then_some((at, at + s.len()))
        };
        let (name_range, owned_name) = match range(name) {
            Some(r) => (r, None),
            None => ((0, 0), Some(name.into())),
        };
        RawEvent {
            text: text.into(),
            name: name_range,
            owned_name,
            data: data.and_then(range),
            timestamp,
            seq,
        }
    }

    /// The event name, e.g. `STOP`.
    pub fn name(&self) -> &str {
        match &self.owned_name {
            Some(n) => n,
            None => &self.text[self.name.0..self.name.1],
        }
    }

    /// The JSON text of the `data` member (`None` when the event has no data).
    pub fn data(&self) -> Option<&str> {
        self.data.map(|(a, b)| &self.text[a..b])
    }

    /// The `data` member parsed into a [`serde_json::Value`] (`Null` when absent).
    pub fn data_value(&self) -> serde_json::Value {
        self.data()
            .and_then(|d| serde_json::from_str(d).ok())
            .unwrap_or(serde_json::Value::Null)
    }

    /// When QEMU emitted it (`-1`/`-1` when the host clock was unavailable).
    pub fn timestamp(&self) -> Timestamp {
        self.timestamp
    }

    /// The whole message as received.
    pub fn json(&self) -> &str {
        &self.text
    }

    /// Position in the connection's event stream (increases by one per event).
    pub fn sequence(&self) -> u64 {
        self.seq
    }

    /// Decodes into a typed event set (e.g. the generated `Event` enum).
    pub fn decode<E: EventSet>(&self) -> Result<E, Error> {
        E::decode_event(self.name(), self.data(), self.timestamp)
            .map_err(|e| Error::decode(self.name(), e, self.data().unwrap_or("")))
    }

    /// Decodes the data of one typed event (e.g. `qmp_types::qmp::events::Stop`);
    /// fails when the name is another event's.
    pub fn decode_typed<E: TypedEvent>(&self) -> Result<E, Error> {
        if self.name() != E::NAME {
            return Err(Error::Protocol {
                reason: format!("expected event {}", E::NAME),
                excerpt: self.name().to_owned(),
            });
        }
        E::decode_data(self.data())
            .map_err(|e| Error::decode(E::NAME, e, self.data().unwrap_or("")))
    }
}

impl fmt::Debug for RawEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RawEvent")
            .field("name", &self.name())
            .field("data", &self.data())
            .field("timestamp", &self.timestamp)
            .field("seq", &self.seq)
            .finish()
    }
}

/// A decoded event, type-erased while it travels through the protocol core (the
/// filter that made it knows its type and downcasts it back).
pub(crate) type Decoded = Box<dyn Any + Send>;

/// What the core calls on each event: `Some` (the decoded value) when it is accepted.
pub(crate) type Matcher = Box<dyn FnMut(&RawEvent) -> Option<Decoded> + Send>;

type Predicate<T> = Box<dyn Fn(&T) -> bool + Send + Sync>;

/// Which events a subscription or a call's wait accepts, and what it hands out:
/// `T` is [`RawEvent`] ([`EventFilter::name`], [`EventFilter::any`]), `(E, Timestamp)`
/// for one generated event type ([`EventFilter::of`]) or a whole event set
/// ([`EventFilter::set`]). Each accepted event is decoded once, before the predicate
/// of [`EventFilter::matching`] sees it; events that fail to decode are not accepted.
///
/// # Examples
///
/// ```
/// use qmp_client::{EventFilter, RawEvent};
/// // Raw, by name, with a predicate on the JSON data.
/// let deleted = EventFilter::name("DEVICE_DELETED")
///     .matching(|e: &RawEvent| e.data_value()["device"] == "disk0");
/// # let _ = deleted;
/// // Typed (with qmp-types): EventFilter::of::<qmp_types::qmp::events::DeviceDeleted>()
/// //     .matching(|(e, _)| e.device.as_deref() == Some("disk0"))
/// ```
pub struct EventFilter<T = RawEvent> {
    names: Vec<String>,
    decode: fn(&RawEvent) -> Result<T, Error>,
    predicate: Option<Predicate<T>>,
}

impl<T> fmt::Debug for EventFilter<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventFilter")
            .field("names", &self.names)
            .field("predicate", &self.predicate.is_some())
            .finish()
    }
}

fn raw(e: &RawEvent) -> Result<RawEvent, Error> {
    Ok(e.clone())
}

fn typed<E: TypedEvent>(e: &RawEvent) -> Result<(E, Timestamp), Error> {
    Ok((e.decode_typed::<E>()?, e.timestamp()))
}

fn set<S: EventSet>(e: &RawEvent) -> Result<S, Error> {
    e.decode::<S>()
}

impl EventFilter<RawEvent> {
    /// Accepts any event, raw.
    pub fn any() -> EventFilter<RawEvent> {
        EventFilter::names(&[])
    }

    /// Accepts an event with this name, raw.
    pub fn name(name: &str) -> EventFilter<RawEvent> {
        EventFilter::names(&[name])
    }

    /// Accepts an event with any of these names (none: any event), raw.
    pub fn names(names: &[&str]) -> EventFilter<RawEvent> {
        EventFilter {
            names: names.iter().map(|s| (*s).to_owned()).collect(),
            decode: raw,
            predicate: None,
        }
    }

    /// Accepts the event `E` (by its wire name [`TypedEvent::NAME`]) and hands it out
    /// decoded, with its timestamp: `EventFilter::of::<events::DeviceDeleted>()`.
    pub fn of<E: TypedEvent>() -> EventFilter<(E, Timestamp)> {
        EventFilter {
            names: vec![E::NAME.to_owned()],
            decode: typed::<E>,
            predicate: None,
        }
    }

    /// Accepts any event that decodes into the event set `S` (e.g. the generated
    /// `qmp_types::qmp::Event`, which keeps unknown events as `Other`).
    pub fn set<S: EventSet>() -> EventFilter<S> {
        EventFilter {
            names: Vec::new(),
            decode: set::<S>,
            predicate: None,
        }
    }
}

impl<T: Send + 'static> EventFilter<T> {
    /// Also requires `predicate` to hold for the decoded event.
    pub fn matching(mut self, predicate: impl Fn(&T) -> bool + Send + Sync + 'static) -> Self {
        self.predicate = Some(Box::new(predicate));
        self
    }

    pub(crate) fn into_matcher(self) -> Matcher {
        Box::new(move |e| self.accept(e).map(|v| Box::new(v) as Decoded))
    }
}

impl<T> EventFilter<T> {
    /// The event names accepted (empty: any).
    pub fn event_names(&self) -> &[String] {
        &self.names
    }

    /// The decoded event when `event` passes the filter.
    pub fn accept(&self, event: &RawEvent) -> Option<T> {
        if !self.names.is_empty() && !self.names.iter().any(|n| n == event.name()) {
            return None;
        }
        let value = (self.decode)(event).ok()?;
        self.predicate
            .as_ref()
            .is_none_or(|p| p(&value))
            .then_some(value)
    }

    /// Whether `event` passes the filter.
    pub fn accepts(&self, event: &RawEvent) -> bool {
        self.accept(event).is_some()
    }

    pub(crate) fn describe(&self) -> String {
        if self.names.is_empty() {
            "an event".to_owned()
        } else {
            format!("event {}", self.names.join(" or "))
        }
    }
}

/// Turns a value decoded by an [`EventFilter<T>`]'s matcher back into `T`.
pub(crate) fn downcast<T: 'static>(d: Decoded) -> T {
    match d.downcast::<T>() {
        Ok(v) => *v,
        // The matcher and the consumer come from the same EventFilter<T>.
        Err(_) => unreachable!("event decoded by another filter's type"),
    }
}
