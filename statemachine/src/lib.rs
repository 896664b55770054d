//! Lowered runbook -> Amazon States Language.
//!
//! The shape, always the same (state names are fixed, so dashboards and alarms can rely on
//! them):
//!
//! ```text
//! Fanout (Task: orgop Lambda, handler "fanout") --Catch OrgOp.LockHeld--> LockHeld (Fail)
//!                                                --Catch--> FanoutFailed (Fail)
//!   -> Accounts (Map, inline or distributed; ItemSelector = item + run + shared + plan)
//!        Worker (Task: orgop Lambda, handler "worker") --Catch--> RecordFailure (Task: orgop
//!          Lambda, handler "failure": the error's name and a bounded cause)
//!          --Catch--> RecordFailureCode (Pass: the error's name only)
//!   -> Results (Task: orgop Lambda, handler "results")
//!   -> AllItemsOk (Choice) -> Done (Succeed) | ItemsFailed (Fail)
//! ```
//!
//! A runbook with `approval` adds, for executions whose input has `apply: true`, a plan
//! phase and a wait for a person before the same Map applies:
//!
//! ```text
//! Fanout -> ApplyRequested (Choice: $.run.apply?) --no--> Accounts (a dry run, as above)
//!   --yes--> PlanAccounts (Map: PlanWorker per item, a dry run storing each planned action
//!              with its element; --Catch--> PlanRecordFailure --Catch--> PlanRecordFailureCode)
//!   -> Plan (Task: handler "plan": the plan file, orgop-change-plan/1, to S3)
//!   -> AnythingPlanned (Choice) --no--> NothingToApprove (Pass: apply off) -> Accounts
//!   -> Approval (Task: lambda:invoke.waitForTaskToken, handler "approval": stores the task
//!        token, publishes the plan's summary and link; TimeoutSeconds from the runbook)
//!        --Catch--> ReleaseLock (Task: handler "release": the fanout's apply lock is let go)
//!        -> ApprovalEnded (Choice) --States.Timeout--> ApprovalTimedOut (Fail)
//!        --OrgOp.Rejected--> Rejected (Fail, the reviewer's reason as its cause)
//!        --other--> ApprovalFailed (Fail)
//!   -> Accounts (the workers apply only the approved plan's actions, each re-read first)
//!   -> Results -> ...
//! ```
//!
//! Guarantees:
//! - deterministic: the same lowered runbook gives the same bytes ([`to_json`] sorts keys);
//! - the runbook's `shared` data and plan appear once, as literals in the Map's
//!   `ItemSelector`; the per-item payload (the fanout's items) holds only account and region;
//! - one item's failure is caught and recorded as a summary, never failing the Map; the
//!   record is bounded (a caught `Cause` can be 32 KB; the record keeps at most
//!   [`orgop_plan::contract::MESSAGE_BYTES`] of it), so 500 failed items of an inline Map stay
//!   below the 256 KiB payload limit;
//! - the result handler gets what it needs to account for every item: the item summaries
//!   (inline), or where the items and the `ResultWriter`'s manifest are (distributed);
//! - error names in `Retry`/`Catch` come from [`orgop_plan::WorkerError`], the same names the
//!   Lambda raises;
//! - ARNs are `${...}` placeholders for CloudFormation `DefinitionSubstitutions`
//!   ([`SUBSTITUTIONS`]);
//! - every state has a `Comment` naming the runbook file and line it comes from.
//!
//! This crate never links the AWS SDK: compiling is fast and offline.
#![deny(missing_docs)]

use orgop_plan::contract::{self, Phase, fields};
use orgop_plan::{LAMBDA_TRANSIENT_ERRORS, Lowered, MapKind, WorkerError};
use orgop_vocab::Code;
use serde_json::{Value, json};

/// Placeholders the definition uses, with what each must be substituted with.
pub const SUBSTITUTIONS: [(&str, &str); 2] = [
    (
        "OrgOpFunctionArn",
        "ARN of the orgop Lambda function (fanout, worker and results handlers)",
    ),
    (
        "ResultsBucket",
        "S3 bucket for distributed Map items and results",
    ),
];

