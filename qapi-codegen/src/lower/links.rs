//! QEMU's cross references resolved to rustdoc intra-doc links: where every generated
//! item, field and variant lives, named through `names` as lowering names them, and the
//! path to it from the module a doc text sits in.
//!
//! Paths are relative (`Type`, `super::Type`, `commands::Cmd`), so they resolve wherever
//! the generated file is included; a reference to nothing generated gets no link.

use crate::docs::Ref;
use crate::names::{claim_all, field_ident, link_path, type_ident};
use qapi_parser::{EntityKind, Schema, TypeId};

/// The module of the generated file an item sits in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Home {
    /// The file's root: the types and the dynamic enums.
    Root,
    /// The commands' module.
    Commands,
    /// The events' module.
    Events,
}

/// Where a doc text sits: its module, and the definition whose members `@name` means.
#[derive(Debug, Clone, Copy)]
pub(super) struct Here {
    pub home: Home,
    pub entity: TypeId,
}

/// What a link points at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A type, command or event, or a variant.
    Item,
    /// A struct field (`field@`: a field may share its name with a method, `new`).
    Field,
}

/// A link target: its module, the identifiers from there, and its kind.
#[derive(Debug, Clone)]
struct Place {
    home: Home,
    path: Vec<String>,
    kind: Kind,
}

/// A generated definition and what its members link to, by QAPI name.
#[derive(Debug, Clone)]
struct Target {
    place: Place,
    members: Vec<(String, Place)>,
}

/// Every generated definition's link target, by entity.
#[derive(Debug, Default)]
pub(super) struct Links {
    targets: Vec<Option<Target>>,
    commands: String,
    events: String,
}

/// The field identifiers of an object type's members, base members first, as its struct
/// or union names them.
pub(super) fn field_idents(s: &Schema, id: TypeId) -> Vec<String> {
    let members = crate::range::members_with_owner(s, id);
    claim_all(members.iter().map(|(_, m)| m.name.as_str()), field_ident).0
}

fn place(home: Home, path: &[&str], kind: Kind) -> Place {
    Place {
        home,
        path: path.iter().map(|p| (*p).to_owned()).collect(),
        kind,
    }
}

/// The variants of a root enum `owner` (an enum's values, an alternate's or a union's
/// branches), named as lowering names them.
fn variants<'n>(names: impl Iterator<Item = &'n String>, owner: &str) -> Vec<(String, Place)> {
    let names: Vec<&str> = names.map(String::as_str).collect();
    let (idents, _) = claim_all(names.iter().copied(), type_ident);
    let place = |v: &str| place(Home::Root, &[owner, v], Kind::Item);
    names
        .iter()
        .zip(&idents)
        .map(|(n, v)| ((*n).to_owned(), place(v)))
        .collect()
}

