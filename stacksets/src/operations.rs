//! The operations stack: everything orgop runs on in the operations account.
use crate::{
    LAMBDA_ROLE_NAME, StacksError, checkov_skips, logical_names, roles, state_machine_name,
};
use orgop_plan::Lowered;
use orgop_plan::contract::ExecutionInput;
use serde_json::{Map, Value, json};

/// Settings of the operations stack that are not in the runbooks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperationsOptions {
    /// Default of the `LambdaCodeKey` parameter (the zip's key in the artifact bucket), if
    /// known when generating.
    pub lambda_code_key: Option<String>,
}

const NO_CMK: &str = "Encrypted with the AWS managed key; a customer managed key adds a key policy to maintain and a monthly cost, for data that is orgop's own results.";
const NO_VPC: &str = "The function calls only AWS APIs (Organizations, STS, the runbooks' services) and nothing private: a VPC would add NAT gateways and endpoints for no isolation gained.";
const NO_DLQ: &str = "Invoked synchronously by Step Functions only, which retries and records a failed item as its result; there is no asynchronous event to keep.";
const NO_RESERVED: &str = "Concurrency is bounded per run by each state machine's Map MaxConcurrency; reserving it would take it from the account's other functions.";
const NO_ENV_CMK: &str = "The environment holds resource names only (table, bucket, topic); the Slack webhook, when set, is a NoEcho parameter and can be rotated.";
const NO_ACCESS_LOG: &str = "The bucket holds orgop's own run results, written and read by its roles only; access logging needs a separate log bucket, which an organization sets up once for all buckets.";
const SSE_SQS: &str = "Encrypted with SSE-SQS (SqsManagedSseEnabled), which this check does not recognise; a KMS key would have to admit EventBridge Scheduler too.";

