//! The generated templates: what they grant, what they schedule, and the checked-in copies
//! for the shipped catalog.
use orgop_plan::Lowered;
use orgop_stacksets::{OperationsOptions, StacksError, member_roles, operations, roles, to_json};
use serde_json::{Value, json};
use std::path::Path;

fn lower(name: &str, yaml: &str) -> Lowered {
    let report = orgop_check::check_source(name, yaml);
    report.lowered.unwrap_or_else(|| {
        panic!("{name} is not valid: {:#?}", report.diagnostics);
    })
}

/// A runbook with `name`, the role given, one read step, and `extra` keys.
fn runbook(name: &str, role: &str, extra: &str) -> String {
    format!(
        "name: {name}
description: test
version: 1
targets: {{regions: [us-east-1]}}
role: {role}
steps:
  - id: vols
    call: ec2:DescribeVolumes
    select: Volumes[]
report: {{from: vols, resource_id: VolumeId}}
{extra}"
    )
}

const DELETE: &str = "actions:
  - id: delete
    call: ec2:DeleteVolume
    for_each: vols
    parameters: {VolumeId: '{{ item.VolumeId }}'}
";

fn no_key() -> OperationsOptions {
    OperationsOptions {
        lambda_code_key: None,
    }
}

#[test]
fn the_read_role_gets_the_steps_and_the_remediation_role_the_actions_too() {
    let a = lower("a.yaml", &runbook("a", "{name: R, apply_name: W}", DELETE));
    let b = lower(
        "b.yaml",
        &runbook("b", "{name: R}", "")
            .replace(
                "call: ec2:DescribeVolumes\n    select: Volumes[]",
                "call: s3:ListObjectsV2\n    parameters: {Bucket: logs}\n    select: Contents[]",
            )
            .replace("resource_id: VolumeId", "resource_id: Key")
            .replace(
                "targets: {regions: [us-east-1]}",
                "targets: {regions: enabled}",
            ),
    );
    let r = roles(&[&a, &b]).unwrap();
    assert_eq!(r.read.name, "R");
    assert_eq!(
        r.read
            .actions
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
        [
            "account:ListRegions",
            "ec2:DescribeVolumes",
            "s3:ListBucket"
        ]
    );
    let w = r.remediation.expect("a has actions");
    assert_eq!(w.name, "W");
    assert_eq!(
        w.actions.iter().map(String::as_str).collect::<Vec<_>>(),
        ["ec2:DeleteVolume", "ec2:DescribeVolumes"]
    );

    let t = member_roles(&[&a, &b]).unwrap();
    let statement =
        &t["Resources"]["ReadRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"][0];
    assert_eq!(
        statement["Action"],
        json!([
            "account:ListRegions",
            "ec2:DescribeVolumes",
            "s3:ListBucket"
        ])
    );
    assert_eq!(t["Parameters"]["RemediationRoleName"]["Default"], "W");
}

#[test]
fn without_actions_there_is_no_remediation_role() {
    let a = lower("a.yaml", &runbook("a", "{name: R}", ""));
    let t = member_roles(&[&a]).unwrap();
    assert!(t["Resources"].get("RemediationRole").is_none());
    assert!(t["Parameters"].get("RemediationRoleName").is_none());
}

#[test]
fn the_trust_policy_names_the_lambda_role_and_the_organization_only() {
    let a = lower(
        "a.yaml",
        &runbook("a", "{name: R, external_id: ext-123}", ""),
    );
    let t = member_roles(&[&a]).unwrap();
    let trust = &t["Resources"]["ReadRole"]["Properties"]["AssumeRolePolicyDocument"];
    assert_eq!(
        trust["Statement"],
        json!([{
            "Sid": "OrgOpLambdaOnly",
            "Effect": "Allow",
            "Principal": {"AWS": {"Fn::Sub": "arn:${AWS::Partition}:iam::${OperationsAccountId}:role/${OrgOpLambdaRoleName}"}},
            "Action": "sts:AssumeRole",
            "Condition": {"StringEquals": {
                "aws:PrincipalOrgID": {"Ref": "OrganizationId"},
                "sts:ExternalId": {"Ref": "ExternalId"}
            }}
        }])
    );
}

