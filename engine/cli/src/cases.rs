//! Offline test cases of a runbook: `runbooks/tests/<runbook>/<case>/case.yaml` beside the
//! recorded responses it replays (the placebo layout of [`orgop_exec::ReplayApi`]).
//!
//! A case is run through the same interpreter as `orgop run` (checked and lowered runbook,
//! [`Prepared`], [`run_item`]) with [`ReplayApi`] instead of AWS: no network, no credentials.
//! Its result is compared with the case's `expect`, field by field; a recording the run asked
//! for and did not find, or one it never asked for, fails the case too.
use aws_smithy_types::date_time::{DateTime, Format};
use orgop_exec::{
    ActionBudget, ActionOutcome, ItemResult, NoHooks, Prepared, ReplayApi, RunFacts, Status,
    run_item,
};
use orgop_plan::Lowered;
use orgop_plan::contract::Item;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The file that makes a folder a test case.
pub const CASE_FILE: &str = "case.yaml";

/// The largest case file read: 4 MiB.
const MAX_CASE_BYTES: u64 = 4 << 20;

/// `case.yaml`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaseFile {
    /// What the case shows.
    #[serde(default)]
    pub description: String,
    /// "Now" of the run (RFC 3339): fixes `age_days()` and the like.
    pub now: String,
    /// Whether the actions are applied (answered from the recordings) or only planned.
    #[serde(default)]
    pub apply: bool,
    /// Runbook parameters; the runbook's defaults fill the others.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub params: Map<String, Value>,
    /// The item's account.
    pub account: CaseAccount,
    /// The item's region.
    pub region: String,
    /// The runbook, relative to the case folder (default `../../../<runbook>.yaml`, i.e.
    /// `runbooks/<runbook>.yaml` for `runbooks/tests/<runbook>/<case>/`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runbook: Option<String>,
    /// What the run must produce.
    pub expect: Expect,
}

/// The item's account.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaseAccount {
    /// 12 digits (a string; a bare number is accepted).
    #[serde(deserialize_with = "string_or_number")]
    pub id: String,
    /// The account's name.
    #[serde(default = "default_account_name")]
    pub name: String,
}

fn default_account_name() -> String {
    "test".into()
}

fn string_or_number<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    match Value::deserialize(d)? {
        Value::String(s) => Ok(s),
        Value::Number(n) => Ok(n.to_string()),
        other => Err(serde::de::Error::custom(format!(
            "expected a 12-digit account id, got {other}"
        ))),
    }
}

/// What the run must produce; the fields of a results.jsonl row that do not depend on time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    /// The item's status: ok, denied, error, skipped, not_run.
    pub status: Status,
    /// The item's error, when it has one (`code`, `message`, `step`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ExpectError>,
    /// Every finding, in report order (none when absent).
    #[serde(default)]
    pub findings: Vec<ExpectFinding>,
    /// Every action record, in order (none when absent).
    #[serde(default)]
    pub actions: Vec<ExpectAction>,
    /// Every request made, in order, reads included (a paginated read is one request); not
    /// checked when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests: Option<Vec<ExpectRequest>>,
}

/// The item's error.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpectError {
    /// AWS's code or orgop's.
    pub code: String,
    /// The step or action that failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
    /// The message, exactly.
    pub message: String,
}

/// One finding row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpectFinding {
    /// `report.resource_id`.
    pub resource_id: Value,
    /// The report's columns.
    #[serde(default)]
    pub columns: Map<String, Value>,
}

/// One action record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpectAction {
    /// The action's id.
    pub action: String,
    /// The resource it applied to (absent when the action does not iterate over the
    /// reported step).
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub resource_id: Value,
    /// planned, done, already_done, skipped, failed.
    pub outcome: ActionOutcome,
    /// Why skipped or failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// `service:Operation`.
    pub call: String,
    /// The exact parameters sent, or planned.
    pub parameters: Value,
}

/// One request the interpreter made.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpectRequest {
    /// `service:Operation`.
    pub call: String,
    /// Its parameters.
    pub parameters: Value,
}

/// A case found on disk.
#[derive(Debug, Clone)]
pub struct CaseDir {
    /// The folder.
    pub dir: PathBuf,
    /// `<runbook>/<case>`, from the folder names.
    pub name: String,
}

