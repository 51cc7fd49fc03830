//! `cargo xtask schema import DIR` (copy QEMU's schema files into qmp-types and pin them)
//! and `cargo xtask schema diff OLD NEW` (what a schema bump changes).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use qapi_parser::{Compat, EntityKind, Options, Schema, TypeId};

use crate::util::repo_root;
use crate::Result;

#[path = "../../qmp-types/build/pin.rs"]
#[allow(dead_code)]
pub(crate) mod pin;

/// Where the import lands, relative to the repository root (git-ignored, packaged).
pub(crate) const IMPORT_DIR: &str = "qmp-types/qemu-schema";
/// The pin, in `schema/`, and its packaged copy beside the import.
const PINS: [&str; 2] = ["schema/qemu-schema.pin", "qmp-types/qemu-schema.pin"];
/// The schemas the import must contain, each loaded as a check.
const SCHEMAS: [&str; 3] = [
    "qapi/qapi-schema.json",
    "qga/qapi-schema.json",
    "storage-daemon/qapi/qapi-schema.json",
];

/// Where older releases' imports land, one folder per `X.Y` (git-ignored, packaged).
pub(crate) const OLDER_DIR: &str = "qmp-types/qemu-schema-older";

const USAGE: &str = "usage: cargo xtask schema import DIR [--version V] [--older]   (DIR: a QEMU source tree or ../shared/qemu/10.0.2;
                                                            --older: an older release, for the supported range)
       cargo xtask schema diff OLD NEW                  (schema files, or QEMU trees: their qapi/qapi-schema.json)
       cargo xtask schema check [X.Y]                   (the import, or an older release's, matches its pin)
       cargo xtask schema notes OLD:X.Y... NEW          (how often QEMU's \"since\" notes disagree with older schemas)";

/// Entry point.
pub(crate) fn run(args: &[String]) -> Result {
    match args {
        [cmd, rest @ ..] if cmd == "import" => import(rest),
        [cmd, old, new] if cmd == "diff" => diff(Path::new(old), Path::new(new)),
        [cmd, rest @ ..] if cmd == "notes" && rest.len() >= 2 => notes(rest),
        [cmd] if cmd == "check" => check(),
        [cmd, v] if cmd == "check" => check_older(v),
        _ => Err(USAGE.into()),
    }
}

fn import(args: &[String]) -> Result {
    let mut dir = None;
    let mut version = None;
    let mut older = false;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--version" => version = it.next().cloned(),
            "--older" => older = true,
            s if dir.is_none() && !s.starts_with('-') => dir = Some(PathBuf::from(s)),
            _ => return Err(USAGE.into()),
        }
    }
    let dir = dir.ok_or(USAGE)?;
    let version = match version {
        Some(v) => v,
        None => detect_version(&dir)?,
    };
    let mut files: Vec<String> = Vec::new();
    let qapi = dir.join("qapi");
    let mut entries: Vec<PathBuf> = std::fs::read_dir(&qapi)
        .map_err(|e| format!("{}: {e}", qapi.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    entries.sort();
    for p in entries {
        if let Some(name) = p.file_name() {
            files.push(format!("qapi/{}", name.to_string_lossy()));
        }
    }
    files.push(SCHEMAS[1].to_owned());
    files.push(SCHEMAS[2].to_owned());
    files.sort();
    // Check the source loads before replacing anything.
    for s in SCHEMAS {
        if older {
            load_release(&dir.join(s), Some(&version))?;
        } else {
            qapi_parser::load(dir.join(s), &Options::default()).map_err(|e| format!("{e}"))?;
        }
    }
    let root = repo_root();
    let short = short_version(&version)?;
    let (dest, pins) = if older {
        (
            root.join(OLDER_DIR).join(&short),
            older_pins(&short).to_vec(),
        )
    } else {
        (root.join(IMPORT_DIR), PINS.map(str::to_owned).to_vec())
    };
    if dest.exists() {
        std::fs::remove_dir_all(&dest).map_err(|e| format!("{}: {e}", dest.display()))?;
    }
    let mut pin = pin::Pin {
        version: version.clone(),
        files: Vec::new(),
    };
    for f in &files {
        let bytes =
            std::fs::read(dir.join(f)).map_err(|e| format!("{}: {e}", dir.join(f).display()))?;
        let to = dest.join(f);
        if let Some(parent) = to.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&to, &bytes)?;
        pin.files.push((pin::sha256_hex(&bytes), f.clone()));
    }
    let text = pin.render();
    for p in &pins {
        std::fs::write(root.join(p), &text)?;
    }
    println!(
        "schema: imported QEMU {version}: {} files into {}/, pinned in {}",
        files.len(),
        dest.strip_prefix(&root).unwrap_or(&dest).display(),
        pins.join(" and ")
    );
    Ok(())
}

/// `X.Y` of a version `X.Y[.Z]`.
fn short_version(version: &str) -> Result<String> {
    let mut parts = version.split('.');
    match (parts.next(), parts.next()) {
        (Some(a), Some(b)) if a.parse::<u16>().is_ok() && b.parse::<u16>().is_ok() => {
            Ok(format!("{a}.{b}"))
        }
        _ => Err(format!("`{version}` is not a QEMU version (X.Y or X.Y.Z)").into()),
    }
}

/// The pin of an older release `X.Y`, in `schema/` and its packaged copy.
pub(crate) fn older_pins(short: &str) -> [String; 2] {
    [
        format!("schema/qemu-schema-{short}.pin"),
        format!("qmp-types/qemu-schema-{short}.pin"),
    ]
}

/// `schema check X.Y`: an older release's import matches its pin.
fn check_older(short: &str) -> Result {
    let root = repo_root();
    let [a, b] = older_pins(short);
    let text = std::fs::read_to_string(root.join(&a)).map_err(|e| format!("{a}: {e}"))?;
    if std::fs::read_to_string(root.join(&b)).ok().as_deref() != Some(&text) {
        return Err(
            format!("{a} and {b} differ: re-run `cargo xtask schema import --older`").into(),
        );
    }
    let pin = pin::Pin::parse(&text).map_err(|e| format!("{a}: {e}"))?;
    let dir = root.join(OLDER_DIR).join(short);
    pin.verify(&dir)
        .map_err(|bad| format!("{OLDER_DIR}/{short}: {bad}"))?;
    println!(
        "schema: {OLDER_DIR}/{short}/ matches the pin (QEMU {})",
        pin.version
    );
    Ok(())
}

/// The QEMU version of a source tree: its `VERSION` file, else a folder name like `10.0.2`.
fn detect_version(dir: &Path) -> Result<String> {
    if let Ok(v) = std::fs::read_to_string(dir.join("VERSION")) {
        return Ok(v.trim().to_owned());
    }
    let name = dir
        .canonicalize()
        .ok()
        .and_then(|d| d.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_default();
    if !name.is_empty() && name.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return Ok(name);
    }
    Err(format!(
        "cannot tell the QEMU version of {} (no VERSION file): pass --version V",
        dir.display()
    )
    .into())
}

fn check() -> Result {
    let root = repo_root();
    let texts: Vec<String> = PINS
        .iter()
        .map(|p| std::fs::read_to_string(root.join(p)).unwrap_or_default())
        .collect();
    if texts[0] != texts[1] {
        return Err(format!(
            "{} and {} differ: re-run `cargo xtask schema import`",
            PINS[0], PINS[1]
        )
        .into());
    }
    let pin = pin::Pin::parse(&texts[0]).map_err(|e| format!("{}: {e}", PINS[0]))?;
    pin.verify(&root.join(IMPORT_DIR)).map_err(|bad| {
        format!(
            "{IMPORT_DIR}: {bad}; run `cargo xtask schema import ../shared/qemu/{}`",
            pin.version
        )
    })?;
    println!(
        "schema: {IMPORT_DIR}/ matches the pin (QEMU {})",
        pin.version
    );
    Ok(())
}

/// Loads a schema file (or a QEMU tree's `qapi/qapi-schema.json`) under the rules of
/// its own release: `release` when given, else the tree's `VERSION` file, else the
/// default rules and then each older release's in turn.
fn load_any(path: &Path) -> Result<Schema> {
    load_release(path, None)
}

fn load_release(path: &Path, release: Option<&str>) -> Result<Schema> {
    let file = if path.is_dir() {
        path.join("qapi/qapi-schema.json")
    } else {
        path.to_owned()
    };
    let tree_version = path
        .ancestors()
        .map(|d| d.join("VERSION"))
        .find_map(|v| std::fs::read_to_string(v).ok())
        .map(|v| v.trim().to_owned());
    if let Some(v) = release.map(str::to_owned).or(tree_version) {
        let options = Options::for_release(&v).map_err(|e| e.to_string())?;
        return qapi_parser::load(&file, &options).map_err(|e| format!("{e}").into());
    }
    let mut first = None;
    for release in std::iter::once(qapi_parser::Release::default())
        .chain(qapi_parser::Release::ALL.into_iter().rev())
    {
        let mut options = Options::default();
        options.release = release;
        match qapi_parser::load(&file, &options) {
            Ok(s) => return Ok(s),
            Err(e) => {
                first.get_or_insert(e);
            }
        }
    }
    let mut options = Options::default();
    options.compat = Compat::Legacy;
    qapi_parser::load(&file, &options).map_err(|e| format!("{}", first.unwrap_or(e)).into())
}

/// What `diff` compares of one definition.
#[derive(Default, PartialEq)]
struct Sig {
    /// Members (arguments, data, struct members): name -> "type" or "type, optional".
    members: BTreeMap<String, String>,
    /// Other properties as lines (returns, flags, features, enum values, branches).
    props: Vec<String>,
}

fn type_name(s: &Schema, id: TypeId) -> String {
    let e = s.entity(id);
    match &e.kind {
        EntityKind::Array(a) => format!("[{}]", type_name(s, a.element)),
        _ => e.name.clone(),
    }
}

fn members(s: &Schema, id: TypeId, sig: &mut Sig) {
    for m in s.all_members(id) {
        let mut t = type_name(s, m.ty);
        if m.optional {
            t.push_str(", optional");
        }
        for f in &m.features {
            t.push_str(&format!(", {}", f.name));
        }
        sig.members.insert(m.name.clone(), t);
    }
}

fn signatures(s: &Schema) -> BTreeMap<(u8, String), Sig> {
    let mut out = BTreeMap::new();
    for id in s.ids() {
        let e = s.entity(id);
        if e.implicit {
            continue;
        }
        let mut sig = Sig::default();
        for f in &e.features {
            sig.props.push(format!("feature {}", f.name));
        }
        let kind = match &e.kind {
            EntityKind::Command(c) => {
                if let Some(a) = c.arg_type {
                    if c.flags.boxed {
                        sig.props
                            .push(format!("boxed arguments {}", type_name(s, a)));
                    } else {
                        members(s, a, &mut sig);
                    }
                }
                if let Some(r) = c.ret_type {
                    sig.props.push(format!("returns {}", type_name(s, r)));
                }
                if c.flags.allow_oob {
                    sig.props.push("allow-oob".to_owned());
                }
                if !c.flags.success_response {
                    sig.props.push("success-response: false".to_owned());
                }
                0
            }
            EntityKind::Event(ev) => {
                if let Some(a) = ev.arg_type {
                    members(s, a, &mut sig);
                }
                1
            }
            EntityKind::Enum(en) => {
                for m in &en.members {
                    sig.props.push(format!("value {}", m.name));
                }
                2
            }
            EntityKind::Object(o) => {
                members(s, id, &mut sig);
                if let Some(v) = &o.variants {
                    for b in &v.variants {
                        sig.props
                            .push(format!("branch {}: {}", b.name, type_name(s, b.ty)));
                    }
                }
                2
            }
            EntityKind::Alternate(a) => {
                for b in &a.variants {
                    sig.props
                        .push(format!("alternative {}: {}", b.name, type_name(s, b.ty)));
                }
                2
            }
            _ => continue,
        };
        out.insert((kind, e.name.clone()), sig);
    }
    out
}

/// `schema notes OLD:X.Y... NEW`: QEMU's "(since X.Y)" member notes and `Since:`
/// sections of NEW checked against older releases' schemas: a note at or before a
/// release says the item is there, a later one says it is not.
fn notes(args: &[String]) -> Result {
    use qapi_codegen::range::{entity_note, member_note};
    use qapi_codegen::QemuVersion;
    let (new_arg, olds) = args.split_last().ok_or(USAGE)?;
    let new = load_any(Path::new(new_arg))?;
    for old_arg in olds {
        let (path, v) = old_arg.rsplit_once(':').ok_or(USAGE)?;
        let v = QemuVersion::parse(v).ok_or(USAGE)?;
        let old = load_any(Path::new(path))?;
        let (mut agree, mut wrong, mut unnoted) = (0, Vec::new(), 0);
        let mut record = |what: String, note: QemuVersion, present: bool| {
            if (note <= v) == present {
                agree += 1;
            } else {
                let says = if note <= v { "there" } else { "absent" };
                wrong.push(format!(
                    "  {what}: since {note}, so {says} in {v}, but {}",
                    if present { "there" } else { "absent" }
                ));
            }
        };
        for id in new.ids() {
            let e = new.entity(id);
            match &e.kind {
                EntityKind::Command(_) | EntityKind::Event(_) => {
                    if let Some(n) = entity_note(&new, id) {
                        record(e.name.clone(), n, old.lookup(&e.name).is_some());
                    }
                }
                EntityKind::Object(o) => {
                    let Some(old_id) = old.lookup(&e.name) else {
                        continue;
                    };
                    let old_members: Vec<&str> = old
                        .all_members(old_id)
                        .iter()
                        .map(|m| m.name.as_str())
                        .collect();
                    for m in &o.local_members {
                        let present = old_members.contains(&m.name.as_str());
                        match new
                            .member_doc(id, &m.name)
                            .and_then(|d| member_note(&d.text))
                        {
                            Some(n) => record(format!("{}.{}", e.name, m.name), n, present),
                            None if !present => unnoted += 1,
                            None => {}
                        }
                    }
                }
                _ => {}
            }
        }
        println!(
            "against QEMU {v}: {agree} notes agree, {} disagree; {unnoted} members absent from {v} have no note",
            wrong.len()
        );
        for w in &wrong {
            println!("{w}");
        }
    }
    Ok(())
}

fn diff(old: &Path, new: &Path) -> Result {
    print!("{}", diff_report(&load_any(old)?, &load_any(new)?));
    Ok(())
}

/// The text `diff` prints: one line per added (`+`), removed (`-`) or changed (`~`)
/// command, event and type, indented lines for what changed, one line (`!`) per member
/// or return whose old values the new type cannot decode (the generator's `Versioned`),
/// then one count line per kind.
fn diff_report(old: &Schema, new: &Schema) -> String {
    use std::fmt::Write as _;
    let (a, b) = (signatures(old), signatures(new));
    let kinds = ["command", "event", "type"];
    let mut counts = [[0usize; 3]; 3];
    let mut out = String::new();
    // Writing to a String cannot fail.
    macro_rules! line {
        ($($t:tt)*) => { let _ = writeln!(out, $($t)*); };
    }
    for (k, label) in kinds.iter().enumerate() {
        let k = k as u8;
        for ((_, name), sig_b) in b.range((k, String::new())..(k + 1, String::new())) {
            match a.get(&(k, name.clone())) {
                None => {
                    line!("+ {label} {name}");
                    counts[k as usize][0] += 1;
                }
                Some(sig_a) if sig_a != sig_b => {
                    line!("~ {label} {name}");
                    for (m, t) in &sig_b.members {
                        match sig_a.members.get(m) {
                            None => {
                                line!("    + member {m}: {t}");
                            }
                            Some(old_t) if old_t != t => {
                                line!("    ~ member {m}: {old_t} -> {t}");
                            }
                            _ => {}
                        }
                    }
                    for (m, t) in &sig_a.members {
                        if !sig_b.members.contains_key(m) {
                            line!("    - member {m}: {t}");
                        }
                    }
                    for p in &sig_b.props {
                        if !sig_a.props.contains(p) {
                            line!("    + {p}");
                        }
                    }
                    for p in &sig_a.props {
                        if !sig_b.props.contains(p) {
                            line!("    - {p}");
                        }
                    }
                    counts[k as usize][2] += 1;
                }
                _ => {}
            }
        }
        for (_, name) in a
            .range((k, String::new())..(k + 1, String::new()))
            .map(|(key, _)| key)
        {
            if !b.contains_key(&(k, name.clone())) {
                line!("- {label} {name}");
                counts[k as usize][1] += 1;
            }
        }
    }
    // What the generator makes `Versioned<T>`: old values the new type cannot decode.
    let older = [qapi_codegen::Release {
        version: qapi_codegen::QemuVersion::new(0, 0),
        schema: old,
    }];
    let range = qapi_codegen::range::Range::new(new, &older, None);
    let changes = range.type_changes();
    for (what, _) in &changes {
        line!("! {what}: the old type does not decode as the new one");
    }
    for (k, label) in kinds.iter().enumerate() {
        let [add, rem, chg] = counts[k];
        line!("{label}s: {add} added, {rem} removed, {chg} changed");
    }
    line!(
        "shape changes the new type cannot decode: {}",
        changes.len()
    );
    out
}

#[cfg(test)]
mod tests {
    use expect_test::{expect, Expect};

    use super::*;

    fn check(old: &str, new: &str, want: Expect) {
        let load = |name: &str, text: &str| {
            qapi_parser::load_str(name, text, &Options::default())
                .unwrap_or_else(|e| panic!("{name}: {e}"))
        };
        want.assert_eq(&diff_report(&load("old.json", old), &load("new.json", new)));
    }

    #[test]
    fn diff_lists_added_removed_and_changed_definitions() {
        check(
            r#"
{ 'enum': 'Color', 'data': [ 'red', 'green' ] }
{ 'struct': 'Point', 'data': { 'x': 'int', 'y': 'int' } }
{ 'struct': 'Gone', 'data': { 'a': 'str' } }
{ 'command': 'query-point', 'returns': 'Point' }
{ 'command': 'old-cmd' }
{ 'command': 'set-point',
  'data': { 'x': 'int', 'y': 'int', 'color': 'Color' } }
{ 'event': 'POINT_MOVED', 'data': { 'x': 'int' } }
"#,
            r#"
{ 'enum': 'Color', 'data': [ 'red', 'blue' ] }
{ 'struct': 'Point',
  'data': { 'x': 'number', 'y': 'int', '*label': 'str' } }
{ 'struct': 'Added', 'data': { 'b': [ 'int' ] } }
{ 'command': 'query-point', 'returns': 'Point' }
{ 'command': 'new-cmd', 'data': { 'p': 'Added' } }
{ 'command': 'set-point',
  'data': { 'x': 'number', 'z': 'int', 'color': 'Color' },
  'allow-oob': true }
{ 'event': 'POINT_MOVED', 'data': { 'x': 'int', '*y': 'int' } }
{ 'event': 'POINT_GONE' }
"#,
            expect![[r#"
                + command new-cmd
                ~ command set-point
                    ~ member x: int -> number
                    + member z: int
                    - member y: int
                    + allow-oob
                - command old-cmd
                + event POINT_GONE
                ~ event POINT_MOVED
                    + member y: int, optional
                + type Added
                ~ type Color
                    + value blue
                    - value green
                ~ type Point
                    + member label: str, optional
                    ~ member x: int -> number
                - type Gone
                commands: 1 added, 1 removed, 1 changed
                events: 1 added, 0 removed, 1 changed
                types: 1 added, 1 removed, 2 changed
                shape changes the new type cannot decode: 0
            "#]],
        );
    }
}
