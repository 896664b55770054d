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

use orgop_plan::contract::{self, fields};
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
}

const LAMBDA_INVOKE: &str = "arn:aws:states:::lambda:invoke";
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
    json!({
        "Comment": format!("orgop runbook {} v{} from {}", plan.runbook, plan.version, plan.source),
        "StartAt": states::FANOUT,
        "States": {
            states::FANOUT: fanout(l),
            states::FANOUT_FAILED: fanout_failed(l),
            states::LOCK_HELD: lock_held(l),
            states::MAP: map(l),
            states::RESULTS: results(l),
            states::ALL_ITEMS_OK: all_items_ok(l),
            states::ITEMS_FAILED: items_failed(l),
            states::DONE: done(l)
        }
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
fn map(l: &Lowered) -> Value {
    let distributed = distributed(l);
    let mut map = json!({
        "Type": "Map",
        "Comment": format!(
            "{} one worker per account x region ({} Map); shared data and plan hoisted here once",
            at(l, "steps"),
            if distributed { "distributed" } else { "inline" }
        ),
        "ItemSelector": item_selector(l),
        "MaxConcurrency": l.concurrency,
        "ItemProcessor": {
            "ProcessorConfig": processor_config(distributed),
            "StartAt": states::WORKER,
            "States": {
                states::WORKER: worker(l),
                states::RECORD_FAILURE: record_failure(l),
                states::RECORD_FAILURE_CODE: record_failure_code(l)
            }
        },
        "Next": states::RESULTS
    });
    if distributed {
        map["ItemReader"] = item_reader();
        map["ResultWriter"] = result_writer(&l.plan.runbook);
        map["ToleratedFailurePercentage"] = json!(l.tolerated_failure_percentage);
        map["Label"] = json!("Accounts");
        map["ResultPath"] = json!(path(map_output(l)));
    } else {
        map["ItemsPath"] = json!(path(fields::ITEMS));
        // The summaries replace the items: the payload shrinks rather than grows.
        map["ResultPath"] = json!(path(map_output(l)));
    }
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
fn item_selector(l: &Lowered) -> Value {
    json!({
        contract::HANDLER: contract::WORKER,
        "item.$": "$$.Map.Item.Value",
        "run.$": path(fields::RUN),
        "shared": Value::Object(l.shared.clone().into_iter().collect()),
        "plan": serde_json::to_value(&l.plan).expect("plan serializes")
    })
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
fn result_writer(runbook: &str) -> Value {
    json!({
        "Resource": "arn:aws:states:::s3:putObject",
        "Parameters": {"Bucket": "${ResultsBucket}", "Prefix": format!("orgop/{runbook}/map-results")}
    })
}

/// The worker task, commented with the calls it makes.
fn worker(l: &Lowered) -> Value {
    json!({
        "Type": "Task",
        "Comment": worker_comment(l),
        "Resource": LAMBDA_INVOKE,
        "Parameters": {"FunctionName": FUNCTION, "Payload.$": "$"},
        "OutputPath": "$.Payload",
        "Retry": [lambda_retry(), orgop_retry()],
        "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": states::RECORD_FAILURE}],
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
fn record_failure(l: &Lowered) -> Value {
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
        "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.record_error", "Next": states::RECORD_FAILURE_CODE}],
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
