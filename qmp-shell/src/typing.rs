//! Turns parsed `key=value` arguments into the JSON arguments object, typed and
//! validated against the schema: dotted keys nest (each key from the top, however many
//! there are), unquoted values take the type of their member, and unknown, missing or
//! mistyped members are reported with their path, the expected type and a close name.

use serde_json::{Map, Number, Value};

use crate::schema::{JsonType, Kind, Schema, TypeRef};
use crate::suggest::closest;
use crate::syntax::{Arg, Lit, Statement};

/// A problem found before anything is sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diag {
    /// Dotted path of the member (`file.driver`), or the command name.
    pub path: String,
    /// What is wrong.
    pub kind: DiagKind,
}

/// The kinds of problem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DiagKind {
    /// No such command in the schema.
    UnknownCommand {
        /// A close command name.
        suggestion: Option<String>,
    },
    /// The command exists in QEMU's documentation but not in the connected QEMU.
    NotAvailable,
    /// No such member.
    Unknown {
        /// A close member name.
        suggestion: Option<String>,
        /// The valid names, when there are few.
        valid: Vec<String>,
    },
    /// A required member is absent.
    Missing {
        /// Its type.
        expected: String,
    },
    /// A value of the wrong type.
    WrongType {
        /// The type the schema wants.
        expected: String,
        /// What was given.
        found: String,
        /// A close enum value.
        suggestion: Option<String>,
    },
    /// Keys that contradict each other (`a=1 a.b=2`, the same key twice).
    Conflict(String),
    /// A warning, not an error: the command or member is deprecated.
    Deprecated,
}

impl std::fmt::Display for Diag {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let p = &self.path;
        match &self.kind {
            DiagKind::UnknownCommand { suggestion } => {
                write!(f, "unknown command '{p}'")?;
                if let Some(s) = suggestion {
                    write!(f, "; did you mean '{s}'?")?;
                }
                Ok(())
            }
            DiagKind::NotAvailable => write!(
                f,
                "command '{p}' is documented but the connected QEMU does not have it"
            ),
            DiagKind::Unknown { suggestion, valid } => {
                write!(f, "{p}: unknown argument")?;
                if let Some(s) = suggestion {
                    write!(f, "; did you mean '{s}'?")
                } else if valid.is_empty() && !p.contains('.') {
                    write!(f, " (this command takes no arguments)")
                } else if valid.is_empty() {
                    write!(f, " (no members here)")
                } else if valid.len() <= 8 {
                    write!(f, " (expected one of: {})", valid.join(", "))
                } else {
                    Ok(())
                }
            }
            DiagKind::Missing { expected } => write!(f, "{p}: missing argument of type {expected}"),
            DiagKind::WrongType {
                expected,
                found,
                suggestion,
            } => {
                write!(f, "{p}: expected {expected}, found {found}")?;
                if let Some(s) = suggestion {
                    write!(f, "; did you mean '{s}'?")?;
                }
                Ok(())
            }
            DiagKind::Conflict(m) => write!(f, "{p}: {m}"),
            DiagKind::Deprecated => write!(f, "{p}: deprecated (QEMU will remove it)"),
        }
    }
}

/// A request ready to send: command name and arguments (`None`: no `arguments` member).
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// Wire name.
    pub name: String,
    /// The arguments object.
    pub args: Option<Value>,
    /// Warnings that do not stop sending (deprecated command or members).
    pub warnings: Vec<Diag>,
}

