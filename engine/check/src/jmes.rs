//! JMESPath checks: syntax (errors point into the expression), function names and arity, and
//! `param('x')` / `shared('x')` naming something the runbook declares.
use crate::suggest;
use jmespath::ast::Ast;
use orgop_plan::functions;
use orgop_syntax::{Diagnostic, NodeSpans, Span};
use std::collections::BTreeSet;

/// What a JMESPath expression may refer to.
pub struct Names<'a> {
    /// Declared parameters.
    pub params: &'a BTreeSet<String>,
    /// Keys of `shared`.
    pub shared: &'a BTreeSet<String>,
}

/// Checks one expression found at `node`; `what` names the field (`where`, `select`, ...).
pub fn check(
    file: &str,
    expr: &str,
    node: &NodeSpans,
    what: &str,
    names: &Names<'_>,
) -> Vec<Diagnostic> {
    let at = |offset: usize| {
        let p = node.inside(expr, offset);
        Span { start: p, end: p }
    };
    let ast = match jmespath::parse(expr) {
        Ok(ast) => ast,
        Err(e) => {
            let reason = match &e.reason {
                jmespath::ErrorReason::Parse(m) => plain_reason(m),
                other => other.to_string(),
            };
            return vec![
                Diagnostic::error(file, at(e.offset), format!("invalid JMESPath in `{what}`: {reason}"))
                    .with_hint("JMESPath literals need backticks (`` `7` ``) and raw strings single quotes ('x')"),
            ];
        }
    };
    let mut out = Vec::new();
    walk(&ast, &mut |node| {
        if let Ast::Function { offset, name, args } = node {
            match functions::function(name) {
                None => {
                    let mut d = Diagnostic::error(
                        file,
                        at(*offset),
                        format!("unknown JMESPath function `{name}` in `{what}`"),
                    );
                    d.hint = suggest::did_you_mean(name, functions::function_names()).or_else(|| {
                        Some("orgop adds param, shared, now, age_days, tag, account_id, account_name, region".into())
                    });
                    out.push(d);
                }
                Some(sig) if args.len() < sig.min_args || args.len() > sig.max_args => {
                    let want = if sig.min_args == sig.max_args {
                        format!("{}", sig.min_args)
                    } else if sig.max_args == usize::MAX {
                        format!("at least {}", sig.min_args)
                    } else {
                        format!("{} to {}", sig.min_args, sig.max_args)
                    };
                    let mut d = Diagnostic::error(
                        file,
                        at(*offset),
                        format!(
                            "`{name}` takes {want} argument{}, not {}",
                            if want == "1" { "" } else { "s" },
                            args.len()
                        ),
                    );
                    if !sig.doc.is_empty() {
                        d.hint = Some(sig.doc.to_string());
                    }
                    out.push(d);
                }
                Some(_) if name == "param" || name == "shared" => {
                    let declared = if name == "param" {
                        names.params
                    } else {
                        names.shared
                    };
                    if let Some(Ast::Literal { value, offset }) = args.first()
                        && let Some(key) = value.as_string()
                        && !declared.contains(key)
                    {
                        let kind = if name == "param" {
                            "parameter"
                        } else {
                            "key of `shared`"
                        };
                        let mut d = Diagnostic::error(
                            file,
                            at(*offset),
                            format!("`{name}('{key}')` names no declared {kind}"),
                        );
                        d.hint = suggest::did_you_mean(key, declared.iter().map(String::as_str))
                            .or_else(|| {
                                Some(format!(
                                    "declare it under `{}:`",
                                    if name == "param" { "params" } else { "shared" }
                                ))
                            });
                        out.push(d);
                    }
                }
                Some(_) => {}
            }
        }
    });
    out
}

/// jmespath's parser speaks in Pratt-parser terms ("nud token"); say it in the author's.
fn plain_reason(m: &str) -> String {
    if m.contains("found Eof") {
        return match m.split_once(" -- ") {
            Some((what, _)) if what.starts_with("Expected") => {
                format!("{what}, but the expression ends here")
            }
            _ => "the expression ends too early".into(),
        };
    }
    m.replace("Unexpected nud token", "unexpected token")
        .replace("Unexpected led token", "unexpected token")
}

fn walk(ast: &Ast, f: &mut dyn FnMut(&Ast)) {
    f(ast);
    match ast {
        Ast::Comparison { lhs, rhs, .. }
        | Ast::Projection { lhs, rhs, .. }
        | Ast::And { lhs, rhs, .. }
        | Ast::Or { lhs, rhs, .. }
        | Ast::Subexpr { lhs, rhs, .. } => {
            walk(lhs, f);
            walk(rhs, f);
        }
        Ast::Condition {
            predicate, then, ..
        } => {
            walk(predicate, f);
            walk(then, f);
        }
        Ast::Expref { ast, .. } => walk(ast, f),
        Ast::Flatten { node, .. } | Ast::Not { node, .. } | Ast::ObjectValues { node, .. } => {
            walk(node, f)
        }
        Ast::Function { args, .. } => args.iter().for_each(|a| walk(a, f)),
        Ast::MultiList { elements, .. } => elements.iter().for_each(|a| walk(a, f)),
        Ast::MultiHash { elements, .. } => elements.iter().for_each(|kv| walk(&kv.value, f)),
        Ast::Identity { .. }
        | Ast::Field { .. }
        | Ast::Index { .. }
        | Ast::Literal { .. }
        | Ast::Slice { .. } => {}
    }
}
