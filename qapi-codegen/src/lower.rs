//! Schema -> IR: every decision is made here (names, `Option`/`Box`, derives, layout,
//! docs, deprecation), so that `emit` only prints.

use crate::docs::{to_markdown, to_note};
use crate::ir::*;
use crate::names::{claim_all, type_ident, Scope};
use crate::range::{member_note, Range, Release};
use crate::Config;
use graph::Graph;
use links::{field_idents, Here, Home, Links};
use qapi_parser::{
    Builtin, Doc, Entity, EntityKind, Feature, IfCond, Member, Schema, SectionKind, TypeId,
};

/// Lowers a schema to the IR under `cfg`. `label` names the schema in the header.
/// `older` are older releases' schemas, for the supported range (`Config::min_qemu`).
pub fn lower(schema: &Schema, older: &[Release<'_>], cfg: &Config, label: &str) -> File {
    let range = Range::new(schema, older, cfg.min_qemu);
    let mut file = Lower::new(schema, cfg, range).file(label);
    constructors::file(&mut file);
    doc_attributes::file(&mut file);
    file
}

struct Lower<'a> {
    s: &'a Schema,
    cfg: &'a Config,
    /// Entities to generate or reference (the filter's closure).
    kept: Vec<bool>,
    /// Identifier of each generated item: types at the root, commands and events in
    /// their modules.
    idents: Vec<Option<String>>,
    /// Identifier of each union's branch enum.
    branch_idents: Vec<Option<String>>,
    /// The reference graph: components (for `Box`) and `Eq`-ability.
    graph: Graph<'a>,
    /// The root naming scope, once the types are named.
    root_scope: Option<Scope>,
    /// What the releases of the supported range send and require.
    range: Range<'a>,
    /// Where every generated item lives, for the docs' cross references.
    links: Links,
}

fn n_entities(s: &Schema) -> usize {
    s.entities.len()
}

fn is_deprecated(features: &[Feature]) -> bool {
    features.iter().any(Feature::is_deprecated)
}

fn is_unstable(features: &[Feature]) -> bool {
    features.iter().any(Feature::is_unstable)
}

fn cond_text(c: &IfCond) -> String {
    match c {
        IfCond::Name(n) => n.clone(),
        IfCond::All(v) => format!(
            "all({})",
            v.iter().map(cond_text).collect::<Vec<_>>().join(", ")
        ),
        IfCond::Any(v) => format!(
            "any({})",
            v.iter().map(cond_text).collect::<Vec<_>>().join(", ")
        ),
        IfCond::Not(c) => format!("not({})", cond_text(c)),
    }
}

fn availability(c: &Option<IfCond>) -> Option<String> {
    c.as_ref().map(|c| {
        format!(
            "**Availability:** only in QEMU builds where `{}` holds.",
            cond_text(c)
        )
    })
}

fn prim(b: Builtin) -> Prim {
    match b {
        Builtin::Str => Prim::String,
        Builtin::Number => Prim::F64,
        Builtin::Int | Builtin::Int64 => Prim::I64,
        Builtin::Int8 => Prim::I8,
        Builtin::Int16 => Prim::I16,
        Builtin::Int32 => Prim::I32,
        Builtin::Uint8 => Prim::U8,
        Builtin::Uint16 => Prim::U16,
        Builtin::Uint32 => Prim::U32,
        Builtin::Uint64 | Builtin::Size => Prim::U64,
        Builtin::Bool => Prim::Bool,
        Builtin::Any => Prim::Value,
        Builtin::Null => Prim::Unit,
    }
}

/// The runtime item generated code checks for: `QAPI_CODEGEN_<major>_<minor>` (both
/// crates keep the same version; semver-compatible releases keep the item).
fn version_check(version: &str) -> String {
    let mut parts = version.split('.');
    let major = parts.next().unwrap_or("0");
    let minor = parts.next().unwrap_or("0");
    if major == "0" {
        format!("QAPI_CODEGEN_0_{minor}")
    } else {
        format!("QAPI_CODEGEN_{major}")
    }
}

