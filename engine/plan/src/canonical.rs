//! Deterministic JSON text: keys sorted at every level, two-space indentation, final newline.
//! Every file orgop generates (schema, ASL, plans) goes through here, so output is byte for
//! byte the same whatever features of `serde_json` other crates turn on.
use serde_json::Value;

/// `v` with every object's keys sorted.
pub fn sorted(v: Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut entries: Vec<_> = m.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(entries.into_iter().map(|(k, v)| (k, sorted(v))).collect())
        }
        Value::Array(items) => Value::Array(items.into_iter().map(sorted).collect()),
        other => other,
    }
}

/// Pretty, sorted JSON with a final newline.
pub fn to_string(v: &Value) -> String {
    let mut text =
        serde_json::to_string_pretty(&sorted(v.clone())).expect("a JSON value serializes");
    text.push('\n');
    text
}
