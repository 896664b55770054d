//! How an account x region item ended: the word in results.jsonl, the summaries and the
//! worker's answer to the state machine.
use serde::{Deserialize, Serialize};

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
    /// Unaccounted for: the run listed the item, but neither a worker result nor a recorded
    /// failure of it exists (the deployed state machine's result handler reconciles).
    Lost,
    /// Not run, or stopped before it finished: the run was interrupted (SIGINT/SIGTERM). Its
    /// `error` says which.
    NotRun,
}

impl Status {
    /// Every status, in a fixed order.
    pub const ALL: [Status; 6] = [
        Status::Ok,
        Status::Denied,
        Status::Error,
        Status::Skipped,
        Status::Lost,
        Status::NotRun,
    ];

    /// The word used in results and summaries.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Denied => "denied",
            Status::Error => "error",
            Status::Skipped => "skipped",
            Status::Lost => "lost",
            Status::NotRun => "not_run",
        }
    }

    /// Whether the item failed: the run's exit status and the state machine's `ItemsFailed`
    /// follow it. An item that did not run (or did not finish) is not done, so it counts.
    pub fn is_failure(self) -> bool {
        matches!(
            self,
            Status::Denied | Status::Error | Status::Lost | Status::NotRun
        )
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_word_is_the_serialized_form() {
        for s in Status::ALL {
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
        }
        assert!(Status::Lost.is_failure());
        assert!(!Status::Skipped.is_failure());
    }
}
