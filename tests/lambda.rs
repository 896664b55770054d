//! The orgop Lambda's handlers, called with exactly the JSON the compiled state machine
//! produces: the compiled `unused-ebs` definition is executed by aws-local-stepfunctions, and
//! each of its Lambda tasks runs the real `orgop-lambda --invoke` against moto server. The
//! worker stores results in DynamoDB and the result handler writes the CSV and JSONL to S3.
use orgop_plan::MapKind;
use orgop_testkit::{TempDir, moto, proxy, repo, seed_org, venv_python};
use serde_json::{Value, json};
use std::process::Command;

fn python(script: &str, env: &[(&str, &str)]) -> String {
    let o = Command::new(venv_python())
        .args(["-c", script])
        .envs(env.iter().copied())
        .output()
        .expect("python runs");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout).unwrap()
}

const AWS: &str = r#"
import boto3, json, os, sys
kw = dict(endpoint_url=os.environ["AWS_ENDPOINT_URL"], region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing")
ddb = boto3.client("dynamodb", **kw)
s3 = boto3.client("s3", **kw)
sns = boto3.client("sns", **kw)
sqs = boto3.client("sqs", **kw)
"#;

#[test]
fn handlers_run_the_compiled_state_machine_against_the_emulator() {
    let emulator = moto();
    let url = emulator.url();
    let env = [("AWS_ENDPOINT_URL", url.as_str())];
    let seed = seed_org(&url, 3, "us-east-1,eu-west-1", 2);
    let topic = python(
        &format!(
            "{AWS}
ddb.create_table(TableName='orgop-results', BillingMode='PAY_PER_REQUEST',
  AttributeDefinitions=[{{'AttributeName': 'execution', 'AttributeType': 'S'}}, {{'AttributeName': 'item', 'AttributeType': 'S'}}],
  KeySchema=[{{'AttributeName': 'execution', 'KeyType': 'HASH'}}, {{'AttributeName': 'item', 'KeyType': 'RANGE'}}])
s3.create_bucket(Bucket='orgop-results')
topic = sns.create_topic(Name='orgop-runs')['TopicArn']
queue = sqs.create_queue(QueueName='orgop-runs')['QueueUrl']
arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=['QueueArn'])['Attributes']['QueueArn']
sns.subscribe(TopicArn=topic, Protocol='sqs', Endpoint=arn)
print(topic, end='')"
        ),
        &env,
    );

    // Compile the shipped runbook; aws-local-stepfunctions runs the inline Map form.
    let text = std::fs::read_to_string(repo().join("runbooks/unused-ebs.yaml")).unwrap();
    let mut lowered = orgop_check::check_source("runbooks/unused-ebs.yaml", &text)
        .lowered
        .unwrap();
    lowered.map = MapKind::Inline;
    // At most 3 resources acted on in the whole run, across every worker invocation.
    lowered.plan.safety.max_actions_per_run = Some(3);
    let definition = orgop_statemachine::to_json(&orgop_statemachine::compile(&lowered));
    let tmp = TempDir::new("lambda");
    let dir = tmp.path();
    std::fs::write(dir.join("definition.json"), &definition).unwrap();
    std::fs::write(
        dir.join("scenario.json"),
        json!({"input": {"params": {"min_age_days": 0}}, "lambda": env!("CARGO_BIN_EXE_orgop-lambda")}).to_string(),
    )
    .unwrap();
    // A Slack stand-in: a webhook endpoint on 127.0.0.1 that records what it is sent.
    let hook = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let hook_url = format!(
        "http://127.0.0.1:{}/services/T0/B0/x",
        hook.local_addr().unwrap().port()
    );
    let received = std::thread::spawn(move || {
        use std::io::{Read, Write};
        let (mut s, _) = hook.accept().unwrap();
        s.set_read_timeout(Some(std::time::Duration::from_secs(30)))
            .unwrap();
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            let n = s.read(&mut chunk).unwrap_or(0);
            buf.extend_from_slice(&chunk[..n]);
            let text = String::from_utf8_lossy(&buf).to_string();
            if let Some((head, body)) = text.split_once("\r\n\r\n") {
                let len: usize = head
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length:")
                            .map(|v| v.trim().parse().unwrap())
                    })
                    .unwrap_or(0);
                if body.len() >= len || n == 0 {
                    s.write_all(
                        b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok",
                    )
                    .unwrap();
                    return text;
                }
            }
            if n == 0 {
                return text;
            }
        }
    });
    // The workers share the run's action cap through a conditional DynamoDB update, which
    // AWS applies atomically and moto server does not: a proxy forwards DynamoDB requests one
    // at a time so the emulator behaves like the service here.
    let serial = proxy(&url, &["--serialize", "dynamodb"]);
    let workers_url = serial.url();
    let o = Command::new("node")
        .arg(repo().join("tests/asl/execute.mjs"))
        .arg(dir.join("definition.json"))
        .arg(dir.join("scenario.json"))
        .current_dir(repo().join("tests/asl"))
        .env("AWS_ENDPOINT_URL", &workers_url)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "us-east-1")
        .env("ORGOP_RESULTS_TABLE", "orgop-results")
        .env("ORGOP_RESULTS_BUCKET", "orgop-results")
        .env("ORGOP_RESULTS_TTL_DAYS", "30")
        .env("ORGOP_SNS_TOPIC_ARN", &topic)
        .env("ORGOP_SLACK_WEBHOOK_URL", &hook_url)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(out["status"], "SUCCEEDED", "{out:#}");

    // 3 members + the management account, 2 regions: one worker each.
    assert_eq!(out["workers"].as_array().unwrap().len(), 8);
    let summary = &out["output"]["summary"];
    assert_eq!(summary["items"], 8, "{summary}");
    assert_eq!(summary["failed"], 0);
    let expected = seed["findings"].as_array().unwrap().len();
    assert_eq!(summary["findings"], expected);
    // Snapshot and delete planned for 3 volumes in all; every other volume's actions held back.
    assert_eq!(summary["actions"]["planned"], 2 * 3, "{summary}");
    assert_eq!(
        summary["actions"]["skipped"],
        2 * (expected - 3),
        "{summary}"
    );

    // The worker stored every item's full result in DynamoDB ...
    let execution = "arn:aws:states:us-east-1:123456789012:execution:orgop-test:run-1";
    let stored = Command::new(venv_python())
        .args(["-c", &format!("{AWS}\nr = ddb.query(TableName='orgop-results', KeyConditionExpression='#e = :e', ExpressionAttributeNames={{'#e': 'execution'}}, ExpressionAttributeValues={{':e': {{'S': sys.argv[1]}}}})\nprint(json.dumps([json.loads(i['result']['S']) for i in r['Items'] if 'result' in i]))"), execution])
        .envs(env)
        .output()
        .unwrap();
    assert!(
        stored.status.success(),
        "{}",
        String::from_utf8_lossy(&stored.stderr)
    );
    let stored: Vec<Value> = serde_json::from_slice(&stored.stdout).unwrap();
    assert_eq!(stored.len(), 8);
    let found: usize = stored
        .iter()
        .map(|r| r["findings"].as_array().unwrap().len())
        .sum();
    assert_eq!(found, expected);
    // Each stored item expires (the table's TTL) 30 days after it was written.
    let expiries = python(
        &format!(
            "{AWS}\nr = ddb.query(TableName='orgop-results', KeyConditionExpression='#e = :e', ExpressionAttributeNames={{'#e': 'execution'}}, ExpressionAttributeValues={{':e': {{'S': '{execution}'}}}})\nprint(json.dumps([int(i['expires_at']['N']) for i in r['Items'] if 'result' in i]))"
        ),
        &env,
    );
    let expiries: Vec<u64> = serde_json::from_str(&expiries).unwrap();
    let in_30_days = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 30 * 86_400;
    assert_eq!(expiries.len(), 8);
    assert!(
        expiries.iter().all(|e| e.abs_diff(in_30_days) < 600),
        "{expiries:?} vs {in_30_days}"
    );

    // ... and the result handler wrote the report to S3.
    let key = "orgop/unused-ebs/run-1/findings.csv";
    assert_eq!(summary["findings_uri"], format!("s3://orgop-results/{key}"));
    let csv = python(
        &format!(
            "{AWS}\nprint(s3.get_object(Bucket='orgop-results', Key='{key}')['Body'].read().decode(), end='')"
        ),
        &env,
    );
    let mut lines = csv.lines();
    assert_eq!(
        lines.next().unwrap(),
        "account_id,account_name,region,resource_id,size_gib,volume_type,availability_zone,created,age_days"
    );
    let rows: Vec<&str> = lines.collect();
    assert_eq!(rows.len(), expected);
    for f in seed["findings"].as_array().unwrap() {
        assert!(
            rows.iter()
                .any(|r| r.contains(f["volume_id"].as_str().unwrap())),
            "{f} missing from the CSV"
        );
    }
    // The run's summary was published to the SNS topic (read back through a subscribed queue).
    let note = python(
        &format!(
            "{AWS}\nq = sqs.get_queue_url(QueueName='orgop-runs')['QueueUrl']\nm = sqs.receive_message(QueueUrl=q, WaitTimeSeconds=1)['Messages'][0]\nprint(json.loads(m['Body'])['Subject'], end='')"
        ),
        &env,
    );
    assert_eq!(
        note,
        format!("orgop unused-ebs: 8 items, 0 failed, {expected} findings")
    );
    let posted = received.join().unwrap();
    assert!(posted.starts_with("POST /services/T0/B0/x"), "{posted}");
    let body: Value = serde_json::from_str(posted.split_once("\r\n\r\n").unwrap().1).unwrap();
    assert_eq!(
        body["text"],
        format!(
            "orgop unused-ebs: 8 items, 0 failed, {expected} findings (s3://orgop-results/orgop/unused-ebs/run-1/findings.csv)"
        )
    );
    let jsonl = python(
        &format!(
            "{AWS}\nprint(s3.get_object(Bucket='orgop-results', Key='orgop/unused-ebs/run-1/results.jsonl')['Body'].read().decode(), end='')"
        ),
        &env,
    );
    assert_eq!(jsonl.lines().count(), 8);
}

