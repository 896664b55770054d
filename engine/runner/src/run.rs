//! Bounded-concurrency execution of every item.
use crate::fanout::{FanoutError, Overrides, fanout};
use orgop_exec::{
    ActionBudget, ActionOutcome, ApiError, AwsApi, Call, ErrorKind, ItemError, ItemHooks,
    ItemResult, NoHooks, PrepareError, Prepared, RunFacts, Status, run_item,
};
use orgop_plan::contract::Item;
use orgop_plan::{Lowered, RolePlan, TargetsPlan};
use orgop_vocab::Code;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tracing::Instrument as _;

/// Opens sessions: the organization's, and one per target account and region (assuming the
/// runbook's role).
pub trait Connector: Send + Sync + 'static {
    /// A session bound to one account and region.
    type Api: AwsApi + 'static;

    /// The caller's own session, for Organizations calls.
    fn org(&self) -> impl Future<Output = Result<Self::Api, ApiError>> + Send;

    /// A session in `account_id` and `region` with `role` assumed. A failure (AccessDenied,
    /// no such role) becomes that item's `denied` record.
    fn item(
        &self,
        account_id: &str,
        region: &str,
        role: &RolePlan,
    ) -> impl Future<Output = Result<Self::Api, ApiError>> + Send;

    /// The caller's own session in `region`, for a runbook that runs in the operations account
    /// (`targets.scope: operations`; `account_id` is the caller's, for a replay's folder).
    fn own(
        &self,
        account_id: &str,
        region: &str,
    ) -> impl Future<Output = Result<Self::Api, ApiError>> + Send;

    /// The region sessions for account-wide calls start in (`account:ListRegions`).
    fn home_region(&self) -> String {
        "us-east-1".into()
    }
}

/// How to run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Run-time narrowing of the targets.
    pub overrides: Overrides,
    /// Items at once.
    pub concurrency: usize,
    /// Resolved parameters.
    pub params: Map<String, Value>,
    /// Send the actions.
    pub apply: bool,
    /// Run id.
    pub execution: String,
    /// "Now", epoch seconds, for the whole run.
    pub now: f64,
}

/// Progress.
#[derive(Debug, Clone)]
pub enum Event {
    /// The fanout is done: this many items will run (plus `failed` that could not).
    Planned {
        /// Items to run.
        items: usize,
        /// Items that failed in the fanout.
        failed: usize,
    },
    /// One item finished.
    ItemDone {
        /// Account.
        account_id: String,
        /// Region.
        region: String,
        /// Status.
        status: Status,
        /// Findings.
        findings: usize,
        /// Error code when not ok.
        error: Option<String>,
    },
}

/// A request to stop a run, shared by whoever receives the signals and the run itself: the
/// first [`Interrupt::stop`] stops new items from starting and lets the items in flight end
/// after their current call, for at most the grace period; the second stops them at once.
#[derive(Debug, Clone)]
pub struct Interrupt {
    level: Arc<watch::Sender<u8>>,
    grace: Duration,
}

impl Interrupt {
    /// Not stopping yet; items in flight get `grace` to end once it is.
    pub fn new(grace: Duration) -> Interrupt {
        Interrupt {
            level: Arc::new(watch::channel(0).0),
            grace,
        }
    }

    /// Asks the run to stop: gently the first time, at once the second.
    pub fn stop(&self) {
        self.level.send_modify(|l| *l = l.saturating_add(1).min(2));
    }

    /// Whether a stop was asked for.
    pub fn stopping(&self) -> bool {
        *self.level.borrow() >= 1
    }

    fn level(&self) -> u8 {
        *self.level.borrow()
    }
}

impl Default for Interrupt {
    fn default() -> Interrupt {
        Interrupt::new(Duration::from_secs(20))
    }
}

/// How a run is controlled from outside: the hooks every item runs with (a journal of the
/// actions sent) and the [`Interrupt`] that stops it.
#[derive(Clone)]
pub struct Control {
    /// Told of every action before it is sent and after its answer. Its
    /// [`ItemHooks::stopping`] is not consulted: the interrupt's is.
    pub hooks: Arc<dyn ItemHooks>,
    /// Stops the run.
    pub interrupt: Interrupt,
}

impl Default for Control {
    fn default() -> Control {
        Control {
            hooks: Arc::new(NoHooks),
            interrupt: Interrupt::default(),
        }
    }
}

/// The control's hooks, stopping when its interrupt says so.
struct Controlled(Control);

