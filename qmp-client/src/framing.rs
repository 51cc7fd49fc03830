//! Splits the byte stream from QEMU or the guest agent into complete JSON objects.
//!
//! Framing is on objects, not lines: a scanner tracks brace depth and string/escape
//! state, so pretty-printed (multi-line) messages, `\r\n` split across reads and
//! several messages in one read all work. The guest agent's 0xFF sync byte is reported
//! wherever it appears (it is never valid in server output) and resets the scanner.
//! Memory is bounded: an object longer than the limit is reported once and skipped.

use std::io;
use std::mem::MaybeUninit;

/// Bytes read from the socket at a time at most (and the most free space kept).
const CHUNK: usize = 64 * 1024;

/// Bytes read at a time at first: a connection that only exchanges small messages
/// (most do) never allocates a 64 KiB buffer; the read size doubles each time a read
/// fills all the space it was given. At most 1 KiB, so that the buffer an idle
/// connection releases and its next call takes again comes from malloc's per-thread
/// cache (a 4 KiB buffer cost about 700 instructions per call to allocate and free).
const FIRST_CHUNK: usize = 1024;

/// Bytes that matter inside an object but outside strings (1) and inside strings (2).
static CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    t[b'"' as usize] = 3;
    t[b'{' as usize] = 1;
    t[b'}' as usize] = 1;
    t[b'[' as usize] = 1;
    t[b']' as usize] = 1;
    t[b'\\' as usize] = 2;
    t[0xFF] = 3;
    t
};

/// What the scanner found next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Frame {
    /// A complete JSON object at this byte range of [`Framer::bytes`].
    Object(usize, usize),
    /// The 0xFF byte (guest agent sync delimiter).
    Sentinel,
}

/// Something in the stream that cannot be framed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum FrameError {
    /// Bytes outside any object that are not whitespace (the excerpt is kept).
    Garbage(Vec<u8>),
    /// An object grew beyond the limit; its remainder is being skipped.
    TooLarge,
}

/// A growable read buffer plus the scanner state.
#[derive(Debug)]
pub(crate) struct Framer {
    buf: Vec<u8>,
    /// Bytes of `buf` that hold data.
    filled: usize,
    /// First byte not yet handed out or skipped.
    start: usize,
    /// Next byte to scan.
    pos: usize,
    /// Brace/bracket depth; > 0 while inside an object.
    depth: u32,
    in_str: bool,
    /// The byte after a backslash inside a string is pending.
    escape: bool,
    /// Start of the object being scanned (valid while depth > 0).
    obj_start: usize,
    /// Skipping the rest of an oversized object.
    discarding: bool,
    max: usize,
    /// The free space a read is given now (grows to `CHUNK`).
    chunk: usize,
}

impl Framer {
    pub(crate) fn new(max: usize) -> Framer {
        Framer {
            buf: Vec::new(),
            filled: 0,
            start: 0,
            pos: 0,
            depth: 0,
            in_str: false,
            escape: false,
            obj_start: 0,
            discarding: false,
            max: max.max(2),
            chunk: FIRST_CHUNK,
        }
    }

    /// The buffer that [`Frame::Object`] ranges index into.
    pub(crate) fn bytes(&self) -> &[u8] {
        &self.buf[..self.filled]
    }

    fn abandon_object(&mut self) {
        self.depth = 0;
        self.in_str = false;
        self.escape = false;
        self.discarding = false;
    }

    /// At a message boundary, skips whitespace and returns the offset of a `{` that
    /// starts the next message (for the single-pass fast path), if there is one.
    pub(crate) fn object_start(&mut self) -> Option<usize> {
        if self.depth > 0 || self.discarding {
            return None;
        }
        let buf = &self.buf[..self.filled];
        let mut i = self.pos;
        while i < buf.len() && matches!(buf[i], b' ' | b'\n' | b'\r' | b'\t') {
            i += 1;
        }
        self.pos = i;
        self.start = i;
        (i < buf.len() && buf[i] == b'{').then_some(i)
    }

    /// Marks everything before `end` consumed (after the fast path framed a message).
    pub(crate) fn consume_to(&mut self, end: usize) {
        self.pos = end;
        self.start = end;
    }

