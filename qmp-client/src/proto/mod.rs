//! The sans-IO protocol core: one state machine for QMP and the guest agent that
//! does no I/O. Bytes go in ([`Session::receive_with`], [`Session::eof`]), bytes to
//! write come out ([`Session::poll_transmit`]), calls complete by id
//! ([`Session::take`]); time is passed in ([`Session::expire_due`]).
//!
//! It owns the greeting and capability negotiation, framing, ids, reply matching,
//! event routing (the connection's queue, subscriptions, a call's armed wait),
//! resynchronisation (a control byte after a cut write; 0xFF and
//! `guest-sync-delimited` for the agent) and the size limit. The blocking and the
//! tokio clients are thin drivers around it.

mod envelope;
mod sub;
#[cfg(test)]
mod tests;

pub(crate) use sub::SubQueue;

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;
use std::time::Instant;

/// A map keyed by the ids this crate hands out (call and subscription counters):
/// they need no protection against chosen keys, so SipHash's cost is saved.
pub(crate) type IdMap<V> = HashMap<u64, V, BuildHasherDefault<IdHasher>>;

/// Fibonacci hashing of one `u64` (the only thing an [`IdMap`] hashes).
#[derive(Default)]
pub(crate) struct IdHasher(u64);

impl Hasher for IdHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

use log::{debug, log_enabled, trace, Level};

use crate::conn::{escape_lossy, format_u64, qmp_error, Stats, WIRE_TARGET};
use crate::error::Error;
use crate::event::{Decoded, Matcher, RawEvent};
use crate::framing::Framer;
use crate::options::{parse_greeting, Greeting, OobPolicy, Options};
use crate::redact::redact;
use crate::request::{begin_request, Request};
use envelope::{next_msg, Msg};

/// Bytes to write, in order. `id` names the request they carry (its fds ride on them).
#[derive(Debug)]
pub(crate) struct Transmit {
    pub(crate) id: Option<u64>,
    pub(crate) bytes: Vec<u8>,
}

/// A completed call: the `return` JSON text and the event it waited for.
pub(crate) struct Done {
    pub(crate) json: String,
    pub(crate) event: Option<Decoded>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Call,
    Capabilities,
    Sync(u64),
}

struct Pending {
    command: Cow<'static, str>,
    kind: Kind,
    started: Instant,
    oob: bool,
    /// Nothing comes back on success (`success-response: false`).
    no_reply: bool,
    /// Nobody takes the completion (an automatic resync).
    internal: bool,
    reply: Option<String>,
    wait: Option<(Matcher, String)>,
    event: Option<Decoded>,
    /// When [`Session::expire_due`] fails it (drivers with one timer per connection).
    #[cfg_attr(not(feature = "tokio"), allow(dead_code))]
    deadline: Option<Instant>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Greeting,
    Negotiating,
    Ready,
    Failed,
}

/// A subscription as the core sees it: names to route by (empty: every event); its
/// handle decodes and filters further.
struct Sub {
    names: Vec<String>,
    queue: Arc<SubQueue>,
    /// Events of the read being processed, queued together when it is done (one
    /// lock of the shared queue per read, not per event).
    staged: VecDeque<RawEvent>,
}

/// Which protocol a session speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flavor {
    Qmp,
    Qga,
}

/// The protocol state of one connection.
pub(crate) struct Session {
    framer: Framer,
    st: State,
}

struct State {
    flavor: Flavor,
    /// When the session began (the handshake's start).
    created: Instant,
    max_message: usize,
    stats: Stats,
    phase: Phase,
    handshake_error: Option<Error>,
    oob_policy: OobPolicy,
    greeting: Option<Greeting>,
    oob: bool,
    next_id: u64,
    pending: BTreeMap<u64, Pending>,
    done: IdMap<Result<Done, Error>>,
    outbox: VecDeque<Transmit>,
    partial_write: bool,
    resyncs_pending: u32,
    needs_sync: bool,
    delimited: bool,
    seq: u64,
    queue: VecDeque<RawEvent>,
    capacity: usize,
    subs: IdMap<Sub>,
    next_sub: u64,
    closed: bool,
}

