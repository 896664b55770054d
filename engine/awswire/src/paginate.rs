//! Pagination from botocore's `paginators-1.json`.
//!
//! Input: the paginators document of a service. Guarantees: every token, `more_results` and
//! result-key expression is compiled as JMESPath when the document is parsed (a bad one is a
//! [`PaginatorError`], not a surprise mid-run); [`Paginator::next_input`] returns the input
//! for the next page exactly when botocore would fetch one (more results indicated, at least
//! one non-empty token, and the tokens differ from the ones just sent) and `None` otherwise,
//! so a caller that loops on it terminates even against a service that repeats a token.

use indexmap::IndexMap;
use serde::Deserialize;
use serde_json::{Map, Value};

/// An invalid paginators document.
#[derive(Debug, thiserror::Error)]
pub enum PaginatorError {
    /// Not JSON of the paginators layout.
    #[error("invalid paginators document: {0}")]
    Json(#[from] serde_json::Error),
    /// An expression that is not valid JMESPath.
    #[error("paginator {operation}: invalid expression `{expression}`: {message}")]
    Expression {
        /// Operation name.
        operation: String,
        /// The expression.
        expression: String,
        /// The parser's message.
        message: String,
    },
    /// Different numbers of input and output tokens.
    #[error("paginator {0}: input_token and output_token differ in length")]
    TokenMismatch(String),
}

#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    fn into_vec(self) -> Vec<String> {
        match self {
            OneOrMany::One(s) => vec![s],
            OneOrMany::Many(v) => v,
        }
    }
}

#[derive(Deserialize)]
struct RawPaginator {
    input_token: Option<OneOrMany>,
    output_token: Option<OneOrMany>,
    more_results: Option<String>,
    limit_key: Option<String>,
    result_key: Option<OneOrMany>,
    #[serde(default)]
    non_aggregate_keys: Vec<String>,
}

#[derive(Deserialize)]
struct RawPaginators {
    #[serde(default)]
    pagination: IndexMap<String, RawPaginator>,
}

/// The paginators of one service.
#[derive(Debug, Clone, Default)]
pub struct Paginators {
    by_operation: IndexMap<String, Paginator>,
}

impl Paginators {
    /// Parses a `paginators-1.json` document.
    pub fn from_json(bytes: &[u8]) -> Result<Paginators, PaginatorError> {
        let raw: RawPaginators = serde_json::from_slice(bytes)?;
        let mut by_operation = IndexMap::new();
        for (op, r) in raw.pagination {
            let compile = |e: &str| {
                jmespath::compile(e).map_err(|err| PaginatorError::Expression {
                    operation: op.clone(),
                    expression: e.to_string(),
                    message: err.to_string(),
                })
            };
            let input_tokens = r.input_token.map(OneOrMany::into_vec).unwrap_or_default();
            let output_tokens = r.output_token.map(OneOrMany::into_vec).unwrap_or_default();
            if input_tokens.len() != output_tokens.len() {
                return Err(PaginatorError::TokenMismatch(op));
            }
            let result_keys = r.result_key.map(OneOrMany::into_vec).unwrap_or_default();
            let p = Paginator {
                operation: op.clone(),
                output_exprs: output_tokens
                    .iter()
                    .map(|e| compile(e))
                    .collect::<Result<_, _>>()?,
                more_expr: r.more_results.as_deref().map(compile).transpose()?,
                result_exprs: result_keys
                    .iter()
                    .map(|e| compile(e))
                    .collect::<Result<_, _>>()?,
                input_tokens,
                output_tokens,
                more_results: r.more_results,
                limit_key: r.limit_key,
                result_keys,
                non_aggregate_keys: r.non_aggregate_keys,
            };
            by_operation.insert(op, p);
        }
        Ok(Paginators { by_operation })
    }

    /// The paginator of an operation, if it has one.
    pub fn get(&self, operation: &str) -> Option<&Paginator> {
        self.by_operation.get(operation)
    }

