//! JMESPath checks: syntax (errors point into the expression), function names and arity, and
//! `param('x')` / `shared('x')` naming something the runbook declares.
use crate::suggest;
use jmespath::ast::Ast;
use orgop_plan::{functions, limits};
use orgop_syntax::{Diagnostic, NodeSpans, Span};
use std::collections::BTreeSet;

/// The longest parser message quoted in a diagnostic, in characters.
const MAX_REASON_CHARS: usize = 160;

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
    let e = Expr {
        file,
        text: expr,
        node,
        what,
    };
    // The jmespath crate's parser recurses: what is over the limits is never handed to it.
    if let Err(over) = limits::jmespath_prescan(expr) {
        return vec![e.over_limit(&over)];
    }
    let ast = match jmespath::parse(expr) {
        Ok(ast) => ast,
        Err(err) => return vec![e.syntax_error(&err)],
    };
    if let Err(over) = limits::jmespath_depth(&ast) {
        return vec![e.over_limit(&over)];
    }
    let mut out = Vec::new();
    walk(&ast, &mut |node| {
        if let Ast::Function { offset, name, args } = node {
            out.extend(e.function(*offset, name, args, names));
        }
    });
    out
}

/// One expression being checked, and where it is.
struct Expr<'a> {
    file: &'a str,
    text: &'a str,
    node: &'a NodeSpans,
    /// The field it is in (`where`, `select`, ...).
    what: &'a str,
}

impl Expr<'_> {
    /// The point `offset` characters into the expression.
    fn at(&self, offset: usize) -> Span {
        let p = self.node.inside(self.text, offset);
        Span { start: p, end: p }
    }

    fn syntax_error(&self, e: &jmespath::JmespathError) -> Diagnostic {
        let mut reason = match &e.reason {
            jmespath::ErrorReason::Parse(m) => plain_reason(m),
            other => other.to_string(),
        };
        // The crate quotes a bad literal whole: a 200 KB one made a 200 KB message.
        if let Some((cut, _)) = reason.char_indices().nth(MAX_REASON_CHARS) {
            reason.truncate(cut);
            reason.push('…');
        }
        Diagnostic::error(
            self.file,
            self.at(e.offset),
            format!("invalid JMESPath in `{}`: {reason}", self.what),
        )
        .with_hint(
            "JMESPath literals need backticks (`` `7` ``) and raw strings single quotes ('x')",
        )
    }

    fn over_limit(&self, over: &limits::LimitError) -> Diagnostic {
        Diagnostic::error(
            self.file,
            self.at(over.offset),
            format!("JMESPath in `{}` {}", self.what, over.message),
        )
        .with_hint(
            "the limits are fixed: the JMESPath engine recurses once per level; split the \
             expression across steps, or flatten it",
        )
    }

    /// A call of function `name` at `offset`: the function exists, takes that many arguments,
    /// and `param('x')` / `shared('x')` name something declared.
    fn function(
        &self,
        offset: usize,
        name: &str,
        args: &[Ast],
        names: &Names<'_>,
    ) -> Option<Diagnostic> {
        match functions::function(name) {
            None => Some(self.unknown_function(offset, name)),
            Some(sig) if args.len() < sig.min_args || args.len() > sig.max_args => {
                Some(self.arity(offset, name, sig, args.len()))
            }
            Some(_) if name == "param" || name == "shared" => self.undeclared(name, args, names),
            Some(_) => None,
        }
    }

    fn unknown_function(&self, offset: usize, name: &str) -> Diagnostic {
        let mut d = Diagnostic::error(
            self.file,
            self.at(offset),
            format!("unknown JMESPath function `{name}` in `{}`", self.what),
        );
        d.hint = suggest::did_you_mean(name, functions::function_names()).or_else(|| {
            Some(
                "orgop adds param, shared, now, age_days, tag, account_id, account_name, region"
                    .into(),
            )
        });
        d
    }

    fn arity(
        &self,
        offset: usize,
        name: &str,
        sig: &functions::FunctionSig,
        given: usize,
    ) -> Diagnostic {
        let want = if sig.min_args == sig.max_args {
            format!("{}", sig.min_args)
        } else if sig.max_args == usize::MAX {
            format!("at least {}", sig.min_args)
        } else {
            format!("{} to {}", sig.min_args, sig.max_args)
        };
        let mut d = Diagnostic::error(
            self.file,
            self.at(offset),
            format!(
                "`{name}` takes {want} argument{}, not {given}",
                if want == "1" { "" } else { "s" },
            ),
        );
        if !sig.doc.is_empty() {
            d.hint = Some(sig.doc.to_string());
        }
        d
    }

    /// `param('x')` / `shared('x')` (`name`) with a literal naming nothing declared.
    fn undeclared(&self, name: &str, args: &[Ast], names: &Names<'_>) -> Option<Diagnostic> {
        let declared = if name == "param" {
            names.params
        } else {
            names.shared
        };
        let Some(Ast::Literal { value, offset }) = args.first() else {
            return None;
        };
        let key = value.as_string()?;
        if declared.contains(key) {
            return None;
        }
        let kind = if name == "param" {
            "parameter"
        } else {
            "key of `shared`"
        };
        let mut d = Diagnostic::error(
            self.file,
            self.at(*offset),
            format!("`{name}('{key}')` names no declared {kind}"),
        );
        d.hint = suggest::did_you_mean(key, declared.iter().map(String::as_str)).or_else(|| {
            Some(format!(
                "declare it under `{}:`",
                if name == "param" { "params" } else { "shared" }
            ))
        });
        Some(d)
    }
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
