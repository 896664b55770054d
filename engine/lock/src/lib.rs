//! One applier at a time per runbook and organization, as one item of the results table
//! (DynamoDB): the deployed state machine's executions and `orgop run --apply` /
//! `orgop apply --lock-table` take the same lock.
//!
//! The item: partition key `execution` = `#lock/<organization>/<runbook>` (results are keyed
//! by execution ARNs, `arn:...`, so a lock never collides with them), sort key `item` =
//! [`LOCK_ITEM`]; attributes `holder` (who: an execution ARN, or `<pid>@<host>/<started>` for
//! the command line), `what` (the holder for people: `execution <ARN>`, or
//! `pid <pid> on <host> (<command>)`), `runbook`, `organization`, `started_at` and
//! `expires_at` (epoch seconds; `expires_at` is also the table's TTL attribute, so DynamoDB
//! deletes a lock left behind, eventually).
//!
//! - taken with a conditional `PutItem`:
//!   `attribute_not_exists(execution) OR expires_at < :now OR holder = :me` (free, expired,
//!   or already ours: a retried fanout takes it again);
//! - refused: [`LockError::Held`] names the holder, since when, and when its lock expires;
//! - extended (heartbeat) with an `UpdateItem` conditional on the holder; if the lock is no
//!   longer ours, [`LockError::Lost`];
//! - released with a `DeleteItem` conditional on the holder (never someone else's);
//! - force-unlocked ([`DynamoLock::force_unlock`]) only when expired, or when the caller names
//!   the live holder it means to remove (and it is still that holder).
//!
//! DynamoDB's TTL deletes expired items only within days, so an expired item still in the
//! table counts as free: the condition compares `expires_at` with the taker's clock.
#![deny(missing_docs)]

pub use aws_sdk_dynamodb;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::{AttributeValue as A, ReturnValue};
use std::collections::HashMap;

/// The sort key (`item`) of every lock item.
pub const LOCK_ITEM: &str = "#lock";
/// How every lock item's partition key (`execution`) starts.
pub const PREFIX: &str = "#lock/";
/// The organization of a lock when the caller's organization cannot be read.
pub const UNKNOWN_ORGANIZATION: &str = "unknown-organization";
/// `orgop run --apply` / `orgop apply`: a lock lives 15 minutes and the applier extends it
/// every third of that while it runs, so a crashed applier blocks the next for 15 minutes at
/// most.
pub const CLI_TTL_SECS: u64 = 900;
/// An execution of the state machine: a lock lives an hour from the fanout, and every worker
/// of the execution extends it to an hour from its start (a Lambda invocation lasts 15
/// minutes at most), so a running execution keeps it and an aborted one frees it within the
/// hour.
pub const EXECUTION_TTL_SECS: u64 = 3600;
/// The environment variable that sets the lifetime instead (seconds).
pub const TTL_ENV: &str = "ORGOP_LOCK_TTL_SECONDS";
/// The longest lifetime [`TTL_ENV`] may set: a week.
pub const MAX_TTL_SECS: u64 = 7 * 86_400;

/// The lock's lifetime from [`TTL_ENV`], else `default`.
pub fn ttl_from_env(default: u64) -> Result<u64, LockError> {
    match std::env::var(TTL_ENV) {
        Err(_) => Ok(default),
        Ok(v) if v.is_empty() => Ok(default),
        Ok(v) => match v.parse::<u64>() {
            Ok(n) if (1..=MAX_TTL_SECS).contains(&n) => Ok(n),
            _ => Err(LockError::Store {
                failure: Failure::Permanent,
                message: format!(
                    "{TTL_ENV}={v} is not valid: the apply lock's lifetime in whole seconds, 1 to {MAX_TTL_SECS}"
                ),
            }),
        },
    }
}

/// What is locked: a runbook in an organization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockKey {
    /// The runbook's name.
    pub runbook: String,
    /// The organization's id (`o-...`), or [`UNKNOWN_ORGANIZATION`].
    pub organization: String,
}

impl LockKey {
    /// The lock of `runbook` in `organization` (`None`: it could not be read).
    pub fn new(runbook: &str, organization: Option<&str>) -> LockKey {
        LockKey {
            runbook: runbook.to_string(),
            organization: organization
                .filter(|o| !o.is_empty())
                .unwrap_or(UNKNOWN_ORGANIZATION)
                .to_string(),
        }
    }

    /// The item's partition key: `#lock/<organization>/<runbook>`.
    pub fn partition(&self) -> String {
        format!("{PREFIX}{}/{}", self.organization, self.runbook)
    }

