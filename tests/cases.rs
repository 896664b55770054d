//! `orgop test` as users and CI see it: the shipped cases pass; a case that no longer matches
//! what the runbook produces fails with the finding, action or recording named; a malformed
//! case file is a located usage error.
use orgop_testkit::{TempDir, repo};
use serde_json::Value;
use std::path::Path;
use std::process::{Command, Output};

fn orgop_in(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_orgop"))
        .args(args)
        .current_dir(dir)
        // No network and no credentials are needed: make sure none are found.
        .env("AWS_ACCESS_KEY_ID", "")
        .env("AWS_SECRET_ACCESS_KEY", "")
        .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
        .env_remove("AWS_PROFILE")
        .output()
        .expect("orgop runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn both(o: &Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A copy of the repository's runbooks folder (runbooks and their cases) in a temporary folder.
fn copy_runbooks(tag: &str) -> TempDir {
    let tmp = TempDir::new(tag);
    copy_dir(&repo().join("runbooks"), &tmp.path().join("runbooks"));
    tmp
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &to.join(e.file_name()));
        } else {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

#[test]
fn the_shipped_cases_pass() {
    let o = orgop_in(&repo(), &["test", "runbooks/"]);
    assert_eq!(o.status.code(), Some(0), "{}", both(&o));
    let out = stdout(&o);
    for case in [
        "dry-run",
        "any-age",
        "apply",
        "snapshot-fails",
        "denied",
        "bad-timestamp",
    ] {
        assert!(
            out.lines().any(|l| l == format!("PASS unused-ebs/{case}")),
            "{out}"
        );
    }
    assert!(!out.contains("FAIL"), "{out}");
    // The default path is runbooks/; a runbook file means its cases; JSON for CI.
    let d = orgop_in(&repo(), &["test"]);
    assert_eq!(stdout(&d), out);
    let j = orgop_in(
        &repo(),
        &["test", "runbooks/unused-ebs.yaml", "--format", "json"],
    );
    assert_eq!(j.status.code(), Some(0), "{}", both(&j));
    let v: Value = serde_json::from_slice(&j.stdout).unwrap();
    assert_eq!(v["summary"]["passed"], v["summary"]["cases"]);
    assert!(v["summary"]["cases"].as_u64().unwrap() >= 6, "{v}");
    // The case files are no runbooks: the catalog still validates.
    let val = orgop_in(&repo(), &["validate", "runbooks/"]);
    assert_eq!(val.status.code(), Some(0), "{}", both(&val));
}

#[test]
fn a_changed_column_fails_with_the_resource_and_column_named() {
    let tmp = copy_runbooks("cases-column");
    let case = tmp
        .path()
        .join("runbooks/tests/unused-ebs/dry-run/case.yaml");
    let text = std::fs::read_to_string(&case).unwrap();
    assert_eq!(text.matches("age_days: 229").count(), 1);
    std::fs::write(&case, text.replace("age_days: 229", "age_days: 230")).unwrap();
    let o = orgop_in(tmp.path(), &["test", "runbooks"]);
    assert_eq!(o.status.code(), Some(1), "{}", both(&o));
    let out = stdout(&o);
    assert!(out.contains("FAIL unused-ebs/dry-run"), "{out}");
    assert!(
        out.contains("finding vol-0aaa0000000000004: columns.age_days: expected 230, got 229"),
        "{out}"
    );
    assert!(out.contains("PASS unused-ebs/apply"), "{out}");
    assert!(out.contains("1 failed"), "{out}");
    // The same, for CI.
    let j = orgop_in(
        tmp.path(),
        &[
            "test",
            "runbooks/tests/unused-ebs/dry-run",
            "--format",
            "json",
        ],
    );
    assert_eq!(j.status.code(), Some(1), "{}", both(&j));
    let v: Value = serde_json::from_slice(&j.stdout).unwrap();
    let p = &v["cases"][0]["problems"][0];
    assert_eq!(p["subject"], "finding vol-0aaa0000000000004");
    assert_eq!(p["field"], "columns.age_days");
    assert_eq!((&p["expected"], &p["actual"]), (&230.into(), &229.into()));
}

#[test]
fn a_missing_finding_and_a_changed_action_are_named() {
    let tmp = copy_runbooks("cases-finding");
    let case = tmp.path().join("runbooks/tests/unused-ebs/apply/case.yaml");
    let text = std::fs::read_to_string(&case)
        .unwrap()
        .replace("outcome: already_done", "outcome: done");
    // A third finding the run does not produce.
    let text = text.replacen(
        "  findings:\n",
        "  findings:\n  - resource_id: vol-0fff\n    columns: {}\n",
        1,
    );
    std::fs::write(&case, text).unwrap();
    let o = orgop_in(tmp.path(), &["test", "runbooks/tests/unused-ebs/apply"]);
    assert_eq!(o.status.code(), Some(1), "{}", both(&o));
    let out = stdout(&o);
    assert!(
        out.contains("finding vol-0fff: expected, but not produced"),
        "{out}"
    );
    assert!(
        out.contains(
            "action delete vol-0aaa0000000000004: outcome: expected \"done\", got \"already_done\""
        ),
        "{out}"
    );
}

#[test]
fn a_missing_recording_fails_with_the_file_named() {
    let tmp = copy_runbooks("cases-missing");
    let dir = tmp.path().join("runbooks/tests/unused-ebs/apply");
    std::fs::remove_file(dir.join("ec2.DeleteVolume_2.json")).unwrap();
    let o = orgop_in(tmp.path(), &["test", "runbooks/tests/unused-ebs/apply"]);
    assert_eq!(o.status.code(), Some(1), "{}", both(&o));
    let out = stdout(&o);
    assert!(
        out.contains(
            "recording ec2.DeleteVolume_2.json: missing: the run made call 2 of ec2:DeleteVolume"
        ),
        "{out}"
    );
}

#[test]
fn an_unused_recording_fails_with_the_file_named() {
    let tmp = copy_runbooks("cases-unused");
    let dir = tmp.path().join("runbooks/tests/unused-ebs/dry-run");
    std::fs::copy(
        dir.join("ec2.DescribeVolumes_1.json"),
        dir.join("ec2.DescribeVolumes_2.json"),
    )
    .unwrap();
    let o = orgop_in(tmp.path(), &["test", "runbooks/unused-ebs.yaml"]);
    assert_eq!(o.status.code(), Some(1), "{}", both(&o));
    let out = stdout(&o);
    assert!(
        out.contains("FAIL unused-ebs/dry-run")
            && out.contains("recording ec2.DescribeVolumes_2.json: unused"),
        "{out}"
    );
    // Only that case fails.
    assert!(out.contains("1 failed"), "{out}");
}

#[test]
fn a_malformed_case_is_a_located_usage_error() {
    let tmp = copy_runbooks("cases-malformed");
    let case = tmp
        .path()
        .join("runbooks/tests/unused-ebs/denied/case.yaml");
    let text = std::fs::read_to_string(&case).unwrap();
    let line = text.lines().position(|l| l == "  status: denied").unwrap() + 1;
    std::fs::write(&case, text.replace("  status: denied", "  status: refused")).unwrap();
    let o = orgop_in(tmp.path(), &["test", "runbooks"]);
    assert_eq!(o.status.code(), Some(2), "{}", both(&o));
    let out = stdout(&o);
    let at = format!("runbooks/tests/unused-ebs/denied/case.yaml:{line}:");
    assert!(
        out.contains(&format!("ERROR unused-ebs/denied: {at}")) && out.contains("refused"),
        "{out}"
    );
    // A path with no cases, or none at all: usage errors too.
    let o = orgop_in(tmp.path(), &["test", "nowhere"]);
    assert_eq!(o.status.code(), Some(2), "{}", both(&o));
    let empty = tmp.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let o = orgop_in(tmp.path(), &["test", "empty"]);
    assert_eq!(o.status.code(), Some(2), "{}", both(&o));
    assert!(both(&o).contains("no test cases"), "{}", both(&o));
}

#[test]
fn an_invalid_runbook_fails_its_cases_and_a_missing_one_is_a_usage_error() {
    let tmp = copy_runbooks("cases-runbook");
    let runbook = tmp.path().join("runbooks/unused-ebs.yaml");
    let text = std::fs::read_to_string(&runbook).unwrap();
    std::fs::write(
        &runbook,
        text.replace("select: Volumes[]", "select: Volumes[?"),
    )
    .unwrap();
    let o = orgop_in(tmp.path(), &["test", "runbooks/tests/unused-ebs/dry-run"]);
    assert_eq!(o.status.code(), Some(1), "{}", both(&o));
    assert!(
        stdout(&o).contains("runbook is invalid: runbooks/unused-ebs.yaml:"),
        "{}",
        both(&o)
    );
    // A case whose runbook is not where the layout says.
    let moved = tmp.path().join("runbooks/tests/elsewhere");
    std::fs::create_dir_all(&moved).unwrap();
    std::fs::rename(
        tmp.path().join("runbooks/tests/unused-ebs/apply"),
        moved.join("apply"),
    )
    .unwrap();
    let o = orgop_in(tmp.path(), &["test", "runbooks/tests/elsewhere"]);
    assert_eq!(o.status.code(), Some(2), "{}", both(&o));
    assert!(
        stdout(&o).contains("runbooks/elsewhere.yaml is not there: name it with `runbook:`"),
        "{}",
        both(&o)
    );
    // Named, it runs (against the broken runbook: it fails).
    let case = moved.join("apply/case.yaml");
    let text = std::fs::read_to_string(&case).unwrap();
    std::fs::write(
        &case,
        text.replace(
            "region: us-east-1\n",
            "region: us-east-1\nrunbook: ../../../unused-ebs.yaml\n",
        ),
    )
    .unwrap();
    let o = orgop_in(tmp.path(), &["test", "runbooks/tests/elsewhere"]);
    assert_eq!(o.status.code(), Some(1), "{}", both(&o));
}

#[test]
fn a_wait_polls_until_its_waiter_succeeds_fails_or_runs_out_of_attempts() {
    // tests/wait/tests/snapshot-then-delete/: pending then completed (the delete follows);
    // pending for every allowed poll (timeout_seconds / delay: 4), so that volume is kept and
    // the other goes on; a failure state at once. Expectations written by hand.
    let out = orgop_in(&repo(), &["test", "tests/wait/snapshot-then-delete.yaml"]);
    let text = both(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    for case in ["completes", "fails", "times-out"] {
        assert!(
            text.contains(&format!("PASS snapshot-then-delete/{case}")),
            "{text}"
        );
    }
    assert!(text.contains("3 cases: 3 passed"), "{text}");
}

#[test]
fn a_report_from_several_steps_is_one_table() {
    // tests/report/: internet-facing load balancers (report.from) and public databases
    // (report.also), each with its own resource id, the columns in the report's order.
    let out = orgop_in(&repo(), &["test", "tests/report/public-endpoints.yaml"]);
    let text = both(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("PASS public-endpoints/dry-run"), "{text}");
}
