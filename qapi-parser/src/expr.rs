//! The expression checks (QEMU's `expr.py`): shape, keys, names, `if` and features
//! of every definition, turning raw values into typed [`Expr`]s.
//!
//! Each definition is checked completely, in QEMU's order, before the next one; the
//! first problem found is returned.

use std::collections::HashSet;

use crate::ast::{get, Dict, InfoId, Infos, ParsedDoc, Text, Value};
use crate::diagnostic::{Error, Warning};
use crate::release::Rules;

/// Errors are boxed inside the checks: they are rare, and small results keep the
/// hot paths cheap.
pub(crate) type Res<T> = Result<T, Box<Error>>;
use crate::model::{CommandFlags, IfCond, Pragma};

/// How deep `if` conditions may nest before we refuse them (QEMU would hit Python's
/// recursion limit; we must not overflow the stack).
const MAX_IF_DEPTH: usize = 256;

/// A checked top-level expression in flattened order.
#[derive(Debug)]
pub(crate) struct Expr {
    pub info: InfoId,
    pub doc: Option<usize>,
    pub kind: ExprKind,
}

/// A type reference: `'T'` or `['T']`.
#[derive(Debug, Clone)]
pub(crate) enum TypeRef {
    Name(Text),
    Array(Text),
}

/// A feature as written.
#[derive(Debug)]
pub(crate) struct FeatureDef {
    pub name: String,
    pub ifcond: Option<IfCond>,
}

/// An object member as written (`*` stripped into `optional`).
#[derive(Debug)]
pub(crate) struct MemberDef {
    pub name: String,
    pub optional: bool,
    pub ty: TypeRef,
    pub ifcond: Option<IfCond>,
    pub features: Vec<FeatureDef>,
}

/// A union or alternate branch as written.
#[derive(Debug)]
pub(crate) struct BranchDef {
    pub name: String,
    pub ty: TypeRef,
    pub ifcond: Option<IfCond>,
}

/// An enum value as written.
#[derive(Debug)]
pub(crate) struct EnumValueDef {
    pub name: String,
    pub ifcond: Option<IfCond>,
    pub features: Vec<FeatureDef>,
}

/// `data` (commands, events) or `base` (unions): a type name or inline members.
#[derive(Debug)]
pub(crate) enum Data {
    Name(String),
    Members(Vec<MemberDef>),
}

/// What a definition defines, plus what every definition has.
#[derive(Debug)]
pub(crate) struct Definition {
    pub name: String,
    pub ifcond: Option<IfCond>,
    pub features: Vec<FeatureDef>,
    pub body: DefBody,
}

/// The kind-specific part of a definition.
#[derive(Debug)]
pub(crate) enum DefBody {
    Enum {
        values: Vec<EnumValueDef>,
        prefix: Option<String>,
    },
    Struct {
        base: Option<String>,
        members: Vec<MemberDef>,
    },
    Union {
        base: Data,
        discriminator: String,
        branches: Vec<BranchDef>,
        /// A 5.2 simple union (no base, no discriminator).
        simple: bool,
    },
    Alternate {
        branches: Vec<BranchDef>,
    },
    Command {
        data: Option<Data>,
        returns: Option<TypeRef>,
        flags: CommandFlags,
    },
    Event {
        data: Option<Data>,
        boxed: bool,
    },
}

/// A checked expression: an include directive or a definition.
#[derive(Debug)]
pub(crate) enum ExprKind {
    /// The include path as the parser recorded it.
    Include(String),
    Definition(Definition),
}

/// Pragma lists as sets, for cheap membership tests.
pub(crate) struct PragmaSets<'a> {
    pub doc_required: bool,
    pub command_name_exceptions: HashSet<&'a str>,
    pub command_returns_exceptions: HashSet<&'a str>,
    pub documentation_exceptions: HashSet<&'a str>,
    pub member_name_exceptions: HashSet<&'a str>,
}

