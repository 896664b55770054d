//! The error names the orgop Lambda raises and the compiled state machine retries and catches
//! on. Defined once here: the compiler writes them into `Retry`/`Catch`, the Lambda sets them as
//! `errorType`.
use orgop_vocab::Code;
use std::fmt;

/// An error that leaves a Lambda handler. Everything else about an item (denied, API errors,
/// throttling that retries could not beat) is *recorded in the item's result*, not raised: one
/// account never fails the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WorkerError {
    /// AWS kept throttling orgop's own plumbing (results store, STS) past the client's retries;
    /// Step Functions retries the item later.
    Throttled,
    /// A transient failure of orgop's plumbing (network, 5xx from the results store).
    Transient,
    /// The results store refused the write for a non-transient reason.
    ResultsStore,
    /// The payload is not what this build of orgop understands (wrong plan format, bad shape).
    InvalidInput,
    /// A bug in orgop.
    Internal,
    /// The fanout of an applying execution: another applier holds the runbook's apply lock in
    /// the organization (the message names it). Not retried: the execution ends, sending
    /// nothing.
    LockHeld,
}

impl WorkerError {
    /// Every name, in a fixed order.
    pub const ALL: [WorkerError; 6] = [
        WorkerError::Throttled,
        WorkerError::Transient,
        WorkerError::ResultsStore,
        WorkerError::InvalidInput,
        WorkerError::Internal,
        WorkerError::LockHeld,
    ];

    /// The code it is raised with.
    pub fn code(self) -> Code {
        match self {
            WorkerError::Throttled => Code::Throttled,
            WorkerError::Transient => Code::Transient,
            WorkerError::ResultsStore => Code::ResultsStore,
            WorkerError::InvalidInput => Code::InvalidInput,
            WorkerError::Internal => Code::Internal,
            WorkerError::LockHeld => Code::LockHeld,
        }
    }

    /// The `errorType` Step Functions sees.
    pub fn name(self) -> &'static str {
        self.code().name()
    }

    /// Whether the state machine retries it.
    pub fn retryable(self) -> bool {
        matches!(self, WorkerError::Throttled | WorkerError::Transient)
    }

    /// The error for an `errorType`, if it is one of ours.
    pub fn from_name(name: &str) -> Option<WorkerError> {
        WorkerError::ALL.into_iter().find(|e| e.name() == name)
    }
}

impl fmt::Display for WorkerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Errors of the Lambda service itself that are safe to retry (AWS's recommended set for
/// `arn:aws:states:::lambda:invoke`).
pub const LAMBDA_TRANSIENT_ERRORS: [&str; 4] = [
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_are_unique() {
        let mut seen = std::collections::HashSet::new();
        for e in WorkerError::ALL {
            assert!(seen.insert(e.name()));
            assert_eq!(WorkerError::from_name(e.name()), Some(e));
            assert!(e.name().starts_with("OrgOp."));
        }
        assert_eq!(WorkerError::from_name("Lambda.ServiceException"), None);
    }
}