impl Session {
    /// A QMP session: waits for the greeting, then negotiates (unless
    /// [`Options::negotiate`] is off, when it starts ready).
    pub(crate) fn qmp(opts: &Options) -> Session {
        let mut s = Session::new(Flavor::Qmp, opts, 1);
        if !opts.negotiate {
            s.st.phase = Phase::Ready;
        }
        s
    }

    /// A guest agent session: starts with 0xFF + `guest-sync-delimited` queued. Ids
    /// start at a random base, so a stale reply left by a previous client of the
    /// same port cannot match one of ours.
    pub(crate) fn qga(opts: &Options) -> Session {
        let mut s = Session::new(Flavor::Qga, opts, (random_id() >> 32) + 1);
        s.st.phase = Phase::Negotiating;
        s.st.queue_sync(None, false);
        s
    }

    fn new(flavor: Flavor, opts: &Options, first_id: u64) -> Session {
        Session {
            framer: Framer::new(opts.max_message),
            st: State {
                flavor,
                created: Instant::now(),
                max_message: opts.max_message,
                stats: Stats::default(),
                phase: Phase::Greeting,
                handshake_error: None,
                oob_policy: opts.oob,
                greeting: None,
                oob: false,
                next_id: first_id,
                pending: BTreeMap::new(),
                done: IdMap::default(),
                outbox: VecDeque::new(),
                partial_write: false,
                resyncs_pending: 0,
                needs_sync: false,
                delimited: false,
                seq: 0,
                queue: VecDeque::new(),
                capacity: opts.event_capacity,
                subs: IdMap::default(),
                next_sub: 0,
                closed: false,
            },
        }
    }

    /// `None` while the handshake (greeting and negotiation, or the agent's first
    /// sync) is under way; then its outcome (the error is handed out once).
    pub(crate) fn handshake(&mut self) -> Option<Result<(), Error>> {
        match self.st.phase {
            Phase::Ready => Some(Ok(())),
            Phase::Failed => Some(Err(self
                .st
                .handshake_error
                .take()
                .unwrap_or(Error::Disconnected { command: None }))),
            Phase::Greeting | Phase::Negotiating => None,
        }
    }

    /// The error of a handshake still under way at its deadline (`now`): what it
    /// was waiting for, and since when.
    pub(crate) fn handshake_timeout(&self, now: Instant) -> Error {
        let waiting_for = match (self.st.flavor, &self.st.greeting) {
            (Flavor::Qga, _) => "guest-sync-delimited",
            (Flavor::Qmp, None) => {
                "the QMP greeting (is another client connected to this monitor?)"
            }
            (Flavor::Qmp, Some(_)) => "qmp_capabilities",
        };
        Error::Timeout {
            waiting_for: waiting_for.to_owned(),
            waited: now.saturating_duration_since(self.st.created),
        }
    }

    pub(crate) fn greeting(&self) -> Option<&Greeting> {
        self.st.greeting.as_ref()
    }

    pub(crate) fn oob_enabled(&self) -> bool {
        self.st.oob
    }

    pub(crate) fn stats(&self) -> Stats {
        self.st.stats
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.st.closed
    }

