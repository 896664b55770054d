//! The bounds on a runbook file, in one place: the CLI reads at most [`MAX_FILE_BYTES`] of a
//! file and [`crate::load`] refuses more, or deeper nesting than [`YAML_MAX_DEPTH`], with a
//! located diagnostic naming the limit. Both are far above what real runbooks use.
//!
//! The limits on expressions and templates are in `orgop_plan::limits`.

use crate::{Diagnostic, Span};

/// The largest runbook file, in bytes (1 MiB). The catalog's largest is a few KiB; the whole
/// file is held in memory several times over (text, YAML, JSON, positions).
pub const MAX_FILE_BYTES: u64 = 1 << 20;

/// How deeply mappings and sequences may nest inside each other. Real runbooks use fewer than
/// 10. Not configurable: the YAML deserializer stops at 128 levels, and the checks walk the
/// document by recursion.
pub const YAML_MAX_DEPTH: usize = 100;

/// The diagnostic for runbook `file` of `len` bytes (or more), over [`MAX_FILE_BYTES`].
pub fn file_too_large(file: &str, len: u64) -> Diagnostic {
    Diagnostic::error(
        file,
        Span::point(1, 1),
        format!(
            "the file is larger than the limit of {MAX_FILE_BYTES} bytes (1 MiB) for a runbook \
             ({len} bytes or more)"
        ),
    )
    .with_hint(
        "the limit is fixed: split the runbook, or pass large data as parameters instead of \
         `shared`",
    )
}
