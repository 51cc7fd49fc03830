//! The readers: one task per runtime worker reads and routes the input of many
//! connections, and keeps their deadlines, instead of a task per connection.
//!
//! Why: with a task per connection, a thousand replies arriving together make a
//! thousand tasks runnable at once. Each tokio worker's queue holds 256 and the rest
//! wait in the runtime's global queue, which a busy worker visits rarely: that wait
//! set the tail latency. A reader takes ready connections from its own FIFO queue, a
//! bounded batch per turn, so at most a batch of calls is woken per turn and every
//! connection is served in the order its input arrived.
//!
//! A connection's [`Slot`] is the waker tokio's I/O driver calls when its socket
//! becomes readable: it queues the slot on its reader and wakes the reader's task.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::future::{poll_fn, Future};
use std::io;
use std::os::fd::AsRawFd;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Instant;

use tokio::runtime::Handle;
use tokio::sync::watch;

use super::{dispatch, Inner};
use crate::fd;

/// Connections a reader serves per turn before it lets the calls it woke run.
const BATCH: usize = 64;

/// One reader: its queue of ready connections and due deadlines.
pub(super) struct Reader {
    queue: Mutex<Queue>,
}

struct Queue {
    ready: VecDeque<Arc<Slot>>,
    /// Each connection's earliest deadline; an entry whose connection has since moved
    /// its deadline is skipped when it falls due.
    timers: BinaryHeap<Reverse<Timer>>,
    /// The reader task's waker while it waits.
    task: Option<Waker>,
    /// The reader task is gone (its runtime shut down).
    dead: bool,
}

impl Reader {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn push(&self, slot: Arc<Slot>) {
        let mut q = self.lock();
        q.ready.push_back(slot);
        let task = q.task.take();
        drop(q);
        if let Some(w) = task {
            w.wake();
        }
    }

    /// Takes up to a batch of ready connections and every due deadline; waits (with
    /// its one timer armed at the earliest deadline) while there are none.
    fn take(
        &self,
        cx: &mut Context<'_>,
        ready: &mut Vec<Arc<Slot>>,
        due: &mut Vec<Timer>,
        sleep: &mut Option<(Instant, Pin<Box<tokio::time::Sleep>>)>,
    ) -> Poll<()> {
        let mut q = self.lock();
        // Once the timer fired, its deadline counts as passed whatever the clock reads.
        let mut fired: Option<Instant> = None;
        loop {
            let now = fired.map_or_else(Instant::now, |f| Instant::now().max(f));
            while q.timers.peek().is_some_and(|t| t.0.at <= now) {
                due.extend(q.timers.pop().map(|t| t.0));
            }
            let n = q.ready.len().min(BATCH);
            ready.extend(q.ready.drain(..n));
            if !ready.is_empty() || !due.is_empty() {
                // Running now: it takes the queue again before it waits.
                q.task = None;
                return Poll::Ready(());
            }
            if !q.task.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                q.task = Some(cx.waker().clone());
            }
            let Some(next) = q.timers.peek().map(|t| t.0.at) else {
                return Poll::Pending;
            };
            let at = tokio::time::Instant::from_std(next);
            match sleep {
                Some((armed, s)) if *armed == next => {
                    if s.as_mut().poll(cx).is_pending() {
                        return Poll::Pending;
                    }
                }
                _ => {
                    let (armed, s) =
                        sleep.get_or_insert_with(|| (next, Box::pin(tokio::time::sleep_until(at))));
                    *armed = next;
                    s.as_mut().reset(at);
                    if s.as_mut().poll(cx).is_pending() {
                        return Poll::Pending;
                    }
                }
            }
            // The timer fired: take what fell due.
            fired = Some(next);
        }
    }
}

/// A connection's deadline in its reader's heap.
pub(super) struct Timer {
    at: Instant,
    slot: Arc<Slot>,
}

impl PartialEq for Timer {
    fn eq(&self, other: &Self) -> bool {
        self.at == other.at
    }
}

