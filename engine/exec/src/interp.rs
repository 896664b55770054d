//! The interpreter proper.
use crate::api::{ApiError, AwsApi, Call, ErrorKind};
use crate::expr::{ExprContext, to_json, to_var_checked, truthy};
use crate::prepare::{Prepared, PreparedCall};
use crate::result::{ActionOutcome, ActionRecord, Finding, ItemError, ItemResult, Status};
use crate::template::{Scope, to_template, truthy as truthy_condition};
use jmespath::{Rcvar, Variable};
use orgop_vocab::Code;
use orgop_vocab::verbs::removes;
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, HashSet};
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

/// What the caller of [`run_item`] is told, and asked, while an item runs: whether to stop,
/// and each mutating call before it is sent and after its answer (a write-ahead journal).
/// [`NoHooks`] does nothing.
pub trait ItemHooks: Send + Sync {
    /// Whether the run is stopping: checked before every call. When it answers `true` the
    /// item makes no further call and ends `not_run`, with what it finished so far.
    fn stopping(&self) -> bool {
        false
    }

    /// Called before an action's request is sent (only when actions are applied), with the
    /// record as it will be sent; answers a token passed to [`ItemHooks::answered`]. An error
    /// means the action must not be sent: it is skipped and the item ends in error.
    fn before_send(&self, item: &Item, record: &ActionRecord) -> std::io::Result<u64> {
        let _ = (item, record);
        Ok(0)
    }

    /// Called once the answer to a sent action arrived, with its outcome in `record`.
    fn answered(&self, token: u64, item: &Item, record: &ActionRecord) {
        let _ = (token, item, record);
    }

    /// Called for every action a dry run plans, with the `for_each` element it came from (the
    /// result of the earlier step as the interpreter saw it; `None` without `for_each`).
    fn planned(&self, item: &Item, record: &ActionRecord, element: Option<&Value>) {
        let _ = (item, record, element);
    }

    /// Asked, when actions are applied, before each action's caps and protections are
    /// checked: `Err(reason)` skips it with that reason (it is never sent). `orgop apply`
    /// admits only the actions of its plan.
    fn admit(
        &self,
        item: &Item,
        record: &ActionRecord,
        element: Option<&Value>,
    ) -> Result<(), NotAdmitted> {
        let _ = (item, record, element);
        Ok(())
    }

    /// Whether [`ItemHooks::unselected`] wants to be told (it costs a resource id per
    /// result the `where` filter drops).
    fn wants_unselected(&self) -> bool {
        false
    }

    /// Called with the resource id (`report.resource_id`) of each result of the reported step
    /// that its `where` filter dropped: the resource exists but no longer matches.
    fn unselected(&self, item: &Item, resource_id: &Value) {
        let _ = (item, resource_id);
    }
}

/// The seed of an action's idempotency tokens: the execution, the item, the action and the
/// resource (its `report.resource_id`, else the `for_each` element with keys sorted, else
/// nothing), one per line. The same action for the same resource in the same execution has
/// the same seed, whenever and however often it is sent.
pub fn idempotency_seed(
    execution: &str,
    item: &Item,
    action: &str,
    resource_id: &Value,
    element: Option<&Value>,
) -> String {
    let resource = if !resource_id.is_null() {
        resource_id.to_string()
    } else {
        element
            .map(|e| orgop_plan::canonical::sorted(e.clone()).to_string())
            .unwrap_or_default()
    };
    format!(
        "{execution}\n{}\n{}\n{action}\n{resource}",
        item.account_id, item.region
    )
}

/// Why [`ItemHooks::admit`] refused an action: the reason its record is skipped with
/// (`changed: ...`, `not planned: ...`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotAdmitted(pub String);

/// Hooks that never stop an item and record nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoHooks;

impl ItemHooks for NoHooks {}

fn interrupted(at: &str) -> Stop {
    (
        Status::NotRun,
        fail(
            at,
            Code::Interrupted,
            "the run was interrupted: this call and the ones after it were not made",
        ),
    )
}

/// Counts calls made through it, and traces each (`debug`: step, call, pages or error code,
/// duration; never parameters, which may hold secrets).
struct Counted<'a, A> {
    api: &'a A,
    calls: AtomicU32,
}