/// Arguments as a tree: dotted keys split into nested objects.
#[derive(Debug, Clone, PartialEq)]
enum Node {
    Lit(Lit),
    Object(Vec<(String, Node)>),
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

/// Nests dotted keys. Every argument starts again from the top level (qmp-shell kept
/// descending into the last nested object).
fn build_tree(args: &[Arg], diags: &mut Vec<Diag>) -> Vec<(String, Node)> {
    let mut root: Vec<(String, Node)> = Vec::new();
    'args: for arg in args {
        let parts: Vec<&str> = arg.key.split('.').collect();
        let mut level = &mut root;
        for (i, part) in parts.iter().enumerate() {
            let path = parts[..=i].join(".");
            let last = i + 1 == parts.len();
            let pos = level.iter().position(|(k, _)| k == part);
            if last {
                if let Some(p) = pos {
                    let msg = match level[p].1 {
                        Node::Object(_) => "has members and also a value",
                        Node::Lit(_) => "given more than once",
                    };
                    diags.push(Diag {
                        path,
                        kind: DiagKind::Conflict(msg.into()),
                    });
                } else {
                    level.push(((*part).to_owned(), Node::Lit(arg.value.clone())));
                }
                continue 'args;
            }
            let pos = match pos {
                Some(p) => p,
                None => {
                    level.push(((*part).to_owned(), Node::Object(Vec::new())));
                    level.len() - 1
                }
            };
            match &mut level[pos].1 {
                Node::Object(children) => level = children,
                Node::Lit(_) => {
                    diags.push(Diag {
                        path,
                        kind: DiagKind::Conflict(format!(
                            "has a value and also members ({})",
                            arg.key
                        )),
                    });
                    continue 'args;
                }
            }
        }
    }
    root
}

/// A value typed without a schema (`any` members, raw mode): integers, floats,
/// `true`/`false`, `null`, otherwise a string.
pub fn guess(text: &str) -> Value {
    if let Some(n) = parse_int(text) {
        return n;
    }
    if let Some(n) = parse_float(text) {
        return n;
    }
    match text.to_ascii_lowercase().as_str() {
        "true" => Value::Bool(true),
        "false" => Value::Bool(false),
        "null" => Value::Null,
        _ => Value::String(text.to_owned()),
    }
}

fn parse_int(text: &str) -> Option<Value> {
    let (neg, digits) = match text.strip_prefix('-') {
        Some(d) => (true, d),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let mag: u64 = if let Some(hex) = digits
        .strip_prefix("0x")
        .or_else(|| digits.strip_prefix("0X"))
    {
        u64::from_str_radix(hex, 16).ok()?
    } else {
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        digits.parse().ok()?
    };
    if neg {
        let v = -(mag as i128);
        i64::try_from(v).ok().map(Value::from)
    } else {
        Some(Value::from(mag))
    }
}

fn parse_float(text: &str) -> Option<Value> {
    // Rust also reads "inf" and "NaN", which JSON cannot carry.
    if !text
        .bytes()
        .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'+' | b'e' | b'E'))
    {
        return None;
    }
    let f: f64 = text.parse().ok()?;
    Number::from_f64(f).map(Value::Number)
}

fn parse_bool(text: &str) -> Option<bool> {
    match text.to_ascii_lowercase().as_str() {
        "true" | "on" | "yes" => Some(true),
        "false" | "off" | "no" => Some(false),
        _ => None,
    }
}

fn untyped(node: &Node) -> Value {
    match node {
        Node::Lit(Lit::Text(t)) => guess(t),
        Node::Lit(Lit::Json(v)) => v.clone(),
        // `key.0=... key.1=...` without a schema: indices 0..n make an array.
        Node::Object(children)
            if !children.is_empty()
                && (0..children.len())
                    .all(|i| children.iter().any(|(k, _)| *k == i.to_string())) =>
        {
            let mut items: Vec<(usize, &Node)> = children
                .iter()
                .map(|(k, n)| (k.parse().unwrap_or(usize::MAX), n))
                .collect();
            items.sort_by_key(|(i, _)| *i);
            Value::Array(items.into_iter().map(|(_, n)| untyped(n)).collect())
        }
        Node::Object(children) => Value::Object(
            children
                .iter()
                .map(|(k, n)| (k.clone(), untyped(n)))
                .collect(),
        ),
    }
}

