//! One CloudFormation stack, deployed by change set.

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use futures_util::StreamExt;
use orgop_aws::{AwsClient, CallError, Target};
use serde_json::{Value, json};

use crate::wait::cfn_waiter;
use crate::{DeployError, DeployOptions, parameter_list, parameters_match, tag_list};

/// A stack to deploy.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StackSpec {
    /// The stack name.
    pub name: String,
    /// The template (JSON or YAML), compared byte for byte with the deployed one.
    pub template_body: String,
    /// Where the same template was uploaded (`https://...s3...`), for templates over
    /// CloudFormation's 51,200-byte limit of an inline body: sent instead of the body.
    pub template_url: Option<String>,
    /// Parameter values; a template parameter not given takes its default.
    pub parameters: BTreeMap<String, String>,
    /// `CAPABILITY_IAM`, `CAPABILITY_NAMED_IAM`, `CAPABILITY_AUTO_EXPAND`.
    pub capabilities: Vec<String>,
    /// Stack tags (CloudFormation propagates them to the resources).
    pub tags: BTreeMap<String, String>,
}

/// One resource change of a change set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// `Add`, `Modify`, `Remove`, `Import`, `Dynamic`.
    pub action: String,
    /// The resource's logical id.
    pub logical_id: String,
    /// `AWS::SQS::Queue`, ...
    pub resource_type: String,
    /// For `Modify`: `True`, `False` or `Conditional` (whether the resource is replaced).
    pub replacement: Option<String>,
}

/// What [`deploy_stack`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StackOutcome {
    /// The stack did not exist (or only as a failed first create) and was created.
    Created {
        /// The stack id (ARN).
        stack_id: String,
        /// The resources added.
        changes: Vec<Change>,
        /// The id of a stack in `ROLLBACK_COMPLETE` of the same name that was deleted first
        /// ([`DeployOptions::delete_rolled_back_stack`]).
        replaced_failed_stack: Option<String>,
    },
    /// The stack was updated.
    Updated {
        /// The stack id (ARN).
        stack_id: String,
        /// The resources added, modified and removed.
        changes: Vec<Change>,
    },
    /// The deployed template, parameters and tags are those of the spec (or CloudFormation
    /// found no changes): nothing was executed.
    Unchanged {
        /// The stack id (ARN).
        stack_id: String,
    },
}

/// Deploys `spec` in `region` with [`DeployOptions::default`].
pub async fn deploy_stack(
    client: &AwsClient,
    region: &str,
    spec: &StackSpec,
) -> Result<StackOutcome, DeployError> {
    deploy_stack_with(client, region, spec, &DeployOptions::default()).await
}

/// Where a stack of that name stands.
enum Found {
    Absent,
    /// Created by a change set that was never executed: a new change set is of type CREATE.
    InReview,
    Present(Value),
}

