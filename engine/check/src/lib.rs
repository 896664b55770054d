//! Checks runbooks and lowers the valid ones.
//!
//! Input: a file name and its text. Output: a [`FileReport`] holding *every* problem found
//! (schema, references between steps, JMESPath, templates, schedule, read-only vs mutating,
//! and every call, parameter and field read against AWS's models),
//! each located at `file:line:col`, and, when there are no errors, the [`Lowered`] plan.
//! Checking never stops at the first problem and never prints.
#![deny(missing_docs)]

mod jmes;
pub mod lower;
mod models;
pub mod schedule;
pub mod schema;
mod semantic;
mod suggest;
pub mod template;

pub use orgop_plan::Lowered;
use orgop_syntax::Diagnostic;
use orgop_syntax::model::Runbook;
pub use semantic::{FIXED_COLUMNS, param_value_ok};

/// The outcome of checking one file.
#[derive(Debug, Clone)]
pub struct FileReport {
    /// The file, as named.
    pub file: String,
    /// Every problem, sorted by position.
    pub diagnostics: Vec<Diagnostic>,
    /// The typed runbook, when valid.
    pub runbook: Option<Runbook>,
    /// The lowered plan, when valid.
    pub lowered: Option<Lowered>,
}

impl FileReport {
    /// Whether any diagnostic is an error.
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }
}

/// Checks one runbook's text.
pub fn check_source(file: &str, text: &str) -> FileReport {
    let mut report = FileReport {
        file: file.to_string(),
        diagnostics: Vec::new(),
        runbook: None,
        lowered: None,
    };
    let loaded = match orgop_syntax::load(file, text) {
        Ok(l) => l,
        Err(d) => {
            report.diagnostics.push(*d);
            return report;
        }
    };
    let mut diags = schema::check(file, &loaded);
    let parts = semantic::parts(&loaded.value);
    diags.extend(semantic::check(file, &loaded, &parts));
    diags.extend(models::check(file, &loaded, &parts, orgop_models::global()));
    diags.sort_by(|a, b| {
        (a.span.start.line, a.span.start.col, &a.message).cmp(&(
            b.span.start.line,
            b.span.start.col,
            &b.message,
        ))
    });
    diags.dedup();
    report.diagnostics = diags;
    if !report.has_errors() {
        match loaded.runbook() {
            Ok(rb) => {
                report.lowered = Some(lower::lower(file, &rb, &loaded.spans));
                report.runbook = Some(rb);
            }
            Err(e) => report.diagnostics.push(Diagnostic::error(
                file,
                orgop_syntax::Span::point(1, 1),
                format!("internal error: the schema accepted what the runbook types reject: {e}"),
            )),
        }
    }
    report
}
