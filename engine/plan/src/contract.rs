//! Payloads exchanged by the compiled state machine and the orgop Lambda handlers.
//!
//! The compiler builds these shapes with ASL paths (`"run.$": "$.run"`); the Lambda
//! deserializes them into these types. The field-name constants below are what both sides
//! use, so renaming one breaks the build, not a deployed state machine.
use crate::plan::{ParamDef, Plan, RolePlan, TargetsPlan};
use orgop_vocab::Status;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// The region of the items of a runbook whose every call is to a global service (IAM,
/// CloudFront, Route 53, Organizations): it runs once per account, and its results say
/// `global` where others name a region.
pub const GLOBAL_REGION: &str = "global";

/// The region a client signs and resolves endpoints with for an item's region: the global
/// services' signing region, `us-east-1` (the `aws` partition's), for [`GLOBAL_REGION`].
pub fn client_region(region: &str) -> &str {
    if region == GLOBAL_REGION {
        "us-east-1"
    } else {
        region
    }
}

/// The fixed leading columns of the findings CSV, before the report's own (which may not
/// reuse these names).
pub const FIXED_COLUMNS: [&str; 4] = ["account_id", "account_name", "region", "resource_id"];

/// Key naming the handler in every payload.
pub const HANDLER: &str = "handler";
/// The fanout handler: targets -> items.
pub const FANOUT: &str = "fanout";
/// The worker handler: one item.
pub const WORKER: &str = "worker";
/// The result handler: summaries -> CSV/JSONL, notification.
pub const RESULTS: &str = "results";
/// The failure recorder: a caught worker failure -> its item's bounded summary.
pub const FAILURE: &str = "failure";
/// Handler name: assemble an approval run's change plan from its workers' planned actions.
pub const PLAN: &str = "plan";
/// Handler name: store an approval's task token and ask for approval.
pub const APPROVAL: &str = "approval";
/// Handler name: release the execution's apply lock when it ends without `Results` (a
/// rejected, timed-out or failed approval).
pub const RELEASE: &str = "release";

/// The most bytes of an error message a summary or a failure record carries to the state
/// machine: an inline Map of 500 failed items stays far below the 256 KiB payload limit.
pub const MESSAGE_BYTES: usize = 200;

/// `message` cut to at most [`MESSAGE_BYTES`] bytes on a character boundary, ending in `…`
/// when cut.
pub fn bounded_message(message: &str) -> String {
    if message.len() <= MESSAGE_BYTES {
        return message.to_string();
    }
    let ellipsis = '…';
    let mut end = MESSAGE_BYTES - ellipsis.len_utf8();
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{ellipsis}", &message[..end])
}

/// The name of a deployed runbook's state machine, `orgop-<runbook name>`: the stack that
/// creates it (`orgop deploy`) and `orgop start`, which finds it by name, both call this.
pub fn state_machine_name(runbook: &str) -> String {
    format!("orgop-{runbook}")
}

/// What the state machine is started with (all optional).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExecutionInput {
    /// Parameter overrides.
    #[serde(default)]
    pub params: Map<String, Value>,
    /// Send the actions (a schedule sets this explicitly).
    #[serde(default)]
    pub apply: bool,
    /// Only these regions (must be a subset of the runbook's when it lists regions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regions: Option<Vec<String>>,
    /// Only these accounts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accounts: Option<Vec<String>>,
}

/// The fanout handler's payload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FanoutRequest {
    /// Always [`FANOUT`].
    pub handler: String,
    /// Runbook name.
    pub runbook: String,
    /// Where to run.
    pub targets: TargetsPlan,
    /// The role, assumed in each account to list its enabled regions (`regions: enabled`).
    pub role: RolePlan,
    /// Parameter definitions, to apply defaults and check overrides once for the run.
    #[serde(default)]
    pub params: BTreeMap<String, ParamDef>,
    /// `inline`: return the items; `distributed`: write them to S3 and return the location.
    pub map: crate::plan::MapKind,
    /// The execution's input.
    #[serde(default)]
    pub input: Value,
    /// `$$.Execution.Id`.
    pub execution: String,
}

/// One account x region.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Item {
    /// 12-digit account id.
    pub account_id: String,
    /// Account name from Organizations.
    pub account_name: String,
    /// Region.
    pub region: String,
}

/// Facts of the run every worker sees.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunContext {
    /// Execution id (or a local run id).
    pub execution: String,
    /// Parameters after defaults and overrides.
    #[serde(default)]
    pub params: Map<String, Value>,
    /// Whether actions are sent.
    pub apply: bool,
    /// The apply lock this execution holds (set by the fanout of an applying execution): the
    /// lock item's partition key in the results table (`#lock/<organization>/<runbook>`).
    /// Workers extend it; the results handler releases it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lock: Option<String>,
    /// A runbook with `approval`: the plan `orgop approve` approved (the approval task writes
    /// it here); its workers apply only that plan's actions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approved: Option<Approved>,
}

