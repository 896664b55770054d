//! The catalog's runbooks end to end against moto server: an organization of 3 member accounts
//! x 2 regions (tests/support/seed_org.py), seeded by tests/support/seed_catalog.py with what
//! each runbook must find and the traps it must not (a 443 rule and a 22 rule from 10.0.0.0/8
//! open, a keep-tagged and an associated Elastic IP, a compliant instance, a peering inside an
//! account). Every runbook moto can answer is run dry and its findings compared exactly; then
//! sg-open-ingress, tag-remediation and inspector-activation are applied and moto's state is
//! read back. securityhub-standards is not here: moto has no Security Hub standards API (its
//! cases are written by hand).
use orgop_testkit::{TempDir, moto, repo, venv_python};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::process::{Command, Output};
use std::time::Instant;

const REGIONS: &str = "us-east-1,eu-west-1";

type Found = BTreeSet<(String, String, String)>;

fn orgop(endpoint: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_orgop"))
        .args(args)
        .args(["--endpoint-url", endpoint])
        .current_dir(repo())
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "us-east-1")
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_ENDPOINT_URL")
        .output()
        .expect("orgop runs")
}

fn script(args: &[&str]) -> Value {
    let out = Command::new(venv_python())
        .args(args)
        .output()
        .expect("the seeding script runs");
    assert!(
        out.status.success(),
        "seeding failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("the seeding script prints JSON")
}

/// Runs `runbooks/<name>.yaml` across the organization; every item must end ok.
fn run(endpoint: &str, name: &str, extra: &[&str]) -> Vec<Value> {
    let out = TempDir::new(&format!("catalog-{name}"));
    let runbook = format!("runbooks/{name}.yaml");
    let mut args = vec!["run", &runbook, "--out", out.path().to_str().unwrap()];
    args.extend_from_slice(extra);
    let o = orgop(endpoint, &args);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{name}: {stderr}");
    let results: Vec<Value> = std::fs::read_to_string(out.path().join("results.jsonl"))
        .unwrap_or_else(|e| panic!("{name}: no results ({e}): {stderr}"))
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    // 3 members and the management account, x 2 regions.
    assert_eq!(results.len(), 8, "{name}: {results:?}");
    for r in &results {
        assert_eq!(r["status"], "ok", "{name}: {r}");
    }
    results
}

fn key(r: &Value, id: &Value) -> (String, String, String) {
    (
        r["account_id"].as_str().unwrap().to_string(),
        r["region"].as_str().unwrap().to_string(),
        id.as_str().unwrap().to_string(),
    )
}

/// (account, region, resource id) of every finding.
fn found(results: &[Value]) -> Found {
    results
        .iter()
        .flat_map(|r| {
            r["findings"]
                .as_array()
                .unwrap()
                .iter()
                .map(move |f| key(r, &f["resource_id"]))
        })
        .collect()
}

/// The finding's columns by (account, region, resource id).
fn columns(results: &[Value]) -> BTreeMap<(String, String, String), Value> {
    results
        .iter()
        .flat_map(|r| {
            r["findings"]
                .as_array()
                .unwrap()
                .iter()
                .map(move |f| (key(r, &f["resource_id"]), f["columns"].clone()))
        })
        .collect()
}

fn triples(v: &Value) -> Found {
    v.as_array()
        .unwrap()
        .iter()
        .map(|t| {
            let t = t.as_array().unwrap();
            (
                t[0].as_str().unwrap().to_string(),
                t[1].as_str().unwrap().to_string(),
                t[2].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// One read in a member account, through `orgop call` with its role.
fn call(endpoint: &str, account: &str, region: &str, op: &str) -> Value {
    let role = format!("arn:aws:iam::{account}:role/OrgOpReadRole");
    let o = orgop(
        endpoint,
        &[
            "call",
            op,
            "--paginate",
            "--region",
            region,
            "--role-arn",
            &role,
        ],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout).unwrap()
}

/// Every action record of a run: (action, outcome).
fn outcomes(results: &[Value]) -> Vec<(String, String)> {
    results
        .iter()
        .flat_map(|r| r["actions"].as_array().unwrap().iter())
        .map(|a| {
            (
                a["action"].as_str().unwrap().to_string(),
                a["outcome"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn the_catalog_across_an_emulated_organization() {
    let start = Instant::now();
    let emulator = moto();
    let url = emulator.url();
    let org = script(&[
        repo().join("tests/support/seed_org.py").to_str().unwrap(),
        "--endpoint",
        &url,
        "--accounts",
        "3",
        "--regions",
        REGIONS,
        "--attached",
        "0",
        "--unattached",
        "0",
        "--kept",
        "0",
    ]);
    let accounts: Vec<String> = org["accounts"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    assert_eq!(accounts.len(), 3);
    let seed = script(&[
        repo()
            .join("tests/support/seed_catalog.py")
            .to_str()
            .unwrap(),
        "--endpoint",
        &url,
        "--accounts",
        &accounts.join(","),
        "--regions",
        REGIONS,
    ]);
    let expect = &seed["expect"];
    let ids = &seed["ids"];
    eprintln!("seeded in {:?}", start.elapsed());

    // Dry runs: exactly the seeded findings, nothing sent.
    let mut dry = BTreeMap::new();
    for name in [
        "unused-eips",
        "lambda-functions",
        "vpcs",
        "tags",
        "public-ips",
        "tag-remediation",
        "sg-open-ingress",
        "inspector-activation",
    ] {
        let results = run(&url, name, &[]);
        assert_eq!(found(&results), triples(&expect[name]), "{name}");
        assert!(
            outcomes(&results).iter().all(|(_, o)| o == "planned"),
            "{name}: {results:?}"
        );
        dry.insert(name, results);
    }
    // Per kind, 3 members x 2 regions: the counts say the traps stayed out.
    for (name, n) in [
        ("unused-eips", 6),
        ("lambda-functions", 12),
        ("vpcs", 12),
        ("tags", 12),
        ("public-ips", 18),
        ("tag-remediation", 12),
        ("sg-open-ingress", 24),
        ("inspector-activation", 6),
    ] {
        assert_eq!(found(&dry[name]).len(), n, "{name}");
    }
    let lambda = columns(&dry["lambda-functions"]);
    let deprecated: Found = lambda
        .iter()
        .filter(|(_, c)| c["deprecated"] == true)
        .map(|(k, _)| k.clone())
        .collect();
    assert_eq!(deprecated, triples(&ids["deprecated"]));
    for (k, c) in columns(&dry["inspector-activation"]) {
        assert_eq!(c["ec2"], "ENABLED", "{k:?}");
        assert_eq!(
            c["to_enable"],
            serde_json::json!(["ECR", "LAMBDA"]),
            "{k:?}"
        );
    }
    eprintln!("dry runs done at {:?}", start.elapsed());

    // sg-open-ingress applied: exactly the open sensitive rules go, by rule id.
    let applied = run(&url, "sg-open-ingress", &["--apply"]);
    let revoked = triples(&ids["revoked_rules"]);
    assert_eq!(found(&applied), revoked);
    assert_eq!(outcomes(&applied).len(), revoked.len());
    assert!(
        outcomes(&applied).iter().all(|(_, o)| o == "done"),
        "{applied:?}"
    );
    let kept = triples(&ids["kept_rules"]);
    for a in &accounts {
        for region in REGIONS.split(',') {
            let rules: BTreeSet<String> =
                call(&url, a, region, "ec2:DescribeSecurityGroupRules")["SecurityGroupRules"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|r| r["SecurityGroupRuleId"].as_str().unwrap().to_string())
                    .collect();
            for (_, _, id) in revoked.iter().filter(|(x, r, _)| x == a && r == region) {
                assert!(!rules.contains(id), "{a} {region}: {id} still there");
            }
            let mine: Vec<_> = kept
                .iter()
                .filter(|(x, r, _)| x == a && r == region)
                .collect();
            // 443, 22 from 10.0.0.0/8, 8000-8100 and ICMP from the world.
            assert_eq!(mine.len(), 4, "{a} {region}");
            for (_, _, id) in mine {
                assert!(rules.contains(id), "{a} {region}: {id} was revoked");
            }
        }
    }
    assert!(found(&run(&url, "sg-open-ingress", &[])).is_empty());

    // tag-remediation applied: the missing tags added, present ones and the compliant
    // instance untouched.
    let applied = run(&url, "tag-remediation", &["--apply"]);
    assert!(
        outcomes(&applied).iter().all(|(_, o)| o == "done"),
        "{applied:?}"
    );
    let tags_of = |a: &str, region: &str| -> BTreeMap<String, BTreeMap<String, String>> {
        call(&url, a, region, "ec2:DescribeInstances")["Reservations"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|r| r["Instances"].as_array().unwrap().iter())
            .map(|i| {
                let tags = i["Tags"]
                    .as_array()
                    .map(|t| {
                        t.iter()
                            .map(|t| {
                                (
                                    t["Key"].as_str().unwrap().to_string(),
                                    t["Value"].as_str().unwrap().to_string(),
                                )
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                (i["InstanceId"].as_str().unwrap().to_string(), tags)
            })
            .collect()
    };
    let want = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    for a in &accounts {
        for region in REGIONS.split(',') {
            let tags = tags_of(a, region);
            let one = |kind: &str| {
                let t = triples(&ids[kind]);
                let (_, _, id) = t
                    .into_iter()
                    .find(|(x, r, _)| x == a && r == region)
                    .unwrap();
                tags[&id].clone()
            };
            assert_eq!(
                one("untagged"),
                want(&[("owner", "unassigned"), ("cost-center", "unassigned")])
            );
            assert_eq!(
                one("partial"),
                want(&[("owner", "team-a"), ("cost-center", "unassigned")])
            );
            assert_eq!(
                one("compliant"),
                want(&[
                    ("owner", "team-b"),
                    ("cost-center", "cc-1"),
                    ("Name", "compliant")
                ])
            );
        }
    }
    assert!(found(&run(&url, "tag-remediation", &[])).is_empty());

    // inspector-activation applied: every scan type enabled, nothing left to enable.
    let applied = run(&url, "inspector-activation", &["--apply"]);
    assert_eq!(outcomes(&applied).len(), 6);
    assert!(
        outcomes(&applied).iter().all(|(_, o)| o == "done"),
        "{applied:?}"
    );
    for (k, c) in columns(&run(&url, "inspector-activation", &[])) {
        assert_eq!(
            (&c["ec2"], &c["ecr"], &c["lambda"], &c["to_enable"]),
            (
                &"ENABLED".into(),
                &"ENABLED".into(),
                &"ENABLED".into(),
                &serde_json::json!([])
            ),
            "{k:?}"
        );
    }
    eprintln!("done in {:?}", start.elapsed());
}