/// Prefixes the first line of `lines` with `label`, or puts the label on its own line
/// when the text starts with a list or a fence.
fn labelled(label: &str, mut lines: Vec<String>) -> Vec<String> {
    match lines.first_mut() {
        Some(first)
            if !first.starts_with("```")
                && !first.starts_with("- ")
                && !first.starts_with("* ")
                && !first.is_empty() =>
        {
            *first = format!("{label} {first}");
            lines
        }
        _ => {
            lines.insert(0, label.to_owned());
            lines
        }
    }
}

/// Appends a paragraph, separated by a blank line.
fn para(out: &mut Vec<String>, lines: impl IntoIterator<Item = String>) {
    let lines: Vec<String> = lines.into_iter().collect();
    if lines.is_empty() {
        return;
    }
    if !out.is_empty() {
        out.push(String::new());
    }
    out.extend(lines);
}

impl<'a> Lower<'a> {
    fn new(s: &'a Schema, cfg: &'a Config, range: Range<'a>) -> Self {
        let n = n_entities(s);
        let mut l = Lower {
            s,
            cfg,
            kept: vec![false; n],
            idents: vec![None; n],
            branch_idents: vec![None; n],
            graph: Graph::new(s),
            root_scope: None,
            range,
            links: Links::default(),
        };
        l.keep();
        l.name_types();
        let c = &l.cfg;
        l.links = Links::new(
            s,
            &l.idents,
            &l.branch_idents,
            &c.commands_module,
            &c.events_module,
        );
        l
    }

    /// `text` as Markdown, its cross references linked from `here`.
    fn md(&self, text: &str, here: Here) -> Vec<String> {
        to_markdown(text, &|r| self.links.resolve(self.s, here, r))
    }

