//! Where results live: a DynamoDB table keyed by execution and item (large results in S3),
//! and S3 objects for items and reports; where a run's summary is announced.
use orgop_exec::{ActionBudget, ItemResult, SharedBudget};
use orgop_plan::contract::ResultsSummary;
use std::future::Future;
use std::sync::Arc;

/// How a store failure should be retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreErrorKind {
    /// Throttled: worth retrying later.
    Throttled,
    /// Worth retrying (5xx, network).
    Transient,
    /// Retrying will not help (refused, invalid, misconfigured).
    Permanent,
}

/// A store failure, classified for retrying.
#[derive(Debug, Clone)]
pub struct StoreError {
    /// How to retry it.
    pub kind: StoreErrorKind,
    /// What happened.
    pub message: String,
    /// The underlying error, where there is one.
    pub source: Option<Arc<dyn std::error::Error + Send + Sync>>,
}

impl StoreError {
    /// A failure of `kind` without an underlying error.
    pub fn new(kind: StoreErrorKind, message: impl Into<String>) -> StoreError {
        StoreError {
            kind,
            message: message.into(),
            source: None,
        }
    }

    /// A permanent failure (not worth retrying).
    pub fn permanent(message: impl Into<String>) -> StoreError {
        StoreError::new(StoreErrorKind::Permanent, message)
    }

    /// The same failure, caused by `source`.
    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(Arc::new(source));
        self
    }
}

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for StoreError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

