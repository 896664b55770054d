//! Runbooks with `approval`: the plan phase's worker, the plan and approval handlers, and the
//! approved run's worker (see the crate documentation).
//!
//! Where things are, under the results bucket (`ORGOP_RESULTS_BUCKET`, required):
//! `orgop/<runbook>/<execution name>/planned/<account>-<region>.json` each plan-phase
//! worker's planned actions with their elements (only when it planned any), and
//! `orgop/<runbook>/<execution name>/plan.json` the change plan (`orgop-change-plan/1`).
use crate::handlers::{Deps, HandlerError, elapsed_ms, invalid};
use crate::store::{
    ApprovalNotice, Notifier, NotifyErrorKind, ObjectStore, PendingApproval, ResultsStore,
    execution_name,
};
use orgop_change::{Admission, ChangePlan, Collector, PlanItem, PlannedAction, RunbookRef};
use orgop_exec::{ActionOutcome, ItemHooks, ItemResult, NoHooks, Status};
use orgop_plan::WorkerError;
use orgop_plan::contract::{
    ApprovalRequest, Item, Phase, PlanRequest, PlanSummary, S3Location, WorkerRequest,
};
use orgop_runner::Connector;
use serde_json::Value;
use std::collections::{BTreeMap, HashSet};
use std::time::Instant;

fn bucket<C, S, O, N>(deps: &Deps<C, S, O, N>) -> Result<String, HandlerError> {
    deps.bucket.clone().ok_or_else(|| {
        HandlerError::new(
            WorkerError::InvalidInput,
            "a runbook with `approval` needs ORGOP_RESULTS_BUCKET: the plan file is written there",
        )
    })
}

fn planned_key(runbook: &str, execution: &str, account_id: &str, region: &str) -> String {
    format!(
        "orgop/{runbook}/{}/planned/{account_id}-{region}.json",
        execution_name(execution)
    )
}

/// Where an execution's plan file is written.
pub fn plan_key(runbook: &str, execution: &str) -> String {
    format!("orgop/{runbook}/{}/plan.json", execution_name(execution))
}

/// What a worker does beyond running its item, by phase.
pub(crate) enum WorkerChange {
    /// Not a runbook with `approval`, or a dry run of one.
    None,
    /// The plan phase: collect each planned action with its element.
    Plan(Collector),
    /// An approved run: admit only this item's actions of the approved plan.
    Apply(Admission),
}

impl WorkerChange {
    /// The worker's part for `req`; an approved run reads the plan file and checks its digest.
    pub(crate) async fn of<C: Connector, S: ResultsStore, O: ObjectStore, N: Notifier>(
        req: &WorkerRequest,
        deps: &Deps<C, S, O, N>,
    ) -> Result<WorkerChange, HandlerError> {
        match (req.phase, &req.run.approved) {
            (Some(Phase::Plan), _) => {
                bucket(deps)?;
                Ok(WorkerChange::Plan(Collector::default()))
            }
            (Some(Phase::Apply), None) if req.run.apply => Err(HandlerError::new(
                WorkerError::InvalidInput,
                "this runbook has `approval`: its workers apply only an approved plan, and this \
                 run has none (approve it with `orgop approve EXECUTION`)",
            )),
            (_, Some(approved)) if req.run.apply => {
                let at = &approved.plan;
                let uri = format!("s3://{}/{}", at.bucket, at.key);
                let bytes = deps.objects.get(&at.bucket, &at.key).await?;
                let plan = ChangePlan::from_bytes(&uri, &bytes)
                    .map_err(|e| HandlerError::new(WorkerError::InvalidInput, e.to_string()))?;
                if plan.digest != approved.digest {
                    return Err(HandlerError::new(
                        WorkerError::InvalidInput,
                        format!(
                            "{uri}: its digest is {}, the approved plan's {}: not applied",
                            plan.digest, approved.digest
                        ),
                    ));
                }
                if plan.execution != req.run.execution {
                    return Err(HandlerError::new(
                        WorkerError::InvalidInput,
                        format!(
                            "{uri} was made by execution {}, not this one: not applied",
                            plan.execution
                        ),
                    ));
                }
                let mine: Vec<PlannedAction> = plan
                    .actions
                    .into_iter()
                    .filter(|a| a.account_id == req.item.account_id && a.region == req.item.region)
                    .collect();
                Ok(WorkerChange::Apply(Admission::new(&mine)))
            }
            _ => Ok(WorkerChange::None),
        }
    }

