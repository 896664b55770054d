//! Change plans: what a dry run would do, as a file an operator reviews, and the re-check
//! that carries out exactly that. `orgop run --plan-out FILE` / `orgop apply FILE` use it
//! locally; the deployed state machine of a runbook with `approval:` uses it in the Lambda
//! (its plan phase collects, its apply phase admits only the approved plan's actions).
//!
//! The file is JSON, keys sorted, actions sorted by account, region, the action's place in the
//! runbook and the resource. `digest` is `sha256:` and the hex SHA-256 of the plan's compact
//! JSON, keys sorted, without `digest` itself: a plan edited by hand no longer matches it and
//! is refused.
#![deny(missing_docs)]

use orgop_exec::{ActionOutcome, ActionRecord, Item, ItemHooks, ItemResult, NotAdmitted, Status};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::Digest as _;
use std::collections::{BTreeMap, HashSet};
use std::io::Read;
use std::path::Path;
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
    pub fn read(path: &Path) -> Result<ChangePlan, PlanError> {
        let at = |e: std::io::Error| PlanError(format!("{}: {e}", path.display()));
        let f = std::fs::File::open(path).map_err(at)?;
        let mut bytes = Vec::new();
        f.take(MAX_PLAN_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(at)?;
        ChangePlan::from_bytes(&path.display().to_string(), &bytes)
    }

    /// Checks a plan's bytes (`what` names where they come from, in errors): size, JSON,
    /// format, digest.
    pub fn from_bytes(what: &str, bytes: &[u8]) -> Result<ChangePlan, PlanError> {
        if bytes.len() as u64 > MAX_PLAN_BYTES {
            return Err(PlanError(format!(
                "{what}: larger than the {} MiB a plan may be (MAX_PLAN_BYTES): not read",
                MAX_PLAN_BYTES >> 20
            )));
        }
        let v: Value = serde_json::from_slice(bytes).map_err(|e| {
            PlanError(format!(
                "{what}:{}:{}: not a plan (JSON: {e}): make one with `orgop run RUNBOOK --plan-out FILE`",
                e.line(),
                e.column()
            ))
        })?;
        if v.get("format").and_then(Value::as_str) != Some(FORMAT) {
            return Err(PlanError(format!(
                "{what}: not a plan of this orgop (`format` is not {FORMAT:?}): make one with `orgop run RUNBOOK --plan-out FILE`"
            )));
        }
        let stored = v.get("digest").and_then(Value::as_str).unwrap_or_default();
        let actual = digest_of(&v);
        if stored != actual {
            return Err(PlanError(format!(
                "{what}: the plan was changed after it was written (its digest is {stored:?}, its content's is {actual}): refused; make a new plan with `orgop run RUNBOOK --plan-out FILE` and review it"
            )));
        }
        serde_json::from_value(v).map_err(|e| PlanError(format!("{what}: not a valid plan: {e}")))
    }
}

/// Why a plan was refused: what is wrong and what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanError(pub String);

impl std::fmt::Display for PlanError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for PlanError {}

/// Collects a dry run into a plan: its hooks see every planned action with its element.
#[derive(Debug, Default)]
pub struct Collector {
    actions: Mutex<Vec<PlannedAction>>,
    items: Mutex<Vec<PlanItem>>,
}

