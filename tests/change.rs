//! Change control on moto server: a plan (`orgop run --plan-out`), reviewed (`orgop plan
//! show`) and applied exactly (`orgop apply`); one applier per runbook and organization at a
//! time; idempotency tokens that stay the same when an action is sent again.
use orgop_testkit::{TempDir, moto, proxy, proxy_stats, repo, seed_org, venv_python};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const REGIONS: &str = "us-east-1,eu-west-1";

fn orgop_cmd(state: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_orgop"));
    c.args(args)
        .current_dir(repo())
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "us-east-1")
        .env("ORGOP_STATE_DIR", state)
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_ENDPOINT_URL");
    c
}

fn orgop(state: &Path, args: &[&str]) -> Output {
    orgop_cmd(state, args).output().expect("orgop runs")
}

fn text(o: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn ebs(endpoint: &str, args: &[&str]) -> Value {
    let o = Command::new(venv_python())
        .arg(repo().join("tests/support/ebs_ops.py"))
        .args(["--endpoint", endpoint])
        .args(args)
        .output()
        .expect("ebs_ops.py runs");
    assert!(o.status.success(), "ebs_ops.py {args:?}: {}", text(&o));
    serde_json::from_slice(&o.stdout).expect("ebs_ops.py prints JSON")
}

/// Volume id -> how many snapshots orgop took of it, in the seeded accounts.
fn snapshots(endpoint: &str, seed: &Value) -> BTreeMap<String, usize> {
    let accounts: Vec<&str> = seed["accounts"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let mut out = BTreeMap::new();
    for s in ebs(endpoint, &["snapshots", &accounts.join(","), REGIONS])
        .as_array()
        .unwrap()
    {
        *out.entry(s["volume_id"].as_str().unwrap().to_string())
            .or_default() += 1;
    }
    out
}

fn findings(seed: &Value) -> Vec<(String, String, String)> {
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
        .collect()
}

fn sha256_of(path: &Path) -> String {
    let o = Command::new("sha256sum").arg(path).output().unwrap();
    String::from_utf8_lossy(&o.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

#[test]
fn apply_acts_on_exactly_the_unchanged_planned_volumes_and_refuses_an_edited_plan() {
    let emulator = moto();
    let url = emulator.url();
    let seed = seed_org(&url, 2, REGIONS, 2);
    let found = findings(&seed);
    assert_eq!(found.len(), 8);
    let state = TempDir::new("change-state");
    let tmp = TempDir::new("change-plan");
    let plan_path = tmp.path().join("plan.json");
    let plan_arg = plan_path.to_str().unwrap();
    let dry_out = tmp.path().join("dry");
    let o = orgop(
        state.path(),
        &[
            "run",
            "runbooks/unused-ebs.yaml",
            "--param",
            "min_age_days=0",
            "--plan-out",
            plan_arg,
            "--out",
            dry_out.to_str().unwrap(),
            "--endpoint-url",
            &url,
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    assert!(snapshots(&url, &seed).is_empty(), "a dry run acted");

    // The plan: the runbook's digest, parameters, and per volume its two actions, with the
    // volume as the interpreter saw it.
    let plan: Value = serde_json::from_str(&std::fs::read_to_string(&plan_path).unwrap()).unwrap();
    assert_eq!(plan["runbook"]["name"], "unused-ebs");
    assert_eq!(plan["runbook"]["version"], 1);
    assert_eq!(
        plan["runbook"]["sha256"],
        sha256_of(&repo().join("runbooks/unused-ebs.yaml"))
    );
    assert_eq!(plan["params"]["min_age_days"], 0);
    assert!(plan["digest"].as_str().unwrap().starts_with("sha256:"));
    assert!(plan["organization_id"].as_str().unwrap().starts_with("o-"));
    let actions = plan["actions"].as_array().unwrap();
    assert_eq!(actions.len(), 16);
    let planned: BTreeSet<(String, String, String)> = actions
        .iter()
        .map(|a| {
            assert_eq!(a["item"]["VolumeId"], a["resource_id"]);
            assert_eq!(a["parameters"]["VolumeId"], a["resource_id"]);
            (
                a["account_id"].as_str().unwrap().to_string(),
                a["region"].as_str().unwrap().to_string(),
                a["resource_id"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(planned, found.iter().cloned().collect());
    let keys: Vec<(String, String)> = actions
        .iter()
        .map(|a| (a["account_id"].to_string(), a["region"].to_string()))
        .collect();
    assert!(keys.is_sorted(), "plan actions are not sorted");

    // Reviewed: counts per account and region, then every action.
    let show = orgop(
        state.path(),
        &["plan", "show", plan_arg, "--format", "json"],
    );
    assert!(show.status.success(), "{}", text(&show));
    let shown: Value = serde_json::from_slice(&show.stdout).unwrap();
    let counts = shown["counts"].as_array().unwrap();
    assert_eq!(counts.len(), 4);
    assert!(counts.iter().all(|c| c["actions"] == 4
        && c["by_action"]["snapshot"] == 2
        && c["by_action"]["delete"] == 2));
    let show_text = orgop(state.path(), &["plan", "show", plan_arg]);
    let shown_text = String::from_utf8_lossy(&show_text.stdout);
    assert!(
        shown_text.contains("(delete 2, snapshot 2)"),
        "{shown_text}"
    );
    assert_eq!(
        shown_text
            .lines()
            .filter(|l| l.contains("ec2:CreateSnapshot"))
            .count(),
        8
    );

    // A hand-edited plan is refused before anything is sent.
    let edited = tmp.path().join("edited.json");
    let (a0, r0, v0) = &found[0];
    let (_, _, v_other) = found.iter().find(|(a, r, _)| a != a0 || r != r0).unwrap();
    std::fs::write(
        &edited,
        std::fs::read_to_string(&plan_path).unwrap().replacen(
            &format!("\"VolumeId\": \"{v0}\""),
            &format!("\"VolumeId\": \"{v_other}\""),
            1,
        ),
    )
    .unwrap();
    let o = orgop(
        state.path(),
        &["apply", edited.to_str().unwrap(), "--endpoint-url", &url],
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("changed after it was written"),
        "{}",
        text(&o)
    );
    // So is a plan whose runbook changed since.
    let changed_runbook = tmp.path().join("unused-ebs.yaml");
    std::fs::write(
        &changed_runbook,
        std::fs::read_to_string(repo().join("runbooks/unused-ebs.yaml")).unwrap() + "# edited\n",
    )
    .unwrap();
    let o = orgop(
        state.path(),
        &[
            "apply",
            plan_arg,
            "--runbook",
            changed_runbook.to_str().unwrap(),
            "--endpoint-url",
            &url,
        ],
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("runbook changed since the plan"),
        "{}",
        text(&o)
    );
    assert!(snapshots(&url, &seed).is_empty(), "a refused plan acted");

    // Between review and apply: one planned volume is deleted, another tagged keep=true (it no
    // longer matches the runbook's `where`); a new unattached volume appears (not planned).
    let gone = &found[0];
    let changed = &found[1];
    ebs(&url, &["delete", &gone.0, &gone.1, &gone.2]);
    ebs(
        &url,
        &["tag", &changed.0, &changed.1, &changed.2, "keep", "true"],
    );

    let out = tmp.path().join("applied");
    let o = orgop(
        state.path(),
        &[
            "apply",
            plan_arg,
            "--endpoint-url",
            &url,
            "--out",
            out.to_str().unwrap(),
            "--format",
            "json",
        ],
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let report: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(report["tally"]["applied"], 12, "{report:#}");
    assert_eq!(report["tally"]["gone"], 2, "{report:#}");
    assert_eq!(report["tally"]["changed"], 2, "{report:#}");
    assert_eq!(report["tally"]["failed"], 0, "{report:#}");
    for a in report["actions"].as_array().unwrap() {
        let id = a["resource_id"].as_str().unwrap();
        let expected = if id == gone.2 {
            "gone"
        } else if id == changed.2 {
            "changed"
        } else {
            "applied"
        };
        assert_eq!(a["result"], expected, "{a}");
    }
    // Exactly the unchanged planned volumes were snapshotted, each once.
    let snaps = snapshots(&url, &seed);
    let expected: BTreeMap<String, usize> = found[2..].iter().map(|f| (f.2.clone(), 1)).collect();
    assert_eq!(snaps, expected);
    // Results as `orgop run --apply` writes them; the journal removed after a complete run.
    let results = std::fs::read_to_string(out.join("results.jsonl")).unwrap();
    assert_eq!(results.lines().count(), 4);
    assert!(results.contains("gone: the runbook's steps no longer find it"));
    assert!(out.join("findings.csv").exists());
    assert!(!out.join(".actions.journal.jsonl").exists());
}

/// Waits until the state folder holds a lock file; answers its path.
fn wait_for_lock(state: &Path, child: &mut Child) -> std::path::PathBuf {
    let deadline = Instant::now() + Duration::from_secs(60);
    let locks = state.join("locks");
    while Instant::now() < deadline {
        if let Some(Ok(e)) = std::fs::read_dir(&locks).ok().and_then(|mut d| d.next())
            && std::fs::metadata(e.path()).is_ok_and(|m| m.len() > 0)
        {
            return e.path();
        }
        if let Ok(Some(s)) = child.try_wait() {
            panic!("the applier ended ({s}) before it took the lock");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("no lock file under {}", locks.display());
}

#[test]
fn one_applier_at_a_time_each_volume_snapshotted_once_and_a_killed_holder_blocks_nothing() {
    let emulator = moto();
    let seed = seed_org(&emulator.url(), 2, REGIONS, 2);
    // Slow answers, so that the first applier is still running when the second starts.
    let slow = proxy(&emulator.url(), &["--latency-ms", "150"]);
    let state = TempDir::new("change-lock-state");
    let tmp = TempDir::new("change-lock");
    let apply_args = |out: &str| -> Vec<String> {
        [
            "run",
            "runbooks/unused-ebs.yaml",
            "--param",
            "min_age_days=0",
            "--apply",
            "--endpoint-url",
            &slow.url(),
            "--out",
            out,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    };
    let out_a = tmp.path().join("a");
    let out_b = tmp.path().join("b");
    let mut first = orgop_cmd(state.path(), &[])
        .args(apply_args(out_a.to_str().unwrap()))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let lock = wait_for_lock(state.path(), &mut first);
    let first_pid = first.id();
    let second = orgop_cmd(state.path(), &[])
        .args(apply_args(out_b.to_str().unwrap()))
        .output()
        .unwrap();
    let first = first.wait_with_output().unwrap();
    assert_eq!(first.status.code(), Some(0), "{}", text(&first));
    assert_eq!(second.status.code(), Some(2), "{}", text(&second));
    let refused = text(&second);
    assert!(
        refused.contains(&format!("pid {first_pid} on ")),
        "{refused}"
    );
    assert!(refused.contains("another orgop is applying"), "{refused}");
    assert!(refused.contains("unused-ebs"), "{refused}");
    assert!(
        !lock.exists(),
        "the lock file outlived its holder's clean end"
    );
    let snaps = snapshots(&emulator.url(), &seed);
    let expected: BTreeMap<String, usize> = findings(&seed).into_iter().map(|f| (f.2, 1)).collect();
    assert_eq!(snaps, expected, "a volume was not snapshotted exactly once");

    // A holder killed with SIGKILL leaves its lock file, not held: the next applier goes on.
    let out_c = tmp.path().join("c");
    let mut killed = orgop_cmd(state.path(), &[])
        .args(apply_args(out_c.to_str().unwrap()))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let lock = wait_for_lock(state.path(), &mut killed);
    let killed_pid = killed.id();
    killed.kill().unwrap();
    killed.wait().unwrap();
    assert!(lock.exists());
    let out_d = tmp.path().join("d");
    let next = orgop_cmd(state.path(), &[])
        .args(apply_args(out_d.to_str().unwrap()))
        .output()
        .unwrap();
    assert_eq!(next.status.code(), Some(0), "{}", text(&next));
    assert!(
        text(&next).contains(&format!("took over the apply lock {}", lock.display()))
            && text(&next).contains(&format!("pid {killed_pid}")),
        "{}",
        text(&next)
    );
    // `--force-unlock` removes a lock file no one holds, and says whose it was.
    std::fs::create_dir_all(lock.parent().unwrap()).unwrap();
    std::fs::write(
        &lock,
        r#"{"pid":4000000,"host":"elsewhere","started_at":"20260101T000000Z","command":"orgop run"}"#,
    )
    .unwrap();
    let out_e = tmp.path().join("e");
    let forced = orgop_cmd(state.path(), &[])
        .args(apply_args(out_e.to_str().unwrap()))
        .arg("--force-unlock")
        .output()
        .unwrap();
    assert_eq!(forced.status.code(), Some(0), "{}", text(&forced));
    assert!(
        text(&forced).contains("--force-unlock: removed") && text(&forced).contains("pid 4000000"),
        "{}",
        text(&forced)
    );
}

#[test]
fn an_action_sent_again_carries_the_same_idempotency_token() {
    let emulator = moto();
    let url = emulator.url();
    let seed = seed_org(&url, 1, "us-east-1", 2);
    let account = seed["accounts"]
        .as_object()
        .unwrap()
        .keys()
        .next()
        .unwrap()
        .clone();
    let state = TempDir::new("change-token-state");
    let tmp = TempDir::new("change-token");
    let plan = tmp.path().join("plan.json");
    let runbook = "tests/change/copy-volumes.yaml";
    let o = orgop(
        state.path(),
        &[
            "run",
            runbook,
            "--plan-out",
            plan.to_str().unwrap(),
            "--out",
            tmp.path().join("dry").to_str().unwrap(),
            "--endpoint-url",
            &url,
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    // Every CreateVolume answers 500: the client retries each, then the action fails.
    let failing = proxy(
        &url,
        &[
            "--fault-5xx",
            "100",
            "--fault-actions",
            "CreateVolume",
            "--log-param",
            "ClientToken",
            "--log-param",
            "Size",
        ],
    );
    let o = orgop(
        state.path(),
        &[
            "apply",
            plan.to_str().unwrap(),
            "--endpoint-url",
            &failing.url(),
            "--out",
            tmp.path().join("first").to_str().unwrap(),
        ],
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    // The same plan applied again, now that AWS answers: a re-driven action.
    let clean = proxy(&url, &["--log-param", "ClientToken", "--log-param", "Size"]);
    let o = orgop(
        state.path(),
        &[
            "apply",
            plan.to_str().unwrap(),
            "--endpoint-url",
            &clean.url(),
            "--out",
            tmp.path().join("second").to_str().unwrap(),
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));

    // Size (20, 21: one per seeded volume) -> every token its CreateVolume requests carried.
    let tokens = |stats: &Value, faulted: bool| -> BTreeMap<String, Vec<String>> {
        let mut m: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for r in stats["requests"].as_array().unwrap() {
            if r["action"] == "CreateVolume" {
                assert_eq!(r["fault"].is_null(), !faulted, "{r}");
                m.entry(r["params"]["Size"].as_str().unwrap().to_string())
                    .or_default()
                    .push(r["params"]["ClientToken"].as_str().unwrap().to_string());
            }
        }
        m
    };
    let first = tokens(&proxy_stats(&failing), true);
    let second = tokens(&proxy_stats(&clean), false);
    assert_eq!(first.keys().collect::<Vec<_>>(), ["20", "21"]);
    assert_eq!(second.keys().collect::<Vec<_>>(), ["20", "21"]);
    let mut distinct = BTreeSet::new();
    for (size, sent) in &first {
        assert!(
            sent.len() >= 2,
            "CreateVolume of size {size} was not retried: {sent:?}"
        );
        let again = &second[size];
        assert_eq!(again.len(), 1);
        let token = &again[0];
        assert!(
            sent.iter().all(|t| t == token),
            "size {size}: the retries and the re-driven call carried different tokens: {sent:?} then {token}"
        );
        assert_eq!(token.len(), 36, "not UUID-shaped: {token}");
        assert_eq!(token.matches('-').count(), 4, "not UUID-shaped: {token}");
        distinct.insert(token.clone());
    }
    assert_eq!(distinct.len(), 2, "two volumes, one token: {distinct:?}");
    // The copies exist once each.
    let volumes = ebs(&url, &["volumes", &account, "us-east-1"]);
    let copies = volumes
        .as_array()
        .unwrap()
        .iter()
        .filter(|v| v["tags"].get("orgop:copy-of").is_some())
        .count();
    assert_eq!(copies, 2);
}

/// Runs boto3 `code` against the emulator at `url` (`ddb`, `org` and `org_id` defined);
/// answers what it prints.
fn boto(url: &str, code: &str) -> String {
    let script = format!(
        "import boto3, json, sys, time
kw = dict(endpoint_url='{url}', region_name='us-east-1', aws_access_key_id='testing', aws_secret_access_key='testing')
ddb = boto3.client('dynamodb', **kw)
org = boto3.client('organizations', **kw)
org_id = org.describe_organization()['Organization']['Id']
{code}"
    );
    let o = Command::new(venv_python())
        .args(["-c", &script])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    String::from_utf8(o.stdout).unwrap()
}

const LOCK_TABLE: &str = "ddb.create_table(TableName='orgop-results', BillingMode='PAY_PER_REQUEST',
  AttributeDefinitions=[{'AttributeName': 'execution', 'AttributeType': 'S'}, {'AttributeName': 'item', 'AttributeType': 'S'}],
  KeySchema=[{'AttributeName': 'execution', 'KeyType': 'HASH'}, {'AttributeName': 'item', 'KeyType': 'RANGE'}])";

/// The lock item of `unused-ebs` in the lock table, `null` when there is none.
fn lock_item(url: &str) -> Value {
    serde_json::from_str(&boto(
        url,
        "r = ddb.get_item(TableName='orgop-results', Key={'execution': {'S': f'#lock/{org_id}/unused-ebs'}, 'item': {'S': '#lock'}}, ConsistentRead=True)
print(json.dumps(r.get('Item')))",
    ))
    .unwrap()
}

/// Records a lock of `unused-ebs` held by `holder` (`pid 4000000 on elsewhere`) until
/// `expires_at`, relative to now in seconds.
fn hold_lock(url: &str, holder: &str, expires_in: i64) {
    boto(
        url,
        &format!(
            "ddb.put_item(TableName='orgop-results', Item={{'execution': {{'S': f'#lock/{{org_id}}/unused-ebs'}}, 'item': {{'S': '#lock'}},
  'holder': {{'S': '{holder}'}}, 'what': {{'S': 'pid 4000000 on elsewhere (orgop run)'}}, 'started_at': {{'N': '1767225600'}},
  'expires_at': {{'N': str(int(time.time()) + ({expires_in}))}}}})"
        ),
    );
}

/// The DynamoDB form of the apply lock (`--lock-table`, `ORGOP_LOCK_TABLE`): two appliers
/// started together with different state folders (so no lock file can keep them apart): one
/// applies, the other is refused naming it and its lock's expiry, and each volume is
/// snapshotted once. A dry run never touches the table; a crashed holder's expired lock is
/// taken over; a live one is removed by `--force-unlock` only when its holder is named.
#[test]
fn a_lock_table_keeps_appliers_apart_and_an_expired_lock_is_taken_over() {
    let emulator = moto();
    let url = emulator.url();
    let seed = seed_org(&url, 2, REGIONS, 2);
    boto(&url, LOCK_TABLE);
    // Slow answers so that both appliers overlap; DynamoDB requests one at a time, as the
    // service applies conditional writes atomically and moto server does not.
    let slow = proxy(&url, &["--latency-ms", "150", "--serialize", "dynamodb"]);
    let tmp = TempDir::new("change-table-lock");
    let args = |out: &str, apply: bool, table: &str| -> Vec<String> {
        let mut a: Vec<String> = [
            "run",
            "runbooks/unused-ebs.yaml",
            "--param",
            "min_age_days=0",
            "--endpoint-url",
            &slow.url(),
            "--out",
            out,
            "--lock-table",
            table,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        if apply {
            a.push("--apply".into());
        }
        a
    };
    let out = |n: &str| tmp.path().join(n).to_str().unwrap().to_string();
    let states: Vec<TempDir> = (0..6)
        .map(|i| TempDir::new(&format!("change-table-state-{i}")))
        .collect();

    // A dry run never touches the table: a missing one is no error for it ...
    let plan = out("plan.json");
    let mut dry_args = args(&out("dry"), false, "no-such-table");
    dry_args.extend(["--plan-out".to_string(), plan.clone()]);
    let dry = orgop(
        states[0].path(),
        &dry_args.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    assert_eq!(dry.status.code(), Some(0), "{}", text(&dry));
    // ... and is the applier's: refused before anything is sent, naming the table.
    let missing = orgop(
        states[0].path(),
        &args(&out("missing"), true, "no-such-table")
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    );
    assert_eq!(missing.status.code(), Some(2), "{}", text(&missing));
    assert!(
        text(&missing).contains("no-such-table"),
        "{}",
        text(&missing)
    );
    assert!(snapshots(&url, &seed).is_empty());

    let spawn = |state: &Path, out: &str| {
        orgop_cmd(state, &[])
            .args(args(out, true, "orgop-results"))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let a = spawn(states[1].path(), &out("a"));
    let b = spawn(states[2].path(), &out("b"));
    let (pid_a, pid_b) = (a.id(), b.id());
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    let ((winner, won), (_, refused)) = match (a.status.code(), b.status.code()) {
        (Some(0), Some(2)) => ((pid_a, &a), (pid_b, &b)),
        (Some(2), Some(0)) => ((pid_b, &b), (pid_a, &a)),
        _ => panic!(
            "not one applied and one refused:\n{}\n{}",
            text(&a),
            text(&b)
        ),
    };
    let refusal = text(refused);
    assert!(refusal.contains("another orgop is applying"), "{refusal}");
    assert!(refusal.contains(&format!("pid {winner} on ")), "{refusal}");
    assert!(
        refusal.contains("runbook unused-ebs in organization o-"),
        "{refusal}"
    );
    assert!(refusal.contains("its lock expires at"), "{refusal}");
    assert!(
        refusal.contains("DynamoDB table orgop-results"),
        "{refusal}"
    );
    assert_eq!(
        lock_item(&url),
        Value::Null,
        "the winner did not release its lock: {}",
        text(won)
    );
    let expected: BTreeMap<String, usize> = findings(&seed).into_iter().map(|f| (f.2, 1)).collect();
    assert_eq!(
        snapshots(&url, &seed),
        expected,
        "a volume was not snapshotted exactly once"
    );
    // No lock file was involved.
    for s in &states[1..3] {
        assert!(!s.path().join("locks").exists());
    }

    // A crashed holder's lock (expired, still in the table: TTL deletes it only eventually)
    // is taken over; the table is named by ORGOP_LOCK_TABLE this time.
    hold_lock(&url, "4000000@elsewhere/1767225600", -10);
    let mut env_args = args(&out("c"), true, "x");
    env_args.truncate(env_args.len() - 3);
    env_args.push("--apply".into());
    let next = orgop_cmd(states[3].path(), &[])
        .args(&env_args)
        .env("ORGOP_LOCK_TABLE", "orgop-results")
        .output()
        .unwrap();
    assert_eq!(next.status.code(), Some(0), "{}", text(&next));
    assert!(
        text(&next).contains("took over the expired apply lock")
            && text(&next).contains("pid 4000000 on elsewhere"),
        "{}",
        text(&next)
    );
    assert_eq!(lock_item(&url), Value::Null);

    // A live lock: refused; --force-unlock alone never removes it; naming its holder does.
    hold_lock(&url, "4000000@elsewhere/1767225600", 600);
    let live = orgop(
        states[4].path(),
        &args(&out("d"), true, "orgop-results")
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    );
    assert_eq!(live.status.code(), Some(2), "{}", text(&live));
    assert!(
        text(&live).contains("holder id 4000000@elsewhere/1767225600"),
        "{}",
        text(&live)
    );
    // `orgop apply` takes the same lock.
    let applied = orgop(
        states[4].path(),
        &[
            "apply",
            &plan,
            "--endpoint-url",
            &slow.url(),
            "--out",
            &out("plan-applied"),
            "--lock-table",
            "orgop-results",
        ],
    );
    assert_eq!(applied.status.code(), Some(2), "{}", text(&applied));
    assert!(
        text(&applied).contains("another orgop is applying")
            && text(&applied).contains("holder id 4000000@elsewhere/1767225600"),
        "{}",
        text(&applied)
    );
    let mut forced = args(&out("e"), true, "orgop-results");
    forced.push("--force-unlock".into());
    let o = orgop(
        states[4].path(),
        &forced.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("--force-unlock-holder '4000000@elsewhere/1767225600'"),
        "{}",
        text(&o)
    );
    assert_eq!(
        lock_item(&url)["holder"]["S"],
        "4000000@elsewhere/1767225600"
    );
    forced.extend([
        "--force-unlock-holder".into(),
        "4000000@elsewhere/1767225600".into(),
    ]);
    let o = orgop(
        states[5].path(),
        &forced.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        text(&o).contains("--force-unlock: removed the apply lock"),
        "{}",
        text(&o)
    );
    assert_eq!(lock_item(&url), Value::Null);
}

/// An applier holding a lock in the table extends it while it runs (every third of its
/// lifetime): with a 3-second lock, a second applier started well after those 3 seconds is
/// still refused, and the item's expiry has moved on. An invalid lifetime is refused.
#[test]
fn a_long_apply_keeps_its_table_lock_alive() {
    let emulator = moto();
    let url = emulator.url();
    seed_org(&url, 2, REGIONS, 1);
    boto(&url, LOCK_TABLE);
    // Very slow answers: the first applier runs for many seconds.
    let slow = proxy(&url, &["--latency-ms", "700", "--serialize", "dynamodb"]);
    let tmp = TempDir::new("change-heartbeat");
    let state = TempDir::new("change-heartbeat-state");
    let args = |out: &str| -> Vec<String> {
        [
            "run",
            "runbooks/unused-ebs.yaml",
            "--param",
            "min_age_days=0",
            "--apply",
            "--endpoint-url",
            &slow.url(),
            "--out",
            out,
            "--lock-table",
            "orgop-results",
            "--concurrency",
            "1",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    };
    let out = |n: &str| tmp.path().join(n).to_str().unwrap().to_string();
    let bad = orgop_cmd(state.path(), &[])
        .args(args(&out("bad")))
        .env("ORGOP_LOCK_TTL_SECONDS", "soon")
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2), "{}", text(&bad));
    assert!(
        text(&bad).contains("ORGOP_LOCK_TTL_SECONDS=soon is not valid"),
        "{}",
        text(&bad)
    );

    let mut first = orgop_cmd(state.path(), &[])
        .args(args(&out("a")))
        .env("ORGOP_LOCK_TTL_SECONDS", "3")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let taken = loop {
        let item = lock_item(&url);
        if !item.is_null() {
            break item;
        }
        if let Ok(Some(s)) = first.try_wait() {
            panic!("the applier ended ({s}) before it took the lock");
        }
        assert!(Instant::now() < deadline, "no lock item within 60 s");
        std::thread::sleep(Duration::from_millis(100));
    };
    let expiry = |item: &Value| {
        item["expires_at"]["N"]
            .as_str()
            .unwrap()
            .parse::<u64>()
            .unwrap()
    };
    std::thread::sleep(Duration::from_secs(5));
    assert!(
        first.try_wait().unwrap().is_none(),
        "the first applier ended too soon for this test"
    );
    let now_item = lock_item(&url);
    assert!(
        expiry(&now_item) > expiry(&taken) + 2,
        "{taken} then {now_item}"
    );
    let second = orgop_cmd(state.path(), &[])
        .args(args(&out("b")))
        .output()
        .unwrap();
    let first_pid = first.id();
    let first = first.wait_with_output().unwrap();
    assert_eq!(first.status.code(), Some(0), "{}", text(&first));
    assert_eq!(second.status.code(), Some(2), "{}", text(&second));
    assert!(
        text(&second).contains(&format!("pid {first_pid} on ")),
        "{}",
        text(&second)
    );
    assert_eq!(lock_item(&url), Value::Null);
}
