//! The shell's view of a schema: what validation, typing and completion need, built
//! from a live `query-qmp-schema` reply (any QEMU version) or from a QAPI schema loaded
//! by `qapi_parser` (the guest agent, or offline use).

use std::collections::BTreeMap;

use serde_json::Value;

/// Index of a type in [`Schema::types`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TypeRef(pub u32);

/// The JSON type of a builtin scalar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JsonType {
    /// A JSON string (`str`).
    String,
    /// A JSON number (`number`).
    Number,
    /// An integer (`int`, `int8` ... `uint64`, `size`).
    Int,
    /// `true` or `false`.
    Boolean,
    /// `null`.
    Null,
    /// Any JSON value (`any`).
    Value,
}

/// One type of the schema.
#[derive(Debug, Clone)]
pub struct Type {
    /// Its name: the QAPI name, or QEMU's masked number from introspection.
    pub name: String,
    /// Whether `name` means something to a person (false for introspection's numbers).
    pub named: bool,
    /// What it is.
    pub kind: Kind,
}

/// The kinds of type.
#[derive(Debug, Clone)]
pub enum Kind {
    /// A builtin scalar; `range` bounds the integer builtins with a known width.
    Scalar {
        /// Its JSON type.
        json: JsonType,
        /// Inclusive bounds for sized integers (`int8` ... `uint64`, `size`).
        range: Option<(i128, i128)>,
    },
    /// An enumeration and its values.
    Enum(Vec<String>),
    /// An array of the element type.
    Array(TypeRef),
    /// An object: members (base first), and for a union its tag and branches.
    Object {
        /// The common members.
        members: Vec<Member>,
        /// The discriminator member's name, for unions.
        tag: Option<String>,
        /// Branches: tag value -> object type whose members are added.
        variants: Vec<(String, TypeRef)>,
    },
    /// An alternate: one of the types, told apart by JSON type.
    Alternate(Vec<TypeRef>),
}

/// A member of an object (or an argument of a command).
#[derive(Debug, Clone)]
pub struct Member {
    /// Wire name.
    pub name: String,
    /// Its type.
    pub ty: TypeRef,
    /// Whether it may be left out.
    pub optional: bool,
    /// Whether it carries the `deprecated` feature.
    pub deprecated: bool,
}

/// A command.
#[derive(Debug, Clone)]
pub struct CommandInfo {
    /// Wire name.
    pub name: String,
    /// The arguments' object type, if any.
    pub args: Option<TypeRef>,
    /// The return type, if any.
    pub ret: Option<TypeRef>,
    /// Whether it may run out-of-band.
    pub allow_oob: bool,
    /// Its features (`deprecated`, `unstable`, ...).
    pub features: Vec<String>,
    /// Whether its arguments take members beyond the declared ones (QAPI `gen: false`,
    /// i.e. `device_add` and its device properties).
    pub open_args: bool,
}

/// Commands whose marshalling QEMU writes by hand (`gen: false`) to accept extra
/// arguments; introspection does not say so.
const OPEN_ARGS: [&str; 1] = ["device_add"];

/// Errors building a schema from an introspection reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaError(pub String);

impl std::fmt::Display for SchemaError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "bad schema: {}", self.0)
    }
}

impl std::error::Error for SchemaError {}

/// A schema ready for lookups.
#[derive(Debug, Clone, Default)]
pub struct Schema {
    /// Every type.
    pub types: Vec<Type>,
    /// Commands by name.
    pub commands: BTreeMap<String, CommandInfo>,
    /// Events by name, with their data type.
    pub events: BTreeMap<String, Option<TypeRef>>,
    by_name: BTreeMap<String, TypeRef>,
}

fn int_range(name: &str) -> Option<(i128, i128)> {
    Some(match name {
        "int" | "int64" => (i64::MIN as i128, i64::MAX as i128),
        "int8" => (i8::MIN as i128, i8::MAX as i128),
        "int16" => (i16::MIN as i128, i16::MAX as i128),
        "int32" => (i32::MIN as i128, i32::MAX as i128),
        "uint8" => (0, u8::MAX as i128),
        "uint16" => (0, u16::MAX as i128),
        "uint32" => (0, u32::MAX as i128),
        "uint64" | "size" => (0, u64::MAX as i128),
        _ => return None,
    })
}

