//! The plan types.
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// Version of the plan format; bumped on incompatible changes so an old worker refuses a new
/// plan instead of misreading it.
pub const PLAN_FORMAT: u32 = 1;

/// A runbook lowered for execution in one account and region.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Plan {
    /// [`PLAN_FORMAT`] at compile time.
    pub format: u32,
    /// Runbook name.
    pub runbook: String,
    /// Runbook version.
    pub version: u32,
    /// The runbook file, as given to the compiler.
    pub source: String,
    /// Role assumed in each account.
    pub role: RolePlan,
    /// Parameter definitions (defaults applied by the fanout, checked again by the worker).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub params: BTreeMap<String, ParamDef>,
    /// Read-only calls, in order.
    pub steps: Vec<CallPlan>,
    /// Mutating calls, in order; sent only when applied.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub actions: Vec<CallPlan>,
    /// How findings are made.
    pub report: ReportPlan,
    /// Limits on actions.
    #[serde(default, skip_serializing_if = "SafetyPlan::is_empty")]
    pub safety: SafetyPlan,
    /// `targets.scope: operations`: the item is the operations account, whose own credentials
    /// make the calls; no role is assumed.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub operations: bool,
}

/// Role to assume.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RolePlan {
    /// Role name, possibly with a path.
    pub name: String,
    /// Role assumed instead of `name` when the run is applied (the remediation role).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub apply_name: Option<String>,
    /// `ExternalId`, when required.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
    /// `RoleSessionName`.
    pub session_name: String,
}

impl RolePlan {
    /// The role a run assumes: `apply_name` when the run is applied and one is set, else
    /// `name`.
    pub fn for_run(&self, apply: bool) -> RolePlan {
        match (&self.apply_name, apply) {
            (Some(apply_name), true) => RolePlan {
                name: apply_name.clone(),
                ..self.clone()
            },
            _ => self.clone(),
        }
    }
}

/// A parameter's definition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParamDef {
    /// `string`, `integer`, `number`, `boolean`, `list` or `object`.
    #[serde(rename = "type")]
    pub ty: String,
    /// Default value; absent means required.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<Value>,
    /// Accepted values, when restricted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed: Option<Vec<Value>>,
    /// Smallest accepted number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minimum: Option<serde_json::Number>,
    /// Largest accepted number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maximum: Option<serde_json::Number>,
}

/// One call (step or action).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallPlan {
    /// Step id.
    pub id: String,
    /// Service as written (`ec2`).
    pub service: String,
    /// Operation (`DescribeVolumes`).
    pub operation: String,
    /// Whether the operation changes resources (`orgop_vocab::verbs::is_mutating`).
    pub mutating: bool,
    /// API parameters; strings are minijinja templates.
    #[serde(default, skip_serializing_if = "value_is_empty")]
    pub parameters: Value,
    /// Follow pagination.
    pub paginate: bool,
    /// JMESPath choosing results from the response.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub select: Option<String>,
    /// JMESPath filter per result.
    #[serde(default, skip_serializing_if = "Option::is_none", rename = "where")]
    pub where_: Option<String>,
    /// Earlier steps to iterate over, in order (none: one pass without `item`). One id is
    /// written as a string, several as a list.
    #[serde(default, skip_serializing_if = "Vec::is_empty", with = "one_or_many")]
    pub for_each: Vec<String>,
    /// Each result carries its `for_each` item under this key (a join).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub item_as: Option<String>,
    /// minijinja condition.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub when: Option<String>,
    /// Error codes meaning "nothing to do".
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ignore_errors: Vec<String>,
    /// Waiting on the action's effect, with the waiter's definition copied from the model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wait: Option<WaitPlan>,
    /// `file:line:col` of the step in the runbook, for errors and ASL comments.
    pub at: String,
}

/// A waiter run after an action: botocore's definition (`waiters-2.json`) and the runbook's
/// parameters and bound.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WaitPlan {
    /// The waiter's name (`SnapshotCompleted`).
    pub waiter: String,
    /// The operation it polls (`DescribeSnapshots`), of the action's service.
    pub operation: String,
    /// Its parameters; strings are templates that also see `response`.
    #[serde(default, skip_serializing_if = "value_is_empty")]
    pub parameters: Value,
    /// Seconds between polls.
    pub delay_seconds: u64,
    /// Polls at most (the runbook's timeout over the delay, or the waiter's own count).
    pub max_attempts: u32,
    /// The acceptors, as botocore writes them (`matcher`, `expected`, `state`, `argument`).
    pub acceptors: Vec<Value>,
}

fn value_is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Object(m) => m.is_empty(),
        _ => false,
    }
}