    /// Queues a request; returns its id. Its bytes come out of [`Session::poll_transmit`]
    /// (after a resync, when one is due).
    pub(crate) fn request<T>(
        &mut self,
        req: &mut Request<'_, T>,
        now: Instant,
    ) -> Result<u64, Error> {
        let st = &mut self.st;
        if st.closed {
            return Err(Error::Disconnected { command: None });
        }
        if req.oob {
            let reason = match st.flavor {
                Flavor::Qga => Some("the guest agent has no out-of-band execution"),
                Flavor::Qmp if !st.oob => Some("oob was not negotiated on this connection"),
                Flavor::Qmp if !req.allow_oob => {
                    Some("the command does not allow out-of-band execution")
                }
                Flavor::Qmp => None,
            };
            if let Some(reason) = reason {
                return Err(Error::OobUnavailable {
                    command: req.name.to_string(),
                    reason,
                });
            }
        }
        if !req.fds.is_empty() && st.flavor == Flavor::Qga {
            return Err(Error::FdPassingUnsupported {
                command: req.name.to_string(),
                reason: "the guest agent takes no file descriptors",
            });
        }
        let mut w = Vec::with_capacity(64 + req.name.len());
        req.encode_into(&mut w)?;
        if st.needs_sync {
            st.queue_sync(None, true);
        }
        let id = st.next_id;
        st.next_id += 1;
        w.extend_from_slice(b",\"id\":");
        w.extend_from_slice(format_u64(id, &mut [0u8; 20]));
        w.push(b'}');
        st.push_transmit(Some(id), w);
        let no_reply = !req.success_response;
        st.pending.insert(
            id,
            Pending {
                command: match req.static_name {
                    Some(n) => Cow::Borrowed(n),
                    None => Cow::Owned(req.name.to_string()),
                },
                kind: Kind::Call,
                started: now,
                oob: req.oob,
                no_reply,
                internal: false,
                reply: None,
                wait: req.wait.take(),
                event: None,
                deadline: None,
            },
        );
        if no_reply {
            match st.flavor {
                // The agent says nothing on success: a sync right after proves the
                // command was consumed; an error reply before it is the failure.
                Flavor::Qga => {
                    st.queue_sync(None, true);
                }
                // No QMP command has `success-response: false`: succeed at once.
                Flavor::Qmp => st.complete_ok(id, "{}".into()),
            }
        }
        Ok(id)
    }

    /// Queues 0xFF + `guest-sync-delimited` (guest agent only) as a call whose
    /// completion [`Session::take`] returns.
    pub(crate) fn sync(&mut self, now: Instant) -> u64 {
        self.st.queue_sync(Some(now), false)
    }

    /// The next bytes to write.
    pub(crate) fn poll_transmit(&mut self) -> Option<Transmit> {
        self.st.outbox.pop_front()
    }

    /// A write failed. `partial`: some of its bytes went out, so the peer's parser
    /// holds a partial request: the next request starts with a control byte (QMP) or
    /// a resync (agent). `id`'s call fails with `error`; later queued bytes are dropped.
    pub(crate) fn write_failed(&mut self, id: Option<u64>, partial: bool, error: Error) {
        let st = &mut self.st;
        if partial {
            match st.flavor {
                Flavor::Qmp => st.partial_write = true,
                Flavor::Qga => st.needs_sync = true,
            }
        }
        if let Some(id) = id {
            if st.pending.remove(&id).is_some() {
                st.done.insert(id, Err(error));
            }
        }
    }

    /// Takes the outcome of a call when it is complete.
    pub(crate) fn take(&mut self, id: u64) -> Option<Result<Done, Error>> {
        self.st.done.remove(&id)
    }

