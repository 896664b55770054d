//! The template language's settings, in one place: the checker compiles with them and the
//! interpreter renders with them, so a template that validates is one that runs.
use crate::limits;
use minijinja::{Environment, UndefinedBehavior};
use std::sync::OnceLock;

/// Applies orgop's settings to `env`: strict undefined (a misspelt name is an error, never an
/// empty string), and the bounds of [`crate::limits`] on the work and recursion of one render.
pub fn configure(env: &mut Environment<'_>) {
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_fuel(Some(limits::TEMPLATE_FUEL));
    env.set_recursion_limit(limits::TEMPLATE_RECURSION_LIMIT);
}

/// The process's one environment with orgop's settings, for expressions (`when`, `{{ x }}`).
pub fn environment() -> &'static Environment<'static> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Environment::new();
        configure(&mut env);
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