    fn ent(&self, id: TypeId) -> &'a Entity {
        self.s.entity(id)
    }

    fn doc(&self, id: TypeId) -> Option<&'a Doc> {
        self.ent(id).doc.map(|d| self.s.doc(d))
    }

    /// Marks the entities passing the filter, and everything they reference.
    fn keep(&mut self) {
        let mut stack: Vec<TypeId> = Vec::new();
        for id in self.s.ids() {
            let e = self.ent(id);
            let root = match &e.kind {
                EntityKind::Include | EntityKind::Builtin(_) | EntityKind::Array(_) => false,
                _ if e.implicit => false,
                _ => self.cfg.filter.as_ref().is_none_or(|f| f(&e.name)),
            };
            if root {
                stack.push(id);
            }
        }
        while let Some(id) = stack.pop() {
            let i = id.0 as usize;
            if i >= self.kept.len() || self.kept[i] {
                continue;
            }
            self.kept[i] = true;
            stack.extend(self.graph.refs(id, true));
        }
    }

    fn generated(&self, id: TypeId) -> bool {
        let e = self.ent(id);
        match &e.kind {
            EntityKind::Enum(_) => true,
            EntityKind::Object(_) => !e.implicit,
            EntityKind::Alternate(_) => true,
            _ => false,
        }
    }

    fn name_types(&mut self) {
        let mut root = Scope::new();
        for id in self.s.ids() {
            if self.kept[id.0 as usize] && self.generated(id) {
                self.idents[id.0 as usize] = Some(root.claim(type_ident(&self.ent(id).name)));
            }
        }
        for id in self.s.ids() {
            let i = id.0 as usize;
            if let (Some(ident), EntityKind::Object(o)) = (&self.idents[i], &self.ent(id).kind) {
                if o.variants.is_some() {
                    self.branch_idents[i] = Some(root.claim(format!("{ident}Branch")));
                }
            }
        }
        self.root_scope = Some(root);
        // Commands and events each in their module's scope, in schema order.
        for command in [true, false] {
            let ids: Vec<TypeId> = (self.s.ids())
                .filter(|&id| self.kept[id.0 as usize])
                .filter(|&id| match self.ent(id).kind {
                    EntityKind::Command(_) => command,
                    EntityKind::Event(_) => !command,
                    _ => false,
                })
                .collect();
            let (idents, _) =
                claim_all(ids.iter().map(|&id| self.ent(id).name.as_str()), type_ident);
            for (id, ident) in ids.into_iter().zip(idents) {
                self.idents[id.0 as usize] = Some(ident);
            }
        }
    }

    fn ty(&self, id: TypeId, sub: bool) -> TypeRef {
        let e = self.ent(id);
        match &e.kind {
            EntityKind::Builtin(b) => TypeRef::Prim(prim(*b)),
            EntityKind::Array(a) => TypeRef::List(Box::new(self.ty(a.element, sub))),
            _ => match &self.idents[id.0 as usize] {
                Some(ident) => {
                    let mut path = Vec::new();
                    if sub {
                        path.push("super".to_owned());
                    }
                    path.push(ident.clone());
                    TypeRef::Named(path)
                }
                None => TypeRef::Prim(Prim::Value),
            },
        }
    }

    /// Whether a reference to `id` (through arrays) uses a deprecated type.
    fn uses_deprecated(&self, id: TypeId) -> bool {
        let e = self.ent(id);
        match &e.kind {
            EntityKind::Array(a) => self.uses_deprecated(a.element),
            _ => is_deprecated(&e.features),
        }
    }

    fn deprecation(&self, owner: TypeId, features: &[Feature]) -> Option<String> {
        if !is_deprecated(features) {
            return None;
        }
        Some(
            self.s
                .feature_doc(owner, "deprecated")
                .map(|d| to_note(&d.text))
                .filter(|t| !t.is_empty())
                .unwrap_or_else(|| "deprecated by QEMU".to_owned()),
        )
    }

    /// The docs of an entity: body, availability, features, then the sections.
    fn entity_docs(&self, id: TypeId, fallback: String) -> Vec<String> {
        let e = self.ent(id);
        let here = self.links.here(id);
        let mut out = Vec::new();
        let doc = self.doc(id);
        if let Some(d) = doc {
            para(&mut out, self.md(&d.body.text, here));
        }
        if out.is_empty() {
            out.push(fallback);
        }
        if let Some(a) = availability(&e.ifcond) {
            para(&mut out, [a]);
        }
        if is_unstable(&e.features)
            && doc.is_none_or(|d| {
                !d.features
                    .iter()
                    .any(|f| f.name.as_deref() == Some("unstable"))
            })
        {
            para(
                &mut out,
                ["**Unstable:** this interface is experimental.".to_owned()],
            );
        }
        let Some(d) = doc else { return out };
        for f in &d.features {
            let name = f.name.as_deref().unwrap_or_default();
            if name == "deprecated" && is_deprecated(&e.features) {
                continue;
            }
            let label = match name {
                "unstable" => "**Unstable:**".to_owned(),
                "deprecated" => "**Deprecated:**".to_owned(),
                _ => format!("**Feature `{name}`:**"),
            };
            para(&mut out, labelled(&label, self.md(&f.text, here)));
        }
        for sec in &d.sections {
            let md = self.md(&sec.text, here);
            match sec.kind {
                SectionKind::Plain => para(&mut out, md),
                SectionKind::Returns => para(&mut out, labelled("**Returns:**", md)),
                SectionKind::Errors => para(&mut out, labelled("**Errors:**", md)),
                SectionKind::Since => para(&mut out, labelled("*Since:*", md)),
                SectionKind::Note => para(&mut out, labelled("**Note:**", md)),
                SectionKind::Example => {
                    let mut lines =
                        vec!["Example:".to_owned(), String::new(), "```text".to_owned()];
                    lines.extend(sec.text.lines().map(|l| l.trim_end().to_owned()));
                    lines.push("```".to_owned());
                    para(&mut out, lines);
                }
                SectionKind::Todo | SectionKind::Member | SectionKind::Feature => {}
            }
        }
        out
    }

    /// A member's docs; `here` is the item it is a member of.
    fn member_docs(
        &self,
        (owner, name): (TypeId, &str),
        here: Here,
        ifcond: &Option<IfCond>,
        features: &[Feature],
        fallback: String,
    ) -> Vec<String> {
        let mut out = self
            .s
            .member_doc(owner, name)
            .map(|d| self.md(&d.text, here))
            .unwrap_or_default();
        if out.is_empty() || out.iter().all(|l| l.trim().is_empty()) {
            out = vec![fallback];
        }
        if let Some(a) = availability(ifcond) {
            para(&mut out, [a]);
        }
        if is_unstable(features) {
            para(
                &mut out,
                ["**Unstable:** this member is experimental.".to_owned()],
            );
        }
        out
    }

    /// Members of an object type with their declaring type, base members first.
    fn members_with_owner(&self, id: TypeId) -> Vec<(TypeId, &'a Member)> {
        crate::range::members_with_owner(self.s, id)
    }

    /// Member `m` of `owner` as field `ident` of `container`'s item, documented `here`.
    fn field(
        &self,
        (owner, container): (TypeId, TypeId),
        m: &Member,
        ident: String,
        here: Here,
    ) -> (Field, bool) {
        let mut ty = self.ty(m.ty, here.home != Home::Root);
        if self.graph.self_recursive(container, m.ty) {
            ty = TypeRef::Boxed(Box::new(ty));
        }
        let doc = self.s.member_doc(owner, &m.name);
        let note = doc.and_then(|d| member_note(&d.text));
        let range = self.range.member(owner, &m.name, !m.optional, note);
        if range.changed {
            ty = self.versioned(ty);
        }
        let deprecated = self.deprecation(owner, &m.features);
        let mut docs = self.member_docs(
            (owner, &m.name),
            here,
            &m.ifcond,
            &m.features,
            format!("Member `{}`.", m.name),
        );
        if !m.optional {
            let from = self.cfg.min_qemu.map(|v| v.to_string()).unwrap_or_default();
            if m.ifcond.is_some() {
                para(
                    &mut docs,
                    [
                        "Optional here: QEMU builds without that condition never send it."
                            .to_owned(),
                    ],
                );
            } else if range.optional {
                para(&mut docs, [match range.since {
                    Some(v) => format!("**Since QEMU {v}**; optional here: older releases of the supported range (QEMU {from} on) leave it out."),
                    None => format!("Optional here: some releases of the supported range (QEMU {from} on) leave it out."),
                }]);
            }
        }
        if range.changed {
            para(&mut docs, ["Its type changed within the supported QEMU range: a value of another release's shape decodes as `Versioned::Other`.".to_owned()]);
        }
        let uses_dep = self.uses_deprecated(m.ty);
        let nullable = match &self.ent(m.ty).kind {
            EntityKind::Builtin(b) => matches!(b, Builtin::Any | Builtin::Null),
            EntityKind::Alternate(a) => a
                .variants
                .iter()
                .any(|v| matches!(self.ent(v.ty).kind, EntityKind::Builtin(Builtin::Null))),
            _ => false,
        };
        (
            Field {
                ident,
                wire: m.name.clone(),
                ty,
                optional: m.optional || m.ifcond.is_some() || range.optional,
                nullable,
                docs,
                deprecated,
            },
            uses_dep,
        )
    }

    /// `Versioned<T>`: a value that may come in another release's shape.
    fn versioned(&self, inner: TypeRef) -> TypeRef {
        let mut path: Vec<String> = self.cfg.crate_path.split("::").map(str::to_owned).collect();
        path.push("Versioned".to_owned());
        TypeRef::Versioned(path, Box::new(inner))
    }

    /// The fields of object type `id`, documented `here`.
    fn fields(&self, id: TypeId, here: Here) -> (Vec<Field>, bool) {
        let mut uses_dep = false;
        let fields = self
            .members_with_owner(id)
            .into_iter()
            .zip(field_idents(self.s, id))
            .map(|((owner, m), ident)| {
                let (f, d) = self.field((owner, id), m, ident, here);
                uses_dep |= d || f.deprecated.is_some();
                f
            })
            .collect();
        (fields, uses_dep)
    }

    fn derives(&self, eq: bool, default: bool) -> Derives {
        Derives {
            eq,
            hash: false,
            default,
            copy: false,
            extra: self.cfg.derives.clone(),
        }
    }

    fn meta(&self, id: TypeId, ident: String, fallback: String, uses_dep: bool) -> Meta {
        let e = self.ent(id);
        let deprecated = self.deprecation(id, &e.features);
        Meta {
            ident,
            docs: self.entity_docs(id, fallback),
            allow_deprecated: uses_dep || deprecated.is_some(),
            deprecated,
        }
    }

    fn type_item(&mut self, id: TypeId) -> Option<Item> {
        if !self.generated(id) {
            return None;
        }
        let ident = self.idents[id.0 as usize].clone()?;
        let e = self.ent(id);
        let here = self.links.here(id);
        let eq = self.graph.eq(id);
        match &e.kind {
            EntityKind::Enum(en) => {
                let (idents, mut scope) =
                    claim_all(en.members.iter().map(|m| m.name.as_str()), type_ident);
                let mut uses_dep = false;
                let variants: Vec<EnumVariant> = en
                    .members
                    .iter()
                    .zip(idents)
                    .map(|(m, ident)| {
                        let deprecated = self.deprecation(id, &m.features);
                        uses_dep |= deprecated.is_some();
                        EnumVariant {
                            ident,
                            wire: m.name.clone(),
                            docs: self.member_docs(
                                (id, &m.name),
                                here,
                                &m.ifcond,
                                &m.features,
                                format!("Value `{}`.", m.name),
                            ),
                            deprecated,
                        }
                    })
                    .collect();
                let unknown = scope.claim("Unrecognized".to_owned());
                let mut derives = self.derives(true, false);
                derives.hash = true;
                Some(Item::Enum(Enum {
                    meta: self.meta(id, ident, format!("QAPI enum `{}`.", e.name), uses_dep),
                    derives,
                    variants,
                    unknown,
                }))
            }
            EntityKind::Object(o) => match &o.variants {
                None => {
                    let (fields, uses_dep) = self.fields(id, here);
                    let default = fields.iter().all(|f| f.optional);
                    Some(Item::Struct(Struct {
                        meta: self.meta(id, ident, format!("QAPI struct `{}`.", e.name), uses_dep),
                        derives: self.derives(eq, default),
                        shape: StructShape::Fields(fields),
                        command: None,
                        event: None,
                        constructor: None,
                    }))
                }
                Some(vs) => {
                    let mut uses_dep = false;
                    let mut fields = Vec::new();
                    let members = self.members_with_owner(id);
                    for ((owner, m), ident) in members.into_iter().zip(field_idents(self.s, id)) {
                        if m.name == vs.tag_member {
                            fields.push(UnionField::Tag {
                                ident,
                                wire: m.name.clone(),
                                docs: self.member_docs(
                                    (owner, &m.name),
                                    here,
                                    &m.ifcond,
                                    &m.features,
                                    format!(
                                        "Discriminator `{}` and the branch it selects.",
                                        m.name
                                    ),
                                ),
                            });
                        } else {
                            let (f, d) = self.field((owner, id), m, ident, here);
                            uses_dep |= d || f.deprecated.is_some();
                            fields.push(UnionField::Base(f));
                        }
                    }
                    let (vidents, mut vscope) =
                        claim_all(vs.variants.iter().map(|v| v.name.as_str()), type_ident);
                    let variants: Vec<BranchVariant> = vs
                        .variants
                        .iter()
                        .zip(vidents)
                        .map(|(v, vident)| {
                            let empty = v.implicit || self.ent(v.ty).name == "q_empty";
                            let ty = (!empty).then(|| {
                                uses_dep |= self.uses_deprecated(v.ty);
                                let t = self.ty(v.ty, false);
                                if self.graph.self_recursive(id, v.ty) {
                                    TypeRef::Boxed(Box::new(t))
                                } else {
                                    t
                                }
                            });
                            let mut docs = match self.s.member_doc(id, &v.name) {
                                Some(d) => self.md(&d.text, here),
                                None => Vec::new(),
                            };
                            if docs.is_empty() {
                                docs.push(if empty {
                                    format!("Branch `{}` (no further members).", v.name)
                                } else {
                                    format!("Branch `{}`.", v.name)
                                });
                            }
                            if let Some(a) = availability(&v.ifcond) {
                                para(&mut docs, [a]);
                            }
                            BranchVariant {
                                ident: vident,
                                wire: v.name.clone(),
                                ty,
                                docs,
                            }
                        })
                        .collect();
                    let unknown = vscope.claim("Unrecognized".to_owned());
                    let bident = self.branch_idents[id.0 as usize]
                        .clone()
                        .unwrap_or_default();
                    let branches = BranchEnum {
                        meta: Meta {
                            docs: vec![format!(
                                "The branches of [`{ident}`], selected by its `{}` member.",
                                vs.tag_member
                            )],
                            ident: bident,
                            deprecated: None,
                            allow_deprecated: uses_dep,
                        },
                        variants,
                        unknown,
                    };
                    Some(Item::Union(Union {
                        meta: self.meta(id, ident, format!("QAPI union `{}`.", e.name), uses_dep),
                        derives: self.derives(eq, false),
                        fields,
                        branches,
                        constructor: None,
                    }))
                }
            },
            EntityKind::Alternate(a) => {
                let (idents, _) = claim_all(a.variants.iter().map(|v| v.name.as_str()), type_ident);
                let mut uses_dep = false;
                let variants = a
                    .variants
                    .iter()
                    .zip(idents)
                    .map(|(v, ident)| {
                        uses_dep |= self.uses_deprecated(v.ty);
                        let t = self.ty(v.ty, false);
                        let kind = match &self.ent(v.ty).kind {
                            EntityKind::Builtin(b) => match b {
                                Builtin::Str => AltKind::Str,
                                Builtin::Number => AltKind::Number,
                                Builtin::Bool => AltKind::Bool,
                                Builtin::Null => AltKind::Null,
                                Builtin::Any => AltKind::Object(t),
                                other => AltKind::Int(prim(*other)),
                            },
                            EntityKind::Enum(_) => AltKind::Enum(t),
                            EntityKind::Array(_) => AltKind::Array(t),
                            _ => AltKind::Object(if self.graph.self_recursive(id, v.ty) {
                                TypeRef::Boxed(Box::new(t))
                            } else {
                                t
                            }),
                        };
                        let mut docs = match self.s.member_doc(id, &v.name) {
                            Some(d) => self.md(&d.text, here),
                            None => Vec::new(),
                        };
                        if docs.is_empty() {
                            docs.push(format!("Alternative `{}`.", v.name));
                        }
                        if let Some(a) = availability(&v.ifcond) {
                            para(&mut docs, [a]);
                        }
                        AltVariant { ident, docs, kind }
                    })
                    .collect();
                Some(Item::Alternate(Alternate {
                    expecting: format!("alternate {ident}"),
                    meta: self.meta(id, ident, format!("QAPI alternate `{}`.", e.name), uses_dep),
                    derives: self.derives(eq, false),
                    variants,
                }))
            }
            _ => None,
        }
    }

    /// A command or event type: fields inline, a newtype when boxed, unit without data.
    fn data_struct(
        &mut self,
        id: TypeId,
        ident: String,
        arg: Option<TypeId>,
        boxed: bool,
        fallback: String,
    ) -> (Struct, bool) {
        let (shape, uses_dep, eq, default) = match arg {
            None => (StructShape::Unit, false, true, true),
            Some(a) if boxed || !matches!(self.ent(a).kind, EntityKind::Object(_)) => (
                StructShape::Newtype(self.ty(a, true)),
                self.uses_deprecated(a),
                self.graph.eq(a),
                false,
            ),
            Some(a) => {
                let (fields, d) = self.fields(a, self.links.here(id));
                let default = fields.iter().all(|f| f.optional);
                let eq = self.graph.eq(a);
                (StructShape::Fields(fields), d, eq, default)
            }
        };
        let mut derives = self.derives(eq, default);
        derives.copy = shape == StructShape::Unit;
        let meta = self.meta(id, ident, fallback, uses_dep);
        (
            Struct {
                meta,
                derives,
                shape,
                command: None,
                event: None,
                constructor: None,
            },
            uses_dep,
        )
    }

    fn file(mut self, label: &str) -> File {
        let mut types = Vec::new();
        for id in self.s.ids() {
            if self.kept[id.0 as usize] {
                if let Some(item) = self.type_item(id) {
                    types.push(item);
                }
            }
        }
        let mut root = self.root_scope.take().unwrap_or_default();
        let any_command_ident = root.claim("AnyCommand".to_owned());
        let any_return_ident = root.claim("AnyReturn".to_owned());
        let event_ident = root.claim("Event".to_owned());
        let cmod = self.cfg.commands_module.clone();
        let emod = self.cfg.events_module.clone();

        let mut commands = Vec::new();
        let mut cmd_variants = Vec::new();
        let mut ret_variants = Vec::new();
        let mut events = Vec::new();
        let mut ev_variants = Vec::new();
        for id in self.s.ids() {
            if !self.kept[id.0 as usize] {
                continue;
            }
            let e = self.ent(id);
            let ident = self.idents[id.0 as usize].clone().unwrap_or_default();
            match &e.kind {
                EntityKind::Command(c) => {
                    let (mut st, _) = self.data_struct(
                        id,
                        ident.clone(),
                        c.arg_type,
                        c.flags.boxed,
                        format!("Command `{}`.", e.name),
                    );
                    let changed = self.range.return_changed(id);
                    let returns = c.ret_type.map(|r| {
                        let t = self.ty(r, true);
                        if changed {
                            self.versioned(t)
                        } else {
                            t
                        }
                    });
                    if c.ret_type.is_some_and(|r| self.uses_deprecated(r)) {
                        st.meta.allow_deprecated = true;
                    }
                    st.command = Some(CommandImpl {
                        name: e.name.clone(),
                        has_arguments: st.shape != StructShape::Unit,
                        allow_oob: c.flags.allow_oob,
                        success_response: c.flags.success_response,
                        returns,
                    });
                    let deprecated = st.meta.deprecated.is_some() || st.meta.allow_deprecated;
                    let v = DynVariant {
                        ident: ident.clone(),
                        wire: e.name.clone(),
                        path: vec![cmod.clone(), ident],
                        has_data: st.shape != StructShape::Unit,
                        returns: c.ret_type.map(|r| {
                            let t = self.ty(r, false);
                            if changed {
                                self.versioned(t)
                            } else {
                                t
                            }
                        }),
                        docs: Vec::new(),
                        deprecated,
                    };
                    ret_variants.push(DynVariant {
                        docs: vec![match v.returns {
                            Some(_) => format!("The return of `{}`.", e.name),
                            None => format!("The empty return (`{{}}`) of `{}`.", e.name),
                        }],
                        ..v.clone()
                    });
                    cmd_variants.push(DynVariant {
                        docs: vec![format!("Command `{}`.", e.name)],
                        ..v
                    });
                    commands.push(Item::Struct(st));
                }
                EntityKind::Event(ev) => {
                    let (mut st, _) = self.data_struct(
                        id,
                        ident.clone(),
                        ev.arg_type,
                        ev.boxed,
                        format!("Event `{}`.", e.name),
                    );
                    st.event = Some(EventImpl {
                        name: e.name.clone(),
                        has_data: st.shape != StructShape::Unit,
                    });
                    ev_variants.push(DynVariant {
                        ident: ident.clone(),
                        wire: e.name.clone(),
                        path: vec![emod.clone(), ident],
                        has_data: st.shape != StructShape::Unit,
                        returns: None,
                        docs: vec![format!("Event `{}` and its timestamp.", e.name)],
                        deprecated: st.meta.deprecated.is_some() || st.meta.allow_deprecated,
                    });
                    events.push(Item::Struct(st));
                }
                _ => {}
            }
        }
        let any_dep = |v: &[DynVariant]| v.iter().any(|v| v.deprecated);
        let mut header = vec![format!(
            "@generated by qapi-codegen {} from {}{}; do not edit",
            env!("CARGO_PKG_VERSION"),
            label,
            self.cfg
                .provenance
                .as_ref()
                .map(|p| format!(" ({p})"))
                .unwrap_or_default()
        )];
        header.push("Regenerate it by building; see the qapi-codegen crate.".to_owned());
        File {
            header,
            krate: self.cfg.crate_path.split("::").map(str::to_owned).collect(),
            version_check: version_check(env!("CARGO_PKG_VERSION")),
            types,
            commands: Module {
                ident: cmod,
                docs: vec![
                    "One type per command, implementing the `Command` trait: its fields are the command's arguments.".to_owned(),
                ],
                items: commands,
            },
            events: Module {
                ident: emod,
                docs: vec![format!(
                    "One type per event, holding its data; received events decode into [`{event_ident}`]."
                )],
                items: events,
            },
            any_command: AnyCommand {
                meta: Meta {
                    ident: any_command_ident,
                    docs: vec![
                        "Any command of the schema, as the wire request `{\"execute\": NAME, \"arguments\": {...}}`, written as the transport sends it: `execute` first, `arguments` left out when empty.".to_owned(),
                        String::new(),
                        "Decoding accepts `exec-oob` for `execute` and ignores the request's `id` and other members.".to_owned(),
                        String::new(),
                        "For proxies, loggers and mock servers; unknown commands decode into the catch-all variant.".to_owned(),
                    ],
                    deprecated: None,
                    allow_deprecated: any_dep(&cmd_variants),
                },
                variants: cmd_variants,
                unknown: "Unrecognized".to_owned(),
            },
            any_return: AnyReturn {
                meta: Meta {
                    ident: any_return_ident,
                    docs: vec![
                        "The typed `return` value of any command; serializes back to the same JSON.".to_owned(),
                    ],
                    deprecated: None,
                    allow_deprecated: any_dep(&ret_variants),
                },
                variants: ret_variants,
                unknown: "Unrecognized".to_owned(),
            },
            event_enum: EventEnum {
                meta: Meta {
                    ident: event_ident,
                    docs: vec![
                        "Any event of the schema with its timestamp; (de)serializes as the wire event `{\"event\": NAME, \"data\": {...}, \"timestamp\": {...}}`.".to_owned(),
                        String::new(),
                        "Events this schema does not know decode into the catch-all variant, keeping their name and data.".to_owned(),
                    ],
                    deprecated: None,
                    allow_deprecated: any_dep(&ev_variants),
                },
                variants: ev_variants,
                unknown: "Unrecognized".to_owned(),
            },
        }
    }
}

mod constructors;
mod doc_attributes;
mod graph;
mod links;