/// What `orgop approve` answers the approval task with (`SendTaskSuccess`'s output): the
/// plan it approved.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Approved {
    /// Where the plan file is.
    pub plan: S3Location,
    /// The plan's `digest`: the workers apply the plan only when the file still has it.
    pub digest: String,
    /// Who approved (the caller's ARN, `sts:GetCallerIdentity`).
    #[serde(default)]
    pub approver: String,
    /// Why, when given (`orgop approve --reason`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Which half of a run of a runbook with `approval` a worker is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// A dry run that stores each planned action with the element it came from.
    Plan,
    /// The run proper: when it applies, only the approved plan's actions (re-read first).
    Apply,
}

/// The plan handler's payload: after the plan phase's Map.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanRequest {
    /// Always [`PLAN`].
    pub handler: String,
    /// Runbook name.
    pub runbook: String,
    /// Runbook version.
    pub version: u32,
    /// The runbook's path when compiled.
    pub source: String,
    /// Hex SHA-256 of the compiled plan and shared data (the state machine's literals): a
    /// deployed plan is made from those, not from a file.
    pub sha256: String,
    /// The actions' ids in runbook order (the plan's sort order).
    pub actions: Vec<String>,
    /// Facts of the run.
    pub run: RunContext,
    /// How many items the fanout produced.
    pub count: usize,
    /// Inline Map: the fanout's items.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub items: Option<Vec<Item>>,
    /// Distributed Map: where the fanout wrote the items.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub items_location: Option<S3Location>,
    /// `$$.Execution.Id`.
    pub execution: String,
}

/// The plan handler's answer: where the plan file is and what it holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanSummary {
    /// The plan file (`orgop-change-plan/1`).
    pub plan: S3Location,
    /// `s3://bucket/key` of the plan file.
    pub uri: String,
    /// The plan's digest.
    pub digest: String,
    /// Planned actions.
    pub actions: usize,
    /// Planned actions by action id.
    pub by_action: BTreeMap<String, usize>,
    /// Items of the dry run.
    pub items: usize,
    /// Items that did not end ok (their actions, if any, are not in the plan).
    pub not_ok: usize,
}

/// The approval handler's payload: the approval task's, with its task token.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApprovalRequest {
    /// Always [`APPROVAL`].
    pub handler: String,
    /// `$$.Task.Token`: stored for `orgop approve`/`orgop reject`, never shown.
    pub token: String,
    /// Runbook name.
    pub runbook: String,
    /// The plan handler's answer.
    pub plan: PlanSummary,
    /// How long the task waits.
    pub timeout_seconds: u64,
    /// `$$.Execution.Id`.
    pub execution: String,
}

/// The results table's item for a pending approval: partition key `execution`, sort key
/// [`approval_item::ITEM`]; the approval handler writes it, `orgop approve`/`orgop reject` read
/// and settle it.
pub mod approval_item {
    /// The sort key (`item`) of the approval item; never an `<account>#<region>`.
    pub const ITEM: &str = "#approval";
    /// The task token (S).
    pub const TOKEN: &str = "token";
    /// `pending`, `approved` or `rejected` (S).
    pub const STATE: &str = "state";
    /// The plan file's bucket (S).
    pub const PLAN_BUCKET: &str = "plan_bucket";
    /// The plan file's key (S).
    pub const PLAN_KEY: &str = "plan_key";
    /// The plan's digest (S).
    pub const DIGEST: &str = "digest";
    /// Planned actions (N).
    pub const ACTIONS: &str = "actions";
    /// Runbook name (S).
    pub const RUNBOOK: &str = "runbook";
    /// Epoch seconds after which the task no longer waits (N).
    pub const DEADLINE: &str = "deadline";
    /// The value of [`STATE`] while the task waits.
    pub const PENDING: &str = "pending";
}

/// Where the distributed Map reads its items.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct S3Location {
    /// Bucket.
    pub bucket: String,
    /// Key of a JSON array of [`Item`]s.
    pub key: String,
}

/// The fanout handler's answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FanoutResponse {
    /// Facts of the run.
    pub run: RunContext,
    /// How many items.
    pub count: usize,
    /// The items (inline Map).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub items: Option<Vec<Item>>,
    /// Where the items are (distributed Map).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub items_location: Option<S3Location>,
}

