//! The independent checkers of orgop's deployment templates, installed by
//! `scripts/deploy-tools.sh`: cfn-lint and checkov (PyPI, in `.venv-cfn`) and
//! `tests/iam/simulate.mjs` (@cloud-copilot/iam-simulate and iam-data, npm). Each helper runs
//! its tool as a child process and panics, naming the setup script, when the tool is not
//! installed: a template test never passes because its checker was missing.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

use crate::repo;

const SETUP: &str = "run `bash scripts/deploy-tools.sh` (scripts/test.sh does) to install it";

/// A tool of `.venv-cfn/bin`, or a panic saying how to install it.
fn venv_tool(name: &str) -> PathBuf {
    let path = repo().join(".venv-cfn/bin").join(name);
    assert!(
        path.exists(),
        "{name} is not installed at {}: {SETUP}",
        path.display()
    );
    path
}

fn run(command: &mut Command, what: &str) -> Output {
    command
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {what}: {e}; {SETUP}"))
}

/// Lints a CloudFormation template with cfn-lint, for every rule at its default settings and
/// the default region (us-east-1). `Err` holds cfn-lint's report when it found at least one
/// error (E rules, and templates it cannot parse); warnings (W) and informational findings (I)
/// alone are allowed: they are printed to stderr, where a failing test shows them, and give
/// `Ok`. cfn-lint's exit status is a bit set: 2 errors, 4 warnings, 8 informational; any other
/// bit (a crash, a bad argument) is an `Err` too.
pub fn cfn_lint(template: &Path) -> Result<(), String> {
    let out = run(
        Command::new(venv_tool("cfn-lint")).arg("--").arg(template),
        "cfn-lint",
    );
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let Some(code) = out.status.code() else {
        return Err(format!("cfn-lint was killed ({}): {report}", out.status));
    };
    if code & !(4 | 8) != 0 {
        return Err(format!(
            "cfn-lint {} (exit {code}):\n{report}",
            template.display()
        ));
    }
    if code != 0 {
        eprintln!(
            "cfn-lint {}: warnings only (exit {code}):\n{report}",
            template.display()
        );
    }
    Ok(())
}

/// What checkov found in one template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckovReport {
    /// How many checks passed.
    pub passed: usize,
    /// The checks that failed.
    pub failed: Vec<CheckovFailure>,
    /// The checks skipped by the template (`Metadata: {checkov: {skip: [{id, comment}]}}`).
    pub skipped: Vec<CheckovSkip>,
}

/// A failed checkov check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckovFailure {
    /// The check id, `CKV_AWS_18`.
    pub id: String,
    /// The resource, `AWS::S3::Bucket.Bucket` (type, then logical id).
    pub resource: String,
    /// What the check wants: `Ensure the S3 bucket has access logging enabled`.
    pub message: String,
}

/// A check that the template skipped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckovSkip {
    /// The check id.
    pub id: String,
    /// The resource that skips it.
    pub resource: String,
    /// The skip's `comment`; `None` when the template gave none.
    pub reason: Option<String>,
}

impl CheckovReport {
    /// `Ok` when no check failed and every skip gives its reason, as the deployment's
    /// acceptance criteria ask; otherwise `Err` listing each failure and each unexplained skip.
    pub fn accept(&self) -> Result<(), String> {
        let mut problems: Vec<String> = self
            .failed
            .iter()
            .map(|f| format!("failed {} on {}: {}", f.id, f.resource, f.message))
            .collect();
        problems.extend(
            self.skipped
                .iter()
                .filter(|s| s.reason.is_none())
                .map(|s| format!("skipped {} on {} without a reason", s.id, s.resource)),
        );
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("\n"))
        }
    }
}