impl Eq for Timer {}

impl PartialOrd for Timer {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Timer {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.at.cmp(&other.at)
    }
}

/// A connection as its reader knows it.
pub(super) struct Slot {
    conn: Weak<Inner>,
    reader: Arc<Reader>,
    /// In the reader's ready queue (set by a wake, cleared when the reader takes it).
    queued: AtomicBool,
    /// Set once the connection has closed: its socket is not polled again.
    finished: AtomicBool,
    closed: watch::Sender<bool>,
}

impl Slot {
    /// A slot on one of the current runtime's readers (started on first use).
    pub(super) fn new(conn: Weak<Inner>, closed: watch::Sender<bool>) -> Arc<Slot> {
        Arc::new(Slot {
            conn,
            reader: assign(),
            queued: AtomicBool::new(false),
            finished: AtomicBool::new(false),
            closed,
        })
    }

    /// Tells the reader this connection's earliest deadline is now `at` (earlier than
    /// the one it knew).
    pub(super) fn deadline(self: &Arc<Self>, at: Instant) {
        let mut q = self.reader.lock();
        let earliest = q.timers.peek().is_none_or(|t| at < t.0.at);
        q.timers.push(Reverse(Timer {
            at,
            slot: self.clone(),
        }));
        // Only a new earliest deadline moves the reader's timer.
        let task = if earliest { q.task.take() } else { None };
        drop(q);
        if let Some(w) = task {
            w.wake();
        }
    }
}

impl Wake for Slot {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if !self.queued.swap(true, Ordering::AcqRel) {
            self.reader.push(self.clone());
        }
    }
}

/// The readers of each runtime that has a connection, and whose turn is next.
struct Pool {
    runtime: tokio::runtime::Id,
    readers: Vec<Arc<Reader>>,
    next: usize,
}

static POOLS: Mutex<Vec<Pool>> = Mutex::new(Vec::new());

/// A reader of the current runtime, in turn; the runtime's readers (one per worker)
/// are started on its first connection.
fn assign() -> Arc<Reader> {
    let handle = Handle::current();
    let id = handle.id();
    let mut pools = POOLS.lock().unwrap_or_else(|p| p.into_inner());
    // A runtime that shut down took its readers' tasks with it.
    pools.retain(|p| !p.readers.iter().any(|r| r.lock().dead));
    let pool = match pools.iter().position(|p| p.runtime == id) {
        Some(i) => &mut pools[i],
        None => {
            let readers = (0..handle.metrics().num_workers().max(1))
                .map(|_| {
                    let reader = Arc::new(Reader {
                        queue: Mutex::new(Queue {
                            ready: VecDeque::new(),
                            timers: BinaryHeap::new(),
                            task: None,
                            dead: false,
                        }),
                    });
                    // The obituary is the future's from the start: a task dropped before
                    // its first poll still marks its reader dead.
                    handle.spawn(tokio::task::unconstrained(run(Obituary(reader.clone()))));
                    reader
                })
                .collect();
            pools.push(Pool {
                runtime: id,
                readers,
                next: 0,
            });
            pools.last_mut().expect("just pushed")
        }
    };
    let reader = pool.readers[pool.next % pool.readers.len()].clone();
    pool.next = pool.next.wrapping_add(1);
    reader
}

/// Marks the reader dead when its task is dropped (the runtime shut down).
struct Obituary(Arc<Reader>);

impl Drop for Obituary {
    fn drop(&mut self) {
        self.0.lock().dead = true;
    }
}

