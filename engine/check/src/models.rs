//! Model checks: every call, parameter and field a runbook reads, against AWS's own models
//! (the botocore models of `orgop-models`, the same the client calls with).
//!
//! - `call:` names a service and operation the models have;
//! - `parameters:` fit the operation's input shape, recursively: member names, required
//!   members, JSON types, `min`/`max`, enums (a warning: models lag AWS); a template is
//!   checked where its type is known (`{{ params.x }}` of a declared type, `{{ shared.k }}`,
//!   `{{ item.Field }}`, text around `{{ }}`: a string), and accepted otherwise;
//! - `paginate: true` names a paginated operation;
//! - JMESPath (`select`, `where`, `report.resource_id` and `columns`) and `item.<field>` in
//!   templates read fields the shapes have: `select` reads the operation's output, `where`
//!   and the report one selected result, `item` one result of the `for_each` step;
//! - `ignore_errors:` codes are modeled errors of the operation or common AWS codes (a
//!   warning, and only where the model lists the operation's errors).
//!
//! Where a type is unknown (a document, a function returning any value, a template of
//! unknown type) checking stops below it: no guesses, so no false alarms. Models load lazily,
//! per service, once per process.
use crate::semantic::Parts;
use crate::suggest;
use jmespath::ast::Ast;
use orgop_awswire::{ShapeKind, ShapeRef, StructureShape, Timestamp};
use orgop_models::{LoadError, ModelRegistry, Service};
use orgop_plan::functions::{self, Returns};
use orgop_plan::templates::{environment, is_template, whole_expression};
use orgop_syntax::model::{ParamType, Step, Wait};
use orgop_syntax::{Diagnostic, Loaded, NodeSpans, Span, pointer_push};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// minijinja's methods of a mapping, which a template may call on `item`.
const TEMPLATE_METHODS: &[&str] = &["items", "keys", "values", "get"];

/// Whether `service:operation` is a call to a global service: one whose endpoint in the
/// `aws` partition is not regional (botocore's `endpoints.json`: `isRegionalized: false`,
/// e.g. IAM, CloudFront, Route 53, Organizations).
pub(crate) fn is_global(service: &str, operation: &str) -> bool {
    static GLOBAL: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    let global = GLOBAL.get_or_init(|| {
        let Ok(bytes) = orgop_models::bundled_endpoints_json() else {
            return Vec::new();
        };
        let v: Value = serde_json::from_slice(&bytes).unwrap_or_default();
        let services = v
            .get("partitions")
            .and_then(Value::as_array)
            .and_then(|ps| {
                ps.iter()
                    .find(|p| p.get("partition") == Some(&Value::from("aws")))
            })
            .and_then(|p| p.get("services"))
            .and_then(Value::as_object);
        services
            .map(|m| {
                m.iter()
                    .filter(|(_, s)| s.get("isRegionalized") == Some(&Value::Bool(false)))
                    .map(|(k, _)| k.clone())
                    .collect()
            })
            .unwrap_or_default()
    });
    orgop_models::global()
        .resolve(service, operation)
        .ok()
        .and_then(|svc| svc.model.metadata().endpoint_prefix.clone())
        .is_some_and(|prefix| global.contains(&prefix))
}

/// AWS's common error codes (the "Common Errors" of the API references) that
/// `orgop_vocab::aws::ERROR_CODES` does not already list: any operation may answer them.
const COMMON_ERRORS: &[&str] = &[
    "IncompleteSignature",
    "InvalidAction",
    "InvalidParameterCombination",
    "InvalidParameterValue",
    "InvalidQueryParameter",
    "MalformedQueryString",
    "MissingAction",
    "MissingAuthenticationToken",
    "MissingParameter",
    "ValidationError",
    "ValidationException",
];

/// The type of a value a runbook reads, as far as the models tell.
#[derive(Clone)]
enum Ty {
    /// Unknown: nothing below it is checked.
    Any,
    Null,
    Bool,
    Num,
    Str,
    List(Box<Ty>),
    /// A structure or map shape of a service's model (lists and scalars are normalized into
    /// the variants above).
    Shape(Arc<Service>, String),
    /// An object a JMESPath multiselect builds (`{Id: Id, Tags: Tags}`): its keys, in order.
    Fields(Vec<(String, Ty)>),
    /// A result with its `for_each` item joined under `key` (`item_as`).
    Joined {
        base: Box<Ty>,
        key: String,
        item: Box<Ty>,
    },
    /// One of these (an item of a step that iterates over several): a field is read where
    /// any of them has it.
    Union(Vec<Ty>),
}

impl Ty {
    /// The type of a value of shape `name` of `svc`.
    fn of(svc: &Arc<Service>, name: &str) -> Ty {
        let Some(shape) = svc.model.shape(name) else {
            return Ty::Any;
        };
        match &shape.kind {
            ShapeKind::Structure(s) if s.document => Ty::Any,
            ShapeKind::Structure(_) | ShapeKind::Map { .. } => {
                Ty::Shape(svc.clone(), name.to_string())
            }
            ShapeKind::List { member } => Ty::List(Box::new(Ty::of(svc, &member.shape))),
            ShapeKind::String { .. }
            | ShapeKind::Character
            | ShapeKind::Blob
            | ShapeKind::Timestamp => Ty::Str,
            ShapeKind::Integer(_) | ShapeKind::Float(_) => Ty::Num,
            ShapeKind::Boolean => Ty::Bool,
        }
    }

    /// The type of a JSON value written in the runbook (`shared`, a literal).
    fn of_json(v: &Value) -> Ty {
        match v {
            Value::Null => Ty::Null,
            Value::Bool(_) => Ty::Bool,
            Value::Number(_) => Ty::Num,
            Value::String(_) => Ty::Str,
            Value::Array(_) | Value::Object(_) => Ty::Any,
        }
    }

    /// The type of a declared parameter.
    fn of_param(t: &ParamType) -> Ty {
        match t {
            ParamType::String => Ty::Str,
            ParamType::Integer | ParamType::Number => Ty::Num,
            ParamType::Boolean => Ty::Bool,
            ParamType::List => Ty::List(Box::new(Ty::Any)),
            ParamType::Object => Ty::Any,
        }
    }

    /// One result of a step whose selection has this type: the interpreter keeps each
    /// element of a list, nothing for null, and any other value as one result.
    fn element(&self) -> Ty {
        match self {
            Ty::List(e) => (**e).clone(),
            other => other.clone(),
        }
    }

