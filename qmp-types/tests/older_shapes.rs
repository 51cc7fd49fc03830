//! Every reply and event shape an older release of the supported range can send,
//! built from that release's own schema, decodes with this crate's API.
//!
//! For each command and event that both the older release and this API have, the
//! test builds values from the older schema alone: the smallest (required members
//! only) and the largest (every member), with one element per list and every union
//! branch, and decodes them as this API does a reply or an event. This checks the
//! generator's range analysis from the outside: it shares no code with it.
//! Conditional members are always left out, so the schema generated from is checked
//! too, as a build for a target where no `if` condition holds.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use qapi_parser::{Builtin, EntityKind, Options, Schema, TypeId};
use qmp_types::qmp::{AnyReturn, Event};
use qmp_types::{EventSet, Timestamp};
use serde_json::{json, Map, Value};

/// Values of `id` from the older schema: `full` includes optional members. Unions give
/// one value per branch; recursion ends at `depth`.
fn values(s: &Schema, id: TypeId, full: bool, depth: u32, stack: &mut Vec<TypeId>) -> Vec<Value> {
    let e = s.entity(id);
    if depth > 12 || stack.contains(&id) {
        return Vec::new();
    }
    match &e.kind {
        EntityKind::Builtin(b) => vec![match b {
            Builtin::Str => json!("x"),
            Builtin::Number => json!(1.5),
            Builtin::Bool => json!(true),
            Builtin::Null => Value::Null,
            Builtin::Any => json!({}),
            _ => json!(1),
        }],
        EntityKind::Enum(en) => en.members.iter().take(1).map(|m| json!(m.name)).collect(),
        EntityKind::Array(a) => {
            stack.push(id);
            let v = values(s, a.element, full, depth + 1, stack);
            stack.pop();
            vec![Value::Array(v.into_iter().take(1).collect())]
        }
        EntityKind::Alternate(a) => {
            let mut out = Vec::new();
            stack.push(id);
            for v in &a.variants {
                out.extend(values(s, v.ty, full, depth + 1, stack).into_iter().take(1));
            }
            stack.pop();
            out
        }
        EntityKind::Object(o) => {
            stack.push(id);
            let mut base = Map::new();
            for m in s.all_members(id) {
                // Conditional members are left out: a build without the condition.
                if (m.optional && !full) || m.ifcond.is_some() {
                    continue;
                }
                let tag = o.variants.as_ref().is_some_and(|v| v.tag_member == m.name);
                if tag {
                    continue;
                }
                match values(s, m.ty, full, depth + 1, stack).into_iter().next() {
                    Some(v) => {
                        base.insert(m.name.clone(), v);
                    }
                    // A recursive member that must be there: no finite value.
                    None if !m.optional => {
                        stack.pop();
                        return Vec::new();
                    }
                    None => {}
                }
            }
            let out = match &o.variants {
                None => vec![Value::Object(base)],
                Some(vs) => {
                    let mut out = Vec::new();
                    for b in &vs.variants {
                        let mut obj = base.clone();
                        obj.insert(vs.tag_member.clone(), json!(b.name));
                        if let Some(Value::Object(branch)) =
                            values(s, b.ty, full, depth + 1, stack).into_iter().next()
                        {
                            obj.extend(branch);
                        }
                        out.push(Value::Object(obj));
                    }
                    out
                }
            };
            stack.pop();
            out
        }
        _ => Vec::new(),
    }
}

/// A schema to check: its label, its folder and the parser rules of its release.
struct Source {
    label: String,
    dir: PathBuf,
    options: Options,
}