impl ItemHooks for Controlled {
    fn stopping(&self) -> bool {
        self.0.interrupt.stopping()
    }
    fn before_send(&self, item: &Item, record: &orgop_exec::ActionRecord) -> std::io::Result<u64> {
        self.0.hooks.before_send(item, record)
    }
    fn answered(&self, token: u64, item: &Item, record: &orgop_exec::ActionRecord) {
        self.0.hooks.answered(token, item, record)
    }
    fn planned(&self, item: &Item, record: &orgop_exec::ActionRecord, element: Option<&Value>) {
        self.0.hooks.planned(item, record, element)
    }
    fn admit(
        &self,
        item: &Item,
        record: &orgop_exec::ActionRecord,
        element: Option<&Value>,
    ) -> Result<(), orgop_exec::NotAdmitted> {
        self.0.hooks.admit(item, record, element)
    }
    fn wants_unselected(&self) -> bool {
        self.0.hooks.wants_unselected()
    }
    fn unselected(&self, item: &Item, resource_id: &Value) {
        self.0.hooks.unselected(item, resource_id)
    }
}

/// The record of an item the run never started, or stopped before it ended.
fn not_run(item: Item, why: &str) -> ItemResult {
    ItemResult::failed(item, Status::NotRun, ItemError::new(Code::Interrupted, why))
}

/// Counts for the end of a run.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Summary {
    /// Items.
    pub items: usize,
    /// Items by status (`ok`, `denied`, `error`, `skipped`, and `not_run` when there are).
    pub by_status: BTreeMap<Status, usize>,
    /// Finding rows.
    pub findings: usize,
    /// Actions by outcome (`planned`, `done`, ...).
    pub actions: BTreeMap<String, usize>,
}

impl Summary {
    /// No items yet: every status at zero, but `not_run`, which appears only in a run that
    /// was interrupted (so that the summaries of every other run stay as they were).
    pub fn new() -> Summary {
        let mut s = Summary::default();
        for st in Status::ALL.into_iter().filter(|s| *s != Status::NotRun) {
            s.by_status.insert(st, 0);
        }
        s
    }

    /// Counts `results`.
    pub fn of(results: &[ItemResult]) -> Summary {
        let mut s = Summary::new();
        for r in results {
            s.add(r);
        }
        s
    }

    /// Counts one more item.
    pub fn add(&mut self, r: &ItemResult) {
        self.items += 1;
        *self.by_status.entry(r.status).or_default() += 1;
        self.findings += r.findings.len();
        for a in &r.actions {
            *self.actions.entry(a.outcome.as_str().into()).or_default() += 1;
        }
    }

    /// Items with `status`.
    pub fn count(&self, status: Status) -> usize {
        self.by_status.get(&status).copied().unwrap_or(0)
    }

    /// Items that ended `denied` or `error`.
    pub fn failed(&self) -> usize {
        self.by_status
            .iter()
            .filter(|(s, _)| s.is_failure())
            .map(|(_, n)| n)
            .sum()
    }

    /// Every item ended `ok` or `skipped`.
    pub fn all_ran(&self) -> bool {
        self.failed() == 0
    }

    /// Actions that were sent (done or already done).
    pub fn actions_sent(&self) -> usize {
        [
            ActionOutcome::Done,
            ActionOutcome::AlreadyDone,
            ActionOutcome::Failed,
        ]
        .iter()
        .filter_map(|o| serde_json::to_value(o).ok())
        .filter_map(|v| self.actions.get(v.as_str().unwrap_or_default()).copied())
        .sum()
    }
}

/// The regions enabled in `account` (`account:ListRegions`, asked with `role` from inside it).
pub async fn enabled_regions<C: Connector>(
    c: &C,
    account: String,
    role: &RolePlan,
) -> Result<Vec<String>, ApiError> {
    let api = c.item(&account, &c.home_region(), role).await?;
    let params = json!({"RegionOptStatusContains": ["ENABLED", "ENABLED_BY_DEFAULT"]});
    let pages = api
        .call(Call {
            service: "account",
            operation: "ListRegions",
            params: &params,
            paginate: true,
        })
        .await?;
    Ok(pages
        .iter()
        .flat_map(|p| {
            p.get("Regions")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default()
        })
        .filter_map(|r| {
            r.get("RegionName")
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .collect())
}

/// Why a run could not start: nothing ran.
#[derive(Debug, Clone, PartialEq)]
pub enum RunError {
    /// The organization could not be listed.
    Organization(FanoutError),
    /// The plan could not be prepared (not made by this orgop's checker).
    Plan(PrepareError),
}

impl std::fmt::Display for RunError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RunError::Organization(e) => write!(f, "cannot list the organization: {e}"),
            RunError::Plan(e) => write!(f, "the plan cannot be prepared: {e}"),
        }
    }
}

impl std::error::Error for RunError {}

impl From<FanoutError> for RunError {
    fn from(e: FanoutError) -> RunError {
        RunError::Organization(e)
    }
}