/// Fixed state names.
pub mod states {
    /// Lists accounts x regions.
    pub const FANOUT: &str = "Fanout";
    /// Ends the run when the fanout fails.
    pub const FANOUT_FAILED: &str = "FanoutFailed";
    /// Ends an applying run refused by the apply lock: another applier holds it.
    pub const LOCK_HELD: &str = "LockHeld";
    /// Runs the worker per item.
    pub const MAP: &str = "Accounts";
    /// The worker task.
    pub const WORKER: &str = "Worker";
    /// Turns a caught worker failure into a summary with a bounded cause.
    pub const RECORD_FAILURE: &str = "RecordFailure";
    /// When recording the failure fails too: a summary with the error's name only.
    pub const RECORD_FAILURE_CODE: &str = "RecordFailureCode";
    /// Writes CSV/JSONL and notifies.
    pub const RESULTS: &str = "Results";
    /// Routes on the summary.
    pub const ALL_ITEMS_OK: &str = "AllItemsOk";
    /// Some items were denied, failed or lost.
    pub const ITEMS_FAILED: &str = "ItemsFailed";
    /// Every item ran.
    pub const DONE: &str = "Done";
    /// Approval runbooks: does the execution apply?
    pub const APPLY_REQUESTED: &str = "ApplyRequested";
    /// Approval runbooks: the plan phase's Map.
    pub const PLAN_MAP: &str = "PlanAccounts";
    /// The plan phase's worker task.
    pub const PLAN_WORKER: &str = "PlanWorker";
    /// The plan phase's failure recorder.
    pub const PLAN_RECORD_FAILURE: &str = "PlanRecordFailure";
    /// The plan phase's failure recorder of last resort.
    pub const PLAN_RECORD_FAILURE_CODE: &str = "PlanRecordFailureCode";
    /// Writes the plan file.
    pub const PLAN: &str = "Plan";
    /// Routes on the planned actions' count.
    pub const ANYTHING_PLANNED: &str = "AnythingPlanned";
    /// No planned action: the run goes on as a dry run.
    pub const NOTHING_TO_APPROVE: &str = "NothingToApprove";
    /// Waits for `orgop approve` / `orgop reject`.
    pub const APPROVAL: &str = "Approval";
    /// Nobody answered in time.
    pub const APPROVAL_TIMED_OUT: &str = "ApprovalTimedOut";
    /// `orgop reject`.
    pub const REJECTED: &str = "Rejected";
    /// The approval task failed otherwise.
    pub const APPROVAL_FAILED: &str = "ApprovalFailed";
    /// Not approved: the apply lock is released before the ending.
    pub const RELEASE_LOCK: &str = "ReleaseLock";
    /// Which ending a caught approval error leads to.
    pub const APPROVAL_ENDED: &str = "ApprovalEnded";
}

/// The names of a Map's inner states: the run's, or the plan phase's.
#[derive(Clone, Copy)]
struct Inner {
    worker: &'static str,
    record_failure: &'static str,
    record_failure_code: &'static str,
}

const RUN_STATES: Inner = Inner {
    worker: states::WORKER,
    record_failure: states::RECORD_FAILURE,
    record_failure_code: states::RECORD_FAILURE_CODE,
};

const PLAN_STATES: Inner = Inner {
    worker: states::PLAN_WORKER,
    record_failure: states::PLAN_RECORD_FAILURE,
    record_failure_code: states::PLAN_RECORD_FAILURE_CODE,
};

const LAMBDA_INVOKE: &str = "arn:aws:states:::lambda:invoke";
const LAMBDA_INVOKE_WAIT: &str = "arn:aws:states:::lambda:invoke.waitForTaskToken";
const FUNCTION: &str = "${OrgOpFunctionArn}";

fn lambda_retry() -> Value {
    json!({
        "ErrorEquals": LAMBDA_TRANSIENT_ERRORS,
        "IntervalSeconds": 2,
        "MaxAttempts": 3,
        "BackoffRate": 2
    })
}

fn orgop_retry() -> Value {
    let names: Vec<&str> = WorkerError::ALL
        .into_iter()
        .filter(|e| e.retryable())
        .map(WorkerError::name)
        .collect();
    json!({
        "ErrorEquals": names,
        "IntervalSeconds": 5,
        "MaxAttempts": 4,
        "BackoffRate": 2,
        "MaxDelaySeconds": 60,
        "JitterStrategy": "FULL"
    })
}

