//! A plan prepared once: every JMESPath expression and template compiled, the shared data
//! converted for templates. Items then only bind their account, region and elements (jaq's
//! compile-then-run; minijinja's `template_from_str` once, `render` per context).
//!
//! `orgop run` prepares once per run; the Lambda once per warm container and plan.
use crate::expr::Expr;
use crate::template::{Templates, Tmpl, to_template};
use minijinja::Expression;
use orgop_plan::{CallPlan, PLAN_FORMAT, Plan};
use serde_json::{Map, Value};
use std::sync::Arc;

/// A plan ready to run: compiled once, shared by every item (`Send + Sync`).
#[derive(Debug)]
pub struct Prepared {
    plan: Plan,
    pub(crate) shared: Arc<Map<String, Value>>,
    pub(crate) shared_template: minijinja::Value,
    pub(crate) steps: Vec<PreparedCall>,
    pub(crate) actions: Vec<PreparedCall>,
    pub(crate) resource_id: Expr,
    pub(crate) columns: Vec<(String, Expr)>,
    /// `report.also`: (step, resource id, columns) per source, in order.
    pub(crate) also: Vec<(String, Expr, Columns)>,
    pub(crate) templates: Templates,
}

/// A report source's columns, compiled: (name, expression) in the report's order.
pub(crate) type Columns = Vec<(String, Expr)>;

/// One step or action, compiled.
#[derive(Debug)]
pub(crate) struct PreparedCall {
    /// Index in the plan's steps or actions.
    pub(crate) index: usize,
    /// `when`: its text and compiled form.
    pub(crate) when: Option<(String, Expression<'static, 'static>)>,
    pub(crate) parameters: Tmpl,
    pub(crate) select: Option<Expr>,
    pub(crate) where_: Option<Expr>,
    /// `wait:`: its parameters and the waiter's acceptors, compiled.
    pub(crate) wait: Option<PreparedWait>,
}

/// A `wait:`, compiled.
#[derive(Debug)]
pub(crate) struct PreparedWait {
    pub(crate) parameters: Tmpl,
    pub(crate) acceptors: Vec<PreparedAcceptor>,
}

/// One acceptor of a waiter (botocore's `waiters-2.json`), its argument compiled.
#[derive(Debug)]
pub(crate) struct PreparedAcceptor {
    /// `path`, `pathAll`, `pathAny`, `status` or `error`.
    pub(crate) matcher: String,
    pub(crate) expected: Value,
    /// `success`, `failure` or `retry`.
    pub(crate) state: String,
    pub(crate) argument: Option<Expr>,
}

/// Why a plan cannot be prepared: it was not made by this orgop's checker (or was edited).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrepareError {
    /// The step or action (`report` for the report) whose expression failed; empty when the
    /// plan as a whole is refused.
    pub step: String,
    /// What kind of text failed to compile.
    pub kind: PrepareErrorKind,
    /// What is wrong.
    pub message: String,
}

/// What failed to prepare.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrepareErrorKind {
    /// The plan's format is not this build's.
    Format,
    /// A JMESPath expression.
    Expression,
    /// A template or `when` condition.
    Template,
}

impl std::fmt::Display for PrepareError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.step.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.step, self.message)
        }
    }
}

impl std::error::Error for PrepareError {}

impl Prepared {
    /// Compiles every expression and template of `plan`; `shared` is the runbook's shared
    /// data.
    pub fn new(plan: Plan, shared: Map<String, Value>) -> Result<Prepared, PrepareError> {
        if plan.format != PLAN_FORMAT {
            return Err(PrepareError {
                step: String::new(),
                kind: PrepareErrorKind::Format,
                message: format!(
                    "plan format {} is not {PLAN_FORMAT}: recompile the runbook with this orgop \
                     (and redeploy its state machine)",
                    plan.format
                ),
            });
        }
        let mut templates = Templates::new();
        let steps = prepare_calls(&plan.steps, &mut templates)?;
        let actions = prepare_calls(&plan.actions, &mut templates)?;
        let report_err = |message: String| PrepareError {
            step: "report".into(),
            kind: PrepareErrorKind::Expression,
            message,
        };
        let resource_id = Expr::compile(&plan.report.resource_id).map_err(report_err)?;
        let compile_columns = |columns: &[orgop_plan::Column]| {
            columns
                .iter()
                .map(|c| Ok((c.name.clone(), Expr::compile(&c.expr).map_err(report_err)?)))
                .collect::<Result<Vec<_>, PrepareError>>()
        };
        let columns = compile_columns(&plan.report.columns)?;
        let also = plan
            .report
            .also
            .iter()
            .map(|s| {
                Ok((
                    s.from.clone(),
                    Expr::compile(&s.resource_id).map_err(report_err)?,
                    compile_columns(&s.columns)?,
                ))
            })
            .collect::<Result<Vec<_>, PrepareError>>()?;
        let shared_template = to_template(&Value::Object(shared.clone()));
        Ok(Prepared {
            plan,
            shared: Arc::new(shared),
            shared_template,
            steps,
            actions,
            resource_id,
            columns,
            also,
            templates,
        })
    }

