//! The one door to AWS: a call by service and operation with JSON parameters, answered with
//! JSON pages. The live implementation is the model-driven client; [`crate::ReplayApi`]
//! answers from recorded responses.
use serde_json::Value;
use std::future::Future;
use std::time::Duration;

/// One call.
#[derive(Debug, Clone, Copy)]
pub struct Call<'a> {
    /// Service as the runbook names it (`ec2`, `elasticloadbalancing`).
    pub service: &'a str,
    /// Operation (`DescribeVolumes`).
    pub operation: &'a str,
    /// Parameters, exactly as the API reference spells them.
    pub params: &'a Value,
    /// Follow pagination and answer every page.
    pub paginate: bool,
}

/// What kind of failure, as far as the interpreter cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The caller may not do this (or the role could not be assumed).
    Denied,
    /// AWS kept throttling past the client's retries.
    Throttled,
    /// The thing is not there.
    NotFound,
    /// The region or service is not enabled for the account (`OptInRequired`).
    NotEnabled,
    /// Rejected before sending: unknown operation or bad parameters.
    Invalid,
    /// Network or endpoint trouble.
    Transport,
    /// Any other error AWS answered with.
    Other,
}

/// A failed call.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ApiError {
    /// AWS's error code (`InvalidVolume.NotFound`), or orgop's for local failures.
    pub code: String,
    /// The message.
    pub message: String,
    /// Classification.
    pub kind: ErrorKind,
}

impl ApiError {
    /// An error classified from its code.
    pub fn from_code(code: impl Into<String>, message: impl Into<String>) -> ApiError {
        let code = code.into();
        let kind = classify(&code);
        ApiError {
            code,
            message: message.into(),
            kind,
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for ApiError {}

/// Classifies an AWS error code by the one table (`orgop_vocab::aws`).
pub fn classify(code: &str) -> ErrorKind {
    use orgop_vocab::aws::{ErrorClass, class_of};
    match class_of(code) {
        Some(ErrorClass::Denied) => ErrorKind::Denied,
        Some(ErrorClass::Throttling) => ErrorKind::Throttled,
        Some(ErrorClass::NotFound) => ErrorKind::NotFound,
        Some(ErrorClass::NotEnabled) => ErrorKind::NotEnabled,
        Some(ErrorClass::Transient | ErrorClass::ExpiredCredentials) | None => ErrorKind::Other,
    }
}

/// AWS as the interpreter sees it, already bound to one account and region.
pub trait AwsApi: Send + Sync {
    /// Makes a call; answers one page, or every page when `call.paginate` and the operation is
    /// paginated.
    fn call(&self, call: Call<'_>) -> impl Future<Output = Result<Vec<Value>, ApiError>> + Send;

    /// Waits `d` between two polls of a `wait:`. Live implementations sleep; a replay answers
    /// at once, since its recordings already hold every poll.
    fn pause(&self, d: Duration) -> impl Future<Output = ()> + Send;

    /// Makes an action's call (one page). `idempotency_seed` names the action for this
    /// execution, item and resource: an implementation that fills idempotency tokens (the
    /// `idempotencyToken` members the runbook left out, like `ec2:CreateVolume`'s
    /// `ClientToken`) derives them from it, so that the same action, sent again by a retry or
    /// a re-driven run of the same execution, carries the same token and AWS does it once.
    /// The default ignores the seed (the client then fills a random token).
    fn call_action(
        &self,
        call: Call<'_>,
        idempotency_seed: &str,
    ) -> impl Future<Output = Result<Vec<Value>, ApiError>> + Send {
        let _ = idempotency_seed;
        self.call(call)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_classified() {
        assert_eq!(classify("UnauthorizedOperation"), ErrorKind::Denied);
        assert_eq!(classify("RequestLimitExceeded"), ErrorKind::Throttled);
        assert_eq!(classify("InvalidVolume.NotFound"), ErrorKind::NotFound);
        assert_eq!(classify("ResourceNotFoundException"), ErrorKind::NotFound);
        assert_eq!(classify("NoSuchBucket"), ErrorKind::NotFound);
        assert_eq!(classify("InvalidParameterValue"), ErrorKind::Other);
        assert_eq!(classify("NotAuthorized"), ErrorKind::Denied);
        assert_eq!(classify("OptInRequired"), ErrorKind::NotEnabled);
    }
}
