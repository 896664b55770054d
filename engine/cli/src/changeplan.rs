//! Change plans: what a dry run (`orgop run --plan-out FILE`) would do, as a file an operator
//! reviews (`orgop plan show FILE`) and `orgop apply FILE` carries out exactly.
//!
//! The file is JSON, keys sorted, actions sorted by account, region, the action's place in the
//! runbook and the resource. `digest` is `sha256:` and the hex SHA-256 of the plan's compact
//! JSON, keys sorted, without `digest` itself: a plan edited by hand no longer matches it and
//! is refused.
use crate::{EXIT_OK, EXIT_USAGE};
use clap::{Args, Subcommand};
use orgop_exec::{ActionRecord, Item, ItemHooks, ItemResult};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::Digest as _;
use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// The value of a plan's `format`.
pub const FORMAT: &str = "orgop-change-plan/1";
/// The largest plan file `orgop apply` and `orgop plan show` read (64 MiB): a plan holds one
/// entry per planned action, and safety caps keep real plans far below this.
pub const MAX_PLAN_BYTES: u64 = 64 << 20;

/// The runbook a plan was made from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunbookRef {
    /// `name:`.
    pub name: String,
    /// `version:`.
    pub version: u32,
    /// The path the plan was made with (`orgop apply` reads it there unless `--runbook`).
    pub path: String,
    /// Hex SHA-256 of the runbook file's bytes.
    pub sha256: String,
}

/// One account x region of the dry run, and how it ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanItem {
    /// Account id.
    pub account_id: String,
    /// Account name.
    pub account_name: String,
    /// Region.
    pub region: String,
    /// `ok`, `denied`, `error`, `skipped`, `not_run`.
    pub status: String,
    /// `CODE: message` when not ok: its actions (if any) are not in the plan.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// One planned action.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlannedAction {
    /// Account id.
    pub account_id: String,
    /// Account name.
    pub account_name: String,
    /// Region.
    pub region: String,
    /// Action id.
    pub action: String,
    /// `service:Operation`.
    pub call: String,
    /// The resource (`report.resource_id` of the element), or null.
    pub resource_id: Value,
    /// The `for_each` element the action came from, whole, as the interpreter saw it (null
    /// without `for_each`): `orgop apply` acts only when it reads the same again.
    pub item: Value,
    /// The exact parameters that will be sent.
    pub parameters: Value,
}

/// A change plan (see the module documentation).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChangePlan {
    /// [`FORMAT`].
    pub format: String,
    /// The runbook.
    pub runbook: RunbookRef,
    /// The organization the plan was made in (`organizations:DescribeOrganization`), or empty
    /// when it could not be read.
    pub organization_id: String,
    /// The dry run's execution id: `orgop apply` runs as this execution, so the idempotency
    /// tokens of its actions are the same however often the plan is applied.
    pub execution: String,
    /// When the dry run started, UTC.
    pub created_at: String,
    /// The parameters, defaults applied.
    pub params: Map<String, Value>,
    /// Every item of the dry run.
    pub items: Vec<PlanItem>,
    /// Every planned action.
    pub actions: Vec<PlannedAction>,
    /// `sha256:<hex>` over the rest.
    pub digest: String,
}

/// Hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The digest of a plan's JSON without its `digest` member.
fn digest_of(plan: &Value) -> String {
    let mut v = plan.clone();
    if let Value::Object(m) = &mut v {
        m.remove("digest");
    }
    let text = serde_json::to_string(&orgop_plan::canonical::sorted(v)).expect("JSON serializes");
    format!("sha256:{}", sha256_hex(text.as_bytes()))
}

/// The key that identifies a planned action's resource within its item and action: the
/// resource id, else the element with keys sorted, else nothing.
pub fn resource_key(resource_id: &Value, element: Option<&Value>) -> String {
    if !resource_id.is_null() {
        return resource_id.to_string();
    }
    element
        .map(|e| orgop_plan::canonical::sorted(e.clone()).to_string())
        .unwrap_or_default()
}

impl ChangePlan {
    /// Sorts, then seals the plan with its digest.
    pub fn seal(mut self, action_order: &[String]) -> ChangePlan {
        let place = |a: &str| {
            action_order
                .iter()
                .position(|x| x == a)
                .unwrap_or(usize::MAX)
        };
        self.items
            .sort_by(|a, b| (&a.account_id, &a.region).cmp(&(&b.account_id, &b.region)));
        self.actions.sort_by_cached_key(|a| {
            (
                a.account_id.clone(),
                a.region.clone(),
                place(&a.action),
                resource_key(&a.resource_id, Some(&a.item)),
                a.parameters.to_string(),
            )
        });
        self.digest = String::new();
        let v = serde_json::to_value(&self).expect("a plan serializes");
        self.digest = digest_of(&v);
        self
    }

