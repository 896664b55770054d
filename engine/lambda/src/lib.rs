//! The orgop Lambda's handlers, one binary for all three (the payload's `handler` picks):
//!
//! - `fanout`: the execution input's parameters resolved against the runbook's definitions,
//!   targets -> items; items that failed to list are stored as failed results at once; the
//!   items are returned (inline Map) or written to S3 (distributed Map).
//! - `worker`: one item: assume the role, run the plan, store the full result (DynamoDB; large
//!   results to S3), return a small fixed-size summary. A denied or failed item is a *result*,
//!   not an error: only orgop's own plumbing failing raises, with the names of
//!   [`orgop_plan::WorkerError`] that the state machine retries and catches on.
//!   The worker stops sending calls shortly before the invocation's deadline
//!   ([`stop_before`]) and records the item as `error` (`OrgOp.LambdaTimeout`) rather than
//!   being killed with nothing stored.
//! - `plan` (runbooks with `approval`): the plan phase's workers stored each planned action
//!   with the element it came from; this assembles them into the change plan file
//!   (`orgop-change-plan/1`, the format `orgop run --plan-out` writes) in S3.
//! - `approval`: stores the approval task's token in the results table for `orgop approve` /
//!   `orgop reject`, and publishes the plan's summary and link (SNS; Slack when configured).
//!   In the run proper, a worker of an approved run re-reads the plan file, checks its digest
//!   is the approved one, and admits only its item's planned actions whose element reads the
//!   same ([`orgop_change::Admission`]).
//! - `failure`: a worker failure the state machine caught -> the item's summary with the
//!   error's name and a bounded cause (a caught cause can be 32 KB).
//! - `results`: accounts for every item of the execution: its stored result, else the failure
//!   the state machine recorded (the inline Map's summaries, the distributed Map's result
//!   files in S3), else `lost` with the reason; results.jsonl and findings.csv to S3, a
//!   summary; optionally a Slack and an SNS notification.
//!
//! An applying execution holds the runbook's apply lock in the organization (an item of the
//! results table, [`orgop_lock`]) from its fanout to its results handler; a second applying
//! execution's fanout fails with `OrgOp.LockHeld`, naming the holder.
//!
//! Handlers take their dependencies as traits ([`orgop_runner::Connector`], [`ResultsStore`],
//! [`ObjectStore`], [`Notifier`]) so tests call them directly with the JSON the compiled ASL
//! produces.
#![deny(missing_docs)]

mod applylock;
mod approval;
mod handlers;
mod live;
mod store;

pub use handlers::{Deps, HandlerError, handle, handle_until, invoke, stop_before};
pub use live::{LiveNotifier, MissingSetting, S3Objects, SlackWebhook, SnsTopic, deps_from_env};
pub use store::{
    ApprovalNotice, DynamoBudget, DynamoStore, Notifier, NotifyError, NotifyErrorKind, ObjectStore,
    PendingApproval, ResultsStore, RunNotice, StoreError, StoreErrorKind,
};

impl From<HandlerError> for lambda_runtime::Diagnostic {
    fn from(e: HandlerError) -> lambda_runtime::Diagnostic {
        lambda_runtime::Diagnostic {
            error_type: e.kind.name().to_string(),
            error_message: e.message,
        }
    }
}
