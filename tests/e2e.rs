//! `orgop run` end to end against moto server (a real AWS emulator) with an organization of
//! 12 member accounts x 2 regions, seeded with attached, unattached and keep-tagged volumes.
//! The fault proxy (tests/support/aws_proxy.py) sits in between to deny one account's
//! `sts:AssumeRole`, inject throttling, and count mutating requests.
use orgop_testkit::{TempDir, moto, proxy, proxy_stats, seed_org};
use serde_json::Value;
use std::collections::BTreeSet;
use std::process::Output;

const REGIONS: &str = "us-east-1,eu-west-1";

fn orgop(endpoint: &str, args: &[&str]) -> Output {
    orgop_testkit::run_against(env!("CARGO_BIN_EXE_orgop"), endpoint, args)
}

/// Runs the runbook with `--out` a fresh folder (removed afterwards) and reads its results.
fn run(endpoint: &str, tag: &str, extra: &[&str]) -> (Output, Vec<Value>) {
    let out = TempDir::new(&format!("e2e-{tag}"));
    let dir = out.path();
    let mut args = vec![
        "run",
        "runbooks/unused-ebs.yaml",
        "--param",
        "min_age_days=0",
        "--out",
        dir.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let o = orgop(endpoint, &args);
    let text = std::fs::read_to_string(dir.join("results.jsonl"))
        .unwrap_or_else(|e| panic!("no results ({e}):\n{}", String::from_utf8_lossy(&o.stderr)));
    let results: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    // Sorted by account and region, and the spool the run wrote them through is gone.
    let keys: Vec<(String, String)> = results
        .iter()
        .map(|r| (r["account_id"].to_string(), r["region"].to_string()))
        .collect();
    assert!(keys.is_sorted(), "results.jsonl is not sorted: {keys:?}");
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["findings.csv", "results.jsonl"]);
    (o, results)
}

/// (account, region, volume id) of every finding.
fn findings(results: &[Value]) -> BTreeSet<(String, String, String)> {
    results
        .iter()
        .flat_map(|r| {
            r["findings"].as_array().unwrap().iter().map(move |f| {
                (
                    r["account_id"].as_str().unwrap().to_string(),
                    r["region"].as_str().unwrap().to_string(),
                    f["resource_id"].as_str().unwrap().to_string(),
                )
            })
        })
        .collect()
}

