//! `orgop compile` / `orgop-compile`: every runbook compiles, byte-for-byte stable output
//! (snapshots reviewed and checked in), `asl-validator` accepts every definition (inline and
//! distributed), shared data is hoisted once, and the inline form executed by an independent
//! interpreter (aws-local-stepfunctions) passes orgop's own payload types between its states.
use orgop_plan::contract::{FanoutRequest, ResultsRequest, WorkerRequest, WorkerSummary};
use orgop_testkit::{TempDir, repo};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::process::{Command, Output};

fn run(bin: &str, args: &[&str]) -> Output {
    Command::new(bin)
        .args(args)
        .current_dir(repo())
        .output()
        .expect("runs")
}

/// Compiles the catalog and the compile fixtures into a fresh folder.
fn compile_all(bin: &str) -> TempDir {
    let out = TempDir::new("asl");
    let o = run(
        bin,
        &[
            "compile",
            "runbooks",
            "tests/compile",
            "--out",
            out.path().to_str().unwrap(),
        ],
    );
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    out
}

fn read(dir: &TempDir, name: &str) -> String {
    std::fs::read_to_string(dir.path().join(format!("{name}.asl.json"))).unwrap()
}

fn node_tool(name: &str) -> PathBuf {
    let p = repo().join("tests/asl/node_modules/.bin").join(name);
    assert!(
        p.exists(),
        "{} is missing: run `npm ci --prefix tests/asl` (.ci/run does)",
        p.display()
    );
    p
}

#[test]
fn every_runbook_compiles_to_the_reviewed_snapshot() {
    let dir = compile_all(env!("CARGO_BIN_EXE_orgop"));
    let mut seen = 0;
    for folder in ["runbooks", "tests/compile"] {
        for e in std::fs::read_dir(repo().join(folder)).unwrap() {
            let path = e.unwrap().path();
            if path.extension().and_then(|x| x.to_str()) != Some("yaml") {
                continue;
            }
            let text = std::fs::read_to_string(path).unwrap();
            let name = text
                .lines()
                .find_map(|l| l.strip_prefix("name: "))
                .unwrap()
                .trim()
                .to_string();
            insta::with_settings!({ snapshot_suffix => name.clone() }, {
                insta::assert_snapshot!(read(&dir, &name));
            });
            seen += 1;
        }
    }
    assert!(seen >= 3);
}

#[test]
fn compiling_twice_and_with_orgop_compile_gives_identical_bytes() {
    let a = compile_all(env!("CARGO_BIN_EXE_orgop"));
    let b = compile_all(env!("CARGO_BIN_EXE_orgop"));
    let c_out = TempDir::new("asl-c");
    let c = Command::new(env!("CARGO_BIN_EXE_orgop-compile"))
        .args(["runbooks", "tests/compile", "--out"])
        .arg(c_out.path())
        .current_dir(repo())
        .output()
        .unwrap();
    assert_eq!(c.status.code(), Some(0));
    let c_dir = PathBuf::from(String::from_utf8(c.stdout).unwrap().lines().next().unwrap())
        .parent()
        .unwrap()
        .to_path_buf();
    let mut names: Vec<_> = std::fs::read_dir(&a)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    names.sort();
    assert!(names.len() >= 3, "{names:?}");
    for n in names {
        let x = std::fs::read(a.path().join(&n)).unwrap();
        assert_eq!(
            x,
            std::fs::read(b.path().join(&n)).unwrap(),
            "{n:?} differs between runs"
        );
        assert_eq!(
            x,
            std::fs::read(c_dir.join(&n)).unwrap(),
            "{n:?} differs with orgop-compile"
        );
        assert!(x.ends_with(b"\n"));
    }
}

#[test]
fn asl_validator_accepts_every_definition_inline_and_distributed() {
    let dir = compile_all(env!("CARGO_BIN_EXE_orgop"));
    let mut kinds = std::collections::BTreeSet::new();
    for e in std::fs::read_dir(&dir).unwrap() {
        let path = e.unwrap().path();
        let def: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        kinds.insert(
            def["States"]["Accounts"]["ItemProcessor"]["ProcessorConfig"]["Mode"]
                .as_str()
                .unwrap()
                .to_string(),
        );
        let o = Command::new(node_tool("asl-validator"))
            .arg("--json-path")
            .arg(&path)
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        assert!(
            o.status.success(),
            "asl-validator rejects {}:\n{text}",
            path.display()
        );
        assert!(text.contains("is valid"), "{text}");
    }
    assert_eq!(
        kinds.into_iter().collect::<Vec<_>>(),
        ["DISTRIBUTED", "INLINE"]
    );
}