/// How findings are made.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportPlan {
    /// Step whose results are findings.
    pub from: String,
    /// JMESPath giving the resource id.
    pub resource_id: String,
    /// Columns in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub columns: Vec<Column>,
    /// More steps whose results are findings, each with the same column names, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub also: Vec<ReportSourcePlan>,
}

/// One more source of findings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportSourcePlan {
    /// Step whose results are findings.
    pub from: String,
    /// JMESPath giving the resource id.
    pub resource_id: String,
    /// The report's columns, by the same names and in the same order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub columns: Vec<Column>,
}

impl ReportPlan {
    /// Whether results of step `id` are findings.
    pub fn reads(&self, id: &str) -> bool {
        self.from == id || self.also.iter().any(|s| s.from == id)
    }
}

/// One report column.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Column {
    /// Column name.
    pub name: String,
    /// JMESPath on each result.
    pub expr: String,
}

/// Limits on actions.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SafetyPlan {
    /// Per account and region.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_actions_per_account: Option<u32>,
    /// Per run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_actions_per_run: Option<u32>,
    /// Tag key -> values that protect a resource.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub protected_tags: BTreeMap<String, Vec<String>>,
}

impl SafetyPlan {
    /// No limits at all.
    pub fn is_empty(&self) -> bool {
        self.max_actions_per_account.is_none()
            && self.max_actions_per_run.is_none()
            && self.protected_tags.is_empty()
    }
}

/// Which accounts and regions (the fanout's input).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetsPlan {
    /// Explicit regions; empty when `enabled_regions`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub regions: Vec<String>,
    /// Every region enabled in each account.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub enabled_regions: bool,
    /// OUs walked recursively.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub organizational_units: Vec<String>,
    /// Accounts included.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub accounts: Vec<String>,
    /// Accounts excluded.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exclude_accounts: Vec<String>,
    /// Tag key -> accepted values.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub account_tags: BTreeMap<String, Vec<String>>,
    /// Every call is to a global service: one item per account, region
    /// [`crate::contract::GLOBAL_REGION`], whatever regions are asked for.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub global: bool,
    /// `targets.scope: operations`: one item, the operations account itself, in the first
    /// region.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub operations: bool,
}

impl TargetsPlan {
    /// The number of items when it is known without asking Organizations: explicit accounts
    /// and explicit regions, no OUs, no tag filter; one for the operations account.
    pub fn known_item_count(&self) -> Option<usize> {
        if self.operations {
            return Some(1);
        }
        if self.enabled_regions
            || !self.organizational_units.is_empty()
            || !self.account_tags.is_empty()
            || self.accounts.is_empty()
        {
            return None;
        }
        let accounts = self
            .accounts
            .iter()
            .filter(|a| !self.exclude_accounts.contains(a))
            .count();
        Some(accounts * self.regions.len())
    }
}

/// Flavour of the Map state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MapKind {
    /// Inline Map: items in the state payload.
    Inline,
    /// Distributed Map: items read from S3, results written to S3.
    Distributed,
}

/// A deployed run that applies waits this long for `orgop approve` / `orgop reject`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApprovalPlan {
    /// The approval task's `TimeoutSeconds`.
    pub timeout_seconds: u64,
}

/// Everything the compiler needs: the plan and the deployment settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Lowered {
    /// What each worker runs.
    pub plan: Plan,
    /// Where to run.
    pub targets: TargetsPlan,
    /// Constant data for every item (hoisted once into the Map's ItemSelector).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub shared: BTreeMap<String, Value>,
    /// Map `MaxConcurrency`.
    pub concurrency: u32,
    /// Inline or distributed, decided at lowering.
    pub map: MapKind,
    /// Distributed Map `ToleratedFailurePercentage`.
    pub tolerated_failure_percentage: u8,
    /// EventBridge schedule expression.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<String>,
    /// Scheduled runs send the actions.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub apply_on_schedule: bool,
    /// Deployed runs that apply wait for approval (the runbook's `approval`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval: Option<ApprovalPlan>,
    /// `file:line:col` of each top-level part, for comments: `targets`, `steps`, `report`.
    pub at: BTreeMap<String, String>,
}

/// `for_each` as the runbook writes it: one id as a string, several as a list.
mod one_or_many {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Form {
        One(String),
        Many(Vec<String>),
    }

    pub fn serialize<S: Serializer>(ids: &[String], s: S) -> Result<S::Ok, S::Error> {
        match ids {
            [one] => one.serialize(s),
            many => many.serialize(s),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
        Ok(match Form::deserialize(d)? {
            Form::One(id) => vec![id],
            Form::Many(ids) => ids,
        })
    }
}
