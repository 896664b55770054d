//! Targets -> items, through Organizations calls made with the same [`AwsApi`] as everything
//! else (no code per operation).
use orgop_exec::{ApiError, AwsApi, Call, ItemError, ItemResult, Status};
use orgop_plan::TargetsPlan;
use orgop_plan::contract::Item;
use orgop_vocab::Code;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};

/// Run-time narrowing of the runbook's targets (`--regions`, `--accounts`, ...).
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// Replace the regions.
    pub regions: Option<Vec<String>>,
    /// Only these accounts.
    pub accounts: Option<Vec<String>>,
    /// Also exclude these.
    pub exclude_accounts: Vec<String>,
    /// Replace the OUs.
    pub organizational_units: Option<Vec<String>>,
}

/// Why the fanout could not list the organization at all.
#[derive(Debug, Clone, PartialEq)]
pub struct FanoutError {
    /// Which call failed.
    pub call: String,
    /// The error.
    pub error: ApiError,
}

impl std::fmt::Display for FanoutError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} failed: {}", self.call, self.error)
    }
}

/// The one item of a runbook that runs in the operations account (`targets.scope:
/// operations`): the caller's own account (`sts:GetCallerIdentity`), named as Organizations
/// names it when the caller may ask (else unnamed), in the runbook's one region.
async fn operations_item<A: AwsApi>(org: &A, targets: &TargetsPlan) -> Result<Item, FanoutError> {
    let one = |operation: &'static str, params: Value| async move {
        org.call(Call {
            service: if operation == "GetCallerIdentity" {
                "sts"
            } else {
                "organizations"
            },
            operation,
            params: &params,
            paginate: false,
        })
        .await
        .map(|pages| pages.into_iter().next().unwrap_or(Value::Null))
    };
    let who = one("GetCallerIdentity", json!({}))
        .await
        .map_err(|error| FanoutError {
            call: "sts:GetCallerIdentity".into(),
            error,
        })?;
    let account_id = who
        .get("Account")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let account_name = one("DescribeAccount", json!({"AccountId": account_id}))
        .await
        .ok()
        .and_then(|v| {
            v.pointer("/Account/Name")
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .unwrap_or_default();
    Ok(Item {
        account_id,
        account_name,
        region: targets
            .regions
            .first()
            .cloned()
            .unwrap_or_else(|| orgop_plan::contract::GLOBAL_REGION.to_string()),
    })
}

async fn all<A: AwsApi>(
    api: &A,
    service: &str,
    operation: &str,
    params: Value,
    key: &str,
) -> Result<Vec<Value>, FanoutError> {
    let pages = api
        .call(Call {
            service,
            operation,
            params: &params,
            paginate: true,
        })
        .await
        .map_err(|error| FanoutError {
            call: format!("{service}:{operation}"),
            error,
        })?;
    Ok(pages
        .into_iter()
        .flat_map(|p| {
            p.get(key)
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default()
        })
        .collect())
}

/// (id, name, status) of an Organizations account entry; status `ACTIVE` when the entry says
/// none.
fn account(v: &Value) -> Option<(String, String, String)> {
    let id = v.get("Id")?.as_str()?.to_string();
    let name = v
        .get("Name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    // `State` replaces `Status` in newer Organizations responses.
    let status = v
        .get("State")
        .or_else(|| v.get("Status"))
        .and_then(Value::as_str)
        .unwrap_or("ACTIVE")
        .to_string();
    Some((id, name, status))
}

/// The accounts x regions to run. `org` is a session in the organization's management (or
/// delegated administrator) account; `enabled_regions` answers the regions enabled in one
/// account (used only when the runbook targets `regions: enabled`). The second value lists
/// items that failed before they could run (an account whose regions cannot be listed, an
/// included account that is not in the organization).
pub async fn fanout<A, F, Fut>(
    org: &A,
    targets: &TargetsPlan,
    overrides: &Overrides,
    enabled_regions: F,
) -> Result<(Vec<Item>, Vec<ItemResult>), FanoutError>
where
    A: AwsApi,
    F: Fn(String) -> Fut,
    Fut: std::future::Future<Output = Result<Vec<String>, ApiError>>,
{
    if targets.operations {
        return Ok((vec![operations_item(org, targets).await?], Vec::new()));
    }
    let ous = overrides
        .organizational_units
        .clone()
        .unwrap_or_else(|| targets.organizational_units.clone());
    let mut found: BTreeMap<String, (String, String)> = BTreeMap::new();
    if ous.is_empty() {
        for a in all(org, "organizations", "ListAccounts", json!({}), "Accounts").await? {
            if let Some((id, name, status)) = account(&a) {
                found.insert(id, (name, status));
            }
        }
    } else {
        let mut queue: Vec<String> = ous;
        let mut seen = BTreeSet::new();
        while let Some(parent) = queue.pop() {
            if !seen.insert(parent.clone()) {
                continue;
            }
            for a in all(
                org,
                "organizations",
                "ListAccountsForParent",
                json!({"ParentId": parent}),
                "Accounts",
            )
            .await?
            {
                if let Some((id, name, status)) = account(&a) {
                    found.insert(id, (name, status));
                }
            }
            for ou in all(
                org,
                "organizations",
                "ListOrganizationalUnitsForParent",
                json!({"ParentId": parent}),
                "OrganizationalUnits",
            )
            .await?
            {
                if let Some(id) = ou.get("Id").and_then(Value::as_str) {
                    queue.push(id.to_string());
                }
            }
        }
    }

    let include: Option<BTreeSet<String>> = match (&overrides.accounts, targets.accounts.is_empty())
    {
        (Some(a), _) => Some(a.iter().cloned().collect()),
        (None, false) => Some(targets.accounts.iter().cloned().collect()),
        (None, true) => None,
    };
    let exclude: BTreeSet<&String> = targets
        .exclude_accounts
        .iter()
        .chain(overrides.exclude_accounts.iter())
        .collect();
    // A runbook of global services runs once per account, whatever regions are asked for.
    let regions = match &overrides.regions {
        _ if targets.global => vec![orgop_plan::contract::GLOBAL_REGION.to_string()],
        Some(r) => r.clone(),
        None => targets.regions.clone(),
    };
    let use_enabled = !targets.global && overrides.regions.is_none() && targets.enabled_regions;

    let mut failed = Vec::new();
    if let Some(inc) = &include {
        for id in inc
            .iter()
            .filter(|id| !found.contains_key(*id) && !exclude.contains(id))
        {
            failed.push(ItemResult::failed(
                account_item(id, ""),
                Status::Error,
                ItemError::new(
                    Code::AccountNotFound,
                    "the account is not in the targeted organization or OUs",
                ),
            ));
        }
    }

    let mut items = Vec::new();
    for (id, (name, status)) in &found {
        if exclude.contains(id) || include.as_ref().is_some_and(|inc| !inc.contains(id)) {
            continue;
        }
        // A targeted account that is not ACTIVE (SUSPENDED, PENDING_CLOSURE) is not run, and
        // says so in the results: one `skipped` item per region (`*` when its regions would
        // have been listed from inside it).
        if status != "ACTIVE" {
            let why = format!("the account is {status} in Organizations: not run");
            let skipped_regions = if use_enabled {
                vec!["*".to_string()]
            } else {
                regions.clone()
            };
            for r in skipped_regions {
                failed.push(ItemResult::failed(
                    Item {
                        account_id: id.clone(),
                        account_name: name.clone(),
                        region: r,
                    },
                    Status::Skipped,
                    ItemError::new(Code::AccountNotActive, why.clone()),
                ));
            }
            continue;
        }
        if !targets.account_tags.is_empty() {
            let tags = match all(
                org,
                "organizations",
                "ListTagsForResource",
                json!({"ResourceId": id}),
                "Tags",
            )
            .await
            {
                Ok(t) => t,
                Err(e) => {
                    failed.push(ItemResult::failed(
                        account_item(id, name),
                        Status::Error,
                        ItemError::new(
                            &e.error.code,
                            format!("listing the account's tags: {}", e.error.message),
                        ),
                    ));
                    continue;
                }
            };
            let matches = targets.account_tags.iter().all(|(k, values)| {
                tags.iter().any(|t| {
                    t.get("Key").and_then(Value::as_str) == Some(k)
                        && t.get("Value")
                            .and_then(Value::as_str)
                            .is_some_and(|v| values.iter().any(|x| x == v))
                })
            });
            if !matches {
                continue;
            }
        }
        let account_regions = if use_enabled {
            match enabled_regions(id.clone()).await {
                Ok(r) => r,
                Err(e) => {
                    let status = if e.kind == orgop_exec::ErrorKind::Denied {
                        Status::Denied
                    } else {
                        Status::Error
                    };
                    failed.push(ItemResult::failed(
                        account_item(id, name),
                        status,
                        ItemError::new(
                            &e.code,
                            format!("listing the account's enabled regions: {}", e.message),
                        ),
                    ));
                    continue;
                }
            }
        } else {
            regions.clone()
        };
        for r in account_regions {
            items.push(Item {
                account_id: id.clone(),
                account_name: name.clone(),
                region: r,
            });
        }
    }
    items.sort();
    items.dedup();
    Ok((items, failed))
}

/// The item that stands for a whole account (region `*`) when it fails before its regions are
/// known.
fn account_item(id: &str, name: &str) -> Item {
    Item {
        account_id: id.into(),
        account_name: name.into(),
        region: "*".into(),
    }
}
