//! Fuzz target: arbitrary text through `qmp-types`' JSON reader and the generated decoders.
//!
//! Every input must decode or give an error: a panic, a hang or a stack overflow is a bug.
//! Differential checks against serde_json: the reader accepts exactly the JSON documents
//! serde_json accepts (outside two documented differences, see below), and decodes strings
//! to the same text.

#![no_main]

use libfuzzer_sys::fuzz_target;
use qmp_types::runtime::{self, Reader};
use qmp_types::{qmp, EventSet, Timestamp};
use serde::de::IgnoredAny;

/// The deepest nesting of `text` (brackets inside strings counted too: an overestimate).
fn depth(text: &str) -> usize {
    let (mut d, mut max) = (0usize, 0);
    for b in text.bytes() {
        match b {
            b'[' | b'{' => {
                d += 1;
                max = max.max(d);
            }
            b']' | b'}' => d = d.saturating_sub(1),
            _ => {}
        }
    }
    max
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };

    // Well-formedness agrees with serde_json, except that serde_json stops at 128 levels
    // of nesting (our `skip` does not recurse, so it has no limit) and, when ignoring a
    // string, does not check that `\u` escapes pair their surrogates (we do).
    let ours = {
        let mut r = Reader::new(text);
        r.skip().and_then(|()| r.end()).is_ok()
    };
    if depth(text) < 120 && !text.contains("\\u") {
        let theirs = serde_json::from_str::<IgnoredAny>(text).is_ok();
        assert_eq!(ours, theirs, "well-formedness of {text:?}");
    }

    // Strings decode to the same text, or fail on the same inputs.
    let s = runtime::decode::<String>(text).ok();
    assert_eq!(
        s,
        serde_json::from_str::<String>(text).ok(),
        "string {text:?}"
    );

    // The generated decoders never panic, whatever the input.
    let _ = runtime::decode::<qmp::AnyCommand>(text);
    let _ = runtime::decode::<qmp::Event>(text);
    let _ = qmp::Event::decode_event("BLOCK_JOB_COMPLETED", Some(text), Timestamp::default());
    for command in [
        "query-qmp-schema",
        "query-block",
        "query-cpus-fast",
        "query-status",
        "query-named-block-nodes",
        "qom-list-properties",
    ] {
        let _ = qmp::AnyReturn::decode(command, text);
    }
});
