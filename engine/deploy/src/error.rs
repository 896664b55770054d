//! Why a deployment failed.

use std::time::Duration;

use orgop_aws::CallError;

/// Why a deployment failed. Each says which stack, StackSet or object, and carries
/// CloudFormation's own reasons where it gave any.
#[derive(Debug, Clone, thiserror::Error)]
pub enum DeployError {
    /// A call failed (denied, throttled, a network failure, an error the service answered).
    #[error("{name}: {source}")]
    Call {
        /// The stack, StackSet or `s3://bucket/key` the call was for.
        name: String,
        /// The operation (`CreateChangeSet`, `PutObject`, ...).
        operation: &'static str,
        /// What went wrong (boxed: a call error is large).
        source: Box<CallError>,
    },
    /// The stack ended in a failure state, or the service refused to run its change set;
    /// `reasons` are CloudFormation's, newest first (`LogicalId (Type) STATUS: reason`).
    #[error("stack {stack} failed ({status}): {}", reasons_text(.reasons))]
    StackFailed {
        /// The stack name.
        stack: String,
        /// Its status afterwards (`ROLLBACK_COMPLETE`, `UPDATE_ROLLBACK_COMPLETE`, ...).
        status: String,
        /// The `ResourceStatusReason` of each `*_FAILED` event of this deployment, newest
        /// first, else the stack's status reason or the error the service answered.
        reasons: Vec<String>,
    },
    /// The stack is in a state no deployment may start from (another operation in progress,
    /// a failed rollback, or `ROLLBACK_COMPLETE` when deleting it is not allowed).
    #[error("stack {stack} is {status}: {hint}")]
    StackNotUpdatable {
        /// The stack name.
        stack: String,
        /// Its status.
        status: String,
        /// What to do about it.
        hint: String,
    },
    /// CloudFormation could not make a change set of the template (a template error, a
    /// missing capability, ...). The stack was not touched.
    #[error("stack {stack}: change set {change_set} failed: {reason}")]
    ChangeSetFailed {
        /// The stack name.
        stack: String,
        /// The change set's ARN.
        change_set: String,
        /// CloudFormation's status reason.
        reason: String,
    },
    /// A StackSet operation ended `FAILED` or `STOPPED`, or some of its stack instances
    /// failed; `reasons` are per account and region.
    #[error("stack set {stack_set}: {action} operation {operation_id} {status}: {}", reasons_text(.reasons))]
    StackSetOperationFailed {
        /// The StackSet name.
        stack_set: String,
        /// The operation id.
        operation_id: String,
        /// `CREATE`, `UPDATE`, ...
        action: String,
        /// The operation's status (`FAILED`, `STOPPED`, or `SUCCEEDED` when only some
        /// instances failed within the failure tolerance).
        status: String,
        /// `account region STATUS: reason` of each instance that did not succeed.
        reasons: Vec<String>,
    },
    /// A wait ran past its limit; the deployment may still finish on its own.
    #[error(
        "gave up waiting for {waiting_for} after {} s (the limit DeployOptions::{limit_name}; CloudFormation may still finish: look at the stack or StackSet before deploying again)",
        .limit.as_secs()
    )]
    Timeout {
        /// What was waited for.
        waiting_for: String,
        /// The name of the limit in [`crate::DeployOptions`].
        limit_name: &'static str,
        /// The limit.
        limit: Duration,
    },
    /// The stack or StackSet does not exist.
    #[error("{kind} {name} does not exist")]
    NotFound {
        /// `stack` or `stack set`.
        kind: &'static str,
        /// Its name.
        name: String,
    },
    /// The service answered something that cannot be used (a missing id or status).
    #[error("{name}: {operation} answered without {missing}")]
    Unexpected {
        /// The stack or StackSet.
        name: String,
        /// The operation.
        operation: &'static str,
        /// What was missing.
        missing: &'static str,
    },
}

fn reasons_text(reasons: &[String]) -> String {
    if reasons.is_empty() {
        "CloudFormation gave no reason".to_string()
    } else {
        reasons.join("; ")
    }
}

impl DeployError {
    pub(crate) fn call(name: &str, operation: &'static str, source: CallError) -> DeployError {
        DeployError::Call {
            name: name.to_string(),
            operation,
            source: Box::new(source),
        }
    }
}
