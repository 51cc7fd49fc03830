//! The QEMU releases whose rules the front end knows, and what changes between them: one
//! [`Rules`] row per release, read by the parse, expression and schema phases.
//!
//! Each row is what that release's own `scripts/qapi` accepts (studied from the diffs of its
//! `parser.py`, `expr.py` and `schema.py`); everything not in the table is 10.0.2's rule.

use std::fmt;
use std::str::FromStr;

use crate::model::IfCond;
use crate::Compat;

/// A QEMU release whose QAPI rules apply to a schema (see [`crate::Options::release`]).
///
/// A version between two known releases takes the rules of the older one; a version newer
/// than every known release takes the newest rules.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Release {
    /// QEMU 5.2: `*-whitelist` pragmas, C-expression `if` strings and lists, simple unions,
    /// the old doc-comment conventions (`Note:`, `Example:`, unindented sections).
    V5_2,
    /// QEMU 7.2: 10.0's language with the old doc-comment conventions.
    V7_2,
    /// QEMU 10.0 (10.0.2 is the reference of the conformance tests): the default.
    #[default]
    V10_0,
    /// QEMU 10.2: reStructuredText section headings (no `=` heading rules), doc lines of at
    /// most 70 columns with two spaces between sentences.
    V10_2,
}

impl Release {
    /// Every release, oldest first.
    pub const ALL: [Release; 4] = [Release::V5_2, Release::V7_2, Release::V10_0, Release::V10_2];

    /// Major and minor version.
    pub fn version(self) -> (u32, u32) {
        match self {
            Release::V5_2 => (5, 2),
            Release::V7_2 => (7, 2),
            Release::V10_0 => (10, 0),
            Release::V10_2 => (10, 2),
        }
    }

    /// The rules of this release, with `compat`'s relaxations on top.
    pub(crate) fn rules(self, compat: Compat) -> Rules {
        let mut rules = match self {
            Release::V5_2 => Rules {
                legacy_docs: true,
                pragmas: PRAGMAS_5_2,
                c_if: true,
                simple_unions: true,
                case_only_names: true,
                doc_v5_2: true,
                symbol_required: "invalid name",
                feature_word: "member",
                old_type_messages: true,
                conditional_args_need_boxed: false,
                qtype_prefix: Some("QTYPE"),
                ..Rules::V10_0
            },
            Release::V7_2 => Rules {
                legacy_docs: true,
                doc_v5_2: true,
                old_type_messages: true,
                conditional_args_need_boxed: false,
                qtype_prefix: Some("QTYPE"),
                ..Rules::V10_0
            },
            Release::V10_0 => Rules::V10_0,
            Release::V10_2 => Rules {
                heading_rules: false,
                doc_line_format: true,
                ..Rules::V10_0
            },
        };
        rules.legacy_docs |= compat == Compat::Legacy;
        rules
    }
}

impl fmt::Display for Release {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (major, minor) = self.version();
        write!(f, "{major}.{minor}")
    }
}

/// Why a version string names no release.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleaseError(String);

impl fmt::Display for ReleaseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ReleaseError {}

impl FromStr for Release {
    type Err = ReleaseError;

    /// `X.Y` or `X.Y.Z`: the newest known release not newer than it.
    fn from_str(s: &str) -> Result<Self, ReleaseError> {
        let bad = || ReleaseError(format!("'{s}' is not a QEMU version (X.Y or X.Y.Z)"));
        let parts: Vec<&str> = s.split('.').collect();
        if !(2..=3).contains(&parts.len()) {
            return Err(bad());
        }
        let mut numbers = [0u32; 3];
        for (n, p) in numbers.iter_mut().zip(&parts) {
            if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad());
            }
            *n = p.parse().map_err(|_| bad())?;
        }
        let version = (numbers[0], numbers[1]);
        Release::ALL
            .iter()
            .rev()
            .find(|r| r.version() <= version)
            .copied()
            .ok_or_else(|| {
                ReleaseError(format!(
                    "QEMU {s} is older than the oldest release whose rules are known (5.2)"
                ))
            })
    }
}

/// Which pragma list a pragma name fills.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PragmaList {
    CommandName,
    CommandReturns,
    Documentation,
    MemberName,
}

/// A release's list pragmas by name (`doc-required` is in every release).
pub(crate) type PragmaTable = &'static [(&'static str, PragmaList)];

const PRAGMAS_10_0: PragmaTable = &[
    ("command-name-exceptions", PragmaList::CommandName),
    ("command-returns-exceptions", PragmaList::CommandReturns),
    ("documentation-exceptions", PragmaList::Documentation),
    ("member-name-exceptions", PragmaList::MemberName),
];