/// Objects in S3 (through the model-driven client in the binary).
pub trait ObjectStore: Send + Sync {
    /// Writes an object.
    fn put(
        &self,
        bucket: &str,
        key: &str,
        body: Vec<u8>,
        content_type: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Reads an object.
    fn get(
        &self,
        bucket: &str,
        key: &str,
    ) -> impl Future<Output = Result<Vec<u8>, StoreError>> + Send;
}

/// The full result of every item, by execution.
pub trait ResultsStore: Send + Sync {
    /// Stores one item's result (replacing an earlier one for the same item: retries are safe).
    fn put(
        &self,
        execution: &str,
        result: &ItemResult,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Hands every result of an execution to `on`, one at a time (never all in memory).
    fn each(
        &self,
        execution: &str,
        on: &mut (dyn FnMut(ItemResult) + Send),
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The execution's `safety.max_actions_per_run`, shared by all its workers. The default
    /// counts in this process only.
    fn run_budget(&self, _execution: &str, max: u32) -> ActionBudget {
        ActionBudget::new(Some(max))
    }

    /// The apply locks this store keeps, with the lifetime of an execution's lock in seconds
    /// (`crate::applylock`). The default keeps none: nothing is locked.
    fn apply_lock(&self) -> Option<(&orgop_lock::DynamoLock, u64)> {
        None
    }

    /// Stores the execution's pending approval (its task token) for `orgop approve` and
    /// `orgop reject`, replacing an earlier one (a retried approval task has a new token).
    /// The default keeps none: an approval cannot be asked for.
    fn put_approval(
        &self,
        _execution: &str,
        _pending: &PendingApproval,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        async {
            Err(StoreError::permanent(
                "this results store keeps no approvals: the approval task needs the DynamoDB results table",
            ))
        }
    }
}

/// An approval the state machine waits for: what `orgop approve` needs to answer it.
#[derive(Debug, Clone, PartialEq)]
pub struct PendingApproval {
    /// The task token (`$$.Task.Token`): never logged or shown.
    pub token: String,
    /// Runbook name.
    pub runbook: String,
    /// The plan file.
    pub plan: orgop_plan::contract::S3Location,
    /// Its digest.
    pub digest: String,
    /// Planned actions.
    pub actions: usize,
    /// Epoch seconds after which the task no longer waits.
    pub deadline: u64,
}

/// An approval asked of people: the plan's summary, where the plan file is, and the commands
/// that answer it.
#[derive(Debug, Clone, PartialEq)]
pub struct ApprovalNotice {
    /// One line: `orgop <runbook>: approve <n> actions? (<execution name>)`.
    pub subject: String,
    /// The message: counts by action, the plan file, the commands.
    pub text: String,
}

impl ApprovalNotice {
    /// The notice for `req`.
    pub fn new(req: &orgop_plan::contract::ApprovalRequest) -> ApprovalNotice {
        let plan = &req.plan;
        let by_action: Vec<String> = plan
            .by_action
            .iter()
            .map(|(a, n)| format!("  {a}: {n}"))
            .collect();
        let hours = req.timeout_seconds as f64 / 3600.0;
        ApprovalNotice {
            subject: format!(
                "orgop {}: approve {} actions? ({})",
                req.runbook,
                plan.actions,
                execution_name(&req.execution)
            ),
            text: format!(
                "orgop runbook {} planned {} actions in {} account x region items ({} not ok, their actions are not in the plan):\n{}\n\nplan {} (digest {})\nexecution {}\n\nreview: orgop plan show (after downloading the plan)\napprove: orgop approve {}\nreject:  orgop reject {} --reason TEXT\nwithout an answer within {hours} h the run ends OrgOp.ApprovalTimedOut with nothing applied.",
                req.runbook,
                plan.actions,
                plan.items,
                plan.not_ok,
                by_action.join("\n"),
                plan.uri,
                plan.digest,
                req.execution,
                req.execution,
                req.execution
            ),
        }
    }
}

/// A finished run, as announced to people (SNS, Slack).
#[derive(Debug, Clone, PartialEq)]
pub struct RunNotice {
    /// One line: `orgop <runbook>: <items> items, <failed> failed, <findings> findings`.
    pub subject: String,
    /// The result handler's summary (counts and where the reports are).
    pub summary: ResultsSummary,
}

impl RunNotice {
    /// The notice for `runbook`'s run that ended with `summary`.
    pub fn new(runbook: &str, summary: ResultsSummary) -> RunNotice {
        RunNotice {
            subject: format!(
                "orgop {runbook}: {} items, {} failed, {} findings",
                summary.items, summary.failed, summary.findings
            ),
            summary,
        }
    }

    /// The subject with where the findings are: a chat message.
    pub fn text(&self) -> String {
        match &self.summary.findings_uri {
            Some(uri) => format!("{} ({uri})", self.subject),
            None => self.subject.clone(),
        }
    }
}

/// How a notification failure should be retried (the results handler fails with
/// [`orgop_plan::WorkerError::Throttled`] or [`orgop_plan::WorkerError::Transient`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotifyErrorKind {
    /// The channel throttled the notification.
    Throttled,
    /// Any other failure to deliver.
    Transient,
}

/// A notification that was not delivered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotifyError {
    /// How to retry it.
    pub kind: NotifyErrorKind,
    /// What happened (never the webhook URL: it is a secret).
    pub message: String,
}

impl std::fmt::Display for NotifyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for NotifyError {}

/// Where a run's summary is announced, and approvals are asked for.
pub trait Notifier: Send + Sync {
    /// Delivers `notice`.
    fn notify(&self, notice: &RunNotice) -> impl Future<Output = Result<(), NotifyError>> + Send;
    /// Asks for an approval.
    fn approval(
        &self,
        notice: &ApprovalNotice,
    ) -> impl Future<Output = Result<(), NotifyError>> + Send;
}

/// No notifier configured: nothing to do.
impl<N: Notifier> Notifier for Option<N> {
    async fn notify(&self, notice: &RunNotice) -> Result<(), NotifyError> {
        match self {
            Some(n) => n.notify(notice).await,
            None => Ok(()),
        }
    }