#[test]
fn runbooks_that_disagree_on_roles_or_lack_a_remediation_role_are_refused() {
    let a = lower("a.yaml", &runbook("a", "{name: R}", ""));
    let b = lower("b.yaml", &runbook("b", "{name: Other}", ""));
    let err = roles(&[&a, &b]).unwrap_err();
    assert!(
        matches!(&err, StacksError::RolesDiffer { what: "role.name", first, second, .. } if first == "R" && second == "Other"),
        "{err:?}"
    );
    assert!(err.to_string().contains("b.yaml"), "{err}");

    let c = lower("c.yaml", &runbook("c", "{name: R}", DELETE));
    let err = member_roles(&[&c]).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("c.yaml: runbook `c` has `actions` but no `role.apply_name`"),
        "{err}"
    );
    assert_eq!(roles(&[]).unwrap_err(), StacksError::NoRunbooks);
}

#[test]
fn runbook_names_that_make_the_same_logical_id_are_refused() {
    let a = lower("a.yaml", &runbook("a-1", "{name: R}", ""));
    let b = lower("b.yaml", &runbook("a1", "{name: R}", ""));
    assert_eq!(
        operations(&[&a, &b], &no_key()).unwrap_err(),
        StacksError::NameClash("a-1".into(), "a1".into())
    );
}

#[test]
fn a_policy_over_iams_size_limit_is_refused_naming_the_limit() {
    // Every read operation of nine services that needs no parameters (the runbook must pass
    // the model checks): over 300, over 10,240 characters.
    let registry = orgop_models::ModelRegistry::bundled_only();
    let mut calls = Vec::new();
    for name in [
        "ec2",
        "iam",
        "rds",
        "elasticache",
        "cloudformation",
        "ssm",
        "logs",
        "config",
        "ecs",
    ] {
        let svc = registry.service(name).unwrap();
        for op in svc.model.operation_names() {
            let read = ["Describe", "List", "Get"]
                .iter()
                .any(|v| op.starts_with(v))
                && !orgop_vocab::verbs::is_mutating(op);
            let needs_parameters = svc
                .operation(op)
                .unwrap()
                .input
                .as_ref()
                .and_then(|r| svc.model.shape(&r.shape))
                .and_then(|s| s.as_structure())
                .is_some_and(|s| !s.required.is_empty());
            if read && !needs_parameters {
                calls.push(format!("{name}:{op}"));
            }
        }
    }
    assert!(calls.len() > 300, "{}", calls.len());
    let steps: String = calls
        .iter()
        .enumerate()
        .map(|(i, call)| format!("  - id: s{i}\n    call: {call}\n"))
        .collect();
    let yaml = format!(
        "name: big\ndescription: test\nversion: 1\ntargets: {{regions: [us-east-1]}}\nrole: {{name: R}}\nsteps:\n  - id: vols\n    call: ec2:DescribeVolumes\n    select: Volumes[]\n{steps}report: {{from: vols, resource_id: VolumeId}}\n"
    );
    let big = lower("big.yaml", &yaml);
    let err = member_roles(&[&big]).unwrap_err();
    assert!(
        matches!(err, StacksError::PolicyTooLarge { role: "read", limit: 10_240, size } if size > 10_240),
        "{err:?}"
    );
    assert!(err.to_string().contains("10240"), "{err}");
}

fn schedule_of<'a>(t: &'a Value, id: &str) -> Option<&'a Value> {
    t["Resources"].get(format!("{id}Schedule"))
}