/// Fans out and runs every item; results sorted by account and region, failed fanout items
/// included. Errors only when the organization itself cannot be listed. Holds every result
/// until the end: a large organization is better served by [`run_each`].
pub async fn run<C: Connector>(
    lowered: &Lowered,
    connector: Arc<C>,
    opts: RunOptions,
    on_event: impl Fn(Event) + Send + Sync,
) -> Result<Vec<ItemResult>, RunError> {
    let mut results = Vec::new();
    let control = Control::default();
    run_each(lowered, connector, opts, control, on_event, |r| {
        results.push(r)
    })
    .await?;
    results.sort_by(|a, b| (&a.account_id, &a.region).cmp(&(&b.account_id, &b.region)));
    Ok(results)
}

/// [`run`], handing each result to `on_result` as it is done (in completion order, failed
/// fanout items first) instead of holding them: memory stays bounded by the concurrency,
/// not by the size of the organization.
///
/// Once `control.interrupt` asks to stop, no item starts (each is handed over `not_run`),
/// items in flight end after their current call (`not_run`, with what they finished), and
/// those still running after the grace period, or at a second stop, are abandoned (`not_run`:
/// the outcome of the call they were making is unknown; an action's journal record says which).
pub async fn run_each<C: Connector>(
    lowered: &Lowered,
    connector: Arc<C>,
    opts: RunOptions,
    control: Control,
    on_event: impl Fn(Event) + Send + Sync,
    mut on_result: impl FnMut(ItemResult),
) -> Result<(), RunError> {
    // Compiled once for the run: items only bind their account, region and elements.
    let prepared = Prepared::new(
        lowered.plan.clone(),
        lowered.shared.clone().into_iter().collect(),
    )
    .map_err(RunError::Plan)?;
    let org = connector.org().await.map_err(|error| FanoutError {
        call: "credentials".into(),
        error,
    })?;
    let (items, failed) = fanout_org(
        &connector,
        &org,
        &lowered.targets,
        &opts.overrides,
        &lowered.plan.role,
    )
    .await?;
    on_event(Event::Planned {
        items: items.len(),
        failed: failed.len(),
    });
    for r in failed {
        on_event(done(&r));
        on_result(r);
    }
    run_prepared(
        prepared, items, connector, opts, control, on_event, on_result,
    )
    .await;
    Ok(())
}

/// [`run_each`] over `items` given by the caller instead of a fanout (`orgop apply`: the
/// accounts and regions of its plan); [`Event::Planned`] is the caller's to send.
pub async fn run_items<C: Connector>(
    lowered: &Lowered,
    items: Vec<Item>,
    connector: Arc<C>,
    opts: RunOptions,
    control: Control,
    on_event: impl Fn(Event) + Send + Sync,
    on_result: impl FnMut(ItemResult),
) -> Result<(), RunError> {
    let prepared = Prepared::new(
        lowered.plan.clone(),
        lowered.shared.clone().into_iter().collect(),
    )
    .map_err(RunError::Plan)?;
    run_prepared(
        prepared, items, connector, opts, control, on_event, on_result,
    )
    .await;
    Ok(())
}

async fn run_prepared<C: Connector>(
    prepared: Prepared,
    items: Vec<Item>,
    connector: Arc<C>,
    opts: RunOptions,
    control: Control,
    on_event: impl Fn(Event) + Send + Sync,
    mut on_result: impl FnMut(ItemResult),
) {
    let budget = Arc::new(ActionBudget::new(
        prepared.plan().safety.max_actions_per_run,
    ));
    let prepared = Arc::new(prepared);
    let facts = Arc::new(RunFacts {
        execution: opts.execution.clone(),
        params: opts.params.clone(),
        apply: opts.apply,
        now: opts.now,
    });
    let permits = Arc::new(Semaphore::new(opts.concurrency.max(1)));
    let interrupt = control.interrupt.clone();
    let hooks = Arc::new(Controlled(control));
    let mut tasks = JoinSet::new();
    // Which item each task runs, so that a task that panics is still that item's record.
    let mut running = Running::new();
    for item in items {
        let (prepared, facts, budget, permits, connector, hooks) = (
            prepared.clone(),
            facts.clone(),
            budget.clone(),
            permits.clone(),
            connector.clone(),
            hooks.clone(),
        );
        let task_item = item.clone();
        let started = Arc::new(AtomicBool::new(false));
        let task_started = started.clone();
        let handle = tasks.spawn(async move {
            let _permit = permits
                .acquire_owned()
                .await
                .expect("the semaphore is never closed");
            if hooks.stopping() {
                return not_run(task_item, NEVER_STARTED);
            }
            task_started.store(true, std::sync::atomic::Ordering::SeqCst);
            run_one(&*connector, &prepared, &task_item, &facts, &budget, &*hooks).await
        });
        running.insert(handle.id(), (item, started));
    }
    let mut level = interrupt.level.subscribe();
    let mut deadline: Option<tokio::time::Instant> = None;
    loop {
        let joined = tokio::select! {
            joined = tasks.join_next_with_id() => match joined {
                Some(j) => j,
                None => break,
            },
            _ = level.changed(), if deadline.is_none() || interrupt.level() < 2 => {
                if interrupt.level() >= 2 {
                    tasks.abort_all();
                } else if deadline.is_none() {
                    deadline = Some(tokio::time::Instant::now() + interrupt.grace);
                }
                continue;
            }
            _ = sleep_until(deadline) => {
                tasks.abort_all();
                deadline = None;
                continue;
            }
        };
        let r = match joined {
            Ok((id, r)) => {
                running.remove(&id);
                r
            }
            // Abandoned at a stop: if it had started, its last call may or may not have been
            // made.
            Err(e) if e.is_cancelled() => {
                let (item, started) = task_item(&mut running, e.id());
                let why = if started {
                    "the run was stopped while this item was running: the outcome of the call \
                     in flight is unknown (an action's is in the actions journal)"
                } else {
                    NEVER_STARTED
                };
                not_run(item, why)
            }
            // A panic in one item is that item's error; the run goes on.
            Err(e) => ItemResult::failed(
                task_item(&mut running, e.id()).0,
                Status::Error,
                ItemError::new(Code::Internal, format!("worker task failed: {e}")),
            ),
        };
        on_event(done(&r));
        on_result(r);
    }
}