    /// The key of a partition key made by [`LockKey::partition`].
    pub fn parse(partition: &str) -> Option<LockKey> {
        let (organization, runbook) = partition.strip_prefix(PREFIX)?.split_once('/')?;
        (!organization.is_empty() && !runbook.is_empty()).then(|| LockKey {
            runbook: runbook.to_string(),
            organization: organization.to_string(),
        })
    }
}

impl std::fmt::Display for LockKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "runbook {} in organization {}",
            self.runbook, self.organization
        )
    }
}

/// Who holds (or held) a lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    /// Its id: an execution ARN, or `<pid>@<host>/<started>`.
    pub id: String,
    /// For people: `execution <ARN>`, or `pid <pid> on <host> (<command>)`.
    pub what: String,
    /// When it took the lock, epoch seconds.
    pub started_at: u64,
    /// When the lock expires unless extended, epoch seconds.
    pub expires_at: u64,
}

/// Epoch seconds as `2026-01-02T03:04:05Z`.
pub fn utc(epoch_secs: u64) -> String {
    use aws_sdk_dynamodb::primitives::{DateTime, DateTimeFormat};
    DateTime::from_secs(i64::try_from(epoch_secs).unwrap_or(i64::MAX))
        .fmt(DateTimeFormat::DateTime)
        .unwrap_or_else(|_| format!("{epoch_secs} (epoch seconds)"))
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} since {} (holder id {})",
            self.what,
            utc(self.started_at),
            self.id
        )
    }
}

/// How a failure of the table should be retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// DynamoDB throttled the request.
    Throttled,
    /// Network, timeout, 5xx: worth retrying.
    Transient,
    /// Refused, missing table, misconfigured: retrying will not help.
    Permanent,
}

/// Why a lock operation did not do what was asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LockError {
    /// Someone else holds a live lock.
    Held {
        /// What is locked.
        key: LockKey,
        /// Who holds it.
        holder: Holder,
        /// The refused caller's clock, epoch seconds.
        now: u64,
    },
    /// Extending: the lock is no longer the caller's (it expired and was taken, or was
    /// force-unlocked).
    Lost {
        /// What was locked.
        key: LockKey,
        /// The caller.
        id: String,
        /// Who holds it now, if anyone.
        holder: Option<Box<Holder>>,
    },
    /// The table could not be used.
    Store {
        /// How to retry.
        failure: Failure,
        /// What happened.
        message: String,
    },
}

impl std::fmt::Display for LockError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LockError::Held { key, holder, now } => write!(
                f,
                "{key} is being applied by {holder}; its lock expires at {} ({}) unless its holder extends it",
                utc(holder.expires_at),
                if holder.expires_at >= *now {
                    format!("in {} s", holder.expires_at - now)
                } else {
                    "now".to_string()
                }
            ),
            LockError::Lost { key, id, holder } => match holder {
                Some(h) => write!(
                    f,
                    "the apply lock of {key} is no longer held by {id}: {h} holds it"
                ),
                None => write!(
                    f,
                    "the apply lock of {key} is no longer held by {id}: it was removed"
                ),
            },
            LockError::Store { message, .. } => f.write_str(message),
        }
    }
}

impl std::error::Error for LockError {}

/// How a failed DynamoDB request should be retried: throttling, a transient failure (network,
/// timeout, 5xx) or a permanent one. The results store classifies its errors the same way.
pub fn failure_of<E: ProvideErrorMetadata>(e: &SdkError<E>) -> Failure {
    let code = e.code().unwrap_or_default();
    if code.contains("Throttl")
        || code == "ProvisionedThroughputExceededException"
        || code == "RequestLimitExceeded"
    {
        Failure::Throttled
    } else if matches!(
        e,
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_)
    ) || code == "InternalServerError"
        || code == "ServiceUnavailable"
    {
        Failure::Transient
    } else {
        Failure::Permanent
    }
}

fn store_error<E>(table: &str, what: &str, e: SdkError<E>) -> LockError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let code = e.code().unwrap_or_default().to_string();
    let failure = failure_of(&e);
    let detail = match e.message() {
        Some(m) => format!("{code}: {m}"),
        None => aws_sdk_dynamodb::error::DisplayErrorContext(&e).to_string(),
    };
    LockError::Store {
        failure,
        message: format!("the apply lock in DynamoDB table {table}: dynamodb:{what}: {detail}"),
    }
}

fn conditional_failed<E: ProvideErrorMetadata>(e: &SdkError<E>) -> bool {
    e.code() == Some("ConditionalCheckFailedException")
}