    /// Scans buffered bytes for the next frame; `Ok(None)` means more input is needed.
    pub(crate) fn next_frame(&mut self) -> Result<Option<Frame>, FrameError> {
        let buf = &self.buf[..self.filled];
        let end = self.filled;
        let mut i = self.pos;
        loop {
            if self.depth == 0 {
                // Between messages: whitespace, the sentinel, or an object start.
                while i < end && matches!(buf[i], b' ' | b'\n' | b'\r' | b'\t') {
                    i += 1;
                }
                if i == end {
                    self.pos = i;
                    self.start = i;
                    return Ok(None);
                }
                match buf[i] {
                    b'{' => {
                        self.depth = 1;
                        self.obj_start = i;
                        i += 1;
                    }
                    0xFF => {
                        self.pos = i + 1;
                        self.start = i + 1;
                        return Ok(Some(Frame::Sentinel));
                    }
                    _ => {
                        let from = i;
                        while i < end && !matches!(buf[i], b'{' | 0xFF) {
                            i += 1;
                        }
                        let excerpt = buf[from..i.min(from + 200)].to_vec();
                        self.pos = i;
                        self.start = i;
                        return Err(FrameError::Garbage(excerpt));
                    }
                }
            }
            // Inside an object.
            while i < end {
                if self.in_str {
                    if self.escape {
                        self.escape = false;
                        if buf[i] == 0xFF {
                            break;
                        }
                        i += 1;
                        continue;
                    }
                    // Tight loop over plain string bytes.
                    while i < end && CLASS[buf[i] as usize] & 2 == 0 {
                        i += 1;
                    }
                    if i == end {
                        break;
                    }
                    match buf[i] {
                        b'"' => self.in_str = false,
                        b'\\' => self.escape = true,
                        _ => break, // 0xFF, handled below
                    }
                    i += 1;
                    continue;
                }
                // Skip bytes that cannot change the state.
                while i < end && CLASS[buf[i] as usize] & 1 == 0 {
                    i += 1;
                }
                if i == end {
                    break;
                }
                match buf[i] {
                    b'"' => self.in_str = true,
                    b'{' | b'[' => self.depth += 1,
                    b'}' | b']' => {
                        self.depth -= 1;
                        if self.depth == 0 {
                            i += 1;
                            self.pos = i;
                            self.start = i;
                            if self.discarding {
                                self.discarding = false;
                                break;
                            }
                            if i - self.obj_start > self.max {
                                return Err(FrameError::TooLarge);
                            }
                            return Ok(Some(Frame::Object(self.obj_start, i)));
                        }
                    }
                    0xFF => break,
                    _ => {}
                }
                i += 1;
            }
            if i < end && buf[i] == 0xFF {
                // The sync byte cuts a stale partial object short.
                self.abandon_object();
                self.pos = i + 1;
                self.start = i + 1;
                return Ok(Some(Frame::Sentinel));
            }
            if self.depth == 0 {
                // An oversized object just finished being skipped.
                continue;
            }
            self.pos = i;
            if !self.discarding && i - self.obj_start > self.max {
                self.discarding = true;
                self.start = i;
                return Err(FrameError::TooLarge);
            }
            if self.discarding {
                self.start = i;
            }
            return Ok(None);
        }
    }

    /// Frees the buffer if every byte in it has been handed out (no partial message);
    /// the next read allocates it again, at the first chunk size.
    #[cfg_attr(not(feature = "tokio"), allow(dead_code))]
    pub(crate) fn release_if_drained(&mut self) {
        if self.depth == 0
            && !self.discarding
            && self.start == self.filled
            && self.pos == self.filled
        {
            self.buf = Vec::new();
            self.filled = 0;
            self.start = 0;
            self.pos = 0;
            self.obj_start = 0;
            self.chunk = FIRST_CHUNK;
        }
    }

