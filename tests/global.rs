//! A runbook whose every call is to a global service (IAM) runs once per account, not once
//! per region, and its results say `global` where others name a region (issue 12).
use orgop_testkit::{TempDir, moto, seed_org};
use serde_json::Value;
use std::collections::BTreeMap;
use std::process::Output;

fn orgop(endpoint: &str, args: &[&str]) -> Output {
    orgop_testkit::run_against(env!("CARGO_BIN_EXE_orgop"), endpoint, args)
}

fn text(o: &Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn a_runbook_of_global_services_runs_once_per_account_with_region_global() {
    let emulator = moto();
    let url = emulator.url();
    let seed = seed_org(&url, 3, "us-east-1", 0);
    let accounts: Vec<String> = seed["accounts"]
        .as_object()
        .expect("seed_org lists the accounts")
        .keys()
        .cloned()
        .collect();
    assert_eq!(accounts.len(), 3, "{seed}");
    // One user per member account (the second member gets two), created in that account.
    let mut users: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (i, account) in accounts.iter().enumerate() {
        for n in 0..=(i % 2) {
            let name = format!("user-{i}-{n}");
            let role = format!("arn:aws:iam::{account}:role/OrgOpReadRole");
            let params = format!("{{\"UserName\": \"{name}\"}}");
            let out = orgop(
                &url,
                &[
                    "call",
                    "iam:CreateUser",
                    "--params",
                    &params,
                    "--role-arn",
                    &role,
                ],
            );
            assert_eq!(out.status.code(), Some(0), "{}", text(&out));
            users.entry(account.clone()).or_default().push(name);
        }
    }

    let dir = TempDir::new("global");
    let out = orgop(
        &url,
        &[
            "run",
            "tests/global/iam-users.yaml",
            "--regions",
            "us-east-1,eu-west-1,eu-central-1",
            "--out",
            dir.path().to_str().unwrap(),
        ],
    );
    let all = text(&out);
    assert_eq!(out.status.code(), Some(0), "{all}");
    assert!(all.contains("--regions is ignored"), "{all}");
    let rows: Vec<Value> = std::fs::read_to_string(dir.path().join("results.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    // Every account of the organization once (the management account too), never per region.
    let mut seen: Vec<&str> = rows
        .iter()
        .map(|r| r["account_id"].as_str().unwrap())
        .collect();
    seen.sort();
    let mut distinct = seen.clone();
    distinct.dedup();
    assert_eq!(seen, distinct, "an account ran more than once: {all}");
    assert!(rows.iter().all(|r| r["region"] == "global"), "{all}");
    for (account, names) in &users {
        let row = rows
            .iter()
            .find(|r| r["account_id"] == account.as_str())
            .unwrap_or_else(|| panic!("{account} has no row: {all}"));
        assert_eq!(row["status"], "ok", "{row}");
        let mut found: Vec<&str> = row["findings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["resource_id"].as_str().unwrap())
            .collect();
        found.sort();
        assert_eq!(found, *names, "{row}");
    }
    let csv = std::fs::read_to_string(dir.path().join("findings.csv")).unwrap();
    assert!(csv.lines().skip(1).all(|l| l.contains(",global,")), "{csv}");
}
