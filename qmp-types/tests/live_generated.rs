//! The generated API against live QEMU 10.0.2: every query command that can be sent
//! without arguments (it has none, or only optional ones) is executed against `qemu-system-x86_64 -machine none` (and, with the
//! `storage-daemon` feature, `qemu-storage-daemon`) and its reply decoded with the
//! typed return, which must serialize back to the JSON QEMU sent. On both drivers
//! (`NAME::blocking`, `NAME::tokio`).

#[macro_use]
mod common;

use common::{start, Driver, QmpClient};
use qmp_types::client::{Launcher, Request};
use qmp_types::qmp;

dual_tests!(
    qemu_system_queries_decode_typed,
    #[cfg(feature = "storage-daemon")]
    storage_daemon_queries_decode_typed,
);

/// Names of the commands QEMU reports, via the typed `query-commands`.
fn command_names(q: &impl QmpClient) -> Vec<String> {
    let mut names: Vec<String> = q
        .execute(&qmp::commands::QueryCommands)
        .unwrap()
        .into_iter()
        .map(|c| c.name)
        .collect();
    names.sort();
    names
}

/// Executes every `query-*` command that can be sent without arguments; `decode` gives the typed return
/// re-serialized, or `None` when the schema does not know the command.
fn check_queries(
    q: &impl QmpClient,
    at_least: usize,
    takes_no_arguments: impl Fn(&str) -> Option<bool>,
    decode: impl Fn(&str, &str) -> Result<Option<serde_json::Value>, serde_json::Error>,
) {
    let (mut typed, mut refused) = (0, Vec::new());
    for name in command_names(q) {
        if !(name.starts_with("query-") || name.starts_with("x-query-")) {
            continue;
        }
        match takes_no_arguments(&name) {
            Some(true) => {}
            Some(false) => continue,
            None => panic!("{name}: QEMU has it, the generated API does not"),
        }
        let raw = match q.execute(Request::name(&name)) {
            Ok(raw) => raw,
            // Some queries need a machine or an accelerator `-machine none` lacks.
            Err(e) => {
                refused.push(format!("{name} ({e})"));
                continue;
            }
        };
        let back = decode(&name, raw.get())
            .unwrap_or_else(|e| panic!("{name}: typed decoding failed: {e}\n{}", raw.get()))
            .unwrap_or_else(|| panic!("{name}: decoded as unknown"));
        let sent: serde_json::Value = serde_json::from_str(raw.get()).unwrap();
        assert_eq!(back, sent, "{name} serializes back differently");
        typed += 1;
    }
    println!("{typed} query commands decoded typed; refused by QEMU: {refused:?}");
    assert!(typed >= at_least, "too few queries ran: {typed}");
}

/// Whether the generated `AnyCommand` knows `name` and it can be sent without arguments
/// (`AnyCommand` leaves out empty `arguments`, as the transport does).
fn no_args_qmp(name: &str) -> Option<bool> {
    // Required arguments make `{}` fail to decode: a known command, with arguments.
    let Ok(cmd) = qmp::AnyCommand::from_request(name, Some("{}")) else {
        return Some(false);
    };
    if matches!(cmd, qmp::AnyCommand::Unrecognized { .. }) {
        return None;
    }
    let wire = serde_json::to_value(&cmd).unwrap();
    Some(wire.get("arguments").is_none())
}

fn qemu_system_queries_decode_typed(d: &impl Driver) {
    let vm = start(Launcher::qemu());
    let q = d.connect(&vm).unwrap();
    // A typed command, typed return.
    let status = q.execute(&qmp::commands::QueryStatus).unwrap();
    assert_eq!(status.status, qmp::RunState::Running);
    check_queries(&q, 30, no_args_qmp, |name, json| {
        let r = qmp::AnyReturn::decode(name, json)?;
        Ok((!matches!(r, qmp::AnyReturn::Unrecognized(_)))
            .then(|| serde_json::to_value(&r).unwrap()))
    });
}

#[cfg(feature = "storage-daemon")]
fn storage_daemon_queries_decode_typed(d: &impl Driver) {
    use qmp_types::storage_daemon as sd;
    let qsd = start(Launcher::storage_daemon());
    let q = d.connect(&qsd).unwrap();
    check_queries(
        &q,
        8,
        |name| {
            let Ok(cmd) = sd::AnyCommand::from_request(name, Some("{}")) else {
                return Some(false);
            };
            if matches!(cmd, sd::AnyCommand::Unrecognized { .. }) {
                return None;
            }
            Some(
                serde_json::to_value(&cmd)
                    .unwrap()
                    .get("arguments")
                    .is_none(),
            )
        },
        |name, json| {
            let r = sd::AnyReturn::decode(name, json)?;
            Ok((!matches!(r, sd::AnyReturn::Unrecognized(_)))
                .then(|| serde_json::to_value(&r).unwrap()))
        },
    );
}