impl<A: AwsApi> Counted<'_, A> {
    async fn pause(&self, d: std::time::Duration) {
        self.api.pause(d).await
    }

    async fn call(&self, step: &str, call: Call<'_>) -> Result<Vec<Value>, ApiError> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        let started = Instant::now();
        let answer = self.api.call(call).await;
        let duration_ms = started.elapsed().as_millis() as u64;
        match &answer {
            Ok(pages) => tracing::debug!(
                step,
                service = call.service,
                operation = call.operation,
                pages = pages.len(),
                duration_ms,
                "call"
            ),
            Err(e) => tracing::debug!(
                step,
                service = call.service,
                operation = call.operation,
                error_code = e.code.as_str(),
                duration_ms,
                "call failed"
            ),
        }
        answer
    }

    async fn call_action(
        &self,
        step: &str,
        call: Call<'_>,
        seed: &str,
    ) -> Result<Vec<Value>, ApiError> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        let started = Instant::now();
        let answer = self.api.call_action(call, seed).await;
        let duration_ms = started.elapsed().as_millis() as u64;
        match &answer {
            Ok(_) => tracing::debug!(
                step,
                service = call.service,
                operation = call.operation,
                duration_ms,
                "action"
            ),
            Err(e) => tracing::debug!(
                step,
                service = call.service,
                operation = call.operation,
                error_code = e.code.as_str(),
                duration_ms,
                "action failed"
            ),
        }
        answer
    }
}

/// One item's view of the run: the orgop functions' context, the templates' scope, and the
/// results of the steps (and actions) so far.
struct ItemRun<'p> {
    prepared: &'p Prepared,
    ctx: Arc<ExprContext>,
    scope: Scope,
    /// Whether any template reads `steps` (else results are not converted for templates).
    templates_read_steps: bool,
    steps: BTreeMap<String, Vec<Value>>,
    /// The same results of the steps (not actions) as JMESPath values, for the report and
    /// the actions' resource ids: converted once, when the step selected them.
    step_vars: BTreeMap<String, Vec<Rcvar>>,
    steps_template: BTreeMap<String, minijinja::Value>,
}

