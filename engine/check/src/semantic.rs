//! Checks the schema cannot express. Runs on whatever parts of the document are well-formed,
//! so a file with a schema error still gets its reference and expression errors reported in
//! the same pass.
use crate::{jmes, schedule, suggest, template};
use orgop_syntax::model::{ForEach, ParamSpec, ParamType, Report, Step, Targets};
use orgop_syntax::{Diagnostic, Loaded, NodeSpans, Span, pointer_push};
use orgop_vocab::verbs as ops;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashMap};

pub use orgop_plan::contract::FIXED_COLUMNS;

pub(crate) struct Parts {
    pub(crate) params: BTreeMap<String, Option<ParamSpec>>,
    pub(crate) shared: Option<serde_json::Map<String, Value>>,
    pub(crate) steps: Vec<(usize, Option<Step>, Option<String>)>,
    pub(crate) actions: Vec<(usize, Option<Step>, Option<String>)>,
    pub(crate) report: Option<Report>,
    pub(crate) schedule: Option<String>,
    pub(crate) targets: Option<Targets>,
    pub(crate) inline_concurrency: Option<u64>,
    /// `apply_on_schedule: true`.
    pub(crate) apply_on_schedule: bool,
    /// `role.apply_name` is set.
    pub(crate) apply_role: bool,
    /// `approval` is set.
    pub(crate) approval: bool,
    /// `steps` is a non-empty list: references to step ids can be judged.
    pub(crate) steps_ok: bool,
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

pub(crate) fn parts(v: &Value) -> Parts {
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
        apply_on_schedule: v.get("apply_on_schedule") == Some(&Value::Bool(true)),
        apply_role: v.pointer("/role/apply_name").is_some(),
        approval: v.get("approval").is_some(),
        inline_concurrency: if inline {
            v.get("concurrency").and_then(Value::as_u64)
        } else {
            None
        },
    }
}

/// Every semantic problem in `loaded`.
pub(crate) fn check(file: &str, loaded: &Loaded, p: &Parts) -> Vec<Diagnostic> {
    let declared = Declared::of(p);
    let mut c = Checker {
        file,
        loaded,
        out: Vec::new(),
    };
    c.unique_ids(p);
    for (section, list) in [("steps", &p.steps), ("actions", &p.actions)] {
        for (i, step, _) in list.iter() {
            if let Some(step) = step {
                c.call(section, *i, step, &declared);
            }
        }
    }
    if let Some(report) = &p.report {
        c.report(report, &declared);
    }
    for (name, spec) in &p.params {
        if let Some(spec) = spec {
            c.param(name, spec);
        }
    }
    if let Some(shared) = &p.shared {
        c.dollar_keys(&Value::Object(shared.clone()), "/shared");
    }
    if let Some(s) = &p.schedule {
        c.schedule(s);
    }
    if let Some(t) = &p.targets {
        c.targets(t);
    }
    if let Some(concurrency) = p.inline_concurrency {
        c.inline_concurrency(concurrency);
    }
    c.applying(p);
    c.out
}

/// The names a runbook declares, which its expressions and references may use.
struct Declared {
    params: BTreeSet<String>,
    /// Keys of `shared`.
    shared: BTreeSet<String>,
    /// Step ids, in order.
    steps: Vec<String>,
    /// Action ids, in order.
    actions: Vec<String>,
    /// `steps` is a non-empty list: references to step ids can be judged.
    steps_ok: bool,
}

impl Declared {
    fn of(p: &Parts) -> Declared {
        let ids = |list: &[(usize, Option<Step>, Option<String>)]| -> Vec<String> {
            list.iter().filter_map(|(_, _, id)| id.clone()).collect()
        };
        Declared {
            params: p.params.keys().cloned().collect(),
            shared: p
                .shared
                .as_ref()
                .map(|m| m.keys().cloned().collect())
                .unwrap_or_default(),
            steps: ids(&p.steps),
            actions: ids(&p.actions),
            steps_ok: p.steps_ok,
        }
    }