    /// How a message names the type.
    fn describe(&self) -> String {
        match self {
            Ty::Any => "a value".into(),
            Ty::Null => "null".into(),
            Ty::Bool => "a boolean".into(),
            Ty::Num => "a number".into(),
            Ty::Str => "a string".into(),
            Ty::List(e) => match &**e {
                Ty::Shape(_, n) => format!("a list of `{n}`"),
                Ty::List(_) => "a list of lists".into(),
                Ty::Any => "a list".into(),
                other => format!("a list of {}s", other.describe().trim_start_matches("a ")),
            },
            Ty::Shape(_, n) => format!("`{n}`"),
            Ty::Fields(f) => format!(
                "an object of {}",
                some_names(&f.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>())
            ),
            Ty::Joined { base, key, .. } => format!("{} joined with `{key}`", base.describe()),
            Ty::Union(ts) => {
                let names: Vec<String> = ts.iter().map(Ty::describe).collect();
                format!("one of {}", names.join(", "))
            }
        }
    }

    /// The item of a step iterating over results of these types.
    fn union(mut types: Vec<Ty>) -> Ty {
        match types.len() {
            0 => Ty::Any,
            1 => types.remove(0),
            _ if types.iter().any(|t| matches!(t, Ty::Any)) => Ty::Any,
            _ => Ty::Union(types),
        }
    }

    /// A field of this type, or why there is none.
    fn field(&self, name: &str) -> Result<Ty, NoField> {
        match self {
            Ty::Any => Ok(Ty::Any),
            Ty::Null => Ok(Ty::Null),
            Ty::Shape(svc, shape) => match svc.model.shape(shape).map(|s| &s.kind) {
                Some(ShapeKind::Structure(s)) => match s.members.get(name) {
                    Some(m) => Ok(Ty::of(svc, &m.shape)),
                    None => Err(NoField::Member {
                        shape: shape.clone(),
                        members: s.members.keys().cloned().collect(),
                    }),
                },
                Some(ShapeKind::Map { value, .. }) => Ok(Ty::of(svc, &value.shape)),
                _ => Ok(Ty::Any),
            },
            Ty::Fields(fields) => match fields.iter().find(|(k, _)| k == name) {
                Some((_, t)) => Ok(t.clone()),
                None => {
                    let members: Vec<String> = fields.iter().map(|(k, _)| k.clone()).collect();
                    Err(NoField::Member {
                        shape: format!("{{{}}}", members.join(", ")),
                        members,
                    })
                }
            },
            Ty::Joined { key, item, .. } if key == name => Ok((**item).clone()),
            Ty::Joined { base, key, .. } => base.field(name).map_err(|e| match e {
                NoField::Member { shape, mut members } => {
                    members.push(key.clone());
                    NoField::Member { shape, members }
                }
                other => other,
            }),
            Ty::Union(ts) => {
                let mut missing: Vec<NoField> = Vec::new();
                let mut found = Vec::new();
                for t in ts {
                    match t.field(name) {
                        Ok(f) => found.push(f),
                        Err(e) => missing.push(e),
                    }
                }
                if !found.is_empty() {
                    return Ok(Ty::union(found));
                }
                // None has it: name them all, with every field any of them has.
                let (mut shapes, mut members) = (Vec::new(), Vec::new());
                for e in &missing {
                    if let NoField::Member { shape, members: m } = e {
                        if !shapes.contains(shape) {
                            shapes.push(shape.clone());
                        }
                        for n in m {
                            if !members.contains(n) {
                                members.push(n.clone());
                            }
                        }
                    }
                }
                match shapes.len() {
                    0 | 1 => Err(missing.remove(0)),
                    _ => Err(NoField::Member {
                        shape: shapes.join("` or `"),
                        members,
                    }),
                }
            }
            other => Err(NoField::NotAnObject(other.clone())),
        }
    }
}

/// Why a field cannot be read.
enum NoField {
    /// The structure has no such member.
    Member { shape: String, members: Vec<String> },
    /// Fields of a list or a scalar are always null.
    NotAnObject(Ty),
}

impl NoField {
    /// The error for reading field `name` at `at`; `whence` says what was read
    /// (` (one result of `ec2:DescribeVolumes`)`), `inside` where (`, in `where``).
    fn diagnostic(
        &self,
        file: &str,
        at: Span,
        name: &str,
        whence: &str,
        inside: &str,
    ) -> Diagnostic {
        match self {
            NoField::Member { shape, members } => {
                let d = Diagnostic::error(
                    file,
                    at,
                    format!("`{shape}` has no field `{name}`{whence}{inside}"),
                );
                let hint = suggest::did_you_mean(name, members.iter().map(String::as_str))
                    .unwrap_or_else(|| format!("`{shape}` has {}", some_names(members)));
                d.with_hint(hint)
            }
            NoField::NotAnObject(t @ Ty::List(_)) => Diagnostic::error(
                file,
                at,
                format!(
                    "`{name}` is read from {}{whence}{inside}: a field of a list is always null",
                    t.describe()
                ),
            )
            .with_hint(format!(
                "project over the list: `[].{name}` (or `[*].{name}`)"
            )),
            NoField::NotAnObject(t) => Diagnostic::error(
                file,
                at,
                format!(
                    "`{name}` is read from {}{whence}{inside}: it has no fields, so this is always null",
                    t.describe()
                ),
            ),
        }
    }
}

/// Up to ten names, for a hint.
fn some_names(names: &[String]) -> String {
    let shown: Vec<String> = names.iter().take(10).map(|n| format!("`{n}`")).collect();
    let more = names.len().saturating_sub(10);
    match (shown.is_empty(), more) {
        (true, _) => "no fields".into(),
        (false, 0) => shown.join(", "),
        (false, n) => format!("{}, and {n} more", shown.join(", ")),
    }
}

