//! QEMU's cross references as intra-doc links: which generated item a reference
//! (`` `query-block` ``, `` `BlockInfo.device` ``, `@blockdev-add`) names, and the path
//! to it from the module whose docs are being written.

use super::Lower;
use crate::docs::{to_markdown_linked, to_note_linked};
use crate::names::{type_ident, Scope};
use qapi_parser::{EntityKind, TypeId};

/// The generated modules: the root (types), commands, events.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Site {
    Root,
    Commands,
    Events,
}

impl Lower<'_> {
    /// Names every command's and event's type in its module's scope.
    pub(super) fn name_data(&mut self) {
        let (mut commands, mut events) = (Scope::new(), Scope::new());
        for id in self.s.ids() {
            if !self.kept[id.0 as usize] {
                continue;
            }
            let e = self.ent(id);
            let scope = match e.kind {
                EntityKind::Command(_) => &mut commands,
                EntityKind::Event(_) => &mut events,
                _ => continue,
            };
            self.data_idents[id.0 as usize] = Some(scope.claim(type_ident(&e.name)));
        }
    }

    /// Where QEMU's cross reference `target` (a definition, or `Definition.member`)
    /// lands in the generated code, as an intra-doc link from the current module;
    /// `None` when nothing is generated for it (a code span then).
    fn link(&self, target: &str) -> Option<String> {
        // `@name`: QEMU's notation for a member of the definition at hand, and (before
        // 10.1's reStructuredText roles) for other definitions too.
        let target = match target.strip_prefix('@') {
            Some(name) if self.owner.get().is_some_and(|o| self.has_member(o, name)) => {
                return None
            }
            Some(name) => name,
            None => target.trim_start_matches(['~', '!']),
        };
        // A member reference links to its definition; downstream names may hold dots.
        let id = self.s.lookup(target).or_else(|| {
            let (definition, _member) = target.rsplit_once('.')?;
            self.s.lookup(definition)
        })?;
        let i = id.0 as usize;
        if !self.kept.get(i).copied().unwrap_or(false) {
            return None;
        }
        let (site, ident) = match self.ent(id).kind {
            EntityKind::Command(_) => (Site::Commands, self.data_idents[i].as_ref()?),
            EntityKind::Event(_) => (Site::Events, self.data_idents[i].as_ref()?),
            _ => (Site::Root, self.idents[i].as_ref()?),
        };
        let module = |s: Site| match s {
            Site::Root => String::new(),
            Site::Commands => format!("{}::", self.cfg.commands_module),
            Site::Events => format!("{}::", self.cfg.events_module),
        };
        let prefix = match (self.site.get(), site) {
            (from, to) if from == to => String::new(),
            (Site::Root, to) => module(to),
            (_, to) => format!("super::{}", module(to)),
        };
        Some(format!("{prefix}{ident}"))
    }

    /// Whether `name` is a member (field, value, branch) of definition `id`.
    fn has_member(&self, id: TypeId, name: &str) -> bool {
        match &self.ent(id).kind {
            EntityKind::Object(o) => {
                self.members_with_owner(id)
                    .iter()
                    .any(|(_, m)| m.name == name)
                    || o.variants
                        .as_ref()
                        .is_some_and(|v| v.variants.iter().any(|b| b.name == name))
            }
            EntityKind::Enum(e) => e.members.iter().any(|m| m.name == name),
            EntityKind::Alternate(a) => a.variants.iter().any(|v| v.name == name),
            EntityKind::Command(c) => c.arg_type.is_some_and(|a| self.has_member(a, name)),
            EntityKind::Event(e) => e.arg_type.is_some_and(|a| self.has_member(a, name)),
            _ => false,
        }
    }

    /// QEMU doc text as Markdown lines, cross references linked from the current module.
    pub(super) fn markdown(&self, text: &str) -> Vec<String> {
        to_markdown_linked(text, &|t| self.link(t))
    }

    /// QEMU doc text as one Markdown line (deprecation notes), linked likewise.
    pub(super) fn note(&self, text: &str) -> String {
        to_note_linked(text, &|t| self.link(t))
    }
}
