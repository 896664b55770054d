//! JSON Schema validation of a loaded runbook, with errors mapped back to source spans.
//!
//! The schema is `schema/runbook.schema.json`, compiled into the binary: the same file editors
//! use. It is generated from the `orgop-syntax` types ([`generate`]); a test fails when the
//! checked-in file drifts. Guarantees: every schema violation becomes one [`Diagnostic`] at the
//! offending key or value, in author terms ("unknown key `pagniate` in step", not a pointer).
use crate::suggest;
use orgop_syntax::{Diagnostic, Loaded, NodeSpans};
use serde_json::Value;
use std::sync::OnceLock;

/// The checked-in schema text.
pub const SCHEMA_TEXT: &str = include_str!("../../../schema/runbook.schema.json");

/// The schema as generated from the Rust types, pretty-printed with sorted keys and a final
/// newline: what `schema/runbook.schema.json` must contain.
pub fn generate() -> String {
    let schema = schemars::schema_for!(orgop_syntax::model::Runbook);
    orgop_plan::canonical::to_string(&serde_json::to_value(&schema).expect("a schema is JSON"))
}

fn schema() -> &'static Value {
    static SCHEMA: OnceLock<Value> = OnceLock::new();
    SCHEMA.get_or_init(|| serde_json::from_str(SCHEMA_TEXT).expect("the checked-in schema is JSON"))
}

/// The property names the schema allows in `$defs/<def>`.
pub fn properties_of(def: &str) -> Vec<String> {
    schema()
        .pointer(&format!("/$defs/{def}/properties"))
        .and_then(Value::as_object)
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default()
}

fn validator() -> &'static jsonschema::Validator {
    static VALIDATOR: OnceLock<jsonschema::Validator> = OnceLock::new();
    VALIDATOR.get_or_init(|| {
        jsonschema::draft202012::new(schema()).expect("the checked-in schema is a valid schema")
    })
}

/// Every schema violation of `loaded`, located.
pub fn check(file: &str, loaded: &Loaded) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for err in validator().iter_errors(&loaded.value) {
        report(file, loaded, &err, &mut out);
    }
    out
}

fn report(
    file: &str,
    loaded: &Loaded,
    err: &jsonschema::ValidationError<'_>,
    out: &mut Vec<Diagnostic>,
) {
    use jsonschema::error::ValidationErrorKind as K;
    let v = Violation::new(file, loaded, err);
    let (field, instance) = (&v.field, v.instance);
    match err.kind() {
        K::AdditionalProperties { unexpected } => v.unknown_keys(unexpected, out),
        K::Required { property } => out.push(v.missing_key(property)),
        K::Type { .. } => out.push(v.wrong_type()),
        K::Enum { options } => out.push(v.not_an_option(options)),
        K::Pattern { .. } => out.push(pattern_error(file, &v.pointer, v.node.value, instance)),
        K::Minimum { limit } | K::ExclusiveMinimum { limit } => out.push(v.error(format!(
            "`{field}` must be at least {limit}, not {}",
            short(instance)
        ))),
        K::Maximum { limit } | K::ExclusiveMaximum { limit } => out.push(v.error(format!(
            "`{field}` must be at most {limit}, not {}",
            short(instance)
        ))),
        K::MinItems { limit } => out.push(v.error(format!(
            "`{field}` needs at least {limit} entr{}",
            if *limit == 1 { "y" } else { "ies" }
        ))),
        K::MinLength { limit } => out.push(v.error(format!(
            "`{field}` must be at least {limit} character{} long",
            if *limit == 1 { "" } else { "s" }
        ))),
        K::AnyOf { context } | K::OneOfNotValid { context } => v.no_branch(context, out),
        _ => out.push(v.error(err.to_string())),
    }
}

/// One schema violation, located: what the diagnostic for each kind is made from.
struct Violation<'a> {
    file: &'a str,
    loaded: &'a Loaded,
    /// Where the offending value is: its JSON pointer and its spans.
    pointer: String,
    node: NodeSpans,
    /// The schema object holding the failing keyword, when the schema path leads to one.
    schema: Option<&'static Value>,
    /// What that schema object describes, in author terms ("step", "`targets`").
    context: String,
    /// The offending value.
    instance: &'a Value,
    /// The offending key or list item, in author terms.
    field: String,
}

