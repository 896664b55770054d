//! IAM actions from the calls a runbook makes.
//!
//! A runbook names a call the way IAM names the action (`ec2:DescribeVolumes`), so most calls
//! are their own action. This module holds the reviewed exceptions: services whose IAM prefix
//! differs from the name the call may be written with (`elbv2` -> `elasticloadbalancing`),
//! operations whose IAM action has another name (`s3:ListObjectsV2` -> `s3:ListBucket`), and
//! the further actions AWS documents as required by some calls (`ec2:CreateTags` for a create
//! call with `TagSpecifications`, `kms:` for copies of encrypted snapshots).
use orgop_plan::CallPlan;
use std::collections::BTreeSet;

/// Service names a call may be written with -> the IAM prefix (`service:Operation`).
const PREFIXES: &[(&str, &str)] = &[
    ("accessanalyzer", "access-analyzer"),
    ("apigatewayv2", "apigateway"),
    ("cloudwatchlogs", "logs"),
    ("efs", "elasticfilesystem"),
    ("elasticloadbalancingv2", "elasticloadbalancing"),
    ("elb", "elasticloadbalancing"),
    ("elbv2", "elasticloadbalancing"),
    ("emr", "elasticmapreduce"),
    ("monitoring", "cloudwatch"),
    ("opensearch", "es"),
    ("resourcegroupstaggingapi", "tag"),
    ("service-quotas", "servicequotas"),
    ("sesv2", "ses"),
    ("sfn", "states"),
    ("sso-admin", "sso"),
    ("stepfunctions", "states"),
];

/// `prefix:Operation` -> the IAM actions it needs, where they differ from the call's name.
/// Sources: the Service Authorization Reference's "Actions" tables (the "API" column) and
/// each API reference's "Permissions" notes.
const RENAMED: &[(&str, &[&str])] = &[
    ("s3:CopyObject", &["s3:GetObject", "s3:PutObject"]),
    (
        "s3:DeleteBucketEncryption",
        &["s3:PutEncryptionConfiguration"],
    ),
    (
        "s3:DeleteBucketLifecycle",
        &["s3:PutLifecycleConfiguration"],
    ),
    ("s3:DeleteBucketTagging", &["s3:PutBucketTagging"]),
    ("s3:DeleteObjects", &["s3:DeleteObject"]),
    (
        "s3:DeletePublicAccessBlock",
        &["s3:PutBucketPublicAccessBlock"],
    ),
    ("s3:GetBucketEncryption", &["s3:GetEncryptionConfiguration"]),
    (
        "s3:GetBucketLifecycleConfiguration",
        &["s3:GetLifecycleConfiguration"],
    ),
    (
        "s3:GetBucketNotificationConfiguration",
        &["s3:GetBucketNotification"],
    ),
    (
        "s3:GetBucketReplication",
        &["s3:GetReplicationConfiguration"],
    ),
    (
        "s3:GetObjectAttributes",
        &["s3:GetObject", "s3:GetObjectAttributes"],
    ),
    (
        "s3:GetPublicAccessBlock",
        &["s3:GetBucketPublicAccessBlock"],
    ),
    ("s3:HeadBucket", &["s3:ListBucket"]),
    ("s3:HeadObject", &["s3:GetObject"]),
    ("s3:ListBuckets", &["s3:ListAllMyBuckets"]),
    (
        "s3:ListMultipartUploads",
        &["s3:ListBucketMultipartUploads"],
    ),
    ("s3:ListObjectVersions", &["s3:ListBucketVersions"]),
    ("s3:ListObjects", &["s3:ListBucket"]),
    ("s3:ListObjectsV2", &["s3:ListBucket"]),
    ("s3:PutBucketEncryption", &["s3:PutEncryptionConfiguration"]),
    (
        "s3:PutBucketLifecycleConfiguration",
        &["s3:PutLifecycleConfiguration"],
    ),
    (
        "s3:PutBucketNotificationConfiguration",
        &["s3:PutBucketNotification"],
    ),
    (
        "s3:PutBucketReplication",
        &["s3:PutReplicationConfiguration"],
    ),
    (
        "s3:PutPublicAccessBlock",
        &["s3:PutBucketPublicAccessBlock"],
    ),
    // No permission is needed to ask who you are.
    ("sts:GetCallerIdentity", &[]),
];

/// Calls that need further actions AWS documents (beyond `TagSpecifications`, handled apart).
const DEPENDENT: &[(&str, &[&str])] = &[
    // Copying, or creating a volume from, an encrypted snapshot uses its KMS key
    // (EBS encryption: "Permissions for IAM users").
    ("ec2:CopyImage", KMS_FOR_EBS),
    ("ec2:CopySnapshot", KMS_FOR_EBS),
    ("ec2:CreateVolume", KMS_FOR_EBS),
    // Enabling a service creates its service-linked role.
    ("guardduty:CreateDetector", &["iam:CreateServiceLinkedRole"]),
    ("inspector2:Enable", &["iam:CreateServiceLinkedRole"]),
    (
        "securityhub:EnableSecurityHub",
        &["iam:CreateServiceLinkedRole"],
    ),
];

const KMS_FOR_EBS: &[&str] = &[
    "kms:CreateGrant",
    "kms:Decrypt",
    "kms:DescribeKey",
    "kms:GenerateDataKeyWithoutPlaintext",
    "kms:ReEncryptFrom",
    "kms:ReEncryptTo",
];

/// The IAM prefix of a service as a call may name it.
pub fn prefix(service: &str) -> &str {
    PREFIXES
        .iter()
        .find(|(s, _)| *s == service)
        .map_or(service, |(_, p)| p)
}

