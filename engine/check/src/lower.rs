//! A checked runbook -> [`Lowered`]: the plan each worker runs plus the deployment settings.
//! Defaults are applied here, once, so every consumer sees the same values.
use orgop_plan::{
    CallPlan, Column, Lowered, MapKind, PLAN_FORMAT, ParamDef, Plan, ReportPlan, ReportSourcePlan,
    RolePlan, SafetyPlan, TargetsPlan, WaitPlan,
};
use orgop_syntax::model::{MapMode, ParamSpec, Regions, Runbook, Scope, Step, TagValues};
use orgop_syntax::{SpanMap, pointer_push};
use orgop_vocab::verbs as ops;
use std::collections::BTreeMap;

/// Default Map `MaxConcurrency`.
pub const DEFAULT_CONCURRENCY: u32 = 10;
/// Step Functions runs at most this many inline Map iterations at once.
pub const INLINE_MAX_CONCURRENCY: u32 = 40;
/// Default largest item count run inline under `map: auto`: keeps the inline Map's state
/// (items, then one small summary each) far below the 256 KiB payload limit and its history
/// far below 25,000 events.
pub const DEFAULT_INLINE_MAX_ITEMS: u32 = 500;

fn tags(m: &indexmap::IndexMap<String, TagValues>) -> BTreeMap<String, Vec<String>> {
    m.iter()
        .map(|(k, v)| {
            let values = match v {
                TagValues::One(s) => vec![s.clone()],
                TagValues::Any(list) => list.clone(),
            };
            (k.clone(), values)
        })
        .collect()
}

fn at(file: &str, spans: &SpanMap, pointer: &str) -> String {
    let n = spans.resolve(pointer).value.start;
    format!("{file}:{}:{}", n.line, n.col)
}

fn call(file: &str, spans: &SpanMap, pointer: &str, s: &Step) -> CallPlan {
    let (service, operation) = s.call.split_once(':').unwrap_or((&s.call, ""));
    CallPlan {
        id: s.id.clone(),
        service: service.to_string(),
        operation: operation.to_string(),
        mutating: ops::is_mutating(operation),
        parameters: serde_json::Value::Object(s.parameters.clone().into_iter().collect()),
        paginate: s.paginate,
        select: s.select.clone(),
        where_: s.where_.clone(),
        for_each: s
            .for_each
            .as_ref()
            .map(|f| f.ids().to_vec())
            .unwrap_or_default(),
        item_as: s.item_as.clone(),
        when: s.when.clone(),
        ignore_errors: s.ignore_errors.clone(),
        wait: s.wait.as_ref().map(|w| wait_plan(service, operation, w)),
        at: at(file, spans, pointer),
    }
}

/// The waiter of a checked `wait:`, copied from the model with the runbook's bound. The model
/// checks have found it; were it missing, the plan would have no acceptors, and every wait
/// would end timed out.
fn wait_plan(service: &str, operation: &str, w: &orgop_syntax::model::Wait) -> WaitPlan {
    use orgop_awswire::{Matcher, WaiterState};
    let found = orgop_models::global()
        .resolve(service, operation)
        .ok()
        .and_then(|svc| svc.waiters.get(&w.waiter).cloned());
    let (waiter_op, delay, attempts, acceptors) = match &found {
        Some(x) => (
            x.operation.clone(),
            x.delay,
            x.max_attempts,
            x.acceptors.clone(),
        ),
        None => (String::new(), 1, 1, Vec::new()),
    };
    let delay = delay.max(1);
    let max_attempts = match w.timeout_seconds {
        Some(t) => u32::try_from(u64::from(t).div_ceil(delay))
            .unwrap_or(u32::MAX)
            .max(1),
        None => attempts.max(1),
    };
    let acceptors = acceptors
        .iter()
        .map(|a| {
            let matcher = match a.matcher {
                Matcher::Path => "path",
                Matcher::PathAll => "pathAll",
                Matcher::PathAny => "pathAny",
                Matcher::Status => "status",
                Matcher::Error => "error",
            };
            let state = match a.state {
                WaiterState::Success => "success",
                WaiterState::Failure => "failure",
                WaiterState::Retry => "retry",
            };
            let mut v = serde_json::json!({
                "matcher": matcher,
                "expected": a.expected,
                "state": state,
            });
            if let Some(arg) = &a.argument {
                v["argument"] = serde_json::Value::String(arg.clone());
            }
            v
        })
        .collect();
    WaitPlan {
        waiter: w.waiter.clone(),
        operation: waiter_op,
        parameters: serde_json::Value::Object(w.parameters.clone().into_iter().collect()),
        delay_seconds: delay,
        max_attempts,
        acceptors,
    }
}

/// Lowers a runbook that passed every check.
pub fn lower(file: &str, rb: &Runbook, spans: &SpanMap) -> Lowered {
    let targets = targets(rb);
    let map = map_kind(rb, &targets);
    Lowered {
        plan: plan(file, rb, spans),
        targets,
        shared: rb.shared.clone().into_iter().collect(),
        concurrency: concurrency(rb, map),
        map,
        tolerated_failure_percentage: rb
            .execution
            .as_ref()
            .and_then(|e| e.tolerated_failure_percentage)
            .unwrap_or(100),
        schedule: rb.schedule.clone(),
        apply_on_schedule: rb.apply_on_schedule,
        approval: rb.approval.as_ref().map(|a| orgop_plan::ApprovalPlan {
            timeout_seconds: u64::from(a.timeout_hours) * 3600,
        }),
        at: places(file, rb, spans),
    }
}