/// The operations template for `runbooks`.
pub fn operations(
    runbooks: &[&Lowered],
    options: &OperationsOptions,
) -> Result<Value, StacksError> {
    let roles = roles(runbooks)?;
    let named = logical_names(runbooks)?;
    let names: Vec<&str> = runbooks.iter().map(|l| l.plan.runbook.as_str()).collect();

    let mut parameters = json!({
        "ArtifactBucket": {
            "Type": "String",
            "Description": "S3 bucket holding the orgop Lambda zip (in this stack's region)"
        },
        "LambdaCodeKey": {
            "Type": "String",
            "Description": "Key of the orgop Lambda zip in ArtifactBucket (orgop package names it by its SHA-256, so a new build is a new key)"
        },
        "OrganizationId": {
            "Type": "String",
            "AllowedPattern": "^o-[a-z0-9]{10,32}$",
            "Description": "The organization (o-...): the Lambda may assume roles only in its accounts"
        },
        "OrgOpLambdaRoleName": {
            "Type": "String",
            "Default": LAMBDA_ROLE_NAME,
            "Description": "Name of the Lambda's role, which the member roles trust"
        },
        "ReadRoleName": {
            "Type": "String",
            "Default": roles.read.name,
            "Description": "The member read role (the runbooks' role.name)"
        },
        "RemediationRoleName": {
            "Type": "String",
            "Default": roles.remediation.as_ref().map_or("", |r| r.name.as_str()),
            "Description": "The member remediation role (the runbooks' role.apply_name); empty when no runbook has actions"
        },
        "ResultsRetentionDays": {
            "Type": "Number",
            "Default": 90,
            "MinValue": 1,
            "Description": "Days results are kept in the table and the bucket"
        },
        "LogRetentionDays": {
            "Type": "Number",
            "Default": 90,
            "AllowedValues": [1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653],
            "Description": "Days the function's and state machines' logs are kept"
        },
        "SlackWebhookUrl": {
            "Type": "String",
            "Default": "",
            "NoEcho": true,
            "Description": "Optional Slack incoming webhook for run summaries"
        }
    });
    if let Some(key) = &options.lambda_code_key {
        parameters["LambdaCodeKey"]["Default"] = json!(key);
    }

    let mut resources = Map::new();
    let mut outputs = Map::new();
    let mut add = |id: &str, v: Value| {
        resources.insert(id.to_string(), v);
    };
    add("ResultsBucket", results_bucket());
    add("ResultsBucketPolicy", results_bucket_policy());
    add("ResultsTable", results_table());
    add(
        "Topic",
        json!({
            "Type": "AWS::SNS::Topic",
            "Properties": {"KmsMasterKeyId": "alias/aws/sns", "DisplayName": "orgop run summaries"}
        }),
    );
    add(
        "FunctionLogGroup",
        log_group(json!({"Fn::Sub": "/aws/lambda/orgop-${AWS::StackName}"})),
    );
    add(
        "LambdaRole",
        lambda_role(&crate::operations_actions(runbooks)),
    );
    add("Function", function());
    add("StatesRole", states_role(&named));
    let scheduled: Vec<&(String, &Lowered)> =
        named.iter().filter(|(_, l)| l.schedule.is_some()).collect();
    if !scheduled.is_empty() {
        add(
            "ScheduleDeadLetterQueue",
            json!({
                "Type": "AWS::SQS::Queue",
                "Metadata": {"checkov": {"skip": checkov_skips(&[("CKV_AWS_27", SSE_SQS)])}},
                "Properties": {"SqsManagedSseEnabled": true, "MessageRetentionPeriod": 1_209_600}
            }),
        );
        add("SchedulerRole", scheduler_role(&scheduled));
    }
    for (id, l) in &named {
        let machine = format!("{id}StateMachine");
        add(
            &format!("{id}LogGroup"),
            log_group(json!(format!(
                "/aws/vendedlogs/states/{}",
                state_machine_name(&l.plan.runbook)
            ))),
        );
        add(&machine, state_machine(id, l));
        outputs.insert(
            format!("{machine}Arn"),
            json!({"Value": {"Ref": machine}, "Description": format!("runbook {}", l.plan.runbook)}),
        );
        if let Some(expression) = &l.schedule {
            add(&format!("{id}Schedule"), schedule(id, l, expression));
        }
    }
    // Runbooks with `approval`: who runs `orgop approve` / `orgop reject` needs exactly this.
    if named.iter().any(|(_, l)| l.approval.is_some()) {
        resources.insert("ApproverPolicy".to_string(), approver_policy());
        outputs.insert(
            "ApproverPolicyArn".to_string(),
            json!({"Value": {"Ref": "ApproverPolicy"}, "Description": "attach to who approves runs of runbooks with `approval` (orgop approve / orgop reject)"}),
        );
    }
    for (name, value) in [
        ("FunctionArn", json!({"Fn::GetAtt": ["Function", "Arn"]})),
        (
            "LambdaRoleArn",
            json!({"Fn::GetAtt": ["LambdaRole", "Arn"]}),
        ),
        ("ResultsBucketName", json!({"Ref": "ResultsBucket"})),
        ("ResultsTableName", json!({"Ref": "ResultsTable"})),
        ("TopicArn", json!({"Ref": "Topic"})),
    ] {
        outputs.insert(name.to_string(), json!({"Value": value}));
    }

    Ok(json!({
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": format!(
            "orgop operations stack for {}. Generated by `orgop package`; do not edit.",
            names.join(", ")
        ),
        "Metadata": {"orgop": {"generated_by": "orgop package", "runbooks": names}},
        "Parameters": parameters,
        "Conditions": {
            "HasRemediationRole": {"Fn::Not": [{"Fn::Equals": [{"Ref": "RemediationRoleName"}, ""]}]}
        },
        "Resources": resources,
        "Outputs": outputs
    }))
}

fn bucket_arn(suffix: &str) -> Value {
    json!({"Fn::Sub": format!("arn:${{AWS::Partition}}:s3:::${{ResultsBucket}}{suffix}")})
}