/// Runs `orgop-lambda --invoke` on `payload` with `ORGOP_LOG=info` and a session whose secret
/// key and token are `SECRET` and `TOKEN`: (succeeded, stdout, stderr).
fn invoke_logged(url: &str, payload: &Value) -> (bool, String, String) {
    use std::io::Write;
    use std::process::Stdio;
    let mut child = Command::new(env!("CARGO_BIN_EXE_orgop-lambda"))
        .arg("--invoke")
        .env("AWS_ENDPOINT_URL", url)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", SECRET)
        .env("AWS_SESSION_TOKEN", TOKEN)
        .env("AWS_REGION", "us-east-1")
        .env("ORGOP_RESULTS_TABLE", "orgop-logs")
        .env("ORGOP_LOG", "info")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(payload.to_string().as_bytes())
        .unwrap();
    let o = child.wait_with_output().unwrap();
    let (stdout, stderr) = (
        String::from_utf8(o.stdout).unwrap(),
        String::from_utf8(o.stderr).unwrap(),
    );
    for never in [SECRET, TOKEN, PARAM] {
        assert!(!stderr.contains(never), "{never} logged: {stderr}");
        assert!(!stdout.contains(never), "{never} printed: {stdout}");
    }
    (o.status.success(), stdout, stderr)
}

