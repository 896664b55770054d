//! Every model of a botocore release loads, and every operation of it validates and
//! serializes a minimal valid input.
//!
//! Opt-in (the models are not in the repository): point `ORGOP_BOTOCORE_DATA` at a folder in
//! botocore's data layout with the `service-2.json` files decompressed
//! (`<service>/<version>/service-2.json`, plus `paginators-1.json` and `waiters-2.json`), and
//! run `cargo test -p orgop-awswire --test botocore_models -- --ignored`.
//!
//! `same_requests_as_botocore` additionally needs `ORGOP_BOTOCORE_REQUESTS`, the output of
//! `tests/botocore_diff.py` run with the same botocore: botocore's own serialization of a
//! sample call of every operation, which ours must match (method, path, query, headers,
//! body; see `header_matches` for the deliberate differences). `same_results_as_botocore`
//! needs `ORGOP_BOTOCORE_RESPONSES`, the output of `tests/botocore_diff_responses.py`: a
//! rendered response per operation and botocore's parse of it, which ours must equal.

use std::path::{Path, PathBuf};

use orgop_awswire::{
    HttpRequest, Operation, Paginators, ServiceModel, ShapeKind, ShapeRef, Waiters,
    apply_sdk_extras, serialize, validate,
};
use serde_json::{Map, Value};

mod common;
use common::{bodies_equal, same, split_uri};

/// A minimal value that satisfies the shape's constraints (required members, enums, min).
fn sample(model: &ServiceModel, r: &ShapeRef) -> Value {
    let shape = model.shape(&r.shape).expect("resolved");
    let min = shape.min.unwrap_or(0.0).max(0.0) as usize;
    match &shape.kind {
        ShapeKind::Structure(s) if s.document => Value::Object(Map::new()),
        ShapeKind::Structure(s) => {
            let mut out = Map::new();
            let mut names: Vec<&String> = s.required.iter().collect();
            if s.union && names.is_empty() {
                names.extend(s.members.keys().take(1));
            }
            for name in names {
                if let Some(m) = s.members.get(name) {
                    out.insert(name.clone(), sample(model, m));
                }
            }
            Value::Object(out)
        }
        ShapeKind::List { member } => {
            Value::Array((0..min).map(|_| sample(model, member)).collect())
        }
        ShapeKind::Map { key, value } => {
            let mut out = Map::new();
            if min > 0 {
                let key = sample(model, key).as_str().unwrap_or("k").to_string();
                out.insert(key, sample(model, value));
            }
            Value::Object(out)
        }
        ShapeKind::String { enum_values } => match enum_values.first() {
            Some(e) => Value::String(e.clone()),
            None => Value::String("x".repeat(min.max(1))),
        },
        ShapeKind::Character => Value::String("x".repeat(min.max(1))),
        ShapeKind::Blob => Value::String("x".repeat(min.max(1))),
        ShapeKind::Boolean => Value::Bool(true),
        ShapeKind::Timestamp => Value::String("2020-01-02T03:04:05Z".into()),
        ShapeKind::Integer(_) => Value::from(shape.min.unwrap_or(1.0).max(1.0) as i64),
        ShapeKind::Float(_) => Value::from(shape.min.unwrap_or(1.0).max(1.0)),
    }
}

fn latest_versions(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut services: Vec<_> = std::fs::read_dir(root)
        .expect("data dir")
        .flatten()
        .collect();
    services.sort_by_key(|e| e.file_name());
    for svc in services {
        let mut versions: Vec<_> = std::fs::read_dir(svc.path())
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .collect();
        versions.sort();
        if let Some(v) = versions.pop()
            && v.join("service-2.json").exists()
        {
            out.push(v);
        }
    }
    out
}

/// A document with its `*.sdk-extras.json` applied, as botocore's loader does.
fn with_extras(dir: &Path, stem: &str) -> Vec<u8> {
    let bytes = std::fs::read(dir.join(format!("{stem}.json"))).expect("read");
    match std::fs::read(dir.join(format!("{stem}.sdk-extras.json"))) {
        Ok(extras) => apply_sdk_extras(&bytes, &extras).expect("extras apply"),
        Err(_) => bytes,
    }
}

fn load(dir: &Path) -> ServiceModel {
    ServiceModel::from_json(&with_extras(dir, "service-2")).expect("model")
}