fn results_bucket() -> Value {
    json!({
        "Type": "AWS::S3::Bucket",
        "DeletionPolicy": "Retain",
        "UpdateReplacePolicy": "Retain",
        "Metadata": {"checkov": {"skip": checkov_skips(&[("CKV_AWS_18", NO_ACCESS_LOG)])}},
        "Properties": {
            "BucketEncryption": {"ServerSideEncryptionConfiguration": [{
                "ServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms"},
                "BucketKeyEnabled": true
            }]},
            "PublicAccessBlockConfiguration": {
                "BlockPublicAcls": true,
                "BlockPublicPolicy": true,
                "IgnorePublicAcls": true,
                "RestrictPublicBuckets": true
            },
            "OwnershipControls": {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]},
            "VersioningConfiguration": {"Status": "Enabled"},
            "LifecycleConfiguration": {"Rules": [{
                "Id": "expire-results",
                "Status": "Enabled",
                "ExpirationInDays": {"Ref": "ResultsRetentionDays"},
                "NoncurrentVersionExpiration": {"NoncurrentDays": 7},
                "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 7}
            }]}
        }
    })
}

/// Only TLS requests reach the bucket.
fn results_bucket_policy() -> Value {
    json!({
        "Type": "AWS::S3::BucketPolicy",
        "Properties": {
            "Bucket": {"Ref": "ResultsBucket"},
            "PolicyDocument": {
                "Version": "2012-10-17",
                "Statement": [{
                    "Sid": "TlsOnly",
                    "Effect": "Deny",
                    "Principal": "*",
                    "Action": "s3:*",
                    "Resource": [bucket_arn(""), bucket_arn("/*")],
                    "Condition": {"Bool": {"aws:SecureTransport": "false"}}
                }]
            }
        }
    })
}

fn results_table() -> Value {
    json!({
        "Type": "AWS::DynamoDB::Table",
        "DeletionPolicy": "Retain",
        "UpdateReplacePolicy": "Retain",
        "Metadata": {"checkov": {"skip": checkov_skips(&[("CKV_AWS_119", NO_CMK)])}},
        "Properties": {
            "BillingMode": "PAY_PER_REQUEST",
            "AttributeDefinitions": [
                {"AttributeName": "execution", "AttributeType": "S"},
                {"AttributeName": "item", "AttributeType": "S"}
            ],
            "KeySchema": [
                {"AttributeName": "execution", "KeyType": "HASH"},
                {"AttributeName": "item", "KeyType": "RANGE"}
            ],
            "TimeToLiveSpecification": {"AttributeName": "expires_at", "Enabled": true},
            "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": true},
            "SSESpecification": {"SSEEnabled": true}
        }
    })
}

/// What `orgop approve` / `orgop reject` need: the approval item of the results table (read
/// it, mark it answered) and the task-token calls. `states:SendTaskSuccess` and
/// `states:SendTaskFailure` authorize on the token, not on a resource ARN: `*` is the only
/// resource they take.
fn approver_policy() -> Value {
    json!({
        "Type": "AWS::IAM::ManagedPolicy",
        "Properties": {
            "Description": "orgop approvers: answer the approval a run of a runbook with `approval` waits for",
            "PolicyDocument": {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Sid": "ApprovalItem",
                        "Effect": "Allow",
                        "Action": ["dynamodb:GetItem", "dynamodb:UpdateItem"],
                        "Resource": {"Fn::GetAtt": ["ResultsTable", "Arn"]}
                    },
                    {
                        "Sid": "AnswerTheTask",
                        "Effect": "Allow",
                        "Action": ["states:SendTaskSuccess", "states:SendTaskFailure"],
                        "Resource": "*"
                    }
                ]
            }
        }
    })
}

fn log_group(name: Value) -> Value {
    json!({
        "Type": "AWS::Logs::LogGroup",
        "Metadata": {"checkov": {"skip": checkov_skips(&[("CKV_AWS_158", NO_CMK)])}},
        "Properties": {"LogGroupName": name, "RetentionInDays": {"Ref": "LogRetentionDays"}}
    })
}

fn trust(service: &str) -> Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": {"Service": service},
            "Action": "sts:AssumeRole",
            "Condition": {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}}
        }]
    })
}

