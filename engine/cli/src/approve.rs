//! `orgop approve EXECUTION` / `orgop reject EXECUTION --reason TEXT`: answer the approval a
//! deployed runbook with `approval` waits for.
//!
//! The approval handler stored the task token in the results table (item `#approval` of the
//! execution); this reads it there (the token is never typed or shown), answers the task
//! (`states:SendTaskSuccess` with the approved plan and its digest, or `states:SendTaskFailure`
//! with `OrgOp.Rejected` and the reason), then marks the item approved or rejected.
//!
//! Refuses (exit 2), with nothing sent, when no approval is pending for the execution, when it
//! was already answered, or when its time is up; and when Step Functions says the task no
//! longer waits (answered meanwhile, timed out, or the execution ended).
use crate::{EXIT_OK, EXIT_USAGE, out};
use aws_sdk_dynamodb::types::AttributeValue as A;
use clap::Args;
use orgop_plan::contract::{Approved, S3Location, approval_item as f};
use orgop_vocab::Code;
use std::collections::HashMap;

/// Shown after `orgop approve --help` and `orgop reject --help`.
pub const AFTER_HELP: &str = "\
The results table is --results-table, else ORGOP_RESULTS_TABLE: the operations stack's output
ResultsTableName. Credentials, region and endpoints come from the standard chain
(AWS_PROFILE, AWS_REGION, AWS_ENDPOINT_URL, AWS_ENDPOINT_URL_SFN, ...); the region defaults to
the execution ARN's. The caller needs dynamodb:GetItem and dynamodb:UpdateItem on the results
table and states:SendTaskSuccess / states:SendTaskFailure.

Exit status: 0 the answer was delivered; 2 usage, no approval pending, already answered,
timed out, or an AWS error (nothing was delivered).";

/// The longest `--reason` (it becomes the execution's failure cause, at most 32 KB).
pub const MAX_REASON_CHARS: usize = 2000;

#[derive(Args, Debug)]
pub struct DecisionArgs {
    /// The execution's ARN (`orgop start` prints it; the approval request names it).
    #[arg(value_name = "EXECUTION_ARN")]
    execution: String,
    /// Why (kept with the decision; a rejection's reason is the execution's failure cause).
    #[arg(long, value_name = "TEXT")]
    reason: Option<String>,
    /// The results table (default: ORGOP_RESULTS_TABLE).
    #[arg(long, value_name = "NAME")]
    results_table: Option<String>,
    /// Region (default: the execution ARN's).
    #[arg(long)]
    region: Option<String>,
    /// Endpoint for every request (else AWS_ENDPOINT_URL[_SFN|_DYNAMODB]).
    #[arg(long, value_name = "URL")]
    endpoint_url: Option<String>,
    /// `text` or `json` (the decision on stdout).
    #[arg(long, default_value = "text", value_parser = ["text", "json"])]
    format: String,
}

/// `orgop approve`.
pub fn approve(a: DecisionArgs) -> std::io::Result<u8> {
    decide(a, true)
}

/// `orgop reject`.
pub fn reject(a: DecisionArgs) -> std::io::Result<u8> {
    decide(a, false)
}

fn refuse(message: impl std::fmt::Display) -> std::io::Result<u8> {
    eprintln!("orgop: {message}");
    Ok(EXIT_USAGE)
}

fn text(item: &HashMap<String, A>, name: &str) -> Option<String> {
    match item.get(name) {
        Some(A::S(s)) => Some(s.clone()),
        Some(A::N(n)) => Some(n.clone()),
        _ => None,
    }
}

fn sdk_message<E, R>(operation: &str, e: &aws_sdk_sfn::error::SdkError<E, R>) -> String
where
    E: aws_sdk_sfn::error::ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    match e.code() {
        Some(code) => format!("{operation}: {code}: {}", e.message().unwrap_or_default()),
        None => format!(
            "{operation}: {}",
            aws_sdk_sfn::error::DisplayErrorContext(e)
        ),
    }
}

use aws_sdk_sfn::error::ProvideErrorMetadata as _;