fn has_deprecated(features: Option<&Value>) -> bool {
    features
        .and_then(Value::as_array)
        .is_some_and(|f| f.iter().any(|x| x == "deprecated"))
}

impl Schema {
    /// The type with this reference.
    pub fn ty(&self, r: TypeRef) -> &Type {
        &self.types[r.0 as usize]
    }

    /// The type named `name`, if any.
    pub fn lookup(&self, name: &str) -> Option<TypeRef> {
        self.by_name.get(name).copied()
    }

    fn intern(&mut self, name: &str) -> TypeRef {
        if let Some(r) = self.by_name.get(name) {
            return *r;
        }
        let r = TypeRef(self.types.len() as u32);
        self.types.push(Type {
            name: name.to_owned(),
            named: false,
            kind: Kind::Object {
                members: Vec::new(),
                tag: None,
                variants: Vec::new(),
            },
        });
        self.by_name.insert(name.to_owned(), r);
        r
    }

    /// Builds the schema from the `return` value of `query-qmp-schema` (a list of
    /// `SchemaInfo` objects). References to types the reply does not define are errors.
    pub fn from_introspection(reply: &Value) -> Result<Schema, SchemaError> {
        let list = reply
            .as_array()
            .ok_or_else(|| SchemaError("query-qmp-schema did not return a list".into()))?;
        let mut s = Schema::default();
        let mut defined = vec![];
        for info in list {
            let name = info
                .get("name")
                .and_then(Value::as_str)
                .ok_or_else(|| SchemaError("SchemaInfo without a name".into()))?;
            let meta = info.get("meta-type").and_then(Value::as_str).unwrap_or("");
            let opt_ref = |s: &mut Schema, key: &str| {
                info.get(key).and_then(Value::as_str).map(|t| s.intern(t))
            };
            match meta {
                "command" => {
                    let args = opt_ref(&mut s, "arg-type");
                    let ret = opt_ref(&mut s, "ret-type");
                    let features = info
                        .get("features")
                        .and_then(Value::as_array)
                        .map(|f| {
                            f.iter()
                                .filter_map(|x| x.as_str().map(str::to_owned))
                                .collect()
                        })
                        .unwrap_or_default();
                    s.commands.insert(
                        name.to_owned(),
                        CommandInfo {
                            name: name.to_owned(),
                            args,
                            ret,
                            allow_oob: info.get("allow-oob") == Some(&Value::Bool(true)),
                            features,
                            open_args: OPEN_ARGS.contains(&name),
                        },
                    );
                }
                "event" => {
                    let args = opt_ref(&mut s, "arg-type");
                    s.events.insert(name.to_owned(), args);
                }
                _ => {
                    let kind = match meta {
                        "builtin" => {
                            let json = match info.get("json-type").and_then(Value::as_str) {
                                Some("string") => JsonType::String,
                                Some("number") => JsonType::Number,
                                Some("int") => JsonType::Int,
                                Some("boolean") => JsonType::Boolean,
                                Some("null") => JsonType::Null,
                                _ => JsonType::Value,
                            };
                            Kind::Scalar {
                                json,
                                range: if json == JsonType::Int {
                                    int_range(name)
                                } else {
                                    None
                                },
                            }
                        }
                        "enum" => {
                            let values = match info.get("members").and_then(Value::as_array) {
                                Some(m) => m
                                    .iter()
                                    .filter_map(|m| m.get("name")?.as_str().map(str::to_owned))
                                    .collect(),
                                None => info
                                    .get("values")
                                    .and_then(Value::as_array)
                                    .map(|v| {
                                        v.iter()
                                            .filter_map(|x| x.as_str().map(str::to_owned))
                                            .collect()
                                    })
                                    .unwrap_or_default(),
                            };
                            Kind::Enum(values)
                        }
                        "array" => {
                            Kind::Array(opt_ref(&mut s, "element-type").ok_or_else(|| {
                                SchemaError(format!("array {name} without element-type"))
                            })?)
                        }
                        "alternate" => {
                            let mut alts = vec![];
                            for m in info
                                .get("members")
                                .and_then(Value::as_array)
                                .into_iter()
                                .flatten()
                            {
                                if let Some(t) = m.get("type").and_then(Value::as_str) {
                                    alts.push(s.intern(t));
                                }
                            }
                            Kind::Alternate(alts)
                        }
                        "object" => {
                            let mut members = vec![];
                            for m in info
                                .get("members")
                                .and_then(Value::as_array)
                                .into_iter()
                                .flatten()
                            {
                                let (Some(n), Some(t)) = (
                                    m.get("name").and_then(Value::as_str),
                                    m.get("type").and_then(Value::as_str),
                                ) else {
                                    continue;
                                };
                                members.push(Member {
                                    name: n.to_owned(),
                                    ty: s.intern(t),
                                    optional: m.get("default").is_some(),
                                    deprecated: has_deprecated(m.get("features")),
                                });
                            }
                            let mut variants = vec![];
                            for v in info
                                .get("variants")
                                .and_then(Value::as_array)
                                .into_iter()
                                .flatten()
                            {
                                if let (Some(c), Some(t)) = (
                                    v.get("case").and_then(Value::as_str),
                                    v.get("type").and_then(Value::as_str),
                                ) {
                                    variants.push((c.to_owned(), s.intern(t)));
                                }
                            }
                            Kind::Object {
                                members,
                                tag: info.get("tag").and_then(Value::as_str).map(str::to_owned),
                                variants,
                            }
                        }
                        other => {
                            return Err(SchemaError(format!(
                                "unknown meta-type '{other}' of {name}"
                            )))
                        }
                    };
                    let r = s.intern(name);
                    let t = &mut s.types[r.0 as usize];
                    t.kind = kind;
                    // Builtins keep their names; the rest are QEMU's masked numbers.
                    t.named = meta == "builtin"
                        || (name.parse::<u64>().is_err() && !name.starts_with('['));
                    defined.push(r);
                }
            }
        }
        if defined.len() != s.types.len() {
            let mut is_defined = vec![false; s.types.len()];
            for r in defined {
                is_defined[r.0 as usize] = true;
            }
            if let Some(t) = s
                .types
                .iter()
                .zip(is_defined)
                .find_map(|(t, d)| (!d).then_some(t))
            {
                return Err(SchemaError(format!(
                    "type '{}' is used but not defined",
                    t.name
                )));
            }
        }
        Ok(s)
    }

