//! A runbook with `targets.scope: operations` runs once, in the operations account, with its
//! own credentials: the accounts inventory reads Organizations without assuming any member
//! role (issue 12).
use orgop_testkit::{TempDir, moto, proxy, proxy_stats, seed_org};
use serde_json::Value;
use std::process::Output;

fn orgop(endpoint: &str, args: &[&str]) -> Output {
    orgop_testkit::run_against(env!("CARGO_BIN_EXE_orgop"), endpoint, args)
}

/// `orgop run runbooks/accounts.yaml` against `endpoint`, which must succeed: its
/// results.jsonl rows, and its stderr.
fn run_accounts(endpoint: &str) -> (Vec<Value>, String) {
    let dir = TempDir::new("operations");
    let out = orgop(
        endpoint,
        &[
            "run",
            "runbooks/accounts.yaml",
            "--out",
            dir.path().to_str().unwrap(),
        ],
    );
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(0), "{err}");
    let rows = std::fs::read_to_string(dir.path().join("results.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    (rows, err)
}

#[test]
fn the_accounts_inventory_runs_once_in_the_operations_account_assuming_no_role() {
    let emulator = moto();
    let seed = seed_org(&emulator.url(), 3, "us-east-1", 0);
    let members: Vec<&String> = seed["accounts"].as_object().unwrap().keys().collect();
    assert_eq!(members.len(), 3, "{seed}");
    let counting = proxy(&emulator.url(), &[]);
    let (rows, err) = run_accounts(&counting.url());
    // One item: moto's caller (the management account), in the region of a global service.
    assert_eq!(rows.len(), 1, "{err}");
    assert_eq!(rows[0]["account_id"], "123456789012", "{}", rows[0]);
    assert_eq!(rows[0]["region"], "global", "{}", rows[0]);
    assert_eq!(rows[0]["status"], "ok", "{}", rows[0]);
    let mut found: Vec<&str> = rows[0]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["resource_id"].as_str().unwrap())
        .collect();
    found.sort();
    let mut expected: Vec<&str> = members.iter().map(|s| s.as_str()).collect();
    expected.push("123456789012");
    expected.sort();
    assert_eq!(found, expected, "{}", rows[0]);
    // Its own credentials: not one AssumeRole went out.
    let stats = proxy_stats(&counting);
    let assumed = stats["assumed_roles"]
        .as_object()
        .expect("the proxy counts AssumeRole calls");
    assert!(assumed.is_empty(), "{stats}");
}

/// The accounts inventory joins each account to the OU it is in (walked from the root, five
/// levels deep) and to its tags: one row per account, with its exact OU path and tags.
#[test]
fn the_accounts_inventory_gives_each_account_its_ou_path_and_tags() {
    let emulator = moto();
    seed_org(&emulator.url(), 4, "us-east-1", 0);
    let out = std::process::Command::new(orgop_testkit::venv_python())
        .arg(orgop_testkit::repo().join("tests/support/seed_ous.py"))
        .args(["--endpoint", &emulator.url()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let expected: Value = serde_json::from_slice(&out.stdout).unwrap();
    let (rows, err) = run_accounts(&emulator.url());
    assert_eq!(rows.len(), 1, "{err}");
    let row = &rows[0];
    let findings = row["findings"].as_array().unwrap();
    let expected = expected.as_object().unwrap();
    // Every account once: the join keeps one row per account.
    assert_eq!(findings.len(), expected.len(), "{row}");
    for f in findings {
        let id = f["resource_id"].as_str().unwrap();
        let want = &expected[id];
        let c = &f["columns"];
        assert_eq!(c["ou_path"], want["ou_path"], "{id}: {f}");
        let tags: Vec<&str> = c["tags"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t.as_str().unwrap())
            .collect();
        let mut tags = tags;
        tags.sort();
        let mut want_tags: Vec<&str> = want["tags"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t.as_str().unwrap())
            .collect();
        want_tags.sort();
        assert_eq!(tags, want_tags, "{id}: {f}");
        assert_eq!(c["status"], "ACTIVE", "{f}");
        assert!(c["name"].as_str().is_some_and(|n| !n.is_empty()), "{f}");
        let ou = c["ou_id"].as_str().unwrap();
        let at_root = want["ou_path"] == "Root";
        assert_eq!(ou.starts_with("r-"), at_root, "{id} is in {ou}: {f}");
    }
    // The deepest account went through every level: five OUs below the root.
    assert!(
        findings
            .iter()
            .any(|f| f["columns"]["ou_path"] == "Root/Workloads/Prod/Web/Blue/Canary"),
        "{row}"
    );
}