const SECRET: &str = "secret-key-never-logged";
const TOKEN: &str = "session-token-never-logged";
const PARAM: &str = "param-value-never-logged";

/// The log line with `message`, after checking that every line of `stderr` is JSON (the
/// `--invoke` error line included).
fn log_line(stderr: &str, message: &str) -> Value {
    let lines: Vec<Value> = stderr
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    lines
        .into_iter()
        .find(|l| l["message"] == message)
        .unwrap_or_else(|| panic!("no `{message}` line in {stderr}"))
}

/// `orgop-lambda --invoke` with `ORGOP_LOG=info`: the logs are JSON lines on stderr (stdout
/// stays the answer), inside the invocation's span, and neither the credentials nor the
/// run's parameter values appear in them.
#[test]
fn invocation_logs_are_json_lines_in_a_span_without_credentials() {
    let emulator = moto();
    let url = emulator.url();
    python(
        &format!(
            "{AWS}
ddb.create_table(TableName='orgop-logs', BillingMode='PAY_PER_REQUEST',
  AttributeDefinitions=[{{'AttributeName': 'execution', 'AttributeType': 'S'}}, {{'AttributeName': 'item', 'AttributeType': 'S'}}],
  KeySchema=[{{'AttributeName': 'execution', 'KeyType': 'HASH'}}, {{'AttributeName': 'item', 'KeyType': 'RANGE'}}])"
        ),
        &[("AWS_ENDPOINT_URL", url.as_str())],
    );
    let execution = "arn:aws:states:us-east-1:123456789012:execution:orgop-test:run-logs";
    let run = json!({"execution": execution, "params": {"api_key": PARAM}, "apply": false});

    // The result handler: its end line with the counts.
    let payload = json!({
        "handler": "results", "runbook": "unused-ebs", "count": 0, "columns": [],
        "run": run, "execution": execution,
    });
    let (ok, stdout, stderr) = invoke_logged(&url, &payload);
    assert!(ok, "{stderr}");
    let answer: Value = serde_json::from_str(&stdout).expect("stdout is only the answer");
    assert_eq!(answer["items"], 0, "{answer}");
    let done = log_line(&stderr, "results finished");
    assert_eq!(done["level"], "INFO");
    assert_eq!(done["outcome"], "ok");
    assert_eq!(
        (&done["items"], &done["failed"], &done["findings"]),
        (&json!(0), &json!(0), &json!(0)),
        "{done}"
    );
    assert!(done["duration_ms"].is_u64(), "{done}");
    let span = &done["span"];
    assert_eq!(span["handler"], "results", "{done}");
    assert_eq!(span["execution"], execution, "{done}");
    assert!(
        span["request_id"].as_str().is_some_and(|id| !id.is_empty()),
        "{done}"
    );

    // A worker refused before it runs (a plan from another build): the failure, in a span
    // that names the item.
    let text = std::fs::read_to_string(repo().join("runbooks/unused-ebs.yaml")).unwrap();
    let mut plan = orgop_check::check_source("runbooks/unused-ebs.yaml", &text)
        .lowered
        .unwrap()
        .plan;
    plan.format += 1000;
    let payload = json!({
        "handler": "worker", "run": run, "plan": plan,
        "item": {"account_id": "111111111111", "account_name": "one", "region": "eu-west-1"},
    });
    let (ok, _, stderr) = invoke_logged(&url, &payload);
    assert!(!ok, "{stderr}");
    let failed = log_line(&stderr, "invocation failed");
    assert_eq!(failed["level"], "ERROR");
    assert_eq!(failed["error_type"], "OrgOp.InvalidInput", "{failed}");
    // An invalid payload's message may quote a value: only the error's name is logged.
    assert!(failed.get("error_message").is_none(), "{failed}");
    let span = &failed["span"];
    assert_eq!(
        (&span["handler"], &span["execution"]),
        (&json!("worker"), &json!(execution)),
        "{failed}"
    );
    assert_eq!(
        (&span["account"], &span["region"]),
        (&json!("111111111111"), &json!("eu-west-1")),
        "{failed}"
    );
}

