//! `help` and `help COMMAND`: QEMU's documentation of a command, its arguments with
//! their types and what it returns, from the QAPI schema files when they are at hand
//! (loaded by `qapi_parser`), otherwise from the connected QEMU's introspection.
//!
//! QEMU's text is reStructuredText; it goes through the same conversion as the rustdoc of
//! the generated API (`qapi_codegen::docs`), rendered as plain text: directives such as
//! `.. admonition::` and `.. qmp-example::` become labelled paragraphs and indented examples.

use std::path::{Path, PathBuf};

use qapi_parser::{EntityKind, SectionKind, TypeId};

use crate::schema::{Kind, Schema};

/// Where QAPI schema files are looked for: `--schema FILE`, `$QMP_SCHEMA`, then
/// `$QMP_TYPES_SCHEMA_DIR` and the folder `cargo xtask schema import` fills in this
/// repository (`qmp-types/qemu-schema/`, where `qmp-types` is generated from).
pub fn schema_file(explicit: Option<&Path>, qga: bool) -> Option<PathBuf> {
    if let Some(p) = explicit {
        return Some(p.to_owned());
    }
    if let Some(p) = std::env::var_os("QMP_SCHEMA") {
        return Some(PathBuf::from(p));
    }
    let sub = if qga { "qga" } else { "qapi" };
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    std::env::var_os("QMP_TYPES_SCHEMA_DIR")
        .map(PathBuf::from)
        .into_iter()
        .chain([
            repo.join("qmp-types/qemu-schema"),
            repo.join("schema/upstream"),
        ])
        .find_map(|dir| find_schema(&dir, sub, 3))
}

/// `DIR/.../SUB/qapi-schema.json`, searching at most `depth` folders down, in name order.
fn find_schema(dir: &Path, sub: &str, depth: u32) -> Option<PathBuf> {
    let direct = dir.join(sub).join("qapi-schema.json");
    if direct.is_file() {
        return Some(direct);
    }
    if depth == 0 {
        return None;
    }
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    dirs.iter().find_map(|d| find_schema(d, sub, depth - 1))
}

/// Loads QAPI schema files for their documentation.
pub fn load_docs(path: &Path) -> Result<qapi_parser::Schema, String> {
    let opts = qapi_parser::Options::default();
    qapi_parser::load(path, &opts).map_err(|e| e.to_string())
}

fn type_name(q: &qapi_parser::Schema, id: TypeId) -> String {
    let e = q.entity(id);
    match &e.kind {
        EntityKind::Array(a) => format!("[{}]", type_name(q, a.element)),
        _ => e.name.clone(),
    }
}

/// Columns QEMU's text is wrapped at (before the indentation `help` adds).
const WIDTH: usize = 76;

/// One QAPI doc section's text as plain text (see the module docs).
fn text(rst: &str) -> String {
    qapi_codegen::docs::to_text(rst, WIDTH)
}