impl CaseDir {
    /// The case in `dir`.
    pub fn new(dir: PathBuf) -> CaseDir {
        let base = absolute_if_short(&dir, 2);
        let part = |p: Option<&Path>| {
            p.and_then(Path::file_name)
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "?".into())
        };
        let name = format!("{}/{}", part(base.parent()), part(Some(base.as_path())));
        CaseDir { dir, name }
    }

    /// `case.yaml`.
    pub fn file(&self) -> PathBuf {
        self.dir.join(CASE_FILE)
    }
}

/// `path` as given when it has at least `n` plain folder names to walk up, else absolute.
fn absolute_if_short(path: &Path, n: usize) -> PathBuf {
    use std::path::Component;
    let plain = path
        .components()
        .filter(|c| matches!(c, Component::Normal(_)))
        .count();
    let tricky = path
        .components()
        .any(|c| matches!(c, Component::ParentDir | Component::CurDir));
    if plain >= n && !tricky {
        path.to_path_buf()
    } else {
        std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
    }
}

/// The folders of every case named by `paths`: a case folder (holding `case.yaml`) or its
/// `case.yaml`; a runbook file (its cases in `<its folder>/tests/<file stem>/*/`); or a folder
/// searched for case folders. `Err`: what cannot be found, to print as a usage error.
pub fn discover(paths: &[PathBuf]) -> Result<Vec<CaseDir>, String> {
    let mut out: Vec<PathBuf> = Vec::new();
    for p in paths {
        let meta = std::fs::metadata(p).map_err(|e| format!("{}: {e}", p.display()))?;
        let before = out.len();
        if meta.is_dir() {
            if p.join(CASE_FILE).is_file() {
                out.push(p.clone());
            } else {
                walk(p, &mut out).map_err(|e| format!("{}: {e}", p.display()))?;
                if out.len() == before {
                    return Err(format!(
                        "{}: no test cases in this folder (a case is a folder holding {CASE_FILE}; \
                         make one with `orgop record`)",
                        p.display()
                    ));
                }
            }
        } else if p.file_name().is_some_and(|n| n == CASE_FILE) {
            out.push(
                p.parent()
                    .filter(|d| !d.as_os_str().is_empty())
                    .unwrap_or(Path::new("."))
                    .to_path_buf(),
            );
        } else {
            let dir = cases_of_runbook(p);
            if dir.is_dir() {
                let mut found: Vec<PathBuf> = std::fs::read_dir(&dir)
                    .map_err(|e| format!("{}: {e}", dir.display()))?
                    .filter_map(Result::ok)
                    .map(|e| e.path())
                    .filter(|d| d.join(CASE_FILE).is_file())
                    .collect();
                found.sort();
                out.extend(found);
            }
            if out.len() == before {
                return Err(format!(
                    "{}: no test cases for this runbook (expected {}/<case>/{CASE_FILE}; make one \
                     with `orgop record {} --case NAME`)",
                    p.display(),
                    dir.display(),
                    p.display()
                ));
            }
        }
    }
    let mut seen = BTreeSet::new();
    Ok(out
        .into_iter()
        .filter(|d| seen.insert(std::fs::canonicalize(d).unwrap_or_else(|_| d.clone())))
        .map(CaseDir::new)
        .collect())
}

/// `<folder of the runbook>/tests/<file stem>`: where a runbook's cases live.
pub fn cases_of_runbook(runbook: &Path) -> PathBuf {
    let stem = runbook
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    runbook
        .parent()
        .unwrap_or(Path::new(""))
        .join("tests")
        .join(stem)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)?.collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.path());
    for e in entries {
        if e.file_type()?.is_dir() {
            let path = e.path();
            if path.join(CASE_FILE).is_file() {
                out.push(path);
            } else {
                walk(&path, out)?;
            }
        }
    }
    Ok(())
}

/// A case file that cannot be used: `file:line:col: what is wrong`.
#[derive(Debug, Clone, PartialEq)]
pub struct CaseError(pub String);

impl std::fmt::Display for CaseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Reads and checks `case.yaml`.
pub fn read_case(case: &CaseDir) -> Result<CaseFile, CaseError> {
    use std::io::Read as _;
    let path = case.file();
    let shown = path.display().to_string();
    let mut text = String::new();
    std::fs::File::open(&path)
        .and_then(|f| f.take(MAX_CASE_BYTES + 1).read_to_string(&mut text))
        .map_err(|e| CaseError(format!("{shown}: cannot read: {e}")))?;
    if text.len() as u64 > MAX_CASE_BYTES {
        return Err(CaseError(format!(
            "{shown}: larger than {MAX_CASE_BYTES} bytes, the limit for a case file"
        )));
    }
    parse_case(&shown, &text)
}

