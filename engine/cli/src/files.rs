//! Finding runbook files and checking them all together.
use orgop_check::FileReport;
use orgop_syntax::limits::{self, MAX_FILE_BYTES};
use orgop_syntax::{Diagnostic, Span};
use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

/// Every checked file, with its text (for rendering excerpts).
pub struct Checked {
    /// One report per file, in path order.
    pub reports: Vec<FileReport>,
    /// File name -> text.
    pub sources: BTreeMap<String, String>,
    /// How many files could not be read (or are not UTF-8 text): each has a report with one
    /// error saying why, and the command ends with the I/O error status.
    pub unreadable: usize,
}

/// The runbook files named by `paths`: files as given, folders searched recursively for
/// `*.yaml` and `*.yml` (except test cases' `case.yaml`, see [`crate::cases`]), sorted. An empty folder or a missing path is an error.
pub fn collect_runbooks(paths: &[PathBuf]) -> Result<Vec<PathBuf>, String> {
    let mut out = Vec::new();
    for p in paths {
        let meta = std::fs::metadata(p).map_err(|e| format!("{}: {e}", p.display()))?;
        if meta.is_dir() {
            let before = out.len();
            walk(p, &mut out).map_err(|e| format!("{}: {e}", p.display()))?;
            if out.len() == before {
                return Err(format!(
                    "{}: no *.yaml or *.yml runbooks in this folder",
                    p.display()
                ));
            }
        } else {
            out.push(p.clone());
        }
    }
    Ok(out)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)?.collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.path());
    for e in entries {
        let path = e.path();
        if e.file_type()?.is_dir() {
            walk(&path, out)?;
        } else if matches!(
            path.extension().and_then(|x| x.to_str()),
            Some("yaml" | "yml")
        ) && path
            .file_name()
            .is_none_or(|n| n != crate::cases::CASE_FILE)
        {
            out.push(path);
        }
    }
    Ok(())
}

/// Reads and checks every runbook under `paths`; also rejects two runbooks with one name
/// (their compiled files would overwrite each other).
pub fn load_all(paths: &[PathBuf]) -> Result<Checked, String> {
    let files = collect_runbooks(paths)?;
    let mut reports = Vec::new();
    let mut sources = BTreeMap::new();
    let mut names: BTreeMap<String, String> = BTreeMap::new();
    let mut unreadable = 0;
    for f in files {
        let name = f.to_string_lossy().replace('\\', "/");
        let text = match read_text(&f) {
            Ok(t) => t,
            Err(Unread::TooLarge(len)) => {
                // Invalid, not unreadable: the file was read as far as the limit.
                reports.push(orgop_check::FileReport {
                    diagnostics: vec![limits::file_too_large(&name, len)],
                    file: name.clone(),
                    runbook: None,
                    lowered: None,
                });
                continue;
            }
            Err(Unread::Failed(span, message, lossy)) => {
                // The other files are still checked; this one is reported with them.
                unreadable += 1;
                reports.push(orgop_check::FileReport {
                    diagnostics: vec![Diagnostic::error(&name, span, message)],
                    file: name.clone(),
                    runbook: None,
                    lowered: None,
                });
                if let Some(lossy) = lossy {
                    sources.insert(name, lossy);
                }
                continue;
            }
        };
        let mut report = orgop_check::check_source(&name, &text);
        if let Some(rb) = &report.runbook {
            if let Some(other) = names.get(&rb.name) {
                report.diagnostics.push(
                    Diagnostic::error(
                        &name,
                        Span::point(1, 1),
                        format!("runbook name `{}` is also used by {other}", rb.name),
                    )
                    .with_hint(
                        "runbook names must be unique: they name the compiled state machines",
                    ),
                );
                report.lowered = None;
            } else {
                names.insert(rb.name.clone(), name.clone());
            }
        }
        sources.insert(name, text);
        reports.push(report);
    }
    Ok(Checked {
        reports,
        sources,
        unreadable,
    })
}

/// Why a file's text cannot be had.
enum Unread {
    /// It is larger than [`MAX_FILE_BYTES`]: at least this many bytes.
    TooLarge(u64),
    /// Where and why it cannot be read, with the text made readable (invalid bytes replaced)
    /// when it was read but is not UTF-8, for the excerpt.
    Failed(Span, String, Option<String>),
}

/// A file's text. At most [`MAX_FILE_BYTES`] are read: a bigger file is refused without
/// reading the rest.
fn read_text(f: &Path) -> Result<String, Unread> {
    let mut bytes = Vec::new();
    std::fs::File::open(f)
        .and_then(|file| file.take(MAX_FILE_BYTES + 1).read_to_end(&mut bytes))
        .map_err(|e| Unread::Failed(Span::point(1, 1), format!("cannot read: {e}"), None))?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(Unread::TooLarge(bytes.len() as u64));
    }
    String::from_utf8(bytes).map_err(|e| {
        let bytes = e.as_bytes();
        let at = e.utf8_error().valid_up_to();
        // The prefix is valid UTF-8: the bad byte's line and column, in characters.
        let before = std::str::from_utf8(&bytes[..at]).unwrap_or_default();
        let line = before.matches('\n').count() + 1;
        let col = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
        Unread::Failed(
            Span::point(line, col),
            format!("not UTF-8 text (byte {at})"),
            Some(String::from_utf8_lossy(bytes).into_owned()),
        )
    })
}
