//! minijinja rendering of call parameters and `when` conditions (strict undefined).
use minijinja::{Environment, UndefinedBehavior};
use serde_json::Value;
use std::sync::OnceLock;

/// The one template environment (strict undefined): the checker compiles with it, the
/// interpreter renders with it.
pub fn environment() -> &'static Environment<'static> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env
    })
}

/// Whether a string is a template at all.
pub fn is_template(s: &str) -> bool {
    s.contains("{{") || s.contains("{%") || s.contains("{#")
}

/// The expression inside a string that is exactly `{{ expr }}` (so it keeps its type).
pub fn whole_expression(s: &str) -> Option<&str> {
    let inner = s.trim().strip_prefix("{{")?.strip_suffix("}}")?;
    (!inner.contains("{{") && !inner.contains("}}")).then_some(inner)
}

/// Renders every template string inside `v`. A string that is exactly `{{ expr }}` becomes
/// the expression's value with its type; other template strings become strings.
pub fn render_value(v: &Value, ctx: &minijinja::Value) -> Result<Value, String> {
    Ok(match v {
        Value::String(s) if is_template(s) => {
            if let Some(expr) = whole_expression(s) {
                let out = environment()
                    .compile_expression(expr)
                    .and_then(|e| e.eval(ctx))
                    .map_err(|e| format!("{s}: {e}"))?;
                if out.is_undefined() {
                    return Err(format!("{s}: undefined value"));
                }
                serde_json::to_value(&out).map_err(|e| format!("{s}: {e}"))?
            } else {
                Value::String(
                    environment()
                        .render_str(s, ctx)
                        .map_err(|e| format!("{s}: {e}"))?,
                )
            }
        }
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|i| render_value(i, ctx))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, v)| Ok((k.clone(), render_value(v, ctx)?)))
                .collect::<Result<_, String>>()?,
        ),
        other => other.clone(),
    })
}

/// Evaluates a `when` condition.
pub fn truthy_condition(expr: &str, ctx: &minijinja::Value) -> Result<bool, String> {
    environment()
        .compile_expression(expr)
        .and_then(|e| e.eval(ctx))
        .map(|v| v.is_true())
        .map_err(|e| format!("when `{expr}`: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn exact_expressions_keep_their_type() {
        let ctx = minijinja::Value::from(minijinja::value::Serde(
            json!({"params": {"n": 7, "tags": ["a"]}, "item": {"Id": "vol-1"}}),
        ));
        let v = json!({"A": "{{ params.n }}", "B": "n={{ params.n }}", "C": ["{{ params.tags }}", "{{ item.Id }}"], "D": 3});
        assert_eq!(
            render_value(&v, &ctx).unwrap(),
            json!({"A": 7, "B": "n=7", "C": [["a"], "vol-1"], "D": 3})
        );
        assert!(
            render_value(&json!("{{ params.missing }}"), &ctx).is_err(),
            "strict undefined"
        );
        assert!(truthy_condition("params.n > 5", &ctx).unwrap());
        assert!(!truthy_condition("item.Id == 'x'", &ctx).unwrap());
    }
}
