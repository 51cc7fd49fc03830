//! QEMU 5.2's simple unions, desugared as 5.2's `schema.py` did (`_def_union_type` without a
//! discriminator, `_make_simple_variant`, `_make_implicit_enum_type`).

use super::{
    Branch, Branches, Builder, Entity, EnumValue, Kind, Member, Object, Res, State, UNRESOLVED,
};
use crate::ast::{InfoId, Text};
use crate::expr::BranchDef;
use crate::model::{EntityKind, IfCond, Schema};

impl Builder<'_> {
    /// A simple union `name`: each branch `case: T` becomes an implicit
    /// `q_obj_T-wrapper` struct with one member `data: T` (`T` may be an array), the tag is
    /// a local member `type` of the implicit enum `<name>Kind` whose values are the branch
    /// names, with the branches' conditions.
    pub(super) fn simple_union(
        &mut self,
        name: &str,
        branches: Vec<BranchDef>,
        info: InfoId,
        ifcond: &Option<IfCond>,
    ) -> Res<Kind> {
        let mut variants = Vec::with_capacity(branches.len());
        let mut values = Vec::with_capacity(branches.len());
        for b in branches {
            let wrapped = self.type_ref(b.ty, info)?;
            let data = Member {
                cname: self.cname("data"),
                name: "data".to_string(),
                type_name: wrapped.clone(),
                ty: UNRESOLVED,
                optional: false,
                ifcond: None,
                features: Vec::new(),
            };
            // The wrapper's condition is the wrapped type's, set once every type exists
            // (see `wrapper_ifconds`).
            let wrapper = self
                .make_implicit_object(&wrapped, "wrapper", info, &None, vec![data], None)?
                .unwrap_or_default();
            variants.push(Branch {
                cname: self.cname(&b.name),
                name: b.name.clone(),
                type_name: Text::Owned(wrapper),
                ty: UNRESOLVED,
                ifcond: b.ifcond.clone(),
                implicit: false,
                defined_in: UNRESOLVED,
            });
            values.push(EnumValue {
                cname: self.cname(&b.name),
                name: b.name,
                ifcond: b.ifcond,
                features: Vec::new(),
            });
        }
        let kind = format!("{name}Kind");
        let mut ent: Entity = Self::simple(
            kind.clone(),
            Some(info),
            Kind::Enum {
                values,
                prefix: None,
            },
        );
        ent.ifcond = ifcond.clone();
        self.def_definition(ent)?;
        let tag = Member {
            cname: self.cname("type"),
            name: "type".to_string(),
            type_name: Text::Owned(kind),
            ty: UNRESOLVED,
            optional: false,
            ifcond: None,
            features: Vec::new(),
        };
        Ok(Kind::Object(Object {
            base_name: None,
            base: None,
            local: vec![tag],
            branches: Some(Branches {
                tag_name: "type".to_string(),
                tag: None,
                variants,
            }),
            members: Vec::new(),
            state: State::Unchecked,
        }))
    }
}

/// 5.2 gave each `q_obj_T-wrapper` the condition of `T` (an array's is its element's).
pub(super) fn wrapper_ifconds(schema: &mut Schema) {
    for i in 0..schema.entities.len() {
        let e = &schema.entities[i];
        if !(e.implicit && e.name.starts_with("q_obj_") && e.name.ends_with("-wrapper")) {
            continue;
        }
        let EntityKind::Object(o) = &e.kind else {
            continue;
        };
        let Some(data) = o.local_members.first() else {
            continue;
        };
        let ifcond = schema.entity(data.ty).ifcond.clone();
        schema.entities[i].ifcond = ifcond;
    }
}