const TABLE: &str = r#"
ddb.create_table(TableName='orgop-results', BillingMode='PAY_PER_REQUEST',
  AttributeDefinitions=[{'AttributeName': 'execution', 'AttributeType': 'S'}, {'AttributeName': 'item', 'AttributeType': 'S'}],
  KeySchema=[{'AttributeName': 'execution', 'KeyType': 'HASH'}, {'AttributeName': 'item', 'KeyType': 'RANGE'}])
s3.create_bucket(Bucket='orgop-results')
"#;

/// Runs `tests/asl/execute.mjs` on `definition` with `scenario` and the Lambda's environment
/// pointed at `url`.
fn execute(definition: &str, scenario: Value, url: &str) -> Value {
    let tmp = TempDir::new("lambda-exec");
    let dir = tmp.path();
    std::fs::write(dir.join("definition.json"), definition).unwrap();
    std::fs::write(dir.join("scenario.json"), scenario.to_string()).unwrap();
    let o = Command::new("node")
        .arg(repo().join("tests/asl/execute.mjs"))
        .arg(dir.join("definition.json"))
        .arg(dir.join("scenario.json"))
        .current_dir(repo().join("tests/asl"))
        .env("AWS_ENDPOINT_URL", url)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "us-east-1")
        .env("ORGOP_RESULTS_TABLE", "orgop-results")
        .env("ORGOP_RESULTS_BUCKET", "orgop-results")
        .env("ORGOP_LOG", "warn")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout).unwrap()
}

