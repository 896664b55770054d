//! `orgop test`: runs runbooks' offline test cases (see [`crate::cases`]).
use crate::cases::{self, CaseDir, CaseFile, Problem};
use crate::{EXIT_INVALID, EXIT_OK, EXIT_USAGE, out};
use clap::Args;
use orgop_plan::Lowered;
use serde_json::json;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Shown after `orgop test --help`.
pub const AFTER_HELP: &str = "\
A case is a folder runbooks/tests/<runbook>/<case>/ holding case.yaml (the item, \"now\",
parameters, apply, and what the run must produce) and the recorded responses it replays,
<service>.<Operation>_<n>.json, one per call. Each case runs through the interpreter exactly as
`orgop run` would, answered from its recordings: no network, no credentials. A case fails when
its status, error, findings (matched by resource_id), actions (matched by action and
resource_id) or requests differ from what it expects, or when the run asks for a recording
that is not there or leaves one unused. `orgop record` makes cases from a real run.

Exit status: 0 when every case passes; 1 when any fails (an invalid runbook fails its cases);
2 on usage errors, or when a case file or runbook cannot be read or a case file is malformed.";

#[derive(Args, Debug)]
pub struct TestArgs {
    /// Runbook files (their cases in <folder>/tests/<file stem>/*/), case folders, or folders
    /// searched for cases.
    #[arg(value_name = "PATH", default_value = "runbooks")]
    paths: Vec<PathBuf>,
    /// `text` (PASS/FAIL per case, the differences, a summary) or `json` (one object on stdout).
    #[arg(long, default_value = "text", value_parser = ["text", "json"])]
    format: String,
}

/// How one case ended.
pub enum Verdict {
    /// Every expectation met.
    Pass,
    /// The differences.
    Fail(Vec<Problem>),
    /// The case could not be run: why.
    Error(String),
}

/// Loads, checks and lowers runbooks once each.
#[derive(Default)]
pub struct Runbooks {
    loaded: BTreeMap<PathBuf, Result<Lowered, Failure>>,
}

/// Why a runbook cannot run its cases.
#[derive(Clone)]
enum Failure {
    /// Not there, or not readable: the cases cannot run.
    Unreadable(String),
    /// Invalid: its cases fail, with its errors.
    Invalid(Vec<Problem>),
}

impl Runbooks {
    fn get(&mut self, path: &PathBuf) -> Result<Lowered, Verdict> {
        let key = std::fs::canonicalize(path).unwrap_or_else(|_| path.clone());
        let entry = self.loaded.entry(key).or_insert_with(|| load_runbook(path));
        match entry {
            Ok(l) => Ok(l.clone()),
            Err(Failure::Unreadable(e)) => Err(Verdict::Error(e.clone())),
            Err(Failure::Invalid(p)) => Err(Verdict::Fail(p.clone())),
        }
    }
}

fn load_runbook(path: &PathBuf) -> Result<Lowered, Failure> {
    if !path.is_file() {
        return Err(Failure::Unreadable(format!(
            "the case's runbook {} is not there: name it with `runbook:` in case.yaml (relative \
             to the case folder; the default is ../../../<runbook>.yaml)",
            path.display()
        )));
    }
    let checked = crate::load_all(std::slice::from_ref(path))
        .map_err(|e| Failure::Unreadable(format!("runbook {e}")))?;
    let report = checked
        .reports
        .first()
        .ok_or_else(|| Failure::Unreadable(format!("{}: no runbook", path.display())))?;
    if checked.unreadable > 0 {
        let why: Vec<String> = report
            .diagnostics
            .iter()
            .map(|d| d.message.clone())
            .collect();
        return Err(Failure::Unreadable(format!(
            "runbook {}: {}",
            path.display(),
            why.join("; ")
        )));
    }
    match &report.lowered {
        Some(l) if !report.has_errors() => Ok(l.clone()),
        _ => Err(Failure::Invalid(
            report
                .diagnostics
                .iter()
                .filter(|d| d.is_error())
                .map(|d| Problem {
                    subject: "runbook".into(),
                    field: None,
                    expected: None,
                    actual: None,
                    message: format!(
                        "runbook is invalid: {}:{}:{}: {} (see `orgop validate {}`)",
                        d.file,
                        d.span.start.line,
                        d.span.start.col,
                        d.message,
                        path.display()
                    ),
                })
                .collect(),
        )),
    }
}

