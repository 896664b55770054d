//! Lowered runbook -> Amazon States Language.
//!
//! The shape, always the same (state names are fixed, so dashboards and alarms can rely on
//! them):
//!
//! ```text
//! Fanout (Task: orgop Lambda, handler "fanout") --Catch--> FanoutFailed (Fail)
//!   -> Accounts (Map, inline or distributed; ItemSelector = item + run + shared + plan)
//!        Worker (Task: orgop Lambda, handler "worker") --Catch--> RecordFailure (Pass)
//!   -> Results (Task: orgop Lambda, handler "results")
//!   -> AllItemsOk (Choice) -> Done (Succeed) | ItemsFailed (Fail)
//! ```
//!
//! Guarantees:
//! - deterministic: the same lowered runbook gives the same bytes ([`to_json`] sorts keys);
//! - the runbook's `shared` data and plan appear once, as literals in the Map's
//!   `ItemSelector`; the per-item payload (the fanout's items) holds only account and region;
//! - one item's failure is caught and recorded as a summary, never failing the Map;
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
    /// Runs the worker per item.
    pub const MAP: &str = "Accounts";
    /// The worker task.
    pub const WORKER: &str = "Worker";
    /// Turns a caught worker failure into a summary.
    pub const RECORD_FAILURE: &str = "RecordFailure";
    /// Writes CSV/JSONL and notifies.
    pub const RESULTS: &str = "Results";
    /// Routes on the summary.
    pub const ALL_ITEMS_OK: &str = "AllItemsOk";
    /// Some items were denied or failed.
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
    let name = &plan.runbook;
    let at = |part: &str| {
        l.at.get(part)
            .cloned()
            .unwrap_or_else(|| format!("{}:1:1", plan.source))
    };
    let distributed = l.map == MapKind::Distributed;

    let mut fanout_selector = serde_json::Map::new();
    fanout_selector.insert(format!("{}.$", fields::RUN), json!("$.Payload.run"));
    fanout_selector.insert(format!("{}.$", fields::COUNT), json!("$.Payload.count"));
    let listed = if distributed {
        fields::ITEMS_LOCATION
    } else {
        fields::ITEMS
    };
    fanout_selector.insert(format!("{listed}.$"), json!(format!("$.Payload.{listed}")));

    let fanout = json!({
        "Type": "Task",
        "Comment": format!("{} targets of runbook {name}: list accounts x regions", at("targets")),
        "Resource": LAMBDA_INVOKE,
        "Parameters": {
            "FunctionName": FUNCTION,
            "Payload": {
                contract::HANDLER: contract::FANOUT,
                "runbook": name,
                "targets": serde_json::to_value(&l.targets).expect("targets serialize"),
                "role": serde_json::to_value(&plan.role).expect("role serializes"),
                "params": serde_json::to_value(&plan.params).expect("params serialize"),
                "map": if distributed { "distributed" } else { "inline" },
                "input.$": "$",
                "execution.$": "$$.Execution.Id"
            }
        },
        "ResultSelector": fanout_selector,
        "Retry": [lambda_retry(), orgop_retry()],
        "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": states::FANOUT_FAILED}],
        "Next": states::MAP
    });

    let steps: Vec<String> = plan
        .steps
        .iter()
        .map(|s| format!("{} ({}:{})", s.id, s.service, s.operation))
        .collect();
    let actions: Vec<String> = plan
        .actions
        .iter()
        .map(|s| format!("{} ({}:{})", s.id, s.service, s.operation))
        .collect();
    let mut worker_comment = format!("{} steps: {}", at("steps"), steps.join(", "));
    if !actions.is_empty() {
        worker_comment.push_str(&format!(
            "; {} actions (only when applied): {}",
            at("actions"),
            actions.join(", ")
        ));
    }

    let worker = json!({
        "Type": "Task",
        "Comment": worker_comment,
        "Resource": LAMBDA_INVOKE,
        "Parameters": {"FunctionName": FUNCTION, "Payload.$": "$"},
        "OutputPath": "$.Payload",
        "Retry": [lambda_retry(), orgop_retry()],
        "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": states::RECORD_FAILURE}],
        "End": true
    });
    let record_failure = json!({
        "Type": "Pass",
        "Comment": format!("{} a worker failure is recorded for its item; the other items go on", at("runbook")),
        "Parameters": {
            "account_id.$": "$.item.account_id",
            "region.$": "$.item.region",
            "status": "error",
            "findings": 0,
            "actions": 0,
            "error_code.$": "$.error.Error",
            "error_message.$": "$.error.Cause"
        },
        "End": true
    });

    let mut processor_config = json!({"Mode": if distributed { "DISTRIBUTED" } else { "INLINE" }});
    if distributed {
        processor_config["ExecutionType"] = json!("STANDARD");
    }

    let mut map = json!({
        "Type": "Map",
        "Comment": format!(
            "{} one worker per account x region ({} Map); shared data and plan hoisted here once",
            at("steps"),
            if distributed { "distributed" } else { "inline" }
        ),
        "ItemSelector": {
            contract::HANDLER: contract::WORKER,
            "item.$": "$$.Map.Item.Value",
            "run.$": path(fields::RUN),
            "shared": Value::Object(l.shared.clone().into_iter().collect()),
            "plan": serde_json::to_value(plan).expect("plan serializes")
        },
        "MaxConcurrency": l.concurrency,
        "ItemProcessor": {
            "ProcessorConfig": processor_config,
            "StartAt": states::WORKER,
            "States": {
                states::WORKER: worker,
                states::RECORD_FAILURE: record_failure
            }
        },
        "Next": states::RESULTS
    });
    let results_input;
    if distributed {
        map["ItemReader"] = json!({
            "Resource": "arn:aws:states:::s3:getObject",
            "ReaderConfig": {"InputType": "JSON"},
            "Parameters": {
                "Bucket.$": format!("$.{}.bucket", fields::ITEMS_LOCATION),
                "Key.$": format!("$.{}.key", fields::ITEMS_LOCATION)
            }
        });
        map["ResultWriter"] = json!({
            "Resource": "arn:aws:states:::s3:putObject",
            "Parameters": {"Bucket": "${ResultsBucket}", "Prefix": format!("orgop/{name}/map-results")}
        });
        map["ToleratedFailurePercentage"] = json!(l.tolerated_failure_percentage);
        map["Label"] = json!("Accounts");
        map["ResultPath"] = json!(path(fields::MAP_RESULTS));
        results_input = fields::MAP_RESULTS;
    } else {
        map["ItemsPath"] = json!(path(fields::ITEMS));
        // The summaries replace the items: the payload shrinks rather than grows.
        map["ResultPath"] = json!(path(fields::ITEMS));
        results_input = fields::ITEMS;
    }

    let results = json!({
        "Type": "Task",
        "Comment": format!("{} report of runbook {name}: CSV and JSONL to S3, notification", at("report")),
        "Resource": LAMBDA_INVOKE,
        "Parameters": {
            "FunctionName": FUNCTION,
            "Payload": {
                contract::HANDLER: contract::RESULTS,
                "runbook": name,
                "run.$": path(fields::RUN),
                "count.$": path(fields::COUNT),
                "columns": plan.report.columns.iter().map(|c| c.name.clone()).collect::<Vec<_>>(),
                format!("{results_input}.$"): path(results_input),
                "execution.$": "$$.Execution.Id"
            }
        },
        "ResultSelector": {format!("{}.$", fields::SUMMARY): "$.Payload"},
        "Retry": [lambda_retry(), orgop_retry()],
        "Next": states::ALL_ITEMS_OK
    });

    json!({
        "Comment": format!("orgop runbook {name} v{} from {}", plan.version, plan.source),
        "StartAt": states::FANOUT,
        "States": {
            states::FANOUT: fanout,
            states::FANOUT_FAILED: {
                "Type": "Fail",
                "Comment": format!("{} the fanout could not list the targets", at("targets")),
                "Error": Code::FanoutFailed.name(),
                "Cause": "The fanout could not list the target accounts and regions; the Fanout task's error in the execution history says why."
            },
            states::MAP: map,
            states::RESULTS: results,
            states::ALL_ITEMS_OK: {
                "Type": "Choice",
                "Comment": format!("{} every item ok or skipped?", at("runbook")),
                "Choices": [{
                    "Variable": format!("$.{}.{}", fields::SUMMARY, fields::FAILED),
                    "NumericGreaterThan": 0,
                    "Next": states::ITEMS_FAILED
                }],
                "Default": states::DONE
            },
            states::ITEMS_FAILED: {
                "Type": "Fail",
                "Comment": format!("{} some items ended denied or error; the results say which", at("runbook")),
                "Error": Code::ItemsFailed.name(),
                "Cause": "Some accounts or regions ended denied or error; every item is in the results (results.jsonl)."
            },
            states::DONE: {
                "Type": "Succeed",
                "Comment": format!("{} every item ran", at("runbook"))
            }
        }
    })
}

/// The definition as deterministic text (sorted keys, final newline).
pub fn to_json(definition: &Value) -> String {
    orgop_plan::canonical::to_string(definition)
}
