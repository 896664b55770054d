//! The interpreter proper.
use crate::api::{ApiError, AwsApi, Call, ErrorKind};
use crate::expr::{Expr, ExprContext, truthy};
use crate::result::{ActionOutcome, ActionRecord, Finding, ItemError, ItemResult, Status};
use crate::template::{render_value, truthy_condition};
use orgop_plan::{CallPlan, PLAN_FORMAT, Plan};
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU32, Ordering};
use std::time::Instant;

pub use orgop_plan::contract::Item;

/// Facts of the run every item shares.
#[derive(Debug, Clone)]
pub struct RunFacts {
    /// Execution id or local run id.
    pub execution: String,
    /// Parameters after defaults and overrides.
    pub params: Map<String, Value>,
    /// Send actions.
    pub apply: bool,
    /// "Now", epoch seconds, fixed for the run.
    pub now: f64,
}

/// A run-wide counter kept outside this process (the Lambda's results table), so workers in
/// different invocations share one `safety.max_actions_per_run`.
pub trait SharedBudget: Send + Sync {
    /// Takes one unit; `false` when the run's cap is reached (or the counter cannot be
    /// reached: an action is never sent without its unit).
    fn take(&self) -> std::pin::Pin<Box<dyn std::future::Future<Output = bool> + Send + '_>>;
}

/// The run-wide action cap (`safety.max_actions_per_run`), shared by every item.
pub enum ActionBudget {
    /// No cap.
    Unlimited,
    /// A cap counted in this process (`orgop run`).
    Local(AtomicI64),
    /// A cap counted elsewhere (the Lambda workers of one execution).
    Shared(Box<dyn SharedBudget>),
}

impl std::fmt::Debug for ActionBudget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ActionBudget::Unlimited => f.write_str("Unlimited"),
            ActionBudget::Local(n) => write!(f, "Local({n:?})"),
            ActionBudget::Shared(_) => f.write_str("Shared"),
        }
    }
}

impl ActionBudget {
    /// A budget of `max` resources counted in this process, or unlimited.
    pub fn new(max: Option<u32>) -> ActionBudget {
        match max {
            Some(m) => ActionBudget::Local(AtomicI64::new(i64::from(m))),
            None => ActionBudget::Unlimited,
        }
    }

    async fn take(&self) -> bool {
        match self {
            ActionBudget::Unlimited => true,
            ActionBudget::Local(left) => left.fetch_sub(1, Ordering::SeqCst) > 0,
            ActionBudget::Shared(b) => b.take().await,
        }
    }
}

/// Counts calls made through it.
struct Counted<'a, A> {
    api: &'a A,
    calls: AtomicU32,
}

impl<A: AwsApi> Counted<'_, A> {
    async fn call(&self, call: Call<'_>) -> Result<Vec<Value>, ApiError> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        self.api.call(call).await
    }
}

/// Verbs whose NotFound answer means the work is already done.
const REMOVING_VERBS: [&str; 8] = [
    "Delete",
    "Terminate",
    "Remove",
    "Deregister",
    "Disassociate",
    "Detach",
    "Revoke",
    "Release",
];

fn removes(op: &str) -> bool {
    REMOVING_VERBS.iter().any(|v| op.starts_with(v))
}

struct Scope<'a> {
    ctx: Arc<ExprContext>,
    item: &'a Item,
    run: &'a RunFacts,
    shared: &'a Map<String, Value>,
}

impl Scope<'_> {
    fn template_ctx(
        &self,
        steps: &BTreeMap<String, Vec<Value>>,
        element: Option<&Value>,
    ) -> minijinja::Value {
        let mut v = json!({
            "params": self.run.params,
            "shared": self.shared,
            "account": {"id": self.item.account_id, "name": self.item.account_name},
            "region": self.item.region,
            "steps": steps,
            "run": {"execution": self.run.execution, "apply": self.run.apply},
        });
        if let Some(e) = element {
            v["item"] = e.clone();
        }
        minijinja::Value::from(minijinja::value::Serde(v))
    }
}