impl Links {
    /// The targets of the items lowering generates: `idents` are the items' identifiers
    /// (types at the root, commands and events in their modules), `branch_idents` the
    /// unions' branch enums'.
    pub(super) fn new(
        s: &Schema,
        idents: &[Option<String>],
        branch_idents: &[Option<String>],
        commands: &str,
        events: &str,
    ) -> Links {
        let mut targets: Vec<Option<Target>> = vec![None; idents.len()];
        // Types first: a command's or event's boxed data links into its type.
        for id in s.ids() {
            let i = id.0 as usize;
            let Some(ident) = &idents[i] else { continue };
            let item = place(Home::Root, &[ident], Kind::Item);
            let members = match &s.entity(id).kind {
                EntityKind::Enum(en) => variants(en.members.iter().map(|m| &m.name), ident),
                EntityKind::Alternate(a) => variants(a.variants.iter().map(|v| &v.name), ident),
                EntityKind::Object(o) => {
                    let mut members: Vec<(String, Place)> = crate::range::members_with_owner(s, id)
                        .iter()
                        .zip(field_idents(s, id))
                        .map(|((_, m), f)| {
                            (m.name.clone(), place(Home::Root, &[ident, &f], Kind::Field))
                        })
                        .collect();
                    if let (Some(vs), Some(b)) = (&o.variants, &branch_idents[i]) {
                        members.extend(variants(vs.variants.iter().map(|v| &v.name), b));
                        // A branch's members are the union's, documented on its page.
                        for v in &vs.variants {
                            for (_, m) in crate::range::members_with_owner(s, v.ty) {
                                members.push((m.name.clone(), item.clone()));
                            }
                        }
                    }
                    members
                }
                _ => continue,
            };
            targets[i] = Some(Target {
                place: item,
                members,
            });
        }
        for id in s.ids() {
            let i = id.0 as usize;
            let Some(ident) = &idents[i] else { continue };
            let (home, arg, boxed) = match &s.entity(id).kind {
                EntityKind::Command(c) => (Home::Commands, c.arg_type, c.flags.boxed),
                EntityKind::Event(e) => (Home::Events, e.arg_type, e.boxed),
                _ => continue,
            };
            let members = match arg {
                None => Vec::new(),
                // A newtype around its data type: the members are that type's.
                Some(a) if boxed || !matches!(s.entity(a).kind, EntityKind::Object(_)) => targets
                    [a.0 as usize]
                    .as_ref()
                    .map(|t| t.members.clone())
                    .unwrap_or_default(),
                Some(a) => crate::range::members_with_owner(s, a)
                    .iter()
                    .zip(field_idents(s, a))
                    .map(|((_, m), f)| (m.name.clone(), place(home, &[ident, &f], Kind::Field)))
                    .collect(),
            };
            targets[i] = Some(Target {
                place: place(home, &[ident], Kind::Item),
                members,
            });
        }
        Links {
            targets,
            commands: commands.to_owned(),
            events: events.to_owned(),
        }
    }

    /// The module an entity's item sits in (the root for what has none).
    pub(super) fn here(&self, entity: TypeId) -> Here {
        let home = self.target(entity).map_or(Home::Root, |t| t.place.home);
        Here { home, entity }
    }

    fn target(&self, id: TypeId) -> Option<&Target> {
        self.targets.get(id.0 as usize)?.as_ref()
    }

    fn member(&self, id: TypeId, name: &str) -> Option<&Place> {
        let t = self.target(id)?;
        // The first claim wins: a member before a branch of the same name.
        t.members.iter().find(|(n, _)| n == name).map(|(_, p)| p)
    }

    /// A definition `name`, or a member `Type.member` (QAPI names may hold dots, so each
    /// split is tried).
    fn definition(&self, s: &Schema, name: &str) -> Option<&Place> {
        if let Some(t) = s.lookup(name).and_then(|id| self.target(id)) {
            return Some(&t.place);
        }
        name.match_indices('.').find_map(|(i, _)| {
            let id = s.lookup(&name[..i])?;
            self.member(id, &name[i + 1..])
        })
    }

    /// The link destination of reference `r` in a doc text at `here`, if it names
    /// something generated.
    pub(super) fn resolve(&self, s: &Schema, here: Here, r: Ref<'_>) -> Option<String> {
        let place = match r {
            Ref::Member(name) => self
                .member(here.entity, name)
                .or_else(|| self.definition(s, name)),
            Ref::Definition(name) => self.definition(s, name),
        }?;
        let module = |m: Home| match m {
            Home::Root => "",
            Home::Commands => &self.commands,
            Home::Events => &self.events,
        };
        let mut path: Vec<&str> = match (here.home, place.home) {
            (a, b) if a == b => Vec::new(),
            (Home::Root, m) => vec![module(m)],
            (_, Home::Root) => vec!["super"],
            (_, m) => vec!["super", module(m)],
        };
        path.extend(place.path.iter().map(String::as_str));
        let path = link_path(path);
        Some(match place.kind {
            Kind::Item => path,
            Kind::Field => format!("field@{path}"),
        })
    }
}
