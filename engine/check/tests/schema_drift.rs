//! `schema/runbook.schema.json` is generated from the runbook types; this fails when it drifts.
//! Regenerate with `ORGOP_UPDATE_SCHEMA=1 cargo test -p orgop-check --test schema_drift`.
use orgop_check::schema;

#[test]
fn checked_in_schema_matches_the_types() {
    let generated = schema::generate();
    let path = orgop_testkit::repo().join("schema/runbook.schema.json");
    if std::env::var_os("ORGOP_UPDATE_SCHEMA").is_some() {
        std::fs::write(path, &generated).unwrap();
        return;
    }
    assert!(
        generated == schema::SCHEMA_TEXT,
        "schema/runbook.schema.json is stale: run `ORGOP_UPDATE_SCHEMA=1 cargo test -p orgop-check --test schema_drift`"
    );
}

#[test]
fn schema_is_draft_2020_12_and_strict() {
    let v: serde_json::Value = serde_json::from_str(schema::SCHEMA_TEXT).unwrap();
    assert_eq!(v["$schema"], "https://json-schema.org/draft/2020-12/schema");
    assert_eq!(v["additionalProperties"], false);
    for def in ["Step", "Targets", "Role", "Report", "ParamSpec"] {
        assert_eq!(v["$defs"][def]["additionalProperties"], false, "{def}");
    }
}
