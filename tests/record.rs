//! `orgop record` end to end against moto server: a dry run and an applied run of
//! `unused-ebs` in seeded member accounts become cases that `orgop test` passes, hold what the
//! seeding says must be found, and keep none of the run's account ids or credentials.
use orgop_testkit::{TempDir, moto, repo, seed_org};
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn orgop(cwd: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_orgop"))
        .args(args)
        .current_dir(cwd)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "us-east-1")
        .env_remove("AWS_SESSION_TOKEN")
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_ENDPOINT_URL")
        .output()
        .expect("orgop runs")
}

fn both(o: &Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
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

/// Every file of a case folder: (name, text).
fn files(dir: &Path) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let p = e.unwrap().path();
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read_to_string(&p).unwrap(),
            )
        })
        .collect();
    out.sort();
    out
}

fn case_yaml(dir: &Path) -> Value {
    let text = std::fs::read_to_string(dir.join("case.yaml")).unwrap();
    serde_yaml::from_str(&text).unwrap()
}

/// Access key ids (AKIA/ASIA + 16) that are not orgop's placeholders.
fn real_key_ids(text: &str) -> Vec<String> {
    let b = text.as_bytes();
    let key = |c: &u8| c.is_ascii_uppercase() || c.is_ascii_digit();
    (0..b.len().saturating_sub(19))
        .filter(|&i| {
            (b[i..].starts_with(b"AKIA") || b[i..].starts_with(b"ASIA"))
                && b[i + 4..i + 20].iter().all(key)
        })
        .map(|i| text[i..i + 20].to_string())
        .filter(|k| !k.contains("EXAMPLE"))
        .collect()
}

/// A runbook whose answers hold credentials: who the item's session is, and, applied, a
/// session token made from it.
const SESSION: &str = "name: session
description: Who the item's session is, and a session token made from it.
version: 1
targets:
  regions: [us-east-1]
role:
  name: OrgOpReadRole
steps:
  - id: who
    call: sts:GetCallerIdentity
    select: \"[@]\"
actions:
  - id: token
    call: sts:GetSessionToken
    parameters:
      DurationSeconds: 900
report:
  from: who
  resource_id: Account
  columns:
    arn: Arn
";

fn json_or_yaml(name: &str, text: &str) -> Value {
    if name.ends_with(".json") {
        serde_json::from_str(text).unwrap()
    } else {
        serde_yaml::from_str(text).unwrap()
    }
}

/// Every `SecretAccessKey`/`SessionToken` value is a placeholder, every `AccessKeyId` too.
fn credentials_scrubbed(name: &str, v: &Value) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                match (k.as_str(), x.as_str()) {
                    ("SecretAccessKey" | "SessionToken", Some(s)) => {
                        assert!(s.starts_with("SCRUBBED-"), "{name}: {k}: {s}")
                    }
                    ("AccessKeyId", Some(s)) => assert!(s.contains("EXAMPLE"), "{name}: {k}: {s}"),
                    _ => credentials_scrubbed(name, x),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|x| credentials_scrubbed(name, x)),
        _ => {}
    }
}

struct Recorded {
    dir: PathBuf,
    case: Value,
}

fn record(root: &Path, endpoint: &str, case: &str, extra: &[&str]) -> Recorded {
    let mut args = vec![
        "record",
        "runbooks/unused-ebs.yaml",
        "--case",
        case,
        "--endpoint-url",
        endpoint,
        "--param",
        "min_age_days=0",
    ];
    args.extend_from_slice(extra);
    let o = orgop(root, &args);
    assert_eq!(o.status.code(), Some(0), "{}", both(&o));
    let dir = root.join("runbooks/tests/unused-ebs").join(case);
    assert_eq!(
        String::from_utf8_lossy(&o.stdout).trim(),
        Path::new("runbooks/tests/unused-ebs")
            .join(case)
            .display()
            .to_string()
    );
    // The new case passes, offline.
    let t = orgop(root, &["test", dir.to_str().unwrap()]);
    assert_eq!(t.status.code(), Some(0), "{}", both(&t));
    assert!(
        String::from_utf8_lossy(&t.stdout).contains(&format!("PASS unused-ebs/{case}")),
        "{}",
        both(&t)
    );
    Recorded {
        case: case_yaml(&dir),
        dir,
    }
}

fn finding_ids(case: &Value) -> BTreeSet<String> {
    case["expect"]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["resource_id"].as_str().unwrap().to_string())
        .collect()
}