    /// The resource id and columns of the report's source reading step `id`, if it is one.
    pub(crate) fn source_of(&self, id: &str) -> Option<(&Expr, &[(String, Expr)])> {
        if self.plan.report.from == id {
            return Some((&self.resource_id, &self.columns));
        }
        self.also
            .iter()
            .find(|(from, _, _)| from == id)
            .map(|(_, r, c)| (r, c.as_slice()))
    }

    /// The plan.
    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    /// Whether this was prepared from exactly `plan` and `shared` (the Lambda keeps one
    /// prepared plan per warm container and compares each request's with it).
    pub fn is_for(&self, plan: &Plan, shared: &Map<String, Value>) -> bool {
        self.plan == *plan && *self.shared == *shared
    }

    pub(crate) fn step(&self, c: &PreparedCall) -> &CallPlan {
        &self.plan.steps[c.index]
    }

    pub(crate) fn action(&self, c: &PreparedCall) -> &CallPlan {
        &self.plan.actions[c.index]
    }
}

fn prepare_calls(
    calls: &[CallPlan],
    templates: &mut Templates,
) -> Result<Vec<PreparedCall>, PrepareError> {
    calls
        .iter()
        .enumerate()
        .map(|(index, c)| {
            let err = |kind, message| PrepareError {
                step: c.id.clone(),
                kind,
                message,
            };
            let expr = |e: &Option<String>| {
                e.as_deref()
                    .map(Expr::compile)
                    .transpose()
                    .map_err(|m| err(PrepareErrorKind::Expression, m))
            };
            Ok(PreparedCall {
                index,
                when: c
                    .when
                    .as_deref()
                    .map(|w| {
                        let e = templates
                            .expression(w)
                            .map_err(|m| format!("when `{w}`: {m}"))?;
                        Ok::<_, String>((w.to_string(), e))
                    })
                    .transpose()
                    .map_err(|m| err(PrepareErrorKind::Template, m))?,
                parameters: templates
                    .compile(&c.parameters)
                    .map_err(|m| err(PrepareErrorKind::Template, m))?,
                select: expr(&c.select)?,
                where_: expr(&c.where_)?,
                wait: c
                    .wait
                    .as_ref()
                    .map(|w| prepare_wait(w, templates))
                    .transpose()
                    .map_err(|(kind, m)| err(kind, m))?,
            })
        })
        .collect()
}

fn prepare_wait(
    w: &orgop_plan::WaitPlan,
    templates: &mut Templates,
) -> Result<PreparedWait, (PrepareErrorKind, String)> {
    let parameters = templates
        .compile(&w.parameters)
        .map_err(|m| (PrepareErrorKind::Template, format!("wait: {m}")))?;
    let acceptors = w
        .acceptors
        .iter()
        .map(|a| {
            let text = |k: &str| a.get(k).and_then(Value::as_str).unwrap_or_default();
            let argument = a
                .get("argument")
                .and_then(Value::as_str)
                .map(Expr::compile)
                .transpose()
                .map_err(|m| {
                    (
                        PrepareErrorKind::Expression,
                        format!("waiter {}: {m}", w.waiter),
                    )
                })?;
            Ok(PreparedAcceptor {
                matcher: text("matcher").to_string(),
                expected: a.get("expected").cloned().unwrap_or(Value::Null),
                state: text("state").to_string(),
                argument,
            })
        })
        .collect::<Result<_, (PrepareErrorKind, String)>>()?;
    Ok(PreparedWait {
        parameters,
        acceptors,
    })
}
