//! The generated templates judged by independent tools: cfn-lint and checkov (PyPI), and IAM
//! evaluated by iam-simulate with iam-data (npm; the Service Authorization Reference as data),
//! all installed by `scripts/deploy-tools.sh`.
//!
//! The runbooks: the shipped catalog and `tests/runbooks/broad.yaml`, whose calls exercise the
//! IAM table (renamed actions, other prefixes, dependent actions), a schedule that applies, a
//! distributed Map and `regions: enabled`.
use orgop_plan::Lowered;
use orgop_stacksets::{OperationsOptions, iam, member_roles, operations, to_json};
use orgop_testkit::deploy_tools::{cfn_lint, checkov, iam_simulate};
use orgop_testkit::{TempDir, repo};
use serde_json::{Value, json};
use std::collections::BTreeSet;

fn runbooks() -> Vec<Lowered> {
    let root = repo();
    let mut files: Vec<String> = std::fs::read_dir(root.join("runbooks"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .map(|p| format!("runbooks/{}", p.file_name().unwrap().to_string_lossy()))
        .collect();
    files.sort();
    files.push("stacksets/tests/runbooks/broad.yaml".into());
    files
        .iter()
        .map(|f| {
            let text = std::fs::read_to_string(root.join(f)).unwrap();
            let report = orgop_check::check_source(f, &text);
            report
                .lowered
                .unwrap_or_else(|| panic!("{f}: {:#?}", report.diagnostics))
        })
        .collect()
}

fn templates(runbooks: &[Lowered]) -> (Value, Value) {
    let refs: Vec<&Lowered> = runbooks.iter().collect();
    let options = OperationsOptions {
        lambda_code_key: Some("orgop/lambda/orgop-lambda-0123456789abcdef.zip".into()),
    };
    (
        member_roles(&refs).unwrap(),
        operations(&refs, &options).unwrap(),
    )
}

#[test]
fn every_template_passes_cfn_lint_and_checkov_with_reasons_for_each_skip() {
    let runbooks = runbooks();
    let (member, ops) = templates(&runbooks);
    let dir = TempDir::new("stacksets-checked");
    let mut checked = Vec::new();
    for (name, t) in [("member-roles.json", member), ("operations.json", ops)] {
        let path = dir.path().join(name);
        std::fs::write(&path, to_json(&t)).unwrap();
        checked.push(path);
    }
    // The checked-in templates of the catalog too.
    checked.push(repo().join("stacksets/member-roles.json"));
    checked.push(repo().join("stacksets/operations.json"));
    for path in &checked {
        cfn_lint(path).unwrap_or_else(|e| panic!("cfn-lint on {}:\n{e}", path.display()));
        let report =
            checkov(path).unwrap_or_else(|e| panic!("checkov on {}:\n{e}", path.display()));
        report
            .accept()
            .unwrap_or_else(|e| panic!("checkov on {}:\n{e}", path.display()));
        assert!(report.passed > 10, "{}: {report:?}", path.display());
    }
}

const OPS_ACCOUNT: &str = "111122223333";
const MEMBER_ACCOUNT: &str = "444455556666";
const ORG: &str = "o-abcdefghij";

/// Resolves the intrinsic functions the templates use, for a deployment in `OPS_ACCOUNT` (the
/// operations stack) or `MEMBER_ACCOUNT` (a member-role stack instance).
fn resolve(v: &Value, account: &str) -> Value {
    let lookup = |name: &str| -> String {
        match name {
            "AWS::Partition" => "aws".into(),
            "AWS::Region" => "us-east-1".into(),
            "AWS::AccountId" => account.into(),
            "AWS::StackName" => "orgop".into(),
            "OperationsAccountId" => OPS_ACCOUNT.into(),
            "OrganizationId" => ORG.into(),
            "OrgOpLambdaRoleName" => "OrgOpLambdaRole".into(),
            "ReadRoleName" => "OrgOpReadRole".into(),
            "RemediationRoleName" => "OrgOpRemediationRole".into(),
            "ResultsBucket" => "orgop-results-bucket".into(),
            "Function.Arn" => format!("arn:aws:lambda:us-east-1:{account}:function:orgop-orgop"),
            "ResultsTable.Arn" => {
                format!("arn:aws:dynamodb:us-east-1:{account}:table/orgop-ResultsTable-1")
            }
            "Topic" => format!("arn:aws:sns:us-east-1:{account}:orgop-Topic-1"),
            "ScheduleDeadLetterQueue.Arn" => {
                format!("arn:aws:sqs:us-east-1:{account}:orgop-ScheduleDeadLetterQueue-1")
            }
            "FunctionLogGroup.Arn" => {
                format!("arn:aws:logs:us-east-1:{account}:log-group:/aws/lambda/orgop-orgop:*")
            }
            other => panic!("no value for {other}"),
        }
    };
    match v {
        Value::Object(m) if m.len() == 1 && m.contains_key("Ref") => {
            json!(lookup(m["Ref"].as_str().unwrap()))
        }
        Value::Object(m) if m.len() == 1 && m.contains_key("Fn::Sub") => {
            let mut s = m["Fn::Sub"].as_str().unwrap().to_string();
            while let Some(start) = s.find("${") {
                let end = start + s[start..].find('}').unwrap();
                let value = lookup(&s[start + 2..end]);
                s.replace_range(start..=end, &value);
            }
            json!(s)
        }
        Value::Object(m) if m.len() == 1 && m.contains_key("Fn::GetAtt") => {
            let a = m["Fn::GetAtt"].as_array().unwrap();
            json!(lookup(&format!(
                "{}.{}",
                a[0].as_str().unwrap(),
                a[1].as_str().unwrap()
            )))
        }
        // HasRemediationRole: the runbooks here have actions.
        Value::Object(m) if m.len() == 1 && m.contains_key("Fn::If") => {
            resolve(&m["Fn::If"][1], account)
        }
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, v)| (k.clone(), resolve(v, account)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(|v| resolve(v, account)).collect()),
        other => other.clone(),
    }
}

fn role_policy(template: &Value, role: &str, account: &str) -> Value {
    resolve(
        &template["Resources"][role]["Properties"]["Policies"][0]["PolicyDocument"],
        account,
    )
}

/// Asks iam-simulate `requests` (each `(policy, action, resource)`), returns the decisions.
fn decide(requests: &[(Value, String, String)]) -> Vec<String> {
    let with_context: Vec<_> = requests
        .iter()
        .map(|(p, a, r)| (p.clone(), a.clone(), r.clone(), json!({})))
        .collect();
    decide_in(&with_context)
}

/// The same, each request with its context keys.
fn decide_in(requests: &[(Value, String, String, Value)]) -> Vec<String> {
    let input = json!({
        "requests": requests.iter().map(|(policy, action, resource, context)| json!({
            "policies": [policy], "action": action, "resource": resource, "context": context
        })).collect::<Vec<_>>()
    });
    let out = iam_simulate(&input);
    out["requests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["decision"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn every_generated_action_exists_and_none_is_a_wildcard_or_a_managed_policy() {
    let runbooks = runbooks();
    let (member, ops) = templates(&runbooks);
    let mut actions: BTreeSet<String> = BTreeSet::new();
    let mut statements = Vec::new();
    for (t, id) in [
        (&member, "ReadRole"),
        (&member, "RemediationRole"),
        (&ops, "LambdaRole"),
        (&ops, "StatesRole"),
        (&ops, "SchedulerRole"),
    ] {
        let role = &t["Resources"][id];
        assert_eq!(role["Type"], "AWS::IAM::Role", "{id}");
        assert!(
            role["Properties"].get("ManagedPolicyArns").is_none(),
            "{id} attaches managed policies"
        );
        for s in role["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
            .as_array()
            .unwrap()
        {
            statements.push((id, s.clone()));
        }
    }
    for (id, s) in &statements {
        let listed = match &s["Action"] {
            Value::String(a) => vec![a.clone()],
            Value::Array(a) => a.iter().map(|x| x.as_str().unwrap().to_string()).collect(),
            other => panic!("{id}: Action {other}"),
        };
        for a in listed {
            assert!(!a.contains('*'), "{id} grants the wildcard {a}");
            actions.insert(a);
        }
        assert!(s.get("NotAction").is_none(), "{id} uses NotAction");
    }
    let broad = [
        "s3:ListBucket",
        "s3:ListAllMyBuckets",
        "kms:CreateGrant",
        "apigateway:GET",
    ];
    for a in broad {
        assert!(actions.contains(a), "{a} is among the generated actions");
    }
    let out = iam_simulate(&json!({"actions_exist": actions}));
    assert_eq!(
        out["unknown_actions"],
        json!([]),
        "actions iam-data does not know"
    );
}

#[test]
fn each_call_is_allowed_to_the_role_it_runs_under_and_no_mutating_call_to_the_read_role() {
    let runbooks = runbooks();
    let (member, operations) = templates(&runbooks);
    let read = role_policy(&member, "ReadRole", MEMBER_ACCOUNT);
    let remediation = role_policy(&member, "RemediationRole", MEMBER_ACCOUNT);
    let lambda = role_policy(&operations, "LambdaRole", OPS_ACCOUNT);
    let mut requests = Vec::new();
    let mut expected = Vec::new();
    // A runbook of the operations account (`scope: operations`) runs with the orgop Lambda's
    // own role: its calls are allowed there, and not to the member read role.
    let (own, runbooks): (Vec<&Lowered>, Vec<&Lowered>) =
        runbooks.iter().partition(|l| l.plan.operations);
    assert!(
        !own.is_empty(),
        "the catalog has a runbook of the operations account"
    );
    for l in &own {
        for call in l.plan.steps.iter().chain(l.plan.actions.iter()) {
            for action in iam::actions_of(call) {
                requests.push((lambda.clone(), action.clone(), "*".to_string()));
                expected.push(format!("{action} Allowed"));
                requests.push((read.clone(), action.clone(), "*".to_string()));
                expected.push(format!("{action} ImplicitlyDenied"));
            }
        }
    }
    // Steps run under the read role, and, in a runbook with actions, under the remediation
    // role when applied (a runbook without actions has no `apply_name`: every run of it
    // assumes the read role, `RolePlan::for_run`).
    for l in &runbooks {
        let policies = if l.plan.actions.is_empty() {
            vec![&read]
        } else {
            vec![&read, &remediation]
        };
        for call in &l.plan.steps {
            for action in iam::actions_of(call) {
                for policy in &policies {
                    requests.push(((*policy).clone(), action.clone(), "*".to_string()));
                    expected.push(format!("{action} Allowed"));
                }
            }
        }
    }
    // Actions: every action they need allowed to the remediation role; the call itself
    // denied to the read role.
    for call in runbooks.iter().flat_map(|l| l.plan.actions.iter()) {
        assert!(call.mutating);
        for action in iam::actions_of(call) {
            requests.push((remediation.clone(), action.clone(), "*".to_string()));
            expected.push(format!("{action} Allowed"));
        }
        for action in iam::called_actions(call) {
            requests.push((read.clone(), action.clone(), "*".to_string()));
            expected.push(format!("{action} ImplicitlyDenied"));
        }
    }
    // orgop's own call in a member account, for `regions: enabled`.
    requests.push((read.clone(), "account:ListRegions".into(), "*".into()));
    expected.push("account:ListRegions Allowed".into());
    assert!(requests.len() > 20, "{}", requests.len());
    let got: Vec<String> = decide(&requests)
        .into_iter()
        .zip(&requests)
        .map(|(d, (_, action, _))| format!("{action} {d}"))
        .collect();
    assert_eq!(got, expected);
}

#[test]
fn the_member_roles_trust_the_operations_lambda_role_in_the_organization_and_nobody_else() {
    let (member, _) = templates(&runbooks());
    let lambda_role = format!("arn:aws:iam::{OPS_ACCOUNT}:role/OrgOpLambdaRole");
    let cases = [
        (lambda_role.as_str(), ORG, "Allowed"),
        (lambda_role.as_str(), "o-otherorgxyz", "ImplicitlyDenied"),
        (
            &*format!("arn:aws:iam::{OPS_ACCOUNT}:role/SomeOtherRole"),
            ORG,
            "ImplicitlyDenied",
        ),
        (
            "arn:aws:iam::999999999999:role/OrgOpLambdaRole",
            ORG,
            "ImplicitlyDenied",
        ),
        (
            &*format!("arn:aws:iam::{MEMBER_ACCOUNT}:role/OrgOpLambdaRole"),
            ORG,
            "ImplicitlyDenied",
        ),
        ("lambda.amazonaws.com", ORG, "ImplicitlyDenied"),
    ];
    for (role, name) in [
        ("ReadRole", "OrgOpReadRole"),
        ("RemediationRole", "OrgOpRemediationRole"),
    ] {
        let trust = resolve(
            &member["Resources"][role]["Properties"]["AssumeRolePolicyDocument"],
            MEMBER_ACCOUNT,
        );
        let requests: Vec<Value> = cases
            .iter()
            .map(|(principal, org, _)| {
                json!({
                    "resource_policy": trust,
                    "action": "sts:AssumeRole",
                    "resource": format!("arn:aws:iam::{MEMBER_ACCOUNT}:role/{name}"),
                    "principal": principal,
                    "context": {"aws:PrincipalOrgID": org}
                })
            })
            .collect();
        let out = iam_simulate(&json!({"requests": requests}));
        let got: Vec<(&str, &str)> = cases
            .iter()
            .zip(out["requests"].as_array().unwrap())
            .map(|((p, _, _), r)| (*p, r["decision"].as_str().unwrap()))
            .collect();
        let want: Vec<(&str, &str)> = cases.iter().map(|(p, _, d)| (*p, *d)).collect();
        assert_eq!(
            got,
            want,
            "{role}: {:?}",
            cases.iter().map(|c| c.1).collect::<Vec<_>>()
        );
    }
}

#[test]
fn the_operations_roles_reach_only_their_own_resources() {
    let (_, ops) = templates(&runbooks());
    let lambda = role_policy(&ops, "LambdaRole", OPS_ACCOUNT);
    let states = role_policy(&ops, "StatesRole", OPS_ACCOUNT);
    let scheduler = role_policy(&ops, "SchedulerRole", OPS_ACCOUNT);
    let member = |name: &str| format!("arn:aws:iam::{MEMBER_ACCOUNT}:role/{name}");
    let function = format!("arn:aws:lambda:us-east-1:{OPS_ACCOUNT}:function:orgop-orgop");
    let machine =
        |name: &str| format!("arn:aws:states:us-east-1:{OPS_ACCOUNT}:stateMachine:{name}");
    let org = json!({"aws:ResourceOrgID": ORG});
    let other_org = json!({"aws:ResourceOrgID": "o-otherorgxyz"});
    let none = json!({});
    let cases = [
        (
            &lambda,
            "sts:AssumeRole",
            member("OrgOpReadRole"),
            &org,
            "Allowed",
        ),
        (
            &lambda,
            "sts:AssumeRole",
            member("OrgOpRemediationRole"),
            &org,
            "Allowed",
        ),
        (
            &lambda,
            "sts:AssumeRole",
            member("OrgOpReadRole"),
            &other_org,
            "ImplicitlyDenied",
        ),
        (
            &lambda,
            "sts:AssumeRole",
            member("OrganizationAccountAccessRole"),
            &org,
            "ImplicitlyDenied",
        ),
        (
            &lambda,
            "organizations:ListAccounts",
            "*".into(),
            &none,
            "Allowed",
        ),
        (
            &lambda,
            "organizations:CreateAccount",
            "*".into(),
            &none,
            "ImplicitlyDenied",
        ),
        (
            &lambda,
            "s3:PutObject",
            "arn:aws:s3:::orgop-results-bucket/orgop/x/results.jsonl".into(),
            &none,
            "Allowed",
        ),
        (
            &lambda,
            "s3:PutObject",
            "arn:aws:s3:::another-bucket/orgop/x".into(),
            &none,
            "ImplicitlyDenied",
        ),
        (
            &lambda,
            "s3:DeleteObject",
            "arn:aws:s3:::orgop-results-bucket/orgop/x".into(),
            &none,
            "ImplicitlyDenied",
        ),
        (
            &states,
            "lambda:InvokeFunction",
            function.clone(),
            &none,
            "Allowed",
        ),
        (
            &states,
            "lambda:InvokeFunction",
            format!("arn:aws:lambda:us-east-1:{OPS_ACCOUNT}:function:other"),
            &none,
            "ImplicitlyDenied",
        ),
        // A distributed Map starts its own state machine's child executions.
        (
            &states,
            "states:StartExecution",
            machine("orgop-broad"),
            &none,
            "Allowed",
        ),
        (
            &states,
            "states:StartExecution",
            machine("someone-elses"),
            &none,
            "ImplicitlyDenied",
        ),
        (
            &scheduler,
            "states:StartExecution",
            machine("orgop-broad"),
            &none,
            "Allowed",
        ),
        // unused-ebs has a schedule too; a runbook without one is not startable by the scheduler.
        (
            &scheduler,
            "states:StartExecution",
            machine("orgop-unscheduled"),
            &none,
            "ImplicitlyDenied",
        ),
    ];
    let requests: Vec<(Value, String, String, Value)> = cases
        .iter()
        .map(|(p, a, r, c, _)| ((*p).clone(), a.to_string(), r.clone(), (*c).clone()))
        .collect();
    let got = decide_in(&requests);
    let want: Vec<String> = cases.iter().map(|c| c.4.to_string()).collect();
    let labels: Vec<String> = cases
        .iter()
        .map(|c| format!("{} {} {}", c.1, c.2, c.3))
        .collect();
    assert_eq!(got, want, "{labels:#?}");
}

/// The apply lock (`orgop_lock`): the Lambda reads the organization's id and takes, reads,
/// extends and releases the lock item in its own results table, and in no other table.
#[test]
fn the_lambda_role_may_take_and_release_the_apply_lock_in_its_own_table_only() {
    let (_, operations) = templates(&runbooks());
    let lambda = role_policy(&operations, "LambdaRole", OPS_ACCOUNT);
    let table = format!("arn:aws:dynamodb:us-east-1:{OPS_ACCOUNT}:table/orgop-ResultsTable-1");
    let other = format!("arn:aws:dynamodb:us-east-1:{OPS_ACCOUNT}:table/someone-elses");
    let mut requests = vec![(
        lambda.clone(),
        "organizations:DescribeOrganization".to_string(),
        "*".to_string(),
    )];
    let mut expected = vec!["Allowed".to_string()];
    for action in [
        "dynamodb:PutItem",
        "dynamodb:GetItem",
        "dynamodb:UpdateItem",
        "dynamodb:DeleteItem",
    ] {
        requests.push((lambda.clone(), action.to_string(), table.clone()));
        expected.push("Allowed".into());
        requests.push((lambda.clone(), action.to_string(), other.clone()));
        expected.push("ImplicitlyDenied".into());
    }
    assert_eq!(decide(&requests), expected);
}