    /// Reads more bytes with `read`, which gets the free space at the end of the
    /// buffer, uninitialised (zeroing it would cost more than the read), and returns
    /// how many bytes it wrote there. Returns that count; 0 means end of stream.
    ///
    /// # Safety
    ///
    /// `read` must have initialised the first `n` bytes of the slice when it returns
    /// `Ok(n)` (as `recv(2)` into it does).
    pub(crate) unsafe fn fill(
        &mut self,
        read: impl FnOnce(&mut [MaybeUninit<u8>]) -> io::Result<usize>,
    ) -> io::Result<usize> {
        // Drop consumed bytes; keep the unscanned tail and any partial object.
        let keep_from = if self.depth > 0 && !self.discarding {
            self.obj_start.min(self.start)
        } else {
            self.start
        };
        let chunk = self.chunk;
        if keep_from > 0 && (keep_from == self.filled || self.buf.capacity() - self.filled < chunk)
        {
            self.buf.copy_within(keep_from..self.filled, 0);
            self.filled -= keep_from;
            self.buf.truncate(self.filled);
            self.start -= keep_from;
            self.pos -= keep_from;
            self.obj_start = self.obj_start.saturating_sub(keep_from);
        }
        if self.buf.capacity() - self.filled < chunk {
            let want = (self.filled + chunk)
                .max(self.buf.capacity() * 2)
                .max(chunk);
            self.buf.reserve_exact(want - self.filled);
        }
        let spare = self.buf.spare_capacity_mut();
        let offered = spare.len();
        let n = read(spare)?.min(offered);
        // SAFETY: the caller's `read` initialised these `n` bytes (see above).
        unsafe { self.buf.set_len(self.filled + n) };
        self.filled += n;
        if n >= offered && self.chunk < CHUNK {
            self.chunk *= 2;
        }
        Ok(n)
    }

    /// [`Framer::fill`] from a slice (tests).
    #[cfg(test)]
    pub(crate) fn fill_from(&mut self, bytes: &mut &[u8]) -> usize {
        // SAFETY: the closure initialises exactly the `n` bytes it reports.
        unsafe {
            self.fill(|buf| {
                let n = buf.len().min(bytes.len());
                for (d, s) in buf.iter_mut().zip(&bytes[..n]) {
                    d.write(*s);
                }
                *bytes = &bytes[n..];
                Ok(n)
            })
        }
        .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `chunks` one read at a time and renders every frame or error.
    fn frames(max: usize, chunks: &[&[u8]]) -> Vec<String> {
        let mut f = Framer::new(max);
        let mut out = Vec::new();
        for chunk in chunks {
            let mut rest: &[u8] = chunk;
            while !rest.is_empty() {
                f.fill_from(&mut rest);
            }
            loop {
                match f.next_frame() {
                    Ok(None) => break,
                    Ok(Some(Frame::Object(a, b))) => {
                        out.push(String::from_utf8_lossy(&f.bytes()[a..b]).into_owned())
                    }
                    Ok(Some(Frame::Sentinel)) => out.push("<FF>".into()),
                    Err(FrameError::Garbage(g)) => {
                        out.push(format!("garbage {:?}", String::from_utf8_lossy(&g)))
                    }
                    Err(FrameError::TooLarge) => out.push("too large".into()),
                }
            }
        }
        out
    }

    #[test]
    fn several_per_read_and_split_crlf() {
        assert_eq!(
            frames(
                100,
                &[
                    b"{\"a\":1}\r\n{\"b\":\"}\\\"{\"}\r",
                    b"\n{\"c\"",
                    b":[{}]}\r\n"
                ]
            ),
            ["{\"a\":1}", "{\"b\":\"}\\\"{\"}", "{\"c\":[{}]}"]
        );
    }

    #[test]
    fn byte_by_byte_pretty() {
        let msg = b"{\r\n    \"return\": {\r\n        \"x\": \"a\\\\\"\r\n    }\r\n}\r\n";
        let chunks: Vec<&[u8]> = msg.chunks(1).collect();
        assert_eq!(
            frames(1000, &chunks),
            ["{\r\n    \"return\": {\r\n        \"x\": \"a\\\\\"\r\n    }\r\n}"]
        );
    }

    #[test]
    fn sentinel_and_garbage() {
        assert_eq!(
            frames(
                100,
                &[b"{\"stale\":\"ab", b"\xff{\"return\":5}\nxyz{\"a\":1}"]
            ),
            ["<FF>", "{\"return\":5}", "garbage \"xyz\"", "{\"a\":1}"]
        );
    }

    #[test]
    fn oversize_is_reported_once_and_skipped() {
        let big = format!("{{\"x\":\"{}\"}}", "a".repeat(300));
        let chunks: Vec<&[u8]> = big.as_bytes().chunks(64).collect();
        let mut all = chunks.clone();
        all.push(b"{\"ok\":1}");
        assert_eq!(frames(100, &all), ["too large", "{\"ok\":1}"]);
        assert_eq!(
            frames(100, &[big.as_bytes(), b"{\"ok\":1}"]),
            ["too large", "{\"ok\":1}"]
        );
    }
}