    async fn approval(&self, notice: &ApprovalNotice) -> Result<(), NotifyError> {
        match self {
            Some(n) => n.approval(notice).await,
            None => Ok(()),
        }
    }
}

/// The run-wide action cap as a counter item (`item` = `#budget`) in the results table,
/// taken with a conditional `UpdateItem`: workers in any invocation share it.
pub struct DynamoBudget {
    client: aws_sdk_dynamodb::Client,
    table: String,
    execution: String,
    max: u32,
}

impl SharedBudget for DynamoBudget {
    fn take(&self) -> std::pin::Pin<Box<dyn Future<Output = bool> + Send + '_>> {
        use aws_sdk_dynamodb::types::AttributeValue as A;
        Box::pin(async move {
            self.client
                .update_item()
                .table_name(&self.table)
                .key("execution", A::S(self.execution.clone()))
                .key("item", A::S("#budget".into()))
                .update_expression("ADD taken :one")
                .condition_expression("attribute_not_exists(taken) OR taken < :max")
                .expression_attribute_values(":one", A::N("1".into()))
                .expression_attribute_values(":max", A::N(self.max.to_string()))
                .send()
                .await
                // A refused condition means the cap is reached; any other failure also sends
                // nothing: an action never goes out without its unit.
                .is_ok()
        })
    }
}

/// Results larger than this go to S3, with a pointer in DynamoDB (its item limit is 400 KB).
pub const INLINE_LIMIT: usize = 300 * 1024;

/// The DynamoDB results table: partition key `execution` (S), sort key `item` (S,
/// `<account>#<region>`), the result as JSON in `result` or, when large, its S3 key in
/// `result_s3`; with a retention, each item's `expires_at` (epoch seconds) for the table's TTL.
/// The same table holds the run-wide action counters (`item` = `#budget`) and the apply
/// locks ([`orgop_lock`]: partition `#lock/<organization>/<runbook>`, `item` = `#lock`).
pub struct DynamoStore<O> {
    client: aws_sdk_dynamodb::Client,
    table: String,
    objects: O,
    bucket: Option<String>,
    retention_days: Option<u32>,
    locks: orgop_lock::DynamoLock,
    lock_ttl: u64,
}

impl<O: ObjectStore> DynamoStore<O> {
    /// A store on `table`; large results go to `bucket` through `objects`.
    pub fn new(
        client: aws_sdk_dynamodb::Client,
        table: impl Into<String>,
        objects: O,
        bucket: Option<String>,
    ) -> Self {
        let table = table.into();
        DynamoStore {
            locks: orgop_lock::DynamoLock::new(client.clone(), table.clone()),
            client,
            table,
            objects,
            bucket,
            retention_days: None,
            lock_ttl: orgop_lock::EXECUTION_TTL_SECS,
        }
    }

    /// An execution's apply lock lives `secs` from its fanout and from each worker's start
    /// (default [`orgop_lock::EXECUTION_TTL_SECS`]).
    pub fn with_lock_ttl(mut self, secs: u64) -> Self {
        self.lock_ttl = secs;
        self
    }

    /// Items expire `days` after they are written (the table's TTL attribute `expires_at`).
    pub fn with_retention_days(mut self, days: Option<u32>) -> Self {
        self.retention_days = days;
        self
    }
}

/// `expires_at` for an item written now and kept `days`.
pub fn expires_at(now_epoch_secs: u64, days: u32) -> u64 {
    now_epoch_secs.saturating_add(u64::from(days) * 86_400)
}

fn sdk_error<E>(e: aws_sdk_dynamodb::error::SdkError<E>) -> StoreError
where
    E: std::error::Error + aws_sdk_dynamodb::error::ProvideErrorMetadata + Send + Sync + 'static,
{
    use aws_sdk_dynamodb::error::ProvideErrorMetadata;
    let code = e.code().unwrap_or_default().to_string();
    let kind = match orgop_lock::failure_of(&e) {
        orgop_lock::Failure::Throttled => StoreErrorKind::Throttled,
        orgop_lock::Failure::Transient => StoreErrorKind::Transient,
        orgop_lock::Failure::Permanent => StoreErrorKind::Permanent,
    };
    let message = format!("DynamoDB: {} {}", code, e.message().unwrap_or_default());
    StoreError::new(kind, message).with_source(e)
}