    /// The file's text: sorted, pretty JSON.
    pub fn to_text(&self) -> String {
        orgop_plan::canonical::to_string(&serde_json::to_value(self).expect("a plan serializes"))
    }

    /// Reads and checks a plan file: size, JSON, format, digest. The error says what to do.
    pub fn read(path: &Path) -> Result<ChangePlan, String> {
        let f = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let mut bytes = Vec::new();
        f.take(MAX_PLAN_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        if bytes.len() as u64 > MAX_PLAN_BYTES {
            return Err(format!(
                "{}: larger than the {} MiB a plan may be (MAX_PLAN_BYTES): not read",
                path.display(),
                MAX_PLAN_BYTES >> 20
            ));
        }
        let v: Value = serde_json::from_slice(&bytes).map_err(|e| {
            format!(
                "{}:{}:{}: not a plan (JSON: {e}): make one with `orgop run RUNBOOK --plan-out FILE`",
                path.display(),
                e.line(),
                e.column()
            )
        })?;
        if v.get("format").and_then(Value::as_str) != Some(FORMAT) {
            return Err(format!(
                "{}: not a plan of this orgop (`format` is not {FORMAT:?}): make one with `orgop run RUNBOOK --plan-out FILE`",
                path.display()
            ));
        }
        let stored = v.get("digest").and_then(Value::as_str).unwrap_or_default();
        let actual = digest_of(&v);
        if stored != actual {
            return Err(format!(
                "{}: the plan was changed after it was written (its digest is {stored:?}, its content's is {actual}): refused; make a new plan with `orgop run RUNBOOK --plan-out FILE` and review it",
                path.display()
            ));
        }
        serde_json::from_value(v).map_err(|e| format!("{}: not a valid plan: {e}", path.display()))
    }
}

/// Collects a dry run into a plan: its hooks see every planned action with its element.
#[derive(Debug, Default)]
pub struct Collector {
    actions: Mutex<Vec<PlannedAction>>,
    items: Mutex<Vec<PlanItem>>,
}

impl Collector {
    /// Notes how an item ended.
    pub fn item(&self, r: &ItemResult) {
        self.items
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(PlanItem {
                account_id: r.account_id.clone(),
                account_name: r.account_name.clone(),
                region: r.region.clone(),
                status: r.status.as_str().to_string(),
                error: r
                    .error
                    .as_ref()
                    .map(|e| format!("{}: {}", e.code, e.message)),
            });
    }

    /// The plan, sealed.
    pub fn finish(
        &self,
        runbook: RunbookRef,
        lowered: &orgop_plan::Lowered,
        organization_id: String,
        execution: String,
        created_at: String,
        params: Map<String, Value>,
    ) -> ChangePlan {
        let order: Vec<String> = lowered.plan.actions.iter().map(|a| a.id.clone()).collect();
        ChangePlan {
            format: FORMAT.into(),
            runbook,
            organization_id,
            execution,
            created_at,
            params,
            items: take(&self.items),
            actions: take(&self.actions),
            digest: String::new(),
        }
        .seal(&order)
    }
}

impl ItemHooks for Collector {
    fn planned(&self, item: &Item, record: &ActionRecord, element: Option<&Value>) {
        self.actions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(PlannedAction {
                account_id: item.account_id.clone(),
                account_name: item.account_name.clone(),
                region: item.region.clone(),
                action: record.action.clone(),
                call: record.call.clone(),
                resource_id: record.resource_id.clone(),
                item: element.cloned().unwrap_or(Value::Null),
                parameters: record.parameters.clone(),
            });
    }
}

fn take<T>(m: &Mutex<Vec<T>>) -> Vec<T> {
    std::mem::take(&mut *m.lock().unwrap_or_else(|p| p.into_inner()))
}

/// Writes `text` to `path` whole: a temporary file beside it, fsync, rename.
pub fn write_whole(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension(format!("tmp.{}", std::process::id()));
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(text.as_bytes())?;
    f.sync_all()?;
    drop(f);
    std::fs::rename(&tmp, path)
}

/// `orgop plan ...`.
#[derive(Args, Debug)]
pub struct PlanArgs {
    #[command(subcommand)]
    command: PlanCommand,
}

#[derive(Subcommand, Debug)]
enum PlanCommand {
    /// Show a plan for review: per account and region counts, then every action.
    Show(ShowArgs),
}

#[derive(Args, Debug)]
struct ShowArgs {
    /// The plan file (`orgop run RUNBOOK --plan-out FILE`).
    plan: PathBuf,
    /// `text`, or `json` (the plan and its counts on stdout).
    #[arg(long, default_value = "text", value_parser = ["text", "json"])]
    format: String,
}

/// `orgop plan`. `Err` only when writing to stdout fails.
pub fn plan_command(a: PlanArgs) -> std::io::Result<u8> {
    let PlanCommand::Show(a) = a.command;
    let plan = match ChangePlan::read(&a.plan) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("orgop: {e}");
            return Ok(EXIT_USAGE);
        }
    };
    let counts = counts(&plan);
    if a.format == "json" {
        let v = serde_json::json!({
            "plan": plan,
            "counts": counts.iter().map(|((account, region), by)| serde_json::json!({
                "account_id": account,
                "region": region,
                "actions": by.values().sum::<usize>(),
                "by_action": by,
            })).collect::<Vec<_>>(),
        });
        crate::out::print(&orgop_plan::canonical::to_string(&v))?;
        return Ok(EXIT_OK);
    }
    crate::out::print(&render(&plan, &counts))?;
    Ok(EXIT_OK)
}