impl<'a> Violation<'a> {
    fn new(file: &'a str, loaded: &'a Loaded, err: &'a jsonschema::ValidationError<'_>) -> Self {
        let pointer = err.instance_path().as_str().to_string();
        let (schema, context) = navigate(err.schema_path().as_str());
        Violation {
            file,
            loaded,
            node: loaded.spans.resolve(&pointer),
            schema,
            context,
            instance: err.instance(),
            field: last_token(&pointer),
            pointer,
        }
    }

    /// An error at the offending value.
    fn error(&self, message: String) -> Diagnostic {
        Diagnostic::error(self.file, self.node.value, message)
    }

    /// `additionalProperties`: one diagnostic per unknown key, at the key.
    fn unknown_keys(&self, unexpected: &[String], out: &mut Vec<Diagnostic>) {
        let allowed: Vec<String> = self
            .schema
            .and_then(|parent| parent.get("properties"))
            .and_then(Value::as_object)
            .map(|p| p.keys().cloned().collect())
            .unwrap_or_default();
        for key in unexpected {
            let at = self
                .loaded
                .spans
                .get(&orgop_syntax::pointer_push(&self.pointer, key))
                .map(|n| n.key_or_value())
                .unwrap_or(self.node.key_or_value());
            let mut d = Diagnostic::error(
                self.file,
                at,
                format!("unknown key `{key}` in {}", self.context),
            );
            d.hint = suggest::did_you_mean(key, allowed.iter().map(String::as_str))
                .or_else(|| Some(format!("allowed keys: {}", allowed.join(", "))));
            out.push(d);
        }
    }

    /// `required`.
    fn missing_key(&self, property: &Value) -> Diagnostic {
        let name = property.as_str().unwrap_or_default();
        Diagnostic::error(
            self.file,
            self.node.key_or_value(),
            format!("missing required key `{name}` in {}", self.context),
        )
    }

    /// `type`: the whole document is not a mapping, or one value has the wrong type.
    fn wrong_type(&self) -> Diagnostic {
        if self.pointer.is_empty() {
            return self
                .error(format!(
                    "a runbook is a YAML mapping, but this file holds {}",
                    kind_of(self.instance)
                ))
                .with_hint("start from runbooks/unused-ebs.yaml: `name:`, `description:`, `targets:`, `steps:`, ...");
        }
        let expected = self
            .schema
            .and_then(|s| s.get("type"))
            .map(type_words)
            .unwrap_or_else(|| "another type".into());
        self.error(format!(
            "`{}` must be {expected}, not {}",
            self.field,
            kind_of(self.instance)
        ))
    }

    /// `enum`: suggests the nearest option, or lists them.
    fn not_an_option(&self, options: &Value) -> Diagnostic {
        let list: Vec<String> = options
            .as_array()
            .map(|a| a.iter().map(short).collect())
            .unwrap_or_default();
        let mut d = self.error(format!(
            "{} is not a valid `{}`",
            short(self.instance),
            self.field
        ));
        d.hint = self
            .instance
            .as_str()
            .and_then(|s| {
                let names: Vec<&str> = options
                    .as_array()
                    .map(|a| a.iter().filter_map(Value::as_str).collect())
                    .unwrap_or_default();
                suggest::did_you_mean(s, names)
            })
            .or_else(|| Some(format!("use one of: {}", list.join(", "))));
        d
    }