fn indent(text: &str, by: &str) -> String {
    text.lines()
        .map(|l| {
            if l.trim().is_empty() {
                String::new()
            } else {
                format!("{by}{l}")
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// `help` without a command: how to use the shell and the command names.
pub fn overview(schema: Option<&Schema>) -> String {
    let mut out = String::from(
        "Type a command as NAME key=value ... (dotted keys nest: file.driver=qcow2),\n\
         values as JSON where needed (x=[1, 2], y={\"a\": 1}, z=\"quoted string\"),\n\
         transaction( action key=value ; action key=value ), or a raw JSON request.\n\
         Prefixes: --oob, --timeout=SECS, --fd=N. Tab completes. help COMMAND documents one.\n",
    );
    if let Some(s) = schema {
        out.push_str(&format!("\n{} commands:\n", s.commands.len()));
        let names: Vec<&str> = s.command_names().collect();
        let w = names.iter().map(|n| n.len()).max().unwrap_or(0) + 2;
        let per_line = (100 / w).max(1);
        for chunk in names.chunks(per_line) {
            let line: String = chunk.iter().map(|n| format!("{n:<w$}")).collect();
            out.push_str(line.trim_end());
            out.push('\n');
        }
    }
    out
}

/// Documentation of `name`. `docs` are the QAPI files (with QEMU's text); `live` is the
/// connected peer's schema, which decides whether the command exists there.
pub fn command(name: &str, docs: Option<&qapi_parser::Schema>, live: Option<&Schema>) -> String {
    let live_has = live.map(|s| s.commands.contains_key(name));
    let documented = docs.and_then(|q| {
        let id = q.lookup(name)?;
        matches!(q.entity(id).kind, EntityKind::Command(_)).then_some(id)
    });
    let mut out = String::new();
    match (documented, docs) {
        (Some(id), Some(q)) => out.push_str(&from_docs(q, id)),
        _ => match live.and_then(|s| s.commands.get(name).map(|c| (s, c))) {
            Some((s, c)) => {
                out.push_str(&format!("{name}\n"));
                let members = c.args.map(|a| s.members(a, None)).unwrap_or_default();
                if members.is_empty() {
                    out.push_str("\nArguments: none\n");
                } else {
                    out.push_str("\nArguments:\n");
                    for m in members {
                        let opt = if m.optional { " (optional)" } else { "" };
                        out.push_str(&format!("  {}: {}{opt}\n", m.name, s.describe(m.ty)));
                    }
                    if let Some(Kind::Object { tag: Some(tag), .. }) = c.args.map(|a| &s.ty(a).kind)
                    {
                        out.push_str(&format!("  (further members depend on '{tag}')\n"));
                    }
                }
                match c.ret {
                    Some(r) => {
                        out.push_str(&format!("\nReturns: {}\n", s.describe(r)));
                        // The members of the returned object (or of each element).
                        let obj = match &s.ty(r).kind {
                            Kind::Array(e) => s.object_of(*e),
                            _ => s.object_of(r),
                        };
                        for m in obj.map(|o| s.members(o, None)).unwrap_or_default() {
                            let opt = if m.optional { " (optional)" } else { "" };
                            out.push_str(&format!("  {}: {}{opt}\n", m.name, s.describe(m.ty)));
                        }
                    }
                    None => out.push_str("\nReturns: nothing\n"),
                }
                out.push_str(
                    "\n(no QAPI documentation loaded: pass --schema FILE for QEMU's text)\n",
                );
            }
            None => {
                let suggestion = live
                    .and_then(|s| crate::suggest::closest(name, s.command_names()))
                    .map(|s| format!("; did you mean '{s}'?"))
                    .unwrap_or_default();
                return format!("unknown command '{name}'{suggestion}\n");
            }
        },
    }
    if live_has == Some(false) {
        out.push_str("\nNote: the connected QEMU does not have this command.\n");
    }
    out
}

fn from_docs(q: &qapi_parser::Schema, id: TypeId) -> String {
    let e = q.entity(id);
    let EntityKind::Command(c) = &e.kind else {
        return String::new();
    };
    let mut out = e.name.clone();
    if let Some(r) = c.ret_type {
        out.push_str(&format!(" -> {}", type_name(q, r)));
    }
    out.push('\n');
    let doc = e.doc.map(|d| q.doc(d));
    if let Some(d) = doc {
        if !d.body.text.trim().is_empty() {
            out.push('\n');
            out.push_str(&indent(&text(&d.body.text), "  "));
            out.push('\n');
        }
    }
    match c.arg_type {
        None => out.push_str("\nArguments: none\n"),
        Some(a) => {
            out.push_str("\nArguments:\n");
            let owner = if q.entity(a).implicit { id } else { a };
            for m in q.all_members(a) {
                let opt = if m.optional { " (optional)" } else { "" };
                out.push_str(&format!("  {}: {}{opt}\n", m.name, type_name(q, m.ty)));
                let doc = q
                    .member_doc(owner, &m.name)
                    .or_else(|| q.member_doc(a, &m.name))
                    .map(|s| text(&s.text))
                    .unwrap_or_default();
                if !doc.is_empty() {
                    out.push_str(&indent(&doc, "      "));
                    out.push('\n');
                }
            }
            if let EntityKind::Object(o) = &q.entity(a).kind {
                if let Some(v) = &o.variants {
                    out.push_str(&format!(
                        "  further members depend on '{}': {}\n",
                        v.tag_member,
                        v.variants
                            .iter()
                            .filter(|x| !x.implicit)
                            .map(|x| format!("{} ({})", x.name, q.entity(x.ty).name))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ));
                }
            }
        }
    }
    match c.ret_type {
        None => out.push_str("\nReturns: nothing ({} on success)\n"),
        Some(r) => {
            // The returned object's members (each element's, for a list).
            let obj = match &q.entity(r).kind {
                EntityKind::Array(a) => a.element,
                _ => r,
            };
            if let EntityKind::Object(_) = &q.entity(obj).kind {
                out.push_str(&format!("\nReturns {}:\n", type_name(q, r)));
                for m in q.all_members(obj) {
                    let opt = if m.optional { " (optional)" } else { "" };
                    out.push_str(&format!("  {}: {}{opt}\n", m.name, type_name(q, m.ty)));
                    if let Some(doc) = q.member_doc(obj, &m.name).map(|s| text(&s.text)) {
                        if !doc.is_empty() {
                            out.push_str(&indent(&doc, "      "));
                            out.push('\n');
                        }
                    }
                }
            }
        }
    }
    if let Some(d) = doc {
        for s in &d.sections {
            let label = match s.kind {
                SectionKind::Returns => "Returns",
                SectionKind::Errors => "Errors",
                SectionKind::Since => "Since",
                SectionKind::Note => "Note",
                SectionKind::Example => "Example",
                SectionKind::Todo => continue,
                _ => "",
            };
            let doc = text(&s.text);
            if doc.trim().is_empty() {
                continue;
            }
            if label.is_empty() {
                out.push('\n');
                out.push_str(&indent(&doc, "  "));
                out.push('\n');
            } else {
                out.push_str(&format!("\n{label}:\n{}\n", indent(&doc, "  ")));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    /// QEMU 10.0.2's QMP schema in the reference material (`$QAPI_SHARED_DIR`, else
    /// `../shared/qemu` beside the repository).
    fn qmp_docs() -> qapi_parser::Schema {
        let shared = std::env::var_os("QAPI_SHARED_DIR")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|| {
                std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/qemu")
            });
        let path = shared.join("10.0.2/qapi/qapi-schema.json");
        super::load_docs(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    #[test]
    fn qemu_markup_is_rendered_as_text() {
        let docs = qmp_docs();
        let text = super::command("device_del", Some(&docs), None);
        for raw in [
            ".. note::",
            ".. qmp-example::",
            ".. admonition::",
            "``",
            "@id",
        ] {
            assert!(!text.contains(raw), "{raw} in:\n{text}");
        }
        // The note and the examples, as the rustdoc of qmp-types shows them.
        assert!(
            text.contains("  Note: When this command completes"),
            "{text}"
        );
        assert!(text.contains("  Example:"), "{text}");
        assert!(
            text.contains("      -> { \"execute\": \"device_del\""),
            "{text}"
        );
        // A member's text: its markup resolved, wrapped, hanging under the member.
        let text = super::command("query-block-jobs", Some(&docs), None);
        assert!(
            text.contains("  device: str\n      The job identifier."),
            "{text}"
        );
        assert!(
            text.lines().all(|l| l.chars().count() <= super::WIDTH + 8),
            "{text}"
        );
    }
}