    /// What JMESPath's `param()` and `shared()` may name.
    fn names(&self) -> jmes::Names<'_> {
        jmes::Names {
            params: &self.params,
            shared: &self.shared,
        }
    }

    /// The results the call at `section[i]` may read: earlier steps, and for actions every
    /// step plus earlier actions.
    fn visible(&self, section: &str, i: usize) -> Vec<String> {
        if section == "steps" {
            self.steps[..i.min(self.steps.len())].to_vec()
        } else {
            self.steps
                .iter()
                .chain(self.actions[..i.min(self.actions.len())].iter())
                .cloned()
                .collect()
        }
    }
}

/// One file's semantic check: what it reads, and the diagnostics found so far.
struct Checker<'a> {
    file: &'a str,
    loaded: &'a Loaded,
    out: Vec<Diagnostic>,
}

impl Checker<'_> {
    /// Where `field` of the node at `base` is.
    fn at(&self, base: &str, field: &str) -> NodeSpans {
        self.loaded.spans.resolve(&pointer_push(base, field))
    }

    /// Ids are unique across steps and actions.
    fn unique_ids(&mut self, p: &Parts) {
        let mut first: HashMap<&str, usize> = HashMap::new();
        for (section, list) in [("steps", &p.steps), ("actions", &p.actions)] {
            for (i, _, id) in list.iter() {
                let Some(id) = id else { continue };
                let here = self.loaded.spans.resolve(&format!("/{section}/{i}/id"));
                if let Some(line) = first.get(id.as_str()) {
                    self.out.push(
                        Diagnostic::error(self.file, here.value, format!("duplicate step id `{id}` (first used on line {line})"))
                            .with_hint("ids name results for `for_each`, `report.from` and `steps.<id>`; make each unique"),
                    );
                } else {
                    first.insert(id, here.value.start.line);
                }
            }
        }
    }

    /// One step or action (`section[i]`): where it belongs, what it iterates over, its
    /// expressions and its templates.
    fn call(&mut self, section: &str, i: usize, step: &Step, declared: &Declared) {
        let base = format!("/{section}/{i}");
        let visible = declared.visible(section, i);
        if section == "steps" {
            self.read_only(&base, step);
        }
        if declared.steps_ok {
            self.for_each(section, &base, step, &visible, declared);
        }
        for (field, expr) in [("select", &step.select), ("where", &step.where_)] {
            if let Some(expr) = expr {
                let node = self.at(&base, field);
                self.out.extend(jmes::check(
                    self.file,
                    expr,
                    &node,
                    field,
                    &declared.names(),
                ));
            }
        }
        let scope = template::Scope {
            params: &declared.params,
            shared: &declared.shared,
            steps: &visible,
            has_item: step.for_each.is_some(),
            has_response: false,
        };
        self.templates(&base, step, &scope);
        if let Some(wait) = &step.wait {
            if section == "steps" {
                self.out.push(
                    Diagnostic::error(
                        self.file,
                        self.at(&base, "wait").key_or_value(),
                        "`wait` waits on an action's effect; a step only reads",
                    )
                    .with_hint("move `wait:` to the action whose effect it waits for"),
                );
            }
            let pointer = pointer_push(&pointer_push(&base, "wait"), "parameters");
            let parameters = Value::Object(wait.parameters.clone().into_iter().collect());
            let scope = template::Scope {
                has_response: true,
                ..scope
            };
            template::check_value(
                self.file,
                &parameters,
                &pointer,
                &self.loaded.spans,
                &scope,
                &mut self.out,
            );
            self.dollar_keys(&parameters, &pointer);
        }
    }

    /// A step (under `steps`) only reads: mutating calls belong in `actions`.
    fn read_only(&mut self, base: &str, step: &Step) {
        if let Some((_, op)) = step.call.split_once(':')
            && ops::is_mutating(op)
        {
            self.out.push(
                Diagnostic::error(
                    self.file,
                    self.at(base, "call").value,
                    format!("`{}` can change resources, so it belongs in `actions`, not `steps`", step.call),
                )
                .with_hint("move it under `actions:`; actions are only sent with `--apply`, and planned otherwise"),
            );
        }
    }

    /// `for_each` names earlier steps (`visible`), not this one or a later one, each once;
    /// an action names one. `item_as` joins the items of a step's `for_each`.
    fn for_each(
        &mut self,
        section: &str,
        base: &str,
        step: &Step,
        visible: &[String],
        declared: &Declared,
    ) {
        if let Some(key) = &step.item_as {
            let node = self.at(base, "item_as").key_or_value();
            if section != "steps" {
                self.out.push(
                    Diagnostic::error(self.file, node, "`item_as` joins a step's results to their items; an action's are its answers")
                        .with_hint("move the join to the step the action iterates over"),
                );
            } else if step.for_each.is_none() {
                self.out.push(
                    Diagnostic::error(self.file, node, format!("`item_as: {key}` needs `for_each`: it is the item each result came from"))
                        .with_hint("add `for_each: <step id>`, or remove `item_as`"),
                );
            }
        }
        let Some(for_each) = &step.for_each else {
            return;
        };
        let several = matches!(for_each, ForEach::Many(_));
        if several && section != "steps" {
            self.out.push(
                Diagnostic::error(
                    self.file,
                    self.at(base, "for_each").value,
                    "an action iterates over the results of one step",
                )
                .with_hint(
                    "gather them in one step (`for_each: [a, b]` on a step), then act on that step",
                ),
            );
        }
        for (i, target) in for_each.ids().iter().enumerate() {
            let pointer = if several {
                pointer_push(&pointer_push(base, "for_each"), &i.to_string())
            } else {
                pointer_push(base, "for_each")
            };
            if for_each.ids()[..i].contains(target) {
                self.out.push(Diagnostic::error(
                    self.file,
                    self.loaded.spans.resolve(&pointer).value,
                    format!("`for_each` names `{target}` twice: its results would be used twice"),
                ));
                continue;
            }
            self.for_each_one(&pointer, step, target, visible, declared);
        }
    }

    /// One id of `for_each` (at `pointer`).
    fn for_each_one(
        &mut self,
        pointer: &str,
        step: &Step,
        target: &String,
        visible: &[String],
        declared: &Declared,
    ) {
        let node = self.loaded.spans.resolve(pointer);
        if target == &step.id {
            self.out.push(Diagnostic::error(
                self.file,
                node.value,
                format!("`{}` cannot iterate over itself", step.id),
            ));
        } else if !visible.contains(target) {
            let later = declared.steps.contains(target) || declared.actions.contains(target);
            let mut d = Diagnostic::error(
                self.file,
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
            self.out.push(d);
        }
    }

    /// The step's `parameters` (templates, and no `.$` keys) and its `when` condition, read
    /// in `scope`.
    fn templates(&mut self, base: &str, step: &Step, scope: &template::Scope<'_>) {
        let parameters = Value::Object(step.parameters.clone().into_iter().collect());
        template::check_value(
            self.file,
            &parameters,
            &pointer_push(base, "parameters"),
            &self.loaded.spans,
            scope,
            &mut self.out,
        );
        self.dollar_keys(&parameters, &pointer_push(base, "parameters"));
        if let Some(when) = &step.when {
            let node = self.at(base, "when");
            template::check_condition(self.file, when, &node, scope, &mut self.out);
        }
    }

    /// `report.from` (and each `report.also[].from`) names a step, the report's expressions
    /// and column names are valid, and every source has the report's columns.
    fn report(&mut self, report: &Report, declared: &Declared) {
        self.source(
            "/report",
            (&report.from, &report.resource_id, &report.columns),
            declared,
        );
        for (name, _) in &report.columns {
            if FIXED_COLUMNS.contains(&name.as_str()) {
                let node = self.at("/report/columns", name);
                self.out.push(
                    Diagnostic::error(self.file, node.key_or_value(), format!("column `{name}` is always present"))
                        .with_hint("every finding row starts with account_id, account_name, region, resource_id; pick another name"),
                );
            }
        }
        for (i, src) in report.also.iter().enumerate() {
            let base = format!("/report/also/{i}");
            self.source(&base, (&src.from, &src.resource_id, &src.columns), declared);
            let missing: Vec<&str> = report
                .columns
                .keys()
                .filter(|c| !src.columns.contains_key(*c))
                .map(String::as_str)
                .collect();
            if !missing.is_empty() {
                let at = self.at(&base, "from").key_or_value();
                self.out.push(
                    Diagnostic::error(
                        self.file,
                        at,
                        format!(
                            "`report.also` source `{}` lacks the column{} {}",
                            src.from,
                            if missing.len() == 1 { "" } else { "s" },
                            missing.iter().map(|c| format!("`{c}`")).collect::<Vec<_>>().join(", ")
                        ),
                    )
                    .with_hint("every source fills the same columns, so the findings are one table; use `` `null` `` where a source has no value"),
                );
            }
            for name in src
                .columns
                .keys()
                .filter(|c| !report.columns.contains_key(*c))
            {
                let mut d = Diagnostic::error(
                    self.file,
                    self.at(&format!("{base}/columns"), name).key_or_value(),
                    format!("column `{name}` is not one of the report's `columns`"),
                );
                d.hint = suggest::did_you_mean(name, report.columns.keys().map(String::as_str))
                    .or_else(|| Some("add it to `report.columns` too, or remove it".into()));
                self.out.push(d);
            }
        }
    }

    /// One source of findings at `base`: its step, resource id and columns' expressions.
    fn source(
        &mut self,
        base: &str,
        (from, resource_id, columns): (&String, &String, &indexmap::IndexMap<String, String>),
        declared: &Declared,
    ) {
        let names = declared.names();
        let field = if base == "/report" {
            "report.from".to_string()
        } else {
            "report.also: from".to_string()
        };
        if declared.steps_ok && !declared.steps.contains(from) {
            let mut d = Diagnostic::error(
                self.file,
                self.at(base, "from").value,
                if declared.actions.contains(from) {
                    format!("`{field}: {from}` names an action; findings come from a step")
                } else {
                    format!("`{field}: {from}` names no step")
                },
            );
            d.hint = suggest::did_you_mean(from, declared.steps.iter().map(String::as_str));
            self.out.push(d);
        }
        self.out.extend(jmes::check(
            self.file,
            resource_id,
            &self.at(base, "resource_id"),
            "resource_id",
            &names,
        ));
        for (name, expr) in columns {
            let node = self.at(&format!("{base}/columns"), name);
            self.out.extend(jmes::check(
                self.file,
                expr,
                &node,
                &format!("columns.{name}"),
                &names,
            ));
        }
    }

    /// A parameter's bounds apply to its type, and its default and allowed values fit it.
    fn param(&mut self, name: &str, spec: &ParamSpec) {
        let file = self.file;
        let base = pointer_push("/params", name);
        let spans = &self.loaded.spans;
        let at = |f: &str| spans.resolve(&pointer_push(&base, f)).value;
        let out = &mut self.out;
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

    /// `schedule` is an EventBridge expression.
    fn schedule(&mut self, s: &str) {
        let Err((offset, message)) = schedule::check(s) else {
            return;
        };
        let node = self.loaded.spans.resolve("/schedule");
        let pos = node.inside(s, offset);
        self.out.push(
            Diagnostic::error(
                self.file,
                Span {
                    start: pos,
                    end: pos,
                },
                format!("invalid schedule: {message}"),
            )
            .with_hint("EventBridge syntax: `cron(0 6 * * ? *)` or `rate(1 day)`"),
        );
    }

    /// No account is both included and excluded, and no region is listed twice.
    fn targets(&mut self, t: &Targets) {
        if t.scope == orgop_syntax::model::Scope::Operations {
            self.operations_scope(t);
        }
        let spans = &self.loaded.spans;
        for (i, acct) in t.exclude_accounts.iter().enumerate() {
            if t.accounts.contains(acct) {
                self.out.push(Diagnostic::error(
                    self.file,
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
                    self.out.push(Diagnostic::warning(
                        self.file,
                        spans.resolve(&format!("/targets/regions/{i}")).value,
                        format!("region {r} is listed twice"),
                    ));
                }
            }
        }
    }

    /// `scope: operations` runs once, in the operations account: account selectors mean
    /// nothing there, and it needs exactly one region.
    fn operations_scope(&mut self, t: &Targets) {
        let selectors = [
            ("organizational_units", !t.organizational_units.is_empty()),
            ("accounts", !t.accounts.is_empty()),
            ("exclude_accounts", !t.exclude_accounts.is_empty()),
            ("account_tags", !t.account_tags.is_empty()),
        ];
        for (key, set) in selectors {
            if set {
                let at = self.at("/targets", key).key_or_value();
                self.out.push(
                    Diagnostic::error(
                        self.file,
                        at,
                        format!("`targets.{key}` with `scope: operations`: the runbook runs only in the operations account"),
                    )
                    .with_hint(format!("remove `{key}`, or the `scope`")),
                );
            }
        }
        let one_region =
            matches!(&t.regions, orgop_syntax::model::Regions::List(r) if r.len() == 1);
        if !one_region {
            let at = self.at("/targets", "regions").key_or_value();
            self.out.push(
                Diagnostic::error(
                    self.file,
                    at,
                    "`scope: operations` runs once, in one region: list exactly one",
                )
                .with_hint("e.g. `regions: [us-east-1]`"),
            );
        }
    }

    /// `apply_on_schedule` needs a schedule and actions; `role.apply_name` needs actions.
    fn applying(&mut self, p: &Parts) {
        let no_actions = p.actions.is_empty();
        let mut refuse = |pointer: &str, message: &str, hint: &str| {
            let at = self.loaded.spans.resolve(pointer).key_or_value();
            self.out
                .push(Diagnostic::error(self.file, at, message.to_string()).with_hint(hint));
        };
        if p.apply_on_schedule && p.schedule.is_none() {
            refuse(
                "/apply_on_schedule",
                "`apply_on_schedule` without a `schedule`",
                "add `schedule: rate(1 day)` (or a cron expression), or remove `apply_on_schedule`",
            );
        }
        if p.apply_on_schedule && no_actions {
            refuse(
                "/apply_on_schedule",
                "`apply_on_schedule` in a runbook without `actions`: there is nothing to apply",
                "remove `apply_on_schedule`, or add the remediation `actions`",
            );
        }
        if p.approval && no_actions {
            refuse(
                "/approval",
                "`approval` in a runbook without `actions`: there is nothing to approve",
                "remove `approval`, or add the remediation `actions`",
            );
        }
        if p.apply_role && no_actions {
            refuse(
                "/role/apply_name",
                "`role.apply_name` in a runbook without `actions`: only applied actions use it",
                "remove `apply_name`; every run assumes `role.name`",
            );
        }
    }

    /// An inline Map's `concurrency` above 40 acts as 40.
    fn inline_concurrency(&mut self, c: u64) {
        if c > 40 {
            self.out.push(
                Diagnostic::warning(
                    self.file,
                    self.loaded.spans.resolve("/concurrency").value,
                    format!(
                        "an inline Map runs at most 40 iterations at once; concurrency {c} acts as 40"
                    ),
                )
                .with_hint("use `execution: {map: distributed}` for more"),
            );
        }
    }

    /// Keys ending in `.$` would be read by Step Functions as paths when the data is embedded
    /// in the state machine; reject them where the author wrote them.
    fn dollar_keys(&mut self, v: &Value, pointer: &str) {
        match v {
            Value::Object(m) => {
                for (k, child) in m {
                    let p = pointer_push(pointer, k);
                    if k.ends_with(".$") {
                        self.out.push(
                            Diagnostic::error(
                                self.file,
                                self.loaded.spans.resolve(&p).key_or_value(),
                                format!("key `{k}` ends in `.$`"),
                            )
                            .with_hint("Step Functions reads such keys as JSONPath; rename it"),
                        );
                    }
                    self.dollar_keys(child, &p);
                }
            }
            Value::Array(items) => {
                for (i, child) in items.iter().enumerate() {
                    self.dollar_keys(child, &pointer_push(pointer, &i.to_string()));
                }
            }
            _ => {}
        }
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
