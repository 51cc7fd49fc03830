//! Conversion of the builder's working model into the public [`Schema`] model.

use super::docs::DocState;
use super::*;

impl Builder<'_> {
    pub(super) fn finish(self, raw_docs: Vec<ParsedDoc>) -> Schema {
        let infos = self.infos;
        let location = |i: Option<InfoId>| i.map(|i| infos.location(i));
        let features = |fs: Vec<Feature>| -> Vec<model::Feature> {
            fs.into_iter()
                .map(|f| model::Feature {
                    name: f.name,
                    ifcond: f.ifcond,
                })
                .collect()
        };
        let variant = |v: Branch| model::Variant {
            name: v.name,
            ty: model::TypeId(v.ty),
            ifcond: v.ifcond,
            implicit: v.implicit,
        };
        // Arrays report their element's condition.
        let elem_ifconds: Vec<Option<IfCond>> = self
            .entities
            .iter()
            .map(|e| match e.kind {
                Kind::Array { elem, .. } if elem != UNRESOLVED => {
                    self.entities[elem as usize].ifcond.clone()
                }
                _ => None,
            })
            .collect();
        let mut by_name: Vec<model::TypeId> =
            self.by_name.ids.into_iter().map(model::TypeId).collect();
        let mut entities = Vec::with_capacity(self.entities.len());
        for (i, e) in self.entities.into_iter().enumerate() {
            let implicit = e.info.is_none()
                || e.name.starts_with("q_")
                || matches!(e.kind, Kind::Array { .. });
            let mut ifcond = e.ifcond;
            let kind = match e.kind {
                Kind::Builtin(b) => model::EntityKind::Builtin(b),
                Kind::Enum { values, prefix } => model::EntityKind::Enum(model::EnumType {
                    members: values
                        .into_iter()
                        .map(|v| model::EnumMember {
                            name: v.name,
                            ifcond: v.ifcond,
                            features: features(v.features),
                        })
                        .collect(),
                    prefix,
                }),
                Kind::Object(o) => model::EntityKind::Object(model::ObjectType {
                    base: o.base.map(model::TypeId),
                    local_members: o
                        .local
                        .into_iter()
                        .map(|m| model::Member {
                            name: m.name,
                            ty: model::TypeId(m.ty),
                            optional: m.optional,
                            ifcond: m.ifcond,
                            features: features(m.features),
                        })
                        .collect(),
                    variants: o.branches.map(|b| model::Variants {
                        tag_member: b.tag_name,
                        variants: b.variants.into_iter().map(variant).collect(),
                    }),
                }),
                Kind::Alternate { variants } => {
                    model::EntityKind::Alternate(model::AlternateType {
                        variants: variants.into_iter().map(variant).collect(),
                    })
                }
                Kind::Array { elem, .. } => {
                    ifcond = elem_ifconds[i].clone();
                    model::EntityKind::Array(model::ArrayType {
                        element: model::TypeId(elem),
                    })
                }
                Kind::Command {
                    arg, ret, flags, ..
                } => model::EntityKind::Command(model::Command {
                    arg_type: arg.map(model::TypeId),
                    ret_type: ret.map(model::TypeId),
                    flags,
                }),
                Kind::Event { arg, boxed, .. } => model::EntityKind::Event(model::Event {
                    arg_type: arg.map(model::TypeId),
                    boxed,
                }),
                Kind::Include => model::EntityKind::Include,
            };
            entities.push(model::Entity {
                name: e.name,
                location: location(e.info),
                module: model::ModuleId(e.module),
                ifcond,
                features: features(e.features),
                doc: e.model_doc.map(|d| model::DocId(d as u32)),
                implicit,
                kind,
            });
        }
        let docs = raw_docs
            .into_iter()
            .zip(self.docs)
            .map(|(raw, st)| convert_doc(infos, raw, st))
            .collect();
        // Names are unique: the order is total, so an unstable sort is deterministic.
        by_name.sort_unstable_by(|a, b| {
            entities[a.0 as usize]
                .name
                .cmp(&entities[b.0 as usize].name)
        });
        Schema {
            entities,
            modules: self
                .modules
                .into_iter()
                .map(|name| model::Module { name })
                .collect(),
            docs,
            pragma: Default::default(),
            files: Vec::new(),
            warnings: self.warnings,
            by_name,
        }
    }
}

/// The public doc block: raw sections in text order, descriptions named again, and
/// the stubs for excepted members after the written descriptions.
fn convert_doc(infos: &Infos, raw: ParsedDoc, st: DocState) -> model::Doc {
    let line = |i: InfoId| infos.get(i).line;
    let mut args = Vec::with_capacity(st.args.len());
    let mut features = Vec::with_capacity(st.features.len());
    // Everything but the body and the descriptions: sized once.
    let mut sections = Vec::with_capacity(
        raw.sections
            .len()
            .saturating_sub(1 + st.args.len() + st.features.len()),
    );
    let mut body = None;
    let mut arg_names = st.args.into_iter();
    let mut feature_names = st.features.into_iter();
    for s in raw.sections {
        let (target, name) = match s.kind {
            SectionKind::Member => (&mut args, arg_names.next().map(|a| a.name)),
            SectionKind::Feature => (&mut features, feature_names.next().map(|a| a.name)),
            _ if body.is_none() => {
                body = Some(model::DocSection {
                    kind: s.kind,
                    name: None,
                    text: s.text,
                    line: line(s.info),
                });
                continue;
            }
            _ => (&mut sections, None),
        };
        target.push(model::DocSection {
            kind: s.kind,
            name,
            text: s.text,
            line: line(s.info),
        });
    }
    for stub in arg_names {
        args.push(model::DocSection {
            kind: SectionKind::Member,
            name: Some(stub.name),
            text: String::new(),
            line: line(stub.info),
        });
    }
    model::Doc {
        location: Some(infos.location(raw.info)),
        symbol: st.symbol,
        body: body.unwrap_or_default(),
        args,
        features,
        sections,
    }
}
