//! The three handlers and the dispatcher.
use crate::store::{ObjectStore, ResultsStore, StoreError, execution_name};
use orgop_exec::{ActionBudget, ErrorKind, ItemResult, RunFacts, Status};
use orgop_plan::contract::{
    self, ExecutionInput, FanoutRequest, FanoutResponse, ResultsRequest, ResultsSummary,
    RunContext, S3Location, WorkerRequest, WorkerSummary,
};
use orgop_plan::{MapKind, PLAN_FORMAT, WorkerError};
use orgop_runner::{Connector, Overrides, Summary, sink};
use serde_json::Value;
use std::sync::Arc;

/// What the handlers need.
pub struct Deps<C, S, O> {
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
    /// SNS topic for the run's summary.
    pub notify_topic: Option<String>,
    /// Slack incoming-webhook URL for the run's summary.
    pub slack_webhook: Option<String>,
    /// The client notifications go through.
    pub client: Option<orgop_aws::AwsClient>,
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
        let kind = if e.throttled {
            WorkerError::Throttled
        } else if e.transient {
            WorkerError::Transient
        } else {
            WorkerError::ResultsStore
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

/// Runs the handler the payload names; the answer is the handler's JSON.
pub async fn handle<C: Connector, S: ResultsStore, O: ObjectStore>(
    payload: Value,
    deps: &Deps<C, S, O>,
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

async fn fanout<C: Connector, S: ResultsStore, O: ObjectStore>(
    req: FanoutRequest,
    deps: &Deps<C, S, O>,
) -> Result<FanoutResponse, HandlerError> {
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
    let connector = deps.connector.clone();
    let role = req.role.clone();
    let (items, failed) = orgop_runner::fanout(&org, &req.targets, &overrides, |account| {
        let connector = connector.clone();
        let role = role.clone();
        async move { orgop_runner::enabled_regions(&*connector, account, &role).await }
    })
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
        status: r.status.as_str().into(),
        findings: r.findings.len(),
        actions: r.actions.len(),
        error_code: r.error.as_ref().map(|e| e.code.clone()),
        error_message: r
            .error
            .as_ref()
            .map(|e| e.message.chars().take(256).collect()),
    }
}

async fn worker<C: Connector, S: ResultsStore, O: ObjectStore>(
    req: WorkerRequest,
    deps: &Deps<C, S, O>,
) -> Result<WorkerSummary, HandlerError> {
    if req.plan.format != PLAN_FORMAT {
        return Err(HandlerError::new(
            WorkerError::InvalidInput,
            format!(
                "plan format {} is not {PLAN_FORMAT}: recompile and redeploy the state machine",
                req.plan.format
            ),
        ));
    }
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
    let result = orgop_runner::run_one(
        &*deps.connector,
        &req.plan,
        &req.shared,
        &req.item,
        &facts,
        &budget,
    )
    .await;
    deps.store.put(&req.run.execution, &result).await?;
    Ok(summary_of(&result))
}

async fn results<C: Connector, S: ResultsStore, O: ObjectStore>(
    req: ResultsRequest,
    deps: &Deps<C, S, O>,
) -> Result<ResultsSummary, HandlerError> {
    let mut all = deps.store.all(&req.execution).await?;
    // Failures the state machine caught never reached the store: add them from the summaries.
    for s in req.items.iter().flatten() {
        if s.status == "error"
            && !all
                .iter()
                .any(|r| r.account_id == s.account_id && r.region == s.region)
        {
            all.push(orgop_runner::failed_item(
                &s.account_id,
                "",
                &s.region,
                Status::Error,
                s.error_code.as_deref().unwrap_or("OrgOp.Internal"),
                s.error_message.as_deref().unwrap_or_default(),
            ));
        }
    }
    all.sort_by(|a, b| (&a.account_id, &a.region).cmp(&(&b.account_id, &b.region)));
    let s = Summary::of(&all);
    let mut out = ResultsSummary {
        items: s.items,
        failed: s.by_status.get("denied").copied().unwrap_or(0)
            + s.by_status.get("error").copied().unwrap_or(0),
        by_status: s.by_status.clone(),
        findings: s.findings,
        actions: s.actions.clone(),
        results_uri: None,
        findings_uri: None,
    };
    if let Some(bucket) = &deps.bucket {
        let prefix = format!("orgop/{}/{}", req.runbook, execution_name(&req.execution));
        let jsonl = sink::jsonl(&all);
        deps.objects
            .put(
                bucket,
                &format!("{prefix}/results.jsonl"),
                jsonl.into_bytes(),
                "application/x-ndjson",
            )
            .await?;
        out.results_uri = Some(format!("s3://{bucket}/{prefix}/results.jsonl"));
        let csv = sink::csv(&req.columns, &all)
            .map_err(|e| HandlerError::new(WorkerError::Internal, e))?;
        deps.objects
            .put(
                bucket,
                &format!("{prefix}/findings.csv"),
                csv.into_bytes(),
                "text/csv",
            )
            .await?;
        out.findings_uri = Some(format!("s3://{bucket}/{prefix}/findings.csv"));
    }
    let subject = format!(
        "orgop {}: {} items, {} failed, {} findings",
        req.runbook, out.items, out.failed, out.findings
    );
    if let (Some(url), Some(client)) = (&deps.slack_webhook, &deps.client) {
        let text = match &out.findings_uri {
            Some(uri) => format!("{subject} ({uri})"),
            None => subject.clone(),
        };
        match client
            .post_json(url, &serde_json::json!({ "text": text }))
            .await
        {
            Ok(status) if (200..300).contains(&status) => {}
            Ok(status) => {
                return Err(HandlerError::new(
                    WorkerError::Transient,
                    format!("the Slack webhook answered HTTP {status}"),
                ));
            }
            Err(e) => {
                return Err(HandlerError::new(
                    WorkerError::Transient,
                    format!("the Slack webhook: {e}"),
                ));
            }
        }
    }
    if let (Some(topic), Some(client)) = (&deps.notify_topic, &deps.client) {
        let message = serde_json::to_string_pretty(&out).unwrap_or_default();
        crate::live::notify(client, topic, &subject, &message)
            .await
            .map_err(|e| {
                let kind = if matches!(e, orgop_aws::CallError::Throttled { .. }) {
                    WorkerError::Throttled
                } else {
                    WorkerError::Transient
                };
                HandlerError::new(kind, format!("notifying {topic}: {e}"))
            })?;
    }
    Ok(out)
}