/// The Lambda: its logs, the member roles by name in the organization's accounts, the
/// organization's account list, and its own table, bucket and topic.
fn lambda_role(own_calls: &std::collections::BTreeSet<String>) -> Value {
    let member_role = |param: &str| json!({"Fn::Sub": format!("arn:${{AWS::Partition}}:iam::*:role/${{{param}}}")});
    let mut role = json!({
        "Type": "AWS::IAM::Role",
        "Properties": {
            "RoleName": {"Ref": "OrgOpLambdaRoleName"},
            "Description": "orgop Lambda: lists the organization, assumes the orgop member roles, stores results",
            "AssumeRolePolicyDocument": trust("lambda.amazonaws.com"),
            "Policies": [{"PolicyName": "orgop-lambda", "PolicyDocument": {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Sid": "Logs",
                        "Effect": "Allow",
                        "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                        "Resource": {"Fn::Sub": "${FunctionLogGroup.Arn}"}
                    },
                    {
                        "Sid": "MemberRoles",
                        "Effect": "Allow",
                        "Action": "sts:AssumeRole",
                        "Resource": {"Fn::If": [
                            "HasRemediationRole",
                            [member_role("ReadRoleName"), member_role("RemediationRoleName")],
                            [member_role("ReadRoleName")]
                        ]},
                        "Condition": {"StringEquals": {"aws:ResourceOrgID": {"Ref": "OrganizationId"}}}
                    },
                    {
                        "Sid": "Organization",
                        "Effect": "Allow",
                        "Action": [
                            "organizations:DescribeOrganization",
                            "organizations:ListAccounts",
                            "organizations:ListAccountsForParent",
                            "organizations:ListOrganizationalUnitsForParent",
                            "organizations:ListTagsForResource"
                        ],
                        "Resource": "*"
                    },
                    {
                        "Sid": "ResultsTable",
                        "Effect": "Allow",
                        "Action": [
                            "dynamodb:DeleteItem",
                            "dynamodb:GetItem",
                            "dynamodb:PutItem",
                            "dynamodb:Query",
                            "dynamodb:UpdateItem"
                        ],
                        "Resource": {"Fn::GetAtt": ["ResultsTable", "Arn"]}
                    },
                    {
                        "Sid": "ResultsBucket",
                        "Effect": "Allow",
                        "Action": ["s3:GetObject", "s3:PutObject"],
                        "Resource": bucket_arn("/orgop/*")
                    },
                    {
                        "Sid": "Notify",
                        "Effect": "Allow",
                        "Action": "sns:Publish",
                        "Resource": {"Ref": "Topic"}
                    }
                ]
            }}]
        }
    });
    // The calls of the runbooks that run in this account, with its own role.
    if !own_calls.is_empty()
        && let Some(statements) = role
            .pointer_mut("/Properties/Policies/0/PolicyDocument/Statement")
            .and_then(Value::as_array_mut)
    {
        statements.push(json!({
            "Sid": "OperationsAccountRunbooks",
            "Effect": "Allow",
            "Action": own_calls.iter().collect::<Vec<_>>(),
            "Resource": "*"
        }));
    }
    role
}

fn function() -> Value {
    json!({
        "Type": "AWS::Lambda::Function",
        "Metadata": {"checkov": {"skip": checkov_skips(&[
            ("CKV_AWS_115", NO_RESERVED),
            ("CKV_AWS_116", NO_DLQ),
            ("CKV_AWS_117", NO_VPC),
            ("CKV_AWS_173", NO_ENV_CMK)
        ])}},
        "Properties": {
            "FunctionName": {"Fn::Sub": "orgop-${AWS::StackName}"},
            "Description": "orgop: fanout, worker and results handlers of every orgop state machine",
            "Runtime": "provided.al2023",
            "Architectures": ["arm64"],
            "Handler": "bootstrap",
            "MemorySize": 512,
            "Timeout": 900,
            "Role": {"Fn::GetAtt": ["LambdaRole", "Arn"]},
            "Code": {"S3Bucket": {"Ref": "ArtifactBucket"}, "S3Key": {"Ref": "LambdaCodeKey"}},
            "LoggingConfig": {"LogGroup": {"Ref": "FunctionLogGroup"}, "LogFormat": "Text"},
            "Environment": {"Variables": {
                "ORGOP_RESULTS_TABLE": {"Ref": "ResultsTable"},
                "ORGOP_RESULTS_BUCKET": {"Ref": "ResultsBucket"},
                "ORGOP_RESULTS_TTL_DAYS": {"Ref": "ResultsRetentionDays"},
                "ORGOP_SNS_TOPIC_ARN": {"Ref": "Topic"},
                "ORGOP_SLACK_WEBHOOK_URL": {"Ref": "SlackWebhookUrl"},
                "ORGOP_LOG": "info"
            }}
        }
    })
}

