//! JMESPath with orgop's functions (the table in `orgop_plan::functions`).
//!
//! One runtime for the process. The functions that read the item (`param`, `shared`, `now`,
//! `account_id`, ...) find it in a thread-local set for the duration of one synchronous
//! `search`, so compiled expressions are shared and no runtime is built per item.
use aws_smithy_types::date_time::{DateTime, Format};
use jmespath::functions::{ArgumentType, CustomFunction, Signature};
use jmespath::{Context, ErrorReason, JmespathError, Rcvar, Runtime, Variable};
use orgop_plan::limits;
use serde_json::{Map, Value};
use std::cell::RefCell;
use std::sync::{Arc, OnceLock};

/// What the orgop functions read.
#[derive(Debug, Clone, Default)]
pub struct ExprContext {
    /// The run's parameters.
    pub params: Arc<Map<String, Value>>,
    /// The runbook's shared data.
    pub shared: Arc<Map<String, Value>>,
    /// The item's account id.
    pub account_id: String,
    /// The item's account name.
    pub account_name: String,
    /// The item's region.
    pub region: String,
    /// "Now" for this run, in epoch seconds: fixed once per run so every item and every
    /// expression agrees on ages.
    pub now: f64,
}

thread_local! {
    static CURRENT: RefCell<Option<Arc<ExprContext>>> = const { RefCell::new(None) };
}

fn with_ctx<T>(f: impl FnOnce(&ExprContext) -> T) -> Option<T> {
    CURRENT.with(|c| c.borrow().as_deref().map(f))
}

fn to_var(v: &Value) -> Rcvar {
    Arc::new(Variable::try_from(v).unwrap_or(Variable::Null))
}

fn fail(ctx: &Context<'_>, message: String) -> JmespathError {
    JmespathError::new(ctx.expression, ctx.offset, ErrorReason::Parse(message))
}

type Body = dyn Fn(&[Rcvar], &mut Context<'_>) -> Result<Rcvar, JmespathError> + Send + Sync;

fn register(rt: &mut Runtime, name: &str, args: Vec<ArgumentType>, body: Box<Body>) {
    rt.register_function(
        name,
        Box::new(CustomFunction::new(Signature::new(args, None), body)),
    );
}

/// Parses an AWS timestamp: RFC 3339 (with or without offset) or epoch seconds.
pub fn timestamp_secs(v: &Variable) -> Option<f64> {
    match v {
        Variable::String(s) => DateTime::from_str(s, Format::DateTimeWithOffset)
            .or_else(|_| DateTime::from_str(s, Format::DateTime))
            .or_else(|_| DateTime::from_str(s, Format::HttpDate))
            .ok()
            .map(|d| d.as_secs_f64()),
        Variable::Number(n) => n.as_f64(),
        _ => None,
    }
}

fn runtime() -> &'static Runtime {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        let mut rt = Runtime::new();
        rt.register_builtin_functions();
        register(
            &mut rt,
            "param",
            vec![ArgumentType::String],
            Box::new(|args, ctx| {
                let name = args[0].as_string().cloned().unwrap_or_default();
                with_ctx(|c| c.params.get(&name).map(to_var))
                    .flatten()
                    .ok_or_else(|| fail(ctx, format!("param('{name}'): no such parameter")))
            }),
        );
        register(
            &mut rt,
            "shared",
            vec![ArgumentType::String],
            Box::new(|args, ctx| {
                let name = args[0].as_string().cloned().unwrap_or_default();
                with_ctx(|c| c.shared.get(&name).map(to_var))
                    .flatten()
                    .ok_or_else(|| fail(ctx, format!("shared('{name}'): no such key in shared")))
            }),
        );
        register(
            &mut rt,
            "now",
            vec![],
            Box::new(|_, ctx| {
                let now = with_ctx(|c| c.now).unwrap_or(0.0);
                DateTime::from_secs_f64(now)
                    .fmt(Format::DateTime)
                    .map(|s| Arc::new(Variable::String(s)))
                    .map_err(|e| fail(ctx, e.to_string()))
            }),
        );
        register(
            &mut rt,
            "age_days",
            vec![ArgumentType::Any],
            Box::new(|args, ctx| {
                // A missing field is common (not every resource has it): null, not an error.
                if args[0].is_null() {
                    return Ok(Arc::new(Variable::Null));
                }
                let now = with_ctx(|c| c.now).unwrap_or(0.0);
                match timestamp_secs(&args[0]) {
                    Some(t) => Ok(Arc::new(Variable::Number(serde_json::Number::from(
                        ((now - t) / 86_400.0).floor() as i64,
                    )))),
                    None => Err(fail(
                        ctx,
                        format!(
                            "age_days(): expected a timestamp (RFC 3339 string or epoch \
                             seconds), got {}",
                            describe(&args[0])
                        ),
                    )),
                }
            }),
        );
        register(
            &mut rt,
            "tag",
            vec![ArgumentType::Any, ArgumentType::String],
            Box::new(|args, ctx| {
                let key = args[1].as_string().cloned().unwrap_or_default();
                match tag_value(&args[0], &key) {
                    Ok(v) => Ok(v.unwrap_or_else(|| Arc::new(Variable::Null))),
                    Err(()) => Err(fail(
                        ctx,
                        format!(
                            "tag(): expected a tag list ([{{Key, Value}}]) or a map, got {}",
                            describe(&args[0])
                        ),
                    )),
                }
            }),
        );
        for (name, field) in [("account_id", 0), ("account_name", 1), ("region", 2)] {
            register(
                &mut rt,
                name,
                vec![],
                Box::new(move |_, _| {
                    let s = with_ctx(|c| match field {
                        0 => c.account_id.clone(),
                        1 => c.account_name.clone(),
                        _ => c.region.clone(),
                    })
                    .unwrap_or_default();
                    Ok(Arc::new(Variable::String(s)))
                }),
            );
        }
        rt
    })
}

