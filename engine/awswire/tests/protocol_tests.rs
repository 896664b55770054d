//! AWS's protocol compliance cases (as shipped with botocore), each case its own test.
//!
//! The cases are not in the repository: `bash scripts/protocol-tests.sh` (which
//! `scripts/test.sh` runs first) fetches botocore's source distribution from PyPI at a pinned
//! version, checks its sha256 and extracts `tests/unit/protocols/` (with botocore's LICENSE.txt
//! and NOTICE) into the git-ignored `.cache/aws-protocol-tests` at the repository root. That
//! folder is the default; `ORGOP_PROTOCOL_TESTS` points elsewhere. A missing folder fails the
//! run loudly.
//!
//! Test names are `<protocol file>/<input|output>/<case id>`. Cases on botocore's own ignore
//! list, and cases that need event streams or checksums, are reported as ignored with their
//! reason (`-- --include-ignored` runs them anyway); `SKIP` below lists any further case we
//! knowingly do not pass, with the reason.
//!
//! How a case is judged:
//! - input: method equal; path equal; query parameters equal as a multiset (order is not
//!   significant on the wire); every expected header present with the expected value
//!   (`Content-Length`, set by the HTTP layer, is checked against the body length);
//!   `forbidHeaders` absent, `requireHeaders` present; host prefix + client endpoint host
//!   equal to `host`; body equal — as JSON values for JSON bodies, as element trees for XML
//!   bodies (whitespace between elements ignored), as ordered form pairs for query bodies,
//!   byte for byte otherwise.
//! - output: the parsed result equals `result` after mapping the crate's value conventions
//!   back to the cases' (RFC 3339 timestamps to epoch seconds, base64 blobs to their UTF-8
//!   text); an error is compared as `{"Error": {"Code", "Message"}}` plus the modeled error
//!   members. Numbers compare by value.

use std::collections::HashMap;
use std::path::PathBuf;

use base64::Engine as _;
use libtest_mimic::{Arguments, Completion, Failed, Trial};
use orgop_awswire::{
    HttpRequest, HttpResponse, ServiceModel, Shape, ShapeKind, ShapeRef, Timestamp, parse,
    serialize_with_token,
};
use serde_json::{Map, Value, json};

mod common;
use common::{bodies_equal, same, split_uri};

/// Protocol files run here (cbor is not a protocol orgop speaks).
const FILES: &[&str] = &[
    "ec2",
    "query",
    "json",
    "json_1_0",
    "json_1_0-query-compatible",
    "rest-json",
    "rest-xml",
];

/// Cases we knowingly do not pass, beyond botocore's ignore list: (test name, reason).
const SKIP: &[(&str, &str)] = &[];

fn cases_dir() -> PathBuf {
    let dir = match std::env::var_os("ORGOP_PROTOCOL_TESTS") {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.cache/aws-protocol-tests"),
    };
    if !dir.join("input").is_dir() || !dir.join("output").is_dir() {
        panic!(
            "protocol compliance cases not found at {}: run `bash scripts/protocol-tests.sh` \
             from the repository root to fetch them (or set ORGOP_PROTOCOL_TESTS to a folder \
             holding input/ and output/); refusing to pass without them",
            dir.display()
        );
    }
    dir
}

fn read_json(p: &std::path::Path) -> Value {
    let bytes = std::fs::read(p).unwrap_or_else(|e| panic!("cannot read {}: {e}", p.display()));
    serde_json::from_slice(&bytes)
        .unwrap_or_else(|e| panic!("invalid JSON in {}: {e}", p.display()))
}

struct Ignores {
    suites: Vec<String>,
    cases: HashMap<(String, String), Vec<String>>,
}

impl Ignores {
    fn load(dir: &std::path::Path) -> Ignores {
        let v = read_json(&dir.join("protocol-tests-ignore-list.json"));
        let mut suites = Vec::new();
        for kind in ["input", "output"] {
            if let Some(list) = v["general"][kind]["suites"].as_array() {
                suites.extend(list.iter().filter_map(|s| s.as_str().map(str::to_string)));
            }
        }
        let mut cases = HashMap::new();
        if let Some(protos) = v["protocols"].as_object() {
            for (proto, kinds) in protos {
                for kind in ["input", "output"] {
                    let list: Vec<String> = kinds[kind]["cases"]
                        .as_array()
                        .map(|a| {
                            a.iter()
                                .filter_map(|s| s.as_str().map(str::to_string))
                                .collect()
                        })
                        .unwrap_or_default();
                    cases.insert((proto.clone(), kind.to_string()), list);
                }
            }
        }
        Ignores { suites, cases }
    }

