//! `orgop deploy` end to end against moto server: the operations stack and the member-role
//! StackSet go into an emulated organization, and a second deploy changes nothing.
//!
//! moto creates every resource type of the operations stack except `AWS::Scheduler::Schedule`
//! and `AWS::S3::BucketPolicy`, which it skips silently; it ignores DynamoDB TTL/PITR/SSE, S3
//! lifecycle and public access block, and Lambda's architecture (see the note).
use orgop_testkit::{TempDir, moto, repo, venv_python};
use serde_json::{Value, json};
use std::path::Path;
use std::process::{Command, Output};

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

/// `orgop call`, as `role_arn` when given; the JSON answer or the error text.
fn call(endpoint: &str, op: &str, params: Value, role_arn: Option<&str>) -> Result<Value, String> {
    let params = params.to_string();
    let mut args = vec!["call", op, "--params", &params];
    if let Some(arn) = role_arn {
        args.extend(["--role-arn", arn]);
    }
    let o = orgop(endpoint, &args);
    if o.status.success() {
        Ok(serde_json::from_slice(&o.stdout).unwrap())
    } else {
        Err(String::from_utf8_lossy(&o.stderr).into_owned())
    }
}

fn must(endpoint: &str, op: &str, params: Value) -> Value {
    call(endpoint, op, params, None).unwrap_or_else(|e| panic!("{op}: {e}"))
}

/// An organization with an OU holding three member accounts; returns the OU and accounts.
fn organization(endpoint: &str) -> (String, Vec<String>) {
    must(
        endpoint,
        "organizations:CreateOrganization",
        json!({"FeatureSet": "ALL"}),
    );
    let root = must(endpoint, "organizations:ListRoots", json!({}))["Roots"][0]["Id"]
        .as_str()
        .unwrap()
        .to_string();
    let ou = must(
        endpoint,
        "organizations:CreateOrganizationalUnit",
        json!({"ParentId": root, "Name": "workloads"}),
    )["OrganizationalUnit"]["Id"]
        .as_str()
        .unwrap()
        .to_string();
    let accounts = (0..3)
        .map(|i| {
            let created = must(
                endpoint,
                "organizations:CreateAccount",
                json!({"AccountName": format!("member-{i}"), "Email": format!("m{i}@example.com")}),
            );
            let id = created["CreateAccountStatus"]["AccountId"]
                .as_str()
                .unwrap()
                .to_string();
            must(
                endpoint,
                "organizations:MoveAccount",
                json!({"AccountId": id, "SourceParentId": root, "DestinationParentId": ou}),
            );
            id
        })
        .collect();
    (ou, accounts)
}

/// The arm64 Lambda zip `scripts/lambda-zip.sh` built (CI builds it before the tests where
/// cargo-lambda installs), else a stand-in holding a `bootstrap` script: moto stores the
/// code, it does not run it.
fn lambda_zip(dir: &Path) -> std::path::PathBuf {
    let built = repo().join("target/lambda-zip/orgop-lambda/bootstrap.zip");
    if built.is_file() {
        return built;
    }
    let zip = dir.join("bootstrap.zip");
    let o = Command::new(venv_python())
        .args([
            "-c",
            "import sys, zipfile\nwith zipfile.ZipFile(sys.argv[1], 'w') as z: z.writestr('bootstrap', '#!/bin/sh\\n')",
        ])
        .arg(&zip)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    zip
}

fn deploy(endpoint: &str, ou: &str, zip: &Path, format: &str) -> Output {
    orgop(
        endpoint,
        &[
            "deploy",
            "runbooks/unused-ebs.yaml",
            "--artifact-bucket",
            "orgop-artifacts",
            "--organizational-units",
            ou,
            "--lambda-zip",
            zip.to_str().unwrap(),
            "--format",
            format,
        ],
    )
}

