//! The expression checks and the schema model build (QEMU's `expr.py` and `schema.py`).

use crate::ast::ParseOutput;
use crate::{Error, Options, Schema};

pub(crate) fn build(parsed: ParseOutput, _options: &Options) -> Result<Schema, Error> {
    Ok(Schema {
        entities: Vec::new(),
        modules: Vec::new(),
        docs: Vec::new(),
        pragma: parsed.pragma,
        files: parsed.files,
        warnings: parsed.warnings,
        by_name: Default::default(),
    })
}