#[test]
#[ignore = "needs ORGOP_BOTOCORE_DATA (decompressed botocore data folder)"]
fn every_botocore_model_loads_and_serializes() {
    let root =
        PathBuf::from(std::env::var_os("ORGOP_BOTOCORE_DATA").expect("set ORGOP_BOTOCORE_DATA"));
    let mut failures = Vec::new();
    let (mut services, mut operations) = (0, 0);
    for dir in latest_versions(&root) {
        let name = dir.display().to_string();
        let bytes = with_extras(&dir, "service-2");
        let started = std::time::Instant::now();
        let loaded = ServiceModel::from_json(&bytes);
        if name.contains("/ec2/") {
            println!(
                "ec2 model ({} bytes) parsed in {:?}",
                bytes.len(),
                started.elapsed()
            );
        }
        let model = match loaded {
            Ok(m) => m,
            Err(e) => {
                failures.push(format!("{name}: {e}"));
                continue;
            }
        };
        if let Ok(p) = std::fs::read(dir.join("paginators-1.json"))
            && let Err(e) = Paginators::from_json(&p)
        {
            failures.push(format!("{name} paginators: {e}"));
        }
        if let Ok(w) = std::fs::read(dir.join("waiters-2.json"))
            && let Err(e) = Waiters::from_json(&w)
        {
            failures.push(format!("{name} waiters: {e}"));
        }
        if model.protocol().is_err() {
            continue; // smithy-rpc-v2-cbor only
        }
        services += 1;
        let names: Vec<String> = model.operation_names().map(str::to_string).collect();
        for op_name in names {
            let op = model.operation(&op_name).expect("listed");
            let params = match &op.input {
                Some(r) => sample(&model, r),
                None => Value::Object(Map::new()),
            };
            if let Err(errs) = validate(&model, op, &params) {
                failures.push(format!("{name} {op_name}: sample rejected: {errs:?}"));
                continue;
            }
            match serialize(&model, op, &params) {
                Ok(_) => operations += 1,
                Err(orgop_awswire::SerializeError::EventStream(_)) => {}
                Err(e) => failures.push(format!("{name} {op_name}: {e}")),
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(
        services > 300 && operations > 10_000,
        "only {services} services / {operations} operations"
    );
}

/// Deliberate differences from botocore's serializer (Smithy's rules, which the compliance
/// cases require): a raw blob/string payload gets a default `Content-Type`; header lists are
/// joined with `", "`; the form content type carries no charset parameter.
fn header_matches(name: &str, ours: Option<&str>, theirs: &str) -> bool {
    match ours {
        Some(o) if o == theirs => true,
        Some(o) if name.eq_ignore_ascii_case("content-type") => {
            theirs.starts_with(o) && theirs[o.len()..].starts_with("; charset")
        }
        Some(o) => o.replace(", ", ",") == theirs,
        None => false,
    }
}

/// How our validation of a recorded call disagrees with botocore's: whatever botocore
/// rejects we reject; what we reject beyond that can only be a check botocore does not make
/// (maximums, sizes of maps and blobs).
fn validation_difference(model: &ServiceModel, op: &Operation, rec: &Value) -> Option<String> {
    match validate(model, op, &rec["params"]) {
        Ok(()) if rec["botocore_valid"] == false => Some(format!(
            "accepted, botocore rejects: {}",
            rec["botocore_report"]
        )),
        Err(errs) if rec["botocore_valid"] == true => {
            let extra: Vec<String> = errs
                .iter()
                .filter(|e| {
                    !matches!(
                        e.kind,
                        orgop_awswire::ParamErrorKind::AboveMax { .. }
                            | orgop_awswire::ParamErrorKind::BelowMin {
                                what: "size in bytes" | "number of entries",
                                ..
                            }
                    )
                })
                .map(|e| e.to_string())
                .collect();
            (!extra.is_empty()).then(|| format!("rejected, botocore accepts: {extra:?}"))
        }
        _ => None,
    }
}

/// Where our request differs from botocore's recorded one (method, URL, headers, host
/// prefix, body).
fn request_differences(req: &HttpRequest, rec: &Value) -> Vec<String> {
    let mut why = Vec::new();
    if req.method != rec["method"].as_str().unwrap() {
        why.push(format!("method {} != {}", req.method, rec["method"]));
    }
    let url = rec["url"].as_str().unwrap();
    if req.path_and_query != url && split_uri(&req.path_and_query) != split_uri(url) {
        why.push(format!("url {} != {url}", req.path_and_query));
    }
    for (k, v) in rec["headers"].as_object().unwrap() {
        let v = v.as_str().unwrap();
        if !header_matches(k, req.header(k), v) {
            why.push(format!("header {k}: {:?} != {v:?}", req.header(k)));
        }
    }
    if req.host_prefix.as_deref() != rec["host_prefix"].as_str() {
        why.push(format!(
            "host prefix {:?} != {}",
            req.host_prefix, rec["host_prefix"]
        ));
    }
    let body = rec["body"].as_str().unwrap();
    let ct = req.header("content-type").unwrap_or("");
    if !bodies_equal(body.as_bytes(), &req.body, ct) {
        why.push(format!(
            "body\n  ours:     {}\n  botocore: {body}",
            String::from_utf8_lossy(&req.body)
        ));
    }
    why
}

#[test]
#[ignore = "needs ORGOP_BOTOCORE_DATA and ORGOP_BOTOCORE_REQUESTS (tests/botocore_diff.py)"]
fn same_requests_as_botocore() {
    let root =
        PathBuf::from(std::env::var_os("ORGOP_BOTOCORE_DATA").expect("set ORGOP_BOTOCORE_DATA"));
    let reqs = std::env::var_os("ORGOP_BOTOCORE_REQUESTS").expect("set ORGOP_BOTOCORE_REQUESTS");
    let text = std::fs::read_to_string(reqs).expect("read requests");
    let mut models: std::collections::HashMap<String, ServiceModel> = Default::default();
    for dir in latest_versions(&root) {
        let svc = dir
            .parent()
            .unwrap()
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        models.insert(svc, load(&dir));
    }
    let mut failures = Vec::new();
    let mut checked = 0;
    for line in text.lines() {
        let rec: Value = serde_json::from_str(line).expect("jsonl");
        let svc = rec["service"].as_str().unwrap();
        let op_name = rec["operation"].as_str().unwrap();
        let Some(model) = models.get(svc) else {
            continue;
        };
        let id = format!("{svc}.{op_name}");
        let op = model.operation(op_name).expect("operation");
        if let Some(why) = validation_difference(model, op, &rec) {
            failures.push(format!("{id}: {why}"));
        }
        let req = match serialize(model, op, &rec["params"]) {
            Ok(r) => r,
            Err(e) => {
                failures.push(format!("{id}: {e}"));
                continue;
            }
        };
        checked += 1;
        let why = request_differences(&req, &rec);
        if !why.is_empty() {
            failures.push(format!("{id}: {}", why.join("; ")));
        }
    }
    let shown: Vec<&String> = failures.iter().take(40).collect();
    assert!(
        failures.is_empty(),
        "{} of {checked} requests differ from botocore:\n{}",
        failures.len(),
        shown
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(checked > 10_000, "only {checked} requests checked");
}

#[test]
#[ignore = "needs ORGOP_BOTOCORE_DATA and ORGOP_BOTOCORE_RESPONSES (tests/botocore_diff_responses.py)"]
fn same_results_as_botocore() {
    use base64::Engine as _;
    let root =
        PathBuf::from(std::env::var_os("ORGOP_BOTOCORE_DATA").expect("set ORGOP_BOTOCORE_DATA"));
    let path = std::env::var_os("ORGOP_BOTOCORE_RESPONSES").expect("set ORGOP_BOTOCORE_RESPONSES");
    let text = std::fs::read_to_string(path).expect("read responses");
    let mut models: std::collections::HashMap<String, ServiceModel> = Default::default();
    for dir in latest_versions(&root) {
        let svc = dir
            .parent()
            .unwrap()
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        models.insert(svc, load(&dir));
    }
    let mut failures = Vec::new();
    let mut checked = 0;
    for line in text.lines() {
        let rec: Value = serde_json::from_str(line).expect("jsonl");
        let svc = rec["service"].as_str().unwrap();
        let op_name = rec["operation"].as_str().unwrap();
        let Some(model) = models.get(svc) else {
            continue;
        };
        let op = model.operation(op_name).expect("operation");
        let resp = orgop_awswire::HttpResponse {
            status: rec["status"].as_u64().unwrap_or(200) as u16,
            headers: rec["headers"]
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
                .collect(),
            body: base64::engine::general_purpose::STANDARD
                .decode(rec["body"].as_str().unwrap())
                .unwrap(),
        };
        checked += 1;
        if let Some(want) = rec.get("expected_error") {
            match orgop_awswire::parse(model, op, &resp) {
                Ok(v) => failures.push(format!("{svc}.{op_name}: parsed {v}, expected an error")),
                Err(e) => {
                    // botocore ignores the RequestId inside S3's <Error> document; we keep it.
                    let rid = if want["request_id"].is_null() {
                        None
                    } else {
                        e.request_id
                    };
                    let got = serde_json::json!({"code": e.code, "message": e.message,
                        "request_id": rid, "data": e.data});
                    if !same(&got, want) {
                        failures.push(format!(
                            "{svc}.{op_name} error:\n  ours:     {got}\n  botocore: {want}"
                        ));
                    }
                }
            }
            continue;
        }
        match orgop_awswire::parse(model, op, &resp) {
            Ok(v) if same(&v, &rec["expected"]) => {}
            Ok(v) => failures.push(format!(
                "{svc}.{op_name}:\n  ours:     {v}\n  botocore: {}\n  body: {}",
                rec["expected"],
                String::from_utf8_lossy(&resp.body)
            )),
            Err(e) => failures.push(format!("{svc}.{op_name}: {e}")),
        }
    }
    let shown: Vec<&str> = failures.iter().take(20).map(String::as_str).collect();
    assert!(
        failures.is_empty(),
        "{} of {checked} results differ from botocore:\n{}",
        failures.len(),
        shown.join("\n")
    );
    assert!(checked > 10_000, "only {checked} responses checked");
}