fn expected(seed: &Value, without: Option<&str>) -> BTreeSet<(String, String, String)> {
    seed["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| Some(f["account_id"].as_str().unwrap()) != without)
        .map(|f| {
            (
                f["account_id"].as_str().unwrap().into(),
                f["region"].as_str().unwrap().into(),
                f["volume_id"].as_str().unwrap().into(),
            )
        })
        .collect()
}

/// Every volume id in one account and region, read with `orgop call`.
fn volumes(endpoint: &str, account: &str, region: &str) -> BTreeSet<String> {
    let role = format!("arn:aws:iam::{account}:role/OrgOpExecutionRole");
    let o = orgop(
        endpoint,
        &[
            "call",
            "ec2:DescribeVolumes",
            "--paginate",
            "--region",
            region,
            "--role-arn",
            &role,
        ],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    v["Volumes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["VolumeId"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn unused_ebs_across_an_emulated_organization() {
    let emulator = moto();
    let seed = seed_org(&emulator.url(), 12, REGIONS, 2);
    let accounts: Vec<&String> = seed["accounts"].as_object().unwrap().keys().collect();
    assert_eq!(accounts.len(), 12);
    let denied = accounts[3].clone();

    // Dry run through the proxy, one account's role refused, ec2 throttled at first.
    let faulty = proxy(
        &emulator.url(),
        &[
            "--deny-assume-role",
            &denied,
            "--throttle-ec2",
            "6",
            "--throttle-every",
            "9",
        ],
    );
    let (o, results) = run(&faulty.url(), "dry", &[]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(
        o.status.code(),
        Some(1),
        "a denied item makes the exit status non-zero:\n{stderr}"
    );
    // 12 members and the management account, 2 regions each: every item accounted for.
    assert_eq!(results.len(), 26, "{stderr}");
    for r in &results {
        let want = if r["account_id"] == denied.as_str() {
            "denied"
        } else {
            "ok"
        };
        assert_eq!(r["status"], want, "{r}");
    }
    assert!(
        stderr.contains("denied 2") && stderr.contains(&format!("{denied} ")),
        "the summary says so:\n{stderr}"
    );
    assert_eq!(
        findings(&results),
        expected(&seed, Some(&denied)),
        "exactly the unattached, not-kept volumes"
    );
    let stats = proxy_stats(&faulty);
    assert!(stats["throttled"].as_u64().unwrap() >= 6, "{stats}");
    assert_eq!(
        stats["ec2_mutating"], 0,
        "a dry run sends no mutating request: {stats}"
    );
    assert_eq!(
        stats["denied_assume_role"].as_u64().map(|n| n >= 1),
        Some(true)
    );
    // Nothing was changed: every seeded volume is still there.
    let first = seed["findings"][0].clone();
    let (a, region) = (
        first["account_id"].as_str().unwrap(),
        first["region"].as_str().unwrap(),
    );
    let before = volumes(&emulator.url(), a, region);
    assert!(
        expected(&seed, None)
            .iter()
            .filter(|(x, r, _)| x == a && r == region)
            .all(|(_, _, v)| before.contains(v))
    );
    drop(faulty);

    // Applied, straight to the emulator: exactly the findings are snapshotted and deleted.
    let (o, results) = run(&emulator.url(), "apply", &["--apply"]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let want = expected(&seed, None);
    assert_eq!(findings(&results), want);
    let mut acted = BTreeSet::new();
    for r in &results {
        for a in r["actions"].as_array().unwrap() {
            assert_eq!(a["outcome"], "done", "{a}");
            acted.insert((
                a["action"].as_str().unwrap().to_string(),
                a["resource_id"].as_str().unwrap().to_string(),
            ));
        }
    }
    for (_, _, v) in &want {
        assert!(
            acted.contains(&("snapshot".into(), v.clone()))
                && acted.contains(&("delete".into(), v.clone())),
            "{v}"
        );
    }
    assert_eq!(acted.len(), 2 * want.len());
    let after = volumes(&emulator.url(), a, region);
    for v in seed["kept"]
        .as_array()
        .unwrap()
        .iter()
        .chain(seed["attached"].as_array().unwrap())
    {
        let v = v.as_str().unwrap();
        if before.contains(v) {
            assert!(after.contains(v), "{v} must survive");
        }
    }
    for (x, r, v) in &want {
        if x == a && r == region {
            assert!(!after.contains(v), "{v} must be gone");
        }
    }

    // A second run finds nothing.
    let (o, results) = run(&emulator.url(), "again", &[]);
    assert_eq!(o.status.code(), Some(0));
    assert!(findings(&results).is_empty());

    // Results can go straight to S3.
    let mk = orgop(
        &emulator.url(),
        &[
            "call",
            "s3:CreateBucket",
            "--params",
            r#"{"Bucket": "orgop-runs"}"#,
        ],
    );
    assert!(
        mk.status.success(),
        "{}",
        String::from_utf8_lossy(&mk.stderr)
    );
    let o = orgop(
        &emulator.url(),
        &[
            "run",
            "runbooks/unused-ebs.yaml",
            "--out",
            "s3://orgop-runs/unused-ebs/2026-11-28",
        ],
    );
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let got = orgop(
        &emulator.url(),
        &[
            "call",
            "s3:GetObject",
            "--params",
            r#"{"Bucket": "orgop-runs", "Key": "unused-ebs/2026-11-28/results.jsonl"}"#,
        ],
    );
    assert!(
        got.status.success(),
        "{}",
        String::from_utf8_lossy(&got.stderr)
    );
    let body: Value = serde_json::from_slice(&got.stdout).unwrap();
    use base64::Engine as _;
    let text = base64::engine::general_purpose::STANDARD
        .decode(body["Body"].as_str().unwrap())
        .unwrap();
    assert_eq!(String::from_utf8(text).unwrap().lines().count(), 26);
}

/// Dry runs assume the read role (`role.name`) and applied runs the remediation role
/// (`role.apply_name`): with the remediation role refused, a dry run is unaffected and an
/// applied run is denied in every item, sending nothing.
#[test]
fn applied_runs_assume_the_remediation_role_and_dry_runs_the_read_role() {
    let emulator = moto();
    seed_org(&emulator.url(), 2, "us-east-1", 1);
    let faulty = proxy(
        &emulator.url(),
        &["--deny-role-name", "OrgOpRemediationRole"],
    );
    let (o, results) = run(&faulty.url(), "roles-dry", &["--regions", "us-east-1"]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(results.iter().all(|r| r["status"] == "ok"));
    let stats = proxy_stats(&faulty);
    let assumed = stats["assumed_roles"].as_object().unwrap();
    assert_eq!(
        assumed.keys().collect::<Vec<_>>(),
        ["OrgOpReadRole"],
        "{stats}"
    );

    let (o, results) = run(
        &faulty.url(),
        "roles-apply",
        &["--regions", "us-east-1", "--apply"],
    );
    assert_eq!(
        o.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(results.len(), 3, "2 members and the management account");
    for r in &results {
        assert_eq!(r["status"], "denied", "{r}");
        let message = r["error"]["message"].as_str().unwrap();
        assert!(message.contains("OrgOpRemediationRole"), "{message}");
    }
    let stats = proxy_stats(&faulty);
    assert_eq!(stats["assumed_roles"]["OrgOpRemediationRole"], 3, "{stats}");
    assert_eq!(stats["ec2_mutating"], 0, "{stats}");
}
