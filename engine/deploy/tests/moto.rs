//! The deploy engine against moto server (the AWS emulator, started per test on 127.0.0.1
//! by `orgop-testkit`), every call through orgop's own client.

use std::collections::BTreeMap;

use orgop_aws::{AwsClient, ClientOptions, Credentials, RoleSpec, Target};
use orgop_deploy::{
    ArtifactOutcome, DeployError, StackOutcome, StackSetOutcome, StackSetSpec, StackSpec,
    deploy_stack, deploy_stackset, stack_outputs, upload_artifact,
};
use orgop_testkit::Server;
use serde_json::{Value, json};

const REGION: &str = "us-east-1";

async fn moto() -> (Server, AwsClient) {
    let server = tokio::task::spawn_blocking(orgop_testkit::moto)
        .await
        .expect("moto starts");
    let client = AwsClient::from_env(ClientOptions {
        region: Some(REGION.into()),
        endpoint_url: Some(server.url()),
        credentials: Some(Credentials::new("testing", "testing", None, None, "test")),
        ..ClientOptions::default()
    })
    .await;
    (server, client)
}

async fn call(c: &AwsClient, t: &Target, svc: &str, op: &str, params: Value) -> Value {
    c.call(t, svc, op, params)
        .await
        .unwrap_or_else(|e| panic!("{svc}:{op}: {e}"))
}

fn queue_template(visibility: u32) -> String {
    serde_json::to_string_pretty(&json!({
        "AWSTemplateFormatVersion": "2010-09-09",
        "Parameters": {"QueueName": {"Type": "String"}},
        "Resources": {"Queue": {"Type": "AWS::SQS::Queue", "Properties": {
            "QueueName": {"Ref": "QueueName"}, "VisibilityTimeout": visibility}}},
        "Outputs": {"QueueUrl": {"Value": {"Ref": "Queue"}}, "QueueArn": {"Value": {"Fn::GetAtt": ["Queue", "Arn"]}}},
    }))
    .unwrap()
}

fn stack_spec(template: String) -> StackSpec {
    StackSpec {
        name: "orgop-operations".into(),
        template_body: template,
        parameters: BTreeMap::from([("QueueName".into(), "orgop-work".into())]),
        capabilities: vec!["CAPABILITY_NAMED_IAM".into()],
        tags: BTreeMap::from([("app".into(), "orgop".into())]),
        ..StackSpec::default()
    }
}