/// Every model problem in a runbook whose other checks `parts` holds.
pub(crate) fn check(
    file: &str,
    loaded: &Loaded,
    parts: &Parts,
    registry: &ModelRegistry,
) -> Vec<Diagnostic> {
    let mut c = Checker {
        file,
        loaded,
        registry,
        params: parts
            .params
            .iter()
            .filter_map(|(k, s)| s.as_ref().map(|s| (k.clone(), Ty::of_param(&s.ty))))
            .collect(),
        shared: parts.shared.clone().unwrap_or_default(),
        results: HashMap::new(),
        out: Vec::new(),
    };
    for (section, list) in [("steps", &parts.steps), ("actions", &parts.actions)] {
        for (i, step, _) in list {
            if let Some(step) = step {
                let base = format!("/{section}/{i}");
                let element = c.call(&base, step);
                c.results.insert(step.id.clone(), element);
            }
        }
    }
    if let Some(report) = &parts.report {
        let sources = std::iter::once((
            "/report".to_string(),
            &report.from,
            &report.resource_id,
            &report.columns,
        ))
        .chain(report.also.iter().enumerate().map(|(i, s)| {
            (
                format!("/report/also/{i}"),
                &s.from,
                &s.resource_id,
                &s.columns,
            )
        }));
        for (base, from, resource_id, columns) in sources {
            let row = c.results.get(from).cloned().unwrap_or(Ty::Any);
            let whence = format!(" (a result of `{from}`)");
            c.jmespath(
                resource_id,
                &pointer_push(&base, "resource_id"),
                "resource_id",
                &row,
                &whence,
            );
            for (name, expr) in columns {
                c.jmespath(
                    expr,
                    &pointer_push(&pointer_push(&base, "columns"), name),
                    &format!("columns.{name}"),
                    &row,
                    &whence,
                );
            }
        }
    }
    c.out
}

struct Checker<'a> {
    file: &'a str,
    loaded: &'a Loaded,
    registry: &'a ModelRegistry,
    /// Declared parameters' types.
    params: BTreeMap<String, Ty>,
    shared: serde_json::Map<String, Value>,
    /// The type of one result of each step and action checked so far, by id.
    results: HashMap<String, Ty>,
    out: Vec<Diagnostic>,
}

/// An operation found in the models.
struct Op {
    svc: Arc<Service>,
    name: String,
    /// `service:Operation` as the runbook wrote it.
    call: String,
}

impl Op {
    fn operation(&self) -> &orgop_awswire::Operation {
        self.svc
            .operation(&self.name)
            .expect("resolved operations exist")
    }
}

