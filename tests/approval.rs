//! Issue 13, part 3: approval in the deployed state machine. The compiled definition of a
//! runbook with `approval` (tests/compile/approval-ebs-snapshots.yaml) is executed by
//! aws-local-stepfunctions with every Lambda task running the real `orgop-lambda --invoke`
//! against moto server; the approval task is answered by the real `orgop approve` /
//! `orgop reject` binary, which reads the task token the approval handler stored in DynamoDB
//! and sends SendTaskSuccess / SendTaskFailure to the endpoint `tests/asl/execute.mjs` serves
//! for it (aws-local-stepfunctions has no `.waitForTaskToken`: see the top of execute.mjs for
//! exactly what it emulates).
//!
//! - approved: exactly the planned volumes that still read the same are snapshotted (counted
//!   in moto); a volume changed between plan and approval is reported `changed`, a volume
//!   created meanwhile `not planned`, neither acted on;
//! - rejected: no snapshot; the execution fails `OrgOp.Rejected` with the reviewer's reason;
//! - timed out: no snapshot; the execution fails `OrgOp.ApprovalTimedOut`, and a late
//!   `orgop approve` is refused.
use orgop_plan::MapKind;
use orgop_testkit::{TempDir, moto, repo, seed_org, venv_python};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::process::Command;

const RUNBOOK: &str = "tests/compile/approval-ebs-snapshots.yaml";
const EXECUTION: &str = "arn:aws:states:us-east-1:123456789012:execution:orgop-test:run-1";

const AWS: &str = r#"
import boto3, json, os, sys
kw = dict(endpoint_url=os.environ["AWS_ENDPOINT_URL"], region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing")
ddb = boto3.client("dynamodb", **kw)
s3 = boto3.client("s3", **kw)
sns = boto3.client("sns", **kw)
sqs = boto3.client("sqs", **kw)
sts = boto3.client("sts", **kw)
def ec2_in(account):
    c = sts.assume_role(RoleArn=f"arn:aws:iam::{account}:role/OrgOpExecutionRole", RoleSessionName="test")["Credentials"]
    return boto3.client("ec2", endpoint_url=os.environ["AWS_ENDPOINT_URL"], region_name="us-east-1", aws_access_key_id=c["AccessKeyId"], aws_secret_access_key=c["SecretAccessKey"], aws_session_token=c["SessionToken"])
"#;

fn python(script: &str, url: &str) -> String {
    let o = Command::new(venv_python())
        .args(["-c", &format!("{AWS}\n{script}")])
        .env("AWS_ENDPOINT_URL", url)
        .output()
        .expect("python runs");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout).unwrap()
}

/// The orgop-lambda binary, built by cargo like the binaries under test (this package's tests
/// only get `orgop` built for them).
fn lambda_binary() -> PathBuf {
    let orgop = PathBuf::from(env!("CARGO_BIN_EXE_orgop"));
    let o = Command::new(env!("CARGO"))
        .args(["build", "-p", "orgop-lambda", "--bin", "orgop-lambda"])
        .current_dir(repo())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let built = orgop.with_file_name("orgop-lambda");
    assert!(built.is_file(), "{} not built", built.display());
    built
}

struct World {
    _moto: orgop_testkit::Server,
    url: String,
    /// The seeded findings: (account, volume).
    planned: Vec<(String, String)>,
}

