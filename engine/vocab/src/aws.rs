//! AWS error codes and their classes: the one table the client's retries, its access-denied
//! decision, the interpreter and replayed recordings all read.
//!
//! The codes are the AWS SDKs' (botocore's `_retry.json` and the SDKs' standard retry mode
//! for throttling and transient errors; the documented authorization failures of IAM-checked
//! services; the expired-credential codes the SDKs refresh on).

/// What an AWS error code means to orgop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorClass {
    /// The caller may not do this (or the credentials are not accepted).
    Denied,
    /// The caller is being throttled: retried with backoff.
    Throttling,
    /// A transient service-side failure: retried.
    Transient,
    /// The credentials sent have expired: refreshed, then retried once.
    ExpiredCredentials,
    /// The resource is not there.
    NotFound,
    /// The region or service is not enabled for the account.
    NotEnabled,
}

use ErrorClass::*;

/// Every AWS error code orgop gives a meaning to, with its class. A code not listed (and not
/// of a not-found form, see [`class_of`]) is an ordinary service error.
pub const ERROR_CODES: &[(&str, ErrorClass)] = &[
    // Authorization.
    ("AccessDenied", Denied),
    ("AccessDeniedException", Denied),
    ("AccessDeniedForDependencyException", Denied),
    ("AuthorizationError", Denied),
    ("AuthorizationErrorException", Denied),
    ("Forbidden", Denied),
    ("InvalidClientTokenId", Denied),
    ("NotAuthorized", Denied),
    ("UnauthorizedAccess", Denied),
    ("UnauthorizedOperation", Denied),
    ("UnrecognizedClientException", Denied),
    // Throttling.
    ("BandwidthLimitExceeded", Throttling),
    ("EC2ThrottledException", Throttling),
    ("LimitExceededException", Throttling),
    ("PriorRequestNotComplete", Throttling),
    ("ProvisionedThroughputExceededException", Throttling),
    ("RequestLimitExceeded", Throttling),
    ("RequestThrottled", Throttling),
    ("RequestThrottledException", Throttling),
    ("SlowDown", Throttling),
    ("ThrottledException", Throttling),
    ("Throttling", Throttling),
    ("ThrottlingException", Throttling),
    ("TooManyRequestsException", Throttling),
    ("TransactionInProgressException", Throttling),
    // Transient.
    ("IDPCommunicationError", Transient),
    ("InternalError", Transient),
    ("InternalFailure", Transient),
    ("InternalServerError", Transient),
    ("RequestTimeout", Transient),
    ("RequestTimeoutException", Transient),
    ("ServiceUnavailable", Transient),
    ("ServiceUnavailableException", Transient),
    // Expired credentials.
    ("ExpiredToken", ExpiredCredentials),
    ("ExpiredTokenException", ExpiredCredentials),
    ("RequestExpired", ExpiredCredentials),
    ("TokenRefreshRequired", ExpiredCredentials),
    // Not enabled.
    ("OptInRequired", NotEnabled),
];

/// The class of an AWS error code: the table, then the not-found forms AWS uses
/// (`InvalidVolume.NotFound`, `ResourceNotFoundException`, `NoSuchBucket`, `NoSuchEntity`).
pub fn class_of(code: &str) -> Option<ErrorClass> {
    if let Some((_, class)) = ERROR_CODES.iter().find(|(c, _)| *c == code) {
        return Some(*class);
    }
    let not_found = code.ends_with("NotFound")
        || code.ends_with("NotFoundException")
        || code.starts_with("NoSuch");
    not_found.then_some(NotFound)
}

/// The class of an error answered with `code` and HTTP `status`, as the SDKs' standard retry
/// mode decides: a throttling code or 429 is throttling; a transient code or 500, 502, 503,
/// 504 is transient; else [`class_of`]; a bare 403 with no code is denied.
pub fn class_of_answer(code: &str, status: u16) -> Option<ErrorClass> {
    let by_code = class_of(code);
    if by_code == Some(Throttling) || status == 429 {
        Some(Throttling)
    } else if by_code == Some(Transient) || matches!(status, 500 | 502 | 503 | 504) {
        Some(Transient)
    } else if by_code.is_none() && status == 403 && code == "403" {
        Some(Denied)
    } else {
        by_code
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_is_listed_once() {
        let mut seen = std::collections::HashSet::new();
        for (code, _) in ERROR_CODES {
            assert!(seen.insert(code), "{code} is listed twice");
        }
    }

    #[test]
    fn codes_and_answers_are_classified() {
        assert_eq!(class_of("UnauthorizedOperation"), Some(Denied));
        assert_eq!(class_of("NotAuthorized"), Some(Denied));
        assert_eq!(class_of("RequestLimitExceeded"), Some(Throttling));
        assert_eq!(class_of("InvalidVolume.NotFound"), Some(NotFound));
        assert_eq!(class_of("ResourceNotFoundException"), Some(NotFound));
        assert_eq!(class_of("NoSuchBucket"), Some(NotFound));
        assert_eq!(class_of("NoSuchEntity"), Some(NotFound));
        assert_eq!(class_of("OptInRequired"), Some(NotEnabled));
        assert_eq!(class_of("InvalidParameterValue"), None);
        assert_eq!(class_of_answer("Whatever", 429), Some(Throttling));
        assert_eq!(class_of_answer("503", 503), Some(Transient));
        assert_eq!(class_of_answer("403", 403), Some(Denied));
        assert_eq!(class_of_answer("AccessDenied", 403), Some(Denied));
        assert_eq!(
            class_of_answer("InvalidVolume.NotFound", 400),
            Some(NotFound)
        );
        assert_eq!(class_of_answer("ValidationError", 400), None);
        assert_eq!(
            class_of_answer("RequestLimitExceeded", 503),
            Some(Throttling)
        );
        assert_eq!(
            class_of_answer("InvalidVolume.NotFound", 500),
            Some(Transient)
        );
    }
}