impl<'a> PragmaSets<'a> {
    pub fn new(p: &'a Pragma) -> Self {
        fn set(v: &[String]) -> HashSet<&str> {
            v.iter().map(String::as_str).collect()
        }
        PragmaSets {
            doc_required: p.doc_required,
            command_name_exceptions: set(&p.command_name_exceptions),
            command_returns_exceptions: set(&p.command_returns_exceptions),
            documentation_exceptions: set(&p.documentation_exceptions),
            member_name_exceptions: set(&p.member_name_exceptions),
        }
    }
}

/// What the doc checks of the expression phase need to know about a doc block.
pub(crate) trait DocFacts {
    /// The block's symbol.
    fn symbol(&self, doc: usize) -> Option<&str>;
    /// `Some(info)` of the block's `Returns:` section.
    fn returns(&self, doc: usize) -> Option<InfoId>;
    /// `Some(info)` of the block's `Errors:` section.
    fn errors(&self, doc: usize) -> Option<InfoId>;
}

impl DocFacts for [ParsedDoc] {
    fn symbol(&self, doc: usize) -> Option<&str> {
        self.get(doc)?.symbol.as_deref()
    }
    fn returns(&self, doc: usize) -> Option<InfoId> {
        let d = self.get(doc)?;
        d.sections
            .iter()
            .find(|s| s.kind == crate::model::SectionKind::Returns)
            .map(|s| s.info)
    }
    fn errors(&self, doc: usize) -> Option<InfoId> {
        let d = self.get(doc)?;
        d.sections
            .iter()
            .find(|s| s.kind == crate::model::SectionKind::Errors)
            .map(|s| s.info)
    }
}

const METAS: [&str; 6] = ["enum", "struct", "union", "alternate", "command", "event"];

/// Checks every expression in order (QEMU's `check_exprs`) and returns them typed.
///
/// Sets each definition info's `defn` context as QEMU does, so errors reported
/// later carry `In META 'NAME':`.
pub(crate) fn check_exprs(
    exprs: Vec<crate::ast::ParsedExpr>,
    infos: &mut Infos,
    pragma: &PragmaSets<'_>,
    docs: &(impl DocFacts + ?Sized),
    rules: Rules,
    warnings: &mut Vec<Warning>,
) -> Res<Vec<Expr>> {
    let mut out = Vec::with_capacity(exprs.len());
    for e in exprs {
        let info = e.info;
        let dict = e.expr;
        if let Some(include) = get(&dict, "include") {
            // The parser validated the directive and joined the path; stay total anyway.
            let Some(path) = include.as_str().map(str::to_string) else {
                return Err(Box::new(
                    infos.error(info, "value of 'include' must be a string"),
                ));
            };
            out.push(Expr {
                info,
                doc: e.doc,
                kind: ExprKind::Include(path),
            });
            continue;
        }
        let def = check_definition(dict, info, e.doc, infos, pragma, docs, rules, warnings)?;
        out.push(Expr {
            info,
            doc: e.doc,
            kind: ExprKind::Definition(def),
        });
    }
    Ok(out)
}

/// Removes `key` from `dict` and returns its value.
fn take(dict: &mut Dict, key: &str) -> Option<Value> {
    let pos = dict.iter().position(|(k, _)| k == key)?;
    Some(dict.remove(pos).1)
}

fn has(dict: &Dict, key: &str) -> bool {
    get(dict, key).is_some()
}

