//! What the connected QEMU has, from its own `query-qmp-schema`: commands, events and
//! the arguments of each command. Decoded with serde into a small private model of
//! QEMU's `SchemaInfo` list, so the transport needs no generated code.
//!
//! The reply is a list of entities, each with a `name` and a `meta-type` (`command`,
//! `event`, `object`, `enum`, `array`, `alternate`, `builtin`). A command's arguments
//! are the members of the object its `arg-type` names (a masked number such as `"42"`)
//! plus, for a union, the members of every variant's object, recursively.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;

use serde::de::IgnoredAny;
use serde::{Deserialize, Deserializer};

/// The introspection command whose reply a [`ServerSchema`] is made from.
pub(crate) const COMMAND: &str = "query-qmp-schema";

/// The commands, events and command arguments a QEMU reported in its
/// `query-qmp-schema`. [`Qmp::schema`](super::Qmp::schema) fetches it once per
/// connection; [`ServerSchema::from_json`] reads a saved reply.
#[derive(Clone, Default)]
pub struct ServerSchema {
    /// Command name -> the name of its `arg-type` object.
    commands: BTreeMap<String, String>,
    /// Event name -> the name of its `arg-type` object, if any.
    events: BTreeMap<String, Option<String>>,
    /// Object type name (masked) -> its members and variant types.
    objects: HashMap<String, Object>,
}

/// One argument of a command, as [`ServerSchema::arguments`] lists it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Argument {
    /// The wire name, e.g. `compat-props`.
    pub name: String,
    /// Whether the command can be sent without it: an optional member, or a member of
    /// only some of a union's variants.
    pub optional: bool,
}

#[derive(Clone, Default)]
struct Object {
    members: Vec<Member>,
    variants: Vec<String>,
}

#[derive(Clone)]
struct Member {
    name: String,
    optional: bool,
}

/// One `SchemaInfo` entity: only what is needed here, everything else ignored.
#[derive(Deserialize)]
struct EntityWire {
    name: String,
    #[serde(rename = "meta-type")]
    meta_type: String,
    #[serde(rename = "arg-type", default)]
    arg_type: Option<String>,
    #[serde(default)]
    members: Vec<MemberWire>,
    #[serde(default)]
    variants: Vec<VariantWire>,
}

/// A member of an object, an enum (also `name` only) or an alternate (`type` only).
#[derive(Deserialize)]
struct MemberWire {
    #[serde(default)]
    name: Option<String>,
    /// `default` is present (always `null` today) exactly when the member is optional.
    #[serde(default, deserialize_with = "present")]
    default: bool,
}

#[derive(Deserialize)]
struct VariantWire {
    #[serde(rename = "type")]
    ty: String,
}

/// True whenever the member is present, whatever its value (even `null`).
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    IgnoredAny::deserialize(d).map(|_| true)
}

impl ServerSchema {
    /// Reads the JSON text of a `query-qmp-schema` reply's `return` member (a list of
    /// `SchemaInfo` objects).
    ///
    /// # Examples
    ///
    /// ```
    /// use qmp_client::ServerSchema;
    /// let schema = ServerSchema::from_json(r#"[
    ///     {"name": "query-status", "meta-type": "command", "arg-type": "0", "ret-type": "1"},
    ///     {"name": "STOP", "meta-type": "event", "arg-type": "0"},
    ///     {"name": "0", "meta-type": "object", "members": []}
    /// ]"#)?;
    /// assert!(schema.has_command("query-status"));
    /// assert!(schema.has_event("STOP"));
    /// # Ok::<(), serde_json::Error>(())
    /// ```
    pub fn from_json(json: &str) -> Result<ServerSchema, serde_json::Error> {
        let entities: Vec<EntityWire> = serde_json::from_str(json)?;
        let mut schema = ServerSchema::default();
        for e in entities {
            match e.meta_type.as_str() {
                "command" => {
                    schema
                        .commands
                        .insert(e.name, e.arg_type.unwrap_or_default());
                }
                "event" => {
                    schema.events.insert(e.name, e.arg_type);
                }
                "object" => {
                    let object = Object {
                        members: e
                            .members
                            .into_iter()
                            .filter_map(|m| {
                                Some(Member {
                                    name: m.name?,
                                    optional: m.default,
                                })
                            })
                            .collect(),
                        variants: e.variants.into_iter().map(|v| v.ty).collect(),
                    };
                    schema.objects.insert(e.name, object);
                }
                // Enums, arrays, alternates, builtins and meta-types a newer QEMU
                // may add say nothing about commands' argument names.
                _ => {}
            }
        }
        Ok(schema)
    }