#[test]
fn deploy_creates_the_stack_and_the_member_roles_then_changes_nothing() {
    let emulator = moto();
    let url = emulator.url();
    let (ou, accounts) = organization(&url);
    must(
        &url,
        "s3:CreateBucket",
        json!({"Bucket": "orgop-artifacts"}),
    );
    let dir = TempDir::new("deploy");
    let zip = lambda_zip(dir.path());

    let o = deploy(&url, &ou, &zip, "json");
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let report: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(report["lambda"]["outcome"], "uploaded", "{report:#}");
    assert_eq!(report["stack"]["outcome"], "created", "{report:#}");
    assert_eq!(report["stackset"]["outcome"], "created", "{report:#}");
    assert_eq!(report["changed"], true);
    let added: Vec<&str> = report["stack"]["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["logical_id"].as_str().unwrap())
        .collect();
    for id in [
        "Function",
        "LambdaRole",
        "ResultsTable",
        "UnusedEbsStateMachine",
    ] {
        assert!(added.contains(&id), "{id} not among {added:?}");
    }
    let mut instance_accounts: Vec<&str> = report["stackset"]["instances"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["account"].as_str().unwrap())
        .collect();
    instance_accounts.sort();
    let mut want: Vec<&str> = accounts.iter().map(String::as_str).collect();
    want.sort();
    assert_eq!(instance_accounts, want);

    // The state machine holds exactly the compiled definition, placeholders substituted.
    let resources = must(
        &url,
        "cloudformation:ListStackResources",
        json!({"StackName": "orgop"}),
    );
    let physical = |logical: &str| {
        resources["StackResourceSummaries"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["LogicalResourceId"] == logical)
            .and_then(|r| r["PhysicalResourceId"].as_str())
            .unwrap_or_else(|| panic!("no {logical} in {resources:#}"))
            .to_string()
    };
    let bucket = physical("ResultsBucket");
    let function = must(
        &url,
        "lambda:GetFunction",
        json!({"FunctionName": physical("Function")}),
    )["Configuration"]["FunctionArn"]
        .as_str()
        .unwrap()
        .to_string();
    let machine = must(
        &url,
        "states:DescribeStateMachine",
        json!({"stateMachineArn": "arn:aws:states:us-east-1:123456789012:stateMachine:orgop-unused-ebs"}),
    );
    let text = std::fs::read_to_string(repo().join("runbooks/unused-ebs.yaml")).unwrap();
    let lowered = orgop_check::check_source("runbooks/unused-ebs.yaml", &text)
        .lowered
        .unwrap();
    let want = orgop_statemachine::to_json(&orgop_statemachine::compile(&lowered))
        .replace("${OrgOpFunctionArn}", &function)
        .replace("${ResultsBucket}", &bucket);
    assert_eq!(machine["definition"].as_str().unwrap(), want);

    // The member roles exist in each account of the OU, with exactly the policy generated for
    // the deployed runbook (the checked-in stacksets/member-roles.json is the whole catalog's),
    // and not in the management account.
    let template = orgop_stacksets::member_roles(&[&lowered]).unwrap();
    for account in &accounts {
        let admin = format!("arn:aws:iam::{account}:role/OrganizationAccountAccessRole");
        for (role, logical) in [
            ("OrgOpReadRole", "ReadRole"),
            ("OrgOpRemediationRole", "RemediationRole"),
        ] {
            let got = call(
                &url,
                "iam:GetRolePolicy",
                json!({"RoleName": role, "PolicyName": "orgop-runbooks"}),
                Some(&admin),
            )
            .unwrap_or_else(|e| panic!("{role} in {account}: {e}"));
            let document = policy_document(&got["PolicyDocument"]);
            assert_eq!(
                document,
                template["Resources"][logical]["Properties"]["Policies"][0]["PolicyDocument"],
                "{role} in {account}"
            );
        }
    }
    let err = call(
        &url,
        "iam:GetRole",
        json!({"RoleName": "OrgOpReadRole"}),
        None,
    )
    .unwrap_err();
    assert!(err.contains("NoSuchEntity"), "{err}");

    // Again, with nothing changed: nothing is sent, and it says so.
    let o = deploy(&url, &ou, &zip, "text");
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("stack orgop: unchanged"), "{stderr}");
    assert!(
        stderr.contains("stack set orgop-member-roles: unchanged (3 stack instances)"),
        "{stderr}"
    );
    assert!(stderr.contains("no change"), "{stderr}");
}

/// IAM answers policy documents URL-encoded (RFC 3986).
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok());
        match (bytes[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8(out).unwrap()
}

/// A policy document as IAM answers it: URL-encoded JSON; moto answers a role policy made by
/// CloudFormation as a Python repr (single quotes), which our policies turn into JSON by
/// swapping the quotes (they hold no quote characters of their own).
fn policy_document(v: &Value) -> Value {
    match v {
        Value::String(s) if s.starts_with("{'") => {
            serde_json::from_str(&s.replace('\'', "\"")).unwrap_or_else(|e| panic!("{e}: {s}"))
        }
        Value::String(s) => {
            serde_json::from_str(&percent_decode(s)).unwrap_or_else(|e| panic!("{e}: {s}"))
        }
        other => other.clone(),
    }
}

#[test]
fn deploy_without_a_lambda_zip_or_bucket_is_refused_before_anything_is_deployed() {
    let emulator = moto();
    let url = emulator.url();
    let (ou, _) = organization(&url);
    let o = orgop(
        &url,
        &[
            "deploy",
            "runbooks/unused-ebs.yaml",
            "--artifact-bucket",
            "orgop-artifacts",
            "--lambda-zip",
            "/nonexistent/bootstrap.zip",
        ],
    );
    assert_eq!(o.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        stderr.contains("/nonexistent/bootstrap.zip") && stderr.contains("lambda-zip.sh"),
        "{stderr}"
    );

    let dir = TempDir::new("deploy-nobucket");
    let zip = lambda_zip(dir.path());
    let o = deploy(&url, &ou, &zip, "text");
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("cannot upload the Lambda zip") && stderr.contains("NoSuchBucket"),
        "{stderr}"
    );
    let stacks = must(&url, "cloudformation:DescribeStacks", json!({}));
    assert_eq!(
        stacks["Stacks"].as_array().map_or(0, Vec::len),
        0,
        "{stacks}"
    );
}