/// A reader's task: serves ready connections a batch at a time, and fails calls at
/// their deadlines. Unconstrained by tokio's budget: `BATCH` is its own.
async fn run(reader: Obituary) {
    let mut ready = Vec::with_capacity(BATCH);
    let mut due = Vec::new();
    let mut sleep = None;
    loop {
        poll_fn(|cx| reader.0.take(cx, &mut ready, &mut due, &mut sleep)).await;
        for t in due.drain(..) {
            expire(&t);
        }
        let full = ready.len() == BATCH;
        for slot in ready.drain(..) {
            serve(&slot);
        }
        if full {
            // Let the calls just woken run before the next batch: woken during its own
            // poll, a task goes to the back of its worker's queue, behind them
            // (`yield_now` would wait for the worker's next I/O poll instead, and come
            // back ahead of calls not yet run, until the queue overflows).
            let mut yielded = false;
            poll_fn(|cx| {
                if std::mem::replace(&mut yielded, true) {
                    return Poll::Ready(());
                }
                cx.waker().wake_by_ref();
                Poll::Pending
            })
            .await;
        }
    }
}

/// Fails a connection's calls whose deadline passed, and hands the reader its next.
fn expire(t: &Timer) {
    let Some(inner) = t.slot.conn.upgrade() else {
        return;
    };
    let mut st = inner.lock();
    if st.timer != Some(t.at) {
        // The connection's deadline moved since: a newer entry stands for it.
        return;
    }
    st.timer = st.session.expire_due(Instant::now());
    if let Some(next) = st.timer {
        t.slot.deadline(next);
    }
    dispatch(&inner, &mut st);
}

/// Reads what a ready connection has, once, and routes it; a connection that may have
/// more goes to the back of the queue.
fn serve(slot: &Arc<Slot>) {
    slot.queued.store(false, Ordering::Release);
    if slot.finished.load(Ordering::Acquire) {
        return;
    }
    let Some(inner) = slot.conn.upgrade() else {
        // Every client handle is gone; the socket went with them.
        return;
    };
    let waker = Waker::from(slot.clone());
    let mut cx = Context::from_waker(&waker);
    let raw = inner.afd.as_raw_fd();
    let mut guard = match inner.afd.poll_read_ready(&mut cx) {
        Poll::Pending => return,
        Poll::Ready(Ok(g)) => g,
        Poll::Ready(Err(e)) => {
            let mut st = inner.lock();
            st.session.io_error(e.kind(), &e.to_string());
            return finish(slot, &inner, st);
        }
    };
    let mut st = inner.lock();
    let mut short = false;
    // SAFETY: `fd::recv` initialises the bytes it counts (recv(2) writes them).
    let r = unsafe {
        st.session.receive_with(|buf| match fd::recv(raw, buf)? {
            Some(n) => {
                short = n < buf.len();
                Ok(n)
            }
            None => Err(io::ErrorKind::WouldBlock.into()),
        })
    };
    match r {
        Ok(0) => return finish(slot, &inner, st),
        Ok(_) => {
            dispatch(&inner, &mut st);
            if !short {
                // The buffer filled: more may wait; the others first.
                drop(st);
                waker.wake_by_ref();
                return;
            }
        }
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
        Err(e) if e.kind() == io::ErrorKind::ConnectionReset => {
            st.session.eof();
            return finish(slot, &inner, st);
        }
        Err(e) => {
            st.session.io_error(e.kind(), &e.to_string());
            return finish(slot, &inner, st);
        }
    }
    // The socket is empty (a short read, or one that would block): wait for the next
    // edge now rather than after a read that would block (tokio's own streams do the
    // same; a newer readiness event is not cleared).
    st.session.release_idle_buffer();
    drop(st);
    guard.clear_ready();
    drop(guard);
    if inner.afd.poll_read_ready(&mut cx).is_ready() {
        // Readable again already: after the others.
        waker.wake_by_ref();
    }
}

/// The connection ended (EOF or an error already given to the session): fails what
/// is pending and marks it closed.
fn finish(slot: &Slot, inner: &Arc<Inner>, mut st: MutexGuard<'_, super::State>) {
    dispatch(inner, &mut st);
    drop(st);
    slot.finished.store(true, Ordering::Release);
    let _ = slot.closed.send(true);
}