/// 5.2: `returns-whitelist` and `name-case-whitelist` (renamed in 6.0, which also added
/// `command-name-exceptions`; `documentation-exceptions` came in 8.2).
const PRAGMAS_5_2: PragmaTable = &[
    ("returns-whitelist", PragmaList::CommandReturns),
    ("name-case-whitelist", PragmaList::MemberName),
];

/// What differs between releases, as flags and tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Rules {
    /// The doc-comment conventions of 7.2 and older are accepted, and reported as warnings
    /// (what 10.0 would reject): `Note:`/`Example:` sections, undocumented members,
    /// `Returns:` on a command that returns nothing, unindented text after a bare section
    /// line, `=` headings anywhere in a free-form block.
    pub legacy_docs: bool,
    /// 10.0's `=` heading checks: first line of a free-form block only, never in a
    /// definition's doc (10.1 moved to reStructuredText headings and dropped both).
    pub heading_rules: bool,
    /// 10.2's doc line checks: at most 70 columns (URLs excepted), two spaces between
    /// sentences, outside literal blocks (`::` and `.. qmp-example::`).
    pub doc_line_format: bool,
    /// The list pragmas' names.
    pub pragmas: PragmaTable,
    /// 5.2's `if`: a string (a C preprocessor expression) or a non-empty list of them,
    /// all of which must hold.
    pub c_if: bool,
    /// 5.2's simple unions: `union` without `base` and `discriminator`, each branch
    /// wrapped in an implicit `q_obj_TYPE-wrapper` with one member `data`, tagged by an
    /// implicit enum `NAMEKind` in member `type`.
    pub simple_unions: bool,
    /// 5.2's name rules: any valid name for definitions (none ending in `Kind` or `List`),
    /// and for members, values, branches and features lower case unless the type is in
    /// `name-case-whitelist`; `_` anywhere (6.0 added the case and `_`/`-` conventions).
    pub case_only_names: bool,
    /// The doc-comment reader of 5.2 to 7.2 (`doc::v5_2`; 8.x rewrote it): sections by
    /// tag or by an unindented line after a blank one, each indented as its first line.
    pub doc_v5_2: bool,
    /// That reader's message for a bare `@:` first line.
    pub symbol_required: &'static str,
    /// What "documented feature 'x' does not exist" calls a feature (5.2: "member").
    pub feature_word: &'static str,
    /// 7.2's and older `check_type` messages (`cannot be an array`, `should be a type
    /// name`; 8.x split the check and its messages).
    pub old_type_messages: bool,
    /// Commands and events with conditional argument members need `'boxed': true`
    /// (from 8.x; 7.2 generated the conditions).
    pub conditional_args_need_boxed: bool,
    /// The predefined enum `QType`'s `prefix` (7.2 and older: `QTYPE`).
    pub qtype_prefix: Option<&'static str>,
}

impl Rules {
    /// QEMU 10.0's rules.
    pub(crate) const V10_0: Rules = Rules {
        legacy_docs: false,
        heading_rules: true,
        doc_line_format: false,
        pragmas: PRAGMAS_10_0,
        c_if: false,
        simple_unions: false,
        case_only_names: false,
        doc_v5_2: false,
        symbol_required: "name required after '@'",
        feature_word: "feature",
        old_type_messages: false,
        conditional_args_need_boxed: true,
        qtype_prefix: None,
    };
}

/// 5.2's `if` list as a condition: one name, or all of them.
pub(crate) fn c_if_list(mut names: Vec<String>) -> IfCond {
    if names.len() == 1 {
        IfCond::Name(names.pop().unwrap_or_default())
    } else {
        IfCond::All(names.into_iter().map(IfCond::Name).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::Release;

    #[test]
    fn versions() {
        let cases = [
            ("5.2", Ok(Release::V5_2)),
            ("5.2.0", Ok(Release::V5_2)),
            ("6.1", Ok(Release::V5_2)),
            ("7.2.22", Ok(Release::V7_2)),
            ("10.0.2", Ok(Release::V10_0)),
            ("10.1", Ok(Release::V10_0)),
            ("10.2.2", Ok(Release::V10_2)),
            ("11.0", Ok(Release::V10_2)),
            ("5.1", Err(())),
            ("10", Err(())),
            ("10.x", Err(())),
            ("1.2.3.4", Err(())),
            ("", Err(())),
        ];
        for (text, want) in cases {
            assert_eq!(text.parse::<Release>().map_err(|_| ()), want, "{text}");
        }
        assert_eq!(Release::V10_2.to_string(), "10.2");
    }
}