    /// Builds the schema from a QAPI schema loaded by `qapi_parser` (all conditions
    /// taken as true). Used for the guest agent, which has no introspection.
    pub fn from_qapi(q: &qapi_parser::Schema) -> Schema {
        use qapi_parser::EntityKind as E;
        let mut s = Schema::default();
        // Same ids as the parser's entities, so references translate one to one.
        for e in &q.entities {
            let r = s.intern(&e.name);
            s.types[r.0 as usize].named = true;
        }
        for (i, e) in q.entities.iter().enumerate() {
            let tr = |id: qapi_parser::TypeId| TypeRef(id.0);
            let kind = match &e.kind {
                E::Builtin(b) => {
                    let json = match b.json_type() {
                        "string" => JsonType::String,
                        "number" => JsonType::Number,
                        "int" => JsonType::Int,
                        "boolean" => JsonType::Boolean,
                        "null" => JsonType::Null,
                        _ => JsonType::Value,
                    };
                    Kind::Scalar {
                        json,
                        range: int_range(b.name()),
                    }
                }
                E::Enum(en) => Kind::Enum(en.members.iter().map(|m| m.name.clone()).collect()),
                E::Array(a) => Kind::Array(tr(a.element)),
                E::Alternate(a) => Kind::Alternate(a.variants.iter().map(|v| tr(v.ty)).collect()),
                E::Object(o) => Kind::Object {
                    members: q
                        .all_members(qapi_parser::TypeId(i as u32))
                        .into_iter()
                        .map(|m| Member {
                            name: m.name.clone(),
                            ty: tr(m.ty),
                            optional: m.optional,
                            deprecated: m.features.iter().any(|f| f.is_deprecated()),
                        })
                        .collect(),
                    tag: o.variants.as_ref().map(|v| v.tag_member.clone()),
                    variants: o
                        .variants
                        .iter()
                        .flat_map(|v| &v.variants)
                        .map(|v| (v.name.clone(), tr(v.ty)))
                        .collect(),
                },
                E::Command(c) => {
                    s.commands.insert(
                        e.name.clone(),
                        CommandInfo {
                            name: e.name.clone(),
                            args: c.arg_type.map(tr),
                            ret: c.ret_type.map(tr),
                            allow_oob: c.flags.allow_oob,
                            features: e.features.iter().map(|f| f.name.clone()).collect(),
                            open_args: !c.flags.gen,
                        },
                    );
                    continue;
                }
                E::Event(ev) => {
                    s.events.insert(e.name.clone(), ev.arg_type.map(tr));
                    continue;
                }
                E::Include => continue,
            };
            s.types[i].kind = kind;
        }
        s
    }

