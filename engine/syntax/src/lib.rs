//! The bottom of orgop: what a runbook *is*, and where in its file each part came from.
//!
//! - [`load`] turns YAML text into a JSON value plus a [`SpanMap`] from JSON pointers to source
//!   positions, so every later stage (schema validation, semantic checks, the compiler) can
//!   report `file:line:col` without re-reading the file.
//! - [`model`] holds the typed runbook ([`model::Runbook`]); `schema/runbook.schema.json` is
//!   generated from these types.
//! - [`limits`]: the largest file and the deepest nesting a runbook may have.
//! - [`Diagnostic`] is the one error type every checking stage returns; rendering is the CLI's job.
//!
//! This crate knows nothing of AWS, JMESPath evaluation or Amazon States Language.
#![deny(missing_docs)]

mod diagnostic;
pub mod ids;
pub mod limits;
mod load;
pub mod model;
mod span;

pub use diagnostic::{Diagnostic, Severity};
pub use load::{Loaded, load};
pub use span::{NodeSpans, Pos, Span, SpanMap, pointer_push};