/// Parses a case file's text; errors are located in `file`.
pub fn parse_case(file: &str, text: &str) -> Result<CaseFile, CaseError> {
    let case: CaseFile = serde_yaml::from_str(text).map_err(|e| {
        let at = match e.location() {
            Some(l) => format!("{file}:{}:{}", l.line(), l.column()),
            None => file.to_string(),
        };
        let mut message = e.to_string();
        // The location is in front already.
        if let Some(i) = message.find(" at line ") {
            message.truncate(i);
        }
        CaseError(format!(
            "{at}: {message} (see runbooks/tests/unused-ebs/README.md for the case format)"
        ))
    })?;
    let line_of = |key: &str| {
        text.lines()
            .position(|l| l.trim_start().starts_with(&format!("{key}:")))
            .map(|i| format!("{file}:{}:1", i + 1))
            .unwrap_or_else(|| file.to_string())
    };
    if parse_now(&case.now).is_none() {
        return Err(CaseError(format!(
            "{}: now: `{}` is not an RFC 3339 time (like 2026-01-31T00:00:00Z)",
            line_of("now"),
            case.now
        )));
    }
    if !orgop_syntax::ids::is_account_id(&case.account.id) {
        return Err(CaseError(format!(
            "{}: account.id: `{}` is not an AWS account id (12 digits, quoted)",
            line_of("id"),
            case.account.id
        )));
    }
    if !orgop_syntax::ids::is_region(&case.region)
        && case.region != orgop_plan::contract::GLOBAL_REGION
    {
        return Err(CaseError(format!(
            "{}: region: `{}` is not a region name (like us-east-1)",
            line_of("region"),
            case.region
        )));
    }
    Ok(case)
}

/// Epoch seconds of an RFC 3339 time.
pub fn parse_now(s: &str) -> Option<f64> {
    DateTime::from_str(s, Format::DateTimeWithOffset)
        .ok()
        .map(|d| d.as_secs_f64())
}

/// The runbook a case runs.
pub fn runbook_of(case: &CaseDir, file: &CaseFile) -> PathBuf {
    match &file.runbook {
        Some(r) => case.dir.join(r),
        None => {
            let base = absolute_if_short(&case.dir, 4);
            let name = base
                .parent()
                .and_then(Path::file_name)
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            base.ancestors()
                .nth(3)
                .unwrap_or(Path::new(""))
                .join(format!("{name}.yaml"))
        }
    }
}

/// What replaying a case produced.
#[derive(Debug, Clone)]
pub struct Replayed {
    /// The item's record.
    pub result: ItemResult,
    /// Every request made, in order.
    pub requests: Vec<ExpectRequest>,
    /// Recordings asked for and not there, with why.
    pub missing: Vec<(String, String)>,
    /// Recordings never asked for.
    pub unused: Vec<String>,
}

/// The case's parameters over the runbook's defaults. `Err`: one message per bad parameter.
pub fn params_of(lowered: &Lowered, file: &CaseFile) -> Result<Map<String, Value>, Vec<String>> {
    orgop_plan::params::resolve(&lowered.plan.params, &file.params)
}

/// Runs the case's item through the interpreter with its recordings. `params` are resolved
/// (see [`params_of`]).
pub async fn replay(
    dir: &Path,
    lowered: &Lowered,
    file: &CaseFile,
    params: Map<String, Value>,
) -> Result<Replayed, String> {
    let shared: Map<String, Value> = lowered.shared.clone().into_iter().collect();
    let prepared = Prepared::new(lowered.plan.clone(), shared).map_err(|e| e.to_string())?;
    let item = Item {
        account_id: file.account.id.clone(),
        account_name: file.account.name.clone(),
        region: file.region.clone(),
    };
    let facts = RunFacts {
        execution: "orgop-test".into(),
        params,
        apply: file.apply,
        now: parse_now(&file.now).ok_or_else(|| format!("now: `{}` is not RFC 3339", file.now))?,
    };
    let api = ReplayApi::new(dir);
    let budget = ActionBudget::new(lowered.plan.safety.max_actions_per_run);
    let result = run_item(&prepared, &item, &facts, &api, &budget, &NoHooks).await;
    let calls = api.calls();
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    let mut missing = Vec::new();
    let mut used = BTreeSet::new();
    let mut requests = Vec::new();
    for (name, parameters) in calls {
        let n = counts.entry(name.clone()).or_insert(0);
        *n += 1;
        let file = format!("{name}_{n}.json");
        if !dir.join(&file).is_file() {
            missing.push((
                file.clone(),
                format!(
                    "the run made call {n} of {} and {} is not there",
                    call_name(&name),
                    dir.join(&file).display()
                ),
            ));
        }
        used.insert(file);
        requests.push(ExpectRequest {
            call: call_name(&name),
            parameters,
        });
    }
    let mut unused = Vec::new();
    let mut files: Vec<String> = std::fs::read_dir(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".json"))
        .collect();
    files.sort();
    for f in files {
        if !used.contains(&f) {
            unused.push(f);
        }
    }
    Ok(Replayed {
        result,
        requests,
        missing,
        unused,
    })
}