impl Checker<'_> {
    fn node(&self, pointer: &str) -> NodeSpans {
        self.loaded.spans.resolve(pointer)
    }

    /// One step or action at `base`; returns the type of one of its results.
    fn call(&mut self, base: &str, step: &Step) -> Ty {
        let Some(op) = self.resolve(base, &step.call) else {
            return Ty::Any;
        };
        let item = match &step.for_each {
            Some(f) => Ty::union(
                f.ids()
                    .iter()
                    .map(|id| self.results.get(id).cloned().unwrap_or(Ty::Any))
                    .collect(),
            ),
            None => Ty::Any,
        };
        self.paginate(base, &op);
        self.parameters(base, step, &op, &item);
        self.item_reads(base, step, &item);
        self.ignore_errors(base, step, &op);
        let output = match &op.operation().output {
            Some(r) => Ty::of(&op.svc, &r.shape),
            None => Ty::Any,
        };
        if let Some(w) = &step.wait {
            self.wait(base, w, &op, &item, &output);
        }
        let whence = format!(" (the response of `{}`)", op.call);
        let chosen = match &step.select {
            Some(expr) => self.jmespath(
                expr,
                &pointer_push(base, "select"),
                "select",
                &output,
                &whence,
            ),
            None => output,
        };
        let mut element = chosen.element();
        if let (Some(key), Some(_)) = (&step.item_as, &step.for_each) {
            element = self.item_as(base, key, element, item.clone(), &op);
        }
        if let Some(expr) = &step.where_ {
            let whence = format!(" (one result of `{}`)", op.call);
            self.jmespath(
                expr,
                &pointer_push(base, "where"),
                "where",
                &element,
                &whence,
            );
        }
        // A step with a key the schema rejects (`selcet`) was read without it: what its
        // results are is a guess, so what reads them is not checked (the key is reported).
        let known = crate::schema::properties_of("Step");
        let unknown_key = self
            .loaded
            .value
            .pointer(base)
            .and_then(Value::as_object)
            .is_some_and(|o| o.keys().any(|k| !known.iter().any(|n| n == k)));
        if unknown_key { Ty::Any } else { element }
    }

    /// One result of a step joined with its item under `key`: results must be objects
    /// without a field of that name.
    fn item_as(&mut self, base: &str, key: &str, element: Ty, item: Ty, op: &Op) -> Ty {
        let node = self.node(&pointer_push(base, "item_as"));
        let object = match &element {
            Ty::Shape(svc, name) => !matches!(
                svc.model.shape(name).map(|s| &s.kind),
                Some(ShapeKind::Structure(s)) if s.document
            ),
            Ty::Any | Ty::Fields(_) | Ty::Joined { .. } | Ty::Union(_) => true,
            Ty::Null | Ty::Bool | Ty::Num | Ty::Str | Ty::List(_) => false,
        };
        if !object {
            self.out.push(
                Diagnostic::error(
                    self.file,
                    node.value,
                    format!(
                        "`item_as: {key}` joins the item into each result, but each result of `{}` is {}",
                        op.call,
                        element.describe()
                    ),
                )
                .with_hint("select an object for each result, e.g. `{Tags: Tags}` or `Things[].{Id: Id}`"),
            );
            return Ty::Any;
        }
        let collides = match &element {
            Ty::Shape(svc, name) => matches!(
                svc.model.shape(name).map(|s| &s.kind),
                Some(ShapeKind::Structure(s)) if s.members.contains_key(key)
            ),
            Ty::Fields(fields) => fields.iter().any(|(k, _)| k == key),
            _ => false,
        };
        if collides {
            self.out.push(
                Diagnostic::error(
                    self.file,
                    node.value,
                    format!("each result of `{}` already has a field `{key}`", op.call),
                )
                .with_hint("choose a key the results do not have"),
            );
        }
        Ty::Joined {
            base: Box::new(element),
            key: key.to_string(),
            item: Box::new(item),
        }
    }

    /// The service and operation of `call`, or a located error.
    fn resolve(&mut self, base: &str, call: &str) -> Option<Op> {
        let (service, operation) = call.split_once(':')?;
        let node = self.node(&pointer_push(base, "call"));
        match self.registry.resolve(service, operation) {
            Ok(svc) => Some(Op {
                svc,
                name: operation.to_string(),
                call: call.to_string(),
            }),
            Err(LoadError::Unknown(u)) => {
                let d = Diagnostic::error(
                    self.file,
                    node.value,
                    format!("unknown service `{service}` in `{call}`"),
                );
                let hint = match u.suggestions.first() {
                    Some(s) => format!("did you mean `{s}`?"),
                    None => format!(
                        "orgop has the models of {} services (`orgop call --list`); add others with {}",
                        self.registry.service_names().len(),
                        orgop_models::MODELS_DIR_ENV
                    ),
                };
                self.out.push(d.with_hint(hint));
                None
            }
            Err(LoadError::UnknownOperation {
                service: svc,
                source,
            }) => {
                let p = node.inside(call, service.len() + 1);
                let d = Diagnostic::error(
                    self.file,
                    Span { start: p, end: p },
                    format!("`{svc}` has no operation `{operation}`"),
                );
                self.out.push(match source.suggestions.first() {
                    Some(s) => d.with_hint(format!("did you mean `{s}`?")),
                    None => d.with_hint(
                        "operations are named as in the API reference and IAM: `ec2:DescribeVolumes`",
                    ),
                });
                None
            }
            Err(e @ LoadError::Invalid { .. }) => {
                self.out.push(Diagnostic::error(
                    self.file,
                    node.value,
                    format!("cannot check `{call}`: {e}"),
                ));
                None
            }
        }
    }

    /// An explicit `paginate: true` on an operation without a paginator.
    fn paginate(&mut self, base: &str, op: &Op) {
        let pointer = pointer_push(base, "paginate");
        if self.loaded.value.pointer(&pointer) == Some(&Value::Bool(true))
            && op.svc.paginators.get(&op.name).is_none()
        {
            self.out.push(
                Diagnostic::error(
                    self.file,
                    self.node(&pointer).value,
                    format!(
                        "`{}` is not paginated: there are no pages to follow",
                        op.call
                    ),
                )
                .with_hint("remove `paginate: true`"),
            );
        }
    }

    /// `parameters` against the operation's input shape.
    fn parameters(&mut self, base: &str, step: &Step, op: &Op, item: &Ty) {
        let pointer = pointer_push(base, "parameters");
        let given = Value::Object(step.parameters.clone().into_iter().collect());
        let Some(input) = op.operation().input.clone() else {
            for k in step.parameters.keys() {
                self.out.push(
                    Diagnostic::error(
                        self.file,
                        self.node(&pointer_push(&pointer, k)).key_or_value(),
                        format!("`{}` takes no parameters, not `{k}`", op.call),
                    )
                    .with_hint("remove it"),
                );
            }
            return;
        };
        // Missing required parameters are reported where the parameters are, or at the call.
        let at = if self.loaded.value.pointer(&pointer).is_some() {
            pointer.clone()
        } else {
            pointer_push(base, "call")
        };
        let p = Params {
            op,
            item,
            response: None,
        };
        self.value(&p, &input, &given, &pointer, "", Some(&at));
    }

    /// One parameter value (at `pointer`, API path `path`) against the shape `r` refers to.
    /// `missing_at`: where to report missing required members (the parameters' own node for
    /// the top level).
    fn value(
        &mut self,
        p: &Params<'_>,
        r: &ShapeRef,
        v: &Value,
        pointer: &str,
        path: &str,
        missing_at: Option<&str>,
    ) {
        let svc = p.op.svc.clone();
        let Some(shape) = svc.model.shape(&r.shape) else {
            return;
        };
        if let Value::String(s) = v
            && is_template(s)
        {
            let got = match whole_expression(s) {
                Some(expr) => self.template_type(expr, p.item, p.response),
                None => Ty::Str,
            };
            self.template_fits(
                p,
                shape,
                r,
                &got,
                whole_expression(s).is_none(),
                pointer,
                path,
            );
            return;
        }
        let wrong = |me: &mut Self, expected: &str| {
            me.out.push(
                Diagnostic::error(
                    me.file,
                    me.node(pointer).value,
                    format!(
                        "`{}` of `{}` needs {expected}, not {}",
                        display_path(path),
                        p.op.call,
                        json_kind(v)
                    ),
                )
                .with_hint(format!("see the `{}` shape in the API reference", r.shape)),
            )
        };
        match (&shape.kind, v) {
            (_, Value::Null) => {}
            (ShapeKind::Structure(s), _) if s.document => {}
            (ShapeKind::Structure(s), Value::Object(obj)) => {
                self.structure(p, s, obj, pointer, path, missing_at.unwrap_or(pointer))
            }
            (ShapeKind::Structure(_), _) => wrong(self, "a mapping"),
            (ShapeKind::List { member }, Value::Array(items)) => {
                self.range(p, shape, "items", items.len() as f64, pointer, path);
                for (i, x) in items.iter().enumerate() {
                    self.value(
                        p,
                        member,
                        x,
                        &pointer_push(pointer, &i.to_string()),
                        &format!("{path}[{i}]"),
                        None,
                    );
                }
            }
            (ShapeKind::List { .. }, _) => wrong(self, "a list"),
            (ShapeKind::Map { value, .. }, Value::Object(entries)) => {
                self.range(p, shape, "entries", entries.len() as f64, pointer, path);
                for (k, x) in entries {
                    self.value(p, value, x, &pointer_push(pointer, k), &join(path, k), None);
                }
            }
            (ShapeKind::Map { .. }, _) => wrong(self, "a mapping"),
            (ShapeKind::String { enum_values }, Value::String(s)) => {
                if r.traits.jsonvalue != Some(true) {
                    self.range(
                        p,
                        shape,
                        "characters",
                        s.chars().count() as f64,
                        pointer,
                        path,
                    );
                }
                if !enum_values.is_empty() && !enum_values.iter().any(|e| e == s) {
                    let mut d = Diagnostic::warning(
                        self.file,
                        self.node(pointer).value,
                        format!(
                            "`{s}` is not a value the model lists for `{}` of `{}`",
                            display_path(path),
                            p.op.call
                        ),
                    );
                    d.hint = suggest::did_you_mean(s, enum_values.iter().map(String::as_str))
                        .or_else(|| Some(format!("the model lists {}", some_names(enum_values))));
                    self.out.push(d);
                }
            }
            (ShapeKind::String { .. } | ShapeKind::Character, _)
                if r.traits.jsonvalue == Some(true) => {}
            (ShapeKind::String { .. } | ShapeKind::Character, _) => wrong(self, "a string"),
            (ShapeKind::Blob, Value::String(s)) => {
                self.range(p, shape, "bytes", s.len() as f64, pointer, path)
            }
            (ShapeKind::Blob, _) => wrong(self, "a string (bytes)"),
            (ShapeKind::Boolean, Value::Bool(_)) => {}
            (ShapeKind::Boolean, _) => wrong(self, "`true` or `false`"),
            (ShapeKind::Integer(_), Value::Number(n)) if n.is_i64() || n.is_u64() => {
                self.range(p, shape, "value", n.as_f64().unwrap_or(0.0), pointer, path)
            }
            (ShapeKind::Integer(_), _) => wrong(self, "an integer"),
            (ShapeKind::Float(_), Value::Number(n)) => {
                self.range(p, shape, "value", n.as_f64().unwrap_or(0.0), pointer, path)
            }
            (ShapeKind::Float(_), _) => wrong(self, "a number"),
            (ShapeKind::Timestamp, Value::Number(_)) => {}
            (ShapeKind::Timestamp, Value::String(s)) if Timestamp::parse(s).is_some() => {}
            (ShapeKind::Timestamp, _) => wrong(
                self,
                "a timestamp (RFC 3339, e.g. `2026-01-31T00:00:00Z`, or epoch seconds)",
            ),
        }
    }

    /// A structure's members: known, required ones present, one member of a union.
    fn structure(
        &mut self,
        p: &Params<'_>,
        s: &StructureShape,
        obj: &serde_json::Map<String, Value>,
        pointer: &str,
        path: &str,
        missing_at: &str,
    ) {
        for (k, x) in obj {
            let here = pointer_push(pointer, k);
            match s.members.get(k) {
                Some(m) => self.value(p, m, x, &here, &join(path, k), None),
                None => {
                    let mut d = Diagnostic::error(
                        self.file,
                        self.node(&here).key_or_value(),
                        format!(
                            "`{}` is not a parameter of `{}`",
                            display_path(&join(path, k)),
                            p.op.call
                        ),
                    );
                    let names: Vec<String> = s.members.keys().cloned().collect();
                    d.hint = suggest::did_you_mean(k, names.iter().map(String::as_str))
                        .or_else(|| Some(format!("it takes {}", some_names(&names))));
                    self.out.push(d);
                }
            }
        }
        for req in &s.required {
            let present = obj.get(req).is_some_and(|x| !x.is_null());
            let token = s
                .members
                .get(req)
                .is_some_and(|m| m.traits.idempotency_token == Some(true));
            if !present && !token {
                self.out.push(
                    Diagnostic::error(
                        self.file,
                        self.node(missing_at).key_or_value(),
                        format!(
                            "`{}` is missing the required parameter `{}`",
                            p.op.call,
                            display_path(&join(path, req))
                        ),
                    )
                    .with_hint(format!("add `{req}:`")),
                );
            }
        }
        if s.union {
            let set = obj
                .iter()
                .filter(|(k, x)| !x.is_null() && s.members.contains_key(*k))
                .count();
            if set != 1 {
                self.out.push(Diagnostic::error(
                    self.file,
                    self.node(pointer).key_or_value(),
                    format!(
                        "`{}` of `{}` takes exactly one of {}, not {set}",
                        display_path(path),
                        p.op.call,
                        some_names(&s.members.keys().cloned().collect::<Vec<_>>())
                    ),
                ));
            }
        }
    }

    /// `min`/`max` of a shape.
    fn range(
        &mut self,
        p: &Params<'_>,
        shape: &orgop_awswire::Shape,
        unit: &str,
        actual: f64,
        pointer: &str,
        path: &str,
    ) {
        let bound = match (shape.min, shape.max) {
            (Some(min), _) if actual < min => Some(("at least", min)),
            (_, Some(max)) if actual > max => Some(("at most", max)),
            _ => None,
        };
        if let Some((which, limit)) = bound {
            let at = self.node(pointer);
            let span = if unit == "value" || unit == "characters" || unit == "bytes" {
                at.value
            } else {
                at.key_or_value()
            };
            let what = match unit {
                "value" => format!("{which} {limit}"),
                // "at least 1 characters" reads badly.
                _ if limit == 1.0 => format!("{which} 1 {}", unit.trim_end_matches('s')),
                _ => format!("{which} {limit} {unit}"),
            };
            self.out.push(Diagnostic::error(
                self.file,
                span,
                format!(
                    "`{}` of `{}` must be {what}, not {actual}",
                    display_path(path),
                    p.op.call
                ),
            ));
        }
    }

    /// The type of a whole-expression template (`{{ expr }}`) where it is a plain path into
    /// something typed: `params.x`, `shared.k`, `item.Field...`; otherwise unknown.
    fn template_type(&self, expr: &str, item: &Ty, response: Option<&Ty>) -> Ty {
        let expr = expr.trim();
        let mut parts = expr.split('.');
        let head = parts.next().unwrap_or_default();
        let rest: Vec<&str> = parts.collect();
        let plain = |s: &str| {
            !s.is_empty()
                && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                && !s.starts_with(|c: char| c.is_ascii_digit())
        };
        if !plain(head) || !rest.iter().all(|s| plain(s)) {
            return Ty::Any;
        }
        let mut t = match (head, rest.first()) {
            ("params", Some(name)) => self.params.get(*name).cloned().unwrap_or(Ty::Any),
            ("shared", Some(key)) => self.shared.get(*key).map(Ty::of_json).unwrap_or(Ty::Any),
            ("item", Some(_)) => item.clone(),
            ("response", Some(_)) => response.cloned().unwrap_or(Ty::Any),
            _ => return Ty::Any,
        };
        let walk = if head == "item" || head == "response" {
            &rest[..]
        } else {
            &rest[1..]
        };
        for f in walk {
            t = t.field(f).unwrap_or(Ty::Any);
        }
        t
    }

    /// A template's value fits the shape, where its type is known.
    #[allow(clippy::too_many_arguments)]
    fn template_fits(
        &mut self,
        p: &Params<'_>,
        shape: &orgop_awswire::Shape,
        r: &ShapeRef,
        got: &Ty,
        text: bool,
        pointer: &str,
        path: &str,
    ) {
        let fits = match (&shape.kind, got) {
            (_, Ty::Any | Ty::Null) => true,
            (ShapeKind::Structure(s), _) if s.document => true,
            (ShapeKind::String { .. } | ShapeKind::Character, _)
                if r.traits.jsonvalue == Some(true) =>
            {
                true
            }
            (ShapeKind::String { .. } | ShapeKind::Character | ShapeKind::Blob, Ty::Str) => true,
            (ShapeKind::Timestamp, Ty::Str | Ty::Num) => true,
            (ShapeKind::Integer(_) | ShapeKind::Float(_), Ty::Num) => true,
            (ShapeKind::Boolean, Ty::Bool) => true,
            (ShapeKind::List { .. }, Ty::List(_)) => true,
            (
                ShapeKind::Structure(_) | ShapeKind::Map { .. },
                Ty::Shape(..) | Ty::Fields(_) | Ty::Joined { .. },
            ) => true,
            (_, Ty::Union(_)) => true,
            _ => false,
        };
        if fits {
            return;
        }
        let expected = match &shape.kind {
            ShapeKind::Structure(_) | ShapeKind::Map { .. } => "a mapping",
            ShapeKind::List { .. } => "a list",
            ShapeKind::String { .. } | ShapeKind::Character => "a string",
            ShapeKind::Blob => "a string (bytes)",
            ShapeKind::Boolean => "`true` or `false`",
            ShapeKind::Integer(_) => "an integer",
            ShapeKind::Float(_) => "a number",
            ShapeKind::Timestamp => "a timestamp",
        };
        let d = Diagnostic::error(
            self.file,
            self.node(pointer).value,
            format!(
                "`{}` of `{}` needs {expected}, but this template gives {}",
                display_path(path),
                p.op.call,
                got.describe()
            ),
        );
        self.out.push(if text {
            d.with_hint(
                "text around `{{ }}` always renders a string; write exactly `{{ expr }}` to keep the expression's type",
            )
        } else {
            d.with_hint("convert it in the template, or pass a value of that type")
        });
    }

    /// `item.<field>...` in the step's templates and `when`, against one result of its
    /// `for_each` step.
    fn item_reads(&mut self, base: &str, step: &Step, item: &Ty) {
        let Some(from) = &step.for_each else { return };
        if matches!(item, Ty::Any) {
            return;
        }
        let whence = format!(" (`item` is one result of `{}`)", from.ids().join("` or `"));
        let mut texts: Vec<(String, String)> = Vec::new();
        collect_templates(
            &Value::Object(step.parameters.clone().into_iter().collect()),
            &pointer_push(base, "parameters"),
            &mut texts,
        );
        if let Some(when) = &step.when {
            texts.push((pointer_push(base, "when"), format!("{{{{ {when} }}}}")));
        }
        let when = step.when.clone().unwrap_or_default();
        self.reads(&texts, "item", item, &whence, 3, &when);
    }

    /// The `<var>.<field>...` paths the templates `texts` (pointer, text) read, against
    /// `ty`. A text at a pointer ending in `/when` is `when_source` wrapped in `{{ }}`, its
    /// positions `shift` characters off.
    fn reads(
        &mut self,
        texts: &[(String, String)],
        var: &str,
        ty: &Ty,
        whence: &str,
        shift: usize,
        when_source: &str,
    ) {
        for (pointer, text) in texts {
            let node = self.node(pointer);
            let (source, shift) = if pointer.ends_with("/when") {
                (when_source.to_string(), shift)
            } else {
                (text.clone(), 0)
            };
            for name in var_paths(text, var) {
                let mut t = ty.clone();
                let mut read = var.to_string();
                for f in name.split('.').skip(1) {
                    match t.field(f) {
                        Ok(next) => {
                            t = next;
                            read.push('.');
                            read.push_str(f);
                        }
                        // In a template, `.x` of a string or list may be a method
                        // (`item.VolumeId.upper()`), and so may a mapping's `items`, `keys`,
                        // `values` and `get`: the names alone cannot tell, so stop there.
                        Err(NoField::NotAnObject(_)) => break,
                        Err(NoField::Member { .. }) if TEMPLATE_METHODS.contains(&f) => break,
                        Err(e) => {
                            let byte = text
                                .find(&format!("{read}.{f}"))
                                .map(|b| b + read.len() + 1);
                            let chars = byte
                                .map(|b| text[..b].chars().count().saturating_sub(shift))
                                .unwrap_or(0);
                            let pos = node.inside(&source, chars);
                            self.out.push(e.diagnostic(
                                self.file,
                                Span {
                                    start: pos,
                                    end: pos,
                                },
                                f,
                                whence,
                                "",
                            ));
                            break;
                        }
                    }
                }
            }
        }
    }

    /// `wait:`: a waiter of the action's service, its parameters against the polled
    /// operation's input, and the `item.` / `response.` fields they read.
    fn wait(&mut self, base: &str, w: &Wait, op: &Op, item: &Ty, response: &Ty) {
        let wbase = pointer_push(base, "wait");
        let Some(waiter) = op.svc.waiters.get(&w.waiter) else {
            let names: Vec<String> = op.svc.waiters.names().map(str::to_string).collect();
            let d = Diagnostic::error(
                self.file,
                self.node(&pointer_push(&wbase, "waiter")).value,
                format!("`{}` has no waiter `{}`", op.svc.name, w.waiter),
            );
            let hint = if names.is_empty() {
                format!("botocore defines no waiters for `{}`", op.svc.name)
            } else {
                suggest::did_you_mean(&w.waiter, names.iter().map(String::as_str))
                    .unwrap_or_else(|| format!("its waiters: {}", some_names(&names)))
            };
            self.out.push(d.with_hint(hint));
            return;
        };
        let service = op.call.split(':').next().unwrap_or_default();
        let poll = Op {
            svc: op.svc.clone(),
            name: waiter.operation.clone(),
            call: format!("{service}:{}", waiter.operation),
        };
        let Some(input) = poll
            .svc
            .operation(&poll.name)
            .ok()
            .and_then(|o| o.input.clone())
        else {
            return;
        };
        let pointer = pointer_push(&wbase, "parameters");
        let at = if self.loaded.value.pointer(&pointer).is_some() {
            pointer.clone()
        } else {
            pointer_push(&wbase, "waiter")
        };
        let given = Value::Object(w.parameters.clone().into_iter().collect());
        let p = Params {
            op: &poll,
            item,
            response: Some(response),
        };
        self.value(&p, &input, &given, &pointer, "", Some(&at));
        let mut texts = Vec::new();
        collect_templates(&given, &pointer, &mut texts);
        let whence = format!(" (`response` is the answer of `{}`)", op.call);
        self.reads(&texts, "response", response, &whence, 0, "");
        if !matches!(item, Ty::Any) {
            self.reads(
                &texts,
                "item",
                item,
                " (`item` is one result of the `for_each` step)",
                0,
                "",
            );
        }
    }

    /// `ignore_errors` codes the operation's model does not list (a warning).
    fn ignore_errors(&mut self, base: &str, step: &Step, op: &Op) {
        let operation = op.operation();
        // Where the model lists no errors for the operation (all of EC2), it cannot tell.
        if operation.errors.is_empty() {
            return;
        }
        for (i, code) in step.ignore_errors.iter().enumerate() {
            let known = op.svc.model.error_shape(operation, code).is_some()
                || orgop_vocab::aws::ERROR_CODES.iter().any(|(c, _)| c == code)
                || COMMON_ERRORS.contains(&code.as_str())
                || orgop_vocab::Code::from_name(code).is_some();
            if known {
                continue;
            }
            let modeled: Vec<String> = operation
                .errors
                .iter()
                .filter_map(|r| {
                    let s = op.svc.model.shape(&r.shape)?;
                    Some(
                        s.error
                            .as_ref()
                            .and_then(|e| e.code.clone())
                            .unwrap_or_else(|| r.shape.clone()),
                    )
                })
                .collect();
            let mut d = Diagnostic::warning(
                self.file,
                self.node(&pointer_push(
                    &pointer_push(base, "ignore_errors"),
                    &i.to_string(),
                ))
                .value,
                format!(
                    "`{code}` is neither an error the model lists for `{}` nor a common AWS error code",
                    op.call
                ),
            );
            d.hint = suggest::did_you_mean(code, modeled.iter().map(String::as_str))
                .or_else(|| Some(format!("the model lists {}", some_names(&modeled))));
            self.out.push(d);
        }
    }

    /// A JMESPath expression at `pointer` read from a value of type `input`; returns the type
    /// of its result. Syntax errors are reported elsewhere: an expression that does not parse
    /// is skipped here.
    fn jmespath(&mut self, expr: &str, pointer: &str, what: &str, input: &Ty, whence: &str) -> Ty {
        if orgop_plan::limits::jmespath_prescan(expr).is_err() {
            return Ty::Any;
        }
        let Ok(ast) = jmespath::parse(expr) else {
            return Ty::Any;
        };
        if orgop_plan::limits::jmespath_depth(&ast).is_err() {
            return Ty::Any;
        }
        let node = self.node(pointer);
        let mut j = Jmes {
            file: self.file,
            text: expr,
            node: &node,
            what,
            whence,
            params: &self.params,
            shared: &self.shared,
            top: true,
            out: Vec::new(),
        };
        let t = j.ty(&ast, input);
        let found = j.out;
        self.out.extend(found);
        t
    }
}