/// The other releases this crate supports whose schemas are at hand (the imports the
/// build script reads, `qemu-schema-older/X.Y/`, from `MIN_QEMU` on, oldest first),
/// then the schema generated from.
fn sources() -> Vec<Source> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = root.join("qemu-schema-older");
    // Releases before the supported range are not promised anything.
    let (major, minor) = qmp_types::MIN_QEMU.split_once('.').expect("X.Y");
    let min: (u32, u32) = (major.parse().unwrap(), minor.parse().unwrap());
    let mut out: Vec<((u32, u32), Source)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e} (run `cargo xtask prepare`)", dir.display()))
        .map(|e| e.unwrap().path())
        .map(|p| {
            let v = p.file_name().unwrap().to_string_lossy().into_owned();
            let options = Options::for_release(&v).unwrap_or_else(|e| panic!("{v}: {e}"));
            let (major, minor) = v.split_once('.').expect("X.Y");
            let key = (major.parse().unwrap(), minor.parse().unwrap());
            let label = format!("QEMU {v}");
            (
                key,
                Source {
                    label,
                    dir: p,
                    options,
                },
            )
        })
        .filter(|(k, _)| *k >= min)
        .collect();
    out.sort_by_key(|(k, _)| *k);
    assert!(!out.is_empty(), "no older schemas in {}", dir.display());
    let mut out: Vec<Source> = out.into_iter().map(|(_, s)| s).collect();
    // The schema generated from, on a target where no condition holds.
    out.push(Source {
        label: "the schema generated from, no `if` holding".to_owned(),
        dir: root.join("qemu-schema"),
        options: Options::default(),
    });
    out
}

/// Decoders of one generated API: a reply by command name, an event by name.
struct Api {
    schema: &'static str,
    source: &'static str,
    reply: fn(&str, &str) -> Result<(), String>,
    event: fn(&str, &str) -> Result<(), String>,
}

fn check(api: &Api) {
    let current = HashSet::<&str>::from_iter(api.source.split('"'));
    for Source {
        label: version,
        dir,
        options,
    } in sources()
    {
        let s = qapi_parser::load(dir.join(api.schema), &options).unwrap_or_else(|e| panic!("{e}"));
        let (mut checked, mut failures) = (0, Vec::new());
        for full in [false, true] {
            for c in s.commands() {
                let EntityKind::Command(cmd) = &c.kind else {
                    continue;
                };
                let Some(ret) = cmd.ret_type else { continue };
                if !current.contains(c.name.as_str()) {
                    continue;
                }
                for v in values(&s, ret, full, 0, &mut Vec::new()) {
                    checked += 1;
                    if let Err(e) = (api.reply)(&c.name, &v.to_string()) {
                        failures.push(format!("{version}: {}: {e}\n  {v}", c.name));
                    }
                }
            }
            for ev in s.events() {
                let EntityKind::Event(event) = &ev.kind else {
                    continue;
                };
                let Some(data) = event.arg_type else { continue };
                for v in values(&s, data, full, 0, &mut Vec::new()) {
                    checked += 1;
                    if let Err(e) = (api.event)(&ev.name, &v.to_string()) {
                        failures.push(format!("{version}: event {}: {e}\n  {v}", ev.name));
                    }
                }
            }
        }
        println!(
            "{}, {version}: {checked} shapes, {} failed",
            api.schema,
            failures.len()
        );
        assert!(checked > 10, "only {checked} shapes from {version}");
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }
}

#[test]
fn qmp() {
    check(&Api {
        schema: "qapi/qapi-schema.json",
        source: include_str!(concat!(env!("OUT_DIR"), "/qmp.rs")),
        reply: |n, j| AnyReturn::decode(n, j).map(drop).map_err(|e| e.to_string()),
        event: |n, j| {
            Event::decode_event(n, Some(j), Timestamp::default())
                .map(drop)
                .map_err(|e| e.to_string())
        },
    });
}

#[cfg(feature = "qga")]
#[test]
fn qga() {
    use qmp_types::qga;
    check(&Api {
        schema: "qga/qapi-schema.json",
        source: include_str!(concat!(env!("OUT_DIR"), "/qga.rs")),
        reply: |n, j| {
            qga::AnyReturn::decode(n, j)
                .map(drop)
                .map_err(|e| e.to_string())
        },
        event: |n, j| {
            qga::Event::decode_event(n, Some(j), Timestamp::default())
                .map(drop)
                .map_err(|e| e.to_string())
        },
    });
}

#[cfg(feature = "storage-daemon")]
#[test]
fn storage_daemon() {
    use qmp_types::storage_daemon as sd;
    check(&Api {
        schema: "storage-daemon/qapi/qapi-schema.json",
        source: include_str!(concat!(env!("OUT_DIR"), "/storage_daemon.rs")),
        reply: |n, j| {
            sd::AnyReturn::decode(n, j)
                .map(drop)
                .map_err(|e| e.to_string())
        },
        event: |n, j| {
            sd::Event::decode_event(n, Some(j), Timestamp::default())
                .map(drop)
                .map_err(|e| e.to_string())
        },
    });
}
