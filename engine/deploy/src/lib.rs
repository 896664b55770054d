//! The I/O half of `orgop deploy`: puts generated CloudFormation templates into an
//! organization through orgop's own model-driven AWS client ([`orgop_aws::AwsClient`]).
//!
//! - [`deploy_stack`]: one stack (the operations stack), by change set: created when absent,
//!   [`StackOutcome::Unchanged`] without any write when the deployed template body, parameters
//!   and tags are what would be sent, else updated; the changes are listed.
//! - [`deploy_stackset`]: a `SERVICE_MANAGED` StackSet (the member-account roles) with
//!   automatic deployment to organizational units, created or updated, then stack instances in
//!   every (OU, region) that has none yet.
//! - [`upload_artifact`]: an S3 object (a Lambda zip, a large template), skipped when the
//!   same bytes are there already.
//! - [`stack_outputs`]: the outputs of a deployed stack.
//!
//! Every call goes to the caller's own credentials ([`orgop_aws::Target::own`]) in the given
//! region. Every wait is bounded by a limit of [`DeployOptions`] that the timeout error
//! names. Failures carry CloudFormation's own reasons (the `*_FAILED` stack events, a change
//! set's status reason, a StackSet operation's per-account results). Nothing is printed.
#![deny(missing_docs)]

mod artifact;
mod error;
mod stack;
mod stackset;
mod wait;

use std::collections::BTreeMap;
use std::time::Duration;

pub use artifact::{ArtifactOutcome, upload_artifact};
pub use error::DeployError;
pub use stack::{
    Change, StackOutcome, StackSpec, deploy_stack, deploy_stack_with, failure_reasons,
    stack_outputs,
};
pub use stackset::{
    CallAs, OperationPreferences, StackInstance, StackSetOutcome, StackSetSpec, deploy_stackset,
    deploy_stackset_with,
};

/// Limits and choices of a deployment. `Default` is what `orgop deploy` uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeployOptions {
    /// The longest wait for a stack to finish creating, updating or deleting (default 30 min).
    pub stack_timeout: Duration,
    /// The longest wait for a change set to be computed (default 10 min).
    pub change_set_timeout: Duration,
    /// The longest wait for one StackSet operation (default 60 min: an operation rolls out
    /// to every account of the OUs).
    pub operation_timeout: Duration,
    /// The first pause between two polls of a StackSet operation (default 2 s); it doubles
    /// up to [`DeployOptions::poll_max`].
    pub poll_initial: Duration,
    /// The longest pause between two polls of a StackSet operation (default 30 s).
    pub poll_max: Duration,
    /// A stack in `ROLLBACK_COMPLETE` (its first create failed and was rolled back: nothing
    /// of it exists, and it can never be updated) is deleted and created again (default
    /// `true`). With `false` it is an error ([`DeployError::StackNotUpdatable`]). Stacks in
    /// any other state are never deleted.
    pub delete_rolled_back_stack: bool,
}

impl Default for DeployOptions {
    fn default() -> Self {
        DeployOptions {
            stack_timeout: Duration::from_secs(30 * 60),
            change_set_timeout: Duration::from_secs(10 * 60),
            operation_timeout: Duration::from_secs(60 * 60),
            poll_initial: Duration::from_secs(2),
            poll_max: Duration::from_secs(30),
            delete_rolled_back_stack: true,
        }
    }
}

/// `[{ParameterKey, ParameterValue}]` of a parameter map.
fn parameter_list(parameters: &BTreeMap<String, String>) -> serde_json::Value {
    parameters
        .iter()
        .map(|(k, v)| serde_json::json!({"ParameterKey": k, "ParameterValue": v}))
        .collect()
}

/// Whether deployed parameters (`[{ParameterKey, ParameterValue}]` as DescribeStacks or
/// DescribeStackSet answer them) are those `wanted` would give with `template_body`: a
/// parameter not in `wanted` must have its template default; a masked (`NoEcho`) value never
/// matches, so it is always sent again.
fn parameters_match(
    deployed: &serde_json::Value,
    wanted: &BTreeMap<String, String>,
    template_body: &str,
) -> bool {
    let deployed: BTreeMap<&str, &str> = deployed
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .filter_map(|p| {
            Some((
                p.get("ParameterKey")?.as_str()?,
                p.get("ParameterValue")
                    .and_then(|v| v.as_str())
                    .unwrap_or(""),
            ))
        })
        .collect();
    let template: Option<serde_json::Value> = serde_json::from_str(template_body).ok();
    let default_of = |key: &str| -> Option<String> {
        let d = template
            .as_ref()?
            .get("Parameters")?
            .get(key)?
            .get("Default")?;
        Some(match d {
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Array(items) => items
                .iter()
                .map(|i| i.as_str().map_or_else(|| i.to_string(), str::to_string))
                .collect::<Vec<_>>()
                .join(","),
            other => other.to_string(),
        })
    };
    let deployed_ok = deployed.iter().all(|(k, v)| {
        if *v == "****" {
            return false;
        }
        match wanted.get(*k) {
            Some(w) => w == v,
            None => default_of(k).as_deref() == Some(*v),
        }
    });
    deployed_ok && wanted.keys().all(|k| deployed.contains_key(k.as_str()))
}

/// `[{Key, Value}]` of a tag map.
fn tag_list(tags: &BTreeMap<String, String>) -> serde_json::Value {
    tags.iter()
        .map(|(k, v)| serde_json::json!({"Key": k, "Value": v}))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn parameters_match_with_template_defaults_and_never_when_masked() {
        let body = r#"{"Parameters": {"A": {"Type": "String"}, "B": {"Type": "String", "Default": "b"},
            "N": {"Type": "Number", "Default": 3}, "L": {"Type": "CommaDelimitedList", "Default": ["x", "y"]}},
            "Resources": {}}"#;
        let deployed = json!([
            {"ParameterKey": "A", "ParameterValue": "a"},
            {"ParameterKey": "B", "ParameterValue": "b"},
            {"ParameterKey": "N", "ParameterValue": "3"},
            {"ParameterKey": "L", "ParameterValue": "x,y"},
        ]);
        assert!(parameters_match(&deployed, &map(&[("A", "a")]), body));
        assert!(parameters_match(
            &deployed,
            &map(&[("A", "a"), ("B", "b")]),
            body
        ));
        assert!(!parameters_match(&deployed, &map(&[("A", "z")]), body));
        // Back to the default from an explicit value: B was deployed as "c".
        let was_c = json!([{"ParameterKey": "A", "ParameterValue": "a"}, {"ParameterKey": "B", "ParameterValue": "c"}]);
        assert!(!parameters_match(&was_c, &map(&[("A", "a")]), body));
        // A new parameter, and a masked one.
        assert!(!parameters_match(
            &json!([]),
            &map(&[("A", "a")]),
            r#"{"Resources": {}}"#
        ));
        let masked = json!([{"ParameterKey": "A", "ParameterValue": "****"}]);
        assert!(!parameters_match(&masked, &map(&[("A", "a")]), body));
        // StackSets list only the parameters given.
        assert!(parameters_match(
            &json!([{"ParameterKey": "A", "ParameterValue": "a"}]),
            &map(&[("A", "a")]),
            body
        ));
        assert!(parameters_match(&json!(null), &map(&[]), "not json"));
    }
}