    /// Names of the paginated operations.
    pub fn operation_names(&self) -> impl Iterator<Item = &str> {
        self.by_operation.keys().map(String::as_str)
    }
}

/// How one operation paginates.
#[derive(Debug, Clone)]
pub struct Paginator {
    /// The operation.
    pub operation: String,
    /// Input members that carry the tokens (`NextToken`, `Marker`).
    pub input_tokens: Vec<String>,
    /// JMESPath expressions on the output giving each token, same order as `input_tokens`.
    pub output_tokens: Vec<String>,
    /// JMESPath expression on the output that is true while more pages exist.
    pub more_results: Option<String>,
    /// Input member limiting the page size (`MaxResults`).
    pub limit_key: Option<String>,
    /// JMESPath expressions of the lists collected across pages (`Volumes`).
    pub result_keys: Vec<String>,
    /// Output members that are not aggregated (kept from the first/last page).
    pub non_aggregate_keys: Vec<String>,
    output_exprs: Vec<jmespath::Expression<'static>>,
    more_expr: Option<jmespath::Expression<'static>>,
    result_exprs: Vec<jmespath::Expression<'static>>,
}

fn search(expr: &jmespath::Expression<'static>, data: &Value) -> Value {
    expr.search(data)
        .ok()
        .and_then(|v| serde_json::to_value(&*v).ok())
        .unwrap_or(Value::Null)
}

fn is_empty_token(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        _ => false,
    }
}

/// Sets `value` at a dotted path (`DistributionList.Items`), creating objects on the way.
fn set_path(root: &mut Value, path: &str, value: Value) {
    let mut cur = root;
    let parts: Vec<&str> = path.split('.').collect();
    for (i, part) in parts.iter().enumerate() {
        if !cur.is_object() {
            *cur = Value::Object(Map::new());
        }
        let obj = cur.as_object_mut().expect("object");
        if i + 1 == parts.len() {
            obj.insert((*part).to_string(), value);
            return;
        }
        cur = obj
            .entry((*part).to_string())
            .or_insert_with(|| Value::Object(Map::new()));
    }
}

/// What follows a page.
#[derive(Debug, Clone, PartialEq)]
pub enum NextPage {
    /// That was the last page.
    Done,
    /// The input for the next page.
    Input(Value),
    /// The service answered the token it was just sent: following it would loop forever
    /// (botocore raises `PaginationError` here). Holds the token(s).
    Repeated(Value),
}

impl Paginator {
    /// The input for the next page given the input just sent and its output, or `None` when
    /// this was the last page or the service repeated the token it was sent (see
    /// [`Paginator::next_page`], which tells the two apart).
    pub fn next_input(&self, input: &Value, output: &Value) -> Option<Value> {
        match self.next_page(input, output) {
            NextPage::Input(v) => Some(v),
            NextPage::Done | NextPage::Repeated(_) => None,
        }
    }

    /// The input tokens of `input`, in the paginator's order: what identifies a page.
    pub fn tokens_of(&self, input: &Value) -> Value {
        Value::Array(
            self.input_tokens
                .iter()
                .map(|name| input.get(name).cloned().unwrap_or(Value::Null))
                .collect(),
        )
    }

    /// What follows the page `output`, answered to `input`.
    pub fn next_page(&self, input: &Value, output: &Value) -> NextPage {
        if let Some(e) = &self.more_expr {
            let more = e.search(output).map(|v| v.is_truthy()).unwrap_or(false);
            if !more {
                return NextPage::Done;
            }
        }
        let tokens: Vec<Value> = self
            .output_exprs
            .iter()
            .map(|e| search(e, output))
            .collect();
        if tokens.iter().all(is_empty_token) {
            return NextPage::Done;
        }
        let mut next = match input {
            Value::Object(o) => o.clone(),
            _ => Map::new(),
        };
        let repeated = self
            .input_tokens
            .iter()
            .zip(&tokens)
            .all(|(name, t)| next.get(name).unwrap_or(&Value::Null) == t);
        if repeated {
            return NextPage::Repeated(Value::Array(tokens));
        }
        for (name, t) in self.input_tokens.iter().zip(tokens) {
            if is_empty_token(&t) {
                next.remove(name);
            } else {
                next.insert(name.clone(), t);
            }
        }
        NextPage::Input(Value::Object(next))
    }

