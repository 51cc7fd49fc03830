//! Tab completion from the schema: command names, argument names (dotted, nested, the
//! branch of a union once its discriminator is typed) and enum or boolean values.

use crate::schema::{JsonType, Kind, Schema, TypeRef};
use crate::syntax::tokenize;

/// What to put in place of the text from `start` to the cursor.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Completion {
    /// Byte offset in the line where the replaced word starts.
    pub start: usize,
    /// Replacements for that word, sorted.
    pub candidates: Vec<String>,
}

/// Words that are not commands but that the shell understands.
const BUILTINS: [&str; 2] = ["help", "quit"];

/// Completes `line` at byte offset `pos`. `pending` holds earlier lines of an
/// unfinished statement (a multi-line transaction), or is empty.
pub fn complete(schema: &Schema, pending: &str, line: &str, pos: usize) -> Completion {
    let pos = pos.min(line.len());
    if !line.is_char_boundary(pos) {
        return Completion::default();
    }
    let mut text = String::with_capacity(pending.len() + pos + 1);
    if !pending.is_empty() {
        text.push_str(pending);
        text.push('\n');
    }
    let offset = text.len();
    text.push_str(&line[..pos]);
    let (tokens, open) = tokenize(&text);
    if open {
        return Completion::default();
    }
    // The word under the cursor, unless the cursor follows a separator.
    let at_fresh_word = text.ends_with(char::is_whitespace)
        || tokens
            .last()
            .is_none_or(|t| matches!(t.text.as_str(), "(" | ";" | ")"));
    let (words, partial, start) = if at_fresh_word {
        (&tokens[..], "", text.len())
    } else {
        let (last, rest) = tokens.split_last().expect("not fresh, so not empty");
        (rest, last.text.as_str(), last.start)
    };
    if start < offset {
        return Completion::default();
    }
    let mut c = candidates(schema, words, partial);
    c.sort();
    c.dedup();
    Completion {
        start: start - offset,
        candidates: c,
    }
}

fn candidates(schema: &Schema, words: &[crate::syntax::Token], partial: &str) -> Vec<String> {
    let words: Vec<&str> = words.iter().map(|t| t.text.as_str()).collect();
    match words.as_slice() {
        [] if partial.starts_with('{') => Vec::new(),
        [] => schema
            .command_names()
            .chain(BUILTINS)
            .filter(|n| n.starts_with(partial))
            .map(str::to_owned)
            .collect(),
        ["help" | "?"] => schema
            .command_names()
            .filter(|n| n.starts_with(partial))
            .map(str::to_owned)
            .collect(),
        ["help" | "?", ..] => Vec::new(),
        ["transaction", "(", rest @ ..] => transaction(schema, rest, partial),
        [cmd, rest @ ..] => match schema.commands.get(*cmd) {
            Some(info) => match info.args {
                Some(ty) => args(schema, ty, rest, partial),
                None => Vec::new(),
            },
            None => Vec::new(),
        },
    }
}

fn transaction(schema: &Schema, rest: &[&str], partial: &str) -> Vec<String> {
    let Some(arg_ty) = schema.commands.get("transaction").and_then(|c| c.args) else {
        return Vec::new();
    };
    if let Some(close) = rest.iter().position(|w| *w == ")") {
        return args(schema, arg_ty, &rest[close + 1..], partial);
    }
    // The action union: `actions` is an array of objects tagged by `type`.
    let action_ty = schema
        .members(arg_ty, None)
        .into_iter()
        .find(|m| m.name == "actions")
        .and_then(|m| match &schema.ty(m.ty).kind {
            Kind::Array(e) => Some(*e),
            _ => None,
        });
    let Some(Kind::Object { variants, .. }) = action_ty.map(|t| &schema.ty(t).kind) else {
        return Vec::new();
    };
    let group_start = rest
        .iter()
        .rposition(|w| *w == ";")
        .map(|p| p + 1)
        .unwrap_or(0);
    let group = &rest[group_start..];
    match group.split_first() {
        None => variants
            .iter()
            .map(|(case, _)| case.as_str())
            .filter(|c| c.starts_with(partial))
            .map(str::to_owned)
            .collect(),
        Some((action, given)) => {
            let Some((_, branch)) = variants.iter().find(|(c, _)| c == action) else {
                return Vec::new();
            };
            // Each branch wraps the action's arguments in its `data` member.
            match schema
                .members(*branch, None)
                .into_iter()
                .find(|m| m.name == "data")
            {
                Some(data) => args(schema, data.ty, given, partial),
                None => Vec::new(),
            }
        }
    }
}

