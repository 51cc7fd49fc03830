//! The generated 10.0.2 API decodes what real QEMU releases send: Debian 12's 7.2
//! (`-machine q35` and `pc`) and the installed 10.0.2 (also `none` and `microvm`), each
//! with a few devices. Every query the live `query-qmp-schema` lists that needs no
//! argument is sent through the generated API (`AnyCommand` by name, `AnyReturn::decode`),
//! plus `query-cpu-model-expansion` of the full `max` model and `query-machines` with
//! `compat-props` where the server has it.
//!
//! A QMP error reply is fine (e.g. `query-sev` on a machine without SEV); a reply that
//! does not decode typed is not. Every failure of a release is collected and reported
//! at once (release, machine, command, error), never just the first. serde names only
//! the first problem of a reply, so each failure also lists every member QEMU 10.0.2's
//! own introspection requires and the reply lacks (members behind a target condition
//! the x86 build does not meet are not in it). On both drivers (`NAME::blocking`,
//! `NAME::tokio`).

#[macro_use]
mod common;
mod releases;

use std::collections::{BTreeSet, HashMap};
use std::fmt::Write as _;

use serde_json::Value;

use common::{Driver, QmpClient};
use qmp_types::client::{Error, Request};
use qmp_types::qmp::{AnyCommand, AnyReturn};
use releases::{start, Release};

dual_tests!(
    qemu_7_2_replies_decode_typed,
    qemu_10_0_2_replies_decode_typed
);

/// The devices of the PC machines: a SCSI disk on a null block node, a NIC on a
/// user-mode network, a USB controller with a tablet.
const PC_DEVICES: &[&str] = &[
    "-blockdev",
    "null-co,node-name=null0,size=1048576",
    "-device",
    "virtio-scsi-pci,id=scsi0",
    "-device",
    "scsi-hd,drive=null0,bus=scsi0.0,id=disk0",
    "-netdev",
    "user,id=net0",
    "-device",
    "virtio-net-pci,netdev=net0,id=nic0",
    "-device",
    "qemu-xhci,id=usb0",
    "-device",
    "usb-tablet,bus=usb0.0,id=tablet0",
];

/// microvm has no PCI: virtio-mmio devices instead.
const MICROVM_DEVICES: &[&str] = &[
    "-blockdev",
    "null-co,node-name=null0,size=1048576",
    "-device",
    "virtio-blk-device,drive=null0,id=disk0",
    "-netdev",
    "user,id=net0",
    "-device",
    "virtio-net-device,netdev=net0,id=nic0",
];

/// `-machine none` has no buses: a block node and a network backend only.
const NONE_DEVICES: &[&str] = &[
    "-blockdev",
    "null-co,node-name=null0,size=1048576",
    "-netdev",
    "user,id=net0",
];

/// The machines each release runs, with their devices.
fn machines(release: Release) -> Vec<(&'static str, &'static [&'static str])> {
    let mut m = vec![("q35", PC_DEVICES), ("pc", PC_DEVICES)];
    if release == Release::V10_0_2 {
        m.push(("none", NONE_DEVICES));
        m.push(("microvm", MICROVM_DEVICES));
    }
    m
}

/// Commands that are read-only but not named `query-*`.
const OTHER_READ_ONLY: &[&str] = &["qom-list-types"];

/// QEMU 10.0.2's own `query-qmp-schema`, by entity name: what its replies must contain.
struct Introspection(HashMap<String, Value>);

impl Introspection {
    fn fetch(d: &impl Driver) -> Introspection {
        let vm = start(Release::V10_0_2, Release::V10_0_2.launcher());
        let q = d.connect(&vm).unwrap();
        let raw = q.execute(Request::name("query-qmp-schema")).unwrap();
        let list: Vec<Value> = serde_json::from_str(raw.get()).unwrap();
        Introspection(
            list.into_iter()
                .map(|e| (e["name"].as_str().unwrap().to_owned(), e))
                .collect(),
        )
    }

    /// Every required member the reply of `command` lacks, as paths (`[*].acpi`).
    fn missing(&self, command: &str, reply: &Value) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        if let Some(ret) = self.0.get(command).and_then(|c| c["ret-type"].as_str()) {
            self.walk(ret, reply, "", &mut out);
        }
        out
    }

    fn walk(&self, ty: &str, v: &Value, path: &str, out: &mut BTreeSet<String>) {
        let Some(e) = self.0.get(ty) else { return };
        match e["meta-type"].as_str() {
            Some("array") => {
                let element = e["element-type"].as_str().unwrap_or_default();
                for x in v.as_array().into_iter().flatten() {
                    self.walk(element, x, &format!("{path}[*]"), out);
                }
            }
            Some("object") => {
                let Some(o) = v.as_object() else { return };
                for m in e["members"].as_array().into_iter().flatten() {
                    let name = m["name"].as_str().unwrap_or_default();
                    let at = if path.is_empty() {
                        name.to_owned()
                    } else {
                        format!("{path}.{name}")
                    };
                    match o.get(name) {
                        Some(x) => self.walk(m["type"].as_str().unwrap_or_default(), x, &at, out),
                        None if m.get("default").is_none() => {
                            out.insert(at);
                        }
                        None => {}
                    }
                }
                if let Some(tag) = e["tag"].as_str() {
                    let case = o.get(tag).and_then(Value::as_str);
                    for variant in e["variants"].as_array().into_iter().flatten() {
                        if variant["case"].as_str() == case {
                            let ty = variant["type"].as_str().unwrap_or_default();
                            self.walk(ty, v, path, out);
                        }
                    }
                }
            }
            _ => {}
        }
    }
}