/// What one call's parameters are checked against.
struct Params<'a> {
    op: &'a Op,
    item: &'a Ty,
    /// The action's answer, in the parameters of its `wait:`.
    response: Option<&'a Ty>,
}

/// Types one JMESPath expression, reporting the fields its input does not have.
struct Jmes<'a> {
    file: &'a str,
    text: &'a str,
    node: &'a NodeSpans,
    what: &'a str,
    /// What the expression's input is, for messages (` (the response of `ec2:X`)`).
    whence: &'a str,
    params: &'a BTreeMap<String, Ty>,
    shared: &'a serde_json::Map<String, Value>,
    /// Still reading the expression's input (not a value derived from it).
    top: bool,
    out: Vec<Diagnostic>,
}

impl Jmes<'_> {
    fn at(&self, offset: usize) -> Span {
        let p = self.node.inside(self.text, offset);
        Span { start: p, end: p }
    }

    fn not_a_list(&mut self, offset: usize, op: &str, t: &Ty) {
        let d = Diagnostic::error(
            self.file,
            self.at(offset),
            format!(
                "`{op}` in `{}` applies to a list, but this is {}: the result is always null",
                self.what,
                t.describe()
            ),
        );
        self.out.push(d);
    }

    fn ty(&mut self, ast: &Ast, cur: &Ty) -> Ty {
        match ast {
            Ast::Identity { .. } => cur.clone(),
            Ast::Field { offset, name } => match cur.field(name) {
                Ok(t) => t,
                Err(e) => {
                    let whence = if self.top {
                        self.whence.to_string()
                    } else {
                        String::new()
                    };
                    let inside = format!(", in `{}`", self.what);
                    let d = e.diagnostic(self.file, self.at(*offset), name, &whence, &inside);
                    self.out.push(d);
                    Ty::Any
                }
            },
            Ast::Subexpr { lhs, rhs, .. } => {
                let l = self.ty(lhs, cur);
                self.inner(|j| j.ty(rhs, &l))
            }
            Ast::Index { offset, .. } => match cur {
                Ty::List(e) => (**e).clone(),
                Ty::Any | Ty::Null => cur.clone(),
                Ty::Union(_) => Ty::Any,
                other => {
                    self.not_a_list(*offset, "[n]", other);
                    Ty::Any
                }
            },
            Ast::Slice { offset, .. } => match cur {
                Ty::List(_) | Ty::Any | Ty::Null => cur.clone(),
                Ty::Union(_) => Ty::Any,
                other => {
                    self.not_a_list(*offset, "[a:b]", other);
                    Ty::Any
                }
            },
            Ast::Projection { offset, lhs, rhs } => {
                let l = self.ty(lhs, cur);
                match l {
                    Ty::List(e) => Ty::List(Box::new(self.inner(|j| j.ty(rhs, &e)))),
                    Ty::Any => {
                        self.inner(|j| j.ty(rhs, &Ty::Any));
                        Ty::Any
                    }
                    Ty::Null => Ty::Null,
                    Ty::Union(_) => {
                        self.inner(|j| j.ty(rhs, &Ty::Any));
                        Ty::Any
                    }
                    other => {
                        self.not_a_list(*offset, "[*]", &other);
                        Ty::Any
                    }
                }
            }
            Ast::Flatten { offset, node } => match self.ty(node, cur) {
                Ty::List(e) => match *e {
                    Ty::List(inner) => Ty::List(inner),
                    Ty::Any => Ty::List(Box::new(Ty::Any)),
                    other => Ty::List(Box::new(other)),
                },
                t @ (Ty::Any | Ty::Null) => t,
                Ty::Union(_) => Ty::Any,
                other => {
                    self.not_a_list(*offset, "[]", &other);
                    Ty::Any
                }
            },
            Ast::ObjectValues { node, .. } => match self.ty(node, cur) {
                Ty::Shape(svc, name) => match svc.model.shape(&name).map(|s| &s.kind) {
                    Some(ShapeKind::Map { value, .. }) => {
                        Ty::List(Box::new(Ty::of(&svc, &value.shape)))
                    }
                    _ => Ty::List(Box::new(Ty::Any)),
                },
                _ => Ty::Any,
            },
            Ast::Condition {
                predicate, then, ..
            } => {
                self.ty(predicate, cur);
                self.ty(then, cur)
            }
            Ast::Comparison { lhs, rhs, .. } => {
                self.ty(lhs, cur);
                self.ty(rhs, cur);
                Ty::Bool
            }
            Ast::Or { lhs, rhs, .. } => {
                let l = self.ty(lhs, cur);
                self.ty(rhs, cur);
                // `Tags || `[]``: the left value, or a default with no fields to read.
                match &**rhs {
                    Ast::Literal { value, .. } if is_empty_default(value) => l,
                    _ => Ty::Any,
                }
            }
            Ast::And { lhs, rhs, .. } => {
                self.ty(lhs, cur);
                self.ty(rhs, cur);
                Ty::Any
            }
            Ast::Not { node, .. } => {
                self.ty(node, cur);
                Ty::Bool
            }
            Ast::Literal { value, .. } => match serde_json::to_value(&**value) {
                Ok(v) => Ty::of_json(&v),
                Err(_) => Ty::Any,
            },
            Ast::MultiList { elements, .. } => {
                for e in elements {
                    self.ty(e, cur);
                }
                Ty::List(Box::new(Ty::Any))
            }
            Ast::MultiHash { elements, .. } => Ty::Fields(
                elements
                    .iter()
                    .map(|kv| (kv.key.clone(), self.ty(&kv.value, cur)))
                    .collect(),
            ),
            Ast::Expref { ast, .. } => {
                self.inner(|j| j.ty(ast, &Ty::Any));
                Ty::Any
            }
            Ast::Function { name, args, .. } => self.function(name, args, cur),
        }
    }

    /// Types `f` as reading a value derived from the input (messages then do not say the
    /// field is missing from the input itself).
    fn inner(&mut self, f: impl FnOnce(&mut Self) -> Ty) -> Ty {
        let top = std::mem::replace(&mut self.top, false);
        let t = f(self);
        self.top = top;
        t
    }

    fn function(&mut self, name: &str, args: &[Ast], cur: &Ty) -> Ty {
        let Some(sig) = functions::function(name) else {
            for a in args {
                self.ty(a, cur);
            }
            return Ty::Any;
        };
        // Expression references (`&Field`) read the elements of the list argument.
        let list_arg = match name {
            "map" => Some(1),
            "sort_by" | "max_by" | "min_by" => Some(0),
            _ => None,
        };
        let mut types: Vec<Ty> = args
            .iter()
            .map(|a| match a {
                Ast::Expref { .. } => Ty::Any,
                other => self.ty(other, cur),
            })
            .collect();
        for (i, a) in args.iter().enumerate() {
            if let Ast::Expref { ast, .. } = a {
                let element = list_arg
                    .and_then(|l| types.get(l))
                    .map(|t| match t {
                        Ty::List(e) => (**e).clone(),
                        _ => Ty::Any,
                    })
                    .unwrap_or(Ty::Any);
                types[i] = self.inner(|j| j.ty(ast, &element));
            }
        }
        let literal = |i: usize| match args.get(i) {
            Some(Ast::Literal { value, .. }) => value.as_string().cloned(),
            _ => None,
        };
        match sig.returns {
            Returns::Any => match name {
                "param" => literal(0)
                    .and_then(|k| self.params.get(&k).cloned())
                    .unwrap_or(Ty::Any),
                "shared" => literal(0)
                    .and_then(|k| self.shared.get(&k).map(Ty::of_json))
                    .unwrap_or(Ty::Any),
                _ => Ty::Any,
            },
            Returns::Boolean => Ty::Bool,
            Returns::Number => Ty::Num,
            Returns::String => Ty::Str,
            Returns::Strings => Ty::List(Box::new(Ty::Str)),
            Returns::Arg(i) => types.get(i).cloned().unwrap_or(Ty::Any),
            Returns::ElementOf(i) => match types.get(i) {
                Some(Ty::List(e)) => (**e).clone(),
                _ => Ty::Any,
            },
            Returns::ListOfArg(i) => Ty::List(Box::new(types.get(i).cloned().unwrap_or(Ty::Any))),
        }
    }
}