fn compiled(map: MapKind) -> String {
    let text = std::fs::read_to_string(repo().join("runbooks/unused-ebs.yaml")).unwrap();
    let mut lowered = orgop_check::check_source("runbooks/unused-ebs.yaml", &text)
        .lowered
        .unwrap();
    lowered.map = map;
    orgop_statemachine::to_json(&orgop_statemachine::compile(&lowered))
}

/// The compiled distributed form with the real handlers against moto: one account's role is
/// denied, one account's worker always fails (with a 32 KB cause), and one account's worker
/// answers ok but its result never reaches the store. Every item is in the results with its
/// status (the caught failures with a bounded cause, the unstored ones `lost`), and the
/// execution ends in `ItemsFailed`.
///
/// aws-local-stepfunctions has no distributed Map: execute.mjs runs the compiled definition
/// with the Map made inline and does the ItemReader's and ResultWriter's part itself, reading
/// the fanout's items.json from S3 and writing the children's result files and manifest.json
/// to S3 as AWS documents them; the result handler reads them from there.
#[test]
fn distributed_form_accounts_for_every_item_with_failures_and_denials() {
    let emulator = moto();
    let url = emulator.url();
    let seed = seed_org(&url, 3, "us-east-1,eu-west-1", 1);
    python(
        &format!("{AWS}{TABLE}"),
        &[("AWS_ENDPOINT_URL", url.as_str())],
    );
    let accounts: Vec<String> = seed["accounts"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    let (denied, failing, unstored) = (
        accounts[0].clone(),
        accounts[1].clone(),
        accounts[2].clone(),
    );
    let faulty = proxy(&url, &["--deny-assume-role", &denied]);
    let out = execute(
        &compiled(MapKind::Distributed),
        json!({"input": {"params": {"min_age_days": 0}},
               "lambda": env!("CARGO_BIN_EXE_orgop-lambda"),
               "fail_accounts": [failing], "cause_bytes": 32 * 1024,
               "unstored_accounts": [unstored],
               "results_bucket": "orgop-results", "python": venv_python().to_str().unwrap()}),
        &faulty.url(),
    );
    assert_eq!(out["status"], "FAILED", "{out:#}");
    assert_eq!(out["error"], "OrgOp.ItemsFailed", "{out:#}");
    // The result handler read the ResultWriter's manifest and the fanout's item list.
    let results = &out["results"];
    assert!(
        results["map_results"]["ResultWriterDetails"]["Key"]
            .as_str()
            .unwrap()
            .ends_with("/manifest.json"),
        "{results}"
    );
    assert_eq!(results["items_location"]["bucket"], "orgop-results");
    let jsonl = python(
        &format!(
            "{AWS}\nprint(s3.get_object(Bucket='orgop-results', Key='orgop/unused-ebs/run-1/results.jsonl')['Body'].read().decode(), end='')"
        ),
        &[("AWS_ENDPOINT_URL", url.as_str())],
    );
    let lines: Vec<Value> = jsonl
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    // 3 members + the management account, 2 regions: one worker each, one result line each.
    assert_eq!(out["workers"].as_array().unwrap().len(), 8);
    assert_eq!(lines.len(), 8, "{jsonl}");
    for r in &lines {
        let account = r["account_id"].as_str().unwrap();
        let (status, code) = if account == denied {
            ("denied", Some("AccessDenied"))
        } else if account == failing {
            ("error", Some("OrgOp.ResultsStore"))
        } else if account == unstored {
            ("lost", Some("OrgOp.ItemLost"))
        } else {
            ("ok", None)
        };
        assert_eq!(r["status"], status, "{r}");
        assert_eq!(r["error"]["code"].as_str(), code, "{r}");
        if account == failing {
            let message = r["error"]["message"].as_str().unwrap();
            assert!(
                message.len() <= orgop_plan::contract::MESSAGE_BYTES,
                "{}",
                message.len()
            );
        }
        if account == unstored {
            let message = r["error"]["message"].as_str().unwrap();
            assert!(
                message.contains("answered `ok` but its result is not in the results store"),
                "{message}"
            );
        }
    }
    assert_eq!(
        out["failures"].as_array().unwrap().len(),
        2,
        "RecordFailure ran once per failed worker"
    );
    // The summary the execution routed on.
    let summary = &out["results_answer"];
    assert_eq!(
        (&summary["items"], &summary["failed"]),
        (&json!(8), &json!(6)),
        "{summary}"
    );
    let by_status = &summary["by_status"];
    assert_eq!(
        [
            &by_status["ok"],
            &by_status["denied"],
            &by_status["error"],
            &by_status["lost"]
        ],
        [&json!(2), &json!(2), &json!(2), &json!(2)],
        "{summary}"
    );
    println!("largest state payload: {}", out["payloads"]);
}

/// 500 inline items whose workers all fail with a 32 KB cause: RecordFailure (the real
/// handler) bounds each record, and every state's input and output stays below Step
/// Functions' 256 KiB limit, measured over every state of the execution.
#[test]
fn five_hundred_failing_inline_items_stay_below_the_payload_limit() {
    let items: Vec<Value> = (0..500)
        .map(|i| {
            json!({"account_id": format!("{:012}", 100_000_000_000u64 + i / 2),
                   "account_name": format!("member-{i}"),
                   "region": if i % 2 == 0 { "us-east-1" } else { "eu-west-1" }})
        })
        .collect();
    let accounts: Vec<Value> = items.iter().map(|i| i["account_id"].clone()).collect();
    let out = execute(
        &compiled(MapKind::Inline),
        json!({"input": {}, "items": items, "fail_accounts": accounts,
               "cause_bytes": 32 * 1024,
               "failure_lambda": env!("CARGO_BIN_EXE_orgop-lambda")}),
        "http://127.0.0.1:9",
    );
    assert_eq!(out["status"], "FAILED", "{}", out["cause"]);
    assert_eq!(out["error"], "OrgOp.ItemsFailed");
    let summaries = out["results"]["items"].as_array().unwrap();
    assert_eq!(summaries.len(), 500);
    assert!(summaries.iter().all(|s| s["status"] == "error"
        && s["error_code"] == "OrgOp.ResultsStore"
        && s["error_message"].as_str().unwrap().len() <= orgop_plan::contract::MESSAGE_BYTES));
    let max = out["payloads"]["max_bytes"].as_u64().unwrap();
    println!(
        "500 failing inline items: largest state payload {max} bytes ({} of {}), limit 262144",
        out["payloads"]["kind"], out["payloads"]["state"]
    );
    assert!(max < 256 * 1024, "{}", out["payloads"]);
}

/// Runs `orgop-lambda --invoke` on `payload` with the results table `orgop-results`:
/// (succeeded, stdout, stderr).
fn invoke(url: &str, payload: &Value) -> (bool, String, String) {
    use std::io::Write;
    use std::process::Stdio;
    let mut child = Command::new(env!("CARGO_BIN_EXE_orgop-lambda"))
        .arg("--invoke")
        .env("AWS_ENDPOINT_URL", url)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "us-east-1")
        .env("ORGOP_RESULTS_TABLE", "orgop-results")
        .env("ORGOP_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
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
        String::from_utf8(o.stdout).unwrap(),
        String::from_utf8(o.stderr).unwrap(),
    )
}