/// API Gateway's management API is authorized by HTTP method (`apigateway:GET`, ...), not by
/// operation name.
fn apigateway(operation: &str) -> &'static str {
    let verb = |v: &str| operation.starts_with(v);
    if verb("Get") {
        "apigateway:GET"
    } else if verb("Create") || verb("Import") || verb("Tag") {
        "apigateway:POST"
    } else if verb("Update") {
        "apigateway:PATCH"
    } else if verb("Delete") || verb("Untag") || verb("Flush") {
        "apigateway:DELETE"
    } else {
        "apigateway:PUT"
    }
}

/// The IAM actions that authorize the call itself (its name, or what the table renames it
/// to), without the further actions it depends on.
pub fn called_actions(call: &CallPlan) -> BTreeSet<String> {
    let prefix = prefix(&call.service);
    let name = format!("{prefix}:{}", call.operation);
    if prefix == "apigateway" {
        [apigateway(&call.operation).to_string()].into()
    } else if let Some((_, renamed)) = RENAMED.iter().find(|(n, _)| *n == name) {
        renamed.iter().map(|a| a.to_string()).collect()
    } else {
        [name].into()
    }
}

/// Every IAM action one call needs, sorted: [`called_actions`], the actions AWS documents
/// it depends on, and those of the operation its `wait:` polls.
pub fn actions_of(call: &CallPlan) -> BTreeSet<String> {
    let prefix = prefix(&call.service);
    let name = format!("{prefix}:{}", call.operation);
    let mut out = called_actions(call);
    if let Some((_, more)) = DEPENDENT.iter().find(|(n, _)| *n == name) {
        out.extend(more.iter().map(|a| a.to_string()));
    }
    // "To tag a resource on creation, you need ec2:CreateTags" (EC2 API reference, tagging
    // on creation); the same holds for the other services' TagSpecifications.
    if prefix == "ec2" && call.parameters.get("TagSpecifications").is_some() {
        out.insert("ec2:CreateTags".to_string());
    }
    // A `wait:` polls the waiter's operation of the same service with the same role.
    if let Some(w) = &call.wait {
        let mut poll = call.clone();
        poll.operation = w.operation.clone();
        poll.parameters = w.parameters.clone();
        poll.wait = None;
        out.extend(actions_of(&poll));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn call(service: &str, operation: &str, parameters: serde_json::Value) -> CallPlan {
        CallPlan {
            id: "c".into(),
            service: service.into(),
            operation: operation.into(),
            mutating: false,
            parameters,
            paginate: true,
            select: None,
            where_: None,
            for_each: Vec::new(),
            item_as: None,
            when: None,
            ignore_errors: Vec::new(),
            wait: None,
            at: "f:1:1".into(),
        }
    }

    fn actions(service: &str, operation: &str) -> Vec<String> {
        actions_of(&call(service, operation, json!({})))
            .into_iter()
            .collect()
    }

    #[test]
    fn a_wait_adds_the_action_of_the_operation_it_polls() {
        let mut c = call("ec2", "CreateSnapshot", json!({"VolumeId": "v"}));
        c.wait = Some(orgop_plan::WaitPlan {
            waiter: "SnapshotCompleted".into(),
            operation: "DescribeSnapshots".into(),
            parameters: json!({"SnapshotIds": ["{{ response.SnapshotId }}"]}),
            delay_seconds: 15,
            max_attempts: 40,
            acceptors: Vec::new(),
        });
        assert_eq!(
            actions_of(&c).into_iter().collect::<Vec<_>>(),
            ["ec2:CreateSnapshot", "ec2:DescribeSnapshots"]
        );
    }

    #[test]
    fn a_call_is_its_own_action_unless_the_table_says_otherwise() {
        assert_eq!(actions("ec2", "DescribeVolumes"), ["ec2:DescribeVolumes"]);
        assert_eq!(actions("s3", "ListObjectsV2"), ["s3:ListBucket"]);
        assert_eq!(actions("sts", "GetCallerIdentity"), Vec::<String>::new());
        assert_eq!(
            actions("elbv2", "DescribeLoadBalancers"),
            ["elasticloadbalancing:DescribeLoadBalancers"]
        );
        assert_eq!(
            actions("stepfunctions", "ListStateMachines"),
            ["states:ListStateMachines"]
        );
        assert_eq!(actions("apigateway", "GetRestApis"), ["apigateway:GET"]);
        assert_eq!(actions("apigateway", "DeleteStage"), ["apigateway:DELETE"]);
    }

    #[test]
    fn documented_dependent_actions_are_added() {
        assert!(actions("ec2", "CopySnapshot").contains(&"kms:CreateGrant".to_string()));
        let tagged = actions_of(&call(
            "ec2",
            "CreateSnapshot",
            json!({"TagSpecifications": [{"ResourceType": "snapshot"}]}),
        ));
        assert!(tagged.contains("ec2:CreateTags"), "{tagged:?}");
        assert!(!actions("ec2", "CreateSnapshot").contains(&"ec2:CreateTags".to_string()));
    }

    #[test]
    fn the_tables_are_sorted_and_have_no_duplicates() {
        for names in [
            PREFIXES.iter().map(|(n, _)| *n).collect::<Vec<_>>(),
            RENAMED.iter().map(|(n, _)| *n).collect(),
            DEPENDENT.iter().map(|(n, _)| *n).collect(),
        ] {
            let mut sorted = names.clone();
            sorted.sort_unstable();
            sorted.dedup();
            assert_eq!(names, sorted);
        }
    }
}