impl<O: ObjectStore> ResultsStore for DynamoStore<O> {
    async fn put(&self, execution: &str, result: &ItemResult) -> Result<(), StoreError> {
        use aws_sdk_dynamodb::types::AttributeValue as A;
        let json = serde_json::to_string(result)
            .map_err(|e| StoreError::permanent(e.to_string()).with_source(e))?;
        let item = format!("{}#{}", result.account_id, result.region);
        let mut req = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("execution", A::S(execution.into()))
            .item("item", A::S(item.clone()))
            .item("status", A::S(result.status.as_str().into()));
        if let Some(days) = self.retention_days {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            req = req.item("expires_at", A::N(expires_at(now, days).to_string()));
        }
        if json.len() > INLINE_LIMIT {
            let bucket = self.bucket.as_deref().ok_or_else(|| {
                StoreError::permanent(format!(
                    "the result of {item} is {} bytes and no results bucket is configured",
                    json.len()
                ))
            })?;
            let key = format!(
                "orgop/results/{}/{}.json",
                execution_name(execution),
                item.replace('#', "-")
            );
            self.objects
                .put(bucket, &key, json.into_bytes(), "application/json")
                .await?;
            req = req.item("result_s3", A::S(format!("{bucket}/{key}")));
        } else {
            req = req.item("result", A::S(json));
        }
        req.send().await.map(|_| ()).map_err(sdk_error)
    }

    fn apply_lock(&self) -> Option<(&orgop_lock::DynamoLock, u64)> {
        Some((&self.locks, self.lock_ttl))
    }

    async fn put_approval(
        &self,
        execution: &str,
        pending: &PendingApproval,
    ) -> Result<(), StoreError> {
        use aws_sdk_dynamodb::types::AttributeValue as A;
        use orgop_plan::contract::approval_item as f;
        let mut req = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("execution", A::S(execution.into()))
            .item("item", A::S(f::ITEM.into()))
            .item(f::TOKEN, A::S(pending.token.clone()))
            .item(f::STATE, A::S(f::PENDING.into()))
            .item(f::RUNBOOK, A::S(pending.runbook.clone()))
            .item(f::PLAN_BUCKET, A::S(pending.plan.bucket.clone()))
            .item(f::PLAN_KEY, A::S(pending.plan.key.clone()))
            .item(f::DIGEST, A::S(pending.digest.clone()))
            .item(f::ACTIONS, A::N(pending.actions.to_string()))
            .item(f::DEADLINE, A::N(pending.deadline.to_string()));
        if let Some(days) = self.retention_days {
            req = req.item(
                "expires_at",
                A::N(expires_at(pending.deadline, days).to_string()),
            );
        }
        req.send().await.map(|_| ()).map_err(sdk_error)
    }

    fn run_budget(&self, execution: &str, max: u32) -> ActionBudget {
        ActionBudget::Shared(Box::new(DynamoBudget {
            client: self.client.clone(),
            table: self.table.clone(),
            execution: execution.to_string(),
            max,
        }))
    }

    async fn each(
        &self,
        execution: &str,
        on: &mut (dyn FnMut(ItemResult) + Send),
    ) -> Result<(), StoreError> {
        use aws_sdk_dynamodb::types::AttributeValue as A;
        let mut start = None;
        loop {
            let resp = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("#e = :e")
                .expression_attribute_names("#e", "execution")
                .expression_attribute_values(":e", A::S(execution.into()))
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(sdk_error)?;
            for item in resp.items() {
                let text = match (item.get("result"), item.get("result_s3")) {
                    (Some(A::S(json)), _) => json.clone(),
                    (_, Some(A::S(location))) => {
                        let (bucket, key) = location.split_once('/').unwrap_or((location, ""));
                        String::from_utf8_lossy(&self.objects.get(bucket, key).await?).into_owned()
                    }
                    _ => continue,
                };
                on(serde_json::from_str(&text).map_err(|e| {
                    StoreError::permanent(format!("a stored result is not valid: {e}"))
                        .with_source(e)
                })?);
            }
            match resp.last_evaluated_key() {
                Some(k) if !k.is_empty() => start = Some(k.clone()),
                _ => break,
            }
        }
        Ok(())
    }
}

/// The name part of an execution ARN (`arn:aws:states:...:execution:<machine>:<name>`).
pub fn execution_name(execution: &str) -> &str {
    execution.rsplit(':').next().unwrap_or(execution)
}