/// One definition, checked in QEMU's order.
#[allow(clippy::too_many_arguments)]
fn check_definition(
    mut dict: Dict,
    info: InfoId,
    doc: Option<usize>,
    infos: &mut Infos,
    pragma: &PragmaSets<'_>,
    docs: &(impl DocFacts + ?Sized),
    rules: Rules,
    warnings: &mut Vec<Warning>,
) -> Res<Definition> {
    let mut metas = METAS.iter().filter(|m| has(&dict, m));
    let meta = match (metas.next(), metas.next()) {
        (Some(m), None) => *m,
        _ => {
            return Err(Box::new(infos.error(
                info,
                "expression must have exactly one key 'enum', 'struct', 'union', \
                 'alternate', 'command', 'event'",
            )))
        }
    };
    // Take the name out (the key stays for the key checks).
    let name = match dict.iter_mut().find(|(k, _)| k == meta).map(|(_, v)| v) {
        Some(Value::Str(s, _)) => std::mem::take(s),
        _ => {
            return Err(Box::new(
                infos.error(info, format!("'{meta}' requires a string name")),
            ))
        }
    };
    infos.data[info.0 as usize].defn = Some((meta, name.to_string()));
    let c = Ctx { infos, info, rules };
    c.check_defn_name(&name, meta, pragma)?;

    match doc {
        Some(d) => {
            let symbol = docs.symbol(d);
            if symbol != Some(&*name) {
                return Err(c.err(format!(
                    "documentation comment is for '{}'",
                    symbol.unwrap_or("")
                )));
            }
            let returns = docs.returns(d);
            let errors = docs.errors(d);
            if meta == "command" {
                if let Some(r) = returns {
                    if !has(&dict, "returns") {
                        let e = c
                            .infos
                            .error(r, "'Returns' section, but command doesn't return anything");
                        // QEMU 7.2 documented "Returns: nothing" on such commands.
                        if !rules.legacy_docs {
                            return Err(Box::new(e));
                        }
                        warnings.push(Warning(e));
                    }
                }
            } else {
                if let Some(r) = returns {
                    return Err(Box::new(
                        c.infos
                            .error(r, "'Returns' section is only valid for commands"),
                    ));
                }
                if let Some(r) = errors {
                    return Err(Box::new(
                        c.infos
                            .error(r, "'Errors' section is only valid for commands"),
                    ));
                }
            }
        }
        None if pragma.doc_required => {
            return Err(c.err("documentation comment required"));
        }
        None => {}
    }

    let body = match meta {
        "enum" => {
            c.check_keys(
                &dict,
                Src::Text(meta),
                &["enum", "data"],
                &["if", "features", "prefix"],
            )?;
            c.check_enum(&mut dict, &name, pragma)?
        }
        "union" if c.takes_simple_union_path(&dict) => c.check_simple_union(&mut dict)?,
        "union" => {
            c.check_keys(
                &dict,
                Src::Text(meta),
                &["union", "base", "discriminator", "data"],
                &["if", "features"],
            )?;
            c.check_union(&mut dict, &name, pragma)?
        }
        "alternate" => {
            c.check_keys(
                &dict,
                Src::Text(meta),
                &["alternate", "data"],
                &["if", "features"],
            )?;
            c.check_alternate(&mut dict)?
        }
        "struct" => {
            c.check_keys(
                &dict,
                Src::Text(meta),
                &["struct", "data"],
                &["base", "if", "features"],
            )?;
            c.check_struct(&mut dict, &name, pragma)?
        }
        "command" => {
            c.check_keys(
                &dict,
                Src::Text(meta),
                &["command"],
                &[
                    "data",
                    "returns",
                    "boxed",
                    "if",
                    "features",
                    "gen",
                    "success-response",
                    "allow-oob",
                    "allow-preconfig",
                    "coroutine",
                ],
            )?;
            c.check_command(&mut dict)?
        }
        _ => {
            c.check_keys(
                &dict,
                Src::Text(meta),
                &["event"],
                &["data", "boxed", "if", "features"],
            )?;
            c.check_event(&mut dict)?
        }
    };
    let ifcond = c.check_if(take(&mut dict, "if"), Src::Text(meta))?;
    let features = c.check_features(take(&mut dict, "features"))?;
    c.check_flags(&dict)?;
    Ok(Definition {
        name: name.into_owned(),
        ifcond,
        features,
        body,
    })
}

/// What a checked name or value belongs to, as QEMU words it in messages; formatted
/// only when a message is actually made.
#[derive(Clone, Copy)]
enum Src<'a> {
    /// Plain text, e.g. `struct` or `'data'`.
    Text(&'a str),
    /// `<outer> member '<key>'`, e.g. `'data' member '*a'`.
    Member(&'a str, &'a str),
}