fn machine_arn(l: &Lowered) -> Value {
    json!({"Fn::Sub": format!(
        "arn:${{AWS::Partition}}:states:${{AWS::Region}}:${{AWS::AccountId}}:stateMachine:{}",
        state_machine_name(&l.plan.runbook)
    )})
}

/// The state machines: invoke the function only; log; and, for a distributed Map, read its
/// items, write its results and run its child executions.
fn states_role(named: &[(String, &Lowered)]) -> Value {
    let mut statements = vec![
        json!({
            "Sid": "InvokeOrgOp",
            "Effect": "Allow",
            "Action": "lambda:InvokeFunction",
            "Resource": [
                {"Fn::GetAtt": ["Function", "Arn"]},
                {"Fn::Sub": "${Function.Arn}:*"}
            ]
        }),
        json!({
            "Sid": "LogDelivery",
            "Effect": "Allow",
            "Action": [
                "logs:CreateLogDelivery",
                "logs:DeleteLogDelivery",
                "logs:DescribeLogGroups",
                "logs:DescribeResourcePolicies",
                "logs:GetLogDelivery",
                "logs:ListLogDeliveries",
                "logs:PutResourcePolicy",
                "logs:UpdateLogDelivery"
            ],
            "Resource": "*"
        }),
    ];
    for (id, l) in named
        .iter()
        .filter(|(_, l)| l.map == orgop_plan::MapKind::Distributed)
    {
        let runbook = &l.plan.runbook;
        let name = state_machine_name(runbook);
        statements.push(json!({
            "Sid": format!("{id}MapItems"),
            "Effect": "Allow",
            "Action": ["s3:GetObject"],
            "Resource": bucket_arn(&format!("/orgop/{runbook}/*"))
        }));
        // A runbook with `approval` has a second Map, the plan phase's.
        let mut written = vec![bucket_arn(&format!("/orgop/{runbook}/map-results/*"))];
        if l.approval.is_some() {
            written.push(bucket_arn(&format!("/orgop/{runbook}/plan-map-results/*")));
        }
        statements.push(json!({
            "Sid": format!("{id}MapResults"),
            "Effect": "Allow",
            "Action": ["s3:PutObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"],
            "Resource": if written.len() == 1 { written.remove(0) } else { Value::Array(written) }
        }));
        statements.push(json!({
            "Sid": format!("{id}MapRun"),
            "Effect": "Allow",
            "Action": ["states:StartExecution"],
            "Resource": machine_arn(l)
        }));
        statements.push(json!({
            "Sid": format!("{id}MapChildren"),
            "Effect": "Allow",
            "Action": ["states:DescribeExecution", "states:StopExecution"],
            "Resource": {"Fn::Sub": format!(
                "arn:${{AWS::Partition}}:states:${{AWS::Region}}:${{AWS::AccountId}}:execution:{name}/*"
            )}
        }));
    }
    json!({
        "Type": "AWS::IAM::Role",
        "Properties": {
            "Description": "orgop state machines: invoke the orgop function, log, run distributed Maps",
            "AssumeRolePolicyDocument": trust("states.amazonaws.com"),
            "Policies": [{"PolicyName": "orgop-states", "PolicyDocument": {
                "Version": "2012-10-17",
                "Statement": statements
            }}]
        }
    })
}