fn fail(step: &str, code: &str, message: impl Into<String>) -> ItemError {
    ItemError {
        code: code.into(),
        message: message.into(),
        step: Some(step.into()),
    }
}

/// Runs `plan` for one item. Never panics on bad data; always returns a record.
pub async fn run_item<A: AwsApi>(
    plan: &Plan,
    shared: &Map<String, Value>,
    item: &Item,
    run: &RunFacts,
    api: &A,
    budget: &ActionBudget,
) -> ItemResult {
    let started = Instant::now();
    let api = Counted {
        api,
        calls: AtomicU32::new(0),
    };
    let mut result = ItemResult {
        account_id: item.account_id.clone(),
        account_name: item.account_name.clone(),
        region: item.region.clone(),
        status: Status::Ok,
        error: None,
        findings: Vec::new(),
        actions: Vec::new(),
        applied: run.apply,
        calls: 0,
        duration_ms: 0,
    };
    let scope = Scope {
        ctx: Arc::new(ExprContext {
            params: run.params.clone(),
            shared: shared.clone(),
            account_id: item.account_id.clone(),
            account_name: item.account_name.clone(),
            region: item.region.clone(),
            now: run.now,
        }),
        item,
        run,
        shared,
    };
    let outcome = if plan.format != PLAN_FORMAT {
        Err((
            Status::Error,
            ItemError {
                code: "OrgOp.InvalidInput".into(),
                message: format!(
                    "plan format {} is not {PLAN_FORMAT}: recompile the runbook with this orgop",
                    plan.format
                ),
                step: None,
            },
        ))
    } else {
        execute(plan, &scope, &api, budget, &mut result).await
    };
    if let Err((status, error)) = outcome {
        result.status = status;
        result.error = Some(error);
    }
    result.calls = api.calls.load(Ordering::Relaxed);
    result.duration_ms = started.elapsed().as_millis() as u64;
    result
}

type Stop = (Status, ItemError);

fn status_of(e: &ApiError) -> Status {
    match e.kind {
        ErrorKind::Denied => Status::Denied,
        _ if e.code == "OptInRequired" => Status::Skipped,
        _ => Status::Error,
    }
}

async fn execute<A: AwsApi>(
    plan: &Plan,
    scope: &Scope<'_>,
    api: &Counted<'_, A>,
    budget: &ActionBudget,
    result: &mut ItemResult,
) -> Result<(), Stop> {
    let mut steps: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for step in &plan.steps {
        if step.mutating {
            return Err((
                Status::Error,
                fail(
                    &step.id,
                    "OrgOp.MutatingStep",
                    format!(
                        "{}:{} changes resources and is not an action: refused",
                        step.service, step.operation
                    ),
                ),
            ));
        }
        let results = run_step(step, scope, api, &steps).await?;
        steps.insert(step.id.clone(), results);
    }
    result.findings = findings(plan, scope, &steps)?;
    run_actions(plan, scope, api, budget, &steps, result).await
}

fn elements<'s>(
    step: &CallPlan,
    steps: &'s BTreeMap<String, Vec<Value>>,
) -> Vec<Option<&'s Value>> {
    match &step.for_each {
        Some(src) => steps
            .get(src)
            .map(|v| v.iter().map(Some).collect())
            .unwrap_or_default(),
        None => vec![None],
    }
}