fn found_json(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => format!("{b}"),
        Value::Number(n) => format!("number {n}"),
        Value::String(s) => format!("string \"{s}\""),
        Value::Array(_) => "an array".into(),
        Value::Object(_) => "an object".into(),
    }
}

struct Typer<'a> {
    schema: &'a Schema,
    diags: Vec<Diag>,
    warnings: Vec<Diag>,
    /// Unknown top-level arguments are allowed and typed by their look (`device_add`).
    open: bool,
}

impl Typer<'_> {
    fn wrong(&mut self, path: &str, ty: TypeRef, found: String, suggestion: Option<String>) {
        self.diags.push(Diag {
            path: path.to_owned(),
            kind: DiagKind::WrongType {
                expected: self.schema.describe(ty),
                found,
                suggestion,
            },
        });
    }

    fn node(&mut self, node: &Node, ty: TypeRef, path: &str) -> Value {
        match node {
            Node::Lit(Lit::Text(t)) => self.text(t, ty, path),
            Node::Lit(Lit::Json(v)) => self.json(v, ty, path),
            Node::Object(children) => self.object(children, ty, path, "members (dotted keys)"),
        }
    }

    /// An unquoted value: its type decides how it is read.
    fn text(&mut self, t: &str, ty: TypeRef, path: &str) -> Value {
        let schema = self.schema;
        match &schema.ty(ty).kind {
            Kind::Scalar { json, range } => {
                let v = match json {
                    JsonType::String => return Value::String(t.to_owned()),
                    JsonType::Value => return guess(t),
                    JsonType::Int => parse_int(t),
                    JsonType::Number => parse_int(t).or_else(|| parse_float(t)),
                    JsonType::Boolean => parse_bool(t).map(Value::Bool),
                    JsonType::Null => (t == "null").then_some(Value::Null),
                };
                match v {
                    Some(v) => {
                        self.check_range(&v, *range, ty, path);
                        v
                    }
                    None => {
                        self.wrong(path, ty, format!("'{t}'"), None);
                        Value::Null
                    }
                }
            }
            Kind::Enum(values) => {
                if !values.iter().any(|v| v == t) {
                    let s = closest(t, values.iter().map(String::as_str)).map(str::to_owned);
                    self.wrong(path, ty, format!("'{t}'"), s);
                }
                Value::String(t.to_owned())
            }
            Kind::Alternate(alts) => {
                // Most specific reading first; a string branch takes anything left.
                let mut order: Vec<(u8, TypeRef)> = alts
                    .iter()
                    .map(|a| {
                        let rank = match &schema.ty(*a).kind {
                            Kind::Scalar {
                                json: JsonType::Null,
                                ..
                            } => 0,
                            Kind::Scalar {
                                json: JsonType::Boolean,
                                ..
                            } => 1,
                            Kind::Scalar {
                                json: JsonType::Int,
                                ..
                            } => 2,
                            Kind::Scalar {
                                json: JsonType::Number,
                                ..
                            } => 3,
                            Kind::Enum(_) => 4,
                            _ => 5,
                        };
                        (rank, *a)
                    })
                    .collect();
                order.sort();
                for (_, a) in &order {
                    let fits = match &schema.ty(*a).kind {
                        Kind::Scalar { json, .. } => match json {
                            JsonType::Null => t == "null",
                            JsonType::Boolean => parse_bool(t).is_some(),
                            JsonType::Int => parse_int(t).is_some(),
                            JsonType::Number => parse_float(t).is_some() || parse_int(t).is_some(),
                            JsonType::String | JsonType::Value => true,
                        },
                        Kind::Enum(values) => values.iter().any(|v| v == t),
                        _ => false,
                    };
                    if fits {
                        return self.text(t, *a, path);
                    }
                }
                // Only an enum branch can still explain it: suggest from it.
                let suggestion = alts.iter().find_map(|a| match &schema.ty(*a).kind {
                    Kind::Enum(values) => {
                        closest(t, values.iter().map(String::as_str)).map(str::to_owned)
                    }
                    _ => None,
                });
                self.wrong(path, ty, format!("'{t}'"), suggestion);
                Value::Null
            }
            Kind::Array(_) => {
                self.wrong(
                    path,
                    ty,
                    format!("'{t}' (write {path}=[...] or {path}.0=...)"),
                    None,
                );
                Value::Null
            }
            Kind::Object { .. } => {
                self.wrong(
                    path,
                    ty,
                    format!("'{t}' (write {path}.MEMBER=... or {path}={{...}})"),
                    None,
                );
                Value::Null
            }
        }
    }

    fn check_range(&mut self, v: &Value, range: Option<(i128, i128)>, ty: TypeRef, path: &str) {
        let (Some((lo, hi)), Some(n)) = (
            range,
            v.as_i64()
                .map(i128::from)
                .or_else(|| v.as_u64().map(i128::from)),
        ) else {
            return;
        };
        if n < lo || n > hi {
            self.wrong(path, ty, format!("{n} (out of range {lo}..={hi})"), None);
        }
    }

    /// A quoted or JSON value: it keeps its JSON type, which must fit.
    fn json(&mut self, v: &Value, ty: TypeRef, path: &str) -> Value {
        let schema = self.schema;
        match (&schema.ty(ty).kind, v) {
            (Kind::Scalar { json, range }, _) => {
                let ok = match json {
                    JsonType::Value => true,
                    JsonType::String => v.is_string(),
                    JsonType::Int => v.is_i64() || v.is_u64(),
                    JsonType::Number => v.is_number(),
                    JsonType::Boolean => v.is_boolean(),
                    JsonType::Null => v.is_null(),
                };
                if ok {
                    self.check_range(v, *range, ty, path);
                } else {
                    self.wrong(path, ty, found_json(v), None);
                }
                v.clone()
            }
            (Kind::Enum(values), Value::String(s)) => {
                if !values.iter().any(|x| x == s) {
                    let sug = closest(s, values.iter().map(String::as_str)).map(str::to_owned);
                    self.wrong(path, ty, format!("'{s}'"), sug);
                }
                v.clone()
            }
            (Kind::Array(elem), Value::Array(items)) => Value::Array(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, item)| self.json(item, *elem, &join(path, &i.to_string())))
                    .collect(),
            ),
            (Kind::Object { .. }, Value::Object(map)) => {
                let children: Vec<(String, Node)> = map
                    .iter()
                    .map(|(k, v)| (k.clone(), Node::Lit(Lit::Json(v.clone()))))
                    .collect();
                self.object(&children, ty, path, "an object")
            }
            (Kind::Alternate(alts), _) => {
                let branch = alts
                    .iter()
                    .copied()
                    .find(|a| match (&schema.ty(*a).kind, v) {
                        (Kind::Scalar { json, .. }, _) => match json {
                            JsonType::Value => true,
                            JsonType::String => v.is_string(),
                            JsonType::Int => v.is_i64() || v.is_u64(),
                            JsonType::Number => v.is_number(),
                            JsonType::Boolean => v.is_boolean(),
                            JsonType::Null => v.is_null(),
                        },
                        (Kind::Enum(_), Value::String(_)) => true,
                        (Kind::Array(_), Value::Array(_)) => true,
                        (Kind::Object { .. }, Value::Object(_)) => true,
                        _ => false,
                    });
                match branch {
                    Some(b) => self.json(v, b, path),
                    None => {
                        self.wrong(path, ty, found_json(v), None);
                        v.clone()
                    }
                }
            }
            _ => {
                self.wrong(path, ty, found_json(v), None);
                v.clone()
            }
        }
    }

    /// Members given as dotted keys or as a JSON object.
    fn object(
        &mut self,
        children: &[(String, Node)],
        ty: TypeRef,
        path: &str,
        what: &str,
    ) -> Value {
        let schema = self.schema;
        match &schema.ty(ty).kind {
            Kind::Scalar {
                json: JsonType::Value,
                ..
            } => {
                return Value::Object(
                    children
                        .iter()
                        .map(|(k, n)| (k.clone(), untyped(n)))
                        .collect(),
                )
            }
            Kind::Array(elem) => {
                // `key.0=... key.1=...`: indices 0..n, each once.
                let mut items: Vec<(usize, &Node)> = Vec::new();
                for (k, n) in children {
                    match k.parse::<usize>() {
                        Ok(i) => items.push((i, n)),
                        Err(_) => {
                            self.wrong(
                                &join(path, k),
                                ty,
                                format!("member '{k}' of an array (use {path}.0, {path}.1, ...)"),
                                None,
                            );
                            return Value::Null;
                        }
                    }
                }
                items.sort_by_key(|(i, _)| *i);
                let mut out = Vec::new();
                for (want, (i, n)) in items.into_iter().enumerate() {
                    if i != want {
                        self.diags.push(Diag {
                            path: join(path, &want.to_string()),
                            kind: DiagKind::Conflict("array index missing".into()),
                        });
                        return Value::Null;
                    }
                    out.push(self.node(n, *elem, &join(path, &i.to_string())));
                }
                return Value::Array(out);
            }
            _ => {}
        }
        let Some(obj) = schema.object_of(ty) else {
            self.wrong(path, ty, what.to_owned(), None);
            return Value::Null;
        };
        let Kind::Object {
            members,
            tag,
            variants,
        } = &schema.ty(obj).kind
        else {
            return Value::Null;
        };
        let mut out = Map::new();
        // The discriminator decides which branch's members exist.
        let mut tag_value: Option<String> = None;
        let mut tag_ok = true;
        if let Some(tag) = tag {
            if let Some((_, n)) = children.iter().find(|(k, _)| k == tag) {
                let tag_ty = members.iter().find(|m| &m.name == tag).map(|m| m.ty);
                let before = self.diags.len();
                let v = match tag_ty {
                    Some(t) => self.node(n, t, &join(path, tag)),
                    None => untyped(n),
                };
                tag_ok = self.diags.len() == before;
                if let Value::String(s) = &v {
                    if variants.iter().any(|(c, _)| c == s) {
                        tag_value = Some(s.clone());
                    }
                }
                out.insert(tag.clone(), v);
            }
        }
        let known = if tag.is_some() && tag_value.is_none() {
            schema.members(obj, None)
        } else {
            schema.members(obj, tag_value.as_deref())
        };
        for (k, n) in children {
            if Some(k) == tag.as_ref() {
                continue;
            }
            let p = join(path, k);
            match known.iter().find(|m| &m.name == k) {
                Some(m) => {
                    if m.deprecated {
                        self.warnings.push(Diag {
                            path: p.clone(),
                            kind: DiagKind::Deprecated,
                        });
                    }
                    let v = self.node(n, m.ty, &p);
                    out.insert(k.clone(), v);
                }
                // With a bad discriminator the branch is unknown: no guessing.
                None if !tag_ok => {}
                // Extra properties of an open command (device_add): typed by look,
                // unless it is a same-length typo of a declared argument (`drvier`;
                // `drive` is a real property).
                None if self.open
                    && path.is_empty()
                    && !known.iter().any(|m| {
                        m.name.len() == k.len() && crate::suggest::distance(&m.name, k) <= 1
                    }) =>
                {
                    out.insert(k.clone(), untyped(n));
                }
                None => {
                    let names: Vec<&str> = known.iter().map(|m| m.name.as_str()).collect();
                    let suggestion = closest(k, names.iter().copied()).map(str::to_owned);
                    self.diags.push(Diag {
                        path: p,
                        kind: DiagKind::Unknown {
                            suggestion,
                            valid: names.iter().map(|s| (*s).to_owned()).collect(),
                        },
                    });
                }
            }
        }
        // Required members; a branch's only once the branch is known.
        let required = if tag_value.is_some() || tag.is_none() {
            known
        } else {
            members.iter().collect()
        };
        for m in required {
            if !m.optional && !children.iter().any(|(k, _)| k == &m.name) && tag_ok {
                self.diags.push(Diag {
                    path: join(path, &m.name),
                    kind: DiagKind::Missing {
                        expected: schema.describe(m.ty),
                    },
                });
            }
        }
        Value::Object(out)
    }
}