/// Deploys `spec` in `region`: DescribeStacks; when absent, a CREATE change set; when
/// present and its template (`GetTemplate`, stage `Original`), parameters and tags are the
/// spec's, [`StackOutcome::Unchanged`] without a write; else an UPDATE change set (one that
/// CloudFormation finds empty is deleted: unchanged). The change set is executed and waited
/// for, each wait bounded by `opts`.
///
/// A stack in `ROLLBACK_COMPLETE` is deleted first when `opts.delete_rolled_back_stack`;
/// any other `*_IN_PROGRESS` or unrecoverable state is [`DeployError::StackNotUpdatable`].
pub async fn deploy_stack_with(
    client: &AwsClient,
    region: &str,
    spec: &StackSpec,
    opts: &DeployOptions,
) -> Result<StackOutcome, DeployError> {
    let target = Target::own(region);
    let name = spec.name.as_str();
    let mut replaced = None;
    let found = match describe_stack(client, &target, name).await? {
        None => Found::Absent,
        Some(stack) => {
            let status = str_of(&stack, "StackStatus");
            let id = str_of(&stack, "StackId");
            match status.as_str() {
                "ROLLBACK_COMPLETE" if opts.delete_rolled_back_stack => {
                    delete_rolled_back(client, &target, name, &id, opts).await?;
                    replaced = Some(id);
                    Found::Absent
                }
                "ROLLBACK_COMPLETE" => {
                    return Err(DeployError::StackNotUpdatable {
                        stack: name.to_string(),
                        status,
                        hint: "its first create failed and was rolled back; delete it before deploying again".into(),
                    });
                }
                "REVIEW_IN_PROGRESS" => Found::InReview,
                s if s.ends_with("_IN_PROGRESS") => {
                    return Err(DeployError::StackNotUpdatable {
                        stack: name.to_string(),
                        status,
                        hint: "another operation is running on it; deploy again when it ends"
                            .into(),
                    });
                }
                "CREATE_FAILED" | "ROLLBACK_FAILED" | "DELETE_FAILED" => {
                    return Err(DeployError::StackNotUpdatable {
                        stack: name.to_string(),
                        status,
                        hint: "delete it (retaining what cannot be deleted) before deploying again"
                            .into(),
                    });
                }
                "UPDATE_ROLLBACK_FAILED" => {
                    return Err(DeployError::StackNotUpdatable {
                        stack: name.to_string(),
                        status,
                        hint: "continue the rollback (cloudformation:ContinueUpdateRollback) before deploying again".into(),
                    });
                }
                _ => Found::Present(stack),
            }
        }
    };
    let change_set_type = match found {
        Found::Absent | Found::InReview => "CREATE",
        Found::Present(stack) => {
            if deployed_is(client, &target, &stack, spec).await? {
                return Ok(StackOutcome::Unchanged {
                    stack_id: str_of(&stack, "StackId"),
                });
            }
            "UPDATE"
        }
    };
    let Some((change_set, stack_id, changes)) =
        make_change_set(client, &target, spec, change_set_type, opts).await?
    else {
        let stack = describe_stack(client, &target, name).await?;
        return Ok(StackOutcome::Unchanged {
            stack_id: stack.map(|s| str_of(&s, "StackId")).unwrap_or_default(),
        });
    };
    execute(
        client,
        &target,
        name,
        &stack_id,
        &change_set,
        change_set_type,
        opts,
    )
    .await?;
    Ok(if change_set_type == "CREATE" {
        StackOutcome::Created {
            stack_id,
            changes,
            replaced_failed_stack: replaced,
        }
    } else {
        StackOutcome::Updated { stack_id, changes }
    })
}

/// The outputs of stack `name` in `region`, by output key.
pub async fn stack_outputs(
    client: &AwsClient,
    region: &str,
    name: &str,
) -> Result<BTreeMap<String, String>, DeployError> {
    let target = Target::own(region);
    let stack = describe_stack(client, &target, name)
        .await?
        .ok_or_else(|| DeployError::NotFound {
            kind: "stack",
            name: name.to_string(),
        })?;
    Ok(stack
        .get("Outputs")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .filter_map(|o| {
            Some((
                o.get("OutputKey")?.as_str()?.to_string(),
                o.get("OutputValue")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
            ))
        })
        .collect())
}

