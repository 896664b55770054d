//! The typed runbook, exactly as authors write it.
//!
//! These types are the source of truth for `schema/runbook.schema.json` (generated with
//! schemars, checked in, drift-tested). Every struct rejects unknown keys. Ordered maps
//! (`IndexMap`) keep the author's order where it is visible in output (report columns).
//!
//! Semantics that the schema cannot state (step references, JMESPath and template syntax,
//! read-only vs mutating calls, schedule syntax) are checked by `orgop-check`.
use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// An orgop runbook: which AWS calls to make in every targeted account and region, what to
/// report, and which remediation actions to take when applied.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "orgop runbook")]
pub struct Runbook {
    /// Runbook name: lowercase letters, digits and hyphens. Names the compiled state machine
    /// (`<name>.asl.json`) and the results.
    #[schemars(pattern("^[a-z][a-z0-9-]{0,63}$"))]
    pub name: String,
    /// What the runbook finds and what its actions do, for humans.
    #[schemars(length(min = 1))]
    pub description: String,
    /// Version of this runbook; bump it when behaviour changes.
    #[schemars(range(min = 1))]
    pub version: u32,
    /// Which accounts and regions to run in.
    pub targets: Targets,
    /// The IAM role assumed in each target account.
    pub role: Role,
    /// How many account/region items run at once (the Map's `MaxConcurrency`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 1000))]
    pub concurrency: Option<u32>,
    /// When to run once deployed, in EventBridge syntax: `cron(min hour day-of-month month
    /// day-of-week year)` or `rate(value unit)`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<String>,
    /// Whether scheduled runs send the actions. Off by default: a scheduled run is a dry run
    /// that reports what it would do. Needs `schedule` and `actions`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub apply_on_schedule: bool,
    /// Run-time parameters, overridable with `orgop run --param name=value` or the execution
    /// input. Templates read them as `params.<name>`, JMESPath as `param('<name>')`.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub params: IndexMap<String, ParamSpec>,
    /// Constant data for every account and region. Compiled once into the state machine's
    /// Map `ItemSelector`, never repeated per item. Templates read it as `shared.<key>`,
    /// JMESPath as `shared('<key>')`.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub shared: IndexMap<String, Value>,
    /// Read-only calls, run in order in every account and region.
    #[schemars(length(min = 1))]
    pub steps: Vec<Step>,
    /// Mutating calls. Planned and reported on every run; sent only when applied
    /// (`orgop run --apply`, or `apply: true` in the execution input).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub actions: Vec<Step>,
    /// How findings are reported: which step's results, the resource id and the columns.
    pub report: Report,
    /// Limits on what actions may do.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub safety: Option<Safety>,
    /// How the compiled state machine runs the items.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution: Option<Execution>,
    /// Deployed runs that apply wait for a person: the state machine plans first (a dry run
    /// that stores the plan file), publishes its summary and asks for approval; `orgop approve
    /// EXECUTION` applies exactly that plan (each planned resource re-read first), `orgop
    /// reject EXECUTION` or the timeout ends the run with nothing changed. Needs `actions`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval: Option<Approval>,
}

/// How long a deployed run waits for approval: see [`Runbook::approval`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Approval {
    /// Hours the execution waits for `orgop approve` or `orgop reject`; then it ends
    /// `OrgOp.ApprovalTimedOut`, nothing applied. At most 720 (30 days).
    #[schemars(range(min = 1, max = 720))]
    pub timeout_hours: u32,
}

/// Which accounts and regions a runbook runs in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Targets {
    /// A list of region names, or `enabled` for every region enabled in each account.
    pub regions: Regions,
    /// Organizational units (or the root, `r-...`) whose accounts are targeted, walked
    /// recursively. With neither this nor `accounts`, every ACTIVE account is targeted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(inner(pattern(crate::ids::OU_ID_PATTERN)))]
    pub organizational_units: Vec<String>,
    /// Account ids to include.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(inner(pattern(crate::ids::ACCOUNT_ID_PATTERN)))]
    pub accounts: Vec<String>,
    /// Account ids never to run in, even when an OU or the whole organization includes them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(inner(pattern(crate::ids::ACCOUNT_ID_PATTERN)))]
    pub exclude_accounts: Vec<String>,
    /// Only accounts whose Organizations tags match: tag key -> value, or a list of values
    /// (any of them). All keys must match.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub account_tags: IndexMap<String, TagValues>,
    /// `accounts` (the default): every targeted account x region, in the role `role.name`.
    /// `operations`: once, in the operations account (the one running orgop: the caller, or
    /// the orgop Lambda's), with its own credentials and no role assumed, in the one region
    /// listed; for what only that account can read, like the organization's accounts.
    #[serde(default, skip_serializing_if = "Scope::is_accounts")]
    pub scope: Scope,
}