    /// Whether the server has the command `name` (e.g. `blockdev-reopen`).
    ///
    /// # Examples
    ///
    /// ```
    /// # let schema = qmp_client::ServerSchema::from_json(
    /// #     r#"[{"name": "query-status", "meta-type": "command", "arg-type": "0"}]"#).unwrap();
    /// assert!(schema.has_command("query-status"));
    /// assert!(!schema.has_command("query-nothing"));
    /// ```
    pub fn has_command(&self, name: &str) -> bool {
        self.commands.contains_key(name)
    }

    /// Whether the server can emit the event `name` (e.g. `DEVICE_DELETED`).
    ///
    /// # Examples
    ///
    /// ```
    /// # let schema = qmp_client::ServerSchema::from_json(
    /// #     r#"[{"name": "STOP", "meta-type": "event", "arg-type": "0"}]"#).unwrap();
    /// assert!(schema.has_event("STOP"));
    /// assert!(!schema.has_event("stop"));
    /// ```
    pub fn has_event(&self, name: &str) -> bool {
        self.events.contains_key(name)
    }

    /// Whether the command `command` takes the argument `argument` (a top-level
    /// member of its arguments, in any variant of a union); false when the command
    /// itself is missing.
    ///
    /// # Examples
    ///
    /// ```
    /// # let schema = qmp_client::ServerSchema::from_json(r#"[
    /// #     {"name": "query-machines", "meta-type": "command", "arg-type": "7"},
    /// #     {"name": "7", "meta-type": "object", "members": [{"name": "compat-props", "type": "bool", "default": null}]}
    /// # ]"#).unwrap();
    /// assert!(schema.has_argument("query-machines", "compat-props"));
    /// assert!(!schema.has_argument("query-machines", "props"));
    /// assert!(!schema.has_argument("query-nothing", "compat-props"));
    /// ```
    pub fn has_argument(&self, command: &str, argument: &str) -> bool {
        let Some(arg_type) = self.commands.get(command) else {
            return false;
        };
        let mut found = false;
        self.walk(arg_type, false, &mut BTreeSet::new(), &mut |m, _| {
            found |= m.name == argument;
        });
        found
    }

    /// The arguments of `command`, sorted by name (`None` when the command is missing).
    /// A member of a union's variant is listed once, as optional (no single request
    /// needs it).
    ///
    /// # Examples
    ///
    /// ```
    /// use qmp_client::Argument;
    /// # let schema = qmp_client::ServerSchema::from_json(r#"[
    /// #     {"name": "device_del", "meta-type": "command", "arg-type": "3"},
    /// #     {"name": "3", "meta-type": "object", "members": [{"name": "id", "type": "str"}]}
    /// # ]"#).unwrap();
    /// let args = schema.arguments("device_del").unwrap();
    /// assert_eq!(args, [Argument { name: "id".into(), optional: false }]);
    /// // Commands that need no argument (all optional, or none at all):
    /// let no_args = schema.commands().filter(|c| {
    ///     schema.arguments(c).is_some_and(|a| a.iter().all(|a| a.optional))
    /// });
    /// assert_eq!(no_args.count(), 0);
    /// ```
    pub fn arguments(&self, command: &str) -> Option<Vec<Argument>> {
        let arg_type = self.commands.get(command)?;
        let mut found: BTreeMap<String, bool> = BTreeMap::new();
        self.walk(
            arg_type,
            false,
            &mut BTreeSet::new(),
            &mut |m, in_variant| {
                let optional = m.optional || in_variant;
                found
                    .entry(m.name.clone())
                    .and_modify(|o| *o &= optional)
                    .or_insert(optional);
            },
        );
        Some(
            found
                .into_iter()
                .map(|(name, optional)| Argument { name, optional })
                .collect(),
        )
    }