    /// Members of an object type, or of the object branch of an alternate; `None` for
    /// other types.
    pub fn object_of(&self, r: TypeRef) -> Option<TypeRef> {
        match &self.ty(r).kind {
            Kind::Object { .. } => Some(r),
            Kind::Alternate(alts) => alts
                .iter()
                .copied()
                .find(|a| matches!(self.ty(*a).kind, Kind::Object { .. })),
            _ => None,
        }
    }

    /// The members of object `r` for tag value `tag` (all branches' members when
    /// `tag` is `None`, first occurrence kept).
    pub fn members(&self, r: TypeRef, tag: Option<&str>) -> Vec<&Member> {
        let Kind::Object {
            members, variants, ..
        } = &self.ty(r).kind
        else {
            return Vec::new();
        };
        let mut out: Vec<&Member> = members.iter().collect();
        for (case, v) in variants {
            if tag.is_some_and(|t| t != case) {
                continue;
            }
            // Branch types are objects themselves (possibly empty, possibly unions).
            for m in self.members(*v, None) {
                if !out.iter().any(|o| o.name == m.name) {
                    out.push(m);
                }
            }
        }
        out
    }

    /// A short description of a type for messages: `str`, `int`, `enum (a, b, ...)`,
    /// `array of str`, `object`, or its QAPI name when it has one.
    pub fn describe(&self, r: TypeRef) -> String {
        self.describe_depth(r, 2)
    }

    fn describe_depth(&self, r: TypeRef, depth: u32) -> String {
        let t = self.ty(r);
        match &t.kind {
            Kind::Scalar { .. } => t.name.clone(),
            Kind::Enum(values) => {
                let mut list = values
                    .iter()
                    .take(6)
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ");
                if values.len() > 6 {
                    list.push_str(", ...");
                }
                if t.named {
                    format!("{} (enum: {list})", t.name)
                } else {
                    format!("enum ({list})")
                }
            }
            _ if t.named => t.name.clone(),
            _ if depth == 0 => "...".to_owned(),
            Kind::Array(e) => format!("array of {}", self.describe_depth(*e, depth - 1)),
            Kind::Object { tag: Some(tag), .. } => format!("object (union on '{tag}')"),
            Kind::Object { .. } => "object".to_owned(),
            Kind::Alternate(alts) => alts
                .iter()
                .map(|a| self.describe_depth(*a, depth - 1))
                .collect::<Vec<_>>()
                .join(" or "),
        }
    }

    /// Sorted command names.
    pub fn command_names(&self) -> impl Iterator<Item = &str> {
        self.commands.keys().map(String::as_str)
    }
}
