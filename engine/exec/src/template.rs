//! Templates in call parameters and `when` conditions, compiled once when a plan is prepared
//! and rendered per item and element against a [`Scope`] that is built once and shared.
//!
//! A string that is exactly `{{ expr }}` keeps the expression's type (a list stays a list);
//! any other template string renders to a string; values without templates are kept as they
//! are and cloned, not walked, when rendered.
use minijinja::value::{Enumerator, Object, Serde};
use minijinja::{Environment, Expression};
use orgop_plan::limits;
use orgop_plan::templates::{configure, environment, is_template, whole_expression};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::sync::Arc;

/// A compiled parameter tree.
#[derive(Debug)]
pub(crate) enum Tmpl {
    /// No template below this point.
    Literal(Value),
    /// Exactly `{{ expr }}`: the value with its type.
    Expr {
        source: String,
        expr: Expression<'static, 'static>,
    },
    /// A template rendered to a string: its name in [`Templates`].
    Text { source: String, name: String },
    /// A list with templates in it.
    Array(Vec<Tmpl>),
    /// An object with templates in it.
    Object(Vec<(String, Tmpl)>),
}

/// The template strings of one plan, compiled once, and the names they read.
#[derive(Debug)]
pub(crate) struct Templates {
    env: Environment<'static>,
    count: usize,
    /// Top-level names any template or condition reads (`steps` costs a conversion per step).
    pub(crate) reads: std::collections::HashSet<String>,
}

impl Templates {
    pub(crate) fn new() -> Templates {
        let mut env = Environment::new();
        configure(&mut env);
        Templates {
            env,
            count: 0,
            reads: Default::default(),
        }
    }

    /// Compiles `v`'s template strings.
    pub(crate) fn compile(&mut self, v: &Value) -> Result<Tmpl, String> {
        if !contains_template(v) {
            return Ok(Tmpl::Literal(v.clone()));
        }
        Ok(match v {
            Value::String(s) => match whole_expression(s) {
                Some(e) => Tmpl::Expr {
                    source: s.clone(),
                    expr: self.expression(e).map_err(|e| format!("{s}: {e}"))?,
                },
                None => {
                    let name = format!("t{}", self.count);
                    self.count += 1;
                    self.env
                        .add_template_owned(name.clone(), s.clone())
                        .map_err(|e| format!("{s}: {e}"))?;
                    let t = self.env.get_template(&name).map_err(|e| e.to_string())?;
                    self.reads.extend(t.undeclared_variables(false));
                    Tmpl::Text {
                        source: s.clone(),
                        name,
                    }
                }
            },
            Value::Array(items) => Tmpl::Array(
                items
                    .iter()
                    .map(|i| self.compile(i))
                    .collect::<Result<_, _>>()?,
            ),
            Value::Object(m) => Tmpl::Object(
                m.iter()
                    .map(|(k, v)| Ok((k.clone(), self.compile(v)?)))
                    .collect::<Result<_, String>>()?,
            ),
            other => Tmpl::Literal(other.clone()),
        })
    }

    /// Compiles a `when` condition (or the inside of `{{ }}`).
    pub(crate) fn expression(&mut self, e: &str) -> Result<Expression<'static, 'static>, String> {
        let expr = environment()
            .compile_expression_owned(e.to_string())
            .map_err(|err| err.to_string())?;
        self.reads.extend(expr.undeclared_variables(false));
        Ok(expr)
    }