    pub(crate) fn planning(&self) -> bool {
        matches!(self, WorkerChange::Plan(_))
    }

    pub(crate) fn hooks(&self) -> &dyn ItemHooks {
        match self {
            WorkerChange::None => &NoHooks,
            WorkerChange::Plan(c) => c,
            WorkerChange::Apply(a) => a,
        }
    }

    /// After the item ran: the plan phase stores its planned actions (before its result, so a
    /// stored result with planned actions always has them); an approved run reports every
    /// planned action it did not send (`changed`, `gone`, `not run`).
    pub(crate) async fn finish<C: Connector, S: ResultsStore, O: ObjectStore, N: Notifier>(
        &self,
        req: &WorkerRequest,
        result: &mut ItemResult,
        deps: &Deps<C, S, O, N>,
    ) -> Result<(), HandlerError> {
        match self {
            WorkerChange::None => Ok(()),
            WorkerChange::Apply(a) => {
                a.complete(result);
                Ok(())
            }
            WorkerChange::Plan(c) => {
                let actions = c.actions();
                if actions.is_empty() {
                    return Ok(());
                }
                let key = planned_key(
                    &req.plan.runbook,
                    &req.run.execution,
                    &req.item.account_id,
                    &req.item.region,
                );
                let body = serde_json::to_vec(&actions)
                    .map_err(|e| HandlerError::new(WorkerError::Internal, e.to_string()))?;
                deps.objects
                    .put(&bucket(deps)?, &key, body, "application/json")
                    .await?;
                Ok(())
            }
        }
    }
}

fn rfc3339(epoch: f64) -> String {
    orgop_awswire::Timestamp::from_epoch_f64(epoch.floor())
        .map(|t| t.to_rfc3339())
        .unwrap_or_default()
}

