//! Doc blocks connected to definitions (QEMU's `QAPIDoc.connect_member`, `connect_feature`,
//! `check`): every member, value, branch and feature needs a description, and every
//! description must belong to something.

use super::*;

/// A `@name:` description of a doc block, and whether a schema member claimed it.
pub(super) struct ArgSec {
    pub(super) name: String,
    pub(super) info: InfoId,
    pub(super) connected: bool,
}

pub(super) struct DocState {
    pub(super) symbol: Option<String>,
    pub(super) info: InfoId,
    pub(super) args: Vec<ArgSec>,
    pub(super) features: Vec<ArgSec>,
}

impl DocState {
    /// Moves the description names (and the symbol) out of the raw block; they go
    /// back into the model in [`convert_doc`].
    pub(super) fn new(d: &mut ParsedDoc) -> Self {
        // Most blocks describe a few members: one allocation, no regrowth.
        let mut args = Vec::with_capacity(d.sections.len());
        let mut features = Vec::new();
        for s in &mut d.sections {
            let target = match s.kind {
                SectionKind::Member => &mut args,
                SectionKind::Feature => &mut features,
                _ => continue,
            };
            target.push(ArgSec {
                name: s.name.take().unwrap_or_default(),
                info: s.info,
                connected: false,
            });
        }
        DocState {
            symbol: d.symbol.take(),
            info: d.info,
            args,
            features,
        }
    }
}

impl Builder<'_> {
    /// QEMU's `QAPIDoc.check`: every description must belong to something.
    pub(super) fn check_docs(&mut self) -> Res<()> {
        for d in &self.docs {
            for (list, what) in [(&d.args, "member"), (&d.features, self.rules.feature_word)] {
                let mut bogus: Vec<&ArgSec> = list.iter().filter(|a| !a.connected).collect();
                if self.rules.legacy_docs {
                    // QEMU 7.2 read `@name :` (a space before the colon) as plain
                    // text, not as a description; tolerate what it never saw.
                    bogus.retain(|a| {
                        if !a.name.contains(char::is_whitespace) {
                            return true;
                        }
                        let msg = format!("documented {what} '{}' does not exist", a.name);
                        self.warnings.push(Warning(self.infos.error(a.info, msg)));
                        false
                    });
                }
                if let Some(first) = bogus.first() {
                    let names = bogus
                        .iter()
                        .map(|a| a.name.as_str())
                        .collect::<Vec<_>>()
                        .join("', '");
                    let (s, verb) = if bogus.len() > 1 {
                        ("s", "do")
                    } else {
                        ("", "does")
                    };
                    let at = if self.rules.doc_v5_2 {
                        d.info
                    } else {
                        first.info
                    };
                    return Err(Box::new(self.infos.error(
                        at,
                        format!("documented {what}{s} '{names}' {verb} not exist"),
                    )));
                }
            }
        }
        Ok(())
    }
}

/// What doc connection mutates, borrowed apart from the entities it reads.
pub(super) struct DocCtx<'a> {
    pub(super) docs: &'a mut [DocState],
    pub(super) warnings: &'a mut Vec<Warning>,
    pub(super) pragma: &'a PragmaSets<'a>,
    pub(super) infos: &'a Infos,
    pub(super) rules: Rules,
}

impl DocCtx<'_> {
    /// QEMU's `QAPIDoc.connect_member`.
    pub(super) fn connect_member(
        &mut self,
        doc: usize,
        name: &str,
        role: &str,
        info: Option<InfoId>,
    ) -> Res<()> {
        let d = &mut self.docs[doc];
        if let Some(a) = d.args.iter_mut().find(|a| a.name == name) {
            a.connected = true;
            return Ok(());
        }
        let excepted = d
            .symbol
            .as_deref()
            .is_some_and(|s| self.pragma.documentation_exceptions.contains(s));
        if !excepted {
            let e = self.infos.error(
                info.unwrap_or(InfoId(0)),
                format!("{role} '{name}' lacks documentation"),
            );
            // QEMU 7.2 did not require member documentation.
            if !self.rules.legacy_docs {
                return Err(Box::new(e));
            }
            self.warnings.push(Warning(e));
        }
        d.args.push(ArgSec {
            name: name.to_string(),
            info: d.info,
            connected: true,
        });
        Ok(())
    }

    /// QEMU's `QAPIDoc.connect_feature`.
    pub(super) fn connect_feature(
        &mut self,
        doc: usize,
        name: &str,
        info: Option<InfoId>,
    ) -> Res<()> {
        let d = &mut self.docs[doc];
        if let Some(a) = d.features.iter_mut().find(|a| a.name == name) {
            a.connected = true;
            return Ok(());
        }
        Err(Box::new(self.infos.error(
            info.unwrap_or(InfoId(0)),
            format!("feature '{name}' lacks documentation"),
        )))
    }

    pub(super) fn connect_features(
        &mut self,
        doc: usize,
        fs: &[Feature],
        info: Option<InfoId>,
    ) -> Res<()> {
        for f in fs {
            self.connect_feature(doc, &f.name, info)?;
        }
        Ok(())
    }
}

/// QEMU's `connect_doc(doc)` for entity `id`; `doc` overrides the entity's own.
pub(super) fn connect_doc(
    entities: &[Entity],
    cx: &mut DocCtx<'_>,
    id: u32,
    doc: Option<usize>,
) -> Res<()> {
    let e = &entities[id as usize];
    let Some(doc) = doc.or(e.doc) else {
        return Ok(());
    };
    let info = e.info;
    cx.connect_features(doc, &e.features, info)?;
    let implicit =
        |t: u32| t != id && t != UNRESOLVED && entities[t as usize].name.starts_with("q_");
    match &e.kind {
        Kind::Enum { values, .. } => {
            for v in values {
                cx.connect_member(doc, &v.name, "value", info)?;
                cx.connect_features(doc, &v.features, info)?;
            }
        }
        Kind::Object(o) => {
            if let Some(b) = o.base.filter(|&b| implicit(b)) {
                connect_doc(entities, cx, b, Some(doc))?;
            }
            for m in &o.local {
                cx.connect_member(doc, &m.name, "member", info)?;
                cx.connect_features(doc, &m.features, info)?;
            }
        }
        Kind::Alternate { variants } => {
            for v in variants {
                cx.connect_member(doc, &v.name, "branch", info)?;
            }
        }
        Kind::Command { arg: Some(a), .. } | Kind::Event { arg: Some(a), .. } if implicit(*a) => {
            connect_doc(entities, cx, *a, Some(doc))?;
        }
        _ => {}
    }
    Ok(())
}