fn targets(rb: &Runbook) -> TargetsPlan {
    let global = all_global(rb);
    TargetsPlan {
        regions: match &rb.targets.regions {
            _ if global => vec![orgop_plan::contract::GLOBAL_REGION.to_string()],
            Regions::List(r) => r.clone(),
            Regions::Keyword(_) => Vec::new(),
        },
        enabled_regions: !global && matches!(rb.targets.regions, Regions::Keyword(_)),
        organizational_units: rb.targets.organizational_units.clone(),
        accounts: rb.targets.accounts.clone(),
        exclude_accounts: rb.targets.exclude_accounts.clone(),
        account_tags: tags(&rb.targets.account_tags),
        global,
        operations: rb.targets.scope == Scope::Operations,
    }
}

/// Whether every call of the runbook (steps, actions) is to a global service.
fn all_global(rb: &Runbook) -> bool {
    let mut calls = rb.steps.iter().chain(rb.actions.iter()).peekable();
    calls.peek().is_some()
        && calls.all(|s| {
            s.call
                .split_once(':')
                .is_some_and(|(svc, op)| crate::models::is_global(svc, op))
        })
}

/// The Map kind `execution.map` asks for; `auto` runs inline when the targets name at most
/// `inline_max_items` items.
fn map_kind(rb: &Runbook, targets: &TargetsPlan) -> MapKind {
    let execution = rb.execution.as_ref();
    let mode = execution.map(|e| e.map).unwrap_or_default();
    let inline_max = execution
        .and_then(|e| e.inline_max_items)
        .unwrap_or(DEFAULT_INLINE_MAX_ITEMS) as usize;
    match mode {
        MapMode::Inline => MapKind::Inline,
        MapMode::Distributed => MapKind::Distributed,
        MapMode::Auto => match targets.known_item_count() {
            Some(n) if n <= inline_max => MapKind::Inline,
            _ => MapKind::Distributed,
        },
    }
}

/// An inline Map runs at most 40 iterations at once; say so in the definition.
fn concurrency(rb: &Runbook, map: MapKind) -> u32 {
    match map {
        MapKind::Inline => rb
            .concurrency
            .unwrap_or(DEFAULT_CONCURRENCY)
            .min(INLINE_MAX_CONCURRENCY),
        MapKind::Distributed => rb.concurrency.unwrap_or(DEFAULT_CONCURRENCY),
    }
}

/// What each worker runs.
fn plan(file: &str, rb: &Runbook, spans: &SpanMap) -> Plan {
    let calls = |section: &str, list: &[Step]| -> Vec<CallPlan> {
        list.iter()
            .enumerate()
            .map(|(i, s)| call(file, spans, &format!("/{section}/{i}"), s))
            .collect()
    };
    Plan {
        format: PLAN_FORMAT,
        runbook: rb.name.clone(),
        version: rb.version,
        source: file.to_string(),
        role: RolePlan {
            name: rb.role.name.clone(),
            apply_name: rb.role.apply_name.clone(),
            external_id: rb.role.external_id.clone(),
            session_name: rb
                .role
                .session_name
                .clone()
                .unwrap_or_else(|| format!("orgop-{}", rb.name)),
        },
        params: rb
            .params
            .iter()
            .map(|(k, p)| (k.clone(), param(p)))
            .collect(),
        steps: calls("steps", &rb.steps),
        actions: calls("actions", &rb.actions),
        report: ReportPlan {
            from: rb.report.from.clone(),
            resource_id: rb.report.resource_id.clone(),
            columns: rb
                .report
                .columns
                .iter()
                .map(|(name, expr)| Column {
                    name: name.clone(),
                    expr: expr.clone(),
                })
                .collect(),
            also: rb
                .report
                .also
                .iter()
                .map(|s| ReportSourcePlan {
                    from: s.from.clone(),
                    resource_id: s.resource_id.clone(),
                    // In the report's column order, whatever order the source wrote them in.
                    columns: rb
                        .report
                        .columns
                        .keys()
                        .filter_map(|name| {
                            s.columns.get(name).map(|expr| Column {
                                name: name.clone(),
                                expr: expr.clone(),
                            })
                        })
                        .collect(),
                })
                .collect(),
        },
        safety: rb
            .safety
            .as_ref()
            .map(|s| SafetyPlan {
                max_actions_per_account: s.max_actions_per_account,
                max_actions_per_run: s.max_actions_per_run,
                protected_tags: tags(&s.protected_tags),
            })
            .unwrap_or_default(),
        operations: rb.targets.scope == Scope::Operations,
    }
}

fn param(p: &ParamSpec) -> ParamDef {
    let ty = serde_json::to_value(p.ty)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default();
    ParamDef {
        ty,
        default: p.default.clone(),
        allowed: p.allowed.clone(),
        minimum: p.minimum.clone(),
        maximum: p.maximum.clone(),
    }
}

/// `file:line:col` of each top-level part present, for the state machine's comments.
fn places(file: &str, rb: &Runbook, spans: &SpanMap) -> BTreeMap<String, String> {
    let mut places = BTreeMap::new();
    for part in [
        "targets", "steps", "actions", "report", "role", "shared", "approval",
    ] {
        if rb_has(rb, part) {
            places.insert(part.to_string(), at(file, spans, &pointer_push("", part)));
        }
    }
    places.insert("runbook".into(), format!("{file}:1:1"));
    places
}

fn rb_has(rb: &Runbook, part: &str) -> bool {
    match part {
        "actions" => !rb.actions.is_empty(),
        "shared" => !rb.shared.is_empty(),
        "approval" => rb.approval.is_some(),
        _ => true,
    }
}