/// Where a runbook runs: see [`Targets::scope`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// Every targeted account x region.
    #[default]
    Accounts,
    /// Once, in the operations account, with its own credentials.
    Operations,
}

impl Scope {
    fn is_accounts(&self) -> bool {
        *self == Scope::Accounts
    }
}

/// Regions: an explicit list or the keyword `enabled`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum Regions {
    /// These regions, in every targeted account.
    List(#[schemars(length(min = 1), inner(pattern(crate::ids::REGION_PATTERN)))] Vec<String>),
    /// Every region enabled in each account (`account:ListRegions`).
    Keyword(RegionsKeyword),
}

/// The keyword form of [`Regions`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RegionsKeyword {
    /// Every region enabled in the account.
    Enabled,
}

/// One tag value or any of several.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum TagValues {
    /// Exactly this value.
    One(String),
    /// Any of these values.
    Any(#[schemars(length(min = 1))] Vec<String>),
}

/// The role orgop assumes in each target account.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Role {
    /// Role name, optionally with a path (`orgop/OrgOpExecution`); the ARN is built per
    /// account as `arn:<partition>:iam::<account>:role/<name>`.
    #[schemars(pattern("^[\\w+=,.@/-]{1,512}$"))]
    pub name: String,
    /// The role assumed instead of `name` when the run is applied (`orgop run --apply`,
    /// `apply: true` in the execution input): the remediation role, the only one allowed the
    /// actions' calls. Without it, applied runs assume `name` too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern("^[\\w+=,.@/-]{1,512}$"))]
    pub apply_name: Option<String>,
    /// `ExternalId` passed to `sts:AssumeRole`, when the role's trust policy requires one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern("^[\\w+=,.@:/-]{2,1224}$"))]
    pub external_id: Option<String>,
    /// `RoleSessionName`; defaults to `orgop-<runbook name>`. Shows in CloudTrail.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern("^[\\w+=,.@-]{2,64}$"))]
    pub session_name: Option<String>,
}

/// A run-time parameter.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ParamSpec {
    /// The parameter's type.
    #[serde(rename = "type")]
    pub ty: ParamType,
    /// The value when none is given at run time. Without one the parameter is required.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<Value>,
    /// What the parameter means.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// When present, the only values accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1))]
    pub allowed: Option<Vec<Value>>,
    /// Smallest accepted value (numbers only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minimum: Option<serde_json::Number>,
    /// Largest accepted value (numbers only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maximum: Option<serde_json::Number>,
}

/// Types a parameter can have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ParamType {
    /// Text.
    String,
    /// A whole number.
    Integer,
    /// Any number.
    Number,
    /// `true` or `false`.
    Boolean,
    /// A list of values.
    List,
    /// A mapping.
    Object,
}

/// One AWS API call: a read-only step, or a mutating action.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Step {
    /// Identifier, unique in the runbook: lowercase letters, digits, `_`. Later steps read the
    /// results as `steps.<id>` in templates and name it in `for_each` and `report.from`.
    #[schemars(pattern("^[a-z][a-z0-9_]{0,63}$"))]
    pub id: String,
    /// The call, named like its IAM action: `service:Operation`, e.g. `ec2:DescribeVolumes`.
    #[schemars(pattern("^[a-z0-9][a-z0-9-]*:[A-Z][A-Za-z0-9]*$"))]
    pub call: String,
    /// What the step is for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The API parameters, named exactly as in the API reference. Strings are minijinja
    /// templates; a string that is exactly `{{ expr }}` keeps the expression's type.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub parameters: IndexMap<String, Value>,
    /// Follow pagination tokens and merge every page (only when the operation is paginated).
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub paginate: bool,
    /// JMESPath over the (merged) response choosing the results, e.g. `Volumes[]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub select: Option<String>,
    /// JMESPath evaluated on each selected result; only truthy results are kept.
    #[serde(default, skip_serializing_if = "Option::is_none", rename = "where")]
    pub where_: Option<String>,
    /// Run once per result of this earlier step (or action); the result is `item` in
    /// templates and `when`. A step may name several earlier steps (`[roots, ous]`): it
    /// runs once per result of each, in that order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub for_each: Option<ForEach>,
    /// Join: each result of this `for_each` step carries the item it came from under this
    /// key (`item_as: account` -> `account.Id` in `where`, the report and later steps).
    /// Each result must be an object (select one: `{Tags: Tags}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern("^[A-Za-z_][A-Za-z0-9_]{0,63}$"))]
    pub item_as: Option<String>,
    /// A minijinja expression; the call is made only when it is true (per item with
    /// `for_each`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub when: Option<String>,
    /// Error codes that mean "nothing to do here" rather than failure (e.g.
    /// `InvalidVolume.NotFound` for a delete): the call counts as done with no results.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(inner(length(min = 1)))]
    pub ignore_errors: Vec<String>,
    /// After the action succeeds, wait for its effect with one of the service model's
    /// waiters (actions only). The item errors when the waiter fails or times out, and the
    /// later actions for that resource are skipped; other items go on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wait: Option<Wait>,
}