/// The plan handler: every stored result of the plan phase -> its item; the planned actions
/// of each ok item -> the plan, sealed, to S3. A listed item without a stored result is in the
/// plan as `lost`, without actions.
pub(crate) async fn plan<C: Connector, S: ResultsStore, O: ObjectStore, N: Notifier>(
    req: PlanRequest,
    deps: &Deps<C, S, O, N>,
) -> Result<PlanSummary, HandlerError> {
    let started = Instant::now();
    let bucket = bucket(deps)?;
    let mut items: Vec<PlanItem> = Vec::new();
    let mut with_actions: Vec<(String, String)> = Vec::new();
    let mut stored = HashSet::new();
    deps.store
        .each(&req.execution, &mut |r: ItemResult| {
            stored.insert((r.account_id.clone(), r.region.clone()));
            let planned = r
                .actions
                .iter()
                .any(|a| a.outcome == ActionOutcome::Planned);
            if r.status == Status::Ok && planned {
                with_actions.push((r.account_id.clone(), r.region.clone()));
            }
            items.push(PlanItem {
                account_id: r.account_id,
                account_name: r.account_name,
                region: r.region,
                status: r.status.as_str().to_string(),
                error: r.error.map(|e| format!("{}: {}", e.code, e.message)),
            });
        })
        .await?;
    let listed: Vec<Item> = match (&req.items, &req.items_location) {
        (Some(items), _) => items.clone(),
        (None, Some(at)) => {
            let body = deps.objects.get(&at.bucket, &at.key).await?;
            serde_json::from_slice(&body)
                .map_err(|e| invalid(&format!("s3://{}/{}", at.bucket, at.key), e))?
        }
        (None, None) => Vec::new(),
    };
    for i in listed {
        if stored.insert((i.account_id.clone(), i.region.clone())) {
            items.push(PlanItem {
                account_id: i.account_id,
                account_name: i.account_name,
                region: i.region,
                status: Status::Lost.as_str().to_string(),
                error: Some(format!(
                    "{}: the plan phase stored no result for it: its actions (if any) are not in the plan",
                    orgop_vocab::Code::ItemLost.name()
                )),
            });
        }
    }
    let mut actions = Vec::new();
    for (account_id, region) in &with_actions {
        let key = planned_key(&req.runbook, &req.execution, account_id, region);
        let body = deps.objects.get(&bucket, &key).await?;
        let mine: Vec<PlannedAction> = serde_json::from_slice(&body)
            .map_err(|e| invalid(&format!("s3://{bucket}/{key}"), e))?;
        actions.extend(mine);
    }
    let plan = ChangePlan {
        format: orgop_change::FORMAT.into(),
        runbook: RunbookRef {
            name: req.runbook.clone(),
            version: req.version,
            path: req.source.clone(),
            sha256: req.sha256.clone(),
        },
        organization_id: String::new(),
        execution: req.execution.clone(),
        created_at: rfc3339((deps.now)()),
        params: req.run.params.clone(),
        items,
        actions,
        digest: String::new(),
    }
    .seal(&req.actions);
    let key = plan_key(&req.runbook, &req.execution);
    let text = plan.to_text();
    // The workers read the plan whole, and refuse one over the limit: refuse it here first,
    // before anyone is asked to approve what cannot be applied.
    if text.len() as u64 > orgop_change::MAX_PLAN_BYTES {
        return Err(HandlerError::new(
            WorkerError::InvalidInput,
            format!(
                "the plan of {} actions is {} bytes, over the {} MiB a plan may be (MAX_PLAN_BYTES): nothing was asked or applied; run fewer accounts or regions per execution (--accounts, --regions) or lower safety.max_actions_per_run",
                plan.actions.len(),
                text.len(),
                orgop_change::MAX_PLAN_BYTES >> 20
            ),
        ));
    }
    deps.objects
        .put(&bucket, &key, text.into_bytes(), "application/json")
        .await?;
    let mut by_action: BTreeMap<String, usize> = BTreeMap::new();
    for a in &plan.actions {
        *by_action.entry(a.action.clone()).or_default() += 1;
    }
    let out = PlanSummary {
        uri: format!("s3://{bucket}/{key}"),
        plan: S3Location { bucket, key },
        digest: plan.digest.clone(),
        actions: plan.actions.len(),
        by_action,
        items: plan.items.len(),
        not_ok: plan.items.iter().filter(|i| i.status != "ok").count(),
    };
    tracing::info!(
        duration_ms = elapsed_ms(started),
        outcome = "ok",
        actions = out.actions,
        items = out.items,
        "plan written"
    );
    Ok(out)
}

/// The approval handler: the task token to the results table, then the request to people.
/// Its answer does not matter: the task waits for `orgop approve` / `orgop reject`.
pub(crate) async fn approval<C: Connector, S: ResultsStore, O: ObjectStore, N: Notifier>(
    req: ApprovalRequest,
    deps: &Deps<C, S, O, N>,
) -> Result<Value, HandlerError> {
    let now = (deps.now)();
    let pending = PendingApproval {
        token: req.token.clone(),
        runbook: req.runbook.clone(),
        plan: req.plan.plan.clone(),
        digest: req.plan.digest.clone(),
        actions: req.plan.actions,
        deadline: (now.max(0.0) as u64).saturating_add(req.timeout_seconds),
    };
    deps.store.put_approval(&req.execution, &pending).await?;
    deps.notifier
        .approval(&ApprovalNotice::new(&req))
        .await
        .map_err(|e| {
            let kind = match e.kind {
                NotifyErrorKind::Throttled => WorkerError::Throttled,
                NotifyErrorKind::Transient => WorkerError::Transient,
            };
            HandlerError::new(kind, e.message)
        })?;
    tracing::info!(outcome = "ok", actions = req.plan.actions, "approval asked");
    Ok(serde_json::json!({"waiting": true, "plan": req.plan.uri}))
}
