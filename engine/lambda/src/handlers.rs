//! The three handlers and the dispatcher.
use crate::store::{
    Notifier, NotifyErrorKind, ObjectStore, ResultsStore, RunNotice, StoreError, StoreErrorKind,
    execution_name,
};
use orgop_exec::{
    ActionBudget, ApiError, AwsApi, Call, ErrorKind, ItemError, ItemResult, Prepared, RunFacts,
    Status,
};
use orgop_plan::RolePlan;
use orgop_plan::contract::Item;
use orgop_plan::contract::{
    self, ExecutionInput, FailureRequest, FanoutRequest, FanoutResponse, ResultsRequest,
    ResultsSummary, RunContext, S3Location, WorkerRequest, WorkerSummary, bounded_message,
};
use orgop_plan::{MapKind, WorkerError};
use orgop_runner::{Connector, Overrides, sink};
use orgop_vocab::Code;
use serde_json::Value;
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tracing::Instrument as _;

/// What the handlers need.
pub struct Deps<C, S, O, N> {
    /// Sessions: the organization's and each target's.
    pub connector: Arc<C>,
    /// Full results.
    pub store: S,
    /// S3.
    pub objects: O,
    /// Bucket for distributed Map items and the reports (`ORGOP_RESULTS_BUCKET`).
    pub bucket: Option<String>,
    /// "Now", epoch seconds (the worker's clock; tests fix it).
    pub now: fn() -> f64,
    /// Where the run's summary is announced.
    pub notifier: N,
}

/// An error leaving a handler: its name is what Step Functions retries and catches on.
#[derive(Debug, Clone, PartialEq)]
pub struct HandlerError {
    /// One of orgop's named errors.
    pub kind: WorkerError,
    /// What happened.
    pub message: String,
}

impl HandlerError {
    pub(crate) fn new(kind: WorkerError, message: impl Into<String>) -> HandlerError {
        HandlerError {
            kind,
            message: message.into(),
        }
    }
}

impl std::fmt::Display for HandlerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.kind.name(), self.message)
    }
}

impl From<StoreError> for HandlerError {
    fn from(e: StoreError) -> HandlerError {
        let kind = match e.kind {
            StoreErrorKind::Throttled => WorkerError::Throttled,
            StoreErrorKind::Transient => WorkerError::Transient,
            StoreErrorKind::Permanent => WorkerError::ResultsStore,
        };
        HandlerError::new(kind, e.message)
    }
}

pub(crate) fn parse<T: serde::de::DeserializeOwned>(v: Value) -> Result<T, HandlerError> {
    serde_json::from_value(v).map_err(|e| {
        HandlerError::new(
            WorkerError::InvalidInput,
            format!("the payload does not match this build of orgop: {e}"),
        )
    })
}