#[test]
fn shared_data_and_plan_appear_once_in_the_definition_and_never_per_item() {
    let dir = compile_all(env!("CARGO_BIN_EXE_orgop"));
    let text = read(&dir, "inline-explicit-accounts");
    assert_eq!(text.matches("shared-data-appears-once-7f3a").count(), 1);
    assert_eq!(text.matches("\"open_cidrs\"").count(), 1);
    assert_eq!(
        text.matches("DescribeSecurityGroups").count(),
        2,
        "once in the plan, once in the worker's comment"
    );
    let def: Value = serde_json::from_str(&text).unwrap();
    let map = &def["States"]["Accounts"];
    assert_eq!(
        map["ItemSelector"]["shared"]["marker"],
        "shared-data-appears-once-7f3a"
    );
    assert_eq!(map["ItemSelector"]["item.$"], "$$.Map.Item.Value");
    // The items iterated over come from the fanout, which selects only run, count and items.
    assert_eq!(map["ItemsPath"], "$.items");
    let selector = def["States"]["Fanout"]["ResultSelector"]
        .as_object()
        .unwrap();
    assert_eq!(
        selector.keys().collect::<Vec<_>>(),
        ["count.$", "items.$", "run.$"]
    );
}

#[test]
fn error_names_in_retry_and_catch_come_from_orgop_plan() {
    let dir = compile_all(env!("CARGO_BIN_EXE_orgop"));
    let def: Value = serde_json::from_str(&read(&dir, "unused-ebs")).unwrap();
    let worker = &def["States"]["Accounts"]["ItemProcessor"]["States"]["Worker"];
    let retried: Vec<&str> = worker["Retry"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| {
            r["ErrorEquals"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e.as_str().unwrap())
        })
        .collect();
    for e in orgop_plan::WorkerError::ALL {
        assert_eq!(retried.contains(&e.name()), e.retryable(), "{e}");
    }
    for e in orgop_plan::LAMBDA_TRANSIENT_ERRORS {
        assert!(retried.contains(&e));
    }
    assert_eq!(worker["Catch"][0]["Next"], "RecordFailure");
    let fanout_retry = &def["States"]["Fanout"]["Retry"][0];
    assert_eq!(fanout_retry["IntervalSeconds"], 2);
    assert_eq!(fanout_retry["MaxAttempts"], 3);
    assert_eq!(fanout_retry["BackoffRate"], 2);
    // A refused apply lock ends the execution as LockHeld, with the holder in its cause;
    // any other fanout failure as FanoutFailed.
    assert_eq!(
        def["States"]["Fanout"]["Catch"][0]["ErrorEquals"],
        serde_json::json!(["OrgOp.LockHeld"])
    );
    assert_eq!(def["States"]["Fanout"]["Catch"][0]["Next"], "LockHeld");
    assert_eq!(def["States"]["LockHeld"]["Type"], "Fail");
    assert_eq!(def["States"]["LockHeld"]["Error"], "OrgOp.LockHeld");
    assert_eq!(def["States"]["LockHeld"]["CausePath"], "$.error.Cause");
    assert_eq!(def["States"]["Fanout"]["Catch"][1]["Next"], "FanoutFailed");
    assert_eq!(def["States"]["FanoutFailed"]["Type"], "Fail");
    // Every state says where it comes from.
    for (name, state) in def["States"].as_object().unwrap() {
        assert!(
            state["Comment"]
                .as_str()
                .unwrap()
                .starts_with("runbooks/unused-ebs.yaml:"),
            "{name}"
        );
    }
}

#[test]
fn distributed_form_reads_items_from_s3_and_writes_results_to_s3() {
    let dir = compile_all(env!("CARGO_BIN_EXE_orgop"));
    let def: Value = serde_json::from_str(&read(&dir, "distributed-forced")).unwrap();
    let map = &def["States"]["Accounts"];
    assert_eq!(
        map["ItemReader"]["Resource"],
        "arn:aws:states:::s3:getObject"
    );
    assert_eq!(
        map["ResultWriter"]["Parameters"]["Bucket"],
        "${ResultsBucket}"
    );
    assert_eq!(map["ToleratedFailurePercentage"], 10);
    assert_eq!(map["MaxConcurrency"], 200);
    assert!(map.get("ItemsPath").is_none());
    assert_eq!(
        def["States"]["Fanout"]["Parameters"]["Payload"]["map"],
        "distributed"
    );
}