impl<'p> ItemRun<'p> {
    fn new(prepared: &'p Prepared, item: &Item, run: &RunFacts) -> ItemRun<'p> {
        let ctx = Arc::new(ExprContext {
            params: Arc::new(run.params.clone()),
            shared: prepared.shared.clone(),
            account_id: item.account_id.clone(),
            account_name: item.account_name.clone(),
            region: item.region.clone(),
            now: run.now,
        });
        let mut vars = BTreeMap::new();
        vars.insert("params", to_template(&Value::Object(run.params.clone())));
        vars.insert("shared", prepared.shared_template.clone());
        vars.insert(
            "account",
            to_template(&json!({"id": item.account_id, "name": item.account_name})),
        );
        vars.insert("region", minijinja::Value::from(item.region.as_str()));
        vars.insert(
            "run",
            to_template(&json!({"execution": run.execution, "apply": run.apply})),
        );
        vars.insert(
            "steps",
            minijinja::Value::from(BTreeMap::<String, minijinja::Value>::new()),
        );
        ItemRun {
            prepared,
            ctx,
            scope: Scope::new(vars),
            templates_read_steps: prepared.templates.reads.contains("steps"),
            steps: BTreeMap::new(),
            step_vars: BTreeMap::new(),
            steps_template: BTreeMap::new(),
        }
    }

    /// Records the results of a step or action, visible to the later ones.
    fn keep(&mut self, id: &str, results: Vec<Value>) {
        if self.templates_read_steps {
            self.steps_template.insert(
                id.to_string(),
                minijinja::Value::from(minijinja::value::Serde(&results)),
            );
            self.scope
                .set("steps", minijinja::Value::from(self.steps_template.clone()));
        }
        self.steps.insert(id.to_string(), results);
    }

    /// The elements a call iterates over: the results of its `for_each` step, or one pass
    /// without `item`.
    fn elements(&self, for_each: &[String]) -> Vec<Option<&Value>> {
        if for_each.is_empty() {
            return vec![None];
        }
        for_each
            .iter()
            .filter_map(|src| self.steps.get(src))
            .flat_map(|v| v.iter().map(Some))
            .collect()
    }

    /// The `when` condition and parameters of `call` for one element: `None` when the
    /// condition is false.
    fn render(
        &self,
        id: &str,
        call: &PreparedCall,
        element: Option<&Value>,
    ) -> Result<Option<Value>, Stop> {
        let tmpl_err = |m| (Status::Error, fail(id, Code::Template, m));
        let scope = self.scope.with_item(element);
        if let Some((source, cond)) = &call.when
            && !truthy_condition(source, cond, &scope).map_err(tmpl_err)?
        {
            return Ok(None);
        }
        let params = self
            .prepared
            .templates
            .render(&call.parameters, &scope)
            .map_err(tmpl_err)?;
        Ok(Some(if params.is_null() { json!({}) } else { params }))
    }
}

fn fail(step: &str, code: impl AsRef<str>, message: impl Into<String>) -> ItemError {
    ItemError {
        code: code.as_ref().into(),
        message: message.into(),
        step: Some(step.into()),
    }
}

/// Runs a prepared plan for one item. Never panics on bad data; always returns a record.
/// `hooks` are asked before every call whether to stop, and told of every action sent.
pub async fn run_item<A: AwsApi>(
    prepared: &Prepared,
    item: &Item,
    run: &RunFacts,
    api: &A,
    budget: &ActionBudget,
    hooks: &dyn ItemHooks,
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
    let mut item_run = ItemRun::new(prepared, item, run);
    let ctl = Control { item, hooks };
    if let Err((status, error)) = execute(&mut item_run, run, &api, budget, ctl, &mut result).await
    {
        result.status = status;
        result.error = Some(error);
    }
    result.calls = api.calls.load(Ordering::Relaxed);
    result.duration_ms = started.elapsed().as_millis() as u64;
    result
}

type Stop = (Status, ItemError);

/// The item and its hooks, as the calls see them.
#[derive(Clone, Copy)]
struct Control<'a> {
    item: &'a Item,
    hooks: &'a dyn ItemHooks,
}

fn status_of(e: &ApiError) -> Status {
    match e.kind {
        ErrorKind::Denied => Status::Denied,
        ErrorKind::NotEnabled => Status::Skipped,
        _ => Status::Error,
    }
}

async fn execute<A: AwsApi>(
    ir: &mut ItemRun<'_>,
    run: &RunFacts,
    api: &Counted<'_, A>,
    budget: &ActionBudget,
    ctl: Control<'_>,
    result: &mut ItemResult,
) -> Result<(), Stop> {
    let prepared = ir.prepared;
    for call in &prepared.steps {
        let step = prepared.step(call);
        if step.mutating {
            return Err((
                Status::Error,
                fail(
                    &step.id,
                    Code::MutatingStep,
                    format!(
                        "{}:{} changes resources and is not an action: refused",
                        step.service, step.operation
                    ),
                ),
            ));
        }
        let (results, vars) = run_step(ir, call, api, ctl).await?;
        ir.step_vars.insert(step.id.clone(), vars);
        ir.keep(&step.id, results);
    }
    result.findings = findings(ir)?;
    let mut actions = ActionRun::new(prepared, run, budget, ctl);
    for call in &prepared.actions {
        let outputs = actions.run(ir, call, api, &mut result.actions).await?;
        // Later actions may iterate over what this one returned.
        ir.keep(&prepared.action(call).id, outputs);
    }
    match actions.first_failure {
        Some(f) => Err(f),
        None => Ok(()),
    }
}

