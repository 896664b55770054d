//! The apply lock of an execution ([`orgop_lock`], an item of the results table): the fanout
//! of an applying execution takes it (never a dry run's), each of its workers extends it, its
//! results handler releases it, whether items failed or not.
//!
//! The holder is the execution's ARN. A refused fanout fails with `OrgOp.LockHeld` naming the
//! holder and when its lock expires; the state machine ends there (`LockHeld`), no worker
//! runs. The lock is the fanout's last step, so no fanout failure leaves it held. An
//! execution that never reaches its results handler (stopped, timed out, its Map failing)
//! leaves the lock until it expires: [`orgop_lock::EXECUTION_TTL_SECS`] after the last worker
//! started, or `ORGOP_LOCK_TTL_SECONDS`. A worker that finds the lock no longer its
//! execution's (expired and taken by another applier) sends nothing and records its item as
//! `error` (`OrgOp.LockHeld`).
use crate::handlers::{Deps, HandlerError};
use crate::store::{Notifier, ObjectStore, ResultsStore};
use orgop_exec::{AwsApi, Call, ErrorKind, ItemError, ItemResult, Status};
use orgop_lock::{Failure, LockError, LockKey};
use orgop_plan::WorkerError;
use orgop_plan::contract::{Item, RunContext};
use orgop_runner::Connector;
use orgop_vocab::Code;

fn handler_error(e: LockError) -> HandlerError {
    let kind = match &e {
        LockError::Held { .. } | LockError::Lost { .. } => WorkerError::LockHeld,
        LockError::Store { failure, .. } => match failure {
            Failure::Throttled => WorkerError::Throttled,
            Failure::Transient => WorkerError::Transient,
            Failure::Permanent => WorkerError::ResultsStore,
        },
    };
    HandlerError::new(kind, e.to_string())
}

fn now<C, S, O, N>(deps: &Deps<C, S, O, N>) -> u64 {
    let secs = (deps.now)();
    if secs.is_finite() && secs > 0.0 {
        secs as u64
    } else {
        0
    }
}

/// The organization's id (`organizations:DescribeOrganization` with the organization
/// session), `None` when it cannot be read (the lock is then the runbook's in
/// `unknown-organization`, as for the command line); throttling and network failures are
/// raised to be retried.
async fn organization_id(org: &impl AwsApi) -> Result<Option<String>, HandlerError> {
    let params = serde_json::json!({});
    let pages = org
        .call(Call {
            service: "organizations",
            operation: "DescribeOrganization",
            params: &params,
            paginate: false,
        })
        .await;
    match pages {
        Ok(pages) => Ok(pages
            .first()
            .and_then(|p| p.pointer("/Organization/Id"))
            .and_then(|v| v.as_str())
            .map(str::to_string)),
        Err(e) if e.kind == ErrorKind::Throttled => Err(HandlerError::new(
            WorkerError::Throttled,
            format!("organizations:DescribeOrganization, for the apply lock: {e}"),
        )),
        Err(e) if e.kind == ErrorKind::Transport => Err(HandlerError::new(
            WorkerError::Transient,
            format!("organizations:DescribeOrganization, for the apply lock: {e}"),
        )),
        Err(e) => {
            tracing::warn!(
                error_code = e.code.as_str(),
                "the organization cannot be read: the apply lock is taken in unknown-organization"
            );
            Ok(None)
        }
    }
}

/// Takes the apply lock of `runbook` for `execution` when the store keeps locks; answers the
/// lock's partition key for [`RunContext::lock`]. Refused: `OrgOp.LockHeld`.
pub(crate) async fn take<C: Connector, S: ResultsStore, O: ObjectStore, N: Notifier>(
    deps: &Deps<C, S, O, N>,
    org: &C::Api,
    runbook: &str,
    execution: &str,
) -> Result<Option<String>, HandlerError> {
    let Some((locks, ttl)) = deps.store.apply_lock() else {
        return Ok(None);
    };
    let organization = organization_id(org).await?;
    let key = LockKey::new(runbook, organization.as_deref());
    let taken = locks
        .acquire(
            &key,
            execution,
            &format!("execution {execution}"),
            now(deps),
            ttl,
        )
        .await
        .map_err(handler_error)?;
    if let Some(h) = &taken.replaced {
        tracing::warn!(
            lock = key.partition().as_str(),
            replaced = h.id.as_str(),
            "took over an expired apply lock"
        );
    }
    tracing::info!(
        lock = key.partition().as_str(),
        expires_at = taken.holder.expires_at,
        "apply lock taken"
    );
    Ok(Some(key.partition()))
}

/// A worker of an applying execution extends its lock; `Some(result)` when the lock is no
/// longer the execution's: the item's record, nothing sent.
pub(crate) async fn extend<C: Connector, S: ResultsStore, O: ObjectStore, N: Notifier>(
    deps: &Deps<C, S, O, N>,
    run: &RunContext,
    item: &Item,
) -> Result<Option<ItemResult>, HandlerError> {
    let (Some(partition), true, Some((locks, ttl))) =
        (&run.lock, run.apply, deps.store.apply_lock())
    else {
        return Ok(None);
    };
    let key = LockKey::parse(partition).ok_or_else(|| {
        HandlerError::new(
            WorkerError::InvalidInput,
            format!("run.lock `{partition}` is not an apply lock's key"),
        )
    })?;
    // Taken again rather than only extended: a run that waited for approval longer than the
    // lock's lifetime gets it back if nobody took it meanwhile, and sends nothing if someone
    // did (the same holder retaking its own lock is a plain extension).
    let holder = format!("execution {}", run.execution);
    match locks
        .acquire(&key, &run.execution, &holder, now(deps), ttl)
        .await
    {
        Ok(_) => Ok(None),
        Err(e @ (LockError::Lost { .. } | LockError::Held { .. })) => Ok(Some(ItemResult::failed(
            item.clone(),
            Status::Error,
            ItemError::new(
                Code::LockHeld,
                format!("{e}: this item was not run, no action was sent"),
            ),
        ))),
        Err(e) => Err(handler_error(e)),
    }
}

/// The results handler releases the execution's lock (only its own: a lock that expired and
/// was taken by another applier is left alone).
pub(crate) async fn release<C: Connector, S: ResultsStore, O: ObjectStore, N: Notifier>(
    deps: &Deps<C, S, O, N>,
    run: &RunContext,
) -> Result<(), HandlerError> {
    let (Some(partition), Some((locks, _))) = (&run.lock, deps.store.apply_lock()) else {
        return Ok(());
    };
    let Some(key) = LockKey::parse(partition) else {
        return Err(HandlerError::new(
            WorkerError::InvalidInput,
            format!("run.lock `{partition}` is not an apply lock's key"),
        ));
    };
    let released = locks
        .release(&key, &run.execution)
        .await
        .map_err(handler_error)?;
    tracing::info!(
        lock = partition.as_str(),
        released,
        "apply lock {}",
        if released {
            "released"
        } else {
            "not held by this execution any more"
        }
    );
    Ok(())
}
