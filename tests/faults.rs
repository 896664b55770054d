//! `orgop run` of `unused-ebs` under injected faults: 12 member accounts (and the management
//! account) x 2 regions on moto server, behind the fault proxy drawing, with a fixed seed, 20 %
//! throttling, 5 % 500s, 2 % connection resets and 1 % answers that never come (held past the
//! client's read timeout, then dropped), plus 2 % answers cut after the emulator acted. Every
//! item must end with a recorded status, the findings of the items that ended ok must be exactly the seeded truth, and an applied run
//! must act on no resource twice (mutating requests counted at the proxy).
use orgop_testkit::{TempDir, moto, proxy, proxy_stats, repo, seed_org};
use serde_json::Value;
use std::collections::BTreeSet;
use std::process::{Command, Output};
use std::time::Instant;

const REGIONS: &str = "us-east-1,eu-west-1";
const FAULTS: &[&str] = &[
    "--seed",
    "7",
    "--fault-throttle",
    "20",
    "--fault-5xx",
    "5",
    "--fault-reset",
    "2",
    "--fault-timeout",
    "1",
    // Beyond the mix: answers cut after the emulator acted. A mutating call must
    // then not be sent again (its outcome is unknown), or a snapshot would be taken twice.
    "--fault-truncate",
    "2",
    "--slow-ms",
    "2500",
];

fn run(endpoint: &str, tag: &str, extra: &[&str]) -> (Output, Vec<Value>, f64) {
    let out = TempDir::new(&format!("faults-{tag}"));
    let start = Instant::now();
    let o = Command::new(env!("CARGO_BIN_EXE_orgop"))
        .args([
            "run",
            "runbooks/unused-ebs.yaml",
            "--param",
            "min_age_days=0",
        ])
        .args([
            "--out",
            out.path().to_str().unwrap(),
            "--endpoint-url",
            endpoint,
        ])
        .args(extra)
        .current_dir(repo())
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "us-east-1")
        // Attempts wait 1 s for an answer, so the held requests time out quickly.
        .env("ORGOP_READ_TIMEOUT", "1")
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_ENDPOINT_URL")
        .output()
        .expect("orgop runs");
    let seconds = start.elapsed().as_secs_f64();
    let text = std::fs::read_to_string(out.path().join("results.jsonl"))
        .unwrap_or_else(|e| panic!("no results ({e}):\n{}", String::from_utf8_lossy(&o.stderr)));
    let results = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    (o, results, seconds)
}

fn findings_of_ok(results: &[Value]) -> BTreeSet<(String, String, String)> {
    results
        .iter()
        .filter(|r| r["status"] == "ok")
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

fn truth(seed: &Value, results: &[Value]) -> BTreeSet<(String, String, String)> {
    let ok: BTreeSet<(&str, &str)> = results
        .iter()
        .filter(|r| r["status"] == "ok")
        .map(|r| {
            (
                r["account_id"].as_str().unwrap(),
                r["region"].as_str().unwrap(),
            )
        })
        .collect();
    seed["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["account_id"].as_str().unwrap().to_string(),
                f["region"].as_str().unwrap().to_string(),
                f["volume_id"].as_str().unwrap().to_string(),
            )
        })
        .filter(|(a, r, _)| ok.contains(&(a.as_str(), r.as_str())))
        .collect()
}

#[test]
fn unused_ebs_under_injected_faults_loses_nothing_and_acts_at_most_once() {
    let emulator = moto();
    let seed = seed_org(&emulator.url(), 12, REGIONS, 2);
    // The baseline for the figures: the same dry run through the proxy without faults.
    let clean = proxy(&emulator.url(), &[]);
    let (_, baseline, clean_seconds) = run(&clean.url(), "clean", &[]);
    assert!(baseline.iter().all(|r| r["status"] == "ok"));
    drop(clean);
    let faulty = proxy(&emulator.url(), FAULTS);

    let (o, results, dry_seconds) = run(&faulty.url(), "dry", &[]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(results.len(), 26, "every item is recorded:\n{stderr}");
    for r in &results {
        let status = r["status"].as_str().unwrap();
        assert!(["ok", "error", "denied"].contains(&status), "{r}");
        if status != "ok" {
            assert!(
                r["error"]["code"].is_string(),
                "a failed item says why: {r}"
            );
        }
    }
    let ok = results.iter().filter(|r| r["status"] == "ok").count();
    assert!(
        ok >= 24,
        "retries carry most items through: {ok} of 26 ok\n{stderr}"
    );
    assert_eq!(findings_of_ok(&results), truth(&seed, &results));
    let dry = proxy_stats(&faulty);
    assert_eq!(dry["ec2_mutating"], 0, "{dry}");

    let (o, results, apply_seconds) = run(&faulty.url(), "apply", &["--apply"]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(results.len(), 26, "every item is recorded:\n{stderr}");
    let stats = proxy_stats(&faulty);
    let twice: Vec<(&String, &Value)> = stats["mutations"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(_, n)| n.as_u64() != Some(1))
        .collect();
    assert!(twice.is_empty(), "acted on more than once: {twice:?}");
    // Every action reported done was done exactly once at the emulator.
    for r in &results {
        for a in r["actions"].as_array().unwrap() {
            if a["outcome"] == "done" {
                let id = a["resource_id"].as_str().unwrap();
                let op = if a["action"] == "delete" {
                    "DeleteVolume"
                } else {
                    "CreateSnapshot"
                };
                assert_eq!(stats["mutations"][format!("{op}:{id}")], 1, "{a}");
            }
        }
    }
    // Over both runs (one draw per request, fixed seed), every kind of fault was injected.
    let faults = stats["faults"].as_object().unwrap();
    for kind in ["throttle", "5xx", "reset", "timeout", "truncate"] {
        assert!(
            faults.get(kind).and_then(Value::as_u64).unwrap_or(0) > 0,
            "{kind}: {stats}"
        );
    }
    eprintln!(
        "faults: clean dry {clean_seconds:.1} s; under faults dry {dry_seconds:.1} s ({:.2}x), apply {apply_seconds:.1} s; items ok: dry {ok}/26; injected {}",
        dry_seconds / clean_seconds,
        stats["faults"]
    );
}