fn holder_of(item: &HashMap<String, A>) -> Option<Holder> {
    let s = |k: &str| match item.get(k) {
        Some(A::S(v)) => Some(v.clone()),
        _ => None,
    };
    let n = |k: &str| match item.get(k) {
        Some(A::N(v)) => v.parse::<u64>().ok(),
        _ => None,
    };
    Some(Holder {
        id: s("holder")?,
        what: s("what").unwrap_or_default(),
        started_at: n("started_at").unwrap_or(0),
        expires_at: n("expires_at").unwrap_or(0),
    })
}

/// A lock that was taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Taken {
    /// The caller, as now recorded.
    pub holder: Holder,
    /// An expired lock of someone else that was taken over (a crashed holder's).
    pub replaced: Option<Holder>,
}

/// The apply locks in a results table.
#[derive(Debug, Clone)]
pub struct DynamoLock {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

/// The longest a taker tries when the lock changes hands under it (taken, then released).
const ATTEMPTS: usize = 3;

impl DynamoLock {
    /// The locks in `table`.
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> DynamoLock {
        DynamoLock {
            client,
            table: table.into(),
        }
    }

    /// The table.
    pub fn table(&self) -> &str {
        &self.table
    }

    /// Takes the lock of `key` for `id` (`what` says who that is) until `now + ttl`: when no
    /// one holds it, its holder's lock expired, or `id` holds it already. Otherwise
    /// [`LockError::Held`].
    pub async fn acquire(
        &self,
        key: &LockKey,
        id: &str,
        what: &str,
        now: u64,
        ttl: u64,
    ) -> Result<Taken, LockError> {
        let expires_at = now.saturating_add(ttl);
        let holder = Holder {
            id: id.to_string(),
            what: what.to_string(),
            started_at: now,
            expires_at,
        };
        for _ in 0..ATTEMPTS {
            let out = self
                .client
                .put_item()
                .table_name(&self.table)
                .item("execution", A::S(key.partition()))
                .item("item", A::S(LOCK_ITEM.into()))
                .item("holder", A::S(id.into()))
                .item("what", A::S(what.into()))
                .item("runbook", A::S(key.runbook.clone()))
                .item("organization", A::S(key.organization.clone()))
                .item("started_at", A::N(now.to_string()))
                .item("expires_at", A::N(expires_at.to_string()))
                .condition_expression("attribute_not_exists(#e) OR #x < :now OR #h = :me")
                .expression_attribute_names("#e", "execution")
                .expression_attribute_names("#x", "expires_at")
                .expression_attribute_names("#h", "holder")
                .expression_attribute_values(":now", A::N(now.to_string()))
                .expression_attribute_values(":me", A::S(id.into()))
                .return_values(ReturnValue::AllOld)
                .send()
                .await;
            match out {
                Ok(out) => {
                    let replaced = out.attributes().and_then(holder_of).filter(|h| h.id != id);
                    return Ok(Taken {
                        holder: holder.clone(),
                        replaced,
                    });
                }
                Err(e) if conditional_failed(&e) => match self.read(key).await? {
                    Some(h) if h.id != id && h.expires_at >= now => {
                        return Err(LockError::Held {
                            key: key.clone(),
                            holder: h,
                            now,
                        });
                    }
                    // Released or expired since: try again.
                    _ => continue,
                },
                Err(e) => return Err(store_error(&self.table, "PutItem", e)),
            }
        }
        Err(LockError::Store {
            failure: Failure::Transient,
            message: format!(
                "the apply lock of {key} in DynamoDB table {} changed hands {ATTEMPTS} times while it was being taken",
                self.table
            ),
        })
    }

    /// Who holds the lock of `key` (expired or not), if its item is in the table.
    pub async fn read(&self, key: &LockKey) -> Result<Option<Holder>, LockError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("execution", A::S(key.partition()))
            .key("item", A::S(LOCK_ITEM.into()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| store_error(&self.table, "GetItem", e))?;
        Ok(out.item().and_then(holder_of))
    }

