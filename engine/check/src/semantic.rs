//! Checks the schema cannot express. Runs on whatever parts of the document are well-formed,
//! so a file with a schema error still gets its reference and expression errors reported in
//! the same pass.
use crate::{jmes, schedule, suggest, template};
use orgop_syntax::model::{ParamSpec, ParamType, Report, Step, Targets};
use orgop_syntax::{Diagnostic, Loaded, Span, pointer_push};
use orgop_vocab::verbs as ops;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// Column names every finding row has; report columns may not reuse them.
pub const FIXED_COLUMNS: [&str; 4] = ["account_id", "account_name", "region", "resource_id"];

struct Parts {
    params: BTreeMap<String, Option<ParamSpec>>,
    shared: Option<serde_json::Map<String, Value>>,
    steps: Vec<(usize, Option<Step>, Option<String>)>,
    actions: Vec<(usize, Option<Step>, Option<String>)>,
    report: Option<Report>,
    schedule: Option<String>,
    targets: Option<Targets>,
    inline_concurrency: Option<u64>,
    /// `steps` is a non-empty list: references to step ids can be judged.
    steps_ok: bool,
}

/// Deserializes `v` as a `T` described by `$defs/<def>`; when that fails (the schema check
/// reports why), tries again without the keys the schema does not know, so the rest of the
/// part is still checked.
fn lenient<T: serde::de::DeserializeOwned>(v: &Value, def: &str) -> Option<T> {
    if let Ok(t) = serde_json::from_value(v.clone()) {
        return Some(t);
    }
    let known = crate::schema::properties_of(def);
    let obj = v.as_object()?;
    let kept: serde_json::Map<String, Value> = obj
        .iter()
        .filter(|(k, _)| known.iter().any(|n| n == *k))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    serde_json::from_value(Value::Object(kept)).ok()
}