fn seeded(seed: &Value, account: &str, region: &str) -> BTreeSet<String> {
    seed["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["account_id"] == account && f["region"] == region)
        .map(|f| f["volume_id"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn recorded_cases_replay_and_hold_no_account_ids_or_credentials() {
    let emulator = moto();
    let url = emulator.url();
    let seed = seed_org(&url, 3, "us-east-1,eu-west-1", 2);
    let accounts: Vec<String> = seed["accounts"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    let tmp = TempDir::new("record");
    let root = tmp.path();
    copy_dir(&repo().join("runbooks"), &root.join("runbooks"));

    // Who the caller is: moto's default account for these keys.
    let who = orgop(
        root,
        &["call", "sts:GetCallerIdentity", "--endpoint-url", &url],
    );
    assert!(who.status.success(), "{}", both(&who));
    let caller = serde_json::from_slice::<Value>(&who.stdout).unwrap()["Account"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(caller, "123456789012");

    // A dry run in one member account and region.
    let dry = record(
        root,
        &url,
        "moto-dry",
        &["--account", &accounts[0], "--region", "us-east-1"],
    );
    assert_eq!(dry.case["apply"], false);
    assert_eq!(dry.case["account"]["id"], "111111111111");
    assert_eq!(dry.case["region"], "us-east-1");
    assert_eq!(dry.case["params"]["min_age_days"], 0);
    assert_eq!(dry.case["expect"]["status"], "ok");
    let want = seeded(&seed, &accounts[0], "us-east-1");
    assert_eq!(want.len(), 2);
    assert_eq!(finding_ids(&dry.case), want);
    let actions = dry.case["expect"]["actions"].as_array().unwrap();
    assert_eq!(actions.len(), 2 * want.len());
    assert!(actions.iter().all(|a| a["outcome"] == "planned"));
    let names: Vec<String> = files(&dry.dir).into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, ["case.yaml", "ec2.DescribeVolumes_1.json"]);

    // Applied, in another account and the other region: the snapshots' OwnerId is scrubbed
    // to the case's account.
    let applied = record(
        root,
        &url,
        "moto-apply",
        &[
            "--account",
            &accounts[1],
            "--region",
            "eu-west-1",
            "--apply",
            "--description",
            &format!("applied in {}", accounts[1]),
        ],
    );
    let want = seeded(&seed, &accounts[1], "eu-west-1");
    assert_eq!(finding_ids(&applied.case), want);
    assert_eq!(applied.case["description"], "applied in 111111111111");
    let outcomes: BTreeSet<&str> = applied.case["expect"]["actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(outcomes, BTreeSet::from(["done"]));
    let snapshot: Value = serde_json::from_str(
        &std::fs::read_to_string(applied.dir.join("ec2.CreateSnapshot_1.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(snapshot["OwnerId"], "111111111111");
    // The actions journal of the applied run is gone once it is done.
    assert!(
        files(&applied.dir).iter().all(|(n, _)| !n.starts_with('.')),
        "{:?}",
        files(&applied.dir)
    );

    // The caller's own account (the default): nothing seeded there, and its id scrubbed too.
    let own = record(root, &url, "moto-own", &[]);
    assert_eq!(own.case["account"]["id"], "111111111111");
    assert!(finding_ids(&own.case).is_empty());

    // No recorded file holds an account id of the run or a credential.
    let mut forbidden: Vec<String> = accounts.clone();
    forbidden.push(caller.clone());
    for case in [&dry, &applied, &own] {
        for (name, text) in files(&case.dir) {
            for id in &forbidden {
                assert!(
                    !text.contains(id.as_str()),
                    "{}/{name} holds account id {id}:\n{text}",
                    case.dir.display()
                );
            }
            assert_eq!(real_key_ids(&text), Vec::<String>::new(), "{name}");
            assert!(!text.contains("\"testing\""), "{name}:\n{text}");
            credentials_scrubbed(&name, &json_or_yaml(&name, &text));
        }
    }

    // Credentials in a recorded answer (moto's for sts:GetSessionToken, made with the
    // assumed role's own credentials) are scrubbed, and the session's ARN and account too.
    std::fs::write(root.join("runbooks/session.yaml"), SESSION).unwrap();
    let o = orgop(
        root,
        &[
            "record",
            "runbooks/session.yaml",
            "--case",
            "token",
            "--endpoint-url",
            &url,
            "--account",
            &accounts[2],
            "--apply",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", both(&o));
    let dir = root.join("runbooks/tests/session/token");
    let token: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("sts.GetSessionToken_1.json")).unwrap(),
    )
    .unwrap();
    let c = &token["Credentials"];
    assert_eq!(c["AccessKeyId"], "AKIAEXAMPLE000000001", "{token}");
    assert_eq!(c["SecretAccessKey"], "SCRUBBED-SECRET-ACCESS-KEY-1");
    assert_eq!(c["SessionToken"], "SCRUBBED-SESSION-TOKEN-1");
    let session = case_yaml(&dir);
    assert_eq!(
        session["expect"]["findings"][0]["resource_id"],
        "111111111111"
    );
    assert_eq!(
        session["expect"]["findings"][0]["columns"]["arn"],
        "arn:aws:sts::111111111111:assumed-role/OrgOpReadRole/orgop-session"
    );
    for (name, text) in files(&dir) {
        for id in &forbidden {
            assert!(!text.contains(id.as_str()), "{name} holds {id}:\n{text}");
        }
        assert_eq!(real_key_ids(&text), Vec::<String>::new(), "{name}");
        credentials_scrubbed(&name, &json_or_yaml(&name, &text));
    }

    // An existing case is not overwritten without --force.
    let before = files(&dry.dir);
    let again = orgop(
        root,
        &[
            "record",
            "runbooks/unused-ebs.yaml",
            "--case",
            "moto-dry",
            "--endpoint-url",
            &url,
            "--account",
            &accounts[0],
        ],
    );
    assert_eq!(again.status.code(), Some(2), "{}", both(&again));
    assert!(both(&again).contains("--force"), "{}", both(&again));
    assert_eq!(files(&dry.dir), before);

    // A journal left by a record that died stops the next applied one before it sends anything.
    let left = root.join("runbooks/tests/unused-ebs/died");
    std::fs::create_dir_all(&left).unwrap();
    std::fs::write(left.join(".actions.journal.jsonl"), "{}\n").unwrap();
    let o = orgop(
        root,
        &[
            "record",
            "runbooks/unused-ebs.yaml",
            "--case",
            "died",
            "--endpoint-url",
            &url,
            "--account",
            &accounts[2],
            "--apply",
        ],
    );
    assert_eq!(o.status.code(), Some(2), "{}", both(&o));
    assert!(both(&o).contains("interrupted record"), "{}", both(&o));
    assert_eq!(files(&left).len(), 1);
    std::fs::remove_dir_all(&left).unwrap();

    // Every case in the copy passes, the shipped ones and the recorded ones.
    let all = orgop(root, &["test", "runbooks"]);
    assert_eq!(all.status.code(), Some(0), "{}", both(&all));
}