fn path(field: &str) -> String {
    format!("$.{field}")
}

/// Compiles a lowered runbook to an ASL definition.
pub fn compile(l: &Lowered) -> Value {
    let plan = &l.plan;
    let mut definition = json!({
        "Comment": format!("orgop runbook {} v{} from {}", plan.runbook, plan.version, plan.source),
        "StartAt": states::FANOUT,
        "States": {
            states::FANOUT: fanout(l),
            states::FANOUT_FAILED: fanout_failed(l),
            states::LOCK_HELD: lock_held(l),
            states::MAP: map(l, None),
            states::RESULTS: results(l),
            states::ALL_ITEMS_OK: all_items_ok(l),
            states::ITEMS_FAILED: items_failed(l),
            states::DONE: done(l)
        }
    });
    if let Some(approval) = &l.approval {
        let s = &mut definition["States"];
        s[states::FANOUT]["Next"] = json!(states::APPLY_REQUESTED);
        s[states::MAP] = map(l, Some(Phase::Apply));
        s[states::APPLY_REQUESTED] = apply_requested(l);
        s[states::PLAN_MAP] = map(l, Some(Phase::Plan));
        s[states::PLAN] = plan_state(l);
        s[states::ANYTHING_PLANNED] = anything_planned(l);
        s[states::NOTHING_TO_APPROVE] = nothing_to_approve(l);
        s[states::APPROVAL] = approval_state(l, approval.timeout_seconds);
        s[states::APPROVAL_TIMED_OUT] = approval_timed_out(l, approval.timeout_seconds);
        s[states::REJECTED] = rejected(l);
        s[states::APPROVAL_FAILED] = approval_failed(l);
        s[states::RELEASE_LOCK] = release_lock(l);
        s[states::APPROVAL_ENDED] = approval_ended(l);
    }
    definition
}

/// Where the plan handler's answer goes: `$.change.plan`.
const CHANGE: &str = "change";
/// Where a caught approval failure goes.
const APPROVAL_ERROR: &str = "approval_error";

fn apply_requested(l: &Lowered) -> Value {
    json!({
        "Type": "Choice",
        "Comment": format!("{} approval: an execution that applies plans first and waits for `orgop approve`", at(l, "approval")),
        "Choices": [{
            "Variable": format!("$.{}.apply", fields::RUN),
            "BooleanEquals": true,
            "Next": states::PLAN_MAP
        }],
        "Default": states::MAP
    })
}