    /// Every command's name, sorted.
    pub fn commands(&self) -> impl Iterator<Item = &str> {
        self.commands.keys().map(String::as_str)
    }

    /// Every event's name, sorted.
    pub fn events(&self) -> impl Iterator<Item = &str> {
        self.events.keys().map(String::as_str)
    }

    /// Calls `f` on every member of the object `ty` and of its variants' objects
    /// (`in_variant` true for those), once per object.
    fn walk<'a>(
        &'a self,
        ty: &'a str,
        in_variant: bool,
        seen: &mut BTreeSet<&'a str>,
        f: &mut dyn FnMut(&'a Member, bool),
    ) {
        if !seen.insert(ty) {
            return;
        }
        let Some(object) = self.objects.get(ty) else {
            return;
        };
        for m in &object.members {
            f(m, in_variant);
        }
        for v in &object.variants {
            self.walk(v, true, seen, f);
        }
    }
}

impl fmt::Debug for ServerSchema {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerSchema")
            .field("commands", &self.commands.len())
            .field("events", &self.events.len())
            .field("objects", &self.objects.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A flat union shaped like `blockdev-add`'s (boxed `BlockdevOptions`), with a
    /// nested union in one branch.
    const UNION: &str = r#"[
        {"name": "blockdev-add", "meta-type": "command", "arg-type": "10", "ret-type": "0"},
        {"name": "10", "meta-type": "object", "tag": "driver",
         "members": [{"name": "driver", "type": "int"}, {"name": "node-name", "type": "str", "default": null}],
         "variants": [{"case": "file", "type": "11"}, {"case": "qcow2", "type": "12"}, {"case": "null-co", "type": "0"}]},
        {"name": "11", "meta-type": "object", "members": [{"name": "filename", "type": "str"}]},
        {"name": "12", "meta-type": "object", "members": [{"name": "file", "type": "str"}],
         "tag": "file", "variants": [{"case": "x", "type": "13"}]},
        {"name": "13", "meta-type": "object", "members": [{"name": "discard-no-unref", "type": "bool", "default": null}]},
        {"name": "0", "meta-type": "object", "members": []},
        {"name": "int", "meta-type": "builtin", "json-type": "int"},
        {"name": "SHUTDOWN", "meta-type": "event", "arg-type": "0"},
        {"name": "X", "meta-type": "something-new", "whatever": [1]},
        {"name": "14", "meta-type": "alternate", "members": [{"type": "str"}, {"type": "0"}]},
        {"name": "15", "meta-type": "enum", "members": [{"name": "a"}], "values": ["a"]}
    ]"#;

    #[test]
    fn arguments_include_every_variants_members() {
        let s = ServerSchema::from_json(UNION).unwrap();
        for arg in [
            "driver",
            "node-name",
            "filename",
            "file",
            "discard-no-unref",
        ] {
            assert!(s.has_argument("blockdev-add", arg), "{arg}");
        }
        assert!(!s.has_argument("blockdev-add", "case"));
        assert!(!s.has_argument("blockdev-del", "node-name"));
        let args = s.arguments("blockdev-add").unwrap();
        let required: Vec<&str> = args
            .iter()
            .filter(|a| !a.optional)
            .map(|a| a.name.as_str())
            .collect();
        assert_eq!(required, ["driver"]);
        assert_eq!(args.len(), 5);
        assert!(s.has_event("SHUTDOWN") && !s.has_event("blockdev-add"));
        assert_eq!(s.commands().collect::<Vec<_>>(), ["blockdev-add"]);
    }

    #[test]
    fn malformed_replies_fail() {
        assert!(ServerSchema::from_json("{}").is_err());
        assert!(ServerSchema::from_json(r#"[{"name": "x"}]"#).is_err());
    }
}