pub(crate) fn elapsed_ms(started: Instant) -> u64 {
    u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// Runs one invocation of [`handle`] inside a span with the invocation's `request_id`, the
/// `handler` and the `execution` (the worker adds its `account` and `region`); each handler
/// logs a line with its duration and outcome, and a failure is logged with its error name.
/// Nothing else of the payload is logged: it holds the plan and the run's parameters.
/// `deadline` is when Lambda ends the invocation (its context's deadline), if known.
pub async fn invoke<C: Connector, S: ResultsStore, O: ObjectStore, N: Notifier>(
    request_id: &str,
    payload: Value,
    deps: &Deps<C, S, O, N>,
    deadline: Option<Instant>,
) -> Result<Value, HandlerError> {
    let field = |v: Option<&Value>| v.and_then(Value::as_str).unwrap_or_default().to_string();
    let handler = field(payload.get(contract::HANDLER));
    // The fanout and results requests name the execution; the worker's is in its run.
    let execution = field(
        payload
            .get("execution")
            .or_else(|| payload.pointer("/run/execution")),
    );
    let span = tracing::info_span!(
        "invocation",
        request_id,
        handler,
        execution,
        account = tracing::field::Empty,
        region = tracing::field::Empty,
    );
    let started = Instant::now();
    let out = handle_until(payload, deps, deadline)
        .instrument(span.clone())
        .await;
    if let Err(e) = &out {
        span.in_scope(|| {
            // An invalid payload's message may quote a parameter's value: only its name then.
            let message = (e.kind != WorkerError::InvalidInput).then_some(e.message.as_str());
            tracing::error!(
                duration_ms = elapsed_ms(started),
                outcome = "error",
                error_type = e.kind.name(),
                error_message = message,
                "invocation failed"
            );
        });
    }
    out
}

/// Runs the handler the payload names; the answer is the handler's JSON.
pub async fn handle<C: Connector, S: ResultsStore, O: ObjectStore, N: Notifier>(
    payload: Value,
    deps: &Deps<C, S, O, N>,
) -> Result<Value, HandlerError> {
    handle_until(payload, deps, None).await
}

/// [`handle`] within an invocation that Lambda ends at `deadline`: the worker stops sending
/// calls [`stop_before`] it and records the item as `error` ([`Code::LambdaTimeout`]).
pub async fn handle_until<C: Connector, S: ResultsStore, O: ObjectStore, N: Notifier>(
    payload: Value,
    deps: &Deps<C, S, O, N>,
    deadline: Option<Instant>,
) -> Result<Value, HandlerError> {
    let name = payload
        .get(contract::HANDLER)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let out = match name.as_str() {
        contract::FANOUT => serde_json::to_value(fanout(parse(payload)?, deps).await?),
        contract::WORKER => serde_json::to_value(worker(parse(payload)?, deps, deadline).await?),
        contract::FAILURE => serde_json::to_value(failure(parse(payload)?)),
        contract::RESULTS => serde_json::to_value(results(parse(payload)?, deps).await?),
        contract::PLAN => serde_json::to_value(crate::approval::plan(parse(payload)?, deps).await?),
        contract::APPROVAL => Ok(crate::approval::approval(parse(payload)?, deps).await?),
        contract::RELEASE => {
            let req: orgop_plan::contract::ReleaseRequest = parse(payload)?;
            crate::applylock::release(deps, &req.run).await?;
            Ok(serde_json::json!({"released": req.run.lock.is_some()}))
        }
        other => {
            return Err(HandlerError::new(
                WorkerError::InvalidInput,
                format!(
                    "unknown handler `{other}`: expected fanout, worker, failure, results, plan, approval or release"
                ),
            ));
        }
    };
    out.map_err(|e| HandlerError::new(WorkerError::Internal, e.to_string()))
}

async fn fanout<C: Connector, S: ResultsStore, O: ObjectStore, N: Notifier>(
    req: FanoutRequest,
    deps: &Deps<C, S, O, N>,
) -> Result<FanoutResponse, HandlerError> {
    let started = Instant::now();
    let input: ExecutionInput = if req.input.is_null() {
        ExecutionInput::default()
    } else {
        parse(req.input.clone())?
    };
    let params = orgop_plan::params::resolve(&req.params, &input.params)
        .map_err(|errors| HandlerError::new(WorkerError::InvalidInput, errors.join("; ")))?;
    let org = deps.connector.org().await.map_err(|e| {
        let kind = if e.kind == ErrorKind::Throttled {
            WorkerError::Throttled
        } else {
            WorkerError::Transient
        };
        HandlerError::new(kind, format!("opening the organization session: {e}"))
    })?;
    let overrides = Overrides {
        regions: input.regions.clone(),
        accounts: input.accounts.clone(),
        ..Overrides::default()
    };
    let (items, failed) =
        orgop_runner::fanout_org(&deps.connector, &org, &req.targets, &overrides, &req.role)
            .await
            .map_err(|e| {
                let kind = match e.error.kind {
                    ErrorKind::Throttled => WorkerError::Throttled,
                    ErrorKind::Transport => WorkerError::Transient,
                    _ => WorkerError::InvalidInput,
                };
                HandlerError::new(kind, e.to_string())
            })?;
    for f in &failed {
        deps.store.put(&req.execution, f).await?;
    }
    let mut run = RunContext {
        execution: req.execution.clone(),
        params,
        apply: input.apply,
        lock: None,
        approved: None,
    };
    let count = items.len();
    tracing::info!(
        duration_ms = elapsed_ms(started),
        outcome = "ok",
        count,
        failed = failed.len(),
        map = ?req.map,
        "fanout finished"
    );
    // The apply lock is the fanout's last step: nothing after it can fail and leave it held
    // (a dry run never locks).
    match req.map {
        MapKind::Inline => {
            if run.apply {
                run.lock = crate::applylock::take(deps, &org, &req.runbook, &req.execution).await?;
            }
            Ok(FanoutResponse {
                run,
                count,
                items: Some(items),
                items_location: None,
            })
        }
        MapKind::Distributed => {
            let bucket = deps.bucket.clone().ok_or_else(|| {
                HandlerError::new(
                    WorkerError::InvalidInput,
                    "a distributed Map needs ORGOP_RESULTS_BUCKET",
                )
            })?;
            let key = format!(
                "orgop/{}/{}/items.json",
                req.runbook,
                execution_name(&req.execution)
            );
            let body = serde_json::to_vec(&items)
                .map_err(|e| HandlerError::new(WorkerError::Internal, e.to_string()))?;
            deps.objects
                .put(&bucket, &key, body, "application/json")
                .await?;
            if run.apply {
                run.lock = crate::applylock::take(deps, &org, &req.runbook, &req.execution).await?;
            }
            Ok(FanoutResponse {
                run,
                count,
                items: None,
                items_location: Some(S3Location { bucket, key }),
            })
        }
    }
}

fn summary_of(r: &ItemResult) -> WorkerSummary {
    WorkerSummary {
        account_id: r.account_id.clone(),
        region: r.region.clone(),
        status: r.status,
        findings: r.findings.len(),
        actions: r.actions.len(),
        error_code: r.error.as_ref().map(|e| e.code.clone()),
        error_message: r.error.as_ref().map(|e| bounded_message(&e.message)),
    }
}

/// A caught worker failure as its item's summary: the error's name and a bounded cause (for
/// a Lambda error, the cause is JSON whose `errorMessage` is the message).
fn failure(req: FailureRequest) -> WorkerSummary {
    let cause = req.cause.unwrap_or_default();
    let message = serde_json::from_str::<Value>(&cause)
        .ok()
        .and_then(|v| {
            v.get("errorMessage")
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .unwrap_or(cause);
    tracing::info!(outcome = "ok", error_code = %req.error, "failure recorded");
    WorkerSummary {
        account_id: req.item.account_id,
        region: req.item.region,
        status: Status::Error,
        findings: 0,
        actions: 0,
        error_code: Some(bounded_message(&req.error)),
        error_message: Some(bounded_message(&message)),
    }
}

/// When the worker stops sending calls, for an invocation Lambda ends at `deadline`: 10 s
/// before it, or a quarter of the time left at `now` when that is less than 40 s. The margin
/// is for storing the result and answering.
pub fn stop_before(deadline: Instant, now: Instant) -> Instant {
    let left = deadline.saturating_duration_since(now);
    let margin = Duration::from_secs(10).min(left / 4);
    now + (left - margin)
}

/// A connector whose sessions send no call after `stop`, and cut a call still waiting then.
struct Until<C> {
    inner: Arc<C>,
    stop: Instant,
    deadline: Instant,
}

/// A session of [`Until`].
struct UntilApi<A> {
    api: A,
    stop: Instant,
    deadline: Instant,
}

fn time_left(stop: Instant) -> Option<Duration> {
    stop.checked_duration_since(Instant::now())
        .filter(|d| !d.is_zero())
}

fn deadline_error(stop: Instant, deadline: Instant, what: &str) -> ApiError {
    let margin = deadline.saturating_duration_since(stop).as_secs_f64();
    ApiError {
        code: Code::LambdaTimeout.name().into(),
        message: format!(
            "{what}: the Lambda function's timeout is {:.0} s away or less, and the worker \
             stops {margin:.0} s before it to record what it finished",
            margin
        ),
        kind: ErrorKind::Other,
    }
}

impl<A: AwsApi> AwsApi for UntilApi<A> {
    async fn call(&self, call: Call<'_>) -> Result<Vec<Value>, ApiError> {
        let what = format!("{}:{} not completed", call.service, call.operation);
        let Some(left) = time_left(self.stop) else {
            return Err(deadline_error(self.stop, self.deadline, &what));
        };
        tokio::time::timeout(left, self.api.call(call))
            .await
            .unwrap_or_else(|_| Err(deadline_error(self.stop, self.deadline, &what)))
    }

    /// Never past the stop: the next poll then fails with the deadline error.
    async fn pause(&self, d: std::time::Duration) {
        let d = time_left(self.stop).map_or(Duration::ZERO, |left| d.min(left));
        self.api.pause(d).await
    }
}

impl<C: Connector> Connector for Until<C> {
    type Api = UntilApi<C::Api>;

    async fn org(&self) -> Result<Self::Api, ApiError> {
        let api = self.inner.org().await?;
        Ok(UntilApi {
            api,
            stop: self.stop,
            deadline: self.deadline,
        })
    }

    async fn item(
        &self,
        account_id: &str,
        region: &str,
        role: &RolePlan,
    ) -> Result<Self::Api, ApiError> {
        let what = "the session was not opened";
        let Some(left) = time_left(self.stop) else {
            return Err(deadline_error(self.stop, self.deadline, what));
        };
        let api = tokio::time::timeout(left, self.inner.item(account_id, region, role))
            .await
            .unwrap_or_else(|_| Err(deadline_error(self.stop, self.deadline, what)))?;
        Ok(UntilApi {
            api,
            stop: self.stop,
            deadline: self.deadline,
        })
    }

    async fn own(&self, account_id: &str, region: &str) -> Result<Self::Api, ApiError> {
        let what = "the session was not opened";
        let Some(left) = time_left(self.stop) else {
            return Err(deadline_error(self.stop, self.deadline, what));
        };
        let api = tokio::time::timeout(left, self.inner.own(account_id, region))
            .await
            .unwrap_or_else(|_| Err(deadline_error(self.stop, self.deadline, what)))?;
        Ok(UntilApi {
            api,
            stop: self.stop,
            deadline: self.deadline,
        })
    }

    fn home_region(&self) -> String {
        self.inner.home_region()
    }
}

/// The plan this container prepared last: a warm container runs many items of one execution,
/// so each is compiled once, not per invocation.
static PREPARED: std::sync::Mutex<Option<Arc<Prepared>>> = std::sync::Mutex::new(None);

/// The prepared form of the request's plan: the cached one when it is for the same plan and
/// shared data, else compiled now (and cached).
fn prepared(req: &WorkerRequest) -> Result<Arc<Prepared>, HandlerError> {
    let mut cached = PREPARED.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(p) = cached.as_ref()
        && p.is_for(&req.plan, &req.shared)
    {
        return Ok(p.clone());
    }
    let p = Prepared::new(req.plan.clone(), req.shared.clone())
        .map_err(|e| HandlerError::new(WorkerError::InvalidInput, e.to_string()))?;
    let p = Arc::new(p);
    *cached = Some(p.clone());
    Ok(p)
}

async fn worker<C: Connector, S: ResultsStore, O: ObjectStore, N: Notifier>(
    req: WorkerRequest,
    deps: &Deps<C, S, O, N>,
    deadline: Option<Instant>,
) -> Result<WorkerSummary, HandlerError> {
    let started = Instant::now();
    let span = tracing::Span::current();
    span.record("account", req.item.account_id.as_str());
    span.record("region", req.item.region.as_str());
    let prepared = prepared(&req)?;
    // An applying execution's worker extends its apply lock first; a lock lost to another
    // applier sends nothing for this item.
    if let Some(lost) = crate::applylock::extend(deps, &req.run, &req.item).await? {
        deps.store.put(&req.run.execution, &lost).await?;
        return Ok(summary_of(&lost));
    }
    // A runbook with `approval`: the plan phase is a dry run that keeps each planned action
    // with its element; an approved run admits only the approved plan's actions.
    let change = crate::approval::WorkerChange::of(&req, deps).await?;
    let facts = RunFacts {
        execution: req.run.execution.clone(),
        params: req.run.params.clone(),
        apply: req.run.apply && !change.planning(),
        now: (deps.now)(),
    };
    let hooks = change.hooks();
    // The run-wide cap is one counter for the whole execution, kept by the results store.
    // The plan phase of a runbook with `approval` counts apart: planning takes units of the
    // cap, and the approved run that follows must find them all.
    let budget = match req.plan.safety.max_actions_per_run {
        Some(max) if change.planning() => deps
            .store
            .run_budget(&format!("{}#plan", req.run.execution), max),
        Some(max) => deps.store.run_budget(&req.run.execution, max),
        None => ActionBudget::new(None),
    };
    // No journal of its own: the item's record goes to the results store once it ends, and
    // Step Functions (and the worker's own deadline), not a signal, decides when it stops.
    let result = match deadline {
        Some(deadline) => {
            let until = Until {
                inner: deps.connector.clone(),
                stop: stop_before(deadline, started),
                deadline,
            };
            orgop_runner::run_one(&until, &prepared, &req.item, &facts, &budget, hooks).await
        }
        None => {
            orgop_runner::run_one(
                &*deps.connector,
                &prepared,
                &req.item,
                &facts,
                &budget,
                hooks,
            )
            .await
        }
    };
    let mut result = result;
    change.finish(&req, &mut result, deps).await?;
    deps.store.put(&req.run.execution, &result).await?;
    tracing::info!(
        duration_ms = elapsed_ms(started),
        outcome = "ok",
        status = result.status.as_str(),
        error_code = result.error.as_ref().map(|e| e.code.as_str()),
        findings = result.findings.len(),
        actions = result.actions.len(),
        calls = result.calls,
        "worker finished"
    );
    Ok(summary_of(&result))
}

/// An item's place in the run: its account and region.
type Key = (String, String);

fn key_of(account_id: &str, region: &str) -> Key {
    (account_id.to_string(), region.to_string())
}

/// What the state machine knows of one item, beside the results store.
#[derive(Debug, Clone)]
enum Record {
    /// The item's summary: the worker's answer, or a failure the state machine caught.
    Summary(WorkerSummary),
    /// The distributed Map's child execution for the item failed (uncaught).
    ChildFailed { error: String, cause: String },
    /// The distributed Map left the item's child execution pending.
    Pending,
}

/// The manifest a distributed Map's `ResultWriter` writes (`manifest.json`).
#[derive(Debug, serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Manifest {
    #[serde(default)]
    destination_bucket: Option<String>,
    result_files: ResultFiles,
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
struct ResultFiles {
    #[serde(default)]
    succeeded: Vec<ResultFile>,
    #[serde(default)]
    failed: Vec<ResultFile>,
    #[serde(default)]
    pending: Vec<ResultFile>,
}

#[derive(Debug, serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ResultFile {
    key: String,
}

/// One child execution in a result file.
#[derive(Debug, serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ChildExecution {
    #[serde(default)]
    input: Option<String>,
    #[serde(default)]
    output: Option<String>,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    cause: Option<String>,
}

pub(crate) fn invalid(what: &str, e: impl std::fmt::Display) -> HandlerError {
    HandlerError::new(
        WorkerError::InvalidInput,
        format!("{what} is not valid: {e}"),
    )
}

/// The records of a distributed Map's children, from the `ResultWriter`'s manifest and result
/// files (`map_results` is the Map's output: `ResultWriterDetails` names the manifest).
async fn map_records<O: ObjectStore>(
    objects: &O,
    map_results: &Value,
    records: &mut BTreeMap<Key, Record>,
) -> Result<(), HandlerError> {
    let details = &map_results["ResultWriterDetails"];
    let (Some(bucket), Some(key)) = (details["Bucket"].as_str(), details["Key"].as_str()) else {
        return Err(invalid(
            "the distributed Map's output (no ResultWriterDetails Bucket and Key)",
            map_results,
        ));
    };
    let manifest: Manifest = serde_json::from_slice(&objects.get(bucket, key).await?)
        .map_err(|e| invalid(&format!("s3://{bucket}/{key}"), e))?;
    let bucket = manifest.destination_bucket.as_deref().unwrap_or(bucket);
    let files = &manifest.result_files;
    let lists = [
        (&files.succeeded, false),
        (&files.failed, false),
        (&files.pending, true),
    ];
    for (list, pending) in lists {
        for file in list {
            let body = objects.get(bucket, &file.key).await?;
            let children: Vec<ChildExecution> = serde_json::from_slice(&body)
                .map_err(|e| invalid(&format!("s3://{bucket}/{}", file.key), e))?;
            for child in children {
                // The child's input is its ItemSelector's output: the item is in it.
                let item = child
                    .input
                    .as_deref()
                    .and_then(|i| serde_json::from_str::<Value>(i).ok())
                    .and_then(|i| serde_json::from_value::<Item>(i["item"].clone()).ok());
                let summary = child
                    .output
                    .as_deref()
                    .and_then(|o| serde_json::from_str::<WorkerSummary>(o).ok());
                let (key, record) = match (summary, item) {
                    (Some(s), _) => (key_of(&s.account_id, &s.region), Record::Summary(s)),
                    (None, Some(item)) if pending => {
                        (key_of(&item.account_id, &item.region), Record::Pending)
                    }
                    (None, Some(item)) => (
                        key_of(&item.account_id, &item.region),
                        Record::ChildFailed {
                            error: child
                                .error
                                .unwrap_or_else(|| Code::Internal.name().to_string()),
                            cause: child.cause.unwrap_or_default(),
                        },
                    ),
                    // A child that names no item cannot be matched to one: the item it ran
                    // shows up as lost.
                    (None, None) => continue,
                };
                records.insert(key, record);
            }
        }
    }
    Ok(())
}

/// The run's items, as the fanout listed them: the inline Map's summaries, else the items the
/// distributed Map read; `None` when the request names neither.
async fn listed_items<O: ObjectStore>(
    req: &ResultsRequest,
    objects: &O,
) -> Result<Option<Vec<Item>>, HandlerError> {
    if let Some(summaries) = &req.items {
        return Ok(Some(
            summaries
                .iter()
                .map(|s| Item {
                    account_id: s.account_id.clone(),
                    account_name: String::new(),
                    region: s.region.clone(),
                })
                .collect(),
        ));
    }
    let Some(at) = &req.items_location else {
        return Ok(None);
    };
    let body = objects.get(&at.bucket, &at.key).await?;
    serde_json::from_slice(&body)
        .map(Some)
        .map_err(|e| invalid(&format!("s3://{}/{}", at.bucket, at.key), e))
}

fn lost(item: Item, reason: impl Into<String>) -> ItemResult {
    ItemResult::failed(
        item,
        Status::Lost,
        ItemError::new(Code::ItemLost, reason.into()),
    )
}

/// Fills `spool` with every item of the execution: its stored result; else the failure the
/// state machine recorded for it (inline: the Map's summaries; distributed: the
/// `ResultWriter`'s result files); else a `lost` record saying why. The items are the
/// fanout's list (and its `count`, when there is no list to name them). Writes the files to the
/// results bucket, and counts.
async fn spool_results<C: Connector, S: ResultsStore, O: ObjectStore, N: Notifier>(
    req: &ResultsRequest,
    deps: &Deps<C, S, O, N>,
    spool: &mut sink::Spool,
) -> Result<ResultsSummary, HandlerError> {
    let mut stored = HashSet::new();
    deps.store
        .each(&req.execution, &mut |r| {
            stored.insert(key_of(&r.account_id, &r.region));
            spool.push(r);
        })
        .await?;
    let mut records: BTreeMap<Key, Record> = BTreeMap::new();
    for s in req.items.iter().flatten() {
        records.insert(key_of(&s.account_id, &s.region), Record::Summary(s.clone()));
    }
    if let Some(map_results) = &req.map_results {
        map_records(&deps.objects, map_results, &mut records).await?;
    }
    let listed = listed_items(req, &deps.objects).await?;
    let known = listed.is_some();
    // Without the list, the state machine's records name the items.
    let items: Vec<Item> = listed.unwrap_or_else(|| {
        records
            .keys()
            .map(|(account_id, region)| Item {
                account_id: account_id.clone(),
                account_name: String::new(),
                region: region.clone(),
            })
            .collect()
    });
    let mut seen = HashSet::new();
    for item in items {
        let key = key_of(&item.account_id, &item.region);
        if !seen.insert(key.clone()) || stored.contains(&key) {
            continue;
        }
        let result = match records.get(&key) {
            Some(Record::Summary(s)) if s.status.is_failure() => ItemResult::failed(
                item,
                s.status,
                ItemError::new(
                    s.error_code.as_deref().unwrap_or(Code::Internal.name()),
                    s.error_message.as_deref().unwrap_or_default(),
                ),
            ),
            Some(Record::Summary(s)) => lost(
                item,
                format!(
                    "the worker answered `{}` but its result is not in the results store",
                    s.status
                ),
            ),
            Some(Record::ChildFailed { error, cause }) => ItemResult::failed(
                item,
                Status::Error,
                ItemError::new(bounded_message(error), bounded_message(cause)),
            ),
            Some(Record::Pending) => lost(
                item,
                "the distributed Map left its child execution pending: it never ran",
            ),
            None => lost(
                item,
                "no worker result and no failure record: the worker never stored a result and \
                 the state machine recorded no failure for it",
            ),
        };
        spool.push(result);
    }
    if !known {
        seen.extend(stored);
    }
    // The fanout counted more items than anything names: each is lost, unnamed.
    let accounted = seen.len();
    for n in accounted..req.count {
        let why = if known {
            "the item list is shorter than the fanout's count"
        } else {
            "no item list to name it"
        };
        spool.push(lost(
            Item {
                account_id: String::new(),
                account_name: String::new(),
                region: String::new(),
            },
            format!(
                "item {} of {}: no worker result and no failure record ({why})",
                n + 1,
                req.count
            ),
        ));
    }
    let s = spool.summary();
    let mut out = ResultsSummary {
        items: s.items,
        failed: s.failed(),
        by_status: s.by_status.clone(),
        findings: s.findings,
        actions: s.actions.clone(),
        results_uri: None,
        findings_uri: None,
    };
    if let Some(bucket) = &deps.bucket {
        let prefix = format!("orgop/{}/{}", req.runbook, execution_name(&req.execution));
        let files = spool
            .files()
            .map_err(|e| HandlerError::new(WorkerError::Internal, e.to_string()))?;
        for f in files {
            let key = sink::key_under(&prefix, f.name);
            deps.objects
                .put(bucket, &key, f.body, f.content_type)
                .await?;
            let uri = Some(format!("s3://{bucket}/{key}"));
            if f.name == sink::RESULTS_JSONL {
                out.results_uri = uri;
            } else {
                out.findings_uri = uri;
            }
        }
    }
    Ok(out)
}

async fn results<C: Connector, S: ResultsStore, O: ObjectStore, N: Notifier>(
    req: ResultsRequest,
    deps: &Deps<C, S, O, N>,
) -> Result<ResultsSummary, HandlerError> {
    let started = Instant::now();
    // Every worker has ended: the execution's apply lock is released first, whether items
    // failed or not (and whatever happens to the report below).
    crate::applylock::release(deps, &req.run).await?;
    // Results pass through a spool file in the temporary directory (Lambda's /tmp): memory
    // holds the files' text at the end, not every result as values.
    let internal = |e: sink::SinkError| HandlerError::new(WorkerError::Internal, e.to_string());
    let mut spool = sink::Spool::temporary(execution_name(&req.execution), req.columns.clone())
        .map_err(internal)?;
    let out = spool_results(&req, deps, &mut spool).await;
    let removed = spool.remove().map_err(internal);
    let out = out?;
    removed?;
    let notice = RunNotice::new(&req.runbook, out);
    deps.notifier.notify(&notice).await.map_err(|e| {
        let kind = match e.kind {
            NotifyErrorKind::Throttled => WorkerError::Throttled,
            NotifyErrorKind::Transient => WorkerError::Transient,
        };
        HandlerError::new(kind, e.message)
    })?;
    let out = notice.summary;
    tracing::info!(
        duration_ms = elapsed_ms(started),
        outcome = "ok",
        items = out.items,
        failed = out.failed,
        findings = out.findings,
        "results finished"
    );
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::NotifyError;
    use orgop_exec::Finding;
    use orgop_runner::ReplayConnector;
    use std::collections::BTreeMap;
    use std::sync::Mutex;

    struct Memory(Vec<ItemResult>);

    impl ResultsStore for Memory {
        async fn put(&self, _: &str, _: &ItemResult) -> Result<(), StoreError> {
            unreachable!("the result handler only reads")
        }
        async fn each(
            &self,
            _: &str,
            on: &mut (dyn FnMut(ItemResult) + Send),
        ) -> Result<(), StoreError> {
            self.0.iter().cloned().for_each(on);
            Ok(())
        }
    }

    #[derive(Default)]
    struct Objects(Mutex<BTreeMap<String, Vec<u8>>>);

    impl ObjectStore for Objects {
        async fn put(&self, b: &str, k: &str, body: Vec<u8>, _: &str) -> Result<(), StoreError> {
            self.0.lock().unwrap().insert(format!("{b}/{k}"), body);
            Ok(())
        }
        async fn get(&self, b: &str, k: &str) -> Result<Vec<u8>, StoreError> {
            Ok(self.0.lock().unwrap()[&format!("{b}/{k}")].clone())
        }
    }

    /// Records every notice; fails with `fail` instead when set.
    #[derive(Default)]
    struct Recorder {
        notices: Mutex<Vec<RunNotice>>,
        fail: Option<NotifyError>,
    }

    impl Notifier for Recorder {
        async fn notify(&self, n: &RunNotice) -> Result<(), NotifyError> {
            self.notices.lock().unwrap().push(n.clone());
            self.fail.clone().map_or(Ok(()), Err)
        }

        async fn approval(&self, _: &crate::store::ApprovalNotice) -> Result<(), NotifyError> {
            self.fail.clone().map_or(Ok(()), Err)
        }
    }

    fn ok(account: &str, region: &str, volumes: &[&str]) -> ItemResult {
        let mut r = ItemResult::failed(
            Item {
                account_id: account.into(),
                account_name: "m".into(),
                region: region.into(),
            },
            Status::Ok,
            ItemError::new("", ""),
        );
        r.error = None;
        r.findings = volumes
            .iter()
            .map(|v| Finding {
                resource_id: Value::from(*v),
                columns: Default::default(),
            })
            .collect();
        r
    }

    #[tokio::test]
    async fn results_merge_the_store_with_failures_only_the_state_machine_saw() {
        let deps = Deps {
            connector: Arc::new(ReplayConnector::new("/nonexistent")),
            // Stored in the table's order; the files come out sorted by account and region.
            store: Memory(vec![
                ok("222222222222", "us-east-1", &["vol-3"]),
                ok("111111111111", "us-east-1", &["vol-1", "vol-2"]),
            ]),
            objects: Objects::default(),
            bucket: Some("bucket".into()),
            now: || 0.0,
            notifier: Recorder::default(),
        };
        let summary = |account: &str, status: &str, code: Option<&str>| {
            serde_json::json!({"account_id": account, "region": "us-east-1", "status": status,
                "findings": 0, "actions": 0, "error_code": code, "error_message": code.map(|_| "Lambda timed out")})
        };
        let execution = "arn:aws:states:us-east-1:123456789012:execution:m:run-merge";
        let payload = serde_json::json!({
            "handler": "results", "runbook": "unused-ebs", "count": 3, "columns": [],
            "run": {"execution": execution, "apply": false},
            "execution": execution,
            "items": [summary("111111111111", "ok", None), summary("222222222222", "ok", None),
                      summary("000000000000", "error", Some("States.Timeout"))],
        });
        let out = handle(payload, &deps).await.unwrap();
        assert_eq!(
            (&out["items"], &out["failed"], &out["findings"]),
            (&Value::from(3), &Value::from(1), &Value::from(3)),
            "{out}"
        );
        let objects = deps.objects.0.lock().unwrap();
        let jsonl =
            String::from_utf8(objects["bucket/orgop/unused-ebs/run-merge/results.jsonl"].clone())
                .unwrap();
        let order: Vec<(String, String)> = jsonl
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap())
            .map(|r| (r["account_id"].to_string(), r["status"].to_string()))
            .collect();
        assert_eq!(
            order,
            [
                (r#""000000000000""#.into(), r#""error""#.into()),
                (r#""111111111111""#.into(), r#""ok""#.into()),
                (r#""222222222222""#.into(), r#""ok""#.into()),
            ]
        );
        let csv =
            String::from_utf8(objects["bucket/orgop/unused-ebs/run-merge/findings.csv"].clone())
                .unwrap();
        assert_eq!(csv.lines().count(), 1 + 3, "{csv}");
        // The spool is gone from the temporary directory.
        let left: Vec<_> = std::fs::read_dir(std::env::temp_dir())
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| {
                e.file_name()
                    .to_string_lossy()
                    .starts_with("orgop-run-merge-")
            })
            .collect();
        assert!(left.is_empty(), "{left:?}");
        // The run was announced once, with its counts and where the findings are.
        let notices = deps.notifier.notices.lock().unwrap();
        assert_eq!(notices.len(), 1);
        assert_eq!(
            notices[0].subject,
            "orgop unused-ebs: 3 items, 1 failed, 3 findings"
        );
        assert_eq!(
            (notices[0].summary.items, notices[0].summary.failed),
            (3, 1)
        );
        assert_eq!(
            notices[0].summary.findings_uri.as_deref(),
            Some("s3://bucket/orgop/unused-ebs/run-merge/findings.csv")
        );
        assert_eq!(
            notices[0].text(),
            "orgop unused-ebs: 3 items, 1 failed, 3 findings \
             (s3://bucket/orgop/unused-ebs/run-merge/findings.csv)"
        );
    }

    fn deps_with(
        store: Vec<ItemResult>,
        objects: Objects,
    ) -> Deps<ReplayConnector, Memory, Objects, Recorder> {
        Deps {
            connector: Arc::new(ReplayConnector::new("/nonexistent")),
            store: Memory(store),
            objects,
            bucket: Some("bucket".into()),
            now: || 0.0,
            notifier: Recorder::default(),
        }
    }

    fn put_json(objects: &Objects, key: &str, v: &Value) {
        objects
            .0
            .lock()
            .unwrap()
            .insert(format!("bucket/{key}"), v.to_string().into_bytes());
    }

    /// results.jsonl as (account, status, error code, error message).
    fn lines(
        deps: &Deps<ReplayConnector, Memory, Objects, Recorder>,
        run: &str,
    ) -> Vec<(String, String, String, String)> {
        let objects = deps.objects.0.lock().unwrap();
        let jsonl = String::from_utf8(
            objects[&format!("bucket/orgop/unused-ebs/{run}/results.jsonl")].clone(),
        )
        .unwrap();
        jsonl
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap())
            .map(|r| {
                let s = |v: &Value| v.as_str().unwrap_or_default().to_string();
                (
                    s(&r["account_id"]),
                    s(&r["status"]),
                    s(&r["error"]["code"]),
                    s(&r["error"]["message"]),
                )
            })
            .collect()
    }

    const MAP_RUN: &str = "arn:aws:states:us-east-1:123456789012:mapRun:m/Accounts:1";

    fn distributed_payload(run: &str, count: usize, items_location: bool) -> Value {
        let execution = format!("arn:aws:states:us-east-1:123456789012:execution:m:{run}");
        let mut p = serde_json::json!({
            "handler": "results", "runbook": "unused-ebs", "count": count, "columns": [],
            "run": {"execution": execution, "apply": false}, "execution": execution,
            "map_results": {"MapRunArn": MAP_RUN, "ResultWriterDetails": {
                "Bucket": "bucket", "Key": format!("orgop/unused-ebs/map-results/{run}/manifest.json")}},
        });
        if items_location {
            p["items_location"] = serde_json::json!({"bucket": "bucket",
                "key": format!("orgop/unused-ebs/{run}/items.json")});
        }
        p
    }

    fn item(account: &str) -> Value {
        serde_json::json!({"account_id": account, "account_name": format!("n-{account}"), "region": "us-east-1"})
    }

    /// A child execution of the distributed Map, as the ResultWriter writes it.
    fn child(
        account: &str,
        status: &str,
        output: Option<Value>,
        error: Option<(&str, &str)>,
    ) -> Value {
        let input = serde_json::json!({"handler": "worker", "item": item(account), "plan": {}});
        let mut c = serde_json::json!({
            "ExecutionArn": format!("{MAP_RUN}:{account}"), "Name": account,
            "Input": input.to_string(), "InputDetails": {"Included": true},
            "StartDate": "2026-01-01T00:00:00.000Z", "StopDate": "2026-01-01T00:00:01.000Z",
            "StateMachineArn": MAP_RUN, "Status": status,
        });
        if let Some(o) = output {
            c["Output"] = Value::from(o.to_string());
            c["OutputDetails"] = serde_json::json!({"Included": true});
        }
        if let Some((e, cause)) = error {
            c["Error"] = Value::from(e);
            c["Cause"] = Value::from(cause);
        }
        c
    }

    fn manifest(objects: &Objects, run: &str, files: &[(&str, Vec<Value>)]) {
        let mut result_files = serde_json::json!({"SUCCEEDED": [], "FAILED": [], "PENDING": []});
        for (i, (kind, children)) in files.iter().enumerate() {
            let key = format!("orgop/unused-ebs/map-results/{run}/{kind}_{i}.json");
            let body = Value::Array(children.clone());
            result_files[*kind]
                .as_array_mut()
                .unwrap()
                .push(serde_json::json!({"Key": key, "Size": body.to_string().len()}));
            put_json(objects, &key, &body);
        }
        put_json(
            objects,
            &format!("orgop/unused-ebs/map-results/{run}/manifest.json"),
            &serde_json::json!({"DestinationBucket": "bucket", "MapRunArn": MAP_RUN, "ResultFiles": result_files}),
        );
    }

    /// The defect of issue 10: a distributed run with 3 items and one stored result answered
    /// `items: 1, failed: 0`. Every item is now accounted for: the two without a result or a
    /// failure record are `lost`, named from the fanout's items.json, with the reason.
    #[tokio::test]
    async fn distributed_items_without_a_result_or_a_failure_record_are_lost() {
        let objects = Objects::default();
        put_json(
            &objects,
            "orgop/unused-ebs/run-lost/items.json",
            &serde_json::json!([
                item("111111111111"),
                item("222222222222"),
                item("333333333333")
            ]),
        );
        let ok_summary = serde_json::json!({"account_id": "111111111111", "region": "us-east-1",
            "status": "ok", "findings": 1, "actions": 0});
        manifest(
            &objects,
            "run-lost",
            &[(
                "SUCCEEDED",
                vec![child("111111111111", "SUCCEEDED", Some(ok_summary), None)],
            )],
        );
        let deps = deps_with(vec![ok("111111111111", "us-east-1", &["vol-1"])], objects);
        let out = handle(distributed_payload("run-lost", 3, true), &deps)
            .await
            .unwrap();
        assert_eq!(
            (
                &out["items"],
                &out["failed"],
                &out["by_status"]["lost"],
                &out["by_status"]["ok"]
            ),
            (
                &Value::from(3),
                &Value::from(2),
                &Value::from(2),
                &Value::from(1)
            ),
            "{out}"
        );
        let got = lines(&deps, "run-lost");
        assert_eq!(got.len(), 3);
        assert_eq!(
            (got[0].0.as_str(), got[0].1.as_str()),
            ("111111111111", "ok")
        );
        for (i, account) in ["222222222222", "333333333333"].into_iter().enumerate() {
            let (a, status, code, message) = &got[i + 1];
            assert_eq!(
                (a.as_str(), status.as_str(), code.as_str()),
                (account, "lost", Code::ItemLost.name())
            );
            assert!(
                message.contains("no worker result and no failure record"),
                "{message}"
            );
        }
        // The routing: failed > 0 sends the execution to ItemsFailed.
        assert_eq!(deps.notifier.notices.lock().unwrap()[0].summary.failed, 2);

        // The same event without the item list (the shape the state machine sent before):
        // the count still accounts for every item, the two lost ones unnamed.
        let objects = Objects::default();
        manifest(&objects, "run-lost", &[("SUCCEEDED", vec![])]);
        let deps = deps_with(vec![ok("111111111111", "us-east-1", &["vol-1"])], objects);
        let out = handle(distributed_payload("run-lost", 3, false), &deps)
            .await
            .unwrap();
        assert_eq!(
            (&out["items"], &out["failed"]),
            (&Value::from(3), &Value::from(2)),
            "{out}"
        );
        let got = lines(&deps, "run-lost");
        let lost: Vec<_> = got.iter().filter(|l| l.1 == "lost").collect();
        assert_eq!(lost.len(), 2, "{got:?}");
        assert!(
            lost.iter()
                .all(|l| l.3.contains("of 3: no worker result and no failure record")),
            "{lost:?}"
        );
    }

    /// Caught failures and failed, pending and unstored children of a distributed Map: each
    /// item ends with the status its record gives, the causes bounded.
    #[tokio::test]
    async fn distributed_result_files_give_each_unstored_item_its_status() {
        let accounts = [
            "111111111111",
            "222222222222",
            "333333333333",
            "444444444444",
            "555555555555",
        ];
        let objects = Objects::default();
        put_json(
            &objects,
            "orgop/unused-ebs/run-files/items.json",
            &Value::Array(accounts.iter().map(|a| item(a)).collect()),
        );
        let summary = |a: &str, status: &str, code: Option<&str>| {
            serde_json::json!({"account_id": a, "region": "us-east-1", "status": status,
                "findings": 0, "actions": 0, "error_code": code, "error_message": code.map(|_| "Lambda timed out")})
        };
        let huge = "x".repeat(32 * 1024);
        manifest(
            &objects,
            "run-files",
            &[
                (
                    "SUCCEEDED",
                    vec![
                        child(
                            accounts[0],
                            "SUCCEEDED",
                            Some(summary(accounts[0], "ok", None)),
                            None,
                        ),
                        // RecordFailure's record of a caught worker failure.
                        child(
                            accounts[1],
                            "SUCCEEDED",
                            Some(summary(accounts[1], "error", Some("States.Timeout"))),
                            None,
                        ),
                        // The worker answered ok, but its result never reached the store.
                        child(
                            accounts[2],
                            "SUCCEEDED",
                            Some(summary(accounts[2], "ok", None)),
                            None,
                        ),
                    ],
                ),
                (
                    "FAILED",
                    vec![child(
                        accounts[3],
                        "FAILED",
                        None,
                        Some(("States.Runtime", &huge)),
                    )],
                ),
                ("PENDING", vec![child(accounts[4], "PENDING", None, None)]),
            ],
        );
        let deps = deps_with(vec![ok(accounts[0], "us-east-1", &[])], objects);
        let out = handle(distributed_payload("run-files", 5, true), &deps)
            .await
            .unwrap();
        assert_eq!(
            (&out["items"], &out["failed"]),
            (&Value::from(5), &Value::from(4)),
            "{out}"
        );
        let got = lines(&deps, "run-files");
        let status: Vec<(&str, &str, &str)> = got
            .iter()
            .map(|l| (l.0.as_str(), l.1.as_str(), l.2.as_str()))
            .collect();
        assert_eq!(
            status,
            [
                (accounts[0], "ok", ""),
                (accounts[1], "error", "States.Timeout"),
                (accounts[2], "lost", Code::ItemLost.name()),
                (accounts[3], "error", "States.Runtime"),
                (accounts[4], "lost", Code::ItemLost.name()),
            ]
        );
        assert!(
            got[2]
                .3
                .contains("answered `ok` but its result is not in the results store"),
            "{}",
            got[2].3
        );
        assert!(
            got[3].3.len() <= contract::MESSAGE_BYTES,
            "{}",
            got[3].3.len()
        );
        assert!(got[4].3.contains("pending"), "{}", got[4].3);
    }

    /// The failure recorder keeps the error's name and at most MESSAGE_BYTES of the cause.
    #[tokio::test]
    async fn a_caught_failure_is_recorded_with_a_bounded_cause() {
        let deps = deps_with(vec![], Objects::default());
        let cause = serde_json::json!({"errorType": Code::Internal.name(), "errorMessage": "é".repeat(16 * 1024),
            "stackTrace": ["x".repeat(1000)]}).to_string();
        let out = handle(
            serde_json::json!({"handler": "failure", "item": item("111111111111"),
                "error": Code::Internal.name(), "cause": cause}),
            &deps,
        )
        .await
        .unwrap();
        let s: WorkerSummary = serde_json::from_value(out.clone()).unwrap();
        assert_eq!(
            (s.status, s.error_code.as_deref()),
            (Status::Error, Some(Code::Internal.name()))
        );
        let message = s.error_message.unwrap();
        assert!(
            message.starts_with("éé") && message.len() <= contract::MESSAGE_BYTES,
            "{message}"
        );
        assert!(out.to_string().len() < 400, "{out}");
    }

    /// Keeps what the worker stores.
    #[derive(Default)]
    struct Kept(Mutex<Vec<ItemResult>>);

    impl ResultsStore for Kept {
        async fn put(&self, _: &str, r: &ItemResult) -> Result<(), StoreError> {
            self.0.lock().unwrap().push(r.clone());
            Ok(())
        }
        async fn each(
            &self,
            _: &str,
            _: &mut (dyn FnMut(ItemResult) + Send),
        ) -> Result<(), StoreError> {
            Ok(())
        }
    }

    /// Sessions whose every call hangs (an AWS endpoint that never answers).
    struct Hanging;

    struct HangingApi;

    impl AwsApi for HangingApi {
        async fn call(&self, _: Call<'_>) -> Result<Vec<Value>, ApiError> {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            Ok(vec![])
        }

        async fn pause(&self, d: Duration) {
            tokio::time::sleep(d).await
        }
    }

    impl Connector for Hanging {
        type Api = HangingApi;
        async fn org(&self) -> Result<HangingApi, ApiError> {
            Ok(HangingApi)
        }
        async fn own(&self, _: &str, _: &str) -> Result<HangingApi, ApiError> {
            Ok(HangingApi)
        }
        async fn item(&self, _: &str, _: &str, _: &RolePlan) -> Result<HangingApi, ApiError> {
            Ok(HangingApi)
        }
    }

    fn worker_payload() -> Value {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../runbooks/unused-ebs.yaml"
        );
        let lowered = orgop_check::check_source(
            "runbooks/unused-ebs.yaml",
            &std::fs::read_to_string(path).unwrap(),
        )
        .lowered
        .unwrap();
        serde_json::json!({
            "handler": "worker", "item": item("111111111111"),
            "run": {"execution": "arn:aws:states:us-east-1:123456789012:execution:m:run-deadline", "apply": false},
            "shared": lowered.shared, "plan": lowered.plan,
        })
    }

    /// A worker whose invocation ends in 2 s stops its hanging call with a quarter of that to
    /// spare, stores the item as `error` naming the limit, and answers before the deadline.
    #[tokio::test]
    async fn a_worker_near_its_deadline_stops_and_records_the_limit() {
        let deps = Deps {
            connector: Arc::new(Hanging),
            store: Kept::default(),
            objects: Objects::default(),
            bucket: None,
            now: || 0.0,
            notifier: Recorder::default(),
        };
        let started = Instant::now();
        let deadline = started + Duration::from_secs(2);
        let out = handle_until(worker_payload(), &deps, Some(deadline))
            .await
            .unwrap();
        let answered = Instant::now();
        assert!(
            answered < deadline,
            "answered {:?} after the start",
            answered - started
        );
        assert!(answered >= stop_before(deadline, started), "stopped early");
        let s: WorkerSummary = serde_json::from_value(out).unwrap();
        assert_eq!(
            (s.status, s.error_code.as_deref()),
            (Status::Error, Some(Code::LambdaTimeout.name()))
        );
        let stored = deps.store.0.lock().unwrap().clone();
        assert_eq!(stored.len(), 1, "the item's result is stored");
        let e = stored[0].error.as_ref().unwrap();
        assert_eq!(e.code, Code::LambdaTimeout.name());
        assert!(
            e.message.contains("DescribeVolumes not completed"),
            "{}",
            e.message
        );
        assert!(e.message.contains("timeout"), "{}", e.message);
        assert_eq!(e.step.as_deref(), Some("volumes"));

        // A deadline already inside the margin: not even the session is opened.
        let started = Instant::now();
        let out = handle_until(worker_payload(), &deps, Some(started))
            .await
            .unwrap();
        assert!(started.elapsed() < Duration::from_secs(5));
        assert_eq!(out["error_code"], Code::LambdaTimeout.name(), "{out}");
    }

    #[test]
    fn the_margin_is_ten_seconds_or_a_quarter_of_a_short_invocation() {
        let now = Instant::now();
        assert_eq!(
            stop_before(now + Duration::from_secs(900), now),
            now + Duration::from_secs(890)
        );
        assert_eq!(
            stop_before(now + Duration::from_secs(20), now),
            now + Duration::from_secs(15)
        );
        assert_eq!(stop_before(now, now), now);
    }

    #[tokio::test]
    async fn a_throttled_notification_fails_the_results_handler_as_throttled() {
        let deps = Deps {
            connector: Arc::new(ReplayConnector::new("/nonexistent")),
            store: Memory(vec![ok("111111111111", "us-east-1", &["vol-1"])]),
            objects: Objects::default(),
            bucket: None,
            now: || 0.0,
            notifier: Recorder {
                fail: Some(NotifyError {
                    kind: NotifyErrorKind::Throttled,
                    message: "notifying the topic: throttled after 3 attempts".into(),
                }),
                ..Recorder::default()
            },
        };
        let execution = "arn:aws:states:us-east-1:123456789012:execution:m:run-throttled";
        let payload = serde_json::json!({
            "handler": "results", "runbook": "unused-ebs", "count": 1, "columns": [],
            "run": {"execution": execution, "apply": false}, "execution": execution,
        });
        let e = handle(payload, &deps).await.unwrap_err();
        assert_eq!(e.kind, WorkerError::Throttled, "{e}");
        assert_eq!(e.message, "notifying the topic: throttled after 3 attempts");
        let notices = deps.notifier.notices.lock().unwrap();
        assert_eq!(
            notices[0].subject,
            "orgop unused-ebs: 1 items, 0 failed, 1 findings"
        );
        assert_eq!(notices[0].summary.findings_uri, None);
    }
}
