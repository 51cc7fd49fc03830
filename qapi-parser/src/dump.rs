//! The text dump of a checked schema, byte for byte QEMU's `test-qapi.py` output
//! (the `.out` files of QEMU's QAPI test suite).

use std::fmt::Write as _;

use crate::model::{EntityKind, Feature, IfCond, Schema, Variant};

/// Renders `schema` exactly as QEMU's `test-qapi.py` prints it: modules with their
/// entities, then every documentation block.
pub fn dump(schema: &Schema) -> String {
    let mut out = String::with_capacity(1 << 20);
    let mut per_module: Vec<Vec<usize>> = vec![Vec::new(); schema.modules.len()];
    for (i, e) in schema.entities.iter().enumerate() {
        if let Some(m) = per_module.get_mut(e.module.0 as usize) {
            m.push(i);
        }
    }
    for (module, ids) in schema.modules.iter().zip(&per_module) {
        let _ = writeln!(out, "module {}", module.name);
        for &i in ids {
            entity(&mut out, schema, i);
        }
    }
    for doc in &schema.docs {
        match &doc.symbol {
            Some(s) => {
                let _ = writeln!(out, "doc symbol={s}");
            }
            None => out.push_str("doc freeform\n"),
        }
        let _ = writeln!(out, "    body=\n{}", doc.body.text);
        for a in &doc.args {
            let _ = writeln!(
                out,
                "    arg={}\n{}",
                a.name.as_deref().unwrap_or(""),
                a.text
            );
        }
        for f in &doc.features {
            let _ = writeln!(
                out,
                "    feature={}\n{}",
                f.name.as_deref().unwrap_or(""),
                f.text
            );
        }
        for s in &doc.sections {
            let _ = writeln!(out, "    section={}\n{}", s.kind.name(), s.text);
        }
    }
    out
}

fn py_bool(b: bool) -> &'static str {
    if b {
        "True"
    } else {
        "False"
    }
}

/// Python's `str()` of the normalised condition value.
fn cond(out: &mut String, c: &IfCond, top: bool) {
    match c {
        IfCond::Name(n) if top => out.push_str(n),
        IfCond::Name(n) => {
            out.push('\'');
            out.push_str(n);
            out.push('\'');
        }
        IfCond::Not(inner) => {
            out.push_str("{'not': ");
            cond(out, inner, false);
            out.push('}');
        }
        IfCond::All(v) | IfCond::Any(v) => {
            out.push_str(if matches!(c, IfCond::All(_)) {
                "{'all': ["
            } else {
                "{'any': ["
            });
            for (i, x) in v.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                cond(out, x, false);
            }
            out.push_str("]}");
        }
    }
}

fn print_if(out: &mut String, c: &Option<IfCond>, indent: usize) {
    if let Some(c) = c {
        out.extend(std::iter::repeat_n(' ', indent));
        out.push_str("if ");
        cond(out, c, true);
        out.push('\n');
    }
}

fn print_features(out: &mut String, fs: &[Feature], indent: usize) {
    for f in fs {
        out.extend(std::iter::repeat_n(' ', indent));
        let _ = writeln!(out, "feature {}", f.name);
        print_if(out, &f.ifcond, indent + 4);
    }
}

fn print_variants(out: &mut String, schema: &Schema, tag: &str, vs: &[Variant]) {
    let _ = writeln!(out, "    tag {tag}");
    for v in vs {
        let _ = writeln!(out, "    case {}: {}", v.name, type_name(schema, v.ty));
        print_if(out, &v.ifcond, 8);
    }
}

fn type_name(schema: &Schema, id: crate::model::TypeId) -> &str {
    schema
        .entities
        .get(id.0 as usize)
        .map_or("None", |e| e.name.as_str())
}

fn entity(out: &mut String, schema: &Schema, i: usize) {
    let e = &schema.entities[i];
    match &e.kind {
        EntityKind::Builtin(_) => {}
        EntityKind::Include => {
            let _ = writeln!(out, "include {}", e.name);
        }
        EntityKind::Enum(en) => {
            let _ = writeln!(out, "enum {}", e.name);
            if let Some(p) = &en.prefix {
                let _ = writeln!(out, "    prefix {p}");
            }
            for m in &en.members {
                let _ = writeln!(out, "    member {}", m.name);
                print_if(out, &m.ifcond, 8);
                print_features(out, &m.features, 8);
            }
            print_if(out, &e.ifcond, 4);
            print_features(out, &e.features, 4);
        }
        EntityKind::Array(a) => {
            // Built-in arrays (no location) are not printed.
            if e.location.is_some() {
                let _ = writeln!(out, "array {} {}", e.name, type_name(schema, a.element));
                print_if(out, &e.ifcond, 4);
            }
        }
        EntityKind::Object(o) => {
            let _ = writeln!(out, "object {}", e.name);
            if let Some(b) = o.base {
                let _ = writeln!(out, "    base {}", type_name(schema, b));
            }
            for m in &o.local_members {
                let _ = writeln!(
                    out,
                    "    member {}: {} optional={}",
                    m.name,
                    type_name(schema, m.ty),
                    py_bool(m.optional)
                );
                print_if(out, &m.ifcond, 8);
                print_features(out, &m.features, 8);
            }
            if let Some(v) = &o.variants {
                print_variants(out, schema, &v.tag_member, &v.variants);
            }
            print_if(out, &e.ifcond, 4);
            print_features(out, &e.features, 4);
        }
        EntityKind::Alternate(a) => {
            let _ = writeln!(out, "alternate {}", e.name);
            print_variants(out, schema, "type", &a.variants);
            print_if(out, &e.ifcond, 4);
            print_features(out, &e.features, 4);
        }
        EntityKind::Command(c) => {
            let _ = writeln!(
                out,
                "command {} {} -> {}",
                e.name,
                c.arg_type.map_or("None", |t| type_name(schema, t)),
                c.ret_type.map_or("None", |t| type_name(schema, t))
            );
            let _ = writeln!(
                out,
                "    gen={} success_response={} boxed={} oob={} preconfig={}{}",
                py_bool(c.flags.gen),
                py_bool(c.flags.success_response),
                py_bool(c.flags.boxed),
                py_bool(c.flags.allow_oob),
                py_bool(c.flags.allow_preconfig),
                if c.flags.coroutine {
                    " coroutine=True"
                } else {
                    ""
                }
            );
            print_if(out, &e.ifcond, 4);
            print_features(out, &e.features, 4);
        }
        EntityKind::Event(ev) => {
            let _ = writeln!(
                out,
                "event {} {}",
                e.name,
                ev.arg_type.map_or("None", |t| type_name(schema, t))
            );
            let _ = writeln!(out, "    boxed={}", py_bool(ev.boxed));
            print_if(out, &e.ifcond, 4);
            print_features(out, &e.features, 4);
        }
    }
}
