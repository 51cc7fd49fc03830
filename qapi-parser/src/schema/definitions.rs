//! Definition (QEMU's `_def_*`): every checked expression becomes entities in creation
//! order, with their implicit types (arrays, `q_obj_*` argument and base types) and the
//! predefined ones; references stay names until the checks resolve them.

use super::*;

impl Builder<'_> {
    /// Interns the C name of `name` (clashes are decided on C names).
    pub(super) fn cname(&mut self, name: &str) -> u32 {
        let plain = name.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_');
        let mut buf = std::mem::take(&mut self.cname_buf);
        let key: &str = if plain {
            name
        } else {
            buf.clear();
            buf.extend(name.chars().map(|c| {
                if c.is_ascii_alphanumeric() || c == '_' {
                    c
                } else {
                    '_'
                }
            }));
            &buf
        };
        let id = self.cnames.intern(key);
        self.cname_buf = buf;
        id
    }

    pub(super) fn lookup_type(&self, name: &str) -> Option<u32> {
        let id = self.by_name.get(&self.entities, name)?;
        match self.entities[id as usize].kind {
            Kind::Command { .. } | Kind::Event { .. } | Kind::Include => None,
            _ => Some(id),
        }
    }

    pub(super) fn push_entity(&mut self, ent: Entity) -> u32 {
        let id = self.entities.len() as u32;
        self.entities.push(ent);
        id
    }

    pub(super) fn describe_type(&self, id: u32) -> String {
        let e = &self.entities[id as usize];
        match &e.kind {
            Kind::Builtin(_) => format!("built-in type '{}'", e.name),
            Kind::Enum { .. } => format!("enum type '{}'", e.name),
            Kind::Object(o) if o.branches.is_some() => format!("union type '{}'", e.name),
            Kind::Object(_) => format!("struct type '{}'", e.name),
            Kind::Alternate { .. } => format!("alternate type '{}'", e.name),
            Kind::Array { elem_name, .. } => format!("array type ['{elem_name}']"),
            Kind::Command { .. } => format!("command '{}'", e.name),
            Kind::Event { .. } => format!("event '{}'", e.name),
            Kind::Include => format!("include '{}'", e.name),
        }
    }

    /// QEMU's `_def_definition`: append, then reject a name already taken.
    pub(super) fn def_definition(&mut self, ent: Entity) -> Res<u32> {
        let id = self.push_entity(ent);
        let e = &self.entities[id as usize];
        if let Some(other) = self.by_name.get(&self.entities[..id as usize], &e.name) {
            let o = &self.entities[other as usize];
            let info = e.info.unwrap_or(InfoId(0));
            return Err(Box::new(match o.info {
                Some(oinfo) => {
                    let prev = self.infos.error(oinfo, "previous definition");
                    self.infos
                        .error(info, format!("'{}' is already defined\n{prev}", e.name))
                }
                None => self.infos.error(
                    info,
                    format!("{} is already defined", self.describe_type(other)),
                ),
            }));
        }
        self.by_name.insert(&self.entities[id as usize].name, id);
        Ok(id)
    }

    pub(super) fn simple(name: String, info: Option<InfoId>, kind: Kind) -> Entity {
        Entity {
            name,
            info,
            doc: None,
            model_doc: None,
            ifcond: None,
            features: Vec::new(),
            kind,
            module: 0,
        }
    }

    pub(super) fn def_predefineds(&mut self) {
        for bt in Builtin::ALL {
            let name = bt.name().to_string();
            // Predefined names cannot clash.
            let _ = self.def_definition(Self::simple(name, None, Kind::Builtin(bt)));
            let _ = self.make_array_type(bt.name(), None);
        }
        let q_empty = Self::simple(
            "q_empty".to_string(),
            None,
            Kind::Object(Object {
                base_name: None,
                base: None,
                local: Vec::new(),
                branches: None,
                members: Vec::new(),
                state: State::Unchecked,
            }),
        );
        self.q_empty = self.def_definition(q_empty).unwrap_or(0);
        let values = [
            "none", "qnull", "qnum", "qstring", "qdict", "qlist", "qbool",
        ]
        .iter()
        .map(|n| EnumValue {
            name: n.to_string(),
            cname: self.cname(n),
            ifcond: None,
            features: Vec::new(),
        })
        .collect();
        let qtype = Self::simple(
            "QType".to_string(),
            None,
            Kind::Enum {
                values,
                prefix: self.rules.qtype_prefix.map(str::to_string),
            },
        );
        let _ = self.def_definition(qtype);
    }

    pub(super) fn make_features(&mut self, defs: Vec<FeatureDef>, info: InfoId) -> Vec<Feature> {
        let mut out = Vec::with_capacity(defs.len());
        for f in defs {
            if !self.features_seen.contains(&f.name) {
                self.features_seen.insert(f.name.clone());
                if self.features_seen.len() == MAX_FEATURES + 1 {
                    self.feature_overflow = Some(info);
                }
            }
            out.push(Feature {
                cname: self.cname(&f.name),
                name: f.name,
                ifcond: f.ifcond,
            });
        }
        out
    }

    pub(super) fn make_array_type(&mut self, elem: &str, info: Option<InfoId>) -> Res<String> {
        let name = format!("{elem}List");
        if self.lookup_type(&name).is_none() {
            let ent = Self::simple(
                name.clone(),
                info,
                Kind::Array {
                    elem_name: elem.to_string(),
                    elem: UNRESOLVED,
                },
            );
            self.def_definition(ent)?;
        }
        Ok(name)
    }

    pub(super) fn type_ref(&mut self, t: TypeRef, info: InfoId) -> Res<Text> {
        match t {
            TypeRef::Name(n) => Ok(n),
            TypeRef::Array(e) => self.make_array_type(&e, Some(info)).map(Text::Owned),
        }
    }

    pub(super) fn make_members(&mut self, defs: Vec<MemberDef>, info: InfoId) -> Res<Vec<Member>> {
        let mut out = Vec::with_capacity(defs.len());
        for m in defs {
            let type_name = self.type_ref(m.ty, info)?;
            let features = self.make_features(m.features, info);
            out.push(Member {
                cname: self.cname(&m.name),
                name: m.name,
                type_name,
                ty: UNRESOLVED,
                optional: m.optional,
                ifcond: m.ifcond,
                features,
            });
        }
        Ok(out)
    }

    pub(super) fn make_variants(
        &mut self,
        defs: Vec<BranchDef>,
        info: InfoId,
        defined_in: u32,
    ) -> Res<Vec<Branch>> {
        let mut out = Vec::with_capacity(defs.len());
        for v in defs {
            let type_name = self.type_ref(v.ty, info)?;
            out.push(Branch {
                cname: self.cname(&v.name),
                name: v.name,
                type_name,
                ty: UNRESOLVED,
                ifcond: v.ifcond,
                implicit: false,
                defined_in,
            });
        }
        Ok(out)
    }

    /// QEMU's `_make_implicit_object_type`: `None` for no members.
    pub(super) fn make_implicit_object(
        &mut self,
        name: &str,
        role: &str,
        info: InfoId,
        ifcond: &Option<IfCond>,
        members: Vec<Member>,
        doc: Option<usize>,
    ) -> Res<Option<String>> {
        if members.is_empty() {
            return Ok(None);
        }
        let name = format!("q_obj_{name}-{role}");
        if self.by_name.get(&self.entities, &name).is_none() {
            let mut ent = Self::simple(
                name.clone(),
                Some(info),
                Kind::Object(Object {
                    base_name: None,
                    base: None,
                    local: members,
                    branches: None,
                    members: Vec::new(),
                    state: State::Unchecked,
                }),
            );
            ent.ifcond = ifcond.clone();
            ent.model_doc = doc;
            self.def_definition(ent)?;
        }
        Ok(Some(name))
    }

    pub(super) fn def_exprs(&mut self, exprs: Vec<expr::Expr>) -> Res<()> {
        for e in exprs {
            let info = e.info;
            match e.kind {
                ExprKind::Include(file) => {
                    // The parser already joined the path to the includer's folder.
                    let module = self.make_module(&file);
                    let name = self.modules[module as usize].clone();
                    self.push_entity(Self::simple(name, Some(info), Kind::Include));
                }
                ExprKind::Definition(def) => self.def_definition_expr(def, info, e.doc)?,
            }
        }
        Ok(())
    }

    pub(super) fn def_definition_expr(
        &mut self,
        def: Definition,
        info: InfoId,
        doc: Option<usize>,
    ) -> Res<()> {
        let Definition {
            name,
            ifcond,
            features,
            body,
        } = def;
        let features = self.make_features(features, info);
        let kind = match body {
            DefBody::Enum { values, prefix } => {
                let values = values
                    .into_iter()
                    .map(|v: EnumValueDef| {
                        let features = self.make_features(v.features, info);
                        EnumValue {
                            cname: self.cname(&v.name),
                            name: v.name,
                            ifcond: v.ifcond,
                            features,
                        }
                    })
                    .collect();
                Kind::Enum { values, prefix }
            }
            DefBody::Struct { base, members } => {
                let local = self.make_members(members, info)?;
                Kind::Object(Object {
                    base_name: base,
                    base: None,
                    local,
                    branches: None,
                    members: Vec::new(),
                    state: State::Unchecked,
                })
            }
            DefBody::Union {
                branches,
                simple: true,
                ..
            } => self.simple_union(&name, branches, info, &ifcond)?,
            DefBody::Union {
                base,
                discriminator,
                branches,
                ..
            } => {
                let base_name = match base {
                    Data::Name(n) => Some(n),
                    Data::Members(m) => {
                        let members = self.make_members(m, info)?;
                        self.make_implicit_object(&name, "base", info, &ifcond, members, doc)?
                    }
                };
                let me = self.entities.len() as u32;
                let variants = self.make_variants(branches, info, me)?;
                Kind::Object(Object {
                    base_name,
                    base: None,
                    local: Vec::new(),
                    branches: Some(Branches {
                        tag_name: discriminator,
                        tag: None,
                        variants,
                    }),
                    members: Vec::new(),
                    state: State::Unchecked,
                })
            }
            DefBody::Alternate { branches } => {
                // The alternate is created after its array types; its id is known
                // only then, so fix `defined_in` below.
                let variants = self.make_variants(branches, info, UNRESOLVED)?;
                Kind::Alternate { variants }
            }
            DefBody::Command {
                data,
                returns,
                flags,
            } => {
                let arg_name = self.args(&name, data, info, &ifcond, doc)?;
                let ret_name = returns.map(|r| self.type_ref(r, info)).transpose()?;
                Kind::Command {
                    arg_name,
                    ret_name,
                    arg: None,
                    ret: None,
                    flags,
                }
            }
            DefBody::Event { data, boxed } => {
                let arg_name = self.args(&name, data, info, &ifcond, doc)?;
                Kind::Event {
                    arg_name,
                    arg: None,
                    boxed,
                }
            }
        };
        let ent = Entity {
            name,
            info: Some(info),
            doc,
            model_doc: doc,
            ifcond,
            features,
            kind,
            module: 0,
        };
        let id = self.def_definition(ent)?;
        // Branches were made before their union or alternate existed; point them at it.
        match &mut self.entities[id as usize].kind {
            Kind::Alternate { variants } => variants.iter_mut().for_each(|v| v.defined_in = id),
            Kind::Object(Object {
                branches: Some(b), ..
            }) => b.variants.iter_mut().for_each(|v| v.defined_in = id),
            _ => {}
        }
        Ok(())
    }

    pub(super) fn args(
        &mut self,
        name: &str,
        data: Option<Data>,
        info: InfoId,
        ifcond: &Option<IfCond>,
        doc: Option<usize>,
    ) -> Res<Option<String>> {
        match data {
            None => Ok(None),
            Some(Data::Name(n)) => Ok(Some(n)),
            Some(Data::Members(m)) => {
                let members = self.make_members(m, info)?;
                self.make_implicit_object(name, "arg", info, ifcond, members, doc)
            }
        }
    }
}