    fn reason(&self, file: &str, kind: &str, suite: &Value, case: &Value) -> Option<String> {
        let desc = suite["description"].as_str().unwrap_or("");
        if self.suites.iter().any(|s| s == desc) {
            return Some(format!("botocore ignore list (suite `{desc}`)"));
        }
        let id = case["id"].as_str().unwrap_or("");
        let proto = file.split('-').next().unwrap_or(file);
        let proto = if file.starts_with("rest-") {
            file
        } else {
            proto
        };
        for p in [file, proto] {
            if self
                .cases
                .get(&(p.to_string(), kind.to_string()))
                .is_some_and(|l| l.iter().any(|c| c == id))
            {
                return Some("botocore ignore list".to_string());
            }
        }
        let shapes = suite["shapes"].to_string();
        if shapes.contains("\"eventstream\":true") {
            return Some("needs event streams".to_string());
        }
        let given = &case["given"];
        if given.get("httpChecksum").is_some() || given.get("httpChecksumRequired").is_some() {
            return Some("needs request checksums".to_string());
        }
        None
    }
}

fn main() {
    let args = Arguments::from_args();
    // `-- --include-ignored` (or `--ignored`) runs the ignored cases too, to see which pass.
    let run_ignored = args.include_ignored || args.ignored;
    let dir = cases_dir();
    let ignores = Ignores::load(&dir);
    let mut trials = Vec::new();
    let mut seen: HashMap<String, usize> = HashMap::new();
    for file in FILES {
        for kind in ["input", "output"] {
            let path = dir.join(kind).join(format!("{file}.json"));
            let suites = read_json(&path);
            for suite in suites.as_array().expect("a list of suites") {
                for case in suite["cases"].as_array().expect("cases") {
                    let id = case["id"].as_str().unwrap_or("unnamed");
                    let mut name = format!("{file}/{kind}/{id}");
                    let n = seen.entry(name.clone()).or_insert(0);
                    *n += 1;
                    if *n > 1 {
                        name = format!("{name}#{n}");
                    }
                    let skip = ignores.reason(file, kind, suite, case).or_else(|| {
                        SKIP.iter()
                            .find(|(t, _)| *t == name)
                            .map(|(_, r)| (*r).to_string())
                    });
                    let suite = suite.clone();
                    let case = case.clone();
                    let is_input = kind == "input";
                    trials.push(Trial::ignorable_test(name, move || {
                        if let Some(reason) = skip
                            && !run_ignored
                        {
                            return Ok(Completion::ignored_with(reason));
                        }
                        let r = if is_input {
                            run_input(&suite, &case)
                        } else {
                            run_output(&suite, &case)
                        };
                        r.map(|()| Completion::Completed).map_err(Failed::from)
                    }));
                }
            }
        }
    }
    libtest_mimic::run(&args, trials).exit();
}

fn model_for(suite: &Value, case: &Value) -> Result<(ServiceModel, String), String> {
    let name = case["given"]["name"]
        .as_str()
        .unwrap_or("OperationName")
        .to_string();
    let mut ops = Map::new();
    ops.insert(name.clone(), case["given"].clone());
    let doc = json!({"metadata": suite["metadata"], "shapes": suite["shapes"], "operations": ops});
    let model = ServiceModel::from_json(doc.to_string().as_bytes()).map_err(|e| e.to_string())?;
    Ok((model, name))
}

// ------------------------------------------------------------------------ input

fn run_input(suite: &Value, case: &Value) -> Result<(), String> {
    let (model, name) = model_for(suite, case)?;
    let op = model.operation(&name).map_err(|e| e.to_string())?;
    // The cases expect this token wherever one is filled in (random UUIDs otherwise).
    let mut token = || "00000000-0000-4000-8000-000000000000".to_string();
    let req = serialize_with_token(&model, op, &case["params"], &mut token)
        .map_err(|e| format!("serialize failed: {e}"))?;
    let want = &case["serialized"];
    let show = || {
        format!(
            "\nactual: {} {}\nheaders: {:?}\nhost prefix: {:?}\nbody: {}\nexpected: {}",
            req.method,
            req.path_and_query,
            req.headers,
            req.host_prefix,
            String::from_utf8_lossy(&req.body),
            serde_json::to_string_pretty(want).unwrap_or_default()
        )
    };
    if let Some(m) = want["method"].as_str()
        && m != req.method
    {
        return Err(format!("method differs{}", show()));
    }
    if let Some(uri) = want["uri"].as_str()
        && uri != req.path_and_query
        && split_uri(uri) != split_uri(&req.path_and_query)
    {
        return Err(format!("URI differs{}", show()));
    }
    if let Some(why) = header_difference(want, &req) {
        return Err(format!("{why}{}", show()));
    }
    if let Some(host) = want["host"].as_str() {
        let actual = actual_host(suite, &req);
        if actual != host {
            return Err(format!("host `{actual}` differs from `{host}`{}", show()));
        }
    }
    let Some(want_body) = want["body"].as_str() else {
        return Ok(()); // the case says nothing about the body
    };
    if !bodies_equal(
        want_body.as_bytes(),
        &req.body,
        req.header("content-type").unwrap_or(""),
    ) {
        return Err(format!("body differs{}", show()));
    }
    Ok(())
}