/// Builds the arguments of a statement into a request. With a schema the command must
/// exist and the arguments must fit its types; without one (`None`) values are typed
/// by their look. Returns every problem found, in argument order.
pub fn prepare(schema: Option<&Schema>, stmt: &Statement) -> Result<Option<Request>, Vec<Diag>> {
    let (name, args) = match stmt {
        Statement::Empty | Statement::Help(_) | Statement::Raw(_) => return Ok(None),
        Statement::Command { name, args } => (name.clone(), args.clone()),
        Statement::Transaction { actions, args } => {
            let mut all = Vec::new();
            if actions.is_empty() {
                all.push(Arg {
                    key: "actions".into(),
                    value: Lit::Json(Value::Array(Vec::new())),
                });
            }
            for (i, (action, action_args)) in actions.iter().enumerate() {
                all.push(Arg {
                    key: format!("actions.{i}.type"),
                    value: Lit::Text(action.clone()),
                });
                if action_args.is_empty() {
                    // Actions without arguments still carry an empty `data`.
                    all.push(Arg {
                        key: format!("actions.{i}.data"),
                        value: Lit::Json(Value::Object(Map::new())),
                    });
                    continue;
                }
                for a in action_args {
                    all.push(Arg {
                        key: format!("actions.{i}.data.{}", a.key),
                        value: a.value.clone(),
                    });
                }
            }
            all.extend(args.iter().cloned());
            ("transaction".to_owned(), all)
        }
    };
    prepare_command(schema, &name, &args).map(Some)
}