/// The change sets of the stack moto knows of (each deploy that sends one leaves it listed).
async fn change_set_count(c: &AwsClient) -> usize {
    let out = call(
        c,
        &Target::own(REGION),
        "cloudformation",
        "ListChangeSets",
        json!({"StackName": "orgop-operations"}),
    )
    .await;
    out["Summaries"].as_array().map_or(0, Vec::len)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stack_is_created_left_unchanged_then_updated_with_its_changes() {
    let (_moto, c) = moto().await;
    let own = Target::own(REGION);

    let spec = stack_spec(queue_template(30));
    let StackOutcome::Created {
        stack_id,
        changes,
        replaced_failed_stack,
    } = deploy_stack(&c, REGION, &spec).await.expect("create")
    else {
        panic!("not created")
    };
    assert!(stack_id.contains(":stack/orgop-operations/"), "{stack_id}");
    assert_eq!(replaced_failed_stack, None);
    assert_eq!(changes.len(), 1, "{changes:?}");
    assert_eq!(
        (
            changes[0].action.as_str(),
            changes[0].logical_id.as_str(),
            changes[0].resource_type.as_str()
        ),
        ("Add", "Queue", "AWS::SQS::Queue")
    );
    // The queue exists, and the stack's outputs name it.
    let url = call(
        &c,
        &own,
        "sqs",
        "GetQueueUrl",
        json!({"QueueName": "orgop-work"}),
    )
    .await["QueueUrl"]
        .as_str()
        .unwrap()
        .to_string();
    let attrs = call(
        &c,
        &own,
        "sqs",
        "GetQueueAttributes",
        json!({"QueueUrl": url, "AttributeNames": ["VisibilityTimeout"]}),
    )
    .await;
    assert_eq!(attrs["Attributes"]["VisibilityTimeout"], "30");
    let sets = change_set_count(&c).await;

    // The same input again: nothing is sent, not even a change set.
    let again = deploy_stack(&c, REGION, &spec).await.expect("unchanged");
    assert_eq!(
        again,
        StackOutcome::Unchanged {
            stack_id: stack_id.clone()
        }
    );
    assert_eq!(change_set_count(&c).await, sets, "a change set was sent");

    // A changed template: updated, with the change listed, and the queue changed.
    let changed = stack_spec(queue_template(120));
    let StackOutcome::Updated {
        stack_id: updated_id,
        changes,
    } = deploy_stack(&c, REGION, &changed).await.expect("update")
    else {
        panic!("not updated")
    };
    assert_eq!(updated_id, stack_id);
    assert_eq!(
        changes
            .iter()
            .map(|c| (c.action.as_str(), c.logical_id.as_str()))
            .collect::<Vec<_>>(),
        [("Modify", "Queue")]
    );
    let attrs = call(
        &c,
        &own,
        "sqs",
        "GetQueueAttributes",
        json!({"QueueUrl": url, "AttributeNames": ["VisibilityTimeout"]}),
    )
    .await;
    assert_eq!(attrs["Attributes"]["VisibilityTimeout"], "120");
    assert!(matches!(
        deploy_stack(&c, REGION, &changed).await.unwrap(),
        StackOutcome::Unchanged { .. }
    ));

    // A changed parameter alone is an update too.
    let mut renamed = changed.clone();
    renamed
        .parameters
        .insert("QueueName".into(), "orgop-work-2".into());
    assert!(matches!(
        deploy_stack(&c, REGION, &renamed).await.unwrap(),
        StackOutcome::Updated { .. }
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stack_outputs_by_key() {
    let (_moto, c) = moto().await;
    // moto's ExecuteChangeSet never computes a stack's outputs, so this stack is made with
    // CreateStack, which does.
    call(
        &c,
        &Target::own(REGION),
        "cloudformation",
        "CreateStack",
        json!({"StackName": "plain", "TemplateBody": queue_template(30),
               "Parameters": [{"ParameterKey": "QueueName", "ParameterValue": "plain-q"}]}),
    )
    .await;
    let outputs = stack_outputs(&c, REGION, "plain").await.unwrap();
    assert!(outputs["QueueUrl"].ends_with("/plain-q"), "{outputs:?}");
    assert!(outputs["QueueArn"].ends_with(":plain-q"), "{outputs:?}");
    let missing = stack_outputs(&c, REGION, "nope").await.unwrap_err();
    assert_eq!(missing.to_string(), "stack nope does not exist");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_template_reports_cloudformation_s_reason() {
    let (_moto, c) = moto().await;
    let template = json!({
        "Resources": {"Queue": {"Type": "AWS::SQS::Queue", "Properties": {
            "QueueName": {"Fn::GetAtt": ["MissingTopic", "TopicName"]}}}},
    })
    .to_string();
    let spec = StackSpec {
        name: "broken".into(),
        template_body: template,
        ..StackSpec::default()
    };
    let err = deploy_stack(&c, REGION, &spec).await.unwrap_err();
    let DeployError::StackFailed {
        stack,
        status,
        reasons,
    } = &err
    else {
        panic!("not a stack failure: {err}")
    };
    assert_eq!(stack, "broken");
    // moto refuses the change set's execution synchronously and leaves the stack in review.
    assert_eq!(status, "REVIEW_IN_PROGRESS");
    assert!(
        reasons.iter().any(|r| r.contains("MissingTopic")),
        "{reasons:?}"
    );
    let text = err.to_string();
    assert!(text.starts_with("stack broken failed (REVIEW_IN_PROGRESS): ExecuteChangeSet: ValidationError: Template error: instance of Fn::GetAtt references undefined resource MissingTopic"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn artifacts_are_uploaded_once() {
    let (_moto, c) = moto().await;
    call(
        &c,
        &Target::own(REGION),
        "s3",
        "CreateBucket",
        json!({"Bucket": "orgop-artifacts"}),
    )
    .await;
    let zip = [0x50u8, 0x4b, 0x03, 0x04, 0xff, 0xfe, 0x00, 0x01];
    let first = upload_artifact(&c, "orgop-artifacts", "lambda/orgop.zip", &zip)
        .await
        .unwrap();
    let ArtifactOutcome::Uploaded { sha256 } = &first else {
        panic!("{first:?}")
    };
    assert_eq!(sha256.len(), 64);
    assert_eq!(
        upload_artifact(&c, "orgop-artifacts", "lambda/orgop.zip", &zip)
            .await
            .unwrap(),
        ArtifactOutcome::Unchanged {
            sha256: sha256.clone()
        }
    );
    assert_eq!(
        c.get_object("orgop-artifacts", "lambda/orgop.zip")
            .await
            .unwrap(),
        zip
    );
    let mut other = zip.to_vec();
    other.push(7);
    assert!(matches!(
        upload_artifact(&c, "orgop-artifacts", "lambda/orgop.zip", &other)
            .await
            .unwrap(),
        ArtifactOutcome::Uploaded { .. }
    ));
}

/// An organization with an OU of three member accounts; returns (OU id, the accounts).
async fn org_with_ou(c: &AwsClient) -> (String, Vec<String>) {
    let own = Target::own(REGION);
    call(
        c,
        &own,
        "organizations",
        "CreateOrganization",
        json!({"FeatureSet": "ALL"}),
    )
    .await;
    let root = call(c, &own, "organizations", "ListRoots", json!({})).await["Roots"][0]["Id"]
        .as_str()
        .unwrap()
        .to_string();
    let ou = call(
        c,
        &own,
        "organizations",
        "CreateOrganizationalUnit",
        json!({"ParentId": root, "Name": "workloads"}),
    )
    .await["OrganizationalUnit"]["Id"]
        .as_str()
        .unwrap()
        .to_string();
    let mut accounts = Vec::new();
    for i in 0..4 {
        let created = call(
            c,
            &own,
            "organizations",
            "CreateAccount",
            json!({"Email": format!("member{i}@example.com"), "AccountName": format!("member-{i}")}),
        )
        .await;
        let id = created["CreateAccountStatus"]["AccountId"]
            .as_str()
            .unwrap()
            .to_string();
        // The fourth account stays under the root: outside the OU, it gets no role.
        if i < 3 {
            call(
                c,
                &own,
                "organizations",
                "MoveAccount",
                json!({"AccountId": id, "SourceParentId": root, "DestinationParentId": ou}),
            )
            .await;
        }
        accounts.push(id);
    }
    (ou, accounts)
}

fn role_template(role: &str) -> String {
    serde_json::to_string_pretty(&json!({
        "AWSTemplateFormatVersion": "2010-09-09",
        "Parameters": {"OperationsAccount": {"Type": "String"}},
        "Resources": {"Role": {"Type": "AWS::IAM::Role", "Properties": {
            "RoleName": role,
            "AssumeRolePolicyDocument": {"Version": "2012-10-17", "Statement": [{
                "Effect": "Allow", "Action": "sts:AssumeRole",
                "Principal": {"AWS": {"Fn::Sub": "arn:${AWS::Partition}:iam::${OperationsAccount}:root"}}}]},
            "Policies": [{"PolicyName": "read", "PolicyDocument": {"Version": "2012-10-17", "Statement": [{
                "Effect": "Allow", "Action": "ec2:DescribeVolumes", "Resource": "*"}]}}],
        }}},
    }))
    .unwrap()
}

async fn role_in(c: &AwsClient, account: &str, role: &str) -> Result<Value, String> {
    let t = Target::assume(
        account,
        REGION,
        RoleSpec::new("OrganizationAccountAccessRole"),
    );
    c.call(&t, "iam", "GetRole", json!({"RoleName": role}))
        .await
        .map_err(|e| e.code().to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_managed_stack_set_puts_the_role_in_every_account_of_the_ou() {
    let (_moto, c) = moto().await;
    let (ou, accounts) = org_with_ou(&c).await;
    let spec = StackSetSpec {
        name: "orgop-member-roles".into(),
        template_body: role_template("OrgOpExecutionRole"),
        parameters: BTreeMap::from([("OperationsAccount".into(), "123456789012".into())]),
        capabilities: vec!["CAPABILITY_NAMED_IAM".into()],
        organizational_units: vec![ou.clone()],
        regions: vec![REGION.into()],
        ..StackSetSpec::default()
    };
    let StackSetOutcome::Created {
        instances,
        operations,
    } = deploy_stackset(&c, REGION, &spec).await.expect("create")
    else {
        panic!("not created")
    };
    assert_eq!(operations.len(), 1);
    let mut deployed: Vec<&str> = instances.iter().map(|i| i.account.as_str()).collect();
    deployed.sort();
    let mut members = accounts[..3].iter().map(String::as_str).collect::<Vec<_>>();
    members.sort();
    assert_eq!(deployed, members, "{instances:?}");
    assert!(
        instances
            .iter()
            .all(|i| i.region == REGION && i.status == "CURRENT")
    );
    for account in &accounts[..3] {
        let role = role_in(&c, account, "OrgOpExecutionRole")
            .await
            .unwrap_or_else(|code| panic!("no role in {account}: {code}"));
        let arn = role["Role"]["Arn"].as_str().unwrap();
        assert_eq!(
            arn,
            format!("arn:aws:iam::{account}:role/OrgOpExecutionRole")
        );
        // IAM answers the policy URL-encoded; Fn::Sub resolved the partition and parameter.
        let trust = role["Role"]["AssumeRolePolicyDocument"].to_string();
        assert!(
            trust.contains("arn%3Aaws%3Aiam%3A%3A123456789012%3Aroot"),
            "{trust}"
        );
    }
    assert_eq!(
        role_in(&c, &accounts[3], "OrgOpExecutionRole")
            .await
            .unwrap_err(),
        "NoSuchEntity"
    );
    // Nor in the management account: service-managed StackSets skip it.
    assert!(
        call(&c, &Target::own(REGION), "iam", "ListRoles", json!({})).await["Roles"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["RoleName"] != "OrgOpExecutionRole")
    );

    // Again: nothing to do, nothing sent.
    let ops_before = call(
        &c,
        &Target::own(REGION),
        "cloudformation",
        "ListStackSetOperations",
        json!({"StackSetName": "orgop-member-roles"}),
    )
    .await["Summaries"]
        .as_array()
        .unwrap()
        .len();
    let again = deploy_stackset(&c, REGION, &spec).await.expect("again");
    assert!(
        matches!(&again, StackSetOutcome::Unchanged { instances } if instances.len() == 3),
        "{again:?}"
    );
    // A new parameter value: UpdateStackSet, one more operation.
    let mut changed = spec.clone();
    changed
        .parameters
        .insert("OperationsAccount".into(), "210987654321".into());
    let updated = deploy_stackset(&c, REGION, &changed).await.expect("update");
    assert!(
        matches!(&updated, StackSetOutcome::Updated { template_updated: true, operations, .. } if operations.len() == 1),
        "{updated:?}"
    );
    let ops_after = call(
        &c,
        &Target::own(REGION),
        "cloudformation",
        "ListStackSetOperations",
        json!({"StackSetName": "orgop-member-roles"}),
    )
    .await["Summaries"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(ops_after, ops_before + 1);
}
