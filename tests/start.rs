//! `orgop start` against moto server, which executes Step Functions state machines: the
//! compiled `unused-ebs` definition is created as `orgop-unused-ebs` (its placeholders
//! substituted with a Lambda function and a results bucket made in moto) and moto answers the
//! Lambda tasks from a queue of canned results (`/moto-api/static/lambda-simple/response`):
//! the fanout's items, one summary per worker, the results handler's summary.
use orgop_plan::MapKind;
use orgop_testkit::{Server, TempDir, moto, repo, venv_python};
use serde_json::{Value, json};
use std::path::Path;
use std::process::{Command, Output};

const RUNBOOK: &str = "runbooks/unused-ebs.yaml";
const STATE_MACHINE: &str = "arn:aws:states:us-east-1:123456789012:stateMachine:orgop-unused-ebs";

/// Runs a boto3 script against the emulator (`kw` holds the client arguments); its stdout.
fn python(url: &str, script: &str, args: &[&str]) -> String {
    let prelude = r#"
import boto3, io, json, sys, urllib.request, zipfile
url = sys.argv[1]
kw = dict(endpoint_url=url, region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing")
def post(path, body):
    req = urllib.request.Request(url + path, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}, method="POST")
    assert urllib.request.urlopen(req).status in (200, 201)
"#;
    let o = Command::new(venv_python())
        .arg("-c")
        .arg(format!("{prelude}\n{script}"))
        .arg(url)
        .args(args)
        .output()
        .expect("python runs");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout).unwrap()
}