/// The worker's payload: exactly what the Map's `ItemSelector` builds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkerRequest {
    /// Always [`WORKER`].
    pub handler: String,
    /// The account and region.
    pub item: Item,
    /// Facts of the run.
    pub run: RunContext,
    /// The runbook's shared data.
    #[serde(default)]
    pub shared: Map<String, Value>,
    /// What to do.
    pub plan: Plan,
    /// A runbook with `approval`: which half of the run (absent otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<Phase>,
}

/// What a worker returns to the state machine: small and fixed-size, so the Map's output
/// stays far below the 256 KiB state limit. Full results go to the results store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkerSummary {
    /// Account.
    pub account_id: String,
    /// Region.
    pub region: String,
    /// How the item ended.
    pub status: Status,
    /// Number of findings.
    pub findings: usize,
    /// Number of actions done or planned.
    pub actions: usize,
    /// Error code when not ok.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
    /// Error message when not ok (at most [`MESSAGE_BYTES`] bytes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_message: Option<String>,
}

/// The failure recorder's payload: what the state machine caught from a worker. Its answer is
/// the item's [`WorkerSummary`] with status `error`, the error's name and a bounded cause.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FailureRequest {
    /// Always [`FAILURE`].
    pub handler: String,
    /// The item whose worker failed.
    pub item: Item,
    /// The caught error's name (`States.Timeout`, `OrgOp.ResultsStore`, ...).
    pub error: String,
    /// The caught error's cause, as Step Functions gives it (up to 32 KB; for a Lambda
    /// error, JSON with `errorMessage`).
    #[serde(default)]
    pub cause: Option<String>,
}

/// The release handler's payload: the run whose apply lock, if it holds one, is let go.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReleaseRequest {
    /// Always [`RELEASE`].
    pub handler: String,
    /// Facts of the run (its `lock`, when it holds one).
    pub run: RunContext,
}

/// The result handler's payload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResultsRequest {
    /// Always [`RESULTS`].
    pub handler: String,
    /// Runbook name.
    pub runbook: String,
    /// Facts of the run.
    pub run: RunContext,
    /// How many items the fanout produced.
    pub count: usize,
    /// The report's columns, in order (the findings CSV's columns after the fixed four).
    #[serde(default)]
    pub columns: Vec<String>,
    /// Inline Map: one summary per item (failures recorded by the state machine included).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub items: Option<Vec<WorkerSummary>>,
    /// Distributed Map: the ResultWriter's output (`ResultWriterDetails`: where its
    /// `manifest.json` is).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub map_results: Option<Value>,
    /// Distributed Map: where the fanout wrote the items, so every one is accounted for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub items_location: Option<S3Location>,
    /// `$$.Execution.Id`.
    pub execution: String,
}

/// The result handler's answer (the state machine routes on `failed`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ResultsSummary {
    /// Items in the run.
    pub items: usize,
    /// Items that ended `denied`, `error` or `lost`.
    pub failed: usize,
    /// Items by status.
    pub by_status: BTreeMap<Status, usize>,
    /// Finding rows.
    pub findings: usize,
    /// Actions by outcome.
    pub actions: BTreeMap<String, usize>,
    /// Where results.jsonl was written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub results_uri: Option<String>,
    /// Where findings.csv was written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub findings_uri: Option<String>,
}

/// Field names the compiler writes into paths.
pub mod fields {
    /// `$.run` after the fanout.
    pub const RUN: &str = "run";
    /// `$.count` after the fanout.
    pub const COUNT: &str = "count";
    /// `$.items`: the items before the Map, their summaries after it.
    pub const ITEMS: &str = "items";
    /// `$.items_location` (distributed).
    pub const ITEMS_LOCATION: &str = "items_location";
    /// `$.map_results` (distributed: the ResultWriter's manifest).
    pub const MAP_RESULTS: &str = "map_results";
    /// `$.summary` after the result handler.
    pub const SUMMARY: &str = "summary";
    /// In the summary: items that ended `denied`, `error` or `lost`.
    pub const FAILED: &str = "failed";
}

#[cfg(test)]
mod tests {
    #[test]
    fn messages_are_bounded_on_a_character_boundary() {
        use super::{MESSAGE_BYTES, bounded_message};
        assert_eq!(bounded_message("short"), "short");
        for text in ["x".repeat(40_000), "é".repeat(20_000), "€".repeat(11_000)] {
            let b = bounded_message(&text);
            assert!(b.len() <= MESSAGE_BYTES, "{}", b.len());
            assert!(b.len() > MESSAGE_BYTES - 4, "{}", b.len());
            assert!(b.ends_with('…'));
        }
    }

    #[test]
    fn state_machine_names_prefix_the_runbook() {
        assert_eq!(super::state_machine_name("unused-ebs"), "orgop-unused-ebs");
    }
}