    /// `anyOf` / `oneOf` with no valid branch. Reports the branch whose shape matched (its
    /// errors are deeper and more useful); when no branch matched, says which forms are
    /// accepted.
    fn no_branch(
        &self,
        branches: &[Vec<jsonschema::ValidationError<'static>>],
        out: &mut Vec<Diagnostic>,
    ) {
        use jsonschema::error::ValidationErrorKind as K;
        let matched: Vec<_> = branches
            .iter()
            .filter(|branch| {
                !branch.iter().any(|e| {
                    e.instance_path().as_str() == self.pointer
                        && matches!(
                            e.kind(),
                            K::Type { .. }
                                | K::Enum { .. }
                                | K::Constant { .. }
                                | K::OneOfNotValid { .. }
                                | K::AnyOf { .. }
                        )
                })
            })
            .collect();
        if let [branch] = matched.as_slice() {
            for e in branch.iter() {
                report(self.file, self.loaded, e, out);
            }
            return;
        }
        let forms: Vec<Value> = self
            .schema
            .and_then(|s| s.get("anyOf").or_else(|| s.get("oneOf")))
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        out.push(self.not_a_form(&forms));
    }

    /// The value fits none of the schema's `forms`: names the constants it could be, or the
    /// shapes.
    fn not_a_form(&self, forms: &[Value]) -> Diagnostic {
        let field = &self.field;
        let consts: Vec<String> = forms.iter().flat_map(consts_of).collect();
        if !consts.is_empty() && consts.len() == forms.len() && self.instance.is_string() {
            let word = self.instance.as_str().unwrap_or_default();
            let mut d = self.error(format!("`{word}` is not a valid `{field}`"));
            d.hint = suggest::did_you_mean(word, consts.iter().map(String::as_str))
                .or_else(|| Some(format!("use one of: {}", consts.join(", "))));
            return d;
        }
        let words = forms
            .iter()
            .map(form_words)
            .collect::<Vec<_>>()
            .join(" or ");
        self.error(format!(
            "`{field}` must be {words}, not {}",
            kind_of(self.instance)
        ))
    }
}

/// Follows a schema path (which may pass through `$ref`s) from the root. Returns the schema
/// object that holds the failing keyword, and the author-facing name of what it describes.
fn navigate(schema_path: &str) -> (Option<&'static Value>, String) {
    let root = schema();
    let mut node = root;
    let mut name = "the runbook".to_string();
    let tokens: Vec<String> = schema_path
        .split('/')
        .skip(1)
        .map(|t| t.replace("~1", "/").replace("~0", "~"))
        .collect();
    // The last token is the keyword itself; stop before it.
    let n = tokens.len().saturating_sub(1);
    for (i, tok) in tokens[..n].iter().enumerate() {
        if i > 0 && tokens[i - 1] == "$defs" {
            name = def_name(tok);
        }
        let next = if tok == "$ref" {
            node.get("$ref")
                .and_then(Value::as_str)
                .and_then(|r| r.strip_prefix("#"))
                .and_then(|p| {
                    if let Some(def) = p.strip_prefix("/$defs/") {
                        name = def_name(def);
                    }
                    root.pointer(p)
                })
        } else {
            match node {
                Value::Object(m) => m.get(tok.as_str()),
                Value::Array(a) => tok.parse::<usize>().ok().and_then(|i| a.get(i)),
                _ => None,
            }
        };
        match next {
            Some(v) => node = v,
            None => return (None, name),
        }
    }
    // A `$ref` right at the failing node: the keyword lives in the referenced definition.
    if let Some(r) = node.get("$ref").and_then(Value::as_str)
        && let Some(def) = r.strip_prefix("#/$defs/")
    {
        name = def_name(def);
        if let Some(target) = root.pointer(&format!("/$defs/{def}")) {
            node = target;
        }
    }
    (Some(node), name)
}

fn def_name(def: &str) -> String {
    match def {
        "Step" => "step".into(),
        "ParamSpec" => "parameter".into(),
        other => {
            let mut s = String::new();
            for (i, c) in other.chars().enumerate() {
                if c.is_ascii_uppercase() && i > 0 {
                    s.push(' ');
                }
                s.push(c.to_ascii_lowercase());
            }
            format!("`{s}`")
        }
    }
}

fn last_token(pointer: &str) -> String {
    let mut segs = pointer.rsplit('/');
    let last = segs.next().unwrap_or_default();
    if last.parse::<usize>().is_ok() {
        // An item of a list: name the list.
        let list = segs.next().unwrap_or_default();
        format!("{list}[{last}]")
    } else if last.is_empty() {
        "runbook".into()
    } else {
        last.replace("~1", "/").replace("~0", "~")
    }
}

fn kind_of(v: &Value) -> String {
    match v {
        Value::Null => "null (empty)".into(),
        Value::Bool(_) => "a boolean".into(),
        Value::Number(n) if n.is_i64() || n.is_u64() => "an integer".into(),
        Value::Number(_) => "a number".into(),
        Value::String(_) => "a string".into(),
        Value::Array(_) => "a list".into(),
        Value::Object(_) => "a mapping".into(),
    }
}

fn type_word(t: &str) -> &'static str {
    match t {
        "string" => "a string",
        "integer" => "an integer",
        "number" => "a number",
        "boolean" => "`true` or `false`",
        "array" => "a list",
        "object" => "a mapping",
        "null" => "empty",
        _ => "a value",
    }
}