    /// The result-key expressions (`Volumes`, `Contents`, `CommonPrefixes`).
    pub fn result_keys(&self) -> &[String] {
        &self.result_keys
    }

    /// Each result key's value in one page's output (`null` when absent), in
    /// `result_keys` order.
    pub fn page_results(&self, output: &Value) -> Vec<Value> {
        self.result_exprs
            .iter()
            .map(|e| search(e, output))
            .collect()
    }

    /// The pages of one paginated call merged into one result, like `aws ... --paginate`
    /// and botocore's `build_full_result`: each result key (a member name or dotted path)
    /// holds the concatenation of its lists across pages, each non-aggregate key holds its
    /// value from the first page that has it, and nothing else is kept (tokens included).
    pub fn aggregate(&self, pages: &[Value]) -> Value {
        let mut out = Value::Object(Map::new());
        for (key, expr) in self.result_keys.iter().zip(&self.result_exprs) {
            let mut all = Vec::new();
            let mut seen = false;
            for page in pages {
                match search(expr, page) {
                    Value::Array(items) => {
                        seen = true;
                        all.extend(items);
                    }
                    Value::Null => {}
                    other => {
                        seen = true;
                        all.push(other);
                    }
                }
            }
            if seen {
                set_path(&mut out, key, Value::Array(all));
            }
        }
        for key in &self.non_aggregate_keys {
            let Ok(expr) = jmespath::compile(key) else {
                continue;
            };
            if let Some(v) = pages
                .iter()
                .map(|p| search(&expr, p))
                .find(|v| !v.is_null())
            {
                set_path(&mut out, key, v);
            }
        }
        out
    }