    /// Extends `id`'s lock of `key` to `now + ttl` (a heartbeat); answers the new expiry.
    /// [`LockError::Lost`] when the lock is no longer `id`'s.
    pub async fn extend(
        &self,
        key: &LockKey,
        id: &str,
        now: u64,
        ttl: u64,
    ) -> Result<u64, LockError> {
        let expires_at = now.saturating_add(ttl);
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("execution", A::S(key.partition()))
            .key("item", A::S(LOCK_ITEM.into()))
            .update_expression("SET #x = :x")
            .condition_expression("#h = :me")
            .expression_attribute_names("#x", "expires_at")
            .expression_attribute_names("#h", "holder")
            .expression_attribute_values(":x", A::N(expires_at.to_string()))
            .expression_attribute_values(":me", A::S(id.into()))
            .send()
            .await;
        match out {
            Ok(_) => Ok(expires_at),
            Err(e) if conditional_failed(&e) => Err(LockError::Lost {
                key: key.clone(),
                id: id.to_string(),
                holder: self.read(key).await?.map(Box::new),
            }),
            Err(e) => Err(store_error(&self.table, "UpdateItem", e)),
        }
    }

    /// Releases `id`'s lock of `key`: true when it was `id`'s and is removed; false when
    /// `id` did not hold it (already released, or someone else's: left alone).
    pub async fn release(&self, key: &LockKey, id: &str) -> Result<bool, LockError> {
        let out = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("execution", A::S(key.partition()))
            .key("item", A::S(LOCK_ITEM.into()))
            .condition_expression("#h = :me")
            .expression_attribute_names("#h", "holder")
            .expression_attribute_values(":me", A::S(id.into()))
            .send()
            .await;
        match out {
            Ok(_) => Ok(true),
            Err(e) if conditional_failed(&e) => Ok(false),
            Err(e) => Err(store_error(&self.table, "DeleteItem", e)),
        }
    }

    /// Removes the lock of `key` when it is expired at `now`, or when `confirm` names its
    /// holder (the caller means to remove that live lock, having stopped its holder); answers
    /// who held it (`None`: there was no lock). A live lock held by anyone else is never
    /// removed: [`LockError::Held`].
    pub async fn force_unlock(
        &self,
        key: &LockKey,
        now: u64,
        confirm: Option<&str>,
    ) -> Result<Option<Holder>, LockError> {
        let Some(h) = self.read(key).await? else {
            return Ok(None);
        };
        let named = confirm == Some(h.id.as_str());
        if h.expires_at >= now && !named {
            return Err(LockError::Held {
                key: key.clone(),
                holder: h,
                now,
            });
        }
        // Only that holder's item, and only if it is still expired (or still the one named).
        let mut req = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("execution", A::S(key.partition()))
            .key("item", A::S(LOCK_ITEM.into()))
            .expression_attribute_names("#h", "holder")
            .expression_attribute_values(":id", A::S(h.id.clone()));
        req = if named {
            req.condition_expression("#h = :id")
        } else {
            req.condition_expression("#h = :id AND #x < :now")
                .expression_attribute_names("#x", "expires_at")
                .expression_attribute_values(":now", A::N(now.to_string()))
        };
        match req.send().await {
            Ok(_) => Ok(Some(h)),
            Err(e) if conditional_failed(&e) => match self.read(key).await? {
                Some(holder) => Err(LockError::Held {
                    key: key.clone(),
                    holder,
                    now,
                }),
                None => Ok(Some(h)),
            },
            Err(e) => Err(store_error(&self.table, "DeleteItem", e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_partition_key_cannot_be_an_execution_and_round_trips() {
        let key = LockKey::new("unused-ebs", Some("o-abc123"));
        assert_eq!(key.partition(), "#lock/o-abc123/unused-ebs");
        assert!(!key.partition().starts_with("arn:"));
        assert_eq!(LockKey::parse(&key.partition()), Some(key));
        assert_eq!(
            LockKey::new("r", None).partition(),
            "#lock/unknown-organization/r"
        );
        assert_eq!(LockKey::parse("arn:aws:states:x"), None);
        assert_eq!(LockKey::parse("#lock/o-1/"), None);
    }

    #[test]
    fn a_refusal_names_the_holder_and_its_expiry() {
        let e = LockError::Held {
            key: LockKey::new("unused-ebs", Some("o-abc123")),
            holder: Holder {
                id: "arn:aws:states:us-east-1:1:execution:m:run-1".into(),
                what: "execution arn:aws:states:us-east-1:1:execution:m:run-1".into(),
                started_at: 1_767_225_600,
                expires_at: 1_767_229_200,
            },
            now: 1_767_226_200,
        };
        assert_eq!(
            e.to_string(),
            "runbook unused-ebs in organization o-abc123 is being applied by execution \
             arn:aws:states:us-east-1:1:execution:m:run-1 since 2026-01-01T00:00:00Z (holder id \
             arn:aws:states:us-east-1:1:execution:m:run-1); its lock expires at \
             2026-01-01T01:00:00Z (in 3000 s) unless its holder extends it"
        );
    }
}