/// The compiled definition as an `Fn::Sub` string: its placeholders
/// ([`orgop_statemachine::SUBSTITUTIONS`]) become this template's function ARN and bucket,
/// and every other `${` is escaped (`${!`) so it stays literal.
///
/// `Fn::Sub` rather than `DefinitionSubstitutions`: the two give the same definition on
/// AWS, and the emulator the tests deploy to (moto) applies only `Fn::Sub`.
pub fn definition_sub(definition: &str) -> String {
    const PLACEHOLDERS: [(&str, &str); 2] = [
        ("${OrgOpFunctionArn}", "${Function.Arn}"),
        ("${ResultsBucket}", "${ResultsBucket}"),
    ];
    let mut out = String::with_capacity(definition.len());
    let mut rest = definition;
    while let Some(at) = rest.find("${") {
        out.push_str(&rest[..at]);
        let tail = &rest[at..];
        match PLACEHOLDERS.iter().find(|(p, _)| tail.starts_with(p)) {
            Some((p, with)) => {
                out.push_str(with);
                rest = &tail[p.len()..];
            }
            None => {
                out.push_str("${!");
                rest = &tail[2..];
            }
        }
    }
    out.push_str(rest);
    out
}

fn state_machine(id: &str, l: &Lowered) -> Value {
    let definition = orgop_statemachine::to_json(&orgop_statemachine::compile(l));
    json!({
        "Type": "AWS::StepFunctions::StateMachine",
        "Properties": {
            "StateMachineName": state_machine_name(&l.plan.runbook),
            "StateMachineType": "STANDARD",
            "RoleArn": {"Fn::GetAtt": ["StatesRole", "Arn"]},
            "DefinitionString": {"Fn::Sub": definition_sub(&definition)},
            "LoggingConfiguration": {
                "Level": "ERROR",
                "IncludeExecutionData": false,
                "Destinations": [{"CloudWatchLogsLogGroup": {"LogGroupArn": {"Fn::GetAtt": [format!("{id}LogGroup"), "Arn"]}}}]
            }
        }
    })
}

/// The scheduler starts only the scheduled state machines, and writes failed deliveries to
/// its dead-letter queue.
fn scheduler_role(scheduled: &[&(String, &Lowered)]) -> Value {
    let machines: Vec<Value> = scheduled.iter().map(|(_, l)| machine_arn(l)).collect();
    json!({
        "Type": "AWS::IAM::Role",
        "Properties": {
            "Description": "orgop schedules: start the scheduled orgop state machines",
            "AssumeRolePolicyDocument": trust("scheduler.amazonaws.com"),
            "Policies": [{"PolicyName": "orgop-scheduler", "PolicyDocument": {
                "Version": "2012-10-17",
                "Statement": [
                    {"Sid": "StartRuns", "Effect": "Allow", "Action": "states:StartExecution", "Resource": machines},
                    {"Sid": "DeadLetters", "Effect": "Allow", "Action": "sqs:SendMessage", "Resource": {"Fn::GetAtt": ["ScheduleDeadLetterQueue", "Arn"]}}
                ]
            }}]
        }
    })
}

/// A dry run unless the runbook opts in with `apply_on_schedule`.
fn schedule(id: &str, l: &Lowered, expression: &str) -> Value {
    let input = ExecutionInput {
        apply: l.apply_on_schedule,
        ..ExecutionInput::default()
    };
    json!({
        "Type": "AWS::Scheduler::Schedule",
        "Properties": {
            "Name": {"Fn::Sub": format!("${{AWS::StackName}}-{}", l.plan.runbook)},
            "Description": format!(
                "orgop runbook {} ({})",
                l.plan.runbook,
                if l.apply_on_schedule { "applied: apply_on_schedule is set" } else { "dry run" }
            ),
            "ScheduleExpression": expression,
            "ScheduleExpressionTimezone": "UTC",
            "FlexibleTimeWindow": {"Mode": "OFF"},
            "State": "ENABLED",
            "Target": {
                "Arn": {"Ref": format!("{id}StateMachine")},
                "RoleArn": {"Fn::GetAtt": ["SchedulerRole", "Arn"]},
                "Input": serde_json::to_string(&input).expect("the input serializes"),
                "RetryPolicy": {"MaximumRetryAttempts": 3, "MaximumEventAgeInSeconds": 3600},
                "DeadLetterConfig": {"Arn": {"Fn::GetAtt": ["ScheduleDeadLetterQueue", "Arn"]}}
            }
        }
    })
}