/// Types `args` for command `name` (see [`prepare`]).
pub fn prepare_command(
    schema: Option<&Schema>,
    name: &str,
    args: &[Arg],
) -> Result<Request, Vec<Diag>> {
    let mut diags = Vec::new();
    let tree = build_tree(args, &mut diags);
    let Some(schema) = schema else {
        if !diags.is_empty() {
            return Err(diags);
        }
        let args = (!tree.is_empty()).then(|| untyped(&Node::Object(tree)));
        return Ok(Request {
            name: name.to_owned(),
            args,
            warnings: Vec::new(),
        });
    };
    let Some(cmd) = schema.commands.get(name) else {
        return Err(vec![Diag {
            path: name.to_owned(),
            kind: DiagKind::UnknownCommand {
                suggestion: closest(name, schema.command_names()).map(str::to_owned),
            },
        }]);
    };
    let mut typer = Typer {
        schema,
        diags,
        warnings: Vec::new(),
        open: cmd.open_args,
    };
    if cmd.features.iter().any(|f| f == "deprecated") {
        typer.warnings.push(Diag {
            path: name.to_owned(),
            kind: DiagKind::Deprecated,
        });
    }
    let value = match cmd.args {
        Some(ty) => typer.object(&tree, ty, "", "arguments"),
        None => {
            for (k, _) in &tree {
                typer.diags.push(Diag {
                    path: k.clone(),
                    kind: DiagKind::Unknown {
                        suggestion: None,
                        valid: Vec::new(),
                    },
                });
            }
            Value::Object(Map::new())
        }
    };
    if !typer.diags.is_empty() {
        return Err(typer.diags);
    }
    let args = match value {
        Value::Object(m) if m.is_empty() && tree.is_empty() => None,
        v => Some(v),
    };
    Ok(Request {
        name: name.to_owned(),
        args,
        warnings: typer.warnings,
    })
}