    /// Every completed call (for a driver that routes completions itself).
    #[cfg_attr(not(feature = "tokio"), allow(dead_code))]
    pub(crate) fn drain_completed(
        &mut self,
    ) -> std::collections::hash_map::Drain<'_, u64, Result<Done, Error>> {
        self.st.done.drain()
    }

    /// Whether `id`'s outcome is waiting to be taken.
    #[cfg_attr(not(feature = "tokio"), allow(dead_code))]
    pub(crate) fn is_done(&self, id: u64) -> bool {
        self.st.done.contains_key(&id)
    }

    /// Frees the read buffer when it holds nothing and no call waits for a reply:
    /// an idle connection then keeps no buffer (a fleet of them, none each).
    #[cfg_attr(not(feature = "tokio"), allow(dead_code))]
    pub(crate) fn release_idle_buffer(&mut self) {
        if self.st.pending.is_empty() {
            self.framer.release_if_drained();
        }
    }

    /// The caller gave up on `id` (a dropped future): its late reply will be
    /// discarded.
    pub(crate) fn abandon(&mut self, id: u64) {
        self.st.pending.remove(&id);
        self.st.done.remove(&id);
    }

    /// Fails `id` with [`Error::Timeout`] now, if it is still pending.
    pub(crate) fn expire(&mut self, id: u64, now: Instant) {
        self.st.expire(id, now);
    }

    /// Gives call `id` a deadline for [`Session::expire_due`] (the tokio driver's; the
    /// blocking one polls against each call's own deadline).
    #[cfg_attr(not(feature = "tokio"), allow(dead_code))]
    pub(crate) fn set_deadline(&mut self, id: u64, deadline: Instant) {
        if let Some(p) = self.st.pending.get_mut(&id) {
            p.deadline = Some(deadline);
        }
    }

    /// Fails every call whose deadline has passed at `now` (as [`Session::expire`]);
    /// returns the earliest deadline left. One pass over the calls in flight: a
    /// driver calls it when its one timer fires, not per call.
    #[cfg_attr(not(feature = "tokio"), allow(dead_code))]
    pub(crate) fn expire_due(&mut self, now: Instant) -> Option<Instant> {
        let mut next: Option<Instant> = None;
        let mut due = Vec::new();
        for (&id, p) in &self.st.pending {
            match p.deadline {
                Some(d) if d <= now => due.push(id),
                Some(d) => next = Some(next.map_or(d, |n| n.min(d))),
                None => {}
            }
        }
        for id in due {
            self.st.expire(id, now);
        }
        next
    }

    /// Reads more input with `read` (given free buffer space; returns the byte
    /// count, 0 at end of stream) and processes every complete message.
    ///
    /// # Safety
    ///
    /// `read` gets uninitialised space and must have initialised the first `n` bytes
    /// of it when it returns `Ok(n)` (as `recv(2)` into it does).
    pub(crate) unsafe fn receive_with(
        &mut self,
        read: impl FnOnce(&mut [std::mem::MaybeUninit<u8>]) -> std::io::Result<usize>,
    ) -> std::io::Result<usize> {
        // SAFETY: passed on to our caller (see above).
        let n = unsafe { self.framer.fill(read) }?;
        if n == 0 {
            self.eof();
        } else {
            self.process();
        }
        Ok(n)
    }

    /// Feeds bytes (tests and drivers that read into their own buffer).
    #[cfg(test)]
    pub(crate) fn receive(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            self.framer.fill_from(&mut bytes);
            self.process();
        }
    }

    /// The peer closed the stream: every pending call fails ("outcome unknown"),
    /// except the agent's calls that send nothing on success (the agent exits after
    /// `guest-shutdown`), which succeed.
    pub(crate) fn eof(&mut self) {
        self.close(|command| Error::Disconnected {
            command: Some(command.to_owned()),
        });
    }

    /// The connection failed with an I/O error: like [`Session::eof`].
    pub(crate) fn io_error(&mut self, kind: std::io::ErrorKind, message: &str) {
        self.close(|command| Error::Io {
            command: Some(command.to_owned()),
            source: std::io::Error::new(kind, message.to_owned()),
        });
    }

    fn close(&mut self, err: impl Fn(&str) -> Error) {
        let st = &mut self.st;
        st.closed = true;
        for sub in st.subs.values() {
            sub.queue.close();
        }
        if matches!(st.phase, Phase::Greeting | Phase::Negotiating) {
            st.phase = Phase::Failed;
            st.handshake_error = Some(Error::Disconnected { command: None });
        }
        for (id, p) in std::mem::take(&mut st.pending) {
            if p.internal {
                continue;
            }
            let outcome = if p.no_reply {
                Ok(Done {
                    json: "{}".into(),
                    event: None,
                })
            } else if matches!(p.kind, Kind::Sync(_)) {
                Err(Error::Disconnected { command: None })
            } else {
                Err(err(&p.command))
            };
            st.done.insert(id, outcome);
        }
    }

    fn process(&mut self) {
        loop {
            match next_msg(&mut self.framer, &mut self.st.stats, self.st.max_message) {
                Ok(Some(msg)) => self.st.route(msg),
                Ok(None) => break,
                Err(e) => self.st.stream_error(e),
            }
        }
        for sub in self.st.subs.values_mut() {
            if !sub.staged.is_empty() {
                sub.queue.push_all(&mut sub.staged);
            }
        }
    }

    /// The connection's own event queue (events no call's wait took).
    pub(crate) fn pop_event(&mut self) -> Option<RawEvent> {
        self.st.queue.pop_front()
    }

    /// Removes and returns the first queued event `accept` takes.
    pub(crate) fn take_event_where(
        &mut self,
        mut accept: impl FnMut(&RawEvent) -> bool,
    ) -> Option<RawEvent> {
        let i = self.st.queue.iter().position(&mut accept)?;
        self.st.queue.remove(i)
    }

    /// Removes and returns every queued event.
    pub(crate) fn drain_events(&mut self) -> Vec<RawEvent> {
        self.st.queue.drain(..).collect()
    }

    /// Adds a subscription to the events named `names` (empty: all), with its own
    /// bounded queue (drop-oldest, counted), which is returned too, for a driver to
    /// empty without the session.
    pub(crate) fn subscribe(&mut self, names: &[String], capacity: usize) -> (u64, Arc<SubQueue>) {
        let id = self.st.next_sub;
        self.st.next_sub += 1;
        let queue = Arc::new(SubQueue::new(capacity));
        if self.st.closed {
            queue.close();
        }
        self.st.subs.insert(
            id,
            Sub {
                names: names.to_vec(),
                queue: queue.clone(),
                staged: VecDeque::new(),
            },
        );
        (id, queue)
    }

    pub(crate) fn unsubscribe(&mut self, sub: u64) {
        self.st.subs.remove(&sub);
    }
}