/// A JMESPath literal that, as the right side of `||`, only stands in for a missing value:
/// null, `[]` or `{}`.
fn is_empty_default(v: &jmespath::Rcvar) -> bool {
    use jmespath::Variable;
    match &**v {
        Variable::Null => true,
        Variable::Array(a) => a.is_empty(),
        Variable::Object(o) => o.is_empty(),
        _ => false,
    }
}

/// Every template string inside `v` found at `pointer`, with its pointer.
fn collect_templates(v: &Value, pointer: &str, out: &mut Vec<(String, String)>) {
    match v {
        Value::String(s) if is_template(s) => out.push((pointer.to_string(), s.clone())),
        Value::Array(items) => {
            for (i, x) in items.iter().enumerate() {
                collect_templates(x, &pointer_push(pointer, &i.to_string()), out);
            }
        }
        Value::Object(m) => {
            for (k, x) in m {
                collect_templates(x, &pointer_push(pointer, k), out);
            }
        }
        _ => {}
    }
}

/// The `<var>.<field>...` paths a template reads, sorted.
fn var_paths(text: &str, var: &str) -> Vec<String> {
    let env = environment();
    let used = match whole_expression(text) {
        Some(expr) => env
            .compile_expression(expr)
            .map(|e| e.undeclared_variables(true)),
        None => env
            .template_from_str(text)
            .map(|t| t.undeclared_variables(true)),
    };
    let mut paths: Vec<String> = used
        .map(|u| {
            u.into_iter()
                .filter(|n| n.strip_prefix(var).is_some_and(|r| r.starts_with('.')))
                .collect()
        })
        .unwrap_or_default();
    paths.sort();
    paths
}

fn join(path: &str, member: &str) -> String {
    if path.is_empty() {
        member.to_string()
    } else {
        format!("{path}.{member}")
    }
}

fn display_path(path: &str) -> &str {
    if path.is_empty() { "parameters" } else { path }
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}
