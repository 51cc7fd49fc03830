//! The parse phase (QEMU's `parser.py`): files, includes, pragmas, expressions, doc blocks.

use crate::ast::ParseOutput;
use crate::{Error, Options};

pub(crate) fn parse(_path: &std::path::Path, _options: &Options) -> Result<ParseOutput, Error> {
    Ok(ParseOutput::default())
}