#[test]
fn a_runbook_with_a_schedule_gets_one_targeting_its_state_machine_and_one_without_gets_none() {
    let scheduled = lower(
        "s.yaml",
        &runbook(
            "nightly-check",
            "{name: R}",
            "schedule: cron(0 6 ? * MON *)\n",
        ),
    );
    let unscheduled = lower("u.yaml", &runbook("adhoc", "{name: R}", ""));
    let t = operations(&[&scheduled, &unscheduled], &no_key()).unwrap();
    let s = schedule_of(&t, "NightlyCheck").expect("a schedule");
    assert_eq!(s["Type"], "AWS::Scheduler::Schedule");
    assert_eq!(s["Properties"]["ScheduleExpression"], "cron(0 6 ? * MON *)");
    assert_eq!(
        s["Properties"]["FlexibleTimeWindow"],
        json!({"Mode": "OFF"})
    );
    assert_eq!(
        s["Properties"]["Target"]["Arn"],
        json!({"Ref": "NightlyCheckStateMachine"})
    );
    assert_eq!(
        t["Resources"]["NightlyCheckStateMachine"]["Properties"]["StateMachineName"],
        "orgop-nightly-check"
    );
    let input: Value =
        serde_json::from_str(s["Properties"]["Target"]["Input"].as_str().unwrap()).unwrap();
    assert_eq!(
        input["apply"], false,
        "scheduled runs are dry runs by default"
    );
    assert!(s["Properties"]["Target"]["DeadLetterConfig"]["Arn"].is_object());
    assert!(s["Properties"]["Target"]["RetryPolicy"]["MaximumRetryAttempts"].is_number());
    assert!(schedule_of(&t, "Adhoc").is_none());
    assert!(t["Resources"].get("AdhocStateMachine").is_some());

    // Without any schedule, no scheduler role or queue either.
    let t = operations(&[&unscheduled], &no_key()).unwrap();
    assert!(t["Resources"].get("SchedulerRole").is_none());
    assert!(t["Resources"].get("ScheduleDeadLetterQueue").is_none());
}

#[test]
fn apply_on_schedule_makes_scheduled_runs_applied() {
    let l = lower(
        "s.yaml",
        &runbook(
            "cleanup",
            "{name: R, apply_name: W}",
            &format!("schedule: rate(1 day)\napply_on_schedule: true\n{DELETE}"),
        ),
    );
    let t = operations(&[&l], &no_key()).unwrap();
    let target = &schedule_of(&t, "Cleanup").unwrap()["Properties"]["Target"];
    let input: Value = serde_json::from_str(target["Input"].as_str().unwrap()).unwrap();
    assert_eq!(input["apply"], true);
}

/// What CloudFormation's `Fn::Sub` makes of the definition, given the function's ARN and
/// the bucket's name.
fn substitute(sub: &str, function_arn: &str, bucket: &str) -> String {
    sub.replace("${Function.Arn}", function_arn)
        .replace("${ResultsBucket}", bucket)
        .replace("${!", "${")
}

#[test]
fn each_state_machine_holds_exactly_the_compiled_definition() {
    // `${...}` in the runbook's own data must stay literal.
    let l = lower(
        "a.yaml",
        &runbook(
            "a",
            "{name: R}",
            "shared: {note: 'costs ${5} a ${month}'}\n",
        ),
    );
    let t = operations(&[&l], &no_key()).unwrap();
    let p = &t["Resources"]["AStateMachine"]["Properties"];
    let sub = p["DefinitionString"]["Fn::Sub"].as_str().unwrap();
    let compiled = orgop_statemachine::to_json(&orgop_statemachine::compile(&l));
    assert!(compiled.contains("costs ${5} a ${month}"));
    let placeholders = orgop_statemachine::SUBSTITUTIONS.map(|(k, _)| format!("${{{k}}}"));
    let mut want = compiled.clone();
    for (p, v) in placeholders.iter().zip(["arn:aws:lambda:f", "bucket-1"]) {
        assert!(compiled.contains(p.as_str()), "{p} is used");
        want = want.replace(p.as_str(), v);
    }
    assert_eq!(substitute(sub, "arn:aws:lambda:f", "bucket-1"), want);
    assert!(!sub.contains("${month}") && sub.contains("${!month}"));
}

