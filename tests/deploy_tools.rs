//! The deployment checkers (orgop_testkit::deploy_tools) say yes and no: cfn-lint, checkov
//! and iam-simulate on the tiny templates and policies of tests/deploy_tools/, each of which
//! must pass or fail as it was written to. Needs `bash scripts/deploy-tools.sh`.

use std::path::PathBuf;

use orgop_testkit::deploy_tools::{cfn_lint, checkov, iam_simulate};
use orgop_testkit::{TempDir, repo};
use serde_json::{Value, json};

fn fixture(name: &str) -> PathBuf {
    repo().join("tests/deploy_tools").join(name)
}

#[test]
fn cfn_lint_reports_an_unknown_property_as_an_error() {
    let err = cfn_lint(&fixture("bad-property.yaml")).expect_err("TopicNmae is no SNS property");
    assert!(err.contains("E3002"), "{err}");
    assert!(err.contains("TopicNmae"), "{err}");
}

#[test]
fn cfn_lint_allows_warnings_and_passes_a_valid_template() {
    cfn_lint(&fixture("warning-only.yaml")).expect("a W2001 warning is not an error");
    cfn_lint(&fixture("skipped-check.yaml")).expect("a valid template");
}

#[test]
fn cfn_lint_rejects_a_template_that_does_not_parse() {
    let dir = TempDir::new("cfn-lint");
    let path = dir.path().join("broken.yaml");
    std::fs::write(&path, "Resources:\n  Topic: [unclosed\n").unwrap();
    let err = cfn_lint(&path).expect_err("broken YAML");
    assert!(err.contains("E0000"), "{err}");
}

#[test]
fn checkov_fails_a_bucket_without_protections() {
    let report = checkov(&fixture("weak-bucket.yaml")).expect("checkov scans the template");
    let failed: Vec<&str> = report.failed.iter().map(|f| f.id.as_str()).collect();
    for id in ["CKV_AWS_18", "CKV_AWS_21"] {
        assert!(failed.contains(&id), "{id} not in {failed:?}");
    }
    let logging = report.failed.iter().find(|f| f.id == "CKV_AWS_18").unwrap();
    assert_eq!(logging.resource, "AWS::S3::Bucket.Bucket");
    assert!(logging.message.contains("access logging"), "{logging:?}");
    assert!(report.skipped.is_empty(), "{report:?}");
    let err = report.accept().expect_err("failed checks are not accepted");
    assert!(
        err.contains("failed CKV_AWS_18 on AWS::S3::Bucket.Bucket"),
        "{err}"
    );
}

#[test]
fn checkov_reports_a_skip_with_the_templates_reason() {
    let report = checkov(&fixture("skipped-check.yaml")).expect("checkov scans the template");
    assert!(report.failed.is_empty(), "{report:?}");
    assert_eq!(report.skipped.len(), 1, "{report:?}");
    let skip = &report.skipped[0];
    assert_eq!(skip.id, "CKV_AWS_26");
    assert_eq!(skip.resource, "AWS::SNS::Topic.Topic");
    assert_eq!(
        skip.reason.as_deref(),
        Some("findings are not secret; the fixture keeps the topic unencrypted")
    );
    report.accept().expect("a skip with its reason is accepted");
}

#[test]
fn checkov_does_not_accept_a_skip_without_a_reason() {
    let text = std::fs::read_to_string(fixture("skipped-check.yaml")).unwrap();
    let without: String = text
        .lines()
        .filter(|l| !l.trim_start().starts_with("comment:"))
        .map(|l| format!("{l}\n"))
        .collect();
    assert_ne!(without, text, "the fixture has a comment to remove");
    let dir = TempDir::new("checkov");
    let path = dir.path().join("no-reason.yaml");
    std::fs::write(&path, without).unwrap();
    let report = checkov(&path).expect("checkov scans the template");
    assert_eq!(report.skipped.len(), 1, "{report:?}");
    assert_eq!(report.skipped[0].reason, None);
    let err = report.accept().expect_err("a skip must say why");
    assert!(
        err.contains("skipped CKV_AWS_26 on AWS::SNS::Topic.Topic without a reason"),
        "{err}"
    );
}

#[test]
fn checkov_refuses_what_it_cannot_scan() {
    let dir = TempDir::new("checkov");
    let not_cfn = dir.path().join("not-cfn.yaml");
    std::fs::write(&not_cfn, "foo: bar\n").unwrap();
    let err = checkov(&not_cfn).expect_err("no resources: nothing was checked");
    assert!(err.contains("no CloudFormation resource"), "{err}");
    let broken = dir.path().join("broken.yaml");
    std::fs::write(&broken, "Resources:\n  Topic: [unclosed\n").unwrap();
    let err = checkov(&broken).expect_err("broken YAML");
    assert!(err.contains("does not parse"), "{err}");
}