impl State {
    fn push_transmit(&mut self, id: Option<u64>, body: Vec<u8>) {
        let mut bytes = body;
        if self.partial_write && self.flavor == Flavor::Qmp {
            // A control byte makes QEMU's lexer drop the partial request; its id-less
            // error answer is expected and swallowed.
            bytes.insert(0, 0x1b);
            self.partial_write = false;
            self.resyncs_pending += 1;
        }
        if log_enabled!(target: WIRE_TARGET, Level::Trace) {
            let split = bytes.iter().position(|&b| b == b'{').unwrap_or(0);
            let body = String::from_utf8_lossy(&bytes[split..]);
            trace!(target: WIRE_TARGET, ">> {}{}", escape_lossy(&bytes[..split]), redact(&body));
        }
        self.stats.requests += 1;
        self.outbox.push_back(Transmit { id, bytes });
    }

    /// Queues 0xFF + `guest-sync-delimited` with a fresh random token.
    fn queue_sync(&mut self, started: Option<Instant>, internal: bool) -> u64 {
        self.needs_sync = false;
        let token = random_id();
        let mut w = vec![0xFF];
        begin_request(&mut w, "guest-sync-delimited", false);
        w.extend_from_slice(b",\"arguments\":{\"id\":");
        w.extend_from_slice(format_u64(token, &mut [0u8; 20]));
        w.extend_from_slice(b"}}");
        let id = self.next_id;
        self.next_id += 1;
        self.push_transmit(None, w);
        let now = Instant::now();
        self.pending.insert(
            id,
            Pending {
                command: "guest-sync-delimited".into(),
                kind: Kind::Sync(token),
                started: started.unwrap_or(now),
                oob: false,
                no_reply: false,
                internal,
                reply: None,
                wait: None,
                event: None,
                deadline: None,
            },
        );
        id
    }

    fn syncing(&self) -> bool {
        self.pending
            .values()
            .any(|p| matches!(p.kind, Kind::Sync(_)))
    }

    fn expire(&mut self, id: u64, now: Instant) {
        let Some(p) = self.pending.remove(&id) else {
            return;
        };
        if self.flavor == Flavor::Qga {
            // The agent may still answer, or hold a partial line: resync first.
            self.needs_sync = true;
        }
        if p.internal {
            return;
        }
        let waiting_for = match (&p.reply, &p.wait) {
            (Some(_), Some((_, desc))) => format!("{desc} after {}", p.command),
            _ => p.command.to_string(),
        };
        self.done.insert(
            id,
            Err(Error::Timeout {
                waiting_for,
                waited: now.saturating_duration_since(p.started),
            }),
        );
    }

    fn complete_ok(&mut self, id: u64, json: String) {
        if let Some(p) = self.pending.remove(&id) {
            if !p.internal {
                self.done.insert(
                    id,
                    Ok(Done {
                        json,
                        event: p.event,
                    }),
                );
            }
        }
    }