fn decide(a: DecisionArgs, approve: bool) -> std::io::Result<u8> {
    let verb = if approve { "approve" } else { "reject" };
    let Some(table) = a
        .results_table
        .clone()
        .or_else(|| std::env::var("ORGOP_RESULTS_TABLE").ok())
        .filter(|t| !t.is_empty())
    else {
        return refuse(
            "name the results table: --results-table NAME or ORGOP_RESULTS_TABLE (the operations stack's output ResultsTableName)",
        );
    };
    if !a.execution.starts_with("arn:") || !a.execution.contains(":execution:") {
        return refuse(format!(
            "`{}` is not an execution ARN (arn:aws:states:REGION:ACCOUNT:execution:MACHINE:NAME)",
            a.execution
        ));
    }
    let reason = a.reason.clone().unwrap_or_default();
    if !approve && reason.trim().is_empty() {
        return refuse("a rejection needs its reason: --reason TEXT");
    }
    if reason.chars().count() > MAX_REASON_CHARS {
        return refuse(format!(
            "--reason is longer than {MAX_REASON_CHARS} characters (MAX_REASON_CHARS): shorten it"
        ));
    }
    let Some(rt) = crate::runtime() else {
        return Ok(EXIT_USAGE);
    };
    rt.block_on(async {
        let explicit = a
            .region
            .clone()
            .or_else(|| a.execution.split(':').nth(3).map(str::to_string));
        let sdk = crate::sdk_config(explicit, a.endpoint_url.as_deref()).await;
        let dynamo = aws_sdk_dynamodb::Client::new(&sdk);
        let key = || {
            HashMap::from([
                ("execution".to_string(), A::S(a.execution.clone())),
                ("item".to_string(), A::S(f::ITEM.to_string())),
            ])
        };
        let got = match dynamo
            .get_item()
            .table_name(&table)
            .set_key(Some(key()))
            .consistent_read(true)
            .send()
            .await
        {
            Ok(g) => g,
            Err(e) => {
                let m = match e.code() {
                    Some(code) => format!(
                        "dynamodb:GetItem on {table}: {code}: {}",
                        e.message().unwrap_or_default()
                    ),
                    None => format!(
                        "dynamodb:GetItem on {table}: {}",
                        aws_sdk_dynamodb::error::DisplayErrorContext(&e)
                    ),
                };
                return refuse(m);
            }
        };
        let Some(item) = got.item() else {
            return refuse(format!(
                "no approval is pending for {}: its state machine has not asked for one (it asks after the plan phase, and only when the execution applies a runbook with `approval`), or the results table {table} is not its",
                a.execution
            ));
        };
        let state = text(item, f::STATE).unwrap_or_default();
        if state != f::PENDING {
            return refuse(format!(
                "the approval of {} was already answered ({state}): nothing sent",
                a.execution
            ));
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let deadline: u64 = text(item, f::DEADLINE)
            .and_then(|d| d.parse().ok())
            .unwrap_or(u64::MAX);
        if now > deadline {
            return refuse(format!(
                "the approval of {} timed out {} s ago: the execution ended {} with nothing applied",
                a.execution,
                now - deadline,
                Code::ApprovalTimedOut.name()
            ));
        }
        let (Some(token), Some(bucket), Some(plan_key), Some(digest)) = (
            text(item, f::TOKEN),
            text(item, f::PLAN_BUCKET),
            text(item, f::PLAN_KEY),
            text(item, f::DIGEST),
        ) else {
            return refuse(format!(
                "the approval item of {} in {table} lacks its token or plan: not orgop's",
                a.execution
            ));
        };
        let actions = text(item, f::ACTIONS).unwrap_or_default();
        let approver = match aws_sdk_sts::Client::new(&sdk)
            .get_caller_identity()
            .send()
            .await
        {
            Ok(me) => me.arn().unwrap_or_default().to_string(),
            Err(_) => String::new(),
        };
        let sfn = aws_sdk_sfn::Client::new(&sdk);
        let sent = if approve {
            let output = Approved {
                plan: S3Location {
                    bucket: bucket.clone(),
                    key: plan_key.clone(),
                },
                digest: digest.clone(),
                approver: approver.clone(),
                reason: a.reason.clone(),
            };
            sfn.send_task_success()
                .task_token(&token)
                .output(serde_json::to_string(&output).expect("the approval serializes"))
                .send()
                .await
                .map(|_| ())
                .map_err(|e| {
                    (
                        e.code().map(str::to_string),
                        sdk_message("states:SendTaskSuccess", &e),
                    )
                })
        } else {
            let by = if approver.is_empty() {
                String::new()
            } else {
                format!(" by {approver}")
            };
            sfn.send_task_failure()
                .task_token(&token)
                .error(Code::Rejected.name())
                .cause(format!("rejected{by}: {reason}"))
                .send()
                .await
                .map(|_| ())
                .map_err(|e| {
                    (
                        e.code().map(str::to_string),
                        sdk_message("states:SendTaskFailure", &e),
                    )
                })
        };
        if let Err((code, message)) = sent {
            if matches!(
                code.as_deref(),
                Some("TaskTimedOut" | "TaskDoesNotExist" | "InvalidToken")
            ) {
                return refuse(format!(
                    "{message}: the execution no longer waits for this approval (answered meanwhile, timed out, or ended): nothing applied by this {verb}"
                ));
            }
            return refuse(message);
        }
        let decided = if approve { "approved" } else { "rejected" };
        let marked = dynamo
            .update_item()
            .table_name(&table)
            .set_key(Some(key()))
            .update_expression("SET #s = :d, decided_by = :by, decided_at = :at, reason = :r")
            .condition_expression("#s = :p")
            .expression_attribute_names("#s", f::STATE)
            .expression_attribute_values(":d", A::S(decided.into()))
            .expression_attribute_values(":p", A::S(f::PENDING.into()))
            .expression_attribute_values(":by", A::S(approver.clone()))
            .expression_attribute_values(":at", A::N(now.to_string()))
            .expression_attribute_values(":r", A::S(reason.clone()))
            .send()
            .await;
        if let Err(e) = marked {
            eprintln!(
                "orgop: warning: the answer was delivered, but the approval item could not be marked {decided}: {}",
                aws_sdk_dynamodb::error::DisplayErrorContext(&e)
            );
        }
        let plan_uri = format!("s3://{bucket}/{plan_key}");
        if a.format == "json" {
            out::println(&orgop_plan::canonical::to_string(&serde_json::json!({
                "execution": a.execution,
                "decision": decided,
                "plan": plan_uri,
                "digest": digest,
                "actions": actions.parse::<u64>().unwrap_or(0),
                "approver": approver,
                "reason": a.reason,
            })))?;
        } else if approve {
            eprintln!(
                "approved {}: its workers now apply the {actions} planned actions of {plan_uri} (digest {digest}), each re-read first",
                a.execution
            );
        } else {
            eprintln!(
                "rejected {}: it ends {} with nothing applied",
                a.execution,
                Code::Rejected.name()
            );
        }
        Ok(EXIT_OK)
    })
}