    /// Renders a compiled tree.
    pub(crate) fn render(&self, t: &Tmpl, scope: &minijinja::Value) -> Result<Value, String> {
        Ok(match t {
            Tmpl::Literal(v) => v.clone(),
            Tmpl::Expr { source, expr } => {
                let out = expr.eval(scope).map_err(|e| render_error(source, &e))?;
                if out.is_undefined() {
                    return Err(format!("{source}: undefined value"));
                }
                // Counted without making the text, and only as far as the limit.
                let mut size = Counter(0);
                if serde_json::to_writer(&mut size, &out).is_err()
                    && let Some(e) = limits::template_output_error(size.0)
                {
                    return Err(format!("{}: {e}", excerpt(source)));
                }
                serde_json::to_value(&out).map_err(|e| format!("{source}: {e}"))?
            }
            Tmpl::Text { source, name } => {
                let text = self
                    .env
                    .get_template(name)
                    .and_then(|t| t.render(scope))
                    .map_err(|e| render_error(source, &e))?;
                if let Some(e) = limits::template_output_error(text.len()) {
                    return Err(format!("{}: {e}", excerpt(source)));
                }
                Value::String(text)
            }
            Tmpl::Array(items) => Value::Array(
                items
                    .iter()
                    .map(|i| self.render(i, scope))
                    .collect::<Result<_, _>>()?,
            ),
            Tmpl::Object(m) => Value::Object(
                m.iter()
                    .map(|(k, v)| Ok((k.clone(), self.render(v, scope)?)))
                    .collect::<Result<Map<_, _>, String>>()?,
            ),
        })
    }
}

/// Counts the bytes written to it: the size of a value's JSON without making the text. It
/// fails once over [`limits::TEMPLATE_MAX_OUTPUT`], which stops the serializer there.
struct Counter(usize);

