//! QEMU 5.2's expression rules where they differ from 10.0's (see [`crate::release::Rules`]):
//! simple unions, `if` conditions that are C expressions, and names checked for case only.

use super::{has, take, BranchDef, Ctx, Data, DefBody, Res, Src};
use crate::ast::{Dict, Value};
use crate::model::IfCond;

impl Ctx<'_> {
    /// Whether a union is checked by [`Self::check_simple_union`]: under 5.2's rules, one
    /// without `discriminator` or without `base`.
    pub(super) fn takes_simple_union_path(&self, dict: &Dict) -> bool {
        self.rules.simple_unions && !(has(dict, "discriminator") && has(dict, "base"))
    }

    /// 5.2's `check_union` for a union without `discriminator` (a simple union): each
    /// branch a type name or a one-element array; no `base`. A `discriminator` without
    /// `base` ends up here too, for 5.2's error.
    /// The schema phase desugars the result as 5.2 did (`schema::v5_2`).
    pub(super) fn check_simple_union(&self, dict: &mut Dict) -> Res<DefBody> {
        let keys = ["base", "discriminator", "if", "features"];
        self.check_keys(dict, Src::Text("union"), &["union", "data"], &keys)?;
        if take(dict, "base").is_some() {
            return Err(self.err("'base' requires 'discriminator'"));
        }
        if take(dict, "discriminator").is_some() {
            return Err(self.err("'discriminator' requires 'base'"));
        }
        let Some(Value::Dict(data, _)) = take(dict, "data") else {
            return Err(self.err("'data' must be an object"));
        };
        let mut branches = Vec::with_capacity(data.len());
        for (key, value) in data {
            let source = Src::Member("'data'", &key);
            self.check_name_v5_2(&key, source, false)?;
            let (ty, ifv) = self.branch_parts(value, source)?;
            let ifcond = self.check_if(ifv, source)?;
            let ty = self.type_name_or_array(ty, source)?;
            branches.push(BranchDef {
                name: key.into_owned(),
                ty,
                ifcond,
            });
        }
        Ok(DefBody::Union {
            base: Data::Members(Vec::new()),
            discriminator: String::new(),
            branches,
            simple: true,
        })
    }

    /// 5.2's `check_if`: a string that is not blank, or a non-empty list of them.
    pub(super) fn check_c_if(&self, v: Value, source: Src<'_>) -> Res<IfCond> {
        let one = |v: Value| match v {
            Value::Str(s, _) if s.trim().is_empty() => {
                Err(self.err(format!("'if' condition '{s}' of {source} makes no sense")))
            }
            Value::Str(s, _) => Ok(s.into_owned()),
            _ => Err(self.err(format!(
                "'if' condition of {source} must be a string or a list of strings"
            ))),
        };
        let names = match v {
            Value::List(items, _) if items.is_empty() => {
                return Err(self.err(format!("'if' condition [] of {source} is useless")))
            }
            Value::List(items, _) => items.into_iter().map(one).collect::<Res<_>>()?,
            other => vec![one(other)?],
        };
        Ok(crate::release::c_if_list(names))
    }

    /// 5.2's `check_name_str` beyond the shape: upper case only where permitted.
    pub(super) fn check_name_v5_2(&self, name: &str, source: Src<'_>, upper: bool) -> Res<()> {
        self.check_name_str(name, source)?;
        if !upper && name.bytes().any(|c| c.is_ascii_uppercase()) {
            return Err(self.err(format!("{source} uses uppercase in name")));
        }
        Ok(())
    }

    /// 5.2's `check_defn_name_str`.
    pub(super) fn check_defn_name_v5_2(&self, name: &str, meta: &str) -> Res<()> {
        self.check_name_str(name, Src::Text(meta))?;
        for tail in ["Kind", "List"] {
            if name.ends_with(tail) {
                return Err(self.err(format!("{meta} name should not end in '{tail}'")));
            }
        }
        Ok(())
    }

    /// The error for a type reference of the wrong shape: `{source} should be {want}` in
    /// 10.0's words. Up to 7.2, an array where none is allowed "cannot be an array", and
    /// what 10.0 calls "should be a type name or array" "should be a type name".
    pub(super) fn type_error(
        &self,
        value: &Value,
        source: impl std::fmt::Display,
        want: &str,
    ) -> Box<crate::Error> {
        if !self.rules.old_type_messages {
            self.err(format!("{source} should be {want}"))
        } else if want.ends_with(" or array") {
            self.err(format!("{source} should be a type name"))
        } else if matches!(value, Value::List(..)) {
            self.err(format!("{source} cannot be an array"))
        } else {
            self.err(format!("{source} should be {want}"))
        }
    }
}
