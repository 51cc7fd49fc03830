//! A subscription's bounded queue of raw events (chosen by name), shared by the
//! session that fills it and the handle that empties it and decodes them: a consumer
//! on another thread takes its events without the connection's lock (a reader busy
//! with an event storm holds that lock nearly all the time, and a mutex does not
//! queue its waiters fairly), and decoding is the consumer's work, not the reader's.

use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard};

use crate::event::RawEvent;

/// Events of one subscription (drop-oldest at its capacity, drops counted).
pub(crate) struct SubQueue {
    state: Mutex<SubState>,
}

struct SubState {
    events: VecDeque<RawEvent>,
    capacity: usize,
    dropped: u64,
    /// The connection has closed: no more events will come.
    closed: bool,
}

impl SubQueue {
    pub(crate) fn new(capacity: usize) -> SubQueue {
        SubQueue {
            state: Mutex::new(SubState {
                events: VecDeque::new(),
                capacity: capacity.max(1),
                dropped: 0,
                closed: false,
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, SubState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues `events` (emptying it), dropping the oldest beyond the capacity.
    pub(crate) fn push_all(&self, events: &mut VecDeque<RawEvent>) {
        let mut st = self.lock();
        let st = &mut *st;
        let over = (st.events.len() + events.len()).saturating_sub(st.capacity);
        if over > 0 {
            let from_queue = over.min(st.events.len());
            st.events.drain(..from_queue);
            events.drain(..over - from_queue);
            st.dropped += over as u64;
        }
        st.events.append(events);
    }

    /// The oldest queued event.
    pub(crate) fn pop(&self) -> Option<RawEvent> {
        self.lock().events.pop_front()
    }

    /// Every queued event at once: swaps the queue with `into` (empty), so both
    /// buffers are reused. Returns whether the connection has closed (checked in the
    /// same lock, so `false` with nothing taken means more may come).
    #[cfg_attr(not(feature = "tokio"), allow(dead_code))]
    pub(crate) fn take_all(&self, into: &mut VecDeque<RawEvent>) -> bool {
        debug_assert!(into.is_empty());
        let mut st = self.lock();
        std::mem::swap(&mut st.events, into);
        st.closed
    }

    /// Events dropped because the queue was full.
    pub(crate) fn dropped(&self) -> u64 {
        self.lock().dropped
    }

    pub(crate) fn close(&self) {
        self.lock().closed = true;
    }
}
