//! The last pass of lowering: every doc text of the IR becomes the texts of its `#[doc]`
//! attributes, one per line (Markdown lines split at line breaks, tabs expanded to four
//! spaces, a space before each non-empty line, as `///` gives them), so that `emit`
//! prints them as they are.

use crate::ir::*;

/// The `#[doc]` texts of Markdown doc lines.
fn attributes(lines: &mut Vec<String>) {
    *lines = lines
        .iter()
        .flat_map(|l| l.split('\n'))
        .map(|l| {
            let l = l.replace('\t', "    ");
            if l.is_empty() {
                l
            } else {
                format!(" {l}")
            }
        })
        .collect();
}

/// Converts every doc text of `file`.
pub(super) fn file(file: &mut File) {
    let File {
        header: _,
        krate: _,
        version_check: _,
        types,
        commands,
        events,
        any_command,
        any_return,
        event_enum,
    } = file;
    types.iter_mut().for_each(item);
    for m in [commands, events] {
        let Module {
            ident: _,
            docs,
            items,
        } = m;
        attributes(docs);
        items.iter_mut().for_each(item);
    }
    let AnyCommand {
        meta,
        variants,
        unknown: _,
    } = any_command;
    dynamic(meta, variants);
    let AnyReturn {
        meta,
        variants,
        unknown: _,
    } = any_return;
    dynamic(meta, variants);
    let EventEnum {
        meta,
        variants,
        unknown: _,
    } = event_enum;
    dynamic(meta, variants);
}

fn meta(meta: &mut Meta) {
    let Meta {
        ident: _,
        docs,
        deprecated: _,
        allow_deprecated: _,
    } = meta;
    attributes(docs);
}

fn constructor(c: &mut Option<Constructor>) {
    if let Some(Constructor {
        docs,
        allow_too_many_arguments: _,
        inits: _,
    }) = c
    {
        attributes(docs);
    }
}

fn field(f: &mut Field) {
    let Field {
        ident: _,
        wire: _,
        ty: _,
        optional: _,
        nullable: _,
        docs,
        deprecated: _,
    } = f;
    attributes(docs);
}

fn dynamic(m: &mut Meta, variants: &mut [DynVariant]) {
    meta(m);
    for v in variants {
        let DynVariant {
            ident: _,
            wire: _,
            path: _,
            has_data: _,
            returns: _,
            docs,
            deprecated: _,
        } = v;
        attributes(docs);
    }
}

fn item(i: &mut Item) {
    match i {
        Item::Struct(Struct {
            meta: m,
            derives: _,
            shape,
            command: _,
            event: _,
            constructor: c,
        }) => {
            meta(m);
            if let StructShape::Fields(fields) = shape {
                fields.iter_mut().for_each(field);
            }
            constructor(c);
        }
        Item::Enum(Enum {
            meta: m,
            derives: _,
            variants,
            unknown: _,
        }) => {
            meta(m);
            for EnumVariant {
                ident: _,
                wire: _,
                docs,
                deprecated: _,
            } in variants
            {
                attributes(docs);
            }
        }
        Item::Union(Union {
            meta: m,
            derives: _,
            fields,
            branches,
            constructor: c,
        }) => {
            meta(m);
            for f in fields {
                match f {
                    UnionField::Base(f) => field(f),
                    UnionField::Tag {
                        ident: _,
                        wire: _,
                        docs,
                    } => attributes(docs),
                }
            }
            let BranchEnum {
                meta: bm,
                variants,
                unknown: _,
            } = branches;
            meta(bm);
            for BranchVariant {
                ident: _,
                wire: _,
                ty: _,
                docs,
            } in variants
            {
                attributes(docs);
            }
            constructor(c);
        }
        Item::Alternate(Alternate {
            meta: m,
            derives: _,
            variants,
            expecting: _,
        }) => {
            meta(m);
            for AltVariant {
                ident: _,
                docs,
                kind: _,
            } in variants
            {
                attributes(docs);
            }
        }
    }
}