#[test]
fn iam_data_knows_real_actions_and_only_those() {
    let out = iam_simulate(&json!({
        "actions_exist": [
            "ec2:DescribeVolumes",
            "EC2:describevolumes",
            "ec2:Describe*",
            "ec2:DescribeVolumez",
            "s3:ListObjectsV2",
            "nosuchservice:DoIt",
            "ec2:Nothing*"
        ]
    }));
    assert_eq!(
        out["unknown_actions"],
        json!([
            "ec2:DescribeVolumez",
            "s3:ListObjectsV2",
            "nosuchservice:DoIt",
            "ec2:Nothing*"
        ])
    );
}

fn decisions(out: &Value) -> Vec<&str> {
    out["requests"]
        .as_array()
        .expect("requests answered")
        .iter()
        .map(|r| r["decision"].as_str().expect("a decision"))
        .collect()
}

#[test]
fn iam_simulate_evaluates_identity_policies() {
    let volume = "arn:aws:ec2:us-east-1:111122223333:volume/vol-0123456789abcdef0";
    let reader = json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "ec2:DescribeVolumes", "Resource": "*"}]});
    let guard = json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "ec2:*", "Resource": "*"},
        {"Effect": "Deny", "Action": "ec2:DeleteVolume", "Resource": "*",
         "Condition": {"StringNotEquals": {"aws:ResourceTag/keep": "false"}}}]});
    let out = iam_simulate(&json!({"requests": [
        {"policies": [reader], "action": "ec2:DescribeVolumes", "resource": "*"},
        {"policies": [reader], "action": "ec2:DeleteVolume", "resource": volume},
        {"policies": [guard], "action": "ec2:DeleteVolume", "resource": volume,
         "context": {"aws:ResourceTag/keep": "true"}},
        {"policies": [guard], "action": "ec2:DeleteVolume", "resource": volume,
         "context": {"aws:ResourceTag/keep": "false"}},
    ]}));
    assert_eq!(
        decisions(&out),
        ["Allowed", "ImplicitlyDenied", "ExplicitlyDenied", "Allowed"]
    );
}

#[test]
fn iam_simulate_admits_only_the_trusted_principal_of_the_organization() {
    let trust = json!({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow",
        "Principal": {"AWS": "arn:aws:iam::999988887777:role/orgop-lambda"},
        "Action": "sts:AssumeRole",
        "Condition": {"StringEquals": {"aws:PrincipalOrgID": "o-abc123defg"}}}]});
    let role = "arn:aws:iam::111122223333:role/OrgOpExecutionRole";
    let lambda = "arn:aws:iam::999988887777:role/orgop-lambda";
    let ask = |principal: &str, org: Option<&str>| {
        let mut req = json!({"resource_policy": trust, "action": "sts:AssumeRole",
                             "resource": role, "principal": principal});
        if let Some(org) = org {
            req["context"] = json!({"aws:PrincipalOrgID": org});
        }
        req
    };
    let mut without_own_permission = ask(lambda, Some("o-abc123defg"));
    without_own_permission["policies"] = json!([]);
    let out = iam_simulate(&json!({"requests": [
        ask(lambda, Some("o-abc123defg")),
        ask(lambda, Some("o-zzz999yyyy")),
        ask(lambda, None),
        ask("arn:aws:iam::999988887777:role/someone-else", Some("o-abc123defg")),
        ask("arn:aws:iam::444455556666:role/orgop-lambda", Some("o-abc123defg")),
        without_own_permission,
    ]}));
    assert_eq!(
        decisions(&out),
        [
            "Allowed",
            "ImplicitlyDenied",
            "ImplicitlyDenied",
            "ImplicitlyDenied",
            "ImplicitlyDenied",
            "ImplicitlyDenied"
        ]
    );
}

#[test]
#[should_panic(expected = "requests[0].resource must be a non-empty string")]
fn iam_simulate_rejects_bad_input() {
    iam_simulate(&json!({"requests": [{"policies": [], "action": "ec2:DescribeVolumes"}]}));
}

#[test]
#[should_panic(expected = "cannot be evaluated")]
fn iam_simulate_never_decides_for_an_unknown_action() {
    iam_simulate(&json!({"requests": [
        {"policies": [], "action": "ec2:DescribeVolumez", "resource": "*"}]}));
}
