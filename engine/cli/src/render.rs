//! Renders diagnostics: `file:line:col: message`, the source line with a caret, the hint.
use crate::files::Checked;
use orgop_syntax::{Diagnostic, Severity};
use serde_json::json;

/// Prints every diagnostic (text to stderr, or JSON to stdout) and a summary; returns whether
/// any file is invalid. `Err` only when writing to stdout fails.
pub fn report(checked: &Checked, format: &str) -> std::io::Result<bool> {
    let all: Vec<&Diagnostic> = checked
        .reports
        .iter()
        .flat_map(|r| r.diagnostics.iter())
        .collect();
    let invalid = checked
        .reports
        .iter()
        .filter(|r| r.has_errors() || r.lowered.is_none())
        .count();
    if format == "json" {
        let list: Vec<_> = all
            .iter()
            .map(|d| {
                json!({
                    "file": d.file,
                    "line": d.span.start.line,
                    "column": d.span.start.col,
                    "severity": match d.severity { Severity::Error => "error", Severity::Warning => "warning" },
                    "message": d.message,
                    "hint": d.hint,
                })
            })
            .collect();
        crate::out::println(&serde_json::to_string_pretty(&list).expect("JSON serializes"))?;
    } else {
        for d in &all {
            eprintln!(
                "{}",
                render(d, checked.sources.get(&d.file).map(String::as_str))
            );
        }
    }
    let errors = all.iter().filter(|d| d.is_error()).count();
    let warnings = all.len() - errors;
    let n = checked.reports.len();
    eprintln!(
        "checked {n} runbook{}: {} valid, {invalid} invalid ({errors} error{}, {warnings} warning{})",
        plural(n),
        n - invalid,
        plural(errors),
        plural(warnings)
    );
    Ok(invalid > 0)
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// One diagnostic with its source excerpt.
pub fn render(d: &Diagnostic, source: Option<&str>) -> String {
    let level = match d.severity {
        Severity::Error => "",
        Severity::Warning => "warning: ",
    };
    let (line, col) = (d.span.start.line, d.span.start.col);
    let mut out = format!("{}:{line}:{col}: {level}{}", d.file, d.message);
    if let Some(text) = source.and_then(|s| s.lines().nth(line.saturating_sub(1))) {
        let width = line.to_string().len();
        let len = if d.span.end.line == line && d.span.end.col > col {
            d.span.end.col - col
        } else {
            1
        };
        let len = len.min(text.chars().count().saturating_sub(col - 1).max(1));
        out.push_str(&format!(
            "\n{:width$} |\n{line} | {text}\n{:width$} | {}{}",
            "",
            "",
            " ".repeat(col.saturating_sub(1)),
            "^".repeat(len)
        ));
    }
    if let Some(h) = &d.hint {
        out.push_str(&format!("\n  hint: {h}"));
    }
    out
}