fn execute(definition: &str, scenario: Value) -> Value {
    let dir = TempDir::new("exec");
    let def_path = dir.path().join("definition.json");
    let scenario_path = dir.path().join("scenario.json");
    std::fs::write(&def_path, definition).unwrap();
    std::fs::write(&scenario_path, scenario.to_string()).unwrap();
    node_tool("local-sfn");
    let o = Command::new("node")
        .arg(repo().join("tests/asl/execute.mjs"))
        .arg(&def_path)
        .arg(&scenario_path)
        .current_dir(repo().join("tests/asl"))
        .output()
        .expect("node runs");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout).unwrap()
}

fn items() -> Value {
    let mut v = Vec::new();
    for a in ["111111111111", "222222222222", "333333333333"] {
        for r in ["us-east-1", "eu-west-1"] {
            v.push(json!({"account_id": a, "account_name": format!("acct-{a}"), "region": r}));
        }
    }
    Value::Array(v)
}

#[test]
fn inline_state_machine_runs_in_an_independent_interpreter_with_orgop_payloads() {
    let dir = compile_all(env!("CARGO_BIN_EXE_orgop"));
    let out = execute(
        &read(&dir, "inline-explicit-accounts"),
        json!({"input": {"apply": false}, "items": items()}),
    );
    assert_eq!(out["status"], "SUCCEEDED", "{out:#}");
    let fanout: FanoutRequest = serde_json::from_value(out["fanout"].clone()).unwrap();
    assert_eq!(fanout.handler, "fanout");
    assert_eq!(fanout.targets.accounts.len(), 3);
    let workers: Vec<WorkerRequest> = serde_json::from_value(out["workers"].clone()).unwrap();
    assert_eq!(workers.len(), 6);
    for w in &workers {
        assert_eq!(w.handler, "worker");
        assert_eq!(w.shared["marker"], "shared-data-appears-once-7f3a");
        assert_eq!(w.plan.runbook, "inline-explicit-accounts");
        assert_eq!(w.plan.steps[0].operation, "DescribeSecurityGroups");
        assert!(!w.run.apply);
    }
    assert_eq!(fanout.role.name, "orgop/OrgOpAudit");
    // The results handler gets one small summary per item, not the plan or shared data.
    let results: ResultsRequest = serde_json::from_value(out["results"].clone()).unwrap();
    assert_eq!(results.columns, ["name", "vpc"]);
    assert_eq!(results.count, 6);
    let summaries: Vec<WorkerSummary> = results.items.unwrap();
    assert_eq!(summaries.len(), 6);
    assert!(
        !out["results"]
            .to_string()
            .contains("shared-data-appears-once")
    );
    assert_eq!(out["output"]["summary"]["failed"], 0);
}

#[test]
fn one_failing_item_is_recorded_and_the_others_still_run() {
    let dir = compile_all(env!("CARGO_BIN_EXE_orgop"));
    let out = execute(
        &read(&dir, "inline-explicit-accounts"),
        json!({"input": {}, "items": items(), "fail_accounts": ["222222222222"]}),
    );
    // The execution fails at the end (so alarms on failed executions fire) ...
    assert_eq!(out["status"], "FAILED", "{out:#}");
    assert!(
        out["cause"].as_str().unwrap().contains("OrgOp.ItemsFailed")
            || out["error"] == "OrgOp.ItemsFailed",
        "{out:#}"
    );
    // ... but only after every item ran and the failures were recorded for the report.
    let summaries: Vec<WorkerSummary> =
        serde_json::from_value(out["results"]["items"].clone()).unwrap();
    assert_eq!(summaries.len(), 6);
    let failed: Vec<_> = summaries
        .iter()
        .filter(|s| s.status == orgop_exec::Status::Error)
        .collect();
    assert_eq!(failed.len(), 2);
    for f in failed {
        assert_eq!(f.account_id, "222222222222");
        assert_eq!(f.error_code.as_deref(), Some("OrgOp.ResultsStore"));
    }
}
