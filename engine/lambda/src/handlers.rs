//! The three handlers and the dispatcher.
use crate::store::{
    Notifier, NotifyErrorKind, ObjectStore, ResultsStore, RunNotice, StoreError, StoreErrorKind,
    execution_name,
};
use orgop_exec::{ActionBudget, ErrorKind, ItemError, ItemResult, Prepared, RunFacts, Status};
use orgop_plan::contract::Item;
use orgop_plan::contract::{
    self, ExecutionInput, FanoutRequest, FanoutResponse, ResultsRequest, ResultsSummary,
    RunContext, S3Location, WorkerRequest, WorkerSummary,
};
use orgop_plan::{MapKind, WorkerError};
use orgop_runner::{Connector, Overrides, sink};
use orgop_vocab::Code;
use serde_json::Value;
use std::sync::Arc;
use std::time::Instant;
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
    fn new(kind: WorkerError, message: impl Into<String>) -> HandlerError {
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

fn parse<T: serde::de::DeserializeOwned>(v: Value) -> Result<T, HandlerError> {
    serde_json::from_value(v).map_err(|e| {
        HandlerError::new(
            WorkerError::InvalidInput,
            format!("the payload does not match this build of orgop: {e}"),
        )
    })
}

fn elapsed_ms(started: Instant) -> u64 {
    u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// Runs one invocation of [`handle`] inside a span with the invocation's `request_id`, the
/// `handler` and the `execution` (the worker adds its `account` and `region`); each handler
/// logs a line with its duration and outcome, and a failure is logged with its error name.
/// Nothing else of the payload is logged: it holds the plan and the run's parameters.
pub async fn invoke<C: Connector, S: ResultsStore, O: ObjectStore, N: Notifier>(
    request_id: &str,
    payload: Value,
    deps: &Deps<C, S, O, N>,
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
    let out = handle(payload, deps).instrument(span.clone()).await;
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
    let name = payload
        .get(contract::HANDLER)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let out = match name.as_str() {
        contract::FANOUT => serde_json::to_value(fanout(parse(payload)?, deps).await?),
        contract::WORKER => serde_json::to_value(worker(parse(payload)?, deps).await?),
        contract::RESULTS => serde_json::to_value(results(parse(payload)?, deps).await?),
        other => {
            return Err(HandlerError::new(
                WorkerError::InvalidInput,
                format!("unknown handler `{other}`: expected fanout, worker or results"),
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
    let run = RunContext {
        execution: req.execution.clone(),
        params,
        apply: input.apply,
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
    match req.map {
        MapKind::Inline => Ok(FanoutResponse {
            run,
            count,
            items: Some(items),
            items_location: None,
        }),
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
        error_message: r
            .error
            .as_ref()
            .map(|e| e.message.chars().take(256).collect()),
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
) -> Result<WorkerSummary, HandlerError> {
    let started = Instant::now();
    let span = tracing::Span::current();
    span.record("account", req.item.account_id.as_str());
    span.record("region", req.item.region.as_str());
    let prepared = prepared(&req)?;
    let facts = RunFacts {
        execution: req.run.execution.clone(),
        params: req.run.params.clone(),
        apply: req.run.apply,
        now: (deps.now)(),
    };
    // The run-wide cap is one counter for the whole execution, kept by the results store.
    let budget = match req.plan.safety.max_actions_per_run {
        Some(max) => deps.store.run_budget(&req.run.execution, max),
        None => ActionBudget::new(None),
    };
    // No journal of its own: the item's record goes to the results store once it ends, and
    // Step Functions, not a signal, decides when a worker stops.
    let result = orgop_runner::run_one(
        &*deps.connector,
        &prepared,
        &req.item,
        &facts,
        &budget,
        &orgop_exec::NoHooks,
    )
    .await;
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

/// Fills `spool` with the execution's results (and the failures only the state machine saw),
/// writes the files to the results bucket, and counts.
async fn spool_results<C: Connector, S: ResultsStore, O: ObjectStore, N: Notifier>(
    req: &ResultsRequest,
    deps: &Deps<C, S, O, N>,
    spool: &mut sink::Spool,
) -> Result<ResultsSummary, HandlerError> {
    let mut stored = std::collections::HashSet::new();
    deps.store
        .each(&req.execution, &mut |r| {
            stored.insert((r.account_id.clone(), r.region.clone()));
            spool.push(r);
        })
        .await?;
    // Failures the state machine caught never reached the store: add them from the summaries.
    for s in req.items.iter().flatten() {
        if s.status == Status::Error && !stored.contains(&(s.account_id.clone(), s.region.clone()))
        {
            spool.push(ItemResult::failed(
                Item {
                    account_id: s.account_id.clone(),
                    account_name: String::new(),
                    region: s.region.clone(),
                },
                Status::Error,
                ItemError::new(
                    s.error_code.as_deref().unwrap_or(Code::Internal.name()),
                    s.error_message.as_deref().unwrap_or_default(),
                ),
            ));
        }
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