async fn run_step<A: AwsApi>(
    ir: &ItemRun<'_>,
    call: &PreparedCall,
    api: &Counted<'_, A>,
    ctl: Control<'_>,
) -> Result<(Vec<Value>, Vec<Rcvar>), Stop> {
    let step = ir.prepared.step(call);
    let expr_err = |m| (Status::Error, fail(&step.id, Code::Expression, m));
    let (mut out, mut vars) = (Vec::new(), Vec::new());
    // Told of the reported step's results that `where` drops (`orgop apply`: changed, not gone).
    let tell_unselected = ctl.hooks.wants_unselected() && step.id == ir.prepared.plan().report.from;
    // `item_as`: each item as its step kept it for JMESPath (`step_vars`, in the same order
    // as `elements`), joined into each of its results without converting it again.
    let item_vars: Vec<&Rcvar> = match &step.item_as {
        Some(_) => step
            .for_each
            .iter()
            .filter_map(|src| ir.step_vars.get(src))
            .flatten()
            .collect(),
        None => Vec::new(),
    };
    for (i, element) in ir.elements(&step.for_each).into_iter().enumerate() {
        let Some(params) = ir.render(&step.id, call, element)? else {
            continue;
        };
        let joined = step.item_as.as_deref().zip(item_vars.get(i).copied());
        if ctl.hooks.stopping() {
            return Err(interrupted(&step.id));
        }
        let pages = match api
            .call(
                &step.id,
                Call {
                    service: &step.service,
                    operation: &step.operation,
                    params: &params,
                    paginate: step.paginate,
                },
            )
            .await
        {
            Ok(p) => p,
            Err(e) if step.ignore_errors.contains(&e.code) => continue,
            Err(e) => return Err((status_of(&e), fail(&step.id, &e.code, e.message))),
        };
        for page in pages {
            // One conversion in per page, one out per kept result.
            let page = to_var_checked(&page).map_err(expr_err)?;
            let chosen = match &call.select {
                Some(s) => s.search_var(&page, &ir.ctx).map_err(expr_err)?,
                None => page,
            };
            let candidates = match &*chosen {
                Variable::Array(items) => items.clone(),
                Variable::Null => Vec::new(),
                _ => vec![chosen.clone()],
            };
            for c in candidates {
                let c = match joined {
                    Some((key, item)) => join(&step.id, c, key, item)?,
                    None => c,
                };
                let keep = match &call.where_ {
                    Some(f) => truthy(&*f.search_var(&c, &ir.ctx).map_err(expr_err)?),
                    None => true,
                };
                if keep {
                    out.push(to_json(&c));
                    vars.push(c);
                } else if tell_unselected
                    && let Ok(id) = ir.prepared.resource_id.search_var(&c, &ir.ctx)
                {
                    ctl.hooks.unselected(ctl.item, &to_json(&id));
                }
            }
        }
    }
    Ok((out, vars))
}

/// One result of step `id` with its `for_each` item under `key` (`item_as`).
fn join(id: &str, result: Rcvar, key: &str, item: &Rcvar) -> Result<Rcvar, Stop> {
    let refuse = |m: String| Err((Status::Error, fail(id, Code::Expression, m)));
    match &*result {
        Variable::Object(fields) if fields.contains_key(key) => refuse(format!(
            "`item_as: {key}`: a result already has a field `{key}`; choose another key"
        )),
        Variable::Object(fields) => {
            let mut fields = fields.clone();
            fields.insert(key.to_string(), item.clone());
            Ok(Arc::new(Variable::Object(fields)))
        }
        other => refuse(format!(
            "`item_as: {key}` needs each result to be an object, and one is {}; select an object, e.g. `{{Tags: Tags}}`",
            other.get_type()
        )),
    }
}

fn findings(ir: &ItemRun<'_>) -> Result<Vec<Finding>, Stop> {
    let p = ir.prepared;
    let err = |m: String| (Status::Error, fail("report", Code::Expression, m));
    let mut out = Vec::new();
    // `report.from`, then each `report.also` source, in order.
    let sources = std::iter::once(p.plan().report.from.as_str())
        .chain(p.plan().report.also.iter().map(|s| s.from.as_str()));
    for from in sources {
        let Some((resource_id, columns_of)) = p.source_of(from) else {
            continue;
        };
        for r in ir
            .step_vars
            .get(from)
            .map(Vec::as_slice)
            .unwrap_or_default()
        {
            let eval =
                |e: &crate::expr::Expr| e.search_var(r, &ir.ctx).map(|v| to_json(&v)).map_err(err);
            let mut columns = indexmap::IndexMap::with_capacity(columns_of.len());
            for (name, e) in columns_of {
                columns.insert(name.clone(), eval(e)?);
            }
            out.push(Finding {
                resource_id: eval(resource_id)?,
                columns,
            });
        }
    }
    Ok(out)
}