impl std::fmt::Display for Src<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Src::Text(t) => f.write_str(t),
            Src::Member(outer, key) => write!(f, "{outer} member '{key}'"),
        }
    }
}

/// Error context: the definition's info.
struct Ctx<'i> {
    infos: &'i Infos,
    info: InfoId,
    rules: Rules,
}

/// Splits a name into QEMU's `valid_name` parts and returns the stem, or `None` if
/// it is not a valid name.
fn name_stem(name: &str) -> Option<&str> {
    fn stem_ok(s: &str) -> bool {
        let b = s.as_bytes();
        !b.is_empty()
            && b[0].is_ascii_alphabetic()
            && b[1..]
                .iter()
                .all(|c| c.is_ascii_alphanumeric() || *c == b'_' || *c == b'-')
    }
    let mut rest = name;
    if let Some(r) = rest.strip_prefix("__") {
        let n = r
            .bytes()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == b'.' || *c == b'-')
            .count();
        if n > 0 && r.as_bytes().get(n) == Some(&b'_') {
            rest = &r[n + 1..];
        }
    }
    if rest.len() >= 2 && rest.as_bytes()[0].eq_ignore_ascii_case(&b'x') && &rest[1..2] == "-" {
        let after = &rest[2..];
        if stem_ok(after) {
            return Some(after);
        }
    }
    stem_ok(rest).then_some(rest)
}