const NEVER_STARTED: &str = "the run was interrupted before this item started";

/// The item each task runs, and whether it started (it may wait for a permit first).
type Running = std::collections::HashMap<tokio::task::Id, (Item, Arc<AtomicBool>)>;

/// The item a task ran and whether it had started, taken out of `running`.
fn task_item(running: &mut Running, id: tokio::task::Id) -> (Item, bool) {
    match running.remove(&id) {
        Some((item, started)) => (item, started.load(std::sync::atomic::Ordering::SeqCst)),
        None => (
            Item {
                account_id: "unknown".into(),
                account_name: String::new(),
                region: "*".into(),
            },
            false,
        ),
    }
}

/// Sleeps until `deadline`, or forever without one.
async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

/// The items of `targets`: accounts from Organizations through `org`, and, when the targets
/// ask for every enabled region, each account's regions through a session `connector` opens
/// with `role`. Shared by `orgop run` and the Lambda's fanout.
pub async fn fanout_org<C: Connector>(
    connector: &Arc<C>,
    org: &C::Api,
    targets: &TargetsPlan,
    overrides: &Overrides,
    role: &RolePlan,
) -> Result<(Vec<Item>, Vec<ItemResult>), FanoutError> {
    fanout(org, targets, overrides, |account| {
        let (connector, role) = (connector.clone(), role.clone());
        async move { enabled_regions(&*connector, account, &role).await }
    })
    .await
}

/// One item: assume the role, run the plan. A session that cannot be opened is the item's
/// `denied` (or `error`) record, never an error of the caller. Shared by `orgop run` and the
/// Lambda worker.
pub async fn run_one<C: Connector>(
    connector: &C,
    prepared: &Prepared,
    item: &Item,
    facts: &RunFacts,
    budget: &ActionBudget,
    hooks: &dyn ItemHooks,
) -> ItemResult {
    let role = &prepared.plan().role.for_run(facts.apply);
    let span = tracing::debug_span!("item", account = %item.account_id, region = %item.region);
    let session = if prepared.plan().operations {
        connector
            .own(&item.account_id, &item.region)
            .instrument(span.clone())
            .await
    } else {
        connector
            .item(&item.account_id, &item.region, role)
            .instrument(span.clone())
            .await
    };
    match session {
        Ok(api) => {
            run_item(prepared, item, facts, &api, budget, hooks)
                .instrument(span)
                .await
        }
        Err(e) => {
            let status = if e.kind == ErrorKind::Denied {
                Status::Denied
            } else {
                Status::Error
            };
            let mut r = ItemResult::failed(
                item.clone(),
                status,
                ItemError::new(
                    &e.code,
                    if prepared.plan().operations {
                        format!(
                            "opening the operations account's own session: {}",
                            e.message
                        )
                    } else {
                        format!("assuming role {}: {}", role.name, e.message)
                    },
                ),
            );
            r.applied = facts.apply;
            r
        }
    }
}

fn done(r: &ItemResult) -> Event {
    Event::ItemDone {
        account_id: r.account_id.clone(),
        region: r.region.clone(),
        status: r.status,
        findings: r.findings.len(),
        error: r.error.as_ref().map(|e| e.code.clone()),
    }
}