    fn complete_err(&mut self, id: u64, e: Error) {
        if let Some(p) = self.pending.remove(&id) {
            if !p.internal {
                self.done.insert(id, Err(e));
            }
        }
    }

    /// The call a stream error or an id-less error belongs to: the oldest in-band
    /// request still waiting for its reply (QEMU answers in-band requests in order).
    fn oldest_awaiting(&self) -> Option<u64> {
        self.pending
            .iter()
            .find(|(_, p)| {
                p.reply.is_none() && !p.oob && !p.no_reply && !matches!(p.kind, Kind::Sync(_))
            })
            .map(|(id, _)| *id)
    }

    fn stream_error(&mut self, e: Error) {
        if self.flavor == Flavor::Qga {
            if self.syncing() {
                // Stale garbage or an oversized stale reply: keep skipping.
                return;
            }
            self.needs_sync = true;
        }
        match self.oldest_awaiting() {
            Some(id) => self.fail_call(id, e),
            None => debug!("{e} (no call in flight)"),
        }
    }

    fn fail_call(&mut self, id: u64, e: Error) {
        if self.pending.get(&id).map(|p| p.kind) == Some(Kind::Capabilities) {
            self.phase = Phase::Failed;
            self.handshake_error = Some(match e {
                Error::Qmp(q) => Error::Negotiation(q.to_string()),
                other => other,
            });
            self.pending.remove(&id);
        } else {
            self.complete_err(id, e);
        }
    }

    fn route(&mut self, msg: Msg<'_>) {
        match msg {
            Msg::Greeting(g) => self.on_greeting(g),
            Msg::Sentinel => {
                if self.flavor == Flavor::Qga {
                    self.delimited = true;
                }
            }
            Msg::Event {
                text,
                name,
                data,
                timestamp,
            } => {
                let ev = RawEvent::new(text, &name, data, timestamp, self.seq);
                self.seq += 1;
                self.on_event(ev);
            }
            Msg::Reply { id, result } => {
                let known = id.filter(|id| self.pending.contains_key(id));
                match (known, result) {
                    (Some(id), result) => self.on_reply(id, result.map(str::to_owned)),
                    (None, Ok(json)) if id.is_none() && self.flavor == Flavor::Qga => {
                        self.on_sync_reply(json)
                    }
                    (None, Err((class, desc))) if id.is_none() && self.resyncs_pending > 0 => {
                        debug!(
                            "discarding id-less error {class}: {desc} (answers our resync byte)"
                        );
                        self.resyncs_pending -= 1;
                        self.stats.discarded_replies += 1;
                    }
                    (None, Err((class, desc))) if id.is_none() && self.flavor == Flavor::Qmp => {
                        // QEMU could not parse what we wrote (its parse errors carry no
                        // id): the error belongs to the oldest call awaiting a reply.
                        match self.oldest_awaiting() {
                            Some(call) => {
                                let command = self.pending[&call].command.clone();
                                self.fail_call(call, qmp_error(&command, &class, &desc));
                            }
                            None => self.stats.discarded_replies += 1,
                        }
                    }
                    (None, _) => {
                        debug!("discarding reply with id {id:?}: its call timed out, was cancelled or is not ours");
                        self.stats.discarded_replies += 1;
                    }
                }
            }
        }
    }

    fn on_greeting(&mut self, g: &str) {
        if self.flavor != Flavor::Qmp || self.phase != Phase::Greeting {
            return;
        }
        let greeting = match parse_greeting(g) {
            Ok(g) => g,
            Err(e) => {
                self.phase = Phase::Failed;
                self.handshake_error = Some(e);
                return;
            }
        };
        let offered = greeting.capabilities.iter().any(|c| c == "oob");
        let enable = match self.oob_policy {
            OobPolicy::Never => false,
            OobPolicy::IfOffered => offered,
            OobPolicy::Require if offered => true,
            OobPolicy::Require => {
                self.phase = Phase::Failed;
                self.handshake_error = Some(Error::Negotiation(
                    "the greeting does not offer the required oob capability".into(),
                ));
                return;
            }
        };
        self.greeting = Some(greeting);
        self.oob = enable;
        let mut w = Vec::new();
        begin_request(&mut w, "qmp_capabilities", false);
        if enable {
            w.extend_from_slice(b",\"arguments\":{\"enable\":[\"oob\"]}");
        }
        let id = self.next_id;
        self.next_id += 1;
        w.extend_from_slice(b",\"id\":");
        w.extend_from_slice(format_u64(id, &mut [0u8; 20]));
        w.push(b'}');
        self.push_transmit(Some(id), w);
        let now = Instant::now();
        self.pending.insert(
            id,
            Pending {
                command: "qmp_capabilities".into(),
                kind: Kind::Capabilities,
                started: now,
                oob: false,
                no_reply: false,
                internal: true,
                reply: None,
                wait: None,
                event: None,
                deadline: None,
            },
        );
        self.phase = Phase::Negotiating;
    }