/// `ec2.DescribeVolumes` -> `ec2:DescribeVolumes`.
fn call_name(recorded: &str) -> String {
    match recorded.split_once('.') {
        Some((s, o)) => format!("{s}:{o}"),
        None => recorded.to_string(),
    }
}

/// The expectations a replay meets exactly.
pub fn expect_of(r: &Replayed) -> Expect {
    let result = &r.result;
    Expect {
        status: result.status,
        error: result.error.as_ref().map(|e| ExpectError {
            code: e.code.clone(),
            step: e.step.clone(),
            message: e.message.clone(),
        }),
        findings: result
            .findings
            .iter()
            .map(|f| ExpectFinding {
                resource_id: f.resource_id.clone(),
                columns: f.columns.clone().into_iter().collect(),
            })
            .collect(),
        actions: result
            .actions
            .iter()
            .map(|a| ExpectAction {
                action: a.action.clone(),
                resource_id: a.resource_id.clone(),
                outcome: a.outcome,
                reason: a.reason.clone(),
                call: a.call.clone(),
                parameters: a.parameters.clone(),
            })
            .collect(),
        requests: Some(r.requests.clone()),
    }
}

/// One difference between a case's expectations and its run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Problem {
    /// What differs: `finding vol-1`, `action snapshot vol-1`, `recording ec2.X_2.json`,
    /// `status`, `error`, `request 2`.
    pub subject: String,
    /// The field, when one differs (`columns.age_days`, `parameters.Tags[0].Value`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// Expected value (absent: not expected).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expected: Option<Value>,
    /// Actual value (absent: not produced).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actual: Option<Value>,
    /// In words.
    pub message: String,
}

impl Problem {
    fn differs(
        subject: &str,
        field: &str,
        expected: Option<&Value>,
        actual: Option<&Value>,
    ) -> Problem {
        let show = |v: Option<&Value>| match v {
            Some(v) => v.to_string(),
            None => "(nothing)".to_string(),
        };
        Problem {
            subject: subject.to_string(),
            field: (!field.is_empty()).then(|| field.to_string()),
            expected: expected.cloned(),
            actual: actual.cloned(),
            message: format!(
                "{subject}{}{}: expected {}, got {}",
                if field.is_empty() { "" } else { ": " },
                field,
                show(expected),
                show(actual)
            ),
        }
    }

    fn note(subject: String, message: String) -> Problem {
        Problem {
            message: format!("{subject}: {message}"),
            subject,
            field: None,
            expected: None,
            actual: None,
        }
    }
}