/// What went wrong with one command.
struct Failure {
    machine: &'static str,
    command: String,
    arguments: Option<String>,
    error: String,
}

/// What one machine's sweep found.
#[derive(Default)]
struct Sweep {
    decoded: Vec<String>,
    refused: Vec<String>,
    unknown: Vec<String>,
    failures: Vec<Failure>,
}

/// Sends `name` (with `arguments`, JSON text) through the generated API and decodes
/// the reply typed; records the outcome.
fn exercise(
    q: &impl QmpClient,
    release: Release,
    machine: &'static str,
    introspection: &Introspection,
    name: &str,
    arguments: Option<&str>,
    sweep: &mut Sweep,
) {
    let label = match arguments {
        Some(a) => format!("{name} {a}"),
        None => name.to_owned(),
    };
    let fail = |error: String| Failure {
        machine,
        command: name.to_owned(),
        arguments: arguments.map(str::to_owned),
        error,
    };
    let cmd = match AnyCommand::from_request(name, arguments) {
        Ok(AnyCommand::Unrecognized { .. }) => {
            // Only a release other than the API's own may have commands it lacks.
            if release == Release::V10_0_2 {
                sweep.failures.push(fail(
                    "the live schema has it, the generated API does not".into(),
                ));
            } else {
                sweep.unknown.push(label);
            }
            return;
        }
        Ok(cmd) => cmd,
        Err(e) => {
            sweep
                .failures
                .push(fail(format!("the generated API rejects the request: {e}")));
            return;
        }
    };
    // The wire request as the generated API encodes it.
    let request = serde_json::to_value(&cmd).unwrap();
    assert_eq!(request["execute"], name);
    let args = request
        .get("arguments")
        .map(|a| serde_json::value::to_raw_value(a).unwrap());
    let reply = match q.execute(match args.as_deref() {
        Some(a) => Request::raw(cmd.name(), &a),
        None => Request::name(cmd.name()),
    }) {
        Ok(reply) => reply,
        Err(Error::Qmp(e)) => {
            sweep
                .refused
                .push(format!("{label} ({}: {})", e.class, e.desc));
            return;
        }
        Err(e) => panic!("QEMU {release:?} -machine {machine}: {label}: {e}"),
    };
    match AnyReturn::decode(name, reply.get()) {
        Ok(AnyReturn::Unrecognized(_)) => {
            sweep.failures.push(fail("decoded as Unrecognized".into()))
        }
        Ok(typed) => {
            // The API's own release must also serialize back to what it sent (an older
            // one may send members the API no longer has, which are ignored).
            let back = serde_json::to_value(&typed).unwrap();
            let sent: serde_json::Value = serde_json::from_str(reply.get()).unwrap();
            if release == Release::V10_0_2 && back != sent {
                sweep.failures.push(fail(format!(
                    "decodes, but serializes back differently: sent {sent}, got {back}"
                )));
            } else {
                sweep.decoded.push(label);
            }
        }
        Err(e) => {
            let sent: Value = serde_json::from_str(reply.get()).unwrap();
            let missing = introspection.missing(name, &sent);
            let mut json = reply.get().to_owned();
            if json.len() > 300 {
                let mut end = 300;
                while !json.is_char_boundary(end) {
                    end -= 1;
                }
                json.truncate(end);
                json.push_str("...");
            }
            let missing = if missing.is_empty() {
                String::new()
            } else {
                let list: Vec<&str> = missing.iter().map(String::as_str).collect();
                format!(
                    "; by 10.0.2's introspection the reply lacks {}",
                    list.join(", ")
                )
            };
            sweep
                .failures
                .push(fail(format!("{e}{missing}; reply: {json}")));
        }
    }
}

