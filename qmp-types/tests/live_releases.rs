//! The generated 10.0.2 API decodes what real QEMU releases send: Debian 12's 7.2
//! (`-machine q35` and `pc`) and the installed 10.0.2 (also `none` and `microvm`), each
//! with a few devices. Every query the live `query-qmp-schema` lists that needs no
//! argument is sent through the generated API (`AnyCommand` by name, `AnyReturn::decode`),
//! plus `query-cpu-model-expansion` of the full `max` model and `query-machines` with
//! `compat-props` where the server has it.
//!
//! A QMP error reply is fine (e.g. `query-sev` on a machine without SEV); a reply that
//! does not decode typed is not. Every failure of a release is collected and reported
//! at once (release, machine, command, error), never just the first.

mod releases;

use std::fmt::Write as _;

use qmp_types::client::{Error, Qmp};
use qmp_types::qmp::{AnyCommand, AnyReturn};
use releases::{start, Release};

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
    q: &mut Qmp,
    release: Release,
    machine: &'static str,
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
    let reply = match q.execute_raw(cmd.name(), args.as_deref()) {
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
            let mut json = reply.get().to_owned();
            if json.len() > 300 {
                let mut end = 300;
                while !json.is_char_boundary(end) {
                    end -= 1;
                }
                json.truncate(end);
                json.push_str("...");
            }
            sweep.failures.push(fail(format!("{e} in {json}")));
        }
    }
}

/// Starts one machine of `release` and runs every query on it.
fn sweep_machine(release: Release, machine: &'static str, devices: &[&str]) -> Sweep {
    let vm = start(
        release,
        release
            .launcher()
            .args(["-machine", machine, "-S"])
            .args(devices),
    );
    let mut q = vm.connect().unwrap();
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
        exercise(&mut q, release, machine, name, None, &mut sweep);
    }
    // Queries with arguments that reach more of the return types.
    exercise(
        &mut q,
        release,
        machine,
        "query-cpu-model-expansion",
        Some(r#"{"type":"full","model":{"name":"max"}}"#),
        &mut sweep,
    );
    if schema.has_argument("query-machines", "compat-props") {
        exercise(
            &mut q,
            release,
            machine,
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

fn run(release: Release) {
    let mut report = String::new();
    let mut failures = Vec::new();
    for (machine, devices) in machines(release) {
        let sweep = sweep_machine(release, machine, devices);
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

#[test]
fn qemu_7_2_replies_decode_typed() {
    run(Release::V7_2);
}

#[test]
fn qemu_10_0_2_replies_decode_typed() {
    run(Release::V10_0_2);
}