/// The first of the case's `headers`, `forbidHeaders` and `requireHeaders` that the request
/// does not meet (`Content-Length` is what a client would send).
fn header_difference(want: &Value, req: &HttpRequest) -> Option<String> {
    let header = |n: &str| -> Option<String> {
        if n.eq_ignore_ascii_case("content-length") {
            return (!req.body.is_empty() || req.method != "GET")
                .then(|| req.body.len().to_string());
        }
        req.header(n).map(str::to_string)
    };
    if let Some(hs) = want["headers"].as_object() {
        for (k, v) in hs {
            if header(k).as_deref() != v.as_str() {
                return Some(format!("header {k} differs"));
            }
        }
    }
    let names = |key: &str| -> Vec<&str> {
        want[key]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect()
    };
    if let Some(k) = names("forbidHeaders")
        .into_iter()
        .find(|k| req.header(k).is_some())
    {
        return Some(format!("forbidden header {k} present"));
    }
    if let Some(k) = names("requireHeaders")
        .into_iter()
        .find(|k| header(k).is_none())
    {
        return Some(format!("required header {k} absent"));
    }
    None
}

/// The host the request goes to: its host prefix on the suite's client endpoint.
fn actual_host(suite: &Value, req: &HttpRequest) -> String {
    let endpoint = suite["clientEndpoint"]
        .as_str()
        .unwrap_or("https://example.com");
    let base = endpoint
        .split("://")
        .nth(1)
        .unwrap_or(endpoint)
        .trim_end_matches('/');
    format!("{}{base}", req.host_prefix.as_deref().unwrap_or(""))
}

// ------------------------------------------------------------------------ output

/// Maps the crate's conventions back to the cases': timestamps to epoch seconds, blobs to
/// their UTF-8 text.
fn to_case_conventions(model: &ServiceModel, r: &ShapeRef, v: &Value) -> Value {
    let shape: &Shape = model.shape(&r.shape).expect("resolved shape");
    match (&shape.kind, v) {
        (ShapeKind::Structure(st), Value::Object(o)) if !st.document => {
            let mut out = Map::new();
            for (k, x) in o {
                let y = match st.members.get(k) {
                    Some(m) => to_case_conventions(model, m, x),
                    None => x.clone(),
                };
                out.insert(k.clone(), y);
            }
            Value::Object(out)
        }
        (ShapeKind::List { member }, Value::Array(a)) => Value::Array(
            a.iter()
                .map(|x| to_case_conventions(model, member, x))
                .collect(),
        ),
        (ShapeKind::Map { value, .. }, Value::Object(o)) => Value::Object(
            o.iter()
                .map(|(k, x)| (k.clone(), to_case_conventions(model, value, x)))
                .collect(),
        ),
        (ShapeKind::Timestamp, Value::String(s)) => match Timestamp::parse(s) {
            Some(t) if t.nanos == 0 => Value::from(t.secs),
            Some(t) => Value::from(t.secs as f64 + f64::from(t.nanos) / 1e9),
            None => v.clone(),
        },
        (ShapeKind::Blob, Value::String(s)) => {
            match base64::engine::general_purpose::STANDARD.decode(s) {
                Ok(b) => Value::String(String::from_utf8_lossy(&b).into_owned()),
                Err(_) => v.clone(),
            }
        }
        _ => v.clone(),
    }
}

fn run_output(suite: &Value, case: &Value) -> Result<(), String> {
    let (model, name) = model_for(suite, case)?;
    let op = model.operation(&name).map_err(|e| e.to_string())?;
    let r = &case["response"];
    let resp = HttpResponse {
        status: r["status_code"].as_u64().unwrap_or(200) as u16,
        headers: r["headers"]
            .as_object()
            .map(|h| {
                h.iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
                    .collect()
            })
            .unwrap_or_default(),
        body: r["body"].as_str().unwrap_or("").as_bytes().to_vec(),
    };
    let parsed = parse(&model, op, &resp);
    let (actual, expected) = if case.get("error").is_some() {
        let e = match parsed {
            Ok(v) => return Err(format!("expected an error, parsed {v}")),
            Err(e) => e,
        };
        let mut actual = Map::new();
        actual.insert(
            "Error".into(),
            json!({"Code": e.code, "Message": e.message}),
        );
        if let (Some((shape_name, _)), Value::Object(d)) = (model.error_shape(op, &e.code), &e.data)
        {
            let r: ShapeRef = serde_json::from_value(json!({"shape": shape_name})).expect("ref");
            if let Value::Object(conv) = to_case_conventions(&model, &r, &Value::Object(d.clone()))
            {
                actual.extend(conv);
            }
        }
        let mut expected = Map::new();
        expected.insert(
            "Error".into(),
            json!({"Code": case["errorCode"].as_str().unwrap_or(""), "Message": case["errorMessage"].as_str().unwrap_or("")}),
        );
        if let Value::Object(o) = &case["error"] {
            expected.extend(o.clone());
        }
        (Value::Object(actual), Value::Object(expected))
    } else {
        let v = parsed.map_err(|e| format!("parse failed: {e}"))?;
        let v = match &op.output {
            Some(r) => to_case_conventions(&model, r, &v),
            None => v,
        };
        (v, case["result"].clone())
    };
    if !same(&actual, &expected) {
        return Err(format!(
            "result differs\nactual:   {}\nexpected: {}\nresponse: {}",
            actual,
            expected,
            serde_json::to_string_pretty(r).unwrap_or_default()
        ));
    }
    Ok(())
}