/// Starts one machine of `release` and runs every query on it.
fn sweep_machine(
    d: &impl Driver,
    release: Release,
    machine: &'static str,
    devices: &[&str],
    introspection: &Introspection,
) -> Sweep {
    let vm = start(
        release,
        release
            .launcher()
            .args(["-machine", machine, "-S"])
            .args(devices),
    );
    let q = d.connect(&vm).unwrap();
    assert_eq!(
        q.greeting().unwrap().version.to_string(),
        release.greeting_version(),
        "unexpected QEMU release"
    );
    let schema = q.schema().unwrap().clone();
    let mut sweep = Sweep::default();
    let queries: Vec<&str> = schema
        .commands()
        .filter(|c| {
            c.starts_with("query-") || c.starts_with("x-query-") || OTHER_READ_ONLY.contains(c)
        })
        // Needs no argument: none at all, or only optional ones (sent without them).
        .filter(|c| {
            schema
                .arguments(c)
                .is_some_and(|args| args.iter().all(|a| a.optional))
        })
        .collect();
    for name in &queries {
        exercise(&q, release, machine, introspection, name, None, &mut sweep);
    }
    // Queries with arguments that reach more of the return types.
    exercise(
        &q,
        release,
        machine,
        introspection,
        "query-cpu-model-expansion",
        Some(r#"{"type":"full","model":{"name":"max"}}"#),
        &mut sweep,
    );
    if schema.has_argument("query-machines", "compat-props") {
        exercise(
            &q,
            release,
            machine,
            introspection,
            "query-machines",
            Some(r#"{"compat-props":true}"#),
            &mut sweep,
        );
    }
    assert!(
        q.stats().requests as usize >= queries.len(),
        "not every query was sent"
    );
    sweep
}

fn run(d: &impl Driver, release: Release) {
    let mut report = String::new();
    let mut failures = Vec::new();
    let introspection = Introspection::fetch(d);
    for (machine, devices) in machines(release) {
        let sweep = sweep_machine(d, release, machine, devices, &introspection);
        let _ = writeln!(
            report,
            "QEMU {} -machine {machine}: {} decoded typed, {} refused by QEMU, {} unknown to the 10.0.2 API, {} failed",
            release.greeting_version(),
            sweep.decoded.len(),
            sweep.refused.len(),
            sweep.unknown.len(),
            sweep.failures.len()
        );
        let _ = writeln!(report, "  refused: {}", sweep.refused.join("; "));
        if !sweep.unknown.is_empty() {
            let _ = writeln!(report, "  unknown: {}", sweep.unknown.join(", "));
        }
        assert!(
            sweep.decoded.len() + sweep.failures.len() >= 40,
            "-machine {machine}: too few queries answered"
        );
        failures.extend(sweep.failures);
    }
    println!("{report}");
    if failures.is_empty() {
        return;
    }
    let mut list = String::new();
    for f in &failures {
        let args = f
            .arguments
            .as_deref()
            .map(|a| format!(" {a}"))
            .unwrap_or_default();
        let _ = writeln!(
            list,
            "- QEMU {} -machine {}: {}{args}: {}",
            release.greeting_version(),
            f.machine,
            f.command,
            f.error
        );
    }
    panic!(
        "{} replies of QEMU {} did not decode typed:\n{list}\n{report}",
        failures.len(),
        release.greeting_version()
    );
}

fn qemu_7_2_replies_decode_typed(d: &impl Driver) {
    run(d, Release::V7_2);
}

fn qemu_10_0_2_replies_decode_typed(d: &impl Driver) {
    run(d, Release::V10_0_2);
}