async fn run_step<A: AwsApi>(
    step: &CallPlan,
    scope: &Scope<'_>,
    api: &Counted<'_, A>,
    steps: &BTreeMap<String, Vec<Value>>,
) -> Result<Vec<Value>, Stop> {
    let compile = |e: &Option<String>| -> Result<Option<Expr>, Stop> {
        e.as_deref()
            .map(Expr::compile)
            .transpose()
            .map_err(|m| (Status::Error, fail(&step.id, "OrgOp.Expression", m)))
    };
    let select = compile(&step.select)?;
    let filter = compile(&step.where_)?;
    let mut out = Vec::new();
    for element in elements(step, steps) {
        let tctx = scope.template_ctx(steps, element);
        if let Some(cond) = &step.when
            && !truthy_condition(cond, &tctx)
                .map_err(|m| (Status::Error, fail(&step.id, "OrgOp.Template", m)))?
        {
            continue;
        }
        let params = render_value(&step.parameters, &tctx)
            .map_err(|m| (Status::Error, fail(&step.id, "OrgOp.Template", m)))?;
        let params = if params.is_null() { json!({}) } else { params };
        let pages = match api
            .call(Call {
                service: &step.service,
                operation: &step.operation,
                params: &params,
                paginate: step.paginate,
            })
            .await
        {
            Ok(p) => p,
            Err(e) if step.ignore_errors.contains(&e.code) => continue,
            Err(e) => return Err((status_of(&e), fail(&step.id, &e.code, e.message))),
        };
        for page in pages {
            let chosen = match &select {
                Some(s) => s
                    .search(&page, &scope.ctx)
                    .map_err(|m| (Status::Error, fail(&step.id, "OrgOp.Expression", m)))?,
                None => page,
            };
            let candidates = match chosen {
                Value::Array(items) => items,
                Value::Null => Vec::new(),
                other => vec![other],
            };
            for c in candidates {
                let keep = match &filter {
                    Some(f) => truthy(
                        &f.search(&c, &scope.ctx)
                            .map_err(|m| (Status::Error, fail(&step.id, "OrgOp.Expression", m)))?,
                    ),
                    None => true,
                };
                if keep {
                    out.push(c);
                }
            }
        }
    }
    Ok(out)
}

fn findings(
    plan: &Plan,
    scope: &Scope<'_>,
    steps: &BTreeMap<String, Vec<Value>>,
) -> Result<Vec<Finding>, Stop> {
    let report = &plan.report;
    let err = |m: String| (Status::Error, fail("report", "OrgOp.Expression", m));
    let id = Expr::compile(&report.resource_id).map_err(err)?;
    let columns: Vec<(String, Expr)> = report
        .columns
        .iter()
        .map(|c| Ok((c.name.clone(), Expr::compile(&c.expr).map_err(err)?)))
        .collect::<Result<_, Stop>>()?;
    let mut out = Vec::new();
    for r in steps
        .get(&report.from)
        .map(Vec::as_slice)
        .unwrap_or_default()
    {
        let mut row = indexmap::IndexMap::new();
        for (name, e) in &columns {
            row.insert(name.clone(), e.search(r, &scope.ctx).map_err(err)?);
        }
        out.push(Finding {
            resource_id: id.search(r, &scope.ctx).map_err(err)?,
            columns: row,
        });
    }
    Ok(out)
}

/// The protected tag a result carries, if any.
fn protected_by(plan: &Plan, element: &Value) -> Option<String> {
    let tags = element.get("Tags").or_else(|| element.get("tags"))?;
    for (key, values) in &plan.safety.protected_tags {
        let value = match tags {
            Value::Array(list) => list.iter().find_map(|t| {
                let k = t.get("Key").or_else(|| t.get("key"))?;
                (k == key)
                    .then(|| t.get("Value").or_else(|| t.get("value")).cloned())
                    .flatten()
            }),
            Value::Object(m) => m.get(key).cloned(),
            _ => None,
        };
        if let Some(Value::String(v)) = value
            && values.contains(&v)
        {
            return Some(format!("protected by tag {key}={v}"));
        }
    }
    None
}