/// The apply lock item of `unused-ebs` in the emulator's organization, as JSON (`null`: none).
fn lock_item(url: &str) -> Value {
    let got = python(
        &format!(
            "{AWS}
org = boto3.client('organizations', **kw).describe_organization()['Organization']['Id']
r = ddb.get_item(TableName='orgop-results', Key={{'execution': {{'S': f'#lock/{{org}}/unused-ebs'}}, 'item': {{'S': '#lock'}}}}, ConsistentRead=True)
print(json.dumps(r.get('Item')))"
        ),
        &[("AWS_ENDPOINT_URL", url)],
    );
    serde_json::from_str(&got).unwrap()
}

/// Records a lock of `unused-ebs` held by `holder` until `expires_at` (what another
/// execution, or a crashed one, leaves in the table).
fn hold_lock(url: &str, holder: &str, expires_at: u64) {
    python(
        &format!(
            "{AWS}
org = boto3.client('organizations', **kw).describe_organization()['Organization']['Id']
ddb.put_item(TableName='orgop-results', Item={{'execution': {{'S': f'#lock/{{org}}/unused-ebs'}}, 'item': {{'S': '#lock'}},
  'holder': {{'S': '{holder}'}}, 'what': {{'S': 'execution {holder}'}}, 'started_at': {{'N': '1767225600'}}, 'expires_at': {{'N': '{expires_at}'}}}})"
        ),
        &[("AWS_ENDPOINT_URL", url)],
    );
}