    /// `input` with the page size set through the limit key (unchanged when the operation
    /// has none).
    pub fn with_page_size(&self, input: &Value, page_size: u64) -> Value {
        let mut next = match input {
            Value::Object(o) => o.clone(),
            _ => Map::new(),
        };
        if let Some(k) = &self.limit_key {
            next.insert(k.clone(), Value::from(page_size));
        }
        Value::Object(next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn paginators() -> Paginators {
        Paginators::from_json(
            json!({"pagination": {
                "DescribeVolumes": {"input_token": "NextToken", "output_token": "NextToken",
                    "limit_key": "MaxResults", "result_key": "Volumes"},
                "ListObjects": {"input_token": "Marker", "output_token": "NextMarker || Contents[-1].Key",
                    "more_results": "IsTruncated", "limit_key": "MaxKeys",
                    "result_key": ["Contents", "CommonPrefixes"]},
                "ListParts": {"input_token": ["KeyMarker", "UploadIdMarker"],
                    "output_token": ["NextKeyMarker", "NextUploadIdMarker"],
                    "more_results": "IsTruncated", "result_key": "Uploads",
                    "non_aggregate_keys": ["Bucket"]}
            }})
            .to_string()
            .as_bytes(),
        )
        .unwrap()
    }

    #[test]
    fn single_token() {
        let ps = paginators();
        let p = ps.get("DescribeVolumes").unwrap();
        let input = json!({"Filters": []});
        let next = p
            .next_input(&input, &json!({"Volumes": [], "NextToken": "t1"}))
            .unwrap();
        assert_eq!(next, json!({"Filters": [], "NextToken": "t1"}));
        assert_eq!(p.next_input(&next, &json!({"Volumes": []})), None);
        assert_eq!(p.next_input(&next, &json!({"NextToken": ""})), None);
        // A service repeating the token must not loop forever.
        assert_eq!(p.next_input(&next, &json!({"NextToken": "t1"})), None);
        assert_eq!(
            p.with_page_size(&input, 5),
            json!({"Filters": [], "MaxResults": 5})
        );
        assert_eq!(
            p.page_results(&json!({"Volumes": [1, 2]})),
            vec![json!([1, 2])]
        );
    }

    #[test]
    fn more_results_and_expression_tokens() {
        let ps = paginators();
        let p = ps.get("ListObjects").unwrap();
        assert_eq!(p.limit_key.as_deref(), Some("MaxKeys"));
        let input = json!({"Bucket": "b"});
        let out = json!({"IsTruncated": true, "Contents": [{"Key": "a"}, {"Key": "z"}]});
        assert_eq!(
            p.next_input(&input, &out),
            Some(json!({"Bucket": "b", "Marker": "z"}))
        );
        let out = json!({"IsTruncated": true, "NextMarker": "m", "Contents": [{"Key": "z"}]});
        assert_eq!(
            p.next_input(&input, &out),
            Some(json!({"Bucket": "b", "Marker": "m"}))
        );
        let out = json!({"IsTruncated": false, "NextMarker": "m"});
        assert_eq!(p.next_input(&input, &out), None);
        assert_eq!(p.result_keys(), ["Contents", "CommonPrefixes"]);
    }

    #[test]
    fn several_tokens() {
        let ps = paginators();
        let p = ps.get("ListParts").unwrap();
        let input = json!({"Bucket": "b", "KeyMarker": "old"});
        let out = json!({"IsTruncated": true, "NextKeyMarker": "k2", "NextUploadIdMarker": "u2"});
        assert_eq!(
            p.next_input(&input, &out),
            Some(json!({"Bucket": "b", "KeyMarker": "k2", "UploadIdMarker": "u2"}))
        );
        // One token empty: it is removed from the next input, the other is sent.
        let out = json!({"IsTruncated": true, "NextKeyMarker": "k3"});
        assert_eq!(
            p.next_input(&input, &out),
            Some(json!({"Bucket": "b", "KeyMarker": "k3"}))
        );
        assert_eq!(p.non_aggregate_keys, ["Bucket"]);
    }

    #[test]
    fn aggregate_pages() {
        let ps = paginators();
        let p = ps.get("ListObjects").unwrap();
        let pages = [
            json!({"IsTruncated": true, "Contents": [{"Key": "a"}], "Name": "b"}),
            json!({"IsTruncated": false, "Contents": [{"Key": "z"}], "CommonPrefixes": [{"Prefix": "p/"}]}),
        ];
        assert_eq!(
            p.aggregate(&pages),
            json!({"Contents": [{"Key": "a"}, {"Key": "z"}], "CommonPrefixes": [{"Prefix": "p/"}]})
        );
        let p = ps.get("ListParts").unwrap();
        let pages = [
            json!({"Bucket": "b", "Uploads": [1], "NextKeyMarker": "k"}),
            json!({"Bucket": "b", "Uploads": [2, 3]}),
        ];
        assert_eq!(
            p.aggregate(&pages),
            json!({"Bucket": "b", "Uploads": [1, 2, 3]})
        );
        let nested = Paginators::from_json(
            br#"{"pagination": {"ListDistributions": {"input_token": "Marker",
                "output_token": "DistributionList.NextMarker", "more_results": "DistributionList.IsTruncated",
                "result_key": "DistributionList.Items"}}}"#,
        )
        .unwrap();
        let p = nested.get("ListDistributions").unwrap();
        let page =
            json!({"DistributionList": {"IsTruncated": true, "NextMarker": "m", "Items": [1]}});
        assert_eq!(
            p.next_input(&json!({}), &page),
            Some(json!({"Marker": "m"}))
        );
        assert_eq!(
            p.aggregate(&[page.clone(), page]),
            json!({"DistributionList": {"Items": [1, 1]}})
        );
    }

    #[test]
    fn bad_expression_is_reported() {
        let err = Paginators::from_json(
            br#"{"pagination": {"X": {"input_token": "A", "output_token": "[[["}}}"#,
        )
        .unwrap_err();
        assert!(matches!(err, PaginatorError::Expression { .. }), "{err}");
    }
}