/// QEMU's `c_name(name, protect=False)`: every character but ASCII letters, digits and
/// `_` becomes `_`.
pub(crate) fn c_name(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn c_name_starts_with(name: &str, prefix: &str) -> bool {
    let b = name.as_bytes();
    b.len() >= prefix.len()
        && prefix.bytes().zip(b).all(|(p, c)| {
            let c = if c.is_ascii_alphanumeric() || *c == b'_' {
                *c
            } else {
                b'_'
            };
            p == c
        })
}

impl Ctx<'_> {
    fn err(&self, msg: impl Into<String>) -> Box<Error> {
        Box::new(self.infos.error(self.info, msg))
    }

    fn check_name_str<'n>(&self, name: &'n str, source: Src<'_>) -> Res<&'n str> {
        match name_stem(name) {
            Some(stem) if !c_name_starts_with(name, "q_") => Ok(stem),
            _ => Err(self.err(format!("{source} has an invalid name"))),
        }
    }

    fn check_name_upper(&self, name: &str, source: Src<'_>) -> Res<()> {
        let stem = self.check_name_str(name, source)?;
        if stem.bytes().any(|c| c.is_ascii_lowercase() || c == b'-') {
            return Err(self.err(format!("name of {source} must not use lowercase or '-'")));
        }
        Ok(())
    }

    fn check_name_lower(
        &self,
        name: &str,
        source: Src<'_>,
        permit_upper: bool,
        permit_underscore: bool,
    ) -> Res<()> {
        if self.rules.case_only_names {
            return self.check_name_v5_2(name, source, permit_upper);
        }
        let stem = self.check_name_str(name, source)?;
        if (!permit_upper && stem.bytes().any(|c| c.is_ascii_uppercase()))
            || (!permit_underscore && stem.contains('_'))
        {
            return Err(self.err(format!("name of {source} must not use uppercase or '_'")));
        }
        Ok(())
    }

    fn check_name_camel(&self, name: &str, source: Src<'_>) -> Res<()> {
        let stem = self.check_name_str(name, source)?;
        let b = stem.as_bytes();
        let ok = b[0].is_ascii_uppercase()
            && b.iter().all(u8::is_ascii_alphanumeric)
            && b[1..].iter().any(u8::is_ascii_lowercase);
        if !ok {
            return Err(self.err(format!("name of {source} must use CamelCase")));
        }
        Ok(())
    }

    fn check_defn_name(&self, name: &str, meta: &str, pragma: &PragmaSets<'_>) -> Res<()> {
        match meta {
            _ if self.rules.case_only_names => self.check_defn_name_v5_2(name, meta),
            "event" => self.check_name_upper(name, Src::Text(meta)),
            "command" => self.check_name_lower(
                name,
                Src::Text(meta),
                false,
                pragma.command_name_exceptions.contains(name),
            ),
            _ => {
                self.check_name_camel(name, Src::Text(meta))?;
                if name.ends_with("List") {
                    return Err(self.err(format!("{meta} name should not end in 'List'")));
                }
                Ok(())
            }
        }
    }

    fn check_keys(
        &self,
        dict: &Dict,
        source: Src<'_>,
        required: &[&str],
        optional: &[&str],
    ) -> Res<()> {
        fn pprint(mut v: Vec<&str>) -> String {
            v.sort_unstable();
            v.iter()
                .map(|e| format!("'{e}'"))
                .collect::<Vec<_>>()
                .join(", ")
        }
        let missing: Vec<&str> = required.iter().copied().filter(|k| !has(dict, k)).collect();
        if !missing.is_empty() {
            let s = if missing.len() > 1 { "s" } else { "" };
            return Err(self.err(format!("{source} misses key{s} {}", pprint(missing))));
        }
        let unknown: Vec<&str> = dict
            .iter()
            .map(|(k, _)| &**k)
            .filter(|k| !required.contains(k) && !optional.contains(k))
            .collect();
        if !unknown.is_empty() {
            let s = if unknown.len() > 1 { "s" } else { "" };
            let allowed: Vec<&str> = required.iter().chain(optional).copied().collect();
            return Err(self.err(format!(
                "{source} has unknown key{s} {}\nValid keys are {}.",
                pprint(unknown),
                pprint(allowed)
            )));
        }
        Ok(())
    }

    fn check_flags(&self, dict: &Dict) -> Res<()> {
        for key in ["gen", "success-response"] {
            if let Some(v) = dict.iter().find(|(k, _)| k == key).map(|(_, v)| v) {
                if !matches!(v, Value::Bool(false, _)) {
                    return Err(self.err(format!("flag '{key}' may only use false value")));
                }
            }
        }
        for key in ["boxed", "allow-oob", "allow-preconfig", "coroutine"] {
            if let Some(v) = dict.iter().find(|(k, _)| k == key).map(|(_, v)| v) {
                if !matches!(v, Value::Bool(true, _)) {
                    return Err(self.err(format!("flag '{key}' may only use true value")));
                }
            }
        }
        if has(dict, "allow-oob") && has(dict, "coroutine") {
            return Err(self.err("flags 'allow-oob' and 'coroutine' are incompatible"));
        }
        Ok(())
    }

    /// QEMU's `check_if`; `None` when there is no `if`.
    fn check_if(&self, value: Option<Value>, source: Src<'_>) -> Res<Option<IfCond>> {
        match value {
            None => Ok(None),
            Some(v) if self.rules.c_if => self.check_c_if(v, source).map(Some),
            Some(v) => self.check_if_value(v, source, 0).map(Some),
        }
    }

    fn check_if_value(&self, v: Value, source: Src<'_>, depth: usize) -> Res<IfCond> {
        if depth > MAX_IF_DEPTH {
            return Err(self.err(format!("'if' condition of {source} is nested too deeply")));
        }
        match v {
            Value::Str(s, _) => {
                let b = s.as_bytes();
                let ok = !b.is_empty()
                    && b[0].is_ascii_uppercase()
                    && b.iter()
                        .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == b'_');
                if !ok {
                    return Err(self.err(format!(
                        "'if' condition '{s}' of {source} is not a valid identifier"
                    )));
                }
                Ok(IfCond::Name(s.into_owned()))
            }
            Value::Dict(mut d, _) => {
                self.check_keys(
                    &d,
                    Src::Text(&format!("'if' condition of {source}")),
                    &[],
                    &["all", "any", "not"],
                )?;
                if d.len() != 1 {
                    return Err(
                        self.err(format!("'if' condition of {source} has conflicting keys"))
                    );
                }
                let (k, operand) = d.pop().expect("one key");
                if k == "not" {
                    return Ok(IfCond::Not(Box::new(self.check_if_value(
                        operand,
                        source,
                        depth + 1,
                    )?)));
                }
                let Value::List(items, _) = operand else {
                    return Err(self.err(format!("'{k}' condition of {source} must be an array")));
                };
                if items.is_empty() {
                    return Err(self.err(format!("'if' condition [] of {source} is useless")));
                }
                let mut out = Vec::with_capacity(items.len());
                for it in items {
                    out.push(self.check_if_value(it, source, depth + 1)?);
                }
                Ok(if k == "all" {
                    IfCond::All(out)
                } else {
                    IfCond::Any(out)
                })
            }
            _ => Err(self.err(format!(
                "'if' condition of {source} must be a string or an object"
            ))),
        }
    }

    fn check_features(&self, value: Option<Value>) -> Res<Vec<FeatureDef>> {
        let Some(value) = value else {
            return Ok(Vec::new());
        };
        let Value::List(items, _) = value else {
            return Err(self.err("'features' must be an array"));
        };
        let mut out = Vec::with_capacity(items.len());
        for item in items {
            let source = "'features' member";
            let (name, ifv) = match item {
                Value::Dict(mut d, _) => {
                    self.check_keys(&d, Src::Text(source), &["name"], &["if"])?;
                    (take(&mut d, "name"), take(&mut d, "if"))
                }
                other => (Some(other), None),
            };
            let Some(Value::Str(name, _)) = name else {
                return Err(self.err(format!("{source} requires a string name")));
            };
            let source = Src::Member("'features'", &name);
            self.check_name_lower(&name, source, false, false)?;
            let ifcond = self.check_if(ifv, source)?;
            out.push(FeatureDef {
                name: name.into_owned(),
                ifcond,
            });
        }
        Ok(out)
    }

    fn check_enum(&self, dict: &mut Dict, name: &str, pragma: &PragmaSets<'_>) -> Res<DefBody> {
        let data = take(dict, "data");
        let Some(Value::List(items, _)) = data else {
            return Err(self.err("'data' must be an array"));
        };
        let prefix = match take(dict, "prefix") {
            None => None,
            Some(Value::Str(s, _)) => Some(s),
            Some(_) => return Err(self.err("'prefix' must be a string")),
        };
        let permissive = pragma.member_name_exceptions.contains(name);
        let mut values = Vec::with_capacity(items.len());
        for item in items {
            let source = "'data' member";
            let (vname, ifv, feats) = match item {
                Value::Dict(mut d, _) => {
                    self.check_keys(&d, Src::Text(source), &["name"], &["if", "features"])?;
                    (
                        take(&mut d, "name"),
                        take(&mut d, "if"),
                        take(&mut d, "features"),
                    )
                }
                other => (Some(other), None, None),
            };
            let Some(Value::Str(vname, _)) = vname else {
                return Err(self.err(format!("{source} requires a string name")));
            };
            let source = Src::Member("'data'", &vname);
            // Enum values may start with a digit: QEMU hides it behind a 'd'.
            // (QEMU crashes on an empty value; it is simply an invalid name here.)
            if vname.as_bytes().first().is_some_and(u8::is_ascii_digit) {
                let hidden = format!("d{vname}");
                self.check_name_lower(&hidden, source, permissive, permissive)?;
            } else {
                self.check_name_lower(&vname, source, permissive, permissive)?;
            }
            let ifcond = self.check_if(ifv, source)?;
            let features = self.check_features(feats)?;
            values.push(EnumValueDef {
                name: vname.into_owned(),
                ifcond,
                features,
            });
        }
        Ok(DefBody::Enum {
            values,
            prefix: prefix.map(Text::into_owned),
        })
    }

    /// `check_type_name_or_array`, producing the reference.
    fn type_name_or_array(&self, v: Value, source: Src<'_>) -> Res<TypeRef> {
        match v {
            Value::Str(s, _) => Ok(TypeRef::Name(s)),
            Value::List(mut items, _) => {
                if items.len() == 1 {
                    if let Some(Value::Str(s, _)) = items.pop() {
                        return Ok(TypeRef::Array(s));
                    }
                }
                Err(self.err(format!(
                    "{source}: array type must contain single type name"
                )))
            }
            other => Err(self.type_error(&other, source, "a type name or array")),
        }
    }

    /// `check_type_implicit` for a dict value: the members of an implicit struct.
    fn implicit_members(
        &self,
        value: Value,
        source: &str,
        permissive: bool,
    ) -> Res<Vec<MemberDef>> {
        let Value::Dict(d, _) = value else {
            return Err(self.type_error(&value, source, "an object or type name"));
        };
        let mut out = Vec::with_capacity(d.len());
        for (mut key, arg) in d {
            let key_source = Src::Member(source, &key);
            let (name, optional) = match key.strip_prefix('*') {
                Some(n) => (n, true),
                None => (&*key, false),
            };
            self.check_name_lower(name, key_source, permissive, permissive)?;
            if name == "u" || c_name_starts_with(name, "has_") {
                return Err(self.err(format!("{key_source} uses reserved name")));
            }
            let (ty, ifv, feats) = match arg {
                Value::Dict(mut a, _) => {
                    self.check_keys(&a, key_source, &["type"], &["if", "features"])?;
                    (
                        take(&mut a, "type"),
                        take(&mut a, "if"),
                        take(&mut a, "features"),
                    )
                }
                other => (Some(other), None, None),
            };
            let ifcond = self.check_if(ifv, key_source)?;
            let features = self.check_features(feats)?;
            let ty = self.type_name_or_array(ty.expect("checked key"), key_source)?;
            if optional {
                key.to_mut().remove(0);
            }
            out.push(MemberDef {
                name: key.into_owned(),
                optional,
                ty,
                ifcond,
                features,
            });
        }
        Ok(out)
    }

    /// `check_type_name_or_implicit`.
    fn name_or_implicit(&self, value: Value, source: &str, permissive: bool) -> Res<Data> {
        match value {
            Value::Str(s, _) => Ok(Data::Name(s.into_owned())),
            other => Ok(Data::Members(
                self.implicit_members(other, source, permissive)?,
            )),
        }
    }

    fn check_struct(&self, dict: &mut Dict, name: &str, pragma: &PragmaSets<'_>) -> Res<DefBody> {
        let permissive = pragma.member_name_exceptions.contains(name);
        let data = take(dict, "data").expect("checked key");
        let members = self.implicit_members(data, "'data'", permissive)?;
        let base = match take(dict, "base") {
            None => None,
            Some(Value::Str(s, _)) => Some(s),
            Some(_) => return Err(self.err("'base' should be a type name")),
        };
        Ok(DefBody::Struct {
            base: base.map(Text::into_owned),
            members,
        })
    }

    fn check_union(&self, dict: &mut Dict, name: &str, pragma: &PragmaSets<'_>) -> Res<DefBody> {
        let permissive = pragma.member_name_exceptions.contains(name);
        let base = take(dict, "base").expect("checked key");
        let base = self.name_or_implicit(base, "'base'", permissive)?;
        let discriminator = match take(dict, "discriminator") {
            Some(Value::Str(s, _)) => s,
            _ => return Err(self.err("'discriminator' requires a string name")),
        };
        let Some(Value::Dict(data, _)) = take(dict, "data") else {
            return Err(self.err("'data' must be an object"));
        };
        let mut branches = Vec::with_capacity(data.len());
        for (key, value) in data {
            let source = Src::Member("'data'", &key);
            let (ty, ifv) = self.branch_parts(value, source)?;
            let ifcond = self.check_if(ifv, source)?;
            let ty = match ty {
                Value::Str(s, _) => TypeRef::Name(s),
                v => return Err(self.type_error(&v, source, "a type name")),
            };
            branches.push(BranchDef {
                name: key.into_owned(),
                ty,
                ifcond,
            });
        }
        Ok(DefBody::Union {
            base,
            discriminator: discriminator.into_owned(),
            branches,
            simple: false,
        })
    }

    /// A branch value normalised to `{'type': ..., 'if': ...}` and key-checked.
    fn branch_parts(&self, value: Value, source: Src<'_>) -> Res<(Value, Option<Value>)> {
        match value {
            Value::Dict(mut d, _) => {
                self.check_keys(&d, source, &["type"], &["if"])?;
                let ty = take(&mut d, "type").expect("checked key");
                Ok((ty, take(&mut d, "if")))
            }
            other => Ok((other, None)),
        }
    }

    fn check_alternate(&self, dict: &mut Dict) -> Res<DefBody> {
        let data = take(dict, "data").expect("checked key");
        let empty = match &data {
            Value::Str(s, _) => s.is_empty(),
            Value::Bool(b, _) => !b,
            Value::List(l, _) => l.is_empty(),
            Value::Dict(d, _) => d.is_empty(),
        };
        if empty {
            return Err(self.err("'data' must not be empty"));
        }
        let Value::Dict(data, _) = data else {
            return Err(self.err("'data' must be an object"));
        };
        let mut branches = Vec::with_capacity(data.len());
        for (key, value) in data {
            let source = Src::Member("'data'", &key);
            self.check_name_lower(&key, source, false, false)?;
            let (ty, ifv) = self.branch_parts(value, source)?;
            let ifcond = self.check_if(ifv, source)?;
            let ty = self.type_name_or_array(ty, source)?;
            branches.push(BranchDef {
                name: key.into_owned(),
                ty,
                ifcond,
            });
        }
        Ok(DefBody::Alternate { branches })
    }

    /// `data` of a command or event, with `boxed` as QEMU reads it (any truthy value).
    fn check_args(&self, dict: &mut Dict) -> Res<Option<Data>> {
        let boxed = dict
            .iter()
            .find(|(k, _)| k == "boxed")
            .is_some_and(|(_, v)| truthy(v));
        let args = take(dict, "data");
        if boxed {
            match args {
                None => Err(self.err("'boxed': true requires 'data'")),
                Some(Value::Str(s, _)) => Ok(Some(Data::Name(s.into_owned()))),
                Some(v) => Err(self.type_error(&v, "'data'", "a type name")),
            }
        } else {
            args.map(|a| self.name_or_implicit(a, "'data'", false))
                .transpose()
        }
    }

    fn check_command(&self, dict: &mut Dict) -> Res<DefBody> {
        let data = self.check_args(dict)?;
        let returns = take(dict, "returns")
            .map(|r| self.type_name_or_array(r, Src::Text("'returns'")))
            .transpose()?;
        let flag = |k: &str, default: bool| match dict.iter().find(|(key, _)| key == k) {
            Some((_, Value::Bool(b, _))) => *b,
            Some(_) => !default,
            None => default,
        };
        Ok(DefBody::Command {
            data,
            returns,
            flags: CommandFlags {
                boxed: flag("boxed", false),
                gen: flag("gen", true),
                success_response: flag("success-response", true),
                allow_oob: flag("allow-oob", false),
                allow_preconfig: flag("allow-preconfig", false),
                coroutine: flag("coroutine", false),
            },
        })
    }

    fn check_event(&self, dict: &mut Dict) -> Res<DefBody> {
        let data = self.check_args(dict)?;
        let boxed = matches!(
            dict.iter().find(|(k, _)| k == "boxed"),
            Some((_, Value::Bool(true, _)))
        );
        Ok(DefBody::Event { data, boxed })
    }
}

/// Python truthiness of a value.
fn truthy(v: &Value) -> bool {
    match v {
        Value::Str(s, _) => !s.is_empty(),
        Value::Bool(b, _) => *b,
        Value::List(l, _) => !l.is_empty(),
        Value::Dict(d, _) => !d.is_empty(),
    }
}

mod v5_2;

#[cfg(test)]
mod tests;