/// A tag's value from an AWS tag list (`[{Key, Value}]`, or lowercase `key`/`value`) or map:
/// `Ok(None)` when there is no such tag or no tags at all (null), `Err` when `tags` is
/// neither (a number, a string, a list of anything but objects).
fn tag_value(tags: &Variable, key: &str) -> Result<Option<Rcvar>, ()> {
    match tags {
        Variable::Null => Ok(None),
        Variable::Array(items) if items.iter().all(|t| t.is_object()) => {
            Ok(items.iter().find_map(|t| {
                let obj = t.as_object()?;
                let k = obj.get("Key").or_else(|| obj.get("key"))?;
                (k.as_string().map(String::as_str) == Some(key))
                    .then(|| obj.get("Value").or_else(|| obj.get("value")).cloned())
                    .flatten()
            }))
        }
        Variable::Object(m) => Ok(m.get(key).cloned()),
        _ => Err(()),
    }
}

/// A value's type for an error message, with the value itself when it is short and scalar.
fn describe(v: &Variable) -> String {
    match v {
        Variable::String(s) if s.chars().count() <= 64 => format!("string {s:?}"),
        Variable::String(_) => "string".to_string(),
        Variable::Bool(b) => format!("boolean {b}"),
        Variable::Array(items) => match items.iter().find(|i| !i.is_object()) {
            Some(i) => format!("array containing {}", i.get_type()),
            None => "array".to_string(),
        },
        other => other.get_type().to_string(),
    }
}