/// moto with an organization of 2 members (2 unattached volumes each in us-east-1, one kept),
/// the results table and bucket, and an SNS topic with a queue subscribed.
fn world() -> (World, String) {
    let m = moto();
    let url = m.url();
    let seed = seed_org(&url, 2, "us-east-1", 2);
    let topic = python(
        "ddb.create_table(TableName='orgop-results', BillingMode='PAY_PER_REQUEST',
  AttributeDefinitions=[{'AttributeName': 'execution', 'AttributeType': 'S'}, {'AttributeName': 'item', 'AttributeType': 'S'}],
  KeySchema=[{'AttributeName': 'execution', 'KeyType': 'HASH'}, {'AttributeName': 'item', 'KeyType': 'RANGE'}])
s3.create_bucket(Bucket='orgop-results')
topic = sns.create_topic(Name='orgop-runs')['TopicArn']
queue = sqs.create_queue(QueueName='orgop-runs')['QueueUrl']
arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=['QueueArn'])['Attributes']['QueueArn']
sns.subscribe(TopicArn=topic, Protocol='sqs', Endpoint=arn)
print(topic, end='')",
        &url,
    );
    let planned = seed["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["account_id"].as_str().unwrap().to_string(),
                f["volume_id"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    (
        World {
            _moto: m,
            url,
            planned,
        },
        topic,
    )
}

fn definition() -> String {
    let text = std::fs::read_to_string(repo().join(RUNBOOK)).unwrap();
    let mut lowered = orgop_check::check_source(RUNBOOK, &text).lowered.unwrap();
    // aws-local-stepfunctions runs the inline Map form.
    lowered.map = MapKind::Inline;
    orgop_statemachine::to_json(&orgop_statemachine::compile(&lowered))
}

/// Executes the compiled approval definition with `scenario` added to the real handlers'.
fn execute(w: &World, topic: &str, scenario: Value, env: &[(&str, &str)]) -> Value {
    let tmp = TempDir::new("approval");
    let dir = tmp.path();
    std::fs::write(dir.join("definition.json"), definition()).unwrap();
    let mut s = json!({
        "input": {"apply": true},
        "lambda": lambda_binary(),
        "python": venv_python(),
    });
    for (k, v) in scenario.as_object().unwrap() {
        s[k] = v.clone();
    }
    std::fs::write(dir.join("scenario.json"), s.to_string()).unwrap();
    let o = Command::new("node")
        .arg(repo().join("tests/asl/execute.mjs"))
        .arg(dir.join("definition.json"))
        .arg(dir.join("scenario.json"))
        .current_dir(repo().join("tests/asl"))
        .env("AWS_ENDPOINT_URL", &w.url)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "us-east-1")
        .env_remove("AWS_PROFILE")
        .env("ORGOP_RESULTS_TABLE", "orgop-results")
        .env("ORGOP_RESULTS_BUCKET", "orgop-results")
        .env("ORGOP_SNS_TOPIC_ARN", topic)
        .env("ORGOP_LOG", "warn")
        .envs(env.iter().copied())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout).unwrap()
}

/// Snapshots the runbook made, by source volume, across the members.
fn snapshots(w: &World) -> Vec<String> {
    let accounts: std::collections::BTreeSet<&str> =
        w.planned.iter().map(|(a, _)| a.as_str()).collect();
    let mut all = Vec::new();
    for account in accounts {
        let out = python(
            &format!(
                "r = ec2_in('{account}').describe_snapshots(OwnerIds=['self'], Filters=[{{'Name': 'tag:orgop:runbook', 'Values': ['approval-ebs-snapshots']}}])
print(json.dumps([s['VolumeId'] for s in r['Snapshots']]))"
            ),
            &w.url,
        );
        all.extend(serde_json::from_str::<Vec<String>>(&out).unwrap());
    }
    all.sort();
    all
}

/// The approval item the handler stored: (state, has a token).
fn approval_item(w: &World) -> (String, bool) {
    let out = python(
        &format!(
            "i = ddb.get_item(TableName='orgop-results', Key={{'execution': {{'S': '{EXECUTION}'}}, 'item': {{'S': '#approval'}}}})['Item']
print(json.dumps([i['state']['S'], len(i['token']['S']) > 0]))"
        ),
        &w.url,
    );
    serde_json::from_str(&out).unwrap()
}

/// The apply locks held in the results table: their holders.
fn lock_holders(w: &World) -> Vec<String> {
    let out = python(
        "r = ddb.scan(TableName='orgop-results', FilterExpression='#i = :l', ExpressionAttributeNames={'#i': 'item'}, ExpressionAttributeValues={':l': {'S': '#lock'}})
print(json.dumps([i['holder']['S'] for i in r['Items']]))",
        &w.url,
    );
    serde_json::from_str(&out).unwrap()
}

/// The run held the apply lock while it planned and waited (its workers carried its key),
/// and no longer holds it once the run ended without approval.
fn assert_lock_let_go(w: &World, out: &Value) {
    let key = out["plan_workers"][0]["run"]["lock"]
        .as_str()
        .unwrap_or_default();
    assert!(key.starts_with("#lock/"), "the run held no lock: {out:#}");
    assert_eq!(lock_holders(w), Vec::<String>::new(), "{out:#}");
}