fn parts(v: &Value) -> Parts {
    let list = |key: &str| -> Vec<(usize, Option<Step>, Option<String>)> {
        v.get(key)
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .enumerate()
                    .map(|(i, s)| {
                        let id = s.get("id").and_then(Value::as_str).map(str::to_string);
                        (i, lenient(s, "Step"), id)
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    let inline = v.pointer("/execution/map").and_then(Value::as_str) == Some("inline");
    Parts {
        params: v
            .get("params")
            .and_then(Value::as_object)
            .map(|m| {
                m.iter()
                    .map(|(k, s)| (k.clone(), serde_json::from_value(s.clone()).ok()))
                    .collect()
            })
            .unwrap_or_default(),
        shared: v.get("shared").and_then(Value::as_object).cloned(),
        steps: list("steps"),
        actions: list("actions"),
        report: v.get("report").and_then(|r| lenient(r, "Report")),
        schedule: v
            .get("schedule")
            .and_then(Value::as_str)
            .map(str::to_string),
        targets: v.get("targets").and_then(|t| lenient(t, "Targets")),
        steps_ok: v
            .get("steps")
            .and_then(Value::as_array)
            .is_some_and(|a| !a.is_empty()),
        inline_concurrency: if inline {
            v.get("concurrency").and_then(Value::as_u64)
        } else {
            None
        },
    }
}

/// Every semantic problem in `loaded`.
pub fn check(file: &str, loaded: &Loaded) -> Vec<Diagnostic> {
    let p = parts(&loaded.value);
    let spans = &loaded.spans;
    let mut out = Vec::new();
    let params: BTreeSet<String> = p.params.keys().cloned().collect();
    let shared: BTreeSet<String> = p
        .shared
        .as_ref()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    let names = jmes::Names {
        params: &params,
        shared: &shared,
    };

    // Unique ids across steps and actions.
    let mut first: HashMap<&str, usize> = HashMap::new();
    for (section, list) in [("steps", &p.steps), ("actions", &p.actions)] {
        for (i, _, id) in list.iter() {
            let Some(id) = id else { continue };
            let here = spans.resolve(&format!("/{section}/{i}/id"));
            if let Some(line) = first.get(id.as_str()) {
                out.push(
                    Diagnostic::error(file, here.value, format!("duplicate step id `{id}` (first used on line {line})"))
                        .with_hint("ids name results for `for_each`, `report.from` and `steps.<id>`; make each unique"),
                );
            } else {
                first.insert(id, here.value.start.line);
            }
        }
    }

    let step_ids: Vec<String> = p.steps.iter().filter_map(|(_, _, id)| id.clone()).collect();
    let action_ids: Vec<String> = p
        .actions
        .iter()
        .filter_map(|(_, _, id)| id.clone())
        .collect();

    for (section, list) in [("steps", &p.steps), ("actions", &p.actions)] {
        for (i, step, _) in list.iter() {
            let Some(step) = step else { continue };
            let base = format!("/{section}/{i}");
            let at = |field: &str| spans.resolve(&pointer_push(&base, field));
            // What this call may read: earlier steps, and for actions every step plus earlier actions.
            let visible: Vec<String> = if section == "steps" {
                step_ids[..(*i).min(step_ids.len())].to_vec()
            } else {
                step_ids
                    .iter()
                    .chain(action_ids[..(*i).min(action_ids.len())].iter())
                    .cloned()
                    .collect()
            };

            if let Some((_, op)) = step.call.split_once(':')
                && section == "steps"
                && ops::is_mutating(op)
            {
                out.push(
                    Diagnostic::error(
                        file,
                        at("call").value,
                        format!("`{}` can change resources, so it belongs in `actions`, not `steps`", step.call),
                    )
                    .with_hint("move it under `actions:`; actions are only sent with `--apply`, and planned otherwise"),
                );
            }

            if let Some(target) = step.for_each.as_ref().filter(|_| p.steps_ok) {
                let node = at("for_each");
                if target == &step.id {
                    out.push(Diagnostic::error(
                        file,
                        node.value,
                        format!("`{}` cannot iterate over itself", step.id),
                    ));
                } else if !visible.contains(target) {
                    let later = step_ids.contains(target) || action_ids.contains(target);
                    let mut d = Diagnostic::error(
                        file,
                        node.value,
                        if later {
                            format!("`for_each: {target}` names a step that runs after this one")
                        } else {
                            format!("`for_each: {target}` names no earlier step")
                        },
                    );
                    d.hint = if later {
                        Some("move this step below the one it iterates over".into())
                    } else {
                        suggest::did_you_mean(target, visible.iter().map(String::as_str))
                    };
                    out.push(d);
                }
            }

            for (field, expr) in [("select", &step.select), ("where", &step.where_)] {
                if let Some(expr) = expr {
                    out.extend(jmes::check(file, expr, &at(field), field, &names));
                }
            }

            let scope = template::Scope {
                params: &params,
                shared: &shared,
                steps: &visible,
                has_item: step.for_each.is_some(),
            };
            let parameters = Value::Object(step.parameters.clone().into_iter().collect());
            template::check_value(
                file,
                &parameters,
                &pointer_push(&base, "parameters"),
                spans,
                &scope,
                &mut out,
            );
            dollar_keys(
                file,
                &parameters,
                &pointer_push(&base, "parameters"),
                loaded,
                &mut out,
            );
            if let Some(when) = &step.when {
                template::check_condition(file, when, &at("when"), &scope, &mut out);
            }
        }
    }

    if let Some(report) = &p.report {
        let at = |field: &str| spans.resolve(&pointer_push("/report", field));
        if p.steps_ok && !step_ids.contains(&report.from) {
            let mut d = Diagnostic::error(
                file,
                at("from").value,
                if action_ids.contains(&report.from) {
                    format!(
                        "`report.from: {}` names an action; findings come from a step",
                        report.from
                    )
                } else {
                    format!("`report.from: {}` names no step", report.from)
                },
            );
            d.hint = suggest::did_you_mean(&report.from, step_ids.iter().map(String::as_str));
            out.push(d);
        }
        out.extend(jmes::check(
            file,
            &report.resource_id,
            &at("resource_id"),
            "resource_id",
            &names,
        ));
        for (name, expr) in &report.columns {
            let node = spans.resolve(&pointer_push("/report/columns", name));
            if FIXED_COLUMNS.contains(&name.as_str()) {
                out.push(
                    Diagnostic::error(file, node.key_or_value(), format!("column `{name}` is always present"))
                        .with_hint("every finding row starts with account_id, account_name, region, resource_id; pick another name"),
                );
            }
            out.extend(jmes::check(
                file,
                expr,
                &node,
                &format!("columns.{name}"),
                &names,
            ));
        }
    }

    for (name, spec) in &p.params {
        if let Some(spec) = spec {
            param(file, name, spec, loaded, &mut out);
        }
    }

    if let Some(shared) = &p.shared {
        dollar_keys(
            file,
            &Value::Object(shared.clone()),
            "/shared",
            loaded,
            &mut out,
        );
    }

    if let Some(s) = &p.schedule
        && let Err((offset, message)) = schedule::check(s)
    {
        let node = spans.resolve("/schedule");
        let pos = node.inside(s, offset);
        out.push(
            Diagnostic::error(
                file,
                Span {
                    start: pos,
                    end: pos,
                },
                format!("invalid schedule: {message}"),
            )
            .with_hint("EventBridge syntax: `cron(0 6 * * ? *)` or `rate(1 day)`"),
        );
    }

    if let Some(t) = &p.targets {
        for (i, acct) in t.exclude_accounts.iter().enumerate() {
            if t.accounts.contains(acct) {
                out.push(Diagnostic::error(
                    file,
                    spans
                        .resolve(&format!("/targets/exclude_accounts/{i}"))
                        .value,
                    format!("account {acct} is both included and excluded"),
                ));
            }
        }
        if let orgop_syntax::model::Regions::List(regions) = &t.regions {
            let mut seen = BTreeSet::new();
            for (i, r) in regions.iter().enumerate() {
                if !seen.insert(r) {
                    out.push(Diagnostic::warning(
                        file,
                        spans.resolve(&format!("/targets/regions/{i}")).value,
                        format!("region {r} is listed twice"),
                    ));
                }
            }
        }
    }

    if let Some(c) = p.inline_concurrency
        && c > 40
    {
        out.push(
            Diagnostic::warning(
                file,
                spans.resolve("/concurrency").value,
                format!(
                    "an inline Map runs at most 40 iterations at once; concurrency {c} acts as 40"
                ),
            )
            .with_hint("use `execution: {map: distributed}` for more"),
        );
    }
    out
}

fn param(file: &str, name: &str, spec: &ParamSpec, loaded: &Loaded, out: &mut Vec<Diagnostic>) {
    let base = pointer_push("/params", name);
    let at = |f: &str| loaded.spans.resolve(&pointer_push(&base, f)).value;
    let numeric = matches!(spec.ty, ParamType::Integer | ParamType::Number);
    if (spec.minimum.is_some() || spec.maximum.is_some()) && !numeric {
        let f = if spec.minimum.is_some() {
            "minimum"
        } else {
            "maximum"
        };
        out.push(Diagnostic::error(
            file,
            at(f),
            format!("`{f}` applies only to integer and number parameters"),
        ));
    }
    let mut check_value = |v: &Value, field: &str| {
        if let Err(m) = param_value_ok(spec, v) {
            out.push(Diagnostic::error(
                file,
                at(field),
                format!("{field} of `{name}`: {m}"),
            ));
        }
    };
    if let Some(d) = &spec.default {
        check_value(d, "default");
    }
    for v in spec.allowed.iter().flatten() {
        check_value(v, "allowed");
    }
    if let (Some(d), Some(allowed)) = (&spec.default, &spec.allowed)
        && !allowed.contains(d)
    {
        out.push(Diagnostic::error(
            file,
            at("default"),
            format!("the default of `{name}` is not one of its `allowed` values"),
        ));
    }
}

/// Whether `v` fits a parameter's type and bounds (ignoring `allowed`).
pub fn param_value_ok(spec: &ParamSpec, v: &Value) -> Result<(), String> {
    let fits = match spec.ty {
        ParamType::String => v.is_string(),
        ParamType::Integer => v.is_i64() || v.is_u64(),
        ParamType::Number => v.is_number(),
        ParamType::Boolean => v.is_boolean(),
        ParamType::List => v.is_array(),
        ParamType::Object => v.is_object(),
    };
    if !fits {
        let expected = match spec.ty {
            ParamType::String => "a string",
            ParamType::Integer => "an integer",
            ParamType::Number => "a number",
            ParamType::Boolean => "`true` or `false`",
            ParamType::List => "a list",
            ParamType::Object => "a mapping",
        };
        return Err(format!("{v} is not {expected}"));
    }
    if let Some(n) = v.as_f64() {
        if let Some(min) = spec.minimum.as_ref().and_then(serde_json::Number::as_f64)
            && n < min
        {
            return Err(format!("{v} is below the minimum {min}"));
        }
        if let Some(max) = spec.maximum.as_ref().and_then(serde_json::Number::as_f64)
            && n > max
        {
            return Err(format!("{v} is above the maximum {max}"));
        }
    }
    Ok(())
}

/// Keys ending in `.$` would be read by Step Functions as paths when the data is embedded in
/// the state machine; reject them where the author wrote them.
fn dollar_keys(file: &str, v: &Value, pointer: &str, loaded: &Loaded, out: &mut Vec<Diagnostic>) {
    match v {
        Value::Object(m) => {
            for (k, child) in m {
                let p = pointer_push(pointer, k);
                if k.ends_with(".$") {
                    out.push(
                        Diagnostic::error(
                            file,
                            loaded.spans.resolve(&p).key_or_value(),
                            format!("key `{k}` ends in `.$`"),
                        )
                        .with_hint("Step Functions reads such keys as JSONPath; rename it"),
                    );
                }
                dollar_keys(file, child, &p, loaded, out);
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                dollar_keys(
                    file,
                    child,
                    &pointer_push(pointer, &i.to_string()),
                    loaded,
                    out,
                );
            }
        }
        _ => {}
    }
}