fn type_words(t: &Value) -> String {
    match t {
        Value::String(s) => type_word(s).into(),
        Value::Array(items) => items
            .iter()
            .filter_map(Value::as_str)
            .filter(|s| *s != "null")
            .map(type_word)
            .collect::<Vec<_>>()
            .join(" or "),
        _ => "a value".into(),
    }
}

/// The constant values a schema branch accepts, following `$ref` and nested `oneOf`.
fn consts_of(branch: &Value) -> Vec<String> {
    if let Some(c) = branch.get("const").and_then(Value::as_str) {
        return vec![c.to_string()];
    }
    if let Some(r) = branch.get("$ref").and_then(Value::as_str)
        && let Some(target) = r.strip_prefix('#').and_then(|p| schema().pointer(p))
    {
        return consts_of(target);
    }
    if let Some(list) = branch
        .get("oneOf")
        .or_else(|| branch.get("anyOf"))
        .and_then(Value::as_array)
    {
        return list.iter().flat_map(consts_of).collect();
    }
    if let Some(e) = branch.get("enum").and_then(Value::as_array) {
        return e
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect();
    }
    Vec::new()
}

fn form_words(branch: &Value) -> String {
    let consts = consts_of(branch);
    if !consts.is_empty() {
        return consts
            .iter()
            .map(|c| format!("`{c}`"))
            .collect::<Vec<_>>()
            .join(" or ");
    }
    if let Some(e) = branch.get("enum").and_then(Value::as_array) {
        return e.iter().map(short).collect::<Vec<_>>().join(" or ");
    }
    if let Some(r) = branch.get("$ref").and_then(Value::as_str)
        && let Some(target) = r.strip_prefix('#').and_then(|p| schema().pointer(p))
    {
        return form_words(target);
    }
    if let Some(t) = branch.get("type") {
        let words = type_words(t);
        if t == "array"
            && let Some(item_t) = branch.pointer("/items/type").and_then(Value::as_str)
        {
            return format!("a list of {item_t}s");
        }
        return words;
    }
    "another form".into()
}

fn short(v: &Value) -> String {
    let s = match v {
        Value::String(s) => format!("`{s}`"),
        other => format!("`{other}`"),
    };
    if s.chars().count() > 60 {
        format!("{}…`", s.chars().take(58).collect::<String>())
    } else {
        s
    }
}