fn str_of(v: &Value, key: &str) -> String {
    v.get(key)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

async fn cfn(
    client: &AwsClient,
    target: &Target,
    name: &str,
    operation: &'static str,
    params: Value,
) -> Result<Value, DeployError> {
    client
        .call(target, "cloudformation", operation, params)
        .await
        .map_err(|e| DeployError::call(name, operation, e))
}

/// Whether a CloudFormation error says the stack does not exist.
fn is_absent(e: &CallError) -> bool {
    e.aws_error()
        .is_some_and(|a| a.code == "ValidationError" && a.message.contains("does not exist"))
}

/// The stack `name_or_id` as DescribeStacks answers it, `None` when it does not exist.
async fn describe_stack(
    client: &AwsClient,
    target: &Target,
    name_or_id: &str,
) -> Result<Option<Value>, DeployError> {
    match client
        .call(
            target,
            "cloudformation",
            "DescribeStacks",
            json!({"StackName": name_or_id}),
        )
        .await
    {
        Ok(out) => Ok(out
            .get("Stacks")
            .and_then(Value::as_array)
            .and_then(|s| s.first())
            .cloned()),
        Err(e) if is_absent(&e) => Ok(None),
        Err(e) => Err(DeployError::call(name_or_id, "DescribeStacks", e)),
    }
}

/// Whether the deployed stack has the spec's template body, parameters and tags.
async fn deployed_is(
    client: &AwsClient,
    target: &Target,
    stack: &Value,
    spec: &StackSpec,
) -> Result<bool, DeployError> {
    let tags: BTreeMap<String, String> = stack
        .get("Tags")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .filter_map(|t| Some((str_of(t, "Key"), t.get("Value")?.as_str()?.to_string())))
        .collect();
    let empty = json!([]);
    let params = stack.get("Parameters").unwrap_or(&empty);
    if tags != spec.tags || !parameters_match(params, &spec.parameters, &spec.template_body) {
        return Ok(false);
    }
    let deployed = cfn(
        client,
        target,
        &spec.name,
        "GetTemplate",
        json!({"StackName": str_of(stack, "StackId"), "TemplateStage": "Original"}),
    )
    .await?;
    Ok(deployed.get("TemplateBody").and_then(Value::as_str) == Some(spec.template_body.as_str()))
}

/// Creates a change set and waits for it: `Some((change set id, stack id, changes))`, or
/// `None` when CloudFormation found nothing to change (the change set is deleted).
async fn make_change_set(
    client: &AwsClient,
    target: &Target,
    spec: &StackSpec,
    change_set_type: &'static str,
    opts: &DeployOptions,
) -> Result<Option<(String, String, Vec<Change>)>, DeployError> {
    let name = spec.name.as_str();
    let millis = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or_default();
    let mut params = json!({
        "StackName": name,
        "ChangeSetName": format!("orgop-{millis}"),
        "ChangeSetType": change_set_type,
        "Description": "orgop deploy",
        "Parameters": parameter_list(&spec.parameters),
        "Capabilities": spec.capabilities,
        "Tags": tag_list(&spec.tags),
    });
    match &spec.template_url {
        Some(url) => params["TemplateURL"] = json!(url),
        None => params["TemplateBody"] = json!(spec.template_body),
    }
    let created = cfn(client, target, name, "CreateChangeSet", params).await?;
    let id = str_of(&created, "Id");
    let stack_id = str_of(&created, "StackId");
    if id.is_empty() {
        return Err(DeployError::Unexpected {
            name: name.to_string(),
            operation: "CreateChangeSet",
            missing: "a change set id",
        });
    }
    cfn_waiter(
        client,
        target,
        "ChangeSetCreateComplete",
        json!({"ChangeSetName": id}),
        opts.change_set_timeout,
    )
    .await
    .map_err(|e| DeployError::call(name, "DescribeChangeSet", e))?;
    let described = client
        .paginate_all(
            target,
            "cloudformation",
            "DescribeChangeSet",
            json!({"ChangeSetName": id}),
        )
        .await
        .map_err(|e| DeployError::call(name, "DescribeChangeSet", e))?;
    match str_of(&described, "Status").as_str() {
        "CREATE_COMPLETE" => {}
        "FAILED" => {
            let reason = str_of(&described, "StatusReason");
            if reason.contains("didn't contain changes")
                || reason.contains("No updates are to be performed")
            {
                cfn(
                    client,
                    target,
                    name,
                    "DeleteChangeSet",
                    json!({"ChangeSetName": id}),
                )
                .await?;
                return Ok(None);
            }
            return Err(DeployError::ChangeSetFailed {
                stack: name.to_string(),
                change_set: id,
                reason,
            });
        }
        _ => {
            return Err(DeployError::Timeout {
                waiting_for: format!("change set {id} of stack {name}"),
                limit_name: "change_set_timeout",
                limit: opts.change_set_timeout,
            });
        }
    }
    let changes = described
        .get("Changes")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .filter_map(|c| c.get("ResourceChange"))
        .map(|rc| Change {
            action: str_of(rc, "Action"),
            logical_id: str_of(rc, "LogicalResourceId"),
            resource_type: str_of(rc, "ResourceType"),
            replacement: rc
                .get("Replacement")
                .and_then(Value::as_str)
                .map(str::to_string),
        })
        .collect();
    let stack_id = if stack_id.is_empty() {
        str_of(&described, "StackId")
    } else {
        stack_id
    };
    Ok(Some((id, stack_id, changes)))
}

/// Executes the change set and waits for the stack to settle.
async fn execute(
    client: &AwsClient,
    target: &Target,
    name: &str,
    stack_id: &str,
    change_set: &str,
    change_set_type: &str,
    opts: &DeployOptions,
) -> Result<(), DeployError> {
    let stack_ref = if stack_id.is_empty() { name } else { stack_id };
    if let Err(e) = client
        .call(
            target,
            "cloudformation",
            "ExecuteChangeSet",
            json!({"ChangeSetName": change_set}),
        )
        .await
    {
        // Refused outright (moto reports template errors here, AWS e.g. a change set that
        // went stale): the stack failed with the service's own words as the first reason.
        let Some(answer) = e.aws_error().filter(|_| matches!(e, CallError::Api(_))) else {
            return Err(DeployError::call(name, "ExecuteChangeSet", e));
        };
        let stack = describe_stack(client, target, stack_ref).await?;
        let status = stack
            .as_ref()
            .map(|s| str_of(s, "StackStatus"))
            .unwrap_or_default();
        let mut reasons = vec![format!(
            "ExecuteChangeSet: {}: {}",
            answer.code, answer.message
        )];
        reasons.extend(stack_failure_reasons(client, target, stack_ref).await?);
        return Err(DeployError::StackFailed {
            stack: name.to_string(),
            status,
            reasons,
        });
    }
    let (waiter, done) = if change_set_type == "CREATE" {
        ("StackCreateComplete", "CREATE_COMPLETE")
    } else {
        ("StackUpdateComplete", "UPDATE_COMPLETE")
    };
    settle(client, target, name, stack_ref, waiter, done, opts).await
}

/// Waits with `waiter`, then reads the stack's status: `done` is success, `*_IN_PROGRESS`
/// a timeout, anything else a failure with the stack events' reasons.
async fn settle(
    client: &AwsClient,
    target: &Target,
    name: &str,
    stack_ref: &str,
    waiter: &str,
    done: &str,
    opts: &DeployOptions,
) -> Result<(), DeployError> {
    cfn_waiter(
        client,
        target,
        waiter,
        json!({"StackName": stack_ref}),
        opts.stack_timeout,
    )
    .await
    .map_err(|e| DeployError::call(name, "DescribeStacks", e))?;
    let stack = describe_stack(client, target, stack_ref).await?;
    let status = stack
        .as_ref()
        .map(|s| str_of(s, "StackStatus"))
        .unwrap_or_else(|| "DELETE_COMPLETE".to_string());
    if status == done {
        return Ok(());
    }
    if status.ends_with("_IN_PROGRESS") {
        return Err(DeployError::Timeout {
            waiting_for: format!("stack {name} ({status})"),
            limit_name: "stack_timeout",
            limit: opts.stack_timeout,
        });
    }
    let mut reasons = stack_failure_reasons(client, target, stack_ref).await?;
    if reasons.is_empty()
        && let Some(r) = stack
            .as_ref()
            .and_then(|s| s.get("StackStatusReason"))
            .and_then(Value::as_str)
    {
        reasons.push(r.to_string());
    }
    Err(DeployError::StackFailed {
        stack: name.to_string(),
        status,
        reasons,
    })
}

/// Deletes a stack in `ROLLBACK_COMPLETE` and waits until it is gone.
async fn delete_rolled_back(
    client: &AwsClient,
    target: &Target,
    name: &str,
    stack_id: &str,
    opts: &DeployOptions,
) -> Result<(), DeployError> {
    cfn(
        client,
        target,
        name,
        "DeleteStack",
        json!({"StackName": stack_id}),
    )
    .await?;
    settle(
        client,
        target,
        name,
        stack_id,
        "StackDeleteComplete",
        "DELETE_COMPLETE",
        opts,
    )
    .await
}

/// Pages of stack events read at most to find the start of the last operation.
const MAX_EVENT_PAGES: usize = 20;

/// The failure reasons of the stack's last operation, newest first (see
/// [`failure_reasons`]).
async fn stack_failure_reasons(
    client: &AwsClient,
    target: &Target,
    stack_ref: &str,
) -> Result<Vec<String>, DeployError> {
    let mut events = Vec::new();
    let pages = client.pages(
        target,
        "cloudformation",
        "DescribeStackEvents",
        json!({"StackName": stack_ref}),
    );
    let mut pages = std::pin::pin!(pages.take(MAX_EVENT_PAGES));
    while let Some(page) = pages.next().await {
        let page = match page {
            Ok(p) => p,
            Err(e) if is_absent(&e) => break,
            Err(e) => return Err(DeployError::call(stack_ref, "DescribeStackEvents", e)),
        };
        let batch = page
            .get("StackEvents")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let started = batch.iter().any(is_operation_start);
        events.extend(batch);
        if started {
            break;
        }
    }
    Ok(failure_reasons(&events))
}

/// The event that starts a stack operation: the stack's own `*_IN_PROGRESS` with reason
/// `User Initiated`.
fn is_operation_start(e: &Value) -> bool {
    str_of(e, "ResourceType") == "AWS::CloudFormation::Stack"
        && str_of(e, "ResourceStatus").ends_with("_IN_PROGRESS")
        && str_of(e, "ResourceStatusReason") == "User Initiated"
}

/// CloudFormation's reasons for a failed operation from its stack events (newest first, as
/// DescribeStackEvents answers them), down to the event that started the operation: each
/// `*_FAILED` event with a reason, as `LogicalId (Type) STATUS: reason`, newest first.
pub fn failure_reasons(events: &[Value]) -> Vec<String> {
    let mut reasons = Vec::new();
    for e in events {
        let status = str_of(e, "ResourceStatus");
        let reason = str_of(e, "ResourceStatusReason");
        if status.ends_with("_FAILED") && !reason.is_empty() {
            reasons.push(format!(
                "{} ({}) {status}: {reason}",
                str_of(e, "LogicalResourceId"),
                str_of(e, "ResourceType")
            ));
        }
        if is_operation_start(e) {
            break;
        }
    }
    reasons
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(logical: &str, ty: &str, status: &str, reason: &str) -> Value {
        json!({"LogicalResourceId": logical, "ResourceType": ty, "ResourceStatus": status, "ResourceStatusReason": reason})
    }

    #[test]
    fn reasons_are_the_failed_events_of_the_last_operation_newest_first() {
        let stack = "AWS::CloudFormation::Stack";
        let events = [
            ev("ops", stack, "ROLLBACK_COMPLETE", ""),
            ev("Queue", "AWS::SQS::Queue", "DELETE_COMPLETE", ""),
            ev(
                "ops",
                stack,
                "ROLLBACK_IN_PROGRESS",
                "The following resource(s) failed to create: [Role, Queue].",
            ),
            ev(
                "Queue",
                "AWS::SQS::Queue",
                "CREATE_FAILED",
                "Resource creation cancelled",
            ),
            ev(
                "Role",
                "AWS::IAM::Role",
                "CREATE_FAILED",
                "Role name too long",
            ),
            ev("Role", "AWS::IAM::Role", "CREATE_IN_PROGRESS", ""),
            ev("ops", stack, "CREATE_IN_PROGRESS", "User Initiated"),
            // An earlier operation's failure is not this one's.
            ev("Old", "AWS::SNS::Topic", "CREATE_FAILED", "old"),
        ];
        assert_eq!(
            failure_reasons(&events),
            [
                "Queue (AWS::SQS::Queue) CREATE_FAILED: Resource creation cancelled",
                "Role (AWS::IAM::Role) CREATE_FAILED: Role name too long",
            ]
        );
    }
}