/// Scans a CloudFormation template with checkov (`--framework cloudformation -o json`), offline:
/// `--skip-download`, `BC_SKIP_MAPPING=TRUE` (no policy metadata from the platform),
/// `CKV_SKIP_PACKAGE_UPDATE_CHECK=true` (no PyPI version check), no API key (nothing is
/// uploaded). `Ok` holds the failed and skipped checks, whatever they are (see
/// [`CheckovReport::accept`]); `Err` says why checkov could not check the template: it does
/// not parse, checkov found no CloudFormation resource in it, or checkov failed.
pub fn checkov(template: &Path) -> Result<CheckovReport, String> {
    let out = run(
        Command::new(venv_tool("checkov"))
            .args([
                "--framework",
                "cloudformation",
                "-o",
                "json",
                "--skip-download",
            ])
            .arg("-f")
            .arg(template)
            .env("BC_SKIP_MAPPING", "TRUE")
            .env("CKV_SKIP_PACKAGE_UPDATE_CHECK", "true")
            .env("ANSI_COLORS_DISABLED", "true")
            .env_remove("BC_API_KEY")
            .env_remove("PRISMA_API_URL"),
        "checkov",
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    // checkov exits 1 when a check failed, 0 otherwise.
    if !matches!(out.status.code(), Some(0 | 1)) {
        return Err(format!(
            "checkov failed ({}):\n{stderr}{stdout}",
            out.status
        ));
    }
    let json: Value = serde_json::from_str(&stdout)
        .map_err(|e| format!("checkov printed no JSON report ({e}):\n{stderr}{stdout}"))?;
    parse_checkov(&json).map_err(|why| format!("checkov {}: {why}\n{stderr}", template.display()))
}

fn parse_checkov(json: &Value) -> Result<CheckovReport, String> {
    let summary = &json["summary"];
    let Some(results) = json["results"].as_object() else {
        // A bare summary: checkov found nothing it recognises as CloudFormation.
        return Err(format!("no CloudFormation resource was scanned: {json}"));
    };
    let count = |key: &str| summary[key].as_u64().unwrap_or(0);
    if count("parsing_errors") > 0 {
        return Err(format!(
            "the template does not parse: {}",
            json["results"]["parsing_errors"]
        ));
    }
    if count("resource_count") == 0 {
        return Err("no CloudFormation resource was scanned".into());
    }
    let list = |key: &str| -> Vec<Value> {
        results
            .get(key)
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    let text = |check: &Value, key: &str| check[key].as_str().unwrap_or_default().to_string();
    let failed = list("failed_checks")
        .iter()
        .map(|c| CheckovFailure {
            id: text(c, "check_id"),
            resource: text(c, "resource"),
            message: text(c, "check_name"),
        })
        .collect();
    let skipped = list("skipped_checks")
        .iter()
        .map(|c| CheckovSkip {
            id: text(c, "check_id"),
            resource: text(c, "resource"),
            // checkov writes this placeholder when a skip has no comment.
            reason: c["check_result"]["suppress_comment"]
                .as_str()
                .map(str::trim)
                .filter(|r| !r.is_empty() && *r != "No comment provided")
                .map(str::to_string),
        })
        .collect();
    Ok(CheckovReport {
        passed: count("passed") as usize,
        failed,
        skipped,
    })
}

/// Runs `node tests/iam/simulate.mjs` with `input` on stdin and returns its JSON answer (see
/// tests/iam/README.md: `actions_exist` gives `unknown_actions`, `requests` gives a `decision`
/// each). Panics with simulate.mjs's message when it rejects the input or cannot evaluate a
/// request, and with what to run when node or the npm packages are missing.
pub fn iam_simulate(input: &Value) -> Value {
    let dir = repo().join("tests/iam");
    assert!(
        dir.join("node_modules/@cloud-copilot/iam-simulate")
            .exists(),
        "@cloud-copilot/iam-simulate is not installed in {}: {SETUP}",
        dir.display()
    );
    let mut child = Command::new("node")
        .arg(dir.join("simulate.mjs"))
        .current_dir(&dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run node (Node.js is needed): {e}"));
    child
        .stdin
        .take()
        .expect("stdin is piped")
        .write_all(input.to_string().as_bytes())
        .expect("simulate.mjs reads its input");
    let out = child.wait_with_output().expect("simulate.mjs runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "tests/iam/simulate.mjs failed ({}): {stderr}",
        out.status
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "tests/iam/simulate.mjs printed no JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}