/// The plan file the plan handler wrote.
fn plan_file(w: &World) -> Value {
    let text = python(
        "print(s3.get_object(Bucket='orgop-results', Key='orgop/approval-ebs-snapshots/run-1/plan.json')['Body'].read().decode(), end='')",
        &w.url,
    );
    serde_json::from_str(&text).unwrap()
}

fn orgop(args: &[&str], url: &str) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_orgop"))
        .args(args)
        .env("AWS_ENDPOINT_URL", url)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "us-east-1")
        .env_remove("AWS_PROFILE")
        .env("ORGOP_RESULTS_TABLE", "orgop-results")
        .output()
        .unwrap()
}

fn planned_volumes(plan: &Value) -> Vec<String> {
    let mut v: Vec<String> = plan["actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["resource_id"].as_str().unwrap().to_string())
        .collect();
    v.sort();
    v
}

#[test]
fn approved_applies_exactly_the_planned_actions_that_still_read_the_same() {
    let (w, topic) = world();
    let mut seeded: Vec<String> = w.planned.iter().map(|(_, v)| v.clone()).collect();
    seeded.sort();
    assert_eq!(seeded.len(), 4, "{seeded:?}");
    // Between plan and approval: one planned volume is tagged keep=true (it no longer matches
    // the selection), and a new unattached volume appears (never planned).
    let (changed_account, changed) = w.planned[0].clone();
    let between = format!(
        "{AWS}
e = ec2_in('{changed_account}')
e.create_tags(Resources=['{changed}'], Tags=[{{'Key': 'keep', 'Value': 'true'}}])
v = e.create_volume(AvailabilityZone='us-east-1a', Size=5)['VolumeId']
open(os.environ['NEW_VOLUME_FILE'], 'w').write(v)"
    );
    let tmp = TempDir::new("approval-new");
    let new_file = tmp.path().join("new-volume");
    // The harness passes its environment on to the script.
    let out = execute(
        &w,
        &topic,
        json!({
            "between": between,
            "decision": [env!("CARGO_BIN_EXE_orgop"), "approve", EXECUTION, "--reason", "reviewed", "--format", "json"],
        }),
        &[("NEW_VOLUME_FILE", new_file.to_str().unwrap())],
    );
    let new_volume = std::fs::read_to_string(&new_file).unwrap();
    assert_eq!(out["status"], "SUCCEEDED", "{out:#}");
    let decision = &out["decision"];
    assert_eq!(decision["code"], 0, "{decision:#}");
    let answered: Value = serde_json::from_str(decision["stdout"].as_str().unwrap()).unwrap();
    assert_eq!(answered["decision"], "approved");
    assert_eq!(answered["actions"], 4);

    // The plan phase planned the 4 volumes; the plan file is the CLI's format, sealed.
    let plan = plan_file(&w);
    assert_eq!(plan["format"], "orgop-change-plan/1");
    assert_eq!(planned_volumes(&plan), seeded);
    assert_eq!(out["plan"]["digest"], plan["digest"]);
    assert_eq!(out["approval"]["plan"]["actions"], 4);
    // The endpoint got exactly one SendTaskSuccess, with the approved plan's digest.
    let requests = out["sfn_requests"].as_array().unwrap();
    assert_eq!(requests.len(), 1, "{requests:?}");
    assert_eq!(requests[0]["target"], "AWSStepFunctions.SendTaskSuccess");
    let output: Value =
        serde_json::from_str(requests[0]["body"]["output"].as_str().unwrap()).unwrap();
    assert_eq!(output["digest"], plan["digest"]);
    assert_eq!(requests[0]["body"]["taskToken"], "<the task token>");

    // Exactly the planned volumes that did not change were snapshotted.
    let mut expected: Vec<String> = seeded.iter().filter(|v| **v != changed).cloned().collect();
    expected.sort();
    assert_eq!(snapshots(&w), expected);
    // ... and the results say why the other two were not.
    let summary = &out["output"]["summary"];
    assert_eq!(summary["actions"]["done"], 3, "{summary}");
    assert_eq!(summary["actions"]["skipped"], 2, "{summary}");
    let jsonl = python(
        "print(s3.get_object(Bucket='orgop-results', Key='orgop/approval-ebs-snapshots/run-1/results.jsonl')['Body'].read().decode(), end='')",
        &w.url,
    );
    let reasons: Vec<(String, String)> = jsonl
        .lines()
        .flat_map(|l| {
            let r: Value = serde_json::from_str(l).unwrap();
            r["actions"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|a| a["outcome"] == "skipped")
                .map(|a| {
                    (
                        a["resource_id"].as_str().unwrap().to_string(),
                        a["reason"].as_str().unwrap().to_string(),
                    )
                })
                .collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(reasons.len(), 2, "{reasons:?}");
    let reason_of = |v: &str| {
        reasons
            .iter()
            .find(|(r, _)| r == v)
            .map(|(_, why)| why.clone())
            .unwrap_or_else(|| panic!("{v} not skipped: {reasons:?}"))
    };
    assert!(
        reason_of(&changed).starts_with("changed: it no longer matches"),
        "{reasons:?}"
    );
    assert!(
        reason_of(&new_volume).starts_with("not planned:"),
        "{reasons:?}"
    );
    assert_eq!(approval_item(&w), ("approved".to_string(), true));
    // The approval request reached the topic, naming the plan and the commands.
    let note = python(
        "q = sqs.get_queue_url(QueueName='orgop-runs')['QueueUrl']
ms = sqs.receive_message(QueueUrl=q, MaxNumberOfMessages=10, WaitTimeSeconds=1)['Messages']
print(json.dumps([json.loads(m['Body']) for m in ms]))",
        &w.url,
    );
    let notes: Vec<Value> = serde_json::from_str(&note).unwrap();
    let asked = notes
        .iter()
        .find(|n| n["Subject"].as_str().unwrap().contains("approve"))
        .unwrap_or_else(|| panic!("no approval request in {notes:?}"));
    assert_eq!(
        asked["Subject"],
        "orgop approval-ebs-snapshots: approve 4 actions? (run-1)"
    );
    let message = asked["Message"].as_str().unwrap();
    assert!(
        message.contains("s3://orgop-results/orgop/approval-ebs-snapshots/run-1/plan.json"),
        "{message}"
    );
    assert!(
        message.contains(&format!("orgop approve {EXECUTION}")),
        "{message}"
    );
    // The token is never in the notification.
    assert!(!message.contains("orgop-test-token"), "{message}");
    // A second answer is refused: the approval was already answered.
    let again = orgop(&["reject", EXECUTION, "--reason", "too late"], &w.url);
    assert_eq!(again.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("already answered (approved)"),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
}

#[test]
fn rejected_changes_nothing_and_the_execution_says_rejected_with_the_reason() {
    let (w, topic) = world();
    let out = execute(
        &w,
        &topic,
        json!({"decision": [env!("CARGO_BIN_EXE_orgop"), "reject", EXECUTION, "--reason", "not during the freeze"]}),
        &[],
    );
    assert_eq!(out["status"], "FAILED", "{out:#}");
    assert_eq!(out["error"], "OrgOp.Rejected", "{out:#}");
    assert!(
        out["cause"]
            .as_str()
            .unwrap()
            .ends_with(": not during the freeze"),
        "{out:#}"
    );
    assert_eq!(out["decision"]["code"], 0, "{:#}", out["decision"]);
    assert_eq!(planned_volumes(&plan_file(&w)).len(), 4);
    assert_eq!(snapshots(&w), Vec::<String>::new());
    // The run proper never started: no worker of the Accounts Map ran.
    assert_eq!(out["workers"].as_array().unwrap().len(), 0);
    assert_eq!(approval_item(&w), ("rejected".to_string(), true));
    // The lock the fanout took is let go: the next applier need not wait for it to expire.
    assert_lock_let_go(&w, &out);

    // The plan file is the CLI's: `orgop plan show` reviews it as it is.
    let tmp = TempDir::new("approval-plan");
    let file = tmp.path().join("plan.json");
    std::fs::write(
        &file,
        python(
            "print(s3.get_object(Bucket='orgop-results', Key='orgop/approval-ebs-snapshots/run-1/plan.json')['Body'].read().decode(), end='')",
            &w.url,
        ),
    )
    .unwrap();
    let shown = orgop(&["plan", "show", file.to_str().unwrap()], &w.url);
    let text = String::from_utf8_lossy(&shown.stdout);
    assert_eq!(shown.status.code(), Some(0), "{text}");
    assert!(text.contains("actions  4"), "{text}");
    assert!(text.contains("runbook approval-ebs-snapshots v1"), "{text}");

    // The workers' own guard: a worker of the run proper that is asked to apply without an
    // approved plan, or with a plan whose digest is not the approved one, refuses before it
    // runs, and nothing is snapshotted.
    let plan = plan_file(&w);
    let worker = out["plan_workers"][0].clone();
    let mut apply = worker.clone();
    apply["phase"] = json!("apply");
    apply["run"]["apply"] = json!(true);
    let (ok, stderr) = invoke(&w, &apply);
    assert!(!ok);
    assert!(
        stderr.contains("OrgOp.InvalidInput") && stderr.contains("apply only an approved plan"),
        "{stderr}"
    );
    apply["run"]["approved"] = json!({
        "plan": {"bucket": "orgop-results", "key": "orgop/approval-ebs-snapshots/run-1/plan.json"},
        "digest": "sha256:0000",
    });
    let (ok, stderr) = invoke(&w, &apply);
    assert!(!ok);
    assert!(
        stderr.contains(&format!(
            "its digest is {}, the approved plan's sha256:0000: not applied",
            plan["digest"].as_str().unwrap()
        )),
        "{stderr}"
    );
    assert_eq!(snapshots(&w), Vec::<String>::new());
}

/// Runs `orgop-lambda --invoke` on `payload` against the world: (succeeded, stderr).
fn invoke(w: &World, payload: &Value) -> (bool, String) {
    use std::io::Write;
    let mut child = Command::new(lambda_binary())
        .arg("--invoke")
        .env("AWS_ENDPOINT_URL", &w.url)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "us-east-1")
        .env("ORGOP_RESULTS_TABLE", "orgop-results")
        .env("ORGOP_RESULTS_BUCKET", "orgop-results")
        .env("ORGOP_LOG", "warn")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(payload.to_string().as_bytes())
        .unwrap();
    let o = child.wait_with_output().unwrap();
    (
        o.status.success(),
        String::from_utf8_lossy(&o.stderr).to_string(),
    )
}

/// asl-validator accepts the inline form this file executes (tests/compile.rs validates the
/// distributed form the runbook compiles to by default).
#[test]
fn asl_validator_accepts_the_inline_approval_definition() {
    let tmp = TempDir::new("approval-asl");
    let path = tmp.path().join("approval.asl.json");
    std::fs::write(&path, definition()).unwrap();
    let o = Command::new(repo().join("tests/asl/node_modules/.bin/asl-validator"))
        .arg("--json-path")
        .arg(&path)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(o.status.success() && text.contains("is valid"), "{text}");
    let d: Value = serde_json::from_str(&definition()).unwrap();
    assert_eq!(
        d["States"]["Approval"]["Resource"],
        "arn:aws:states:::lambda:invoke.waitForTaskToken"
    );
    assert_eq!(
        d["States"]["PlanAccounts"]["ItemProcessor"]["ProcessorConfig"]["Mode"],
        "INLINE"
    );
}

#[test]
fn timed_out_changes_nothing_and_a_late_approval_is_refused() {
    let (w, topic) = world();
    let out = execute(&w, &topic, json!({"approval_timeout_seconds": 3}), &[]);
    assert_eq!(out["status"], "FAILED", "{out:#}");
    assert_eq!(out["error"], "OrgOp.ApprovalTimedOut", "{out:#}");
    assert!(
        out["cause"]
            .as_str()
            .unwrap()
            .contains("nothing was applied"),
        "{out:#}"
    );
    assert_eq!(snapshots(&w), Vec::<String>::new());
    assert_eq!(out["workers"].as_array().unwrap().len(), 0);
    assert_eq!(approval_item(&w), ("pending".to_string(), true));
    assert_lock_let_go(&w, &out);
    let late = orgop(&["approve", EXECUTION], &w.url);
    assert_eq!(late.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&late.stderr);
    assert!(stderr.contains("timed out"), "{stderr}");
    // No pending approval at all for another execution.
    let none = orgop(
        &[
            "approve",
            "arn:aws:states:us-east-1:123456789012:execution:orgop-test:other",
        ],
        &w.url,
    );
    assert_eq!(none.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&none.stderr).contains("no approval is pending"),
        "{}",
        String::from_utf8_lossy(&none.stderr)
    );
}
