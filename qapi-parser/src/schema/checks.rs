//! The semantic checks (QEMU's `check()` methods): name resolution, clashes of C names,
//! bases, union branches, alternates, command and event arguments; doc connection runs
//! entity by entity beside them, in QEMU's order.

use super::docs::{connect_doc, DocCtx};
use super::*;

impl Builder<'_> {
    pub(super) fn err(&self, info: Option<InfoId>, msg: impl Into<String>) -> Box<Error> {
        Box::new(self.infos.error(info.unwrap_or(InfoId(0)), msg))
    }

    pub(super) fn object(&self, id: u32) -> Option<&Object> {
        match &self.entities[id as usize].kind {
            Kind::Object(o) => Some(o),
            _ => None,
        }
    }

    pub(super) fn object_mut(&mut self, id: u32) -> &mut Object {
        match &mut self.entities[id as usize].kind {
            Kind::Object(o) => o,
            _ => unreachable!("caller checked the entity is an object"),
        }
    }

    pub(super) fn member(&self, r: MemberRef) -> &Member {
        &self.object(r.ent).expect("members live in objects").local[r.idx as usize]
    }

    pub(super) fn branch(&self, ent: u32, idx: u32) -> &Branch {
        match &self.entities[ent as usize].kind {
            Kind::Alternate { variants } => &variants[idx as usize],
            Kind::Object(Object {
                branches: Some(b), ..
            }) => &b.variants[idx as usize],
            _ => unreachable!("variants live in unions and alternates"),
        }
    }

    /// QEMU's `QAPISchemaMember.describe(info)`.
    pub(super) fn describe(&self, d: SchemaMember, info: Option<InfoId>) -> String {
        let (mut role, name, defined_in): (String, &str, &str) = match d {
            SchemaMember::Member(r) => (
                "member".into(),
                &self.member(r).name,
                &self.entities[r.ent as usize].name,
            ),
            SchemaMember::Branch { ent, idx } => {
                let v = self.branch(ent, idx);
                (
                    "branch".into(),
                    &v.name,
                    &self.entities[v.defined_in as usize].name,
                )
            }
            SchemaMember::Value { ent, idx } => {
                let e = &self.entities[ent as usize];
                let Kind::Enum { values, .. } = &e.kind else {
                    unreachable!("values live in enums")
                };
                ("value".into(), &values[idx as usize].name, &e.name)
            }
            SchemaMember::DefFeature { ent, idx } => {
                let e = &self.entities[ent as usize];
                ("feature".into(), &e.features[idx as usize].name, &e.name)
            }
            SchemaMember::MemberFeature { m, idx } => {
                let mem = self.member(m);
                (
                    "feature".into(),
                    &mem.features[idx as usize].name,
                    &mem.name,
                )
            }
        };
        let mut meta = "type";
        let mut defined_in = defined_in;
        if let Some(rest) = defined_in.strip_prefix("q_obj_") {
            if let Some(r) = rest.strip_suffix("-arg") {
                role = "parameter".into();
                meta = "command";
                defined_in = r;
            } else if let Some(r) = rest.strip_suffix("-base") {
                role = format!("base {role}");
                defined_in = r;
            } else {
                defined_in = rest;
            }
        }
        let defn_name = info
            .and_then(|i| self.infos.get(i).defn.as_ref())
            .map(|(_, n)| n.as_str());
        if Some(defined_in) != defn_name {
            format!("{role} '{name}' of {meta} '{defined_in}'")
        } else {
            format!("{role} '{name}'")
        }
    }

    pub(super) fn resolve(
        &self,
        name: &str,
        info: Option<InfoId>,
        what: impl FnOnce() -> String,
    ) -> Res<u32> {
        self.lookup_type(name)
            .ok_or_else(|| self.err(info, format!("{} uses unknown type '{name}'", what())))
    }

    pub(super) fn clash(
        &self,
        info: Option<InfoId>,
        seen: &mut HashMap<u32, SchemaMember>,
        cname: u32,
        d: SchemaMember,
    ) -> Res<()> {
        if let Some(prev) = seen.get(&cname) {
            return Err(self.err(
                info,
                format!(
                    "{} collides with {}",
                    self.describe(d, info),
                    self.describe(*prev, info)
                ),
            ));
        }
        seen.insert(cname, d);
        Ok(())
    }

    /// `QAPISchemaDefinition.check` (+ `QAPISchemaType.check` for types).
    pub(super) fn check_definition(&self, id: u32, is_type: bool) -> Res<()> {
        let e = &self.entities[id as usize];
        let mut seen = HashMap::default();
        for (i, f) in e.features.iter().enumerate() {
            self.clash(
                e.info,
                &mut seen,
                f.cname,
                SchemaMember::DefFeature {
                    ent: id,
                    idx: i as u32,
                },
            )?;
        }
        if is_type {
            if let Some(f) = e
                .features
                .iter()
                .find(|f| f.name == "deprecated" || f.name == "unstable")
            {
                return Err(self.err(
                    e.info,
                    format!("feature '{}' is not supported for types", f.name),
                ));
            }
        }
        Ok(())
    }

    pub(super) fn check_entity(&mut self, id: u32) -> Res<()> {
        match &self.entities[id as usize].kind {
            Kind::Builtin(_) | Kind::Include => Ok(()),
            Kind::Enum { .. } => self.check_enum(id),
            Kind::Object(_) => self.check_object(id),
            Kind::Alternate { .. } => self.check_alternate(id),
            Kind::Array { .. } => self.check_array(id),
            Kind::Command { .. } => self.check_command(id),
            Kind::Event { .. } => self.check_event(id),
        }
    }

    pub(super) fn check_enum(&mut self, id: u32) -> Res<()> {
        self.check_definition(id, true)?;
        let e = &self.entities[id as usize];
        let Kind::Enum { values, .. } = &e.kind else {
            return Ok(());
        };
        let mut seen = HashMap::with_capacity_and_hasher(values.len(), Default::default());
        for (i, v) in values.iter().enumerate() {
            self.clash(
                e.info,
                &mut seen,
                v.cname,
                SchemaMember::Value {
                    ent: id,
                    idx: i as u32,
                },
            )?;
        }
        Ok(())
    }

    pub(super) fn check_array(&mut self, id: u32) -> Res<()> {
        let e = &self.entities[id as usize];
        let Kind::Array { elem_name, .. } = &e.kind else {
            return Ok(());
        };
        let info = e.info;
        let meta = info
            .and_then(|i| self.infos.get(i).defn.as_ref())
            .map(|(m, _)| (*m).to_owned())
            .unwrap_or_default();
        let elem = self.resolve(elem_name, info, || meta.clone())?;
        if let Kind::Array { .. } = self.entities[elem as usize].kind {
            // QEMU fails an assertion here; report it properly instead.
            return Err(self.err(
                info,
                format!(
                    "{meta} uses array type '{}' as an array element; arrays of arrays are not supported",
                    self.entities[elem as usize].name
                ),
            ));
        }
        if let Kind::Array { elem: slot, .. } = &mut self.entities[id as usize].kind {
            *slot = elem;
        }
        Ok(())
    }

    pub(super) fn check_object(&mut self, id: u32) -> Res<()> {
        if self.depth >= MAX_TYPE_NESTING {
            return Err(self.too_deep(id));
        }
        self.depth += 1;
        let r = self.check_object_inner(id);
        self.depth -= 1;
        r
    }

    pub(super) fn too_deep(&self, id: u32) -> Box<Error> {
        let e = &self.entities[id as usize];
        self.err(
            e.info,
            format!(
                "base and branch types nest more than {MAX_TYPE_NESTING} deep at {}",
                self.describe_type(id)
            ),
        )
    }

    pub(super) fn check_object_inner(&mut self, id: u32) -> Res<()> {
        let info = self.entities[id as usize].info;
        match self.object(id).map(|o| o.state) {
            Some(State::Done) | None => return Ok(()),
            Some(State::Checking) => {
                return Err(self.err(
                    info,
                    format!("object {} contains itself", self.entities[id as usize].name),
                ))
            }
            Some(State::Unchecked) => {}
        }
        self.object_mut(id).state = State::Checking;
        self.check_definition(id, true)?;

        // One map for all objects (taken, so that a base checked from here gets its
        // own): no allocation and rehashing per object.
        let mut seen = std::mem::take(&mut self.obj_seen);
        seen.clear();
        let mut members: Vec<MemberRef> = Vec::new();
        if let Some(base_name) = self.object(id).and_then(|o| o.base_name.clone()) {
            let base = self.resolve(&base_name, info, || "'base'".to_string())?;
            let ok = matches!(self.object(base), Some(o) if o.branches.is_none());
            if !ok {
                return Err(self.err(
                    info,
                    format!(
                        "'base' requires a struct type, {} isn't",
                        self.describe_type(base)
                    ),
                ));
            }
            self.object_mut(id).base = Some(base);
            self.check_object(base)?;
            self.object_clash(base, info, &mut seen, 0)?;
            members.extend_from_slice(
                &self
                    .object(base)
                    .map(|o| o.members.clone())
                    .unwrap_or_default(),
            );
        }
        let n = self.object(id).map_or(0, |o| o.local.len());
        for i in 0..n {
            let r = MemberRef {
                ent: id,
                idx: i as u32,
            };
            let ty = {
                let m = self.member(r);
                self.resolve(&m.type_name, info, || {
                    self.describe(SchemaMember::Member(r), info)
                })?
            };
            self.object_mut(id).local[i].ty = ty;
            let m = self.member(r);
            let mut fseen = HashMap::default();
            for (fi, f) in m.features.iter().enumerate() {
                self.clash(
                    info,
                    &mut fseen,
                    f.cname,
                    SchemaMember::MemberFeature {
                        m: r,
                        idx: fi as u32,
                    },
                )?;
            }
            self.clash(info, &mut seen, m.cname, SchemaMember::Member(r))?;
            members.push(r);
        }
        self.object_mut(id).members = members;
        if self.object(id).is_some_and(|o| o.branches.is_some()) {
            self.check_branches(id, info, &seen)?;
            self.branches_clash(id, info, &seen, 0)?;
        }
        // Clearing costs the capacity: keep no huge map for the objects to come.
        if seen.capacity() <= 256 {
            self.obj_seen = seen;
        }
        self.object_mut(id).state = State::Done;
        Ok(())
    }

    /// QEMU's `QAPISchemaObjectType.check_clash`.
    pub(super) fn object_clash(
        &self,
        id: u32,
        info: Option<InfoId>,
        seen: &mut HashMap<u32, SchemaMember>,
        depth: u32,
    ) -> Res<()> {
        let Some(o) = self.object(id) else {
            return Ok(());
        };
        if depth >= MAX_TYPE_NESTING {
            return Err(self.err(
                info,
                format!(
                    "base and branch types nest more than {MAX_TYPE_NESTING} deep at {}",
                    self.describe_type(id)
                ),
            ));
        }
        for &r in &o.members {
            self.clash(info, seen, self.member(r).cname, SchemaMember::Member(r))?;
        }
        if o.branches.is_some() {
            self.branches_clash(id, info, seen, depth + 1)?;
        }
        Ok(())
    }

    pub(super) fn branches_clash(
        &self,
        id: u32,
        info: Option<InfoId>,
        seen: &HashMap<u32, SchemaMember>,
        depth: u32,
    ) -> Res<()> {
        let Some(Branches { variants, .. }) = self.object(id).and_then(|o| o.branches.as_ref())
        else {
            return Ok(());
        };
        for v in variants {
            let mut s = seen.clone();
            self.object_clash(v.ty, info, &mut s, depth)?;
        }
        Ok(())
    }

    /// QEMU's `QAPISchemaBranches.check`.
    pub(super) fn check_branches(
        &mut self,
        id: u32,
        info: Option<InfoId>,
        seen: &HashMap<u32, SchemaMember>,
    ) -> Res<()> {
        let Some(b) = self.object(id).and_then(|o| o.branches.as_ref()) else {
            return Ok(());
        };
        let tag_name = b.tag_name.as_str();
        let tag = match seen.get(
            &self
                .cnames
                .get(&expr::c_name(tag_name))
                .unwrap_or(UNRESOLVED),
        ) {
            Some(SchemaMember::Member(r)) if self.member(*r).name == tag_name => *r,
            _ => {
                return Err(self.err(
                    info,
                    format!("discriminator '{tag_name}' is not a member of 'base'"),
                ))
            }
        };
        let owner = &self.entities[tag.ent as usize].name;
        let base = if owner.starts_with("q_") {
            "'base'".to_string()
        } else {
            format!("base type '{owner}'")
        };
        let tm = self.member(tag);
        let enum_id = tm.ty;
        let Some(Kind::Enum { values, .. }) = self.entities.get(enum_id as usize).map(|e| &e.kind)
        else {
            return Err(self.err(
                info,
                format!("discriminator member '{tag_name}' of {base} must be of enum type"),
            ));
        };
        if tm.optional {
            return Err(self.err(
                info,
                format!("discriminator member '{tag_name}' of {base} must not be optional"),
            ));
        }
        if tm.ifcond.is_some() {
            return Err(self.err(
                info,
                format!("discriminator member '{tag_name}' of {base} must not be conditional"),
            ));
        }
        let explicit: HashSet<&str> = b.variants.iter().map(|v| v.name.as_str()).collect();
        let implicit: Vec<(String, Option<IfCond>)> = values
            .iter()
            .filter(|v| !explicit.contains(v.name.as_str()))
            .map(|v| (v.name.clone(), v.ifcond.clone()))
            .collect();
        let value_names: HashSet<&str> = values.iter().map(|v| v.name.as_str()).collect();
        let bad_branch = b
            .variants
            .iter()
            .map(|v| v.name.as_str())
            .find(|n| !value_names.contains(n))
            .map(str::to_string);
        let enum_desc = self.describe_type(enum_id);
        let q_empty = self.q_empty;
        let tag_owner = tag.ent;
        let mut new_vars = Vec::with_capacity(implicit.len());
        for (name, ifcond) in implicit {
            new_vars.push(Branch {
                cname: self.cname(&name),
                name,
                type_name: Text::Borrowed("q_empty"),
                ty: q_empty,
                ifcond,
                implicit: true,
                defined_in: tag_owner,
            });
        }
        {
            let b = self.object_mut(id).branches.as_mut().expect("union");
            b.tag = Some(tag);
            b.variants.extend(new_vars);
            if b.variants.is_empty() {
                return Err(self.err(info, "union has no branches"));
            }
        }
        let n = self
            .object(id)
            .and_then(|o| o.branches.as_ref())
            .map_or(0, |b| b.variants.len());
        for i in 0..n {
            let (ty, name) = {
                let v = self.branch(id, i as u32);
                let ty = self.resolve(&v.type_name, info, || {
                    self.describe(
                        SchemaMember::Branch {
                            ent: id,
                            idx: i as u32,
                        },
                        info,
                    )
                })?;
                (ty, v.name.clone())
            };
            self.object_mut(id)
                .branches
                .as_mut()
                .expect("union")
                .variants[i]
                .ty = ty;
            // The first branch whose name is no enum value is reported when reached.
            if bad_branch.as_deref() == Some(name.as_str()) {
                return Err(self.err(
                    info,
                    format!("branch '{name}' is not a value of {enum_desc}"),
                ));
            }
            if self.object(ty).is_none() {
                return Err(self.err(
                    info,
                    format!(
                        "{} cannot use {}",
                        self.describe(
                            SchemaMember::Branch {
                                ent: id,
                                idx: i as u32
                            },
                            info
                        ),
                        self.describe_type(ty)
                    ),
                ));
            }
            self.check_object(ty)?;
        }
        Ok(())
    }

    pub(super) fn check_alternate(&mut self, id: u32) -> Res<()> {
        self.check_definition(id, true)?;
        let info = self.entities[id as usize].info;
        // The implicit tag member 'type' of type 'QType'.
        self.resolve("QType", info, || "member 'type'".to_string())?;
        let n = match &self.entities[id as usize].kind {
            Kind::Alternate { variants } => variants.len(),
            _ => 0,
        };
        for i in 0..n {
            let ty = {
                let v = self.branch(id, i as u32);
                self.resolve(&v.type_name, info, || {
                    self.describe(
                        SchemaMember::Branch {
                            ent: id,
                            idx: i as u32,
                        },
                        info,
                    )
                })?
            };
            if let Kind::Alternate { variants } = &mut self.entities[id as usize].kind {
                variants[i].ty = ty;
            }
        }
        #[derive(Clone, Copy, PartialEq, Eq, Hash)]
        enum JsonType {
            Null,
            Str,
            Num,
            Bool,
            List,
            Dict,
        }
        let mut seen = HashMap::default();
        let mut types_seen: HashMap<JsonType, u32> = HashMap::default();
        for i in 0..n {
            let d = SchemaMember::Branch {
                ent: id,
                idx: i as u32,
            };
            let v = self.branch(id, i as u32);
            self.clash(info, &mut seen, v.cname, d)?;
            let t = &self.entities[v.ty as usize];
            let qtype = match &t.kind {
                Kind::Builtin(b) => match b.json_type() {
                    "string" => Some(JsonType::Str),
                    "number" | "int" => Some(JsonType::Num),
                    "boolean" => Some(JsonType::Bool),
                    "null" => Some(JsonType::Null),
                    _ => None,
                },
                Kind::Enum { .. } => Some(JsonType::Str),
                Kind::Array { .. } => Some(JsonType::List),
                Kind::Object(_) => Some(JsonType::Dict),
                _ => None,
            };
            let Some(qtype) = qtype else {
                return Err(self.err(
                    info,
                    format!(
                        "{} cannot use {}",
                        self.describe(d, info),
                        self.describe_type(v.ty)
                    ),
                ));
            };
            let mut conflicting = vec![qtype];
            if qtype == JsonType::Str {
                if let Kind::Enum { values, .. } = &t.kind {
                    for m in values {
                        if (m.name == "on" || m.name == "off")
                            && !conflicting.contains(&JsonType::Bool)
                        {
                            conflicting.push(JsonType::Bool);
                        }
                        if m.name.starts_with([
                            '-', '+', '.', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9',
                        ]) && !conflicting.contains(&JsonType::Num)
                        {
                            conflicting.push(JsonType::Num);
                        }
                    }
                } else {
                    conflicting.push(JsonType::Num);
                    conflicting.push(JsonType::Bool);
                }
            }
            for qt in conflicting {
                if let Some(&prev) = types_seen.get(&qt) {
                    return Err(self.err(
                        info,
                        format!(
                            "{} can't be distinguished from '{}'",
                            self.describe(d, info),
                            self.branch(id, prev).name
                        ),
                    ));
                }
                types_seen.insert(qt, i as u32);
            }
        }
        Ok(())
    }

    /// The shared part of command and event checks: the argument type.
    pub(super) fn check_arg_type(
        &mut self,
        id: u32,
        arg_name: Option<&str>,
        boxed: bool,
        meta: &str,
    ) -> Res<Option<u32>> {
        let info = self.entities[id as usize].info;
        let Some(arg_name) = arg_name else {
            return Ok(None);
        };
        let arg = self.resolve(arg_name, info, || format!("{meta}'s 'data'"))?;
        let Some(o) = self.object(arg) else {
            return Err(self.err(
                info,
                format!("{meta}'s 'data' cannot take {}", self.describe_type(arg)),
            ));
        };
        if o.branches.is_some() && !boxed {
            return Err(self.err(
                info,
                format!(
                    "{meta}'s 'data' can take {} only with 'boxed': true",
                    self.describe_type(arg)
                ),
            ));
        }
        self.check_object(arg)?;
        let conditional = self
            .object(arg)
            .is_some_and(|o| o.members.iter().any(|&r| self.member(r).ifcond.is_some()));
        if conditional && !boxed && self.rules.conditional_args_need_boxed {
            return Err(self.err(
                info,
                format!("conditional {meta} arguments require 'boxed': true"),
            ));
        }
        Ok(Some(arg))
    }

    pub(super) fn check_command(&mut self, id: u32) -> Res<()> {
        self.check_definition(id, false)?;
        let e = &self.entities[id as usize];
        let info = e.info;
        let Kind::Command {
            arg_name,
            ret_name,
            flags,
            ..
        } = &e.kind
        else {
            return Ok(());
        };
        let boxed = flags.boxed;
        let arg_name = arg_name.clone();
        let ret_name = ret_name.clone();
        let arg = self.check_arg_type(id, arg_name.as_deref(), boxed, "command")?;
        let mut ret = None;
        if let Some(ret_name) = &ret_name {
            let r = self.resolve(ret_name, info, || "command's 'returns'".to_string())?;
            let name = &self.entities[id as usize].name;
            if !self
                .pragma
                .command_returns_exceptions
                .contains(name.as_str())
            {
                let mut t = r;
                if let Kind::Array { elem, .. } = self.entities[r as usize].kind {
                    t = elem;
                }
                if t == UNRESOLVED || self.object(t).is_none() {
                    return Err(self.err(
                        info,
                        format!("command's 'returns' cannot take {}", self.describe_type(r)),
                    ));
                }
            }
            ret = Some(r);
        }
        if let Kind::Command {
            arg: a, ret: rt, ..
        } = &mut self.entities[id as usize].kind
        {
            *a = arg;
            *rt = ret;
        }
        Ok(())
    }

    pub(super) fn check_event(&mut self, id: u32) -> Res<()> {
        self.check_definition(id, false)?;
        let Kind::Event {
            arg_name, boxed, ..
        } = &self.entities[id as usize].kind
        else {
            return Ok(());
        };
        let boxed = *boxed;
        let arg_name = arg_name.clone();
        let arg = self.check_arg_type(id, arg_name.as_deref(), boxed, "event")?;
        if let Kind::Event { arg: a, .. } = &mut self.entities[id as usize].kind {
            *a = arg;
        }
        Ok(())
    }

    pub(super) fn check(&mut self) -> Res<()> {
        for id in 0..self.entities.len() as u32 {
            self.check_entity(id)?;
            let mut cx = DocCtx {
                docs: &mut self.docs,
                warnings: &mut self.warnings,
                pragma: self.pragma,
                infos: self.infos,
                rules: self.rules,
            };
            connect_doc(&self.entities, &mut cx, id, None)?;
        }
        for id in 0..self.entities.len() {
            let info = match &self.entities[id].kind {
                Kind::Array { elem, .. } => self.entities[*elem as usize].info,
                _ => self.entities[id].info,
            };
            self.entities[id].module = self.module_of(info);
        }
        self.check_docs()?;
        if let Some(info) = self.feature_overflow {
            return Err(Box::new(self.infos.error(
                info,
                format!("Maximum of {MAX_FEATURES} schema features is permitted"),
            )));
        }
        Ok(())
    }
}
