//! Lowered runbooks -> CloudFormation, pure like `orgop-statemachine` (plan -> ASL):
//!
//! - [`member_roles`]: the roles orgop assumes in every member account, for a
//!   service-managed StackSet. A read role allowed exactly the IAM actions of the runbooks'
//!   `steps` (and what orgop itself calls there), and, when some runbook has `actions`, a
//!   remediation role allowed the steps' and the actions' actions. Both trust only the orgop
//!   Lambda's role in the operations account, from inside the organization.
//! - [`operations`]: the operations-account stack: the orgop Lambda, one state machine per
//!   runbook (the compiled definition, its `${...}` placeholders substituted), a schedule
//!   per runbook with `schedule:`, the results table, bucket and topic, and least-privilege
//!   roles for each.
//!
//! Both are deterministic: the same runbooks give the same bytes ([`to_json`]). Deploying
//! them (the I/O) is `orgop-deploy`'s job.
#![deny(missing_docs)]

pub mod iam;
mod member;
mod operations;

pub use member::member_roles;
pub use operations::{OperationsOptions, definition_sub, operations};

use orgop_plan::Lowered;
use serde_json::Value;
use std::collections::BTreeSet;

/// Name of the orgop Lambda's role in the operations account, the one principal the member
/// roles trust (a template parameter of both stacks, this by default).
pub const LAMBDA_ROLE_NAME: &str = "OrgOpLambdaRole";

pub use orgop_plan::contract::state_machine_name;

/// Actions orgop itself calls in a member account with the read role: listing the regions
/// enabled there, for runbooks with `regions: enabled`.
pub const ENABLED_REGIONS_ACTIONS: &[&str] = &["account:ListRegions"];

/// IAM's limit on the inline policies of one role, in characters (whitespace excluded).
pub const ROLE_POLICY_LIMIT: usize = 10_240;

/// Why templates cannot be generated.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum StacksError {
    /// Nothing to generate from.
    #[error("no runbook given")]
    NoRunbooks,
    /// Two runbooks would make resources of the same name.
    #[error(
        "runbooks `{0}` and `{1}` would name their state machines alike: rename one (names differ beyond `-` and case)"
    )]
    NameClash(String, String),
    /// Runbooks assume different roles; one StackSet deploys one read and one remediation
    /// role.
    #[error(
        "{what} differs between runbooks: `{first}` in {first_source}, `{second}` in {second_source}; the roles deployed together are shared by every runbook: use the same value, or generate a StackSet per role"
    )]
    RolesDiffer {
        /// `role.name`, `role.apply_name` or `role.external_id`.
        what: &'static str,
        /// The first value.
        first: String,
        /// Its runbook file.
        first_source: String,
        /// The other value.
        second: String,
        /// Its runbook file.
        second_source: String,
    },
    /// A runbook with actions has no remediation role: applying it would need the read role
    /// to be allowed its actions.
    #[error(
        "{file}: runbook `{runbook}` has `actions` but no `role.apply_name`: applied runs would assume the read role, which is never allowed mutating calls"
    )]
    NoApplyRole {
        /// Runbook name.
        runbook: String,
        /// Its file.
        file: String,
    },
    /// A role's policy is over IAM's size limit.
    #[error(
        "the {role} role's policy would be {size} characters, over IAM's limit of {limit} for a role's inline policies: split the runbooks into two StackSets"
    )]
    PolicyTooLarge {
        /// `read` or `remediation`.
        role: &'static str,
        /// Its size.
        size: usize,
        /// [`ROLE_POLICY_LIMIT`].
        limit: usize,
    },
}

/// The member roles the runbooks need: names and IAM actions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Roles {
    /// Assumed by every run that is not applied, and by the fanout.
    pub read: Role,
    /// Assumed by applied runs of runbooks with actions.
    pub remediation: Option<Role>,
    /// `sts:ExternalId` the runbooks pass, when they do.
    pub external_id: Option<String>,
}

/// One role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Role {
    /// Role name (the runbooks' `role.name` or `role.apply_name`).
    pub name: String,
    /// Every IAM action it is allowed, sorted.
    pub actions: BTreeSet<String>,
}

/// Every IAM action the runbooks that run in the operations account (`targets.scope:
/// operations`) call, steps and actions alike: the orgop Lambda's own role makes those calls.
pub fn operations_actions(runbooks: &[&Lowered]) -> BTreeSet<String> {
    runbooks
        .iter()
        .filter(|l| l.plan.operations)
        .flat_map(|l| l.plan.steps.iter().chain(l.plan.actions.iter()))
        .flat_map(iam::actions_of)
        .collect()
}