/// The given `key=value` words as (key, value text).
fn given_pairs<'a>(given: &[&'a str]) -> Vec<(&'a str, &'a str)> {
    given.iter().filter_map(|w| w.split_once('=')).collect()
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

/// The type at dotted `path` below `root`, choosing union branches by the
/// discriminator values among `given`.
fn resolve(schema: &Schema, root: TypeRef, path: &str, given: &[(&str, &str)]) -> Option<TypeRef> {
    let mut cur = root;
    let mut at = String::new();
    if path.is_empty() {
        return Some(cur);
    }
    for seg in path.split('.') {
        if let Kind::Array(e) = &schema.ty(cur).kind {
            seg.parse::<usize>().ok()?;
            cur = *e;
        } else {
            let obj = schema.object_of(cur)?;
            let tag = tag_value(schema, obj, &at, given);
            cur = schema
                .members(obj, tag)
                .into_iter()
                .find(|m| m.name == seg)?
                .ty;
        }
        at = join(&at, seg);
    }
    Some(cur)
}

fn tag_value<'a>(
    schema: &Schema,
    obj: TypeRef,
    at: &str,
    given: &[(&str, &'a str)],
) -> Option<&'a str> {
    let Kind::Object {
        tag: Some(tag),
        variants,
        ..
    } = &schema.ty(obj).kind
    else {
        return None;
    };
    let key = join(at, tag);
    given
        .iter()
        .find(|(k, _)| *k == key)
        .map(|(_, v)| *v)
        .filter(|v| variants.iter().any(|(c, _)| c == v))
}

fn args(schema: &Schema, root: TypeRef, given: &[&str], partial: &str) -> Vec<String> {
    let given = given_pairs(given);
    if let Some((key, value)) = partial.split_once('=') {
        let Some(ty) = resolve(schema, root, key, &given) else {
            return Vec::new();
        };
        return values(schema, ty)
            .into_iter()
            .filter(|v| v.starts_with(value))
            .map(|v| format!("{key}={v}"))
            .collect();
    }
    let (prefix, word) = match partial.rsplit_once('.') {
        Some((p, w)) => (p, w),
        None => ("", partial),
    };
    let Some(ty) = resolve(schema, root, prefix, &given) else {
        return Vec::new();
    };
    let Some(obj) = schema.object_of(ty) else {
        return Vec::new();
    };
    let tag = tag_value(schema, obj, prefix, &given);
    let is_union = matches!(&schema.ty(obj).kind, Kind::Object { tag: Some(_), .. });
    // A union without its discriminator: Tab on nothing offers the common members
    // (the discriminator among them); a started word searches every branch.
    let members = if is_union && tag.is_none() && word.is_empty() {
        schema.members(obj, Some(""))
    } else {
        schema.members(obj, tag)
    };
    let mut out = Vec::new();
    for m in members {
        if !m.name.starts_with(word) {
            continue;
        }
        let full = join(prefix, &m.name);
        if given.iter().any(|(k, _)| *k == full) {
            continue;
        }
        let (scalar, object) = shape(schema, m.ty);
        if scalar {
            out.push(format!("{full}="));
        }
        if object {
            out.push(format!("{full}."));
        }
    }
    out
}

/// Whether a member is written `key=value` and/or `key.member=...`.
fn shape(schema: &Schema, ty: TypeRef) -> (bool, bool) {
    match &schema.ty(ty).kind {
        Kind::Object { .. } => (false, true),
        Kind::Alternate(alts) => {
            let object = alts
                .iter()
                .any(|a| matches!(schema.ty(*a).kind, Kind::Object { .. }));
            let scalar = alts
                .iter()
                .any(|a| !matches!(schema.ty(*a).kind, Kind::Object { .. }));
            (scalar, object)
        }
        _ => (true, false),
    }
}

/// The values worth offering for a type: enum values, booleans, `null`.
fn values(schema: &Schema, ty: TypeRef) -> Vec<String> {
    match &schema.ty(ty).kind {
        Kind::Enum(v) => v.clone(),
        Kind::Scalar {
            json: JsonType::Boolean,
            ..
        } => vec!["false".into(), "true".into()],
        Kind::Scalar {
            json: JsonType::Null,
            ..
        } => vec!["null".into()],
        Kind::Alternate(alts) => alts.iter().flat_map(|a| values(schema, *a)).collect(),
        _ => Vec::new(),
    }
}