fn pattern_error(file: &str, pointer: &str, at: orgop_syntax::Span, v: &Value) -> Diagnostic {
    let text = v.as_str().unwrap_or_default();
    let segs: Vec<&str> = pointer.split('/').collect();
    let field = segs
        .iter()
        .rev()
        .find(|s| s.parse::<usize>().is_err())
        .copied()
        .unwrap_or_default();
    let (message, hint): (String, Option<String>) = match field {
        "name" if segs.len() == 2 => (
            format!("runbook name `{text}` is not valid"),
            Some("use lowercase letters, digits and `-`, starting with a letter (at most 64)".into()),
        ),
        "id" => (
            format!("step id `{text}` is not valid"),
            Some(format!(
                "use lowercase letters, digits and `_`, starting with a letter, e.g. `{}`",
                suggest_id(text)
            )),
        ),
        "call" => (
            format!("`{text}` is not a call name"),
            Some(match suggest_call(text) {
                Some(fixed) => format!("did you mean `{fixed}`? Calls are `service:Operation`, named like IAM actions"),
                None => "calls are `service:Operation`, named like IAM actions, e.g. `ec2:DescribeVolumes`".into(),
            }),
        ),
        "accounts" | "exclude_accounts" => (
            format!("`{text}` is not an AWS account id"),
            Some("account ids are 12 digits; quote them so YAML keeps leading zeros".into()),
        ),
        "regions" => (
            format!("`{text}` is not a region name"),
            Some("regions look like `us-east-1`; use `regions: enabled` for every enabled region".into()),
        ),
        "organizational_units" => (
            format!("`{text}` is not an organizational unit id"),
            Some("OU ids look like `ou-ab12-cd34ef56`; the root is `r-ab12`".into()),
        ),
        "session_name" | "external_id" | "name" => (
            format!("`{text}` is not a valid `{field}`"),
            Some("use letters, digits and `+=,.@-_` only".into()),
        ),
        _ => (format!("`{text}` is not a valid `{field}`"), None),
    };
    let mut d = Diagnostic::error(file, at, message);
    d.hint = hint;
    d
}

fn suggest_id(text: &str) -> String {
    let mut s: String = text
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    if !s.starts_with(|c: char| c.is_ascii_lowercase()) {
        s.insert(0, 's');
    }
    s
}

fn suggest_call(text: &str) -> Option<String> {
    let (service, op) = text
        .split_once("::")
        .or_else(|| text.split_once(':'))
        .or_else(|| text.split_once('.'))
        .or_else(|| text.split_once(' '))?;
    let service = service.trim().to_ascii_lowercase();
    let op = op.trim();
    let mut chars = op.chars();
    let first = chars.next()?.to_ascii_uppercase();
    let op: String = std::iter::once(first)
        .chain(chars)
        .filter(|c| c.is_ascii_alphanumeric())
        .collect();
    let ok = !service.is_empty()
        && service
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    ok.then(|| format!("{service}:{op}")).filter(|s| s != text)
}

#[cfg(test)]
mod tests {
    use orgop_syntax::ids;

    /// The `is_*` functions `orgop run` uses on its flags accept exactly what the schema's
    /// patterns accept.
    #[test]
    fn id_functions_agree_with_the_schema_patterns() {
        let samples = [
            "",
            "us",
            "us-1",
            "us-east",
            "us-east-1",
            "eu-central-2",
            "us-gov-west-1",
            "cn-north-1",
            "ap-southeast-10",
            "US-EAST-1",
            "US_EAST",
            "us-east-1a",
            "use-east-1",
            "us--1",
            "us-east-1-",
            "-us-east-1",
            "us-éast-1",
            "us-east-١",
            "012345678901",
            "12345",
            "1234567890123",
            "12345678901a",
            "ou-ab12-cd34ef56",
            "r-ab12",
            "ou-abcd-12345678",
            "ou-",
            "ou-ab1-cd34ef56",
            "ou-ab12-cd34ef5",
            "ou-ab12",
            "OU-ab12-cd34ef56",
            "r-ab1",
            "r-",
            "ou-ab12-cd34ef56-x",
            "x-ab12",
            "r-0123456789abcdef0123456789abcdef",
            "r-0123456789abcdef0123456789abcdef0",
        ];
        type Rule = (&'static str, fn(&str) -> bool);
        let rules: [Rule; 3] = [
            (ids::REGION_PATTERN, ids::is_region),
            (ids::ACCOUNT_ID_PATTERN, ids::is_account_id),
            (ids::OU_ID_PATTERN, ids::is_ou_id),
        ];
        for (pattern, f) in rules {
            let v = jsonschema::draft202012::new(&serde_json::json!({"pattern": pattern}))
                .expect("pattern compiles");
            for s in samples {
                assert_eq!(
                    v.is_valid(&serde_json::json!(s)),
                    f(s),
                    "{pattern} on {s:?}"
                );
            }
        }
    }
}
