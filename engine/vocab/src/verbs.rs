//! Read-only vs mutating, decided per operation.
//!
//! AWS names operations so that the verb says what it does; IAM's access levels follow the
//! same verbs. An operation is read-only when its name starts with a read verb below and is not
//! in the short list of exceptions that change state despite their name. Anything else is
//! mutating, so an unknown verb is treated as dangerous: it must be in `actions`, where it only
//! runs when applied.

/// Verbs of read-only operations.
const READ_VERBS: [&str; 16] = [
    "Describe", "List", "Get", "Search", "Lookup", "Scan", "Query", "BatchGet", "Head", "Select",
    "Check", "Preview", "Estimate", "Simulate", "Validate", "View",
];

/// Operations that read like reads but change state or expose secrets/credentials.
const EXCEPTIONS: [&str; 10] = [
    "GetSecretValue",
    "GetPasswordData",
    "GetSessionToken",
    "GetFederationToken",
    "GetAuthorizationToken",
    "GetLoginProfile",
    "GetRoleCredentials",
    "GetCredentialsForIdentity",
    "GetDataKey",
    "GetObjectTorrent",
];

/// Verbs of operations that remove or detach something: a "not found" answer to one means
/// the work is already done.
const REMOVING_VERBS: [&str; 8] = [
    "Delete",
    "Terminate",
    "Remove",
    "Deregister",
    "Disassociate",
    "Detach",
    "Revoke",
    "Release",
];

fn has_verb(operation: &str, verb: &str) -> bool {
    operation
        .strip_prefix(verb)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with(|c: char| c.is_ascii_uppercase()))
}

/// Whether `operation` (e.g. `DeleteVolume`) removes something, so that "not found" means
/// done.
pub fn removes(operation: &str) -> bool {
    REMOVING_VERBS.iter().any(|v| has_verb(operation, v))
}

/// Whether `operation` (e.g. `DeleteVolume`) may change resources.
pub fn is_mutating(operation: &str) -> bool {
    if EXCEPTIONS.contains(&operation) {
        return true;
    }
    !READ_VERBS.iter().any(|verb| has_verb(operation, verb))
}

#[cfg(test)]
mod tests {
    use super::{is_mutating, removes};

    #[test]
    fn reads_and_writes() {
        for op in [
            "DescribeVolumes",
            "ListAccounts",
            "GetEnabledStandards",
            "BatchGetItem",
            "Query",
            "HeadObject",
        ] {
            assert!(!is_mutating(op), "{op}");
        }
        for op in [
            "DeleteVolume",
            "CreateSnapshot",
            "BatchEnableStandards",
            "Enable",
            "RevokeSecurityGroupIngress",
            "PutObject",
            "GetSecretValue",
            "Listen",
            "Describer",
        ] {
            assert!(is_mutating(op), "{op}");
        }
    }

    #[test]
    fn removing_verbs() {
        for op in [
            "DeleteVolume",
            "TerminateInstances",
            "RevokeSecurityGroupIngress",
            "ReleaseAddress",
            "DetachVolume",
        ] {
            assert!(removes(op), "{op}");
        }
        for op in [
            "CreateSnapshot",
            "DescribeVolumes",
            "Deleter",
            "ModifyVolume",
        ] {
            assert!(!removes(op), "{op}");
        }
    }
}
