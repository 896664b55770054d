//! What one item produced: the record written to results.jsonl and the results store.
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// How an item ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Every step ran (and every applied action succeeded).
    Ok,
    /// The role could not be assumed or a call was denied.
    Denied,
    /// A call failed.
    Error,
    /// Not run: the region is not enabled in the account, or excluded at run time.
    Skipped,
}

impl Status {
    /// The word used in results and summaries.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Denied => "denied",
            Status::Error => "error",
            Status::Skipped => "skipped",
        }
    }
}

/// Why an item is not ok.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ItemError {
    /// AWS's error code, or orgop's (`OrgOp.*`).
    pub code: String,
    /// The message.
    pub message: String,
    /// The step or action that failed, when one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
}

/// One finding row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    /// The resource id (`report.resource_id`).
    pub resource_id: Value,
    /// The report's columns, in the runbook's order.
    pub columns: indexmap::IndexMap<String, Value>,
}

/// What happened to one action for one result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionOutcome {
    /// Not applied: this is what would be sent.
    Planned,
    /// Sent and succeeded.
    Done,
    /// The target was already gone (or an `ignore_errors` code answered): counts as done.
    AlreadyDone,
    /// Not sent: protected tag, cap reached, or an earlier action failed for this resource.
    Skipped,
    /// Sent and failed.
    Failed,
}

/// One action for one result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActionRecord {
    /// Action id.
    pub action: String,
    /// `service:Operation`.
    pub call: String,
    /// The resource acted on, when the action iterates over the reported step.
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub resource_id: Value,
    /// The exact parameters sent (or that would be sent).
    pub parameters: Value,
    /// What happened.
    pub outcome: ActionOutcome,
    /// Why skipped or failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Everything about one account x region.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ItemResult {
    /// Account id.
    pub account_id: String,
    /// Account name.
    pub account_name: String,
    /// Region.
    pub region: String,
    /// How it ended.
    pub status: Status,
    /// Why, when not ok.
    #[serde(default)]
    pub error: Option<ItemError>,
    /// Finding rows.
    pub findings: Vec<Finding>,
    /// Actions done or planned.
    pub actions: Vec<ActionRecord>,
    /// Whether actions were applied.
    pub applied: bool,
    /// AWS calls made.
    pub calls: u32,
    /// Wall time in milliseconds.
    pub duration_ms: u64,
}