/// Every difference between `expect` and the replay, and every recording missing or unused.
pub fn compare(expect: &Expect, r: &Replayed) -> Vec<Problem> {
    let mut out = Vec::new();
    // The recordings first: a missing one explains the differences after it.
    for (file, why) in &r.missing {
        out.push(Problem::note(
            format!("recording {file}"),
            format!("missing: {why}"),
        ));
    }
    for file in &r.unused {
        out.push(Problem::note(
            format!("recording {file}"),
            "unused: the run never asked for it (remove it, or fix the case)".into(),
        ));
    }
    let actual = expect_of(r);
    let st = |s: Status| Value::String(s.as_str().to_string());
    if expect.status != actual.status {
        out.push(Problem::differs(
            "status",
            "",
            Some(&st(expect.status)),
            Some(&st(actual.status)),
        ));
    }
    let as_json = |e: &Option<ExpectError>| {
        e.as_ref()
            .map(|e| serde_json::to_value(e).expect("serializes"))
    };
    diff_values(
        "error",
        "",
        as_json(&expect.error).as_ref(),
        as_json(&actual.error).as_ref(),
        &mut out,
    );
    // Findings, matched by resource id (the nth with one id to the nth).
    let key_f = |f: &ExpectFinding| f.resource_id.clone();
    let show_f = |id: &Value, n: usize| format!("finding {}{}", show_id(id), nth(n));
    matched(
        &expect.findings,
        &actual.findings,
        key_f,
        show_f,
        |f| {
            serde_json::to_value(&f.columns)
                .map(|c| json!({"columns": c}))
                .expect("serializes")
        },
        "findings",
        &mut out,
    );
    // Columns in the runbook's order, as the report writes them.
    for w in &expect.findings {
        let same = |g: &&ExpectFinding| g.resource_id == w.resource_id;
        if let Some(g) = actual.findings.iter().find(same) {
            let (wk, gk): (Vec<&String>, Vec<&String>) =
                (w.columns.keys().collect(), g.columns.keys().collect());
            let (mut ws, mut gs) = (wk.clone(), gk.clone());
            ws.sort();
            gs.sort();
            if ws == gs && wk != gk {
                out.push(Problem::differs(
                    &show_f(&w.resource_id, 0),
                    "columns (order)",
                    Some(&json!(wk)),
                    Some(&json!(gk)),
                ));
            }
        }
    }
    let key_a = |a: &ExpectAction| json!([a.action, a.resource_id]);
    let show_a = |k: &Value, n: usize| {
        let id = &k[1];
        format!(
            "action {}{}{}",
            k[0].as_str().unwrap_or("?"),
            if id.is_null() {
                String::new()
            } else {
                format!(" {}", show_id(id))
            },
            nth(n)
        )
    };
    matched(
        &expect.actions,
        &actual.actions,
        key_a,
        show_a,
        |a| {
            let mut v = serde_json::to_value(a).expect("serializes");
            if let Some(m) = v.as_object_mut() {
                m.remove("action");
                m.remove("resource_id");
            }
            v
        },
        "actions",
        &mut out,
    );
    if let (Some(want), Some(got)) = (&expect.requests, &actual.requests) {
        for i in 0..want.len().max(got.len()) {
            let subject = format!(
                "request {} ({})",
                i + 1,
                want.get(i)
                    .or(got.get(i))
                    .map(|q| q.call.as_str())
                    .unwrap_or("?")
            );
            let v =
                |q: Option<&ExpectRequest>| q.map(|q| serde_json::to_value(q).expect("serializes"));
            match (want.get(i), got.get(i)) {
                (Some(_), None) => out.push(Problem::note(
                    subject,
                    "expected, but the run made no such request".into(),
                )),
                (None, Some(q)) => out.push(Problem::note(
                    subject,
                    format!(
                        "made by the run, not expected (parameters {})",
                        q.parameters
                    ),
                )),
                (w, g) => diff_values(&subject, "", v(w).as_ref(), v(g).as_ref(), &mut out),
            }
        }
    }
    out
}

fn show_id(id: &Value) -> String {
    match id {
        Value::String(s) => s.clone(),
        v => v.to_string(),
    }
}

fn nth(n: usize) -> String {
    if n == 0 {
        String::new()
    } else {
        format!(" (#{})", n + 1)
    }
}

/// Pairs `want` and `got` by key (the nth of a key with the nth), reports the missing, the
/// extra and each differing field, then the order when everything else matches.
fn matched<T>(
    want: &[T],
    got: &[T],
    key: impl Fn(&T) -> Value,
    show: impl Fn(&Value, usize) -> String,
    body: impl Fn(&T) -> Value,
    what: &str,
    out: &mut Vec<Problem>,
) {
    let keyed = |list: &[T]| {
        let mut seen: BTreeMap<String, usize> = BTreeMap::new();
        list.iter()
            .map(|x| {
                let k = key(x);
                let n = seen.entry(k.to_string()).or_insert(0);
                *n += 1;
                (k, *n - 1)
            })
            .collect::<Vec<_>>()
    };
    let (wk, gk) = (keyed(want), keyed(got));
    let before = out.len();
    for (i, (k, n)) in wk.iter().enumerate() {
        let subject = show(k, *n);
        match gk.iter().position(|x| x == &(k.clone(), *n)) {
            None => out.push(Problem::note(subject, "expected, but not produced".into())),
            Some(j) => diff_values(
                &subject,
                "",
                Some(&body(&want[i])),
                Some(&body(&got[j])),
                out,
            ),
        }
    }
    for (j, (k, n)) in gk.iter().enumerate() {
        if !wk.contains(&(k.clone(), *n)) {
            out.push(Problem::note(
                show(k, *n),
                format!("produced, but not expected ({})", body(&got[j])),
            ));
        }
    }
    if out.len() == before && wk != gk {
        let order = |l: &[(Value, usize)]| Value::Array(l.iter().map(|(k, _)| k.clone()).collect());
        out.push(Problem::differs(
            what,
            "order",
            Some(&order(&wk)),
            Some(&order(&gk)),
        ));
    }
}