/// Hex SHA-256 of the compiled plan and shared data: what a deployed plan is made from.
fn plan_sha256(l: &Lowered) -> String {
    use sha2::Digest as _;
    let v = json!({"plan": l.plan, "shared": l.shared});
    let text = orgop_plan::canonical::to_string(&v);
    sha2::Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The plan handler: the workers' planned actions -> the plan file in S3, and its summary.
fn plan_state(l: &Lowered) -> Value {
    let plan = &l.plan;
    let mut state = json!({
        "Type": "Task",
        "Comment": format!("{} the change plan (orgop-change-plan/1) to S3: what approval would apply", at(l, "approval")),
        "Resource": LAMBDA_INVOKE,
        "Parameters": {
            "FunctionName": FUNCTION,
            "Payload": {
                contract::HANDLER: contract::PLAN,
                "runbook": plan.runbook,
                "version": plan.version,
                "source": plan.source,
                "sha256": plan_sha256(l),
                "actions": plan.actions.iter().map(|a| a.id.clone()).collect::<Vec<_>>(),
                "run.$": path(fields::RUN),
                "count.$": path(fields::COUNT),
                "execution.$": "$$.Execution.Id"
            }
        },
        "ResultSelector": {"plan.$": "$.Payload"},
        "ResultPath": path(CHANGE),
        "Retry": [lambda_retry(), orgop_retry()],
        "Next": states::ANYTHING_PLANNED
    });
    let listed = if distributed(l) {
        fields::ITEMS_LOCATION
    } else {
        fields::ITEMS
    };
    state["Parameters"]["Payload"][format!("{listed}.$")] = json!(path(listed));
    state
}

fn anything_planned(l: &Lowered) -> Value {
    json!({
        "Type": "Choice",
        "Comment": format!("{} any planned action to approve?", at(l, "approval")),
        "Choices": [{
            "Variable": format!("$.{CHANGE}.plan.actions"),
            "NumericGreaterThan": 0,
            "Next": states::APPROVAL
        }],
        "Default": states::NOTHING_TO_APPROVE
    })
}

fn nothing_to_approve(l: &Lowered) -> Value {
    json!({
        "Type": "Pass",
        "Comment": format!("{} nothing planned: the run goes on as a dry run, nothing to approve", at(l, "approval")),
        "Result": false,
        "ResultPath": format!("$.{}.apply", fields::RUN),
        "Next": states::MAP
    })
}

/// Waits for `orgop approve` / `orgop reject`: the handler stores the task token and
/// publishes the plan's summary; the approval (the plan and its digest) becomes the run's
/// `approved`.
fn approval_state(l: &Lowered, timeout_seconds: u64) -> Value {
    let retry_or_timeout = |error: &str, next: &str| json!({"ErrorEquals": [error], "ResultPath": path(APPROVAL_ERROR), "Next": next});
    json!({
        "Type": "Task",
        "Comment": format!("{} waits up to {} s for `orgop approve` or `orgop reject`", at(l, "approval"), timeout_seconds),
        "Resource": LAMBDA_INVOKE_WAIT,
        "Parameters": {
            "FunctionName": FUNCTION,
            "Payload": {
                contract::HANDLER: contract::APPROVAL,
                "token.$": "$$.Task.Token",
                "runbook": l.plan.runbook,
                "plan.$": format!("$.{CHANGE}.plan"),
                "timeout_seconds": timeout_seconds,
                "execution.$": "$$.Execution.Id"
            }
        },
        "TimeoutSeconds": timeout_seconds,
        "ResultPath": format!("$.{}.approved", fields::RUN),
        "Retry": [lambda_retry(), orgop_retry()],
        "Catch": [
            retry_or_timeout("States.ALL", states::RELEASE_LOCK)
        ],
        "Next": states::MAP
    })
}

/// An approval that ended without approving: the apply lock the fanout took is let go (a
/// failure to do so leaves it to expire), then the ending says why.
fn release_lock(l: &Lowered) -> Value {
    json!({
        "Type": "Task",
        "Comment": format!("{} not approved: the apply lock is released, nothing was applied", at(l, "approval")),
        "Resource": LAMBDA_INVOKE,
        "Parameters": {
            "FunctionName": FUNCTION,
            "Payload": {
                contract::HANDLER: contract::RELEASE,
                "run.$": path(fields::RUN)
            }
        },
        "ResultPath": null,
        "Retry": [lambda_retry(), orgop_retry()],
        "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.release_error", "Next": states::APPROVAL_ENDED}],
        "Next": states::APPROVAL_ENDED
    })
}

/// Which ending a caught approval error leads to.
fn approval_ended(l: &Lowered) -> Value {
    json!({
        "Type": "Choice",
        "Comment": format!("{} timed out, rejected, or failed otherwise", at(l, "approval")),
        "Choices": [
            {"Variable": format!("$.{APPROVAL_ERROR}.Error"), "StringEquals": "States.Timeout", "Next": states::APPROVAL_TIMED_OUT},
            {"Variable": format!("$.{APPROVAL_ERROR}.Error"), "StringEquals": Code::Rejected.name(), "Next": states::REJECTED}
        ],
        "Default": states::APPROVAL_FAILED
    })
}

fn approval_timed_out(l: &Lowered, timeout_seconds: u64) -> Value {
    json!({
        "Type": "Fail",
        "Comment": format!("{} nobody approved or rejected in time", at(l, "approval")),
        "Error": Code::ApprovalTimedOut.name(),
        "Cause": format!("No `orgop approve` or `orgop reject` within {timeout_seconds} s (approval.timeout_hours): nothing was applied.")
    })
}

fn rejected(l: &Lowered) -> Value {
    json!({
        "Type": "Fail",
        "Comment": format!("{} `orgop reject`: nothing was applied; the cause is the reviewer's reason", at(l, "approval")),
        "Error": Code::Rejected.name(),
        "CausePath": format!("$.{APPROVAL_ERROR}.Cause")
    })
}