/// What a step iterates over: one earlier step, or several (their results in order).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum ForEach {
    /// One step's id.
    One(String),
    /// Several steps' ids.
    Many(#[schemars(length(min = 1, max = 16))] Vec<String>),
}

impl ForEach {
    /// The ids named, in order.
    pub fn ids(&self) -> &[String] {
        match self {
            ForEach::One(id) => std::slice::from_ref(id),
            ForEach::Many(ids) => ids,
        }
    }
}

/// Waiting on an action's effect.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Wait {
    /// A waiter of the action's service, as botocore names it (`SnapshotCompleted`).
    #[schemars(pattern("^[A-Z][A-Za-z0-9]*$"))]
    pub waiter: String,
    /// The waiter operation's parameters. Templates also see `response`, the action's answer:
    /// `SnapshotIds: ["{{ response.SnapshotId }}"]`.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub parameters: IndexMap<String, Value>,
    /// How long to wait at most, in seconds (default: the waiter's delay times its attempts).
    /// Polls are the waiter's delay apart; the count, not a clock, bounds them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 43200))]
    pub timeout_seconds: Option<u32>,
}

fn yes() -> bool {
    true
}

fn is_true(b: &bool) -> bool {
    *b
}

/// How a finding row is made.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Report {
    /// The step whose results are the findings.
    pub from: String,
    /// JMESPath on each result giving the resource id, e.g. `VolumeId`.
    pub resource_id: String,
    /// Extra columns: column name -> JMESPath on each result. Columns keep this order in the
    /// CSV, after `account_id`, `account_name`, `region`, `resource_id`.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub columns: IndexMap<String, String>,
    /// More steps whose results are findings in the same table (public endpoints: load
    /// balancers, databases, APIs), each with its own resource id and the same column names.
    /// Their rows follow those of `from`, in this order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub also: Vec<ReportSource>,
}

/// One more source of findings for [`Report`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReportSource {
    /// The step whose results are findings too.
    pub from: String,
    /// JMESPath on each of its results giving the resource id.
    pub resource_id: String,
    /// The report's columns (the same names as `report.columns`), as JMESPath on its results.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub columns: IndexMap<String, String>,
}

/// Limits on actions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Safety {
    /// At most this many resources acted on per account and region.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub max_actions_per_account: Option<u32>,
    /// At most this many resources acted on in the whole run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub max_actions_per_run: Option<u32>,
    /// Resources carrying any of these tags (key -> value, or a list of values) are never
    /// acted on.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub protected_tags: IndexMap<String, TagValues>,
}

/// How the compiled state machine runs the items.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Execution {
    /// `inline` Map (at most 40 concurrent iterations and 25,000 history events per
    /// execution), `distributed` Map (items from S3, results to S3), or `auto` (the default):
    /// inline only when the item count is known at compile time and at most
    /// `inline_max_items`.
    #[serde(default)]
    pub map: MapMode,
    /// The largest item count `auto` still runs inline. Default 500.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 1000))]
    pub inline_max_items: Option<u32>,
    /// Distributed Map only: the share of failed items (0-100) the run tolerates before the
    /// Map fails. Default 100 (items fail individually and are reported).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 100))]
    pub tolerated_failure_percentage: Option<u8>,
}

/// Map state flavour.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum MapMode {
    /// Decide from the targets.
    #[default]
    Auto,
    /// Inline Map.
    Inline,
    /// Distributed Map.
    Distributed,
}