/// A compiled expression.
#[derive(Debug)]
pub struct Expr(jmespath::Expression<'static>);

impl Expr {
    /// Compiles; the message says what is wrong.
    ///
    /// An expression over the limits of `orgop_plan::limits` is refused before the jmespath
    /// crate parses it (its parser and interpreter recurse: a deep one would overflow the
    /// stack and abort the process, not fail).
    pub fn compile(expr: &str) -> Result<Expr, String> {
        let over = |e: limits::LimitError| {
            format!(
                "JMESPath expression {} (at character {})",
                e.message,
                e.offset + 1
            )
        };
        limits::jmespath_prescan(expr).map_err(over)?;
        let compiled = runtime().compile(expr).map_err(|e| e.to_string())?;
        limits::jmespath_depth(compiled.as_ast()).map_err(over)?;
        Ok(Expr(compiled))
    }

    /// Evaluates on `data` with `ctx` visible to the orgop functions.
    pub fn search(&self, data: &Value, ctx: &Arc<ExprContext>) -> Result<Value, String> {
        let out = self.search_var(&to_var_checked(data)?, ctx)?;
        Ok(to_json(&out))
    }

    /// Evaluates on an already converted value: no conversion in, none out. (The crate's
    /// `Expression::search` would copy `data` whole first: without its nightly-only
    /// `specialized` feature, an `Rcvar` is searched by serializing it into a new one.)
    pub(crate) fn search_var(&self, data: &Rcvar, ctx: &Arc<ExprContext>) -> Result<Rcvar, String> {
        CURRENT.with(|c| *c.borrow_mut() = Some(ctx.clone()));
        let mut jctx = Context::new(self.0.as_str(), runtime());
        let out = jmespath::interpret(data, self.0.as_ast(), &mut jctx);
        CURRENT.with(|c| *c.borrow_mut() = None);
        out.map_err(|e| e.to_string())
    }
}

/// A JSON value as a JMESPath value.
pub(crate) fn to_var_checked(v: &Value) -> Result<Rcvar, String> {
    Variable::try_from(v)
        .map(Arc::new)
        .map_err(|e| e.to_string())
}

/// A JMESPath value as JSON, converted directly (no serializer in between).
pub(crate) fn to_json(v: &Variable) -> Value {
    match v {
        Variable::Null => Value::Null,
        Variable::String(s) => Value::String(s.clone()),
        Variable::Bool(b) => Value::Bool(*b),
        Variable::Number(n) => Value::Number(n.clone()),
        Variable::Array(items) => Value::Array(items.iter().map(|i| to_json(i)).collect()),
        Variable::Object(m) => {
            Value::Object(m.iter().map(|(k, v)| (k.clone(), to_json(v))).collect())
        }
        // What the crate's serializer writes for an expression reference.
        Variable::Expref(e) => Value::String(format!("<expression: {e:?}>")),
    }
}

/// Compiles and evaluates once.
pub fn search(expr: &str, data: &Value, ctx: &Arc<ExprContext>) -> Result<Value, String> {
    Expr::compile(expr)?.search(data, ctx)
}

/// JMESPath truthiness: false, null, empty string/list/object are false.
pub(crate) fn truthy(v: &Variable) -> bool {
    v.is_truthy()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ctx() -> Arc<ExprContext> {
        let now = DateTime::from_str("2026-01-31T00:00:00Z", Format::DateTime)
            .unwrap()
            .as_secs_f64();
        Arc::new(ExprContext {
            params: Arc::new(json!({"min_age_days": 7}).as_object().unwrap().clone()),
            shared: Arc::new(json!({"keep_tag": "keep"}).as_object().unwrap().clone()),
            account_id: "111122223333".into(),
            account_name: "prod".into(),
            region: "eu-west-1".into(),
            now,
        })
    }

    #[test]
    fn orgop_functions() {
        let v = json!({"CreateTime": "2026-01-01T12:00:00.000Z", "Tags": [{"Key": "keep", "Value": "true"}]});
        let c = ctx();
        assert_eq!(search("age_days(CreateTime)", &v, &c).unwrap(), json!(29));
        assert_eq!(
            search("tag(Tags, shared('keep_tag'))", &v, &c).unwrap(),
            json!("true")
        );
        assert_eq!(search("tag(Tags, 'nope')", &v, &c).unwrap(), Value::Null);
        assert_eq!(
            search("tag(`{\"a\": \"b\"}`, 'a')", &v, &c).unwrap(),
            json!("b")
        );
        assert_eq!(
            search("age_days(CreateTime) >= param('min_age_days')", &v, &c).unwrap(),
            json!(true)
        );
        assert_eq!(
            search("[account_id(), account_name(), region()]", &v, &c).unwrap(),
            json!(["111122223333", "prod", "eu-west-1"])
        );
        assert_eq!(
            search("now()", &v, &c).unwrap(),
            json!("2026-01-31T00:00:00Z")
        );
        assert!(
            search("param('nope')", &v, &c)
                .unwrap_err()
                .contains("no such parameter")
        );
    }

    #[test]
    fn age_days_of_a_missing_field_is_null_and_of_anything_else_an_error() {
        let v = json!({"Created": "not a date", "Epoch": 1767225600, "Http": "Thu, 01 Jan 2026 00:00:00 GMT", "Flag": true});
        let c = ctx();
        assert_eq!(search("age_days(Missing)", &v, &c).unwrap(), Value::Null);
        assert_eq!(search("age_days(Epoch)", &v, &c).unwrap(), json!(30));
        assert_eq!(search("age_days(Http)", &v, &c).unwrap(), json!(30));
        let e = search("age_days(Created)", &v, &c).unwrap_err();
        assert!(
            e.contains(
                "age_days(): expected a timestamp (RFC 3339 string or epoch seconds), \
                 got string \"not a date\""
            ),
            "{e}"
        );
        let e = search("age_days(Flag)", &v, &c).unwrap_err();
        assert!(e.contains("got boolean true"), "{e}");
        // An error is not swallowed by a filter: the item fails instead of finding nothing.
        let e = search("[?age_days(@) > `1`]", &json!(["x"]), &c).unwrap_err();
        assert!(e.contains("age_days(): expected a timestamp"), "{e}");
    }

    #[test]
    fn tag_of_something_that_is_not_tags_is_an_error() {
        let v = json!({"Tags": [{"key": "env", "value": "prod"}], "Size": 8, "Names": ["a"]});
        let c = ctx();
        assert_eq!(search("tag(Tags, 'env')", &v, &c).unwrap(), json!("prod"));
        assert_eq!(search("tag(Tags, 'nope')", &v, &c).unwrap(), Value::Null);
        assert_eq!(search("tag(Missing, 'env')", &v, &c).unwrap(), Value::Null);
        assert_eq!(search("tag(`[]`, 'env')", &v, &c).unwrap(), Value::Null);
        let e = search("tag(Size, 'env')", &v, &c).unwrap_err();
        assert!(
            e.contains("tag(): expected a tag list ([{Key, Value}]) or a map, got number"),
            "{e}"
        );
        let e = search("tag(Names, 'env')", &v, &c).unwrap_err();
        assert!(e.contains("got array containing string"), "{e}");
        let e = search("tag(`\"env=prod\"`, 'env')", &v, &c).unwrap_err();
        assert!(e.contains("got string \"env=prod\""), "{e}");
    }

    #[test]
    fn every_function_in_the_shared_table_is_implemented() {
        for f in orgop_plan::functions::ORGOP_FUNCTIONS
            .iter()
            .chain(orgop_plan::functions::BUILTIN_FUNCTIONS.iter())
        {
            assert!(
                runtime().get_function(f.name).is_some(),
                "{} is in the table but not implemented",
                f.name
            );
        }
    }
}
