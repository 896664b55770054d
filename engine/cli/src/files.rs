//! Finding runbook files and checking them all together.
use orgop_check::FileReport;
use orgop_syntax::{Diagnostic, Span};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Every checked file, with its text (for rendering excerpts).
pub struct Checked {
    /// One report per file, in path order.
    pub reports: Vec<FileReport>,
    /// File name -> text.
    pub sources: BTreeMap<String, String>,
}

/// The runbook files named by `paths`: files as given, folders searched recursively for
/// `*.yaml` and `*.yml`, sorted. An empty folder or a missing path is an error.
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
        ) {
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
    for f in files {
        let name = f.to_string_lossy().replace('\\', "/");
        let text = std::fs::read_to_string(&f).map_err(|e| format!("{name}: {e}"))?;
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
    Ok(Checked { reports, sources })
}