type Counts = BTreeMap<(String, String), BTreeMap<String, usize>>;

fn counts(plan: &ChangePlan) -> Counts {
    let mut c = Counts::new();
    for a in &plan.actions {
        *c.entry((a.account_id.clone(), a.region.clone()))
            .or_default()
            .entry(a.action.clone())
            .or_default() += 1;
    }
    c
}

fn render(plan: &ChangePlan, counts: &Counts) -> String {
    let mut out = format!(
        "plan {} for runbook {} v{} ({}, sha256 {})\norganization {}, execution {}, made {}\n",
        plan.digest,
        plan.runbook.name,
        plan.runbook.version,
        plan.runbook.path,
        &plan.runbook.sha256,
        if plan.organization_id.is_empty() {
            "unknown"
        } else {
            &plan.organization_id
        },
        plan.execution,
        plan.created_at
    );
    let params: Vec<String> = plan
        .params
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    out.push_str(&format!(
        "params   {}\n",
        if params.is_empty() {
            "none".into()
        } else {
            params.join(" ")
        }
    ));
    let not_ok: Vec<&PlanItem> = plan.items.iter().filter(|i| i.status != "ok").collect();
    out.push_str(&format!(
        "items    {} ({} not ok: their actions are not in this plan)\nactions  {}\n\n",
        plan.items.len(),
        not_ok.len(),
        plan.actions.len()
    ));
    for i in not_ok {
        out.push_str(&format!(
            "  not ok {} {} {}: {}\n",
            i.account_id,
            i.region,
            i.status,
            i.error.as_deref().unwrap_or("")
        ));
    }
    out.push_str("account       region          actions\n");
    for ((account, region), by) in counts {
        let detail: Vec<String> = by.iter().map(|(a, n)| format!("{a} {n}")).collect();
        out.push_str(&format!(
            "{account:<13} {region:<15} {:>7}  ({})\n",
            by.values().sum::<usize>(),
            detail.join(", ")
        ));
    }
    out.push('\n');
    for a in &plan.actions {
        out.push_str(&format!(
            "{} {} {} {} {} {}\n",
            a.account_id,
            a.region,
            a.action,
            a.call,
            match &a.resource_id {
                Value::Null => "-".to_string(),
                Value::String(s) => s.clone(),
                v => v.to_string(),
            },
            a.parameters
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan() -> ChangePlan {
        ChangePlan {
            format: FORMAT.into(),
            runbook: RunbookRef {
                name: "r".into(),
                version: 1,
                path: "r.yaml".into(),
                sha256: "00".into(),
            },
            organization_id: "o-1".into(),
            execution: "e".into(),
            created_at: "t".into(),
            params: Map::new(),
            items: vec![],
            actions: vec![PlannedAction {
                account_id: "1".into(),
                account_name: "a".into(),
                region: "us-east-1".into(),
                action: "delete".into(),
                call: "ec2:DeleteVolume".into(),
                resource_id: "vol-1".into(),
                item: serde_json::json!({"VolumeId": "vol-1"}),
                parameters: serde_json::json!({"VolumeId": "vol-1"}),
            }],
            digest: String::new(),
        }
        .seal(&["delete".into()])
    }

    #[test]
    fn a_plan_reads_back_and_an_edited_one_is_refused() {
        let tmp = orgop_testkit::TempDir::new("changeplan");
        let path = tmp.path().join("plan.json");
        let p = plan();
        std::fs::write(&path, p.to_text()).unwrap();
        assert_eq!(ChangePlan::read(&path).unwrap(), p);
        let edited = p.to_text().replace("vol-1", "vol-2");
        std::fs::write(&path, edited).unwrap();
        let e = ChangePlan::read(&path).unwrap_err();
        assert!(e.contains("changed after it was written"), "{e}");
    }
}
