//! The bounds on the work one expression or template may make orgop do, in one place: the
//! checker rejects what exceeds them with a located diagnostic and the interpreter refuses the
//! same when it prepares a plan (a plan can come from a hand-edited state machine) or fails the
//! item when it renders. Each is far above what real runbooks use.
//!
//! The YAML limits (file size, nesting depth) are in `orgop_syntax::limits`.
use jmespath::ast::Ast;

/// How deeply a JMESPath expression may nest: brackets, parentheses and braces inside each
/// other, and the parsed expression's depth (`a.b.c` is 3). Real runbooks use fewer than 10.
/// The jmespath crate parses and evaluates by recursion: a 300-deep expression overflows the
/// 2 MiB stack of a runtime worker thread in a debug build, so this is not configurable.
pub const JMESPATH_MAX_DEPTH: usize = 64;

/// How many brackets, parentheses, braces and operators (`.`, `|`, `||`, `&&`, `!`, `&`,
/// comparisons) one JMESPath expression may have. The parser recurses on some of them even
/// when they follow each other (`a[*][*]`, `!!a`), so this bounds its stack; real runbooks
/// use fewer than 30. Not configurable for the same reason as [`JMESPATH_MAX_DEPTH`].
pub const JMESPATH_MAX_OPERATORS: usize = 128;

/// The work one template render or `when` evaluation may do, in minijinja fuel: about one per
/// instruction and one per 64 bytes of data it creates or walks, so it bounds both time and
/// memory (200,000 is about 12 MB). Rendering that runs out fails the item.
pub const TEMPLATE_FUEL: u64 = 200_000;

/// How deeply templates may recurse (macros calling macros, nested loops and conditions).
/// minijinja's own ceiling is 500; a macro call costs about 10 of it.
pub const TEMPLATE_RECURSION_LIMIT: usize = 100;

/// The largest value one template may render, in bytes (its JSON text when it is `{{ expr }}`
/// keeping its type): parameters of AWS calls are far smaller.
pub const TEMPLATE_MAX_OUTPUT: usize = 1 << 20;

/// A JMESPath expression over a limit: where (characters into the expression) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitError {
    /// Characters into the expression.
    pub offset: usize,
    /// What is over which limit.
    pub message: String,
}

/// Checks `expr` against [`JMESPATH_MAX_DEPTH`] and [`JMESPATH_MAX_OPERATORS`] without
/// parsing it (the parser is what would overflow): a scan outside quoted strings and literals.
pub fn jmespath_prescan(expr: &str) -> Result<(), LimitError> {
    let mut depth = 0usize;
    let mut operators = 0usize;
    let mut quote: Option<char> = None;
    let mut escaped = false;
    let mut chars = expr.chars().enumerate().peekable();
    while let Some((i, c)) = chars.next() {
        if let Some(q) = quote {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == q {
                quote = None;
            }
            continue;
        }
        let next = chars.peek().map(|&(_, n)| n);
        let counted = match c {
            '\'' | '"' | '`' => {
                quote = Some(c);
                false
            }
            '[' | '(' | '{' => {
                depth += 1;
                if depth > JMESPATH_MAX_DEPTH {
                    return Err(LimitError {
                        offset: i,
                        message: format!(
                            "nests deeper than {JMESPATH_MAX_DEPTH} levels, the limit \
                             (brackets, parentheses and braces inside each other)"
                        ),
                    });
                }
                true
            }
            ']' | ')' | '}' => {
                depth = depth.saturating_sub(1);
                false
            }
            // Two-character operators count once.
            '|' | '&' | '=' | '!' | '<' | '>' => {
                if matches!(
                    (c, next),
                    ('|', Some('|')) | ('&', Some('&')) | ('=' | '!' | '<' | '>', Some('='))
                ) {
                    chars.next();
                }
                true
            }
            '.' => true,
            _ => false,
        };
        if counted {
            operators += 1;
            if operators > JMESPATH_MAX_OPERATORS {
                return Err(LimitError {
                    offset: i,
                    message: format!(
                        "has more than {JMESPATH_MAX_OPERATORS} brackets and operators, the limit"
                    ),
                });
            }
        }
    }
    Ok(())
}

/// Checks a parsed expression's depth against [`JMESPATH_MAX_DEPTH`] (evaluation recurses
/// once per level); the error is at the first node too deep.
pub fn jmespath_depth(ast: &Ast) -> Result<(), LimitError> {
    match deepest(ast, 1) {
        Some(offset) => Err(LimitError {
            offset,
            message: format!("nests deeper than {JMESPATH_MAX_DEPTH} levels, the limit"),
        }),
        None => Ok(()),
    }
}

