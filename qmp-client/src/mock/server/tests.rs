//! Unit tests of the mock server's framing, comparison and script.

use super::*;
use serde_json::json;

#[test]
fn differences_name_each_member() {
    let mut out = Vec::new();
    differences(
        "arguments",
        &json!({"device": "d0", "sync": "full", "opts": {"a": [1, 2]}}),
        &json!({"sync": "top", "opts": {"a": [1, 3]}, "extra": true, "device": "d0"}),
        &mut out,
    );
    assert_eq!(
        out,
        [
            "arguments.opts.a[1]: expected 2, got 3",
            "arguments.sync: expected \"full\", got \"top\"",
            "arguments.extra: not expected (got true)",
        ]
    );
    out.clear();
    differences(
        "arguments",
        &json!({"b": 1, "a": 2}),
        &json!({"a": 2, "b": 1}),
        &mut out,
    );
    assert!(out.is_empty(), "member order does not matter");
}

#[test]
fn split_object_skips_whitespace_and_strings() {
    assert_eq!(split_object(b"  {\"a\": \"}\"} {"), Some((12, 2)));
    assert_eq!(split_object(b"{\"a\": {"), None);
    assert_eq!(split_object(b"x{}"), Some((1, 0)));
    assert_eq!(split_object(b" \r\n"), None);
}

#[test]
fn requests_are_checked_as_qemu_checks_them() {
    let r = parse_request(json!({"execute": "stop", "id": 3}), false).unwrap();
    assert_eq!((r.name.as_str(), r.id), ("stop", Some(json!(3))));
    assert_eq!(r.arguments, json!({}));
    let e = parse_request(json!({"exec-oob": "yank"}), false).unwrap_err();
    assert_eq!(e.1, "QMP input member 'exec-oob' is unexpected");
    assert_eq!(
        parse_request(json!({"exec-oob": "yank"}), true)
            .unwrap()
            .name,
        "yank"
    );
    let e = parse_request(json!({"execute": "stop", "x": 1, "id": "a"}), false).unwrap_err();
    assert_eq!(
        e,
        (
            Some(json!("a")),
            "QMP input member 'x' is unexpected".into()
        )
    );
    let e = parse_request(json!({"execute": "stop", "arguments": []}), false).unwrap_err();
    assert_eq!(e.1, "QMP input member 'arguments' must be an object");
}