/// moto executing state machines, with a Lambda function `orgop`, a bucket `orgop-results` and,
/// when `deploy`, the state machine `orgop-unused-ebs` compiled from the shipped runbook.
fn emulator(deploy: bool) -> Server {
    let server = moto();
    let url = server.url();
    // moto's ASL parser does not take a distributed Map's `ToleratedFailurePercentage`, so the
    // runbook is compiled with the inline Map: the states this command reads are the same.
    let text = std::fs::read_to_string(repo().join(RUNBOOK)).unwrap();
    let mut lowered = orgop_check::check_source(RUNBOOK, &text).lowered.unwrap();
    lowered.map = MapKind::Inline;
    let definition = orgop_statemachine::to_json(&orgop_statemachine::compile(&lowered));
    python(
        &url,
        r##"
post("/moto-api/config", {"stepfunctions": {"execute_state_machine": True}, "lambda": {"use_docker": False}})
role = boto3.client("iam", **kw).create_role(RoleName="orgop", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
code = io.BytesIO()
with zipfile.ZipFile(code, "w") as z:
    z.writestr("bootstrap", "#!/bin/sh\n")
fn = boto3.client("lambda", **kw).create_function(FunctionName="orgop", Runtime="provided.al2023",
    Role=role, Handler="bootstrap", Code={"ZipFile": code.getvalue()})["FunctionArn"]
boto3.client("s3", **kw).create_bucket(Bucket="orgop-results")
if sys.argv[3] == "deploy":
    definition = sys.argv[2].replace("${OrgOpFunctionArn}", fn).replace("${ResultsBucket}", "orgop-results")
    boto3.client("stepfunctions", **kw).create_state_machine(name="orgop-unused-ebs", definition=definition, roleArn=role)
"##,
        &[&definition, if deploy { "deploy" } else { "no" }],
    );
    server
}

/// Queues the Lambda's answers, in the order the state machine invokes it.
fn answers(url: &str, results: &[Value]) {
    let results: Vec<String> = results.iter().map(Value::to_string).collect();
    python(
        url,
        r#"post("/moto-api/static/lambda-simple/response", {"results": json.loads(sys.argv[2]), "region": "us-east-1"})"#,
        &[&serde_json::to_string(&results).unwrap()],
    );
}

const ITEMS: [(&str, &str); 2] = [("111111111111", "us-east-1"), ("111111111111", "eu-west-1")];

/// The canned answers of one run of 2 items: the fanout, the workers (the second ending
/// `worker_status`), and the results handler, whose files are under `s3://orgop-results/<run>/`.
fn run_answers(run: &str, worker_status: &str) -> Vec<Value> {
    let failed = usize::from(worker_status != "ok");
    let mut out = vec![json!({
        "run": {"execution": run, "params": {"min_age_days": 7}, "apply": false},
        "count": 2,
        "items": ITEMS.iter().map(|(a, r)| json!({"account_id": a, "account_name": "one", "region": r})).collect::<Vec<_>>(),
    })];
    for (i, (a, r)) in ITEMS.iter().enumerate() {
        let status = if i == 1 { worker_status } else { "ok" };
        out.push(
            json!({"account_id": a, "region": r, "status": status, "findings": 1, "actions": 2}),
        );
    }
    let mut by_status = json!({"ok": 2 - failed});
    if failed > 0 {
        by_status[worker_status] = json!(failed);
    }
    out.push(json!({
        "items": 2, "failed": failed, "by_status": by_status, "findings": 2, "actions": {"planned": 4},
        "results_uri": format!("s3://orgop-results/{run}/results.jsonl"),
        "findings_uri": format!("s3://orgop-results/{run}/findings.csv"),
    }));
    out
}

/// Puts the results files of `run` into the bucket.
fn put_results(url: &str, run: &str, jsonl: &str, csv: &str) {
    python(
        url,
        r#"
s3 = boto3.client("s3", **kw)
s3.put_object(Bucket="orgop-results", Key=sys.argv[2] + "/results.jsonl", Body=sys.argv[3].encode())
s3.put_object(Bucket="orgop-results", Key=sys.argv[2] + "/findings.csv", Body=sys.argv[4].encode())
"#,
        &[run, jsonl, csv],
    );
}

/// `DescribeExecution` of an execution, by boto3.
fn describe(url: &str, arn: &str) -> Value {
    let out = python(
        url,
        r#"
d = boto3.client("stepfunctions", **kw).describe_execution(executionArn=sys.argv[2])
print(json.dumps({"input": json.loads(d["input"]), "status": d["status"], "name": d["name"]}))
"#,
        &[arn],
    );
    serde_json::from_str(&out).unwrap()
}

/// How many executions the state machine has, by boto3.
fn executions(url: &str) -> usize {
    python(
        url,
        r#"print(len(boto3.client("stepfunctions", **kw).list_executions(stateMachineArn=sys.argv[2])["executions"]))"#,
        &[STATE_MACHINE],
    )
    .trim()
    .parse()
    .unwrap()
}

/// `orgop start ARGS` in `cwd` against the emulator, with credentials and region from the
/// environment as a user's would be.
fn orgop(url: &str, cwd: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_orgop"))
        .arg("start")
        .args(args)
        .args(["--endpoint-url", url])
        .current_dir(cwd)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "us-east-1")
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_ENDPOINT_URL")
        .env_remove("AWS_ENDPOINT_URL_SFN")
        .output()
        .expect("orgop runs")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn start_waits_reports_and_downloads_the_results() {
    let server = emulator(true);
    let url = server.url();
    let runbook = repo().join(RUNBOOK);
    let runbook = runbook.to_str().unwrap();

    // A dry run with the defaults, waited for, from a folder of its own: the results land in
    // orgop-results/<execution name> there.
    let cwd = TempDir::new("start-cwd");
    answers(&url, &run_answers("run-1", "ok"));
    let jsonl = "{\"account_id\":\"111111111111\",\"region\":\"us-east-1\",\"status\":\"ok\"}\n";
    let csv = "account_id,account_name,region,resource_id\n111111111111,one,us-east-1,vol-1\n";
    put_results(&url, "run-1", jsonl, csv);
    let o = orgop(&url, cwd.path(), &[runbook, "--wait"]);
    let (stdout, stderr) = (text(&o.stdout), text(&o.stderr));
    assert_eq!(o.status.code(), Some(0), "{stdout}\n{stderr}");
    let arn = stdout.lines().next().unwrap();
    assert!(
        arn.starts_with(&format!(
            "{}:",
            STATE_MACHINE.replace(":stateMachine:", ":execution:")
        )),
        "{stdout}"
    );
    let described = describe(&url, arn);
    assert_eq!(described["status"], "SUCCEEDED");
    // Exactly the resolved parameters, defaults applied, and a dry run.
    assert_eq!(
        described["input"],
        json!({"params": {"min_age_days": 7}, "apply": false})
    );
    let name = described["name"].as_str().unwrap();
    assert!(name.contains("-dry-"), "{name}");
    assert!(stderr.contains("SUCCEEDED"), "{stderr}");
    assert!(
        stderr.contains("items         2   ok 2   denied 0   error 0   skipped 0"),
        "{stderr}"
    );
    assert!(stderr.contains("actions   planned 4"), "{stderr}");
    let dir = cwd.path().join("orgop-results").join(name);
    assert_eq!(
        std::fs::read_to_string(dir.join("results.jsonl")).unwrap(),
        jsonl
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("findings.csv")).unwrap(),
        csv
    );

    // Applied with a parameter: an item fails, so the state machine fails on
    // OrgOp.ItemsFailed; the summary comes from the history and the files are still fetched.
    let out = TempDir::new("start-out");
    answers(&url, &run_answers("run-2", "denied"));
    put_results(&url, "run-2", "{}\n{}\n", "account_id\n");
    let o = orgop(
        &url,
        &repo(),
        &[
            RUNBOOK,
            "--apply",
            "--param",
            "min_age_days=30",
            "--wait",
            "--out",
            out.path().to_str().unwrap(),
            "--format",
            "json",
        ],
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
    let report: Value = serde_json::from_slice(&o.stdout).expect("one JSON object on stdout");
    assert_eq!(report["status"], "FAILED", "{report:#}");
    assert_eq!(report["error"], "OrgOp.ItemsFailed", "{report:#}");
    assert_eq!(report["summary"]["failed"], 1, "{report:#}");
    assert_eq!(report["summary"]["by_status"]["denied"], 1, "{report:#}");
    let applied = report["execution_arn"].as_str().unwrap();
    assert_eq!(
        describe(&url, applied)["input"],
        json!({"params": {"min_age_days": 30}, "apply": true})
    );
    assert_eq!(
        std::fs::read_to_string(out.path().join("results.jsonl")).unwrap(),
        "{}\n{}\n"
    );
    let files: Vec<&str> = report["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap())
        .collect();
    assert_eq!(files.len(), 2, "{report:#}");
    assert!(files[1].ends_with("findings.csv"), "{files:?}");

    // The fanout fails: no summary, no files, status 1.
    let out = TempDir::new("start-fanout");
    answers(&url, &[json!({"not": "a fanout answer"})]);
    let o = orgop(
        &url,
        &repo(),
        &[
            RUNBOOK,
            "--wait",
            "--out",
            out.path().to_str().unwrap(),
            "--format",
            "json",
        ],
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
    let report: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(report["error"], "OrgOp.FanoutFailed", "{report:#}");
    // The state machine's error points at the history: the task's error is read from there.
    assert_eq!(
        report["task_failure"]["error"], "States.Runtime",
        "{report:#}"
    );
    assert!(
        report["task_failure"]["cause"]
            .as_str()
            .unwrap()
            .contains("could not be found in the input"),
        "{report:#}"
    );
    assert_eq!(report["summary"], Value::Null);
    assert_eq!(std::fs::read_dir(out.path()).unwrap().count(), 0);

    // --list: the three, newest first.
    let o = orgop(&url, &repo(), &[RUNBOOK, "--list", "--format", "json"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let rows: Value = serde_json::from_slice(&o.stdout).unwrap();
    let arns: Vec<&str> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["execution_arn"].as_str().unwrap())
        .collect();
    assert_eq!(arns.len(), 3, "{rows:#}");
    assert_eq!(arns[1], applied, "{rows:#}");
    assert_eq!(arns[2], arn, "{rows:#}");
    assert_eq!(rows[2]["status"], "SUCCEEDED");
    assert_eq!(rows[1]["status"], "FAILED");
    let o = orgop(&url, &repo(), &[RUNBOOK, "--list", "--max", "1"]);
    let table = text(&o.stdout);
    assert_eq!(table.lines().count(), 2, "{table}");
    assert!(table.starts_with("NAME"), "{table}");
    assert!(
        table.contains(rows[0]["name"].as_str().unwrap()) && table.contains("FAILED"),
        "{table}"
    );
}

#[test]
fn max_wait_stops_waiting_exits_1_and_leaves_the_execution_to_run() {
    let server = emulator(true);
    let url = server.url();
    answers(&url, &run_answers("run-max-wait", "ok"));
    // 0 s: the bound passes before the first answer to DescribeExecution can arrive.
    let cwd = TempDir::new("start-max-wait");
    let o = orgop(
        &url,
        cwd.path(),
        &[
            &repo().join(RUNBOOK).to_string_lossy(),
            "--wait",
            "--max-wait",
            "0",
        ],
    );
    let (stdout, stderr) = (text(&o.stdout), text(&o.stderr));
    assert_eq!(o.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("still running after --max-wait 0 s"),
        "{stderr}"
    );
    // The execution was started and is left alone; nothing was downloaded.
    let arn = stdout.lines().next().unwrap();
    assert!(describe(&url, arn)["status"].is_string(), "{stdout}");
    assert!(!cwd.path().join("orgop-results").exists());
    // --max-wait without --wait is a usage error, before anything is sent.
    let before = executions(&url);
    let o = orgop(
        &url,
        cwd.path(),
        &[&repo().join(RUNBOOK).to_string_lossy(), "--max-wait", "5"],
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    assert_eq!(executions(&url), before);
}

#[test]
fn a_missing_state_machine_is_refused_naming_it() {
    let server = emulator(false);
    let url = server.url();
    for args in [&[RUNBOOK][..], &[RUNBOOK, "--list"]] {
        let o = orgop(&url, &repo(), args);
        let stderr = text(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(o.stdout.is_empty(), "{args:?}: {}", text(&o.stdout));
        assert!(
            stderr.contains("state machine orgop-unused-ebs does not exist")
                && stderr.contains(STATE_MACHINE)
                && stderr.contains("orgop deploy"),
            "{args:?}: {stderr}"
        );
    }
    // --state-machine-arn names another one (in its own region).
    let other = "arn:aws:states:eu-west-1:123456789012:stateMachine:elsewhere";
    let o = orgop(&url, &repo(), &[RUNBOOK, "--state-machine-arn", other]);
    let stderr = text(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("state machine elsewhere does not exist"),
        "{stderr}"
    );
    // Any other refusal: exit 2 with AWS's code and message.
    let o = orgop(
        &url,
        &repo(),
        &[RUNBOOK, "--state-machine-arn", "arn:aws:nonsense"],
    );
    let stderr = text(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.starts_with("orgop start: states:StartExecution: InvalidArn: "),
        "{stderr}"
    );
}

#[test]
fn bad_flags_and_runbooks_are_refused_before_anything_is_sent() {
    let server = emulator(true);
    let url = server.url();
    let bad_runbook = TempDir::new("start-bad");
    let broken = bad_runbook.path().join("broken.yaml");
    std::fs::write(&broken, "name: Not A Name\nsteps: []\n").unwrap();
    let cases: [(&[&str], &str); 5] = [
        (&[RUNBOOK, "--param", "min_age_days=-1"], "min_age_days"),
        (&[RUNBOOK, "--param", "min_age_days=soon"], "not an integer"),
        (
            &[RUNBOOK, "--param", "max_age=3"],
            "unknown parameter `max_age`",
        ),
        (&[RUNBOOK, "--regions", "mars-1"], "--regions"),
        (&[broken.to_str().unwrap()], "broken.yaml"),
    ];
    for (args, says) in cases {
        let o = orgop(&url, &repo(), args);
        let stderr = text(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
        assert!(o.stdout.is_empty(), "{args:?}");
    }
    assert_eq!(executions(&url), 0, "an execution was started");
    // The same state machine starts fine with good flags (so the refusals were the flags').
    answers(&url, &run_answers("run-ok", "ok"));
    let o = orgop(&url, &repo(), &[RUNBOOK, "--regions", "eu-west-1"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert_eq!(executions(&url), 1);
    let arn = text(&o.stdout);
    assert_eq!(
        describe(&url, arn.trim())["input"],
        json!({"params": {"min_age_days": 7}, "apply": false, "regions": ["eu-west-1"]})
    );
}