/// The protected tag a result carries, if any.
fn protected_by(p: &Prepared, element: &Value) -> Option<String> {
    let tags = element.get("Tags").or_else(|| element.get("tags"))?;
    for (key, values) in &p.plan().safety.protected_tags {
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

/// The actions of one item: the caps, and which results an action already failed for.
struct ActionRun<'a> {
    prepared: &'a Prepared,
    apply: bool,
    execution: &'a str,
    budget: &'a ActionBudget,
    ctl: Control<'a>,
    per_account: Option<usize>,
    /// (source, index) of results that an action failed for.
    failed: HashSet<(String, usize)>,
    /// (source, index) of results already counted against the caps.
    counted: HashSet<(String, usize)>,
    first_failure: Option<Stop>,
}

impl<'a> ActionRun<'a> {
    fn new(
        prepared: &'a Prepared,
        run: &'a RunFacts,
        budget: &'a ActionBudget,
        ctl: Control<'a>,
    ) -> ActionRun<'a> {
        ActionRun {
            prepared,
            apply: run.apply,
            execution: &run.execution,
            budget,
            ctl,
            per_account: prepared
                .plan()
                .safety
                .max_actions_per_account
                .map(|m| m as usize),
            failed: HashSet::new(),
            counted: HashSet::new(),
            first_failure: None,
        }
    }

    /// Runs one action for each of its elements; answers what it returned.
    async fn run<A: AwsApi>(
        &mut self,
        ir: &ItemRun<'_>,
        call: &PreparedCall,
        api: &Counted<'_, A>,
        records: &mut Vec<ActionRecord>,
    ) -> Result<Vec<Value>, Stop> {
        let action = self.prepared.action(call);
        // An action iterates over one step (the checks refuse several).
        let source = action.for_each.first().cloned().unwrap_or_default();
        // The results of a reported step, as converted when it ran: their resource ids.
        let reported = self
            .prepared
            .source_of(&source)
            .and_then(|(rid, _)| ir.step_vars.get(&source).map(|vars| (rid, vars)));
        let mut outputs = Vec::new();
        for (i, element) in ir.elements(&action.for_each).into_iter().enumerate() {
            let resource_id = match reported.and_then(|(rid, vars)| vars.get(i).map(|v| (rid, v))) {
                Some((rid, v)) => rid
                    .search_var(v, &ir.ctx)
                    .map(|v| to_json(&v))
                    .unwrap_or(Value::Null),
                None => Value::Null,
            };
            let Some(parameters) = ir.render(&action.id, call, element)? else {
                continue;
            };
            let record = ActionRecord {
                action: action.id.clone(),
                call: format!("{}:{}", action.service, action.operation),
                resource_id,
                parameters,
                outcome: ActionOutcome::Planned,
                reason: None,
            };
            if self.apply && self.ctl.hooks.stopping() {
                // What was sent so far is in `records`; the item ends `not_run`.
                return Err(interrupted(&action.id));
            }
            if self.apply
                && let Err(NotAdmitted(reason)) =
                    self.ctl.hooks.admit(self.ctl.item, &record, element)
            {
                records.push(skipped(record, reason));
                continue;
            }
            let key = (source.clone(), i);
            let record = match self.gate(&key, element).await {
                Err(reason) => skipped(record, reason),
                Ok(()) if !self.apply => {
                    self.ctl.hooks.planned(self.ctl.item, &record, element);
                    record
                }
                Ok(()) => {
                    let seed = idempotency_seed(
                        self.execution,
                        self.ctl.item,
                        &action.id,
                        &record.resource_id,
                        element,
                    );
                    let sending = Sending {
                        ir,
                        call,
                        element,
                        seed: &seed,
                    };
                    self.send(action, api, key, record, &mut outputs, sending)
                        .await
                }
            };
            records.push(record);
        }
        Ok(outputs)
    }

    /// Whether this element may be acted on: not after a failure for the same result, not
    /// when protected, and within the caps (each result counted once).
    async fn gate(&mut self, key: &(String, usize), element: Option<&Value>) -> Result<(), String> {
        if self.failed.contains(key) {
            return Err("an earlier action failed for this resource".into());
        }
        if let Some(reason) = element.and_then(|e| protected_by(self.prepared, e)) {
            return Err(reason);
        }
        if !self.counted.contains(key) {
            if self.per_account.is_some_and(|m| self.counted.len() >= m) {
                return Err("max_actions_per_account reached".into());
            }
            if !self.budget.take().await {
                return Err("max_actions_per_run reached".into());
            }
            self.counted.insert(key.clone());
        }
        Ok(())
    }

    async fn send<A: AwsApi>(
        &mut self,
        action: &orgop_plan::CallPlan,
        api: &Counted<'_, A>,
        key: (String, usize),
        record: ActionRecord,
        outputs: &mut Vec<Value>,
        sending: Sending<'_, '_>,
    ) -> ActionRecord {
        // The write-ahead record: nothing is sent that the journal does not hold first.
        let token = match self.ctl.hooks.before_send(self.ctl.item, &record) {
            Ok(t) => t,
            Err(e) => {
                self.failed.insert(key);
                let message = format!("not sent: the actions journal cannot be written: {e}");
                if self.first_failure.is_none() {
                    self.first_failure =
                        Some((Status::Error, fail(&action.id, Code::Internal, &message)));
                }
                return skipped(record, message);
            }
        };
        let record = self
            .answer(action, api, key, record, outputs, sending)
            .await;
        self.ctl.hooks.answered(token, self.ctl.item, &record);
        record
    }

    async fn answer<A: AwsApi>(
        &mut self,
        action: &orgop_plan::CallPlan,
        api: &Counted<'_, A>,
        key: (String, usize),
        mut record: ActionRecord,
        outputs: &mut Vec<Value>,
        sending: Sending<'_, '_>,
    ) -> ActionRecord {
        let seed = sending.seed;
        let answer = api
            .call_action(
                &action.id,
                Call {
                    service: &action.service,
                    operation: &action.operation,
                    params: &record.parameters,
                    paginate: false,
                },
                seed,
            )
            .await;
        match answer {
            Ok(pages) => {
                let waited = match (&action.wait, &sending.call.wait) {
                    (Some(plan), Some(prepared)) => {
                        let response = pages.first().cloned().unwrap_or_else(|| json!({}));
                        Some(
                            self.wait_for(action, plan, prepared, api, &sending, &response)
                                .await,
                        )
                    }
                    _ => None,
                };
                outputs.extend(pages);
                match waited {
                    None => record.outcome = ActionOutcome::Done,
                    Some(Ok(how)) => {
                        record.outcome = ActionOutcome::Done;
                        record.reason = Some(how);
                    }
                    Some(Err((code, why))) => {
                        // Sent and answered, but its effect never came: what depends on it
                        // for this resource must not run.
                        self.failed.insert(key);
                        record.outcome = ActionOutcome::Failed;
                        record.reason = Some(format!("{code}: {why}"));
                        if self.first_failure.is_none() {
                            self.first_failure = Some((Status::Error, fail(&action.id, code, why)));
                        }
                    }
                }
            }
            Err(e)
                if action.ignore_errors.contains(&e.code)
                    || (e.kind == ErrorKind::NotFound && removes(&action.operation)) =>
            {
                record.outcome = ActionOutcome::AlreadyDone;
                record.reason = Some(format!("{}: {}", e.code, e.message));
            }
            Err(e) => {
                self.failed.insert(key);
                record.outcome = ActionOutcome::Failed;
                record.reason = Some(format!("{}: {}", e.code, e.message));
                if self.first_failure.is_none() {
                    self.first_failure =
                        Some((status_of(&e), fail(&action.id, &e.code, e.message)));
                }
            }
        }
        record
    }
}