    fn on_sync_reply(&mut self, json: &str) {
        let token = json.trim().parse::<u64>().ok();
        let matched = self.delimited
            && token.is_some_and(|t| self.pending.values().any(|p| p.kind == Kind::Sync(t)));
        if !matched {
            self.stats.discarded_replies += 1;
            return;
        }
        // Every sync and every reply-less call before it is settled: the agent has
        // consumed all of them.
        self.delimited = false;
        let settled: Vec<(u64, Kind, bool)> = self
            .pending
            .iter()
            .filter(|(_, p)| matches!(p.kind, Kind::Sync(_)) || p.no_reply)
            .map(|(id, p)| (*id, p.kind, p.no_reply))
            .collect();
        let last_sync = settled
            .iter()
            .filter(|(_, k, _)| *k == Kind::Sync(token.unwrap_or(0)))
            .map(|(id, _, _)| *id)
            .next_back()
            .unwrap_or(0);
        for (id, _, _) in settled.into_iter().filter(|(id, _, _)| *id <= last_sync) {
            self.complete_ok(id, "{}".into());
        }
        if self.phase == Phase::Negotiating {
            self.phase = Phase::Ready;
        }
    }

    fn on_reply(
        &mut self,
        id: u64,
        result: Result<String, (std::borrow::Cow<'_, str>, std::borrow::Cow<'_, str>)>,
    ) {
        let Some(p) = self.pending.get_mut(&id) else {
            return;
        };
        match (p.kind, result) {
            (Kind::Capabilities, Ok(_)) => {
                self.pending.remove(&id);
                self.phase = Phase::Ready;
            }
            (Kind::Capabilities, Err((class, desc))) => {
                let e = qmp_error("qmp_capabilities", &class, &desc);
                self.fail_call(id, e);
            }
            (Kind::Sync(_), _) => self.stats.discarded_replies += 1,
            (Kind::Call, Err((class, desc))) => {
                let e = qmp_error(&p.command, &class, &desc);
                self.complete_err(id, e);
            }
            (Kind::Call, Ok(json)) => {
                if p.wait.is_some() && p.event.is_none() {
                    p.reply = Some(json);
                } else {
                    self.complete_ok(id, json);
                }
            }
        }
    }

    fn on_event(&mut self, ev: RawEvent) {
        self.stats.events += 1;
        let mut taken = None;
        for (id, p) in self.pending.iter_mut() {
            if p.event.is_some() {
                continue;
            }
            if let Some((matcher, _)) = &mut p.wait {
                if let Some(decoded) = matcher(&ev) {
                    p.event = Some(decoded);
                    taken = Some(*id);
                    break;
                }
            }
        }
        for sub in self.subs.values_mut() {
            if sub.names.is_empty() || sub.names.iter().any(|n| n == ev.name()) {
                sub.staged.push_back(ev.clone());
            }
        }
        match taken {
            Some(id) => {
                if let Some(json) = self.pending.get_mut(&id).and_then(|p| p.reply.take()) {
                    self.complete_ok(id, json);
                }
            }
            None => {
                if self.queue.len() >= self.capacity {
                    self.queue.pop_front();
                    self.stats.dropped_events += 1;
                }
                self.queue.push_back(ev);
            }
        }
    }
}

/// A random positive 63-bit id from std's randomly seeded hasher.
pub(crate) fn random_id() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.finish() & (i64::MAX as u64)
}