impl std::io::Write for Counter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len();
        if self.0 > limits::TEMPLATE_MAX_OUTPUT {
            return Err(std::io::Error::other("over the output limit"));
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Why rendering `source` failed with `e`: the limit it went over, by name, when that is why.
fn render_error(source: &str, e: &minijinja::Error) -> String {
    match limits::template_limit_error(e) {
        Some(why) => format!("{}: {why}", excerpt(source)),
        None => format!("{source}: {e}"),
    }
}

/// The start of a template's text, for a message about it.
fn excerpt(source: &str) -> String {
    match source.char_indices().nth(80) {
        Some((i, _)) => format!("{}…", &source[..i]),
        None => source.to_string(),
    }
}

fn contains_template(v: &Value) -> bool {
    match v {
        Value::String(s) => is_template(s),
        Value::Array(items) => items.iter().any(contains_template),
        Value::Object(m) => m.values().any(contains_template),
        _ => false,
    }
}

/// Evaluates a compiled `when` condition.
pub(crate) fn truthy(
    source: &str,
    expr: &Expression<'static, 'static>,
    scope: &minijinja::Value,
) -> Result<bool, String> {
    expr.eval(scope)
        .map(|v| v.is_true())
        .map_err(|e| match limits::template_limit_error(&e) {
            Some(why) => format!("when `{}`: {why}", excerpt(source)),
            None => format!("when `{source}`: {e}"),
        })
}

/// A JSON value as a template value (converted once, then shared by reference).
pub(crate) fn to_template(v: &Value) -> minijinja::Value {
    minijinja::Value::from(Serde(v))
}

/// What templates see: the run's and item's names, converted once per item, the results of
/// the steps run so far (converted once per step), and `item` per element.
#[derive(Debug, Clone)]
pub(crate) struct Scope {
    vars: Arc<BTreeMap<&'static str, minijinja::Value>>,
    item: Option<minijinja::Value>,
    /// The action's answer, in the parameters of its `wait:`.
    response: Option<minijinja::Value>,
}

impl Scope {
    pub(crate) fn new(vars: BTreeMap<&'static str, minijinja::Value>) -> Scope {
        Scope {
            vars: Arc::new(vars),
            item: None,
            response: None,
        }
    }

    /// The same scope with one name set (`steps` after a step ran).
    pub(crate) fn set(&mut self, name: &'static str, v: minijinja::Value) {
        Arc::make_mut(&mut self.vars).insert(name, v);
    }

    /// This scope with `item` bound to `element` (or unbound).
    pub(crate) fn with_item(&self, element: Option<&Value>) -> minijinja::Value {
        self.with_item_and_response(element, None)
    }

    /// This scope with `item` bound to `element` and `response` to an action's answer.
    pub(crate) fn with_item_and_response(
        &self,
        element: Option<&Value>,
        response: Option<&Value>,
    ) -> minijinja::Value {
        minijinja::Value::from_object(Scope {
            vars: self.vars.clone(),
            item: element.map(to_template),
            response: response.map(to_template),
        })
    }
}

impl Object for Scope {
    fn get_value(self: &Arc<Self>, key: &minijinja::Value) -> Option<minijinja::Value> {
        match key.as_str()? {
            "item" => self.item.clone(),
            "response" => self.response.clone(),
            k => self.vars.get(k).cloned(),
        }
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        let mut keys: Vec<minijinja::Value> = self
            .vars
            .keys()
            .map(|k| minijinja::Value::from(*k))
            .collect();
        if self.item.is_some() {
            keys.push(minijinja::Value::from("item"));
        }
        if self.response.is_some() {
            keys.push(minijinja::Value::from("response"));
        }
        Enumerator::Values(keys)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn scope(item: Option<&Value>) -> minijinja::Value {
        let mut vars = BTreeMap::new();
        vars.insert("params", to_template(&json!({"n": 7, "tags": ["a"]})));
        Scope::new(vars).with_item(item)
    }

    #[test]
    fn exact_expressions_keep_their_type() {
        let mut t = Templates::new();
        let v = json!({"A": "{{ params.n }}", "B": "n={{ params.n }}", "C": ["{{ params.tags }}", "{{ item.Id }}"], "D": 3});
        let c = t.compile(&v).unwrap();
        let s = scope(Some(&json!({"Id": "vol-1"})));
        assert_eq!(
            t.render(&c, &s).unwrap(),
            json!({"A": 7, "B": "n=7", "C": [["a"], "vol-1"], "D": 3})
        );
        let missing = t.compile(&json!("{{ params.missing }}")).unwrap();
        assert!(t.render(&missing, &s).is_err(), "strict undefined");
        let unbound = t.compile(&json!("{{ item.Id }}")).unwrap();
        assert!(t.render(&unbound, &scope(None)).is_err(), "no item bound");
        let gt = t.expression("params.n > 5").unwrap();
        assert!(truthy("params.n > 5", &gt, &s).unwrap());
        let eq = t.expression("item.Id == 'x'").unwrap();
        assert!(!truthy("item.Id == 'x'", &eq, &s).unwrap());
        assert!(t.reads.contains("params") && t.reads.contains("item"));
        assert!(!t.reads.contains("steps"));
    }

    #[test]
    fn runaway_templates_fail_naming_the_limit() {
        let mut t = Templates::new();
        let s = scope(None);
        let cases = [
            // 100 MB in one operation: refused before it is made.
            (r#"{{ "x" * 100000000 }}"#, "200000 fuel"),
            (r#"a{{ "x" * 100000000 }}"#, "200000 fuel"),
            // 2^40 macro calls: the recursion limit (or the fuel) stops it.
            (
                "{% macro f(n) %}{% if n > 0 %}{{ f(n-1) }}{{ f(n-1) }}{% endif %}{% endmacro %}\
                 {{ f(40) }}",
                "deeper than the limit of 100",
            ),
            (
                r#"{% for i in "x" * 100000 %}{% for j in "x" * 100000 %}{{ j }}{% endfor %}{% endfor %}"#,
                "200000 fuel",
            ),
            // 3 MB of output, within the fuel: over the output limit.
            (
                r#"{% for i in "x" * 3000 %}{{ "x" * 1000 }}{% endfor %}"#,
                "over the limit of 1048576 bytes",
            ),
            (
                r#"{{ ["x" * 1000] * 2000 }}"#,
                "over the limit of 1048576 bytes",
            ),
        ];
        for (source, why) in cases {
            let c = t.compile(&json!(source)).unwrap();
            let err = t.render(&c, &s).unwrap_err();
            assert!(err.contains(why), "{source}: {err}");
        }
        let when = t.expression(r#"("x" * 100000000) == "x""#).unwrap();
        let err = truthy("big", &when, &s).unwrap_err();
        assert!(err.contains("200000 fuel"), "{err}");
    }

    #[test]
    fn literals_are_kept_whole() {
        let mut t = Templates::new();
        let v = json!({"Filters": [{"Name": "status", "Values": ["available"]}]});
        assert!(matches!(t.compile(&v).unwrap(), Tmpl::Literal(ref l) if *l == v));
    }
}