/// Snapshots orgop took, by volume id (`tests/support/ebs_ops.py`).
fn snapshots_of(url: &str, seed: &Value) -> Vec<String> {
    let accounts: Vec<&str> = seed["accounts"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let o = Command::new(venv_python())
        .arg(repo().join("tests/support/ebs_ops.py"))
        .args([
            "--endpoint",
            url,
            "snapshots",
            &accounts.join(","),
            "us-east-1",
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let list: Vec<Value> = serde_json::from_slice(&o.stdout).unwrap();
    let mut ids: Vec<String> = list
        .iter()
        .map(|s| s["volume_id"].as_str().unwrap().to_string())
        .collect();
    ids.sort();
    ids
}

fn epoch_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// One applier at a time in the deployed form: an applying execution whose runbook's lock is
/// held by another execution ends `OrgOp.LockHeld` naming that holder, no worker runs and
/// nothing is snapshotted; a dry run is not refused and leaves the lock as it was; once the
/// other's lock expired (it crashed), the next applying execution takes it over, its workers
/// carry it, each volume is snapshotted once, and the results handler releases it though an
/// item failed. A results handler never releases a lock that is not its execution's.
#[test]
fn an_applying_execution_holds_the_apply_lock_and_a_refused_one_sends_nothing() {
    let emulator = moto();
    let url = emulator.url();
    let seed = seed_org(&url, 2, "us-east-1", 1);
    python(
        &format!("{AWS}{TABLE}"),
        &[("AWS_ENDPOINT_URL", url.as_str())],
    );
    let volumes: Vec<String> = {
        let mut v: Vec<String> = seed["findings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["volume_id"].as_str().unwrap().to_string())
            .collect();
        v.sort();
        v
    };
    assert_eq!(volumes.len(), 2, "{seed}");
    let definition = compiled(MapKind::Inline);
    let scenario = |apply: bool, fail: &[&str]| {
        json!({
            "input": {"apply": apply, "params": {"min_age_days": 0}},
            "lambda": env!("CARGO_BIN_EXE_orgop-lambda"),
            "fail_accounts": fail,
        })
    };
    let other = "arn:aws:states:us-east-1:123456789012:execution:orgop-test:other";
    hold_lock(&url, other, epoch_now() + 3600);

    let out = execute(&definition, scenario(true, &[]), &url);
    assert_eq!(out["status"], "FAILED", "{out:#}");
    assert_eq!(out["error"], "OrgOp.LockHeld", "{out:#}");
    let cause = out["cause"].as_str().unwrap();
    assert!(
        cause.contains(&format!("being applied by execution {other}"))
            && cause.contains("expires at"),
        "{cause}"
    );
    assert_eq!(out["workers"], json!([]), "{out:#}");
    assert_eq!(snapshots_of(&url, &seed), Vec::<String>::new());
    assert_eq!(lock_item(&url)["holder"]["S"], other);

    // A dry run never locks: not refused, the other's lock untouched.
    let before = lock_item(&url);
    let out = execute(&definition, scenario(false, &[]), &url);
    assert_eq!(out["status"], "SUCCEEDED", "{out:#}");
    assert!(out["fanout"].is_object());
    assert!(
        out["workers"]
            .as_array()
            .unwrap()
            .iter()
            .all(|w| w["run"].get("lock").is_none()),
        "{out:#}"
    );
    assert_eq!(lock_item(&url), before);

    // The other execution crashed: its lock expired. The next applying execution takes it
    // over; one account's worker fails, and the lock is still released at the end.
    hold_lock(&url, other, epoch_now() - 1);
    // (Every execution here is `run-1`: the dry run's results go first.)
    python(
        &format!(
            "{AWS}
for i in ddb.scan(TableName='orgop-results')['Items']:
    if i['execution']['S'].startswith('arn:'):
        ddb.delete_item(TableName='orgop-results', Key={{'execution': i['execution'], 'item': i['item']}})"
        ),
        &[("AWS_ENDPOINT_URL", url.as_str())],
    );
    let failing = seed["accounts"]
        .as_object()
        .unwrap()
        .keys()
        .next()
        .unwrap()
        .clone();
    let out = execute(&definition, scenario(true, &[&failing]), &url);
    assert_eq!(out["status"], "FAILED", "{out:#}");
    assert_eq!(out["error"], "OrgOp.ItemsFailed", "{out:#}");
    let workers = out["workers"].as_array().unwrap();
    assert!(!workers.is_empty());
    for w in workers {
        assert!(
            w["run"]["lock"]
                .as_str()
                .is_some_and(|l| l.starts_with("#lock/o-") && l.ends_with("/unused-ebs")),
            "{w}"
        );
    }
    assert_eq!(
        lock_item(&url),
        Value::Null,
        "the results handler left the lock"
    );
    let snapped = snapshots_of(&url, &seed);
    let expected: Vec<String> = seed["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["account_id"] != failing.as_str())
        .map(|f| f["volume_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        snapped, expected,
        "each volume of the working account snapshotted once"
    );

    // A results handler releases only its own execution's lock.
    hold_lock(&url, other, epoch_now() + 3600);
    let partition = workers[0]["run"]["lock"].as_str().unwrap();
    let execution = "arn:aws:states:us-east-1:123456789012:execution:orgop-test:run-1";
    let (ok, _, stderr) = invoke(
        &url,
        &json!({
            "handler": "results", "runbook": "unused-ebs", "count": 0, "columns": [],
            "run": {"execution": execution, "apply": true, "lock": partition},
            "execution": execution,
        }),
    );
    assert!(ok, "{stderr}");
    assert_eq!(lock_item(&url)["holder"]["S"], other);
    // ... and a worker of an execution that lost its lock sends nothing for its item.
    let text = std::fs::read_to_string(repo().join("runbooks/unused-ebs.yaml")).unwrap();
    let plan = orgop_check::check_source("runbooks/unused-ebs.yaml", &text)
        .lowered
        .unwrap()
        .plan;
    let (ok, stdout, stderr) = invoke(
        &url,
        &json!({
            "handler": "worker", "plan": plan,
            "run": {"execution": execution, "apply": true, "lock": partition, "params": {"min_age_days": 0}},
            "item": {"account_id": failing, "account_name": "x", "region": "us-east-1"},
        }),
    );
    assert!(ok, "{stderr}");
    let summary: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(summary["status"], "error", "{summary}");
    assert_eq!(summary["error_code"], "OrgOp.LockHeld", "{summary}");
    assert_eq!(
        snapshots_of(&url, &seed),
        expected,
        "the lost lock's worker sent nothing"
    );
}
