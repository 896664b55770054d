//! The apply lock in a DynamoDB table (`--lock-table NAME`, else `ORGOP_LOCK_TABLE`): the
//! operations stack's results table, where the deployed state machine's applying executions
//! take the same lock ([`orgop_lock`]), so appliers on any machine and the deployed form are
//! kept apart.
//!
//! The holder is `<pid>@<host>/<started>`, shown as `pid <pid> on <host> (<command>)`. The
//! lock lives [`orgop_lock::CLI_TTL_SECS`] (or `ORGOP_LOCK_TTL_SECONDS`) and is extended every
//! third of that while the applier runs, so a crashed applier blocks the next one until its
//! lock expires, no longer. Released (a delete conditional on the holder) when the applier
//! ends. `--force-unlock` removes an expired lock; a live one only with
//! `--force-unlock-holder ID` naming its holder id exactly as the refusal printed it.
//! Credentials, region and endpoint as every AWS SDK reads them (`AWS_PROFILE`, `AWS_REGION`,
//! `AWS_ENDPOINT_URL`), `--endpoint-url` first.
use orgop_lock::{DynamoLock, LockError, LockKey};
use std::time::Duration;

/// How the lock is taken when a table is configured.
#[derive(Debug, Clone, Default)]
pub struct TableChoice {
    /// `--lock-table`, else `ORGOP_LOCK_TABLE`.
    pub table: Option<String>,
    /// `--endpoint-url`.
    pub endpoint_url: Option<String>,
    /// `--force-unlock-holder`: the live holder the caller means to remove.
    pub force_unlock_holder: Option<String>,
}

impl TableChoice {
    /// The choice from the flags: `table` or `ORGOP_LOCK_TABLE`.
    pub fn new(
        table: Option<&str>,
        endpoint_url: Option<&str>,
        force_unlock_holder: Option<&str>,
    ) -> TableChoice {
        TableChoice {
            table: table
                .map(str::to_string)
                .or_else(|| std::env::var("ORGOP_LOCK_TABLE").ok())
                .filter(|t| !t.is_empty()),
            endpoint_url: endpoint_url.map(str::to_string),
            force_unlock_holder: force_unlock_holder.map(str::to_string),
        }
    }
}

/// A lock held in the table: extended while held, released when dropped.
pub struct TableLock {
    locks: DynamoLock,
    key: LockKey,
    id: String,
    heartbeat: tokio::task::JoinHandle<()>,
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

async fn client(endpoint_url: Option<&str>) -> orgop_lock::aws_sdk_dynamodb::Client {
    orgop_lock::aws_sdk_dynamodb::Client::new(&crate::sdk_config(None, endpoint_url).await)
}

/// Takes the apply lock of `runbook` in `organization` in `choice`'s table, first removing an
/// expired one (or the named live one) when `force_unlock`. Prints what it did; `Err` is the
/// exit status, the reason printed.
pub async fn take(
    choice: &TableChoice,
    table: &str,
    runbook: &str,
    organization: Option<&str>,
    force_unlock: bool,
) -> Result<TableLock, u8> {
    let fail = |m: String| {
        eprintln!("orgop: {m}");
        Err(crate::EXIT_USAGE)
    };
    let ttl = match orgop_lock::ttl_from_env(orgop_lock::CLI_TTL_SECS) {
        Ok(t) => t,
        Err(e) => return fail(e.to_string()),
    };
    let locks = DynamoLock::new(client(choice.endpoint_url.as_deref()).await, table);
    let key = LockKey::new(runbook, organization);
    if force_unlock {
        match locks
            .force_unlock(&key, now(), choice.force_unlock_holder.as_deref())
            .await
        {
            Ok(Some(h)) => eprintln!(
                "orgop: --force-unlock: removed the apply lock of {key} in DynamoDB table {table} ({}held by {h})",
                if h.expires_at < now() {
                    "expired, "
                } else {
                    "live, "
                }
            ),
            Ok(None) => {
                eprintln!("orgop: --force-unlock: no apply lock of {key} in DynamoDB table {table}")
            }
            Err(e @ LockError::Held { .. }) => {
                let id = match &e {
                    LockError::Held { holder, .. } => holder.id.clone(),
                    _ => String::new(),
                };
                return fail(format!(
                    "--force-unlock: {e}: a live lock is never removed by --force-unlock alone; \
                     stop its holder, then add --force-unlock-holder '{id}' to remove it (or wait \
                     until it expires)"
                ));
            }
            Err(e) => return fail(e.to_string()),
        }
    }
    let command: Vec<String> = std::env::args().collect();
    let (pid, host, started) = (std::process::id(), crate::applylock::host(), now());
    let id = format!("{pid}@{host}/{started}");
    let what = format!("pid {pid} on {host} ({})", command.join(" "));
    match locks.acquire(&key, &id, &what, started, ttl).await {
        Ok(taken) => {
            if let Some(h) = taken.replaced {
                eprintln!(
                    "orgop: took over the expired apply lock of {key} in DynamoDB table {table}, left by {h}"
                );
            }
            let heartbeat = tokio::spawn(heartbeat(locks.clone(), key.clone(), id.clone(), ttl));
            Ok(TableLock {
                locks,
                key,
                id,
                heartbeat,
            })
        }
        Err(e @ LockError::Held { .. }) => fail(format!(
            "another orgop is applying this runbook in this organization: {e} (DynamoDB table {table}): wait for it to end; an expired lock is taken over by itself, see --force-unlock"
        )),
        Err(e) => fail(e.to_string()),
    }
}

/// Extends the lock every third of its lifetime; says so once if it is lost.
async fn heartbeat(locks: DynamoLock, key: LockKey, id: String, ttl: u64) {
    let every = Duration::from_secs((ttl / 3).max(1));
    loop {
        tokio::time::sleep(every).await;
        match locks.extend(&key, &id, now(), ttl).await {
            Ok(_) => {}
            Err(e @ LockError::Lost { .. }) => {
                eprintln!(
                    "orgop: {e}: another applier may now run alongside this one (--force-unlock-holder?)"
                );
                return;
            }
            Err(e) => eprintln!("orgop: extending the apply lock: {e} (tried again later)"),
        }
    }
}

impl TableLock {
    async fn release(&self) {
        match self.locks.release(&self.key, &self.id).await {
            Ok(true) => {}
            Ok(false) => eprintln!(
                "orgop: the apply lock of {} in DynamoDB table {} was no longer this run's: left alone",
                self.key,
                self.locks.table()
            ),
            Err(e) => eprintln!("orgop: releasing the apply lock: {e} (it expires by itself)"),
        }
    }
}

impl Drop for TableLock {
    fn drop(&mut self) {
        self.heartbeat.abort();
        // Dropped inside the command's multi-thread runtime: wait for the delete here.
        match tokio::runtime::Handle::try_current() {
            Ok(handle) if handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
                tokio::task::block_in_place(|| handle.block_on(self.release()))
            }
            _ => eprintln!(
                "orgop: the apply lock of {} was not released: it expires by itself",
                self.key
            ),
        }
    }
}