fn approval_failed(l: &Lowered) -> Value {
    json!({
        "Type": "Fail",
        "Comment": format!("{} the approval task failed (not a rejection, not the timeout): nothing was applied", at(l, "approval")),
        "ErrorPath": format!("$.{APPROVAL_ERROR}.Error"),
        "CausePath": format!("$.{APPROVAL_ERROR}.Cause")
    })
}

/// `file:line:col` of a part of the runbook (`targets`, `steps`, ...), for a state's comment;
/// the runbook's first line when the part is not located.
fn at(l: &Lowered, part: &str) -> String {
    l.at.get(part)
        .cloned()
        .unwrap_or_else(|| format!("{}:1:1", l.plan.source))
}

fn distributed(l: &Lowered) -> bool {
    l.map == MapKind::Distributed
}

/// The Lambda's fanout handler lists accounts x regions: the items inline, or where in S3
/// they are for a distributed Map.
fn fanout(l: &Lowered) -> Value {
    let plan = &l.plan;
    let distributed = distributed(l);
    json!({
        "Type": "Task",
        "Comment": format!("{} targets of runbook {}: list accounts x regions", at(l, "targets"), plan.runbook),
        "Resource": LAMBDA_INVOKE,
        "Parameters": {
            "FunctionName": FUNCTION,
            "Payload": {
                contract::HANDLER: contract::FANOUT,
                "runbook": plan.runbook,
                "targets": serde_json::to_value(&l.targets).expect("targets serialize"),
                "role": serde_json::to_value(&plan.role).expect("role serializes"),
                "params": serde_json::to_value(&plan.params).expect("params serialize"),
                "map": if distributed { "distributed" } else { "inline" },
                "input.$": "$",
                "execution.$": "$$.Execution.Id"
            }
        },
        "ResultSelector": fanout_selector(distributed),
        "Retry": [lambda_retry(), orgop_retry()],
        "Catch": [
            {"ErrorEquals": [WorkerError::LockHeld.name()], "ResultPath": "$.error", "Next": states::LOCK_HELD},
            {"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": states::FANOUT_FAILED}
        ],
        "Next": states::MAP
    })
}

/// What the Map reads from the fanout's result: the run, the item count, and the items or
/// their location.
fn fanout_selector(distributed: bool) -> serde_json::Map<String, Value> {
    let mut selector = serde_json::Map::new();
    selector.insert(format!("{}.$", fields::RUN), json!("$.Payload.run"));
    selector.insert(format!("{}.$", fields::COUNT), json!("$.Payload.count"));
    let listed = if distributed {
        fields::ITEMS_LOCATION
    } else {
        fields::ITEMS
    };
    selector.insert(format!("{listed}.$"), json!(format!("$.Payload.{listed}")));
    selector
}

fn fanout_failed(l: &Lowered) -> Value {
    json!({
        "Type": "Fail",
        "Comment": format!("{} the fanout could not list the targets", at(l, "targets")),
        "Error": Code::FanoutFailed.name(),
        "Cause": "The fanout could not list the target accounts and regions; the Fanout task's error in the execution history says why."
    })
}

/// The execution ends with `OrgOp.LockHeld` and the fanout's message as its cause: who holds
/// the apply lock and when it expires. Nothing was sent.
fn lock_held(l: &Lowered) -> Value {
    json!({
        "Type": "Fail",
        "Comment": format!("{} another applier holds the apply lock of this runbook in the organization: nothing was sent", at(l, "runbook")),
        "Error": Code::LockHeld.name(),
        "CausePath": "$.error.Cause"
    })
}

