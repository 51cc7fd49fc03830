//! QEMU 7.2's replies, recorded by libvirt's test suite, decoded with this crate's
//! API (generated from a newer QEMU, supporting QEMU 6.2 on): every reply decodes, and
//! serializes back equal to what QEMU sent, save members the schema does not know;
//! every request libvirt sent decodes as an `AnyCommand` and serializes to the wire form.

use qmp_types::qmp::{AnyCommand, AnyReturn};
use serde_json::Value;

/// `$QAPI_SHARED_DIR`, else `../shared/qemu` beside the repository.
fn shared() -> std::path::PathBuf {
    match std::env::var_os("QAPI_SHARED_DIR") {
        Some(d) => d.into(),
        None => std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/qemu"),
    }
}

/// Whether `back` is `sent` with some object members left out; collects their paths.
fn subset(sent: &Value, back: &Value, path: &str, dropped: &mut Vec<String>) -> bool {
    match (sent, back) {
        (Value::Object(s), Value::Object(b)) => {
            for k in s.keys().filter(|k| !b.contains_key(*k)) {
                dropped.push(format!("{path}.{k}"));
            }
            b.iter().all(|(k, bv)| {
                s.get(k)
                    .is_some_and(|sv| subset(sv, bv, &format!("{path}.{k}"), dropped))
            })
        }
        (Value::Array(s), Value::Array(b)) => {
            s.len() == b.len()
                && s.iter()
                    .zip(b)
                    .enumerate()
                    .all(|(i, (sv, bv))| subset(sv, bv, &format!("{path}[{i}]"), dropped))
        }
        _ => sent == back,
    }
}

#[test]
fn every_reply_of_qemu_7_2_decodes_and_serializes_back() {
    let path = shared().join("replies/caps_7.2.0_x86_64.replies");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (set QAPI_SHARED_DIR)", path.display()));
    let mut pending = None;
    let (mut replies, mut typed, mut failures, mut dropped) = (0, 0, Vec::new(), Vec::new());
    for v in serde_json::Deserializer::from_str(&text).into_iter::<Value>() {
        let v = v.expect("the transcript is JSON");
        if let Some(name) = v.get("execute").and_then(Value::as_str) {
            pending = Some(name.to_owned());
            continue;
        }
        let (Some(name), Some(ret)) = (pending.take(), v.get("return")) else {
            continue;
        };
        replies += 1;
        match AnyReturn::decode(&name, &ret.to_string()) {
            Ok(r) => {
                if !matches!(r, AnyReturn::Unrecognized(_)) {
                    typed += 1;
                }
                let back = serde_json::to_value(&r).expect("serializes");
                let mut here = Vec::new();
                if !subset(ret, &back, &name, &mut here) {
                    failures.push(format!(
                        "{name}: serializes differently:\n  {ret}\n  {back}"
                    ));
                }
                dropped.extend(here);
            }
            Err(e) => failures.push(format!("{name}: {e}")),
        }
    }
    dropped.sort();
    dropped.dedup();
    println!("{replies} replies, {typed} typed; members 10.0.2 does not know: {dropped:?}");
    assert!(replies > 40, "only {replies} replies in {}", path.display());
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_request_libvirt_sent_decodes_and_serializes_to_the_wire_form() {
    let path = shared().join("replies/caps_7.2.0_x86_64.replies");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (set QAPI_SHARED_DIR)", path.display()));
    let (mut requests, mut failures, mut dropped) = (0, Vec::new(), Vec::new());
    for v in serde_json::Deserializer::from_str(&text).into_iter::<Value>() {
        let v = v.expect("the transcript is JSON");
        let Some(name) = v.get("execute").and_then(Value::as_str) else {
            continue;
        };
        requests += 1;
        // libvirt's ids are its own; the wire form is `execute`, then `arguments`.
        let mut sent = v.clone();
        if let Some(o) = sent.as_object_mut() {
            o.remove("id");
        }
        match serde_json::from_value::<AnyCommand>(sent.clone()) {
            Ok(cmd) => {
                let text = serde_json::to_string(&cmd).expect("serializes");
                let back: Value = serde_json::from_str(&text).expect("JSON");
                if !text.starts_with("{\"execute\":") {
                    failures.push(format!("{name}: `execute` is not first: {text}"));
                }
                let mut here = Vec::new();
                if !subset(&sent, &back, name, &mut here) {
                    failures.push(format!(
                        "{name}: serializes differently:\n  {sent}\n  {back}"
                    ));
                }
                dropped.extend(here);
            }
            Err(e) => failures.push(format!("{name}: {e}")),
        }
    }
    println!("{requests} requests; members 10.0.2 does not know: {dropped:?}");
    assert!(
        requests > 40,
        "only {requests} requests in {}",
        path.display()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