/// Runs one case: reads it, replays it, compares.
pub async fn run_case(case: &CaseDir, runbooks: &mut Runbooks) -> Verdict {
    let file = match cases::read_case(case) {
        Ok(f) => f,
        Err(e) => return Verdict::Error(e.0),
    };
    run_parsed(case, &file, runbooks).await
}

/// Runs a case already read.
pub async fn run_parsed(case: &CaseDir, file: &CaseFile, runbooks: &mut Runbooks) -> Verdict {
    let runbook = cases::runbook_of(case, file);
    let lowered = match runbooks.get(&runbook) {
        Ok(l) => l,
        Err(v) => return v,
    };
    let params = match cases::params_of(&lowered, file) {
        Ok(p) => p,
        Err(errors) => {
            return Verdict::Error(format!(
                "{}: params: {}",
                case.file().display(),
                errors.join("; ")
            ));
        }
    };
    match cases::replay(&case.dir, &lowered, file, params).await {
        Err(e) => Verdict::Error(e),
        Ok(r) => {
            let problems = cases::compare(&file.expect, &r);
            if problems.is_empty() {
                Verdict::Pass
            } else {
                Verdict::Fail(problems)
            }
        }
    }
}

/// Entry point. `Err` only when writing to stdout fails.
pub fn test(a: &TestArgs) -> std::io::Result<u8> {
    let found = match cases::discover(&a.paths) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("orgop: {e}");
            return Ok(EXIT_USAGE);
        }
    };
    let Some(rt) = crate::runtime() else {
        return Ok(EXIT_USAGE);
    };
    let mut runbooks = Runbooks::default();
    let (mut passed, mut failed, mut errors) = (0, 0, 0);
    let mut rows = Vec::new();
    for case in &found {
        let verdict = rt.block_on(run_case(case, &mut runbooks));
        let dir = case.dir.display().to_string();
        match &verdict {
            Verdict::Pass => passed += 1,
            Verdict::Fail(_) => failed += 1,
            Verdict::Error(_) => errors += 1,
        }
        if a.format == "json" {
            rows.push(match verdict {
                Verdict::Pass => json!({"case": case.name, "dir": dir, "result": "pass"}),
                Verdict::Fail(p) => {
                    json!({"case": case.name, "dir": dir, "result": "fail", "problems": p})
                }
                Verdict::Error(e) => {
                    json!({"case": case.name, "dir": dir, "result": "error", "error": e})
                }
            });
            continue;
        }
        match verdict {
            Verdict::Pass => out::println(&format!("PASS {}", case.name))?,
            Verdict::Fail(problems) => {
                out::println(&format!("FAIL {} ({dir})", case.name))?;
                for p in problems {
                    out::println(&format!("  {}", p.message))?;
                }
            }
            Verdict::Error(e) => out::println(&format!("ERROR {}: {e}", case.name))?,
        }
    }
    let total = found.len();
    if a.format == "json" {
        let summary = json!({
            "cases": rows,
            "summary": {"cases": total, "passed": passed, "failed": failed, "errors": errors},
        });
        out::println(&serde_json::to_string_pretty(&summary).expect("JSON serializes"))?;
    } else {
        out::println(&format!(
            "{total} case{}: {passed} passed, {failed} failed, {errors} could not run",
            if total == 1 { "" } else { "s" }
        ))?;
    }
    Ok(if errors > 0 {
        EXIT_USAGE
    } else if failed > 0 {
        EXIT_INVALID
    } else {
        EXIT_OK
    })
}