/// The Map: one worker per item, with the shared data and plan hoisted into its
/// `ItemSelector`; a distributed Map reads its items from and writes its results to S3.
fn map(l: &Lowered, phase: Option<Phase>) -> Value {
    let distributed = distributed(l);
    let planning = phase == Some(Phase::Plan);
    let names = if planning { PLAN_STATES } else { RUN_STATES };
    let what = if planning {
        "the plan phase: a dry run storing each planned action"
    } else {
        "one worker per account x region"
    };
    let mut map = json!({
        "Type": "Map",
        "Comment": format!(
            "{} {what} ({} Map); shared data and plan hoisted here once",
            at(l, "steps"),
            if distributed { "distributed" } else { "inline" }
        ),
        "ItemSelector": item_selector(l, phase),
        "MaxConcurrency": l.concurrency,
        "ItemProcessor": {
            "ProcessorConfig": processor_config(distributed),
            "StartAt": names.worker,
            "States": {
                names.worker: worker(l, names),
                names.record_failure: record_failure(l, names),
                names.record_failure_code: record_failure_code(l)
            }
        },
        "Next": if planning { states::PLAN } else { states::RESULTS }
    });
    if distributed {
        map["ItemReader"] = item_reader();
        let prefix = if planning {
            "plan-map-results"
        } else {
            "map-results"
        };
        map["ResultWriter"] = result_writer(&l.plan.runbook, prefix);
        map["ToleratedFailurePercentage"] = json!(l.tolerated_failure_percentage);
        map["Label"] = json!(if planning { "PlanAccounts" } else { "Accounts" });
    } else {
        map["ItemsPath"] = json!(path(fields::ITEMS));
    }
    // The run's summaries replace the items: the payload shrinks rather than grows. The plan
    // phase's are dropped: the plan handler reads the stored results, and the items stay for
    // the run proper.
    map["ResultPath"] = if planning {
        Value::Null
    } else {
        json!(path(map_output(l)))
    };
    map
}

/// Where the Map puts its results, which the results handler reads: the items' place for an
/// inline Map, the `ResultWriter`'s manifest for a distributed one.
fn map_output(l: &Lowered) -> &'static str {
    if distributed(l) {
        fields::MAP_RESULTS
    } else {
        fields::ITEMS
    }
}

/// Each worker's input: its item, the run, and the runbook's shared data and plan.
fn item_selector(l: &Lowered, phase: Option<Phase>) -> Value {
    let mut selector = json!({
        contract::HANDLER: contract::WORKER,
        "item.$": "$$.Map.Item.Value",
        "run.$": path(fields::RUN),
        "shared": Value::Object(l.shared.clone().into_iter().collect()),
        "plan": serde_json::to_value(&l.plan).expect("plan serializes")
    });
    if let Some(phase) = phase {
        selector["phase"] = serde_json::to_value(phase).expect("a phase serializes");
    }
    selector
}

fn processor_config(distributed: bool) -> Value {
    let mut config = json!({"Mode": if distributed { "DISTRIBUTED" } else { "INLINE" }});
    if distributed {
        config["ExecutionType"] = json!("STANDARD");
    }
    config
}

/// A distributed Map reads the fanout's items from S3.
fn item_reader() -> Value {
    json!({
        "Resource": "arn:aws:states:::s3:getObject",
        "ReaderConfig": {"InputType": "JSON"},
        "Parameters": {
            "Bucket.$": format!("$.{}.bucket", fields::ITEMS_LOCATION),
            "Key.$": format!("$.{}.key", fields::ITEMS_LOCATION)
        }
    })
}

/// A distributed Map writes its results to the results bucket.
fn result_writer(runbook: &str, prefix: &str) -> Value {
    json!({
        "Resource": "arn:aws:states:::s3:putObject",
        "Parameters": {"Bucket": "${ResultsBucket}", "Prefix": format!("orgop/{runbook}/{prefix}")}
    })
}

/// The worker task, commented with the calls it makes.
fn worker(l: &Lowered, names: Inner) -> Value {
    json!({
        "Type": "Task",
        "Comment": worker_comment(l),
        "Resource": LAMBDA_INVOKE,
        "Parameters": {"FunctionName": FUNCTION, "Payload.$": "$"},
        "OutputPath": "$.Payload",
        "Retry": [lambda_retry(), orgop_retry()],
        "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": names.record_failure}],
        "End": true
    })
}

/// The steps, and the actions if any, with their calls and where they are.
fn worker_comment(l: &Lowered) -> String {
    let calls = |list: &[orgop_plan::CallPlan]| -> Vec<String> {
        list.iter()
            .map(|s| format!("{} ({}:{})", s.id, s.service, s.operation))
            .collect()
    };
    let steps = calls(&l.plan.steps);
    let actions = calls(&l.plan.actions);
    let mut comment = format!("{} steps: {}", at(l, "steps"), steps.join(", "));
    if !actions.is_empty() {
        comment.push_str(&format!(
            "; {} actions (only when applied): {}",
            at(l, "actions"),
            actions.join(", ")
        ));
    }
    comment
}