async fn run_actions<A: AwsApi>(
    plan: &Plan,
    scope: &Scope<'_>,
    api: &Counted<'_, A>,
    budget: &ActionBudget,
    steps: &BTreeMap<String, Vec<Value>>,
    result: &mut ItemResult,
) -> Result<(), Stop> {
    let mut steps = steps.clone();
    let resource_expr = Expr::compile(&plan.report.resource_id).ok();
    // (source, index) of results that an action failed for, and of those already counted
    // against the caps.
    let mut failed: HashSet<(String, usize)> = HashSet::new();
    let mut counted: HashSet<(String, usize)> = HashSet::new();
    let mut first_failure: Option<Stop> = None;
    let per_account = plan.safety.max_actions_per_account.map(|m| m as usize);
    let mut outputs: HashMap<String, Vec<Value>> = HashMap::new();

    for action in &plan.actions {
        let call = format!("{}:{}", action.service, action.operation);
        let source = action.for_each.clone().unwrap_or_default();
        let elems: Vec<Option<Value>> = elements(action, &steps)
            .into_iter()
            .map(|e| e.cloned())
            .collect();
        for (i, element) in elems.iter().enumerate() {
            let key = (source.clone(), i);
            let resource_id = match (&resource_expr, element) {
                (Some(e), Some(el)) if source == plan.report.from => {
                    e.search(el, &scope.ctx).unwrap_or(Value::Null)
                }
                _ => Value::Null,
            };
            let tctx = scope.template_ctx(&steps, element.as_ref());
            let record = |parameters: Value, outcome, reason: Option<String>| ActionRecord {
                action: action.id.clone(),
                call: call.clone(),
                resource_id: resource_id.clone(),
                parameters,
                outcome,
                reason,
            };
            if let Some(cond) = &action.when {
                match truthy_condition(cond, &tctx) {
                    Ok(true) => {}
                    Ok(false) => continue,
                    Err(m) => return Err((Status::Error, fail(&action.id, "OrgOp.Template", m))),
                }
            }
            let parameters = render_value(&action.parameters, &tctx)
                .map_err(|m| (Status::Error, fail(&action.id, "OrgOp.Template", m)))?;
            let parameters = if parameters.is_null() {
                json!({})
            } else {
                parameters
            };
            if failed.contains(&key) {
                result.actions.push(record(
                    parameters,
                    ActionOutcome::Skipped,
                    Some("an earlier action failed for this resource".into()),
                ));
                continue;
            }
            if let Some(reason) = element.as_ref().and_then(|e| protected_by(plan, e)) {
                result
                    .actions
                    .push(record(parameters, ActionOutcome::Skipped, Some(reason)));
                continue;
            }
            if !counted.contains(&key) {
                if per_account.is_some_and(|m| counted.len() >= m) {
                    result.actions.push(record(
                        parameters,
                        ActionOutcome::Skipped,
                        Some("max_actions_per_account reached".into()),
                    ));
                    continue;
                }
                if !budget.take().await {
                    result.actions.push(record(
                        parameters,
                        ActionOutcome::Skipped,
                        Some("max_actions_per_run reached".into()),
                    ));
                    continue;
                }
                counted.insert(key.clone());
            }
            if !scope.run.apply {
                result
                    .actions
                    .push(record(parameters, ActionOutcome::Planned, None));
                continue;
            }
            let answer = api
                .call(Call {
                    service: &action.service,
                    operation: &action.operation,
                    params: &parameters,
                    paginate: false,
                })
                .await;
            match answer {
                Ok(pages) => {
                    outputs.entry(action.id.clone()).or_default().extend(pages);
                    result
                        .actions
                        .push(record(parameters, ActionOutcome::Done, None));
                }
                Err(e)
                    if action.ignore_errors.contains(&e.code)
                        || (e.kind == ErrorKind::NotFound && removes(&action.operation)) =>
                {
                    result.actions.push(record(
                        parameters,
                        ActionOutcome::AlreadyDone,
                        Some(format!("{}: {}", e.code, e.message)),
                    ));
                }
                Err(e) => {
                    failed.insert(key);
                    result.actions.push(record(
                        parameters,
                        ActionOutcome::Failed,
                        Some(format!("{}: {}", e.code, e.message)),
                    ));
                    if first_failure.is_none() {
                        first_failure = Some((status_of(&e), fail(&action.id, &e.code, e.message)));
                    }
                }
            }
        }
        // Later actions may iterate over what this one returned.
        steps.insert(
            action.id.clone(),
            outputs.remove(&action.id).unwrap_or_default(),
        );
    }
    match first_failure {
        Some(f) => Err(f),
        None => Ok(()),
    }
}