/// The roles `runbooks` need, with the IAM actions of their calls.
pub fn roles(runbooks: &[&Lowered]) -> Result<Roles, StacksError> {
    let first = runbooks.first().ok_or(StacksError::NoRunbooks)?;
    let same = |what: &'static str, get: &dyn Fn(&Lowered) -> Option<String>| {
        let mut seen: Option<(String, &str)> = None;
        for l in runbooks {
            let Some(v) = get(l) else { continue };
            match &seen {
                Some((first, first_source)) if *first != v => {
                    return Err(StacksError::RolesDiffer {
                        what,
                        first: first.clone(),
                        first_source: first_source.to_string(),
                        second: v,
                        second_source: l.plan.source.clone(),
                    });
                }
                Some(_) => {}
                None => seen = Some((v, &l.plan.source)),
            }
        }
        Ok(seen.map(|(v, _)| v))
    };
    same("role.name", &|l| Some(l.plan.role.name.clone()))?;
    let apply_name = same("role.apply_name", &|l| l.plan.role.apply_name.clone())?;
    let external_id = same("role.external_id", &|l| l.plan.role.external_id.clone())?;

    let mut read = BTreeSet::new();
    let mut remediation = BTreeSet::new();
    // A runbook of the operations account runs with the orgop Lambda's own role, not the
    // member roles (see `operations_actions`).
    for l in runbooks.iter().filter(|l| !l.plan.operations) {
        if !l.plan.actions.is_empty() && l.plan.role.apply_name.is_none() {
            return Err(StacksError::NoApplyRole {
                runbook: l.plan.runbook.clone(),
                file: l.plan.source.clone(),
            });
        }
        let steps: BTreeSet<String> = l.plan.steps.iter().flat_map(iam::actions_of).collect();
        if l.targets.enabled_regions {
            read.extend(ENABLED_REGIONS_ACTIONS.iter().map(|a| a.to_string()));
        }
        read.extend(steps.iter().cloned());
        if !l.plan.actions.is_empty() {
            remediation.extend(steps);
            remediation.extend(l.plan.actions.iter().flat_map(iam::actions_of));
        }
    }
    Ok(Roles {
        read: Role {
            name: first.plan.role.name.clone(),
            actions: read,
        },
        remediation: apply_name.map(|name| Role {
            name,
            actions: remediation,
        }),
        external_id,
    })
}

/// A template as checked-in text: JSON, two-space indented, keys in the order written,
/// ending in a newline.
pub fn to_json(template: &Value) -> String {
    let mut s = serde_json::to_string_pretty(template).expect("a JSON value serializes");
    s.push('\n');
    s
}

/// `unused-ebs` -> `UnusedEbs`: a CloudFormation logical id part.
fn pascal(name: &str) -> String {
    name.split('-')
        .map(|w| {
            let mut c = w.chars();
            match c.next() {
                Some(f) => f.to_ascii_uppercase().to_string() + c.as_str(),
                None => String::new(),
            }
        })
        .collect()
}

/// The runbooks' logical id parts, refusing two that would clash.
fn logical_names<'a>(runbooks: &[&'a Lowered]) -> Result<Vec<(String, &'a Lowered)>, StacksError> {
    let mut out: Vec<(String, &Lowered)> = Vec::new();
    for l in runbooks {
        let id = pascal(&l.plan.runbook);
        if let Some((_, other)) = out.iter().find(|(o, _)| o.eq_ignore_ascii_case(&id)) {
            return Err(StacksError::NameClash(
                other.plan.runbook.clone(),
                l.plan.runbook.clone(),
            ));
        }
        out.push((id, l));
    }
    Ok(out)
}

/// Checkov's skip list for a resource's `Metadata`: `(check id, reason)`.
fn checkov_skips(skips: &[(&str, &str)]) -> Value {
    Value::Array(
        skips
            .iter()
            .map(|(id, comment)| serde_json::json!({"id": id, "comment": comment}))
            .collect(),
    )
}

/// The size IAM counts for a policy: its JSON without whitespace.
fn policy_size(policy: &Value) -> usize {
    serde_json::to_string(policy).map_or(0, |s| s.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logical_ids_are_pascal_case() {
        assert_eq!(pascal("unused-ebs"), "UnusedEbs");
        assert_eq!(pascal("a1-b"), "A1B");
    }
}