/// A caught worker failure becomes its item's summary, so the Map goes on. The Lambda keeps
/// the error's name and a bounded part of its cause (ASL cannot cut a string).
fn record_failure(l: &Lowered, names: Inner) -> Value {
    json!({
        "Type": "Task",
        "Comment": format!("{} a worker failure is recorded for its item (its cause bounded); the other items go on", at(l, "runbook")),
        "Resource": LAMBDA_INVOKE,
        "Parameters": {
            "FunctionName": FUNCTION,
            "Payload": {
                contract::HANDLER: contract::FAILURE,
                "item.$": "$.item",
                "error.$": "$.error.Error",
                "cause.$": "$.error.Cause"
            }
        },
        "OutputPath": "$.Payload",
        "Retry": [lambda_retry()],
        "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.record_error", "Next": names.record_failure_code}],
        "End": true
    })
}

/// Recording the failure failed too: the summary keeps the worker's error name, never its
/// cause (which can be 32 KB).
fn record_failure_code(l: &Lowered) -> Value {
    json!({
        "Type": "Pass",
        "Comment": format!("{} the failure could not be recorded with its cause: its error name is kept", at(l, "runbook")),
        "Parameters": {
            "account_id.$": "$.item.account_id",
            "region.$": "$.item.region",
            "status": "error",
            "findings": 0,
            "actions": 0,
            "error_code.$": "$.error.Error",
            "error_message": "The worker failed; its cause is in the Worker task's failure event in the execution history."
        },
        "End": true
    })
}

/// The Lambda's results handler writes the report and notifies; its summary feeds the choice.
fn results(l: &Lowered) -> Value {
    let plan = &l.plan;
    let input = map_output(l);
    let mut results = json!({
        "Type": "Task",
        "Comment": format!("{} report of runbook {}: CSV and JSONL to S3, notification", at(l, "report"), plan.runbook),
        "Resource": LAMBDA_INVOKE,
        "Parameters": {
            "FunctionName": FUNCTION,
            "Payload": {
                contract::HANDLER: contract::RESULTS,
                "runbook": plan.runbook,
                "run.$": path(fields::RUN),
                "count.$": path(fields::COUNT),
                "columns": plan.report.columns.iter().map(|c| c.name.clone()).collect::<Vec<_>>(),
                format!("{input}.$"): path(input),
                "execution.$": "$$.Execution.Id"
            }
        },
        "ResultSelector": {format!("{}.$", fields::SUMMARY): "$.Payload"},
        "Retry": [lambda_retry(), orgop_retry()],
        "Next": states::ALL_ITEMS_OK
    });
    if distributed(l) {
        // The item list names the items that neither a result nor a failure accounts for.
        results["Parameters"]["Payload"][format!("{}.$", fields::ITEMS_LOCATION)] =
            json!(path(fields::ITEMS_LOCATION));
    }
    results
}

fn all_items_ok(l: &Lowered) -> Value {
    json!({
        "Type": "Choice",
        "Comment": format!("{} every item ok or skipped?", at(l, "runbook")),
        "Choices": [{
            "Variable": format!("$.{}.{}", fields::SUMMARY, fields::FAILED),
            "NumericGreaterThan": 0,
            "Next": states::ITEMS_FAILED
        }],
        "Default": states::DONE
    })
}

fn items_failed(l: &Lowered) -> Value {
    json!({
        "Type": "Fail",
        "Comment": format!("{} some items ended denied, error or lost; the results say which", at(l, "runbook")),
        "Error": Code::ItemsFailed.name(),
        "Cause": "Some accounts or regions ended denied, error or lost; every item is in the results (results.jsonl)."
    })
}

fn done(l: &Lowered) -> Value {
    json!({
        "Type": "Succeed",
        "Comment": format!("{} every item ran", at(l, "runbook"))
    })
}

/// The definition as deterministic text (sorted keys, final newline).
pub fn to_json(definition: &Value) -> String {
    orgop_plan::canonical::to_string(definition)
}
