//! The schema and the serde types must agree on structure: a document the schema accepts must
//! deserialize (otherwise validation passes and lowering fails), and a structural mistake
//! (unknown key, wrong type, unknown enum value) must be rejected by both. Value constraints
//! (patterns, ranges, lengths) are the schema's alone: serde accepting `concurrency: 0` is
//! expected, which is why the schema is the validator of record. Checked over the catalog,
//! the compile fixtures and the broken-runbook corpus, plus targeted edits.
use orgop_syntax::model::Runbook;
use serde_json::{Value, json};

fn verdicts(doc: &Value) -> (bool, bool) {
    let schema: Value = serde_json::from_str(orgop_check::schema::SCHEMA_TEXT).unwrap();
    let by_schema = jsonschema::draft202012::new(&schema).unwrap().is_valid(doc);
    let by_serde = serde_json::from_value::<Runbook>(doc.clone()).is_ok();
    (by_schema, by_serde)
}

/// Schema-valid implies serde-valid.
fn agree(label: &str, doc: &Value) -> (bool, bool) {
    let (by_schema, by_serde) = verdicts(doc);
    assert!(
        !by_schema || by_serde,
        "{label}: the schema accepts what serde rejects"
    );
    (by_schema, by_serde)
}

#[test]
fn schema_and_types_agree_on_every_runbook_in_the_repo() {
    let root = orgop_testkit::repo();
    let mut n = 0;
    for dir in ["runbooks", "tests/compile", "tests/invalid"] {
        for e in std::fs::read_dir(root.join(dir)).unwrap() {
            let path = e.unwrap().path();
            if path.extension().and_then(|x| x.to_str()) != Some("yaml") {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            if let Ok(loaded) = orgop_syntax::load("x.yaml", &text) {
                agree(&path.display().to_string(), &loaded.value);
                n += 1;
            }
        }
    }
    assert!(n >= 40, "{n}");
}

#[test]
fn schema_and_types_agree_on_edge_cases() {
    let base = json!({
        "name": "x", "description": "d", "version": 1,
        "targets": {"regions": ["us-east-1"]}, "role": {"name": "R"},
        "steps": [{"id": "s", "call": "ec2:DescribeVolumes"}],
        "report": {"from": "s", "resource_id": "VolumeId"}
    });
    agree("base", &base);
    // (edit, structural: both must reject)
    let edits: Vec<(&str, Value, bool)> = vec![
        ("/targets/regions", json!("enabled"), false),
        ("/targets/regions", json!("all"), true),
        ("/targets/regions", json!([]), false),
        (
            "/targets/account_tags",
            json!({"env": "prod", "team": ["a", "b"]}),
            false,
        ),
        ("/targets/account_tags", json!({"env": 3}), true),
        ("/concurrency", json!(0), false),
        ("/concurrency", json!(1000), false),
        ("/concurrency", json!(1001), false),
        ("/concurrency", Value::Null, false),
        ("/version", json!(0), false),
        (
            "/params",
            json!({"p": {"type": "integer", "default": 1, "minimum": 0.5}}),
            false,
        ),
        ("/params", json!({"p": {"type": "float"}}), true),
        ("/shared", json!({"a": [1, {"b": null}]}), false),
        (
            "/execution",
            json!({"map": "distributed", "tolerated_failure_percentage": 101}),
            false,
        ),
        (
            "/execution",
            json!({"map": "inline", "inline_max_items": 1}),
            false,
        ),
        (
            "/safety",
            json!({"protected_tags": {"k": ["v"]}, "max_actions_per_run": 0}),
            false,
        ),
        ("/steps/0/paginate", json!("yes"), true),
        ("/steps/0/ignore_errors", json!([""]), false),
        ("/steps/0/extra", json!(1), true),
        ("/report/columns", json!({"a": "A", "b": 1}), true),
        ("/role/session_name", json!("x"), false),
    ];
    for (pointer, value, structural) in edits {
        let mut doc = base.clone();
        let (parent, key) = pointer.rsplit_once('/').unwrap();
        doc.pointer_mut(parent)
            .unwrap()
            .as_object_mut()
            .unwrap()
            .insert(key.to_string(), value.clone());
        let label = format!("{pointer} = {value}");
        let (by_schema, by_serde) = agree(&label, &doc);
        if structural {
            assert!(
                !by_schema && !by_serde,
                "{label}: a structural mistake both must reject"
            );
        }
    }
}