/// The offset of the first node deeper than the limit, `level` being `ast`'s.
fn deepest(ast: &Ast, level: usize) -> Option<usize> {
    if level > JMESPATH_MAX_DEPTH {
        return Some(offset(ast));
    }
    let next = level + 1;
    let children: Vec<&Ast> = match ast {
        Ast::Comparison { lhs, rhs, .. }
        | Ast::Projection { lhs, rhs, .. }
        | Ast::And { lhs, rhs, .. }
        | Ast::Or { lhs, rhs, .. }
        | Ast::Subexpr { lhs, rhs, .. } => vec![lhs, rhs],
        Ast::Condition {
            predicate, then, ..
        } => vec![predicate, then],
        Ast::Expref { ast, .. } => vec![ast],
        Ast::Flatten { node, .. } | Ast::Not { node, .. } | Ast::ObjectValues { node, .. } => {
            vec![node]
        }
        Ast::Function { args, .. } => args.iter().collect(),
        Ast::MultiList { elements, .. } => elements.iter().collect(),
        Ast::MultiHash { elements, .. } => elements.iter().map(|kv| &kv.value).collect(),
        Ast::Identity { .. }
        | Ast::Field { .. }
        | Ast::Index { .. }
        | Ast::Literal { .. }
        | Ast::Slice { .. } => vec![],
    };
    children.into_iter().find_map(|c| deepest(c, next))
}

fn offset(ast: &Ast) -> usize {
    match ast {
        Ast::Comparison { offset, .. }
        | Ast::Projection { offset, .. }
        | Ast::And { offset, .. }
        | Ast::Or { offset, .. }
        | Ast::Subexpr { offset, .. }
        | Ast::Condition { offset, .. }
        | Ast::Expref { offset, .. }
        | Ast::Flatten { offset, .. }
        | Ast::Not { offset, .. }
        | Ast::ObjectValues { offset, .. }
        | Ast::Function { offset, .. }
        | Ast::MultiList { offset, .. }
        | Ast::MultiHash { offset, .. }
        | Ast::Identity { offset }
        | Ast::Field { offset, .. }
        | Ast::Index { offset, .. }
        | Ast::Literal { offset, .. }
        | Ast::Slice { offset, .. } => *offset,
    }
}

/// What to say when rendering failed with `e` because of a limit: the limit, and why it is
/// there; `None` for other errors.
pub fn template_limit_error(e: &minijinja::Error) -> Option<String> {
    if e.kind() == minijinja::ErrorKind::OutOfFuel {
        return Some(format!(
            "the template did more work than the limit of {TEMPLATE_FUEL} fuel (about that many \
             instructions, or 64 bytes of data each) for one render; the limit is fixed, so a \
             runaway template fails its item instead of exhausting the runner"
        ));
    }
    let recursion = e.kind() == minijinja::ErrorKind::InvalidOperation
        && e.detail().is_some_and(|d| d.contains("recursion limit"));
    recursion.then(|| {
        format!(
            "the template recursed deeper than the limit of {TEMPLATE_RECURSION_LIMIT} (a macro \
             call counts about 10); the limit is fixed: minijinja recurses on the thread's stack"
        )
    })
}

/// The error for a template whose rendered value is `len` bytes.
pub fn template_output_error(len: usize) -> Option<String> {
    (len > TEMPLATE_MAX_OUTPUT).then(|| {
        format!(
            "the rendered value is {len} bytes or more, over the limit of {TEMPLATE_MAX_OUTPUT} bytes \
             (1 MiB) for one template; the limit is fixed: AWS parameters are far smaller"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prescan_counts_outside_literals_only() {
        assert!(jmespath_prescan("Volumes[?State=='available'].{id: VolumeId}").is_ok());
        let deep = format!("{}a{}", "(".repeat(65), ")".repeat(65));
        let e = jmespath_prescan(&deep).unwrap_err();
        assert_eq!(e.offset, 64);
        assert!(e.message.contains("64 levels"), "{}", e.message);
        // Brackets inside strings and literals are text.
        let quoted = format!("'{}' && `\"{}\"`", "[".repeat(500), "{".repeat(500));
        assert!(jmespath_prescan(&quoted).is_ok());
        let chain = format!("a{}", "[*]".repeat(129));
        assert!(
            jmespath_prescan(&chain)
                .unwrap_err()
                .message
                .contains("128")
        );
    }

    #[test]
    fn depth_is_measured_on_the_parsed_expression() {
        let ok = jmespath::parse("a.b.c[?d == `1`] | [0]").unwrap();
        assert!(jmespath_depth(&ok).is_ok());
        let chain = format!("a{}", ".a".repeat(100));
        let e = jmespath_depth(&jmespath::parse(&chain).unwrap()).unwrap_err();
        assert!(e.message.contains("64"), "{}", e.message);
    }
}