/// Each leaf where `want` and `got` differ, as `a.b[2].c`.
fn diff_values(
    subject: &str,
    at: &str,
    want: Option<&Value>,
    got: Option<&Value>,
    out: &mut Vec<Problem>,
) {
    match (want, got) {
        (Some(Value::Object(w)), Some(Value::Object(g))) => {
            for (k, wv) in w {
                diff_values(subject, &join(at, k), Some(wv), g.get(k), out);
            }
            for (k, gv) in g {
                if !w.contains_key(k) {
                    diff_values(subject, &join(at, k), None, Some(gv), out);
                }
            }
        }
        (Some(Value::Array(w)), Some(Value::Array(g))) if w.len() == g.len() => {
            for (i, (wv, gv)) in w.iter().zip(g).enumerate() {
                diff_values(subject, &format!("{at}[{i}]"), Some(wv), Some(gv), out);
            }
        }
        (w, g) if w != g => out.push(Problem::differs(subject, at, w, g)),
        _ => {}
    }
}

fn join(at: &str, key: &str) -> String {
    if at.is_empty() {
        key.to_string()
    } else {
        format!("{at}.{key}")
    }
}

/// The text of a case file: a header comment, then the case.
pub fn to_yaml(file: &CaseFile, header: &str) -> String {
    let body = serde_yaml::to_string(file).expect("a case serializes");
    let mut out = String::new();
    for line in header.lines() {
        out.push_str("# ");
        out.push_str(line);
        out.push('\n');
    }
    out.push_str(&body);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const CASE: &str = "description: d\nnow: 2026-01-31T00:00:00Z\naccount: {id: '111111111111'}\nregion: us-east-1\nexpect:\n  status: ok\n";

    #[test]
    fn a_case_parses_and_round_trips() {
        let c = parse_case("case.yaml", CASE).unwrap();
        assert_eq!(c.account.name, "test");
        let again = parse_case("case.yaml", &to_yaml(&c, "x")).unwrap();
        assert_eq!(c, again);
    }

    #[test]
    fn bad_cases_are_located() {
        let e = parse_case("c.yaml", &CASE.replace("status: ok", "status: fine")).unwrap_err();
        assert!(e.0.starts_with("c.yaml:6:"), "{e}");
        assert!(e.0.contains("fine"), "{e}");
        let e = parse_case("c.yaml", &format!("{CASE}  extra: 1\n")).unwrap_err();
        assert!(
            e.0.starts_with("c.yaml:7:") && e.0.contains("unknown field `extra`"),
            "{e}"
        );
        let e =
            parse_case("c.yaml", &CASE.replace("2026-01-31T00:00:00Z", "yesterday")).unwrap_err();
        assert!(e.0.starts_with("c.yaml:2:1: now:"), "{e}");
        let e = parse_case("c.yaml", &CASE.replace("'111111111111'", "'1'")).unwrap_err();
        assert!(e.0.contains("account.id"), "{e}");
    }

    #[test]
    fn differences_name_the_field() {
        let mut out = Vec::new();
        diff_values(
            "finding vol-1",
            "",
            Some(&json!({"columns": {"a": 1, "b": [1, {"c": 2}]}})),
            Some(&json!({"columns": {"a": 1, "b": [1, {"c": 3}], "d": 4}})),
            &mut out,
        );
        let msgs: Vec<&str> = out.iter().map(|p| p.message.as_str()).collect();
        assert_eq!(
            msgs,
            [
                "finding vol-1: columns.b[1].c: expected 2, got 3",
                "finding vol-1: columns.d: expected (nothing), got 4"
            ]
        );
    }
}