/// What sending one action needs besides the action: the item's scope, the compiled call
/// and the result it is for (for `wait:`'s templates), and its idempotency seed.
struct Sending<'r, 'p> {
    ir: &'r ItemRun<'p>,
    call: &'r PreparedCall,
    element: Option<&'r Value>,
    seed: &'r str,
}

impl ActionRun<'_> {
    /// Polls the waiter of `action` until an acceptor says success (`Ok`, how long it took),
    /// failure, or the attempts run out (`Err`: an orgop code and why).
    async fn wait_for<A: AwsApi>(
        &self,
        action: &orgop_plan::CallPlan,
        plan: &orgop_plan::WaitPlan,
        prepared: &crate::prepare::PreparedWait,
        api: &Counted<'_, A>,
        sending: &Sending<'_, '_>,
        response: &Value,
    ) -> Result<String, (&'static str, String)> {
        let waiter = &plan.waiter;
        let scope = sending
            .ir
            .scope
            .with_item_and_response(sending.element, Some(response));
        let params = self
            .prepared
            .templates
            .render(&prepared.parameters, &scope)
            .map_err(|m| (Code::Template.name(), format!("wait {waiter}: {m}")))?;
        let params = if params.is_null() { json!({}) } else { params };
        for attempt in 1..=plan.max_attempts {
            if attempt > 1 {
                if self.ctl.hooks.stopping() {
                    return Err((
                        Code::Interrupted.name(),
                        format!("the run was interrupted while waiting for {waiter}"),
                    ));
                }
                api.pause(std::time::Duration::from_secs(plan.delay_seconds))
                    .await;
            }
            let answer = api
                .call(
                    &action.id,
                    Call {
                        service: &action.service,
                        operation: &plan.operation,
                        params: &params,
                        paginate: false,
                    },
                )
                .await;
            let answer = answer.map(|pages| pages.into_iter().next().unwrap_or_else(|| json!({})));
            match acceptor_state(&prepared.acceptors, &answer, &sending.ir.ctx) {
                Some("success") => {
                    return Ok(format!(
                        "waited for {waiter}: {attempt} poll{}",
                        if attempt == 1 { "" } else { "s" }
                    ));
                }
                Some("failure") => {
                    return Err((
                        Code::WaiterFailed.name(),
                        format!("{waiter} reached a failure state (poll {attempt})"),
                    ));
                }
                Some(_) => {}
                // An error no acceptor expects ends the wait, as in the AWS SDKs.
                None => {
                    if let Err(e) = &answer {
                        return Err((
                            Code::WaiterFailed.name(),
                            format!("{waiter}: {}: {}", e.code, e.message),
                        ));
                    }
                }
            }
        }
        Err((
            Code::WaiterTimeout.name(),
            format!(
                "{waiter} did not succeed within {} polls, {} s apart (the limit: `wait.timeout_seconds` or the waiter's own)",
                plan.max_attempts, plan.delay_seconds
            ),
        ))
    }
}

