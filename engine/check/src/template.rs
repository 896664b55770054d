//! minijinja checks: syntax (errors point into the string), and that every variable a template
//! or `when` condition reads exists (strict undefined): `params.x` is declared, `steps.x` is an
//! earlier step, `item` only under `for_each`.
use crate::suggest;
use orgop_plan::functions::TEMPLATE_GLOBALS;
use orgop_syntax::{Diagnostic, NodeSpans, Span, SpanMap, pointer_push};
use serde_json::Value;
use std::collections::BTreeSet;

/// What templates at one place may read.
pub struct Scope<'a> {
    /// Declared parameters.
    pub params: &'a BTreeSet<String>,
    /// Keys of `shared`.
    pub shared: &'a BTreeSet<String>,
    /// Step ids whose results are visible here.
    pub steps: &'a [String],
    /// Whether `item` is bound (the step has `for_each`).
    pub has_item: bool,
    /// Whether `response` is bound (the parameters of an action's `wait:`).
    pub has_response: bool,
}

pub use orgop_plan::templates::{environment, is_template, whole_expression};

/// Checks every template string inside `value` (recursively), found at `pointer`.
pub fn check_value(
    file: &str,
    value: &Value,
    pointer: &str,
    spans: &SpanMap,
    scope: &Scope<'_>,
    out: &mut Vec<Diagnostic>,
) {
    match value {
        Value::String(s) if is_template(s) => {
            check_string(file, s, &spans.resolve(pointer), scope, out)
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                check_value(
                    file,
                    v,
                    &pointer_push(pointer, &i.to_string()),
                    spans,
                    scope,
                    out,
                );
            }
        }
        Value::Object(m) => {
            for (k, v) in m {
                check_value(file, v, &pointer_push(pointer, k), spans, scope, out);
            }
        }
        _ => {}
    }
}

fn check_string(
    file: &str,
    s: &str,
    node: &NodeSpans,
    scope: &Scope<'_>,
    out: &mut Vec<Diagnostic>,
) {
    let t = Text { file, s, node };
    let env = environment();
    if let Some(expr) = whole_expression(s) {
        let lead = s.find("{{").unwrap_or(0) + 2;
        match env.compile_expression(expr) {
            Ok(e) => t.names(&e.undeclared_variables(true), scope, out),
            Err(e) => out.push(t.syntax_error(&e, lead)),
        }
        return;
    }
    match env.template_from_str(s) {
        Ok(tmpl) => t.names(&tmpl.undeclared_variables(true), scope, out),
        Err(e) => out.push(t.syntax_error(&e, 0)),
    }
}

/// Checks a `when` condition (a bare minijinja expression).
pub fn check_condition(
    file: &str,
    s: &str,
    node: &NodeSpans,
    scope: &Scope<'_>,
    out: &mut Vec<Diagnostic>,
) {
    let t = Text { file, s, node };
    match environment().compile_expression(s) {
        Ok(e) => t.names(&e.undeclared_variables(true), scope, out),
        Err(e) => out.push(t.syntax_error(&e, 0)),
    }
}

/// One template or condition being checked, and where it is.
struct Text<'a> {
    file: &'a str,
    s: &'a str,
    node: &'a NodeSpans,
}

impl Text<'_> {
    /// An error at `chars` characters into the text.
    fn error_at(&self, chars: usize, message: String) -> Diagnostic {
        let p = self.node.inside(self.s, chars);
        Diagnostic::error(self.file, Span { start: p, end: p }, message)
    }

    /// minijinja's error `e`, whose range is `shift` bytes off because only part of the
    /// text was compiled.
    fn syntax_error(&self, e: &minijinja::Error, shift: usize) -> Diagnostic {
        let s = self.s;
        let byte = e.range().map(|r| r.start).unwrap_or(0) + shift;
        let chars = s
            .get(..byte.min(s.len()))
            .map(|p| p.chars().count())
            .unwrap_or(0);
        let detail = match e.detail() {
            // minijinja's parser stops at a fixed depth; say so in the runbook's terms.
            Some(d) if d.contains("maximum recursion") => {
                "it nests deeper than the template parser's fixed limit (about 150 levels of \
                 brackets, blocks and operators)"
                    .to_string()
            }
            Some(d) => d.to_string(),
            None => e.kind().to_string(),
        };
        self.error_at(chars, format!("invalid template: {detail}"))
            .with_hint("templates use minijinja (Jinja2) syntax: `{{ params.name }}`")
    }

    /// Every variable the text reads (`used`) that `scope` does not define, in name order.
    fn names(
        &self,
        used: &std::collections::HashSet<String>,
        scope: &Scope<'_>,
        out: &mut Vec<Diagnostic>,
    ) {
        let s = self.s;
        let mut used: Vec<&String> = used.iter().collect();
        used.sort();
        for name in used {
            let top = name.split('.').next().unwrap_or_default();
            if let Some((message, hint)) = undefined(name, scope) {
                let byte = s.find(name.as_str()).or_else(|| s.find(top)).unwrap_or(0);
                let mut d = self.error_at(s[..byte].chars().count(), message);
                d.hint = hint;
                out.push(d);
            }
        }
    }
}

/// Why variable `name` (`params.x`, `item`, ...) is not defined in `scope`, and a hint; `None`
/// when it is.
fn undefined(name: &str, scope: &Scope<'_>) -> Option<(String, Option<String>)> {
    let mut parts = name.splitn(3, '.');
    let top = parts.next().unwrap_or_default();
    let second = parts.next();
    match (top, second) {
        ("params", Some(p)) if !scope.params.contains(p) => Some((
            format!("`params.{p}` is not a declared parameter"),
            suggest::did_you_mean(p, scope.params.iter().map(String::as_str))
                .or_else(|| Some("declare it under `params:`".into())),
        )),
        ("shared", Some(k)) if !scope.shared.contains(k) => Some((
            format!("`shared.{k}` is not a key of `shared`"),
            suggest::did_you_mean(k, scope.shared.iter().map(String::as_str)),
        )),
        ("steps", Some(id)) if !scope.steps.iter().any(|s| s == id) => Some((
            format!("`steps.{id}` is not an earlier step"),
            suggest::did_you_mean(id, scope.steps.iter().map(String::as_str))
                .or_else(|| Some("a step can read only the steps before it".into())),
        )),
        ("response", _) if !scope.has_response => Some((
            "`response` is only defined in the parameters of `wait:`".into(),
            Some("it is the action's answer, for the waiter to poll on".into()),
        )),
        ("response", _) => None,
        ("item", _) if !scope.has_item => Some((
            "`item` is only defined in a step with `for_each`".into(),
            Some("add `for_each: <step id>` to run once per result".into()),
        )),
        ("account", Some(f)) if f != "id" && f != "name" => Some((
            format!("`account.{f}` does not exist"),
            Some("`account` has `id` and `name`".into()),
        )),
        ("run", Some(f)) if f != "execution" && f != "apply" => Some((
            format!("`run.{f}` does not exist"),
            Some("`run` has `execution` and `apply`".into()),
        )),
        (top, _) if !TEMPLATE_GLOBALS.iter().any(|(g, _)| *g == top) => Some((
            format!("`{top}` is not defined"),
            suggest::did_you_mean(top, TEMPLATE_GLOBALS.iter().map(|(g, _)| *g)).or_else(|| {
                Some(format!(
                    "templates can read {}",
                    TEMPLATE_GLOBALS
                        .iter()
                        .map(|(g, _)| format!("`{g}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            }),
        )),
        _ => None,
    }
}
