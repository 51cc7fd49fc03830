//! Agreement with each QEMU release's own front end: the QMP, QGA and storage-daemon
//! schemas of 5.2, 7.2, 10.0.2 and 10.2.2, loaded under that release's rules, must give
//! the same entities, members, types, optionality, conditions and features as the
//! release's `scripts/qapi` (`QAPISchema`, run by `tests/adapter/dump.py`).
//!
//! Each release's own error cases (`tests/qapi-schema/*.err` of the cases its `meson.build`
//! runs) must give the same error text under its rules, except for the differences
//! listed in [`KNOWN_GAPS`]; from 10.0 on, the accepted cases' dumps (`.out`) too.
//!
//! The sources come from `cargo xtask qemu fetch`; a missing release fails, never skips.

mod support;

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;

use qapi_parser::{EntityKind, Feature, IfCond, Options, Release, Schema, TypeId};

const RELEASES: [&str; 4] = ["5.2", "7.2", "10.0.2", "10.2.2"];
const SCHEMAS: [&str; 3] = [
    "qapi/qapi-schema.json",
    "qga/qapi-schema.json",
    "storage-daemon/qapi/qapi-schema.json",
];

#[test]
fn every_release_agrees_with_its_own_front_end() {
    let mut failures = Vec::new();
    for version in RELEASES {
        let dir = support::release_dir(version);
        let options = Options::for_release(version).expect("a known release");
        for schema in SCHEMAS {
            let path = dir.join(schema);
            let label = format!("QEMU {version} {schema}");
            let reference = match reference(&dir, &path) {
                Ok(text) => text,
                Err(e) => {
                    failures.push(format!("{label}: the reference failed: {e}"));
                    continue;
                }
            };
            let ours = match qapi_parser::load(&path, &options) {
                Ok(s) => render(&s),
                Err(e) => {
                    failures.push(format!("{label}: we reject it:\n{e}"));
                    continue;
                }
            };
            match first_difference(&reference, &ours) {
                None => println!("{label}: agrees ({} lines)", reference.lines().count()),
                Some(diff) => failures.push(format!("{label}: differs\n{diff}")),
            }
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n\n"));
}

/// Cases of a release's own suite where our error text is known to differ (release, case).
/// A case listed here that starts to agree fails the test, so the list only shrinks.
const KNOWN_GAPS: &[(&str, &str)] = &[
    // 5.2's parser: other syntax error texts (`expected '{'`, list commas) and
    // "expression is missing metatype".
    ("5.2", "leading-comma-list"),
    ("5.2", "missing-type"),
    ("5.2", "non-objects"),
    ("5.2", "quoted-structural-chars"),
    ("5.2", "trailing-comma-list"),
    // 5.2 rejected arrays in alternates.
    ("5.2", "alternate-array"),
    // 5.2's expression checks in another order, or with other texts.
    ("5.2", "double-type"),
    ("5.2", "enum-dict-member-unknown"),
    ("5.2", "union-clash-branches"),
    // "'Returns:' is only valid for commands", at the doc block's line.
    ("5.2", "doc-invalid-return"),
    ("7.2", "doc-invalid-return"),
];

#[test]
fn every_release_passes_its_own_error_cases() {
    let mut failures = Vec::new();
    for version in RELEASES {
        let dir = support::release_dir(version).join("tests/qapi-schema");
        let options = Options::for_release(version).expect("a known release");
        let meson = std::fs::read_to_string(dir.join("meson.build")).expect("meson.build");
        let cases: Vec<&str> = meson
            .split('\'')
            .filter_map(|w| w.strip_suffix(".json"))
            .filter(|w| !w.contains('/'))
            .collect();
        let prefix = format!("{}/", dir.display());
        let mut agreed = 0;
        for case in &cases {
            let want = std::fs::read_to_string(dir.join(format!("{case}.err"))).unwrap_or_default();
            let got = match qapi_parser::load(dir.join(format!("{case}.json")), &options) {
                // From 10.0 on, `test-qapi.py` prints what `dump` prints: compare the
                // accepted cases' `.out` too (none is a known gap).
                Ok(schema) if options.release >= Release::V10_0 => {
                    let want = std::fs::read_to_string(dir.join(format!("{case}.out")));
                    let want = want.unwrap_or_default().replace(&prefix, "");
                    let got = qapi_parser::dump(&schema).replace(&prefix, "");
                    if got != want {
                        let diff = first_difference(&want, &got).unwrap_or_default();
                        failures.push(format!("QEMU {version} {case}: .out differs\n{diff}"));
                    }
                    String::new()
                }
                Ok(_) => String::new(),
                Err(e) => format!("{e}\n").replace(&prefix, ""),
            };
            let known = KNOWN_GAPS.contains(&(version, case));
            match (got == want, known) {
                (true, false) => agreed += 1,
                (false, true) => {}
                (true, true) => failures.push(format!(
                    "QEMU {version} {case}: agrees now; remove it from KNOWN_GAPS"
                )),
                (false, false) => failures.push(format!(
                    "QEMU {version} {case}:\n--- want\n{want}--- got\n{got}"
                )),
            }
        }
        println!("QEMU {version}: {agreed}/{} cases agree", cases.len());
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

/// The release's own reading, by the adapter.
fn reference(release: &Path, schema: &Path) -> Result<String, String> {
    let adapter = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/adapter/dump.py");
    let out = Command::new("python3")
        .arg(adapter)
        .arg(release.join("scripts"))
        .arg(schema)
        .output()
        .map_err(|e| format!("cannot run python3: {e}"))?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    String::from_utf8(out.stdout).map_err(|e| e.to_string())
}

/// The first lines where the texts differ, with a little context.
fn first_difference(want: &str, got: &str) -> Option<String> {
    let (w, g): (Vec<&str>, Vec<&str>) = (want.lines().collect(), got.lines().collect());
    let i = (0..w.len().max(g.len())).find(|&i| w.get(i) != g.get(i))?;
    let from = i.saturating_sub(3);
    let mut out = String::new();
    for (side, lines) in [("reference", &w), ("ours", &g)] {
        let _ = writeln!(out, "--- {side} (from line {}):", from + 1);
        for line in lines.iter().skip(from).take(10) {
            let _ = writeln!(out, "  {line}");
        }
    }
    Some(out)
}

/// Our model in the adapter's text (see its docstring).
fn render(schema: &Schema) -> String {
    let name = |id: Option<TypeId>| id.map_or("-", |id| schema.entity(id).name.as_str());
    let mut ents: Vec<_> = schema
        .entities
        .iter()
        .filter(|e| !matches!(e.kind, EntityKind::Include))
        .collect();
    ents.sort_by(|a, b| a.name.cmp(&b.name));
    let mut out = String::new();
    for e in ents {
        let head = suffix(&e.ifcond, &e.features);
        let _ = match &e.kind {
            EntityKind::Builtin(b) => writeln!(out, "builtin {} {}", e.name, b.json_type()),
            EntityKind::Enum(en) => {
                let prefix = en.prefix.as_deref().unwrap_or("-");
                let _ = writeln!(out, "enum {} prefix={prefix}{head}", e.name);
                for m in &en.members {
                    let _ = writeln!(out, "  value {}{}", m.name, suffix(&m.ifcond, &m.features));
                }
                Ok(())
            }
            EntityKind::Array(a) => writeln!(
                out,
                "array {} {}{}",
                e.name,
                name(Some(a.element)),
                suffix(&e.ifcond, &[])
            ),
            EntityKind::Object(o) => {
                let _ = writeln!(out, "object {} base={}{head}", e.name, name(o.base));
                for m in &o.local_members {
                    let opt = if m.optional { " optional" } else { "" };
                    let s = suffix(&m.ifcond, &m.features);
                    let _ = writeln!(out, "  member {} {}{opt}{s}", m.name, name(Some(m.ty)));
                }
                if let Some(v) = &o.variants {
                    let _ = writeln!(out, "  tag {}", v.tag_member);
                    for c in &v.variants {
                        let s = suffix(&c.ifcond, &[]);
                        let _ = writeln!(out, "  case {} {}{s}", c.name, name(Some(c.ty)));
                    }
                }
                Ok(())
            }
            EntityKind::Alternate(a) => {
                let _ = writeln!(out, "alternate {}{head}\n  tag type", e.name);
                for c in &a.variants {
                    let s = suffix(&c.ifcond, &[]);
                    let _ = writeln!(out, "  case {} {}{s}", c.name, name(Some(c.ty)));
                }
                Ok(())
            }
            EntityKind::Command(c) => {
                let flags: Vec<&str> = [
                    ("gen", c.flags.gen),
                    ("success_response", c.flags.success_response),
                    ("boxed", c.flags.boxed),
                    ("allow_oob", c.flags.allow_oob),
                    ("allow_preconfig", c.flags.allow_preconfig),
                    ("coroutine", c.flags.coroutine),
                ]
                .into_iter()
                .filter_map(|(f, on)| on.then_some(f))
                .collect();
                writeln!(
                    out,
                    "command {} arg={} ret={} flags={}{head}",
                    e.name,
                    name(c.arg_type),
                    name(c.ret_type),
                    flags.join(",")
                )
            }
            EntityKind::Event(ev) => writeln!(
                out,
                "event {} arg={}{}{head}",
                e.name,
                name(ev.arg_type),
                if ev.boxed { " boxed" } else { "" }
            ),
            EntityKind::Include => Ok(()),
        };
    }
    out
}

fn suffix(ifcond: &Option<IfCond>, features: &[Feature]) -> String {
    let mut out = String::new();
    if let Some(c) = ifcond {
        out += &format!(" if={}", cond(c));
    }
    for f in features {
        out += &format!(" feature={}", f.name);
        if let Some(c) = &f.ifcond {
            out += &format!("[if={}]", cond(c));
        }
    }
    out
}

fn cond(c: &IfCond) -> String {
    let list = |op: &str, items: &[IfCond]| {
        let items: Vec<String> = items.iter().map(cond).collect();
        format!("{op}({})", items.join(","))
    };
    match c {
        IfCond::Name(n) => n.clone(),
        IfCond::All(items) => list("all", items),
        IfCond::Any(items) => list("any", items),
        IfCond::Not(c) => format!("not({})", cond(c)),
    }
}