/// The state of the first acceptor that matches a poll's answer, as botocore applies them:
/// `path`/`pathAll`/`pathAny` on a successful output, `error` on the error code (`true`: any
/// error, `false`: none), `status` on 200 for a success and 404 for a not-found error (the
/// only statuses an answer here tells).
fn acceptor_state<'a>(
    acceptors: &'a [crate::prepare::PreparedAcceptor],
    answer: &Result<Value, ApiError>,
    ctx: &Arc<ExprContext>,
) -> Option<&'a str> {
    acceptors
        .iter()
        .find(|a| {
            let found = |out: &Value| {
                a.argument
                    .as_ref()
                    .and_then(|e| e.search(out, ctx).ok())
                    .unwrap_or(Value::Null)
            };
            match (a.matcher.as_str(), answer) {
                ("path", Ok(out)) => found(out) == a.expected,
                ("pathAll", Ok(out)) => match found(out) {
                    Value::Array(items) => {
                        !items.is_empty() && items.iter().all(|x| *x == a.expected)
                    }
                    _ => false,
                },
                ("pathAny", Ok(out)) => match found(out) {
                    Value::Array(items) => items.contains(&a.expected),
                    _ => false,
                },
                ("status", Ok(_)) => a.expected == json!(200),
                ("status", Err(e)) => e.kind == ErrorKind::NotFound && a.expected == json!(404),
                ("error", Ok(_)) => a.expected == json!(false),
                ("error", Err(e)) => {
                    a.expected == json!(true) || a.expected.as_str() == Some(e.code.as_str())
                }
                _ => false,
            }
        })
        .map(|a| a.state.as_str())
}

fn skipped(mut record: ActionRecord, reason: String) -> ActionRecord {
    record.outcome = ActionOutcome::Skipped;
    record.reason = Some(reason);
    record
}
