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
        let (text, caret_at, len) = excerpt(text, col.saturating_sub(1), len);
        out.push_str(&format!(
            "\n{:width$} |\n{line} | {text}\n{:width$} | {}{}",
            "",
            "",
            " ".repeat(caret_at),
            "^".repeat(len)
        ));
    }
    if let Some(h) = &d.hint {
        out.push_str(&format!("\n  hint: {h}"));
    }
    out
}

/// At most this many characters of a source line are shown (a one-line file can be megabytes).
const EXCERPT_CHARS: usize = 120;

/// The part of `text` around character `at` that is shown, with `…` where it was cut, and the
/// caret's column and length (in characters) within that part.
fn excerpt(text: &str, at: usize, len: usize) -> (std::borrow::Cow<'_, str>, usize, usize) {
    let n = text.chars().count();
    if n <= EXCERPT_CHARS {
        return (text.into(), at, len);
    }
    let start = at.saturating_sub(EXCERPT_CHARS / 2).min(n - EXCERPT_CHARS);
    let end = start + EXCERPT_CHARS;
    // Character indexes to byte offsets: slicing at them keeps UTF-8 whole.
    let byte = |i: usize| text.char_indices().nth(i).map_or(text.len(), |(b, _)| b);
    let (from, to) = (byte(start), byte(end));
    let mut shown = String::with_capacity(to - from + 6);
    if start > 0 {
        shown.push('…');
    }
    shown.push_str(&text[from..to]);
    if end < n {
        shown.push('…');
    }
    let caret_at = at - start + usize::from(start > 0);
    let len = len.min(end.saturating_sub(at)).max(1);
    (shown.into(), caret_at, len)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_lines_are_shown_whole() {
        assert_eq!(excerpt("a: b", 3, 1), ("a: b".into(), 3, 1));
    }

    #[test]
    fn long_lines_are_cut_around_the_caret_on_char_boundaries() {
        let text = format!("{}X{}", "é".repeat(500), "ü".repeat(500));
        let (shown, at, len) = excerpt(&text, 500, 3);
        assert_eq!(shown.chars().count(), EXCERPT_CHARS + 2);
        assert!(shown.starts_with('…') && shown.ends_with('…'));
        assert_eq!(shown.chars().nth(at), Some('X'));
        assert_eq!(len, 3);
        // At the very end: only the front is cut, the caret is on the last character.
        let (shown, at, _) = excerpt(&text, 1000, 1);
        assert!(shown.starts_with('…') && !shown.ends_with('…'));
        assert_eq!(shown.chars().nth(at), Some('ü'));
        // Past the end (an error at the end of the line): the caret follows the text.
        let (shown, at, _) = excerpt(&text, 1001, 1);
        assert_eq!(at, shown.chars().count());
        // At the start: only the back is cut.
        let (shown, at, _) = excerpt(&text, 0, 1);
        assert!(!shown.starts_with('…') && shown.ends_with('…'));
        assert_eq!(at, 0);
    }
}