#[test]
fn the_lambda_code_key_is_a_parameter_with_the_packaged_default() {
    let l = lower("a.yaml", &runbook("a", "{name: R}", ""));
    let packaged = OperationsOptions {
        lambda_code_key: Some("orgop/lambda/x.zip".into()),
    };
    let t = operations(&[&l], &packaged).unwrap();
    assert_eq!(
        t["Parameters"]["LambdaCodeKey"]["Default"],
        "orgop/lambda/x.zip"
    );
    let t = operations(&[&l], &no_key()).unwrap();
    assert!(t["Parameters"]["LambdaCodeKey"].get("Default").is_none());
}

/// The shipped catalog's templates are checked in (`stacksets/*.json`); regenerate with
/// `ORGOP_UPDATE_STACKSETS=1 cargo test -p orgop-stacksets --test templates`.
#[test]
fn the_checked_in_templates_match_the_catalog() {
    let repo = orgop_testkit::repo();
    let mut files: Vec<_> = std::fs::read_dir(repo.join("runbooks"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    let catalog: Vec<Lowered> = files
        .iter()
        .map(|p| {
            let name = format!("runbooks/{}", p.file_name().unwrap().to_string_lossy());
            lower(&name, &std::fs::read_to_string(p).unwrap())
        })
        .collect();
    assert!(!catalog.is_empty());
    let refs: Vec<&Lowered> = catalog.iter().collect();
    let generated = [
        ("member-roles.json", to_json(&member_roles(&refs).unwrap())),
        (
            "operations.json",
            to_json(&operations(&refs, &no_key()).unwrap()),
        ),
    ];
    let update = std::env::var_os("ORGOP_UPDATE_STACKSETS").is_some();
    for (file, text) in generated {
        let path = repo.join("stacksets").join(file);
        if update {
            std::fs::write(&path, &text).unwrap();
            continue;
        }
        let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            checked_in == text,
            "{} is not what the catalog generates: run `ORGOP_UPDATE_STACKSETS=1 cargo test -p orgop-stacksets --test templates` and review the diff",
            Path::new("stacksets").join(file).display()
        );
    }
}

/// A runbook with `approval`: the approvers' policy (the approval item and the task-token
/// calls, nothing else) and, for its distributed plan phase, the second Map's result prefix;
/// without one, neither.
#[test]
fn approval_adds_the_approvers_policy_and_the_plan_maps_results() {
    let with = lower(
        "a.yaml",
        &runbook(
            "a",
            "{name: R, apply_name: W}",
            &format!("approval: {{timeout_hours: 2}}\nexecution: {{map: distributed}}\n{DELETE}"),
        ),
    );
    let t = operations(&[&with], &no_key()).unwrap();
    let policy = &t["Resources"]["ApproverPolicy"]["Properties"]["PolicyDocument"];
    let actions: Vec<&Value> = policy["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["Action"].as_array().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "dynamodb:GetItem",
            "dynamodb:UpdateItem",
            "states:SendTaskSuccess",
            "states:SendTaskFailure"
        ]
    );
    assert_eq!(
        policy["Statement"][0]["Resource"],
        json!({"Fn::GetAtt": ["ResultsTable", "Arn"]})
    );
    assert!(t["Outputs"]["ApproverPolicyArn"].is_object());
    let states = serde_json::to_string(&t["Resources"]["StatesRole"]).unwrap();
    assert!(states.contains("/orgop/a/plan-map-results/*"), "{states}");

    let without = lower(
        "a.yaml",
        &runbook(
            "a",
            "{name: R, apply_name: W}",
            &format!("execution: {{map: distributed}}\n{DELETE}"),
        ),
    );
    let t = operations(&[&without], &no_key()).unwrap();
    assert!(t["Resources"].get("ApproverPolicy").is_none());
    assert!(t["Outputs"].get("ApproverPolicyArn").is_none());
    let states = serde_json::to_string(&t["Resources"]["StatesRole"]).unwrap();
    assert!(!states.contains("plan-map-results"), "{states}");
}
