//! What one item produced: the record written to results.jsonl and the results store.
use orgop_plan::contract::Item;
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use orgop_vocab::Status;

/// Why an item is not ok.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ItemError {
    /// AWS's error code, or one of orgop's ([`orgop_vocab::Code`]).
    pub code: String,
    /// The message.
    pub message: String,
    /// The step or action that failed, when one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
}

impl ItemError {
    /// An error with `code` (AWS's, or one of orgop's [`orgop_vocab::Code`]s) and no step.
    pub fn new(code: impl AsRef<str>, message: impl Into<String>) -> ItemError {
        ItemError {
            code: code.as_ref().into(),
            message: message.into(),
            step: None,
        }
    }
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

impl ActionOutcome {
    /// Every outcome, in a fixed order.
    pub const ALL: [ActionOutcome; 5] = [
        ActionOutcome::Planned,
        ActionOutcome::Done,
        ActionOutcome::AlreadyDone,
        ActionOutcome::Skipped,
        ActionOutcome::Failed,
    ];

    /// The word used in results and summaries.
    pub fn as_str(self) -> &'static str {
        match self {
            ActionOutcome::Planned => "planned",
            ActionOutcome::Done => "done",
            ActionOutcome::AlreadyDone => "already_done",
            ActionOutcome::Skipped => "skipped",
            ActionOutcome::Failed => "failed",
        }
    }
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

impl ItemResult {
    /// The record of an item that ended before it ran anything: `status` with `error`, no
    /// findings, no actions.
    pub fn failed(item: Item, status: Status, error: ItemError) -> ItemResult {
        ItemResult {
            account_id: item.account_id,
            account_name: item.account_name,
            region: item.region,
            status,
            error: Some(error),
            findings: Vec::new(),
            actions: Vec::new(),
            applied: false,
            calls: 0,
            duration_ms: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcome_words_are_the_serialized_form() {
        for o in ActionOutcome::ALL {
            assert_eq!(serde_json::to_value(o).unwrap(), o.as_str());
        }
    }
}