impl Collector {
    /// The actions planned so far (a worker's slice of the plan).
    pub fn actions(&self) -> Vec<PlannedAction> {
        self.actions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

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

/// What became of one planned action.
#[derive(Debug, Clone, PartialEq)]
enum State {
    Pending,
    Admitted,
    Changed(String),
}

#[derive(Debug)]
struct Entry {
    action: String,
    call: String,
    resource_id: Value,
    key: String,
    item: Value,
    parameters: Value,
    state: State,
}

#[derive(Debug, Default)]
struct ItemBook {
    entries: Vec<Entry>,
    /// Resource keys seen by an action now (admitted or not).
    seen: HashSet<String>,
    /// Resource ids the `where` filter dropped.
    unselected: HashSet<String>,
}

fn item_key(item: &Item) -> (String, String) {
    (item.account_id.clone(), item.region.clone())
}

/// The top-level fields whose values differ between two elements.
fn differing_fields(then: &Value, now: Option<&Value>) -> Vec<String> {
    let empty = serde_json::Map::new();
    let (a, b) = (
        then.as_object().unwrap_or(&empty),
        now.and_then(Value::as_object).unwrap_or(&empty),
    );
    let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter(|k| a.get(*k) != b.get(*k))
        .cloned()
        .collect()
}

/// The re-check of an apply: as [`ItemHooks`], it admits an action only when it is in the
/// plan for the same resource, the element it came from reads the same as when the plan was
/// made, and its parameters render the same; [`Admission::complete`] then reports every
/// planned action not sent as `changed` or `gone` (or `not run`). Anything found now that is
/// not in the plan is skipped as `not planned`.
#[derive(Debug, Default)]
pub struct Admission {
    items: Mutex<BTreeMap<(String, String), ItemBook>>,
    /// The plan's items, in order.
    listed: Vec<Item>,
}

impl Admission {
    /// The re-check of `actions` (a plan's, or one item's slice of it).
    pub fn new(actions: &[PlannedAction]) -> Admission {
        let mut books: BTreeMap<(String, String), ItemBook> = BTreeMap::new();
        let mut listed: BTreeMap<(String, String), Item> = BTreeMap::new();
        for p in actions {
            let k = (p.account_id.clone(), p.region.clone());
            listed.entry(k.clone()).or_insert_with(|| Item {
                account_id: p.account_id.clone(),
                account_name: p.account_name.clone(),
                region: p.region.clone(),
            });
            books.entry(k).or_default().entries.push(Entry {
                action: p.action.clone(),
                call: p.call.clone(),
                resource_id: p.resource_id.clone(),
                key: resource_key(&p.resource_id, Some(&p.item)),
                item: p.item.clone(),
                parameters: p.parameters.clone(),
                state: State::Pending,
            });
        }
        Admission {
            items: Mutex::new(books),
            listed: listed.into_values().collect(),
        }
    }

    /// The items that have planned actions, sorted by account and region.
    pub fn items(&self) -> Vec<Item> {
        self.listed.clone()
    }

    /// Adds to `r` a skipped record for every planned action of its item that was neither
    /// sent nor already reported as changed by [`ItemHooks::admit`].
    pub fn complete(&self, r: &mut ItemResult) {
        let mut items = self.items.lock().unwrap_or_else(|p| p.into_inner());
        let Some(book) = items.get_mut(&(r.account_id.clone(), r.region.clone())) else {
            return;
        };
        let ran = r.status == Status::Ok;
        for e in &mut book.entries {
            if e.state != State::Pending {
                continue;
            }
            let reason = if !ran {
                let why = r
                    .error
                    .as_ref()
                    .map(|e| format!("{}: {}", e.code, e.message))
                    .unwrap_or_default();
                format!("not run: the item ended {} ({why})", r.status.as_str())
            } else if book.unselected.contains(&e.key) {
                "changed: it no longer matches the runbook's selection".to_string()
            } else if book.seen.contains(&e.key) {
                "changed: its `when` condition no longer holds".to_string()
            } else {
                "gone: the runbook's steps no longer find it".to_string()
            };
            e.state = State::Changed(reason.clone());
            r.actions.push(ActionRecord {
                action: e.action.clone(),
                call: e.call.clone(),
                resource_id: e.resource_id.clone(),
                parameters: e.parameters.clone(),
                outcome: ActionOutcome::Skipped,
                reason: Some(reason),
            });
        }
    }
}

impl ItemHooks for Admission {
    fn admit(
        &self,
        item: &Item,
        record: &ActionRecord,
        element: Option<&Value>,
    ) -> Result<(), NotAdmitted> {
        let key = resource_key(&record.resource_id, element);
        let mut items = self.items.lock().unwrap_or_else(|p| p.into_inner());
        let Some(book) = items.get_mut(&item_key(item)) else {
            return Err(NotAdmitted("not planned: not in the plan".into()));
        };
        book.seen.insert(key.clone());
        let Some(entry) = book
            .entries
            .iter_mut()
            .find(|e| e.state == State::Pending && e.action == record.action && e.key == key)
        else {
            return Err(NotAdmitted(
                "not planned: found now, not in the plan (make a new plan to act on it)".into(),
            ));
        };
        let now = element.cloned().unwrap_or(Value::Null);
        if entry.item != now {
            let why = format!(
                "it reads differently since the plan (fields {})",
                differing_fields(&entry.item, element).join(", ")
            );
            entry.state = State::Changed(why.clone());
            return Err(NotAdmitted(format!("changed: {why}")));
        }
        if entry.parameters != record.parameters {
            let why = "its parameters render differently since the plan".to_string();
            entry.state = State::Changed(why.clone());
            return Err(NotAdmitted(format!("changed: {why}")));
        }
        entry.state = State::Admitted;
        Ok(())
    }

    fn wants_unselected(&self) -> bool {
        true
    }

    fn unselected(&self, item: &Item, resource_id: &Value) {
        let mut items = self.items.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(book) = items.get_mut(&item_key(item)) {
            book.unselected.insert(resource_key(resource_id, None));
        }
    }
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
        let e = ChangePlan::read(&path).unwrap_err().to_string();
        assert!(e.contains("changed after it was written"), "{e}");
    }

    /// The planned element reads the same: admitted; read differently: `changed`, naming the
    /// field; never found again: `gone`.
    #[test]
    fn only_unchanged_planned_actions_are_admitted() {
        let p = plan();
        let item = Item {
            account_id: "1".into(),
            account_name: "a".into(),
            region: "us-east-1".into(),
        };
        let record = |id: &str| ActionRecord {
            action: "delete".into(),
            call: "ec2:DeleteVolume".into(),
            resource_id: Value::from(id),
            parameters: serde_json::json!({"VolumeId": id}),
            outcome: ActionOutcome::Planned,
            reason: None,
        };
        let a = Admission::new(&p.actions);
        assert_eq!(a.items(), vec![item.clone()]);
        let same = serde_json::json!({"VolumeId": "vol-1"});
        assert_eq!(a.admit(&item, &record("vol-1"), Some(&same)), Ok(()));
        let a = Admission::new(&p.actions);
        let tagged = serde_json::json!({"VolumeId": "vol-1", "Tags": []});
        let NotAdmitted(why) = a.admit(&item, &record("vol-1"), Some(&tagged)).unwrap_err();
        assert!(why.starts_with("changed:") && why.contains("Tags"), "{why}");
        let NotAdmitted(why) = a
            .admit(
                &item,
                &record("vol-9"),
                Some(&serde_json::json!({"VolumeId": "vol-9"})),
            )
            .unwrap_err();
        assert!(why.starts_with("not planned:"), "{why}");
        let a = Admission::new(&p.actions);
        let mut r = ItemResult::failed(item, Status::Ok, orgop_exec::ItemError::new("", ""));
        r.error = None;
        a.complete(&mut r);
        assert_eq!(r.actions.len(), 1);
        assert!(r.actions[0].reason.as_deref().unwrap().starts_with("gone:"));
    }
}
