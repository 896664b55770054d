//! Responses nested far deeper than any AWS answer (50,000 levels, ~350 KB) are refused as
//! unparsable, naming the depth limit, for every protocol; none exhausts the stack. Each
//! case runs on a thread with a smaller stack than a tokio worker's (2 MiB), so a recursion
//! that survives here, unoptimized, has margin on the runtime.

use orgop_awswire::{HttpResponse, MAX_DEPTH, ServiceModel, parse};
use serde_json::{Value, json};

/// The stack each parse runs on: half a tokio worker's.
const STACK: usize = 1 << 20;

/// A model of `protocol` whose operation `Get` answers a recursive `Node` (`Child`: a `Node`,
/// `Kids`: a list of `Node`, `Doc`: a document).
fn model(protocol: &str) -> ServiceModel {
    let mut metadata = json!({"apiVersion": "2020-01-01", "endpointPrefix": "deep",
        "protocol": protocol, "serviceId": "Deep", "signatureVersion": "v4"});
    if protocol == "json" {
        metadata["jsonVersion"] = json!("1.1");
        metadata["targetPrefix"] = json!("Deep_20200101");
    }
    let mut output = json!({"shape": "Node"});
    if protocol == "query" {
        output["resultWrapper"] = json!("GetResult");
    }
    let doc = json!({
        "metadata": metadata,
        "operations": {"Get": {"name": "Get", "http": {"method": "POST", "requestUri": "/"},
            "output": output}},
        "shapes": {
            "Node": {"type": "structure", "members": {
                "Name": {"shape": "String"},
                "Child": {"shape": "Node"},
                "Kids": {"shape": "Nodes"},
                "Doc": {"shape": "Document"}}},
            "Nodes": {"type": "list", "member": {"shape": "Node"}},
            "Document": {"type": "structure", "members": {}, "document": true},
            "String": {"type": "string"}
        }
    });
    ServiceModel::from_json(doc.to_string().as_bytes()).unwrap()
}

/// `<Child>` nested `depth` times inside `open`...`close`.
fn deep_xml(open: &str, close: &str, depth: usize) -> Vec<u8> {
    let mut s = String::from(open);
    s.push_str(&"<Child>".repeat(depth));
    s.push_str("<Name>x</Name>");
    s.push_str(&"</Child>".repeat(depth));
    s.push_str(close);
    s.into_bytes()
}

fn deep_json(depth: usize) -> Vec<u8> {
    let mut s = "{\"Child\":".repeat(depth);
    s.push_str("{\"Name\":\"x\"}");
    s.push_str(&"}".repeat(depth));
    s.into_bytes()
}

/// Parses on a small stack; the result, or the error's code and message.
fn parse_small_stack(protocol: &'static str, status: u16, body: Vec<u8>) -> Result<Value, String> {
    std::thread::Builder::new()
        .stack_size(STACK)
        .spawn(move || {
            let m = model(protocol);
            let op = m.operation("Get").unwrap();
            let resp = HttpResponse {
                status,
                headers: vec![],
                body,
            };
            parse(&m, op, &resp).map_err(|e| format!("{}: {}", e.code, e.message))
        })
        .unwrap()
        .join()
        .expect("the parse does not overflow its stack")
}

fn body_for(protocol: &str, depth: usize) -> Vec<u8> {
    match protocol {
        "ec2" => deep_xml("<GetResponse>", "</GetResponse>", depth),
        "query" => deep_xml(
            "<GetResponse><GetResult>",
            "</GetResult></GetResponse>",
            depth,
        ),
        "rest-xml" => deep_xml("<Node>", "</Node>", depth),
        _ => deep_json(depth),
    }
}

const PROTOCOLS: [&str; 5] = ["ec2", "query", "rest-xml", "json", "rest-json"];

#[test]
fn a_response_nested_50000_deep_is_a_parse_error_naming_the_limit() {
    for protocol in PROTOCOLS {
        let body = body_for(protocol, 50_000);
        assert!(body.len() > 300_000, "{protocol}: {} bytes", body.len());
        let err = parse_small_stack(protocol, 200, body).unwrap_err();
        assert!(err.starts_with("ResponseParseError: "), "{protocol}: {err}");
        assert!(
            err.contains(&format!("deeper than {MAX_DEPTH} levels")),
            "{protocol}: {err}"
        );
    }
}

#[test]
fn a_deep_error_response_is_still_an_error_and_never_a_crash() {
    for protocol in PROTOCOLS {
        let err = parse_small_stack(protocol, 400, body_for(protocol, 50_000)).unwrap_err();
        assert!(
            err.starts_with("400: ") || err.contains("400"),
            "{protocol}: {err}"
        );
    }
}

#[test]
fn a_deep_document_member_is_refused_too() {
    let body = format!("{{\"Doc\":{}1{}}}", "[".repeat(50_000), "]".repeat(50_000));
    let err = parse_small_stack("json", 200, body.into_bytes()).unwrap_err();
    assert!(err.contains("deeper than 100 levels"), "{err}");
}

#[test]
fn responses_nested_within_the_limit_parse_whole() {
    // The XML protocols' wrappers take one or two levels of the limit; what fits is parsed
    // to the bottom.
    for protocol in PROTOCOLS {
        let depth = MAX_DEPTH - 3;
        let v = parse_small_stack(protocol, 200, body_for(protocol, depth))
            .unwrap_or_else(|e| panic!("{protocol}: {e}"));
        let mut node = &v;
        for _ in 0..depth {
            node = &node["Child"];
        }
        assert_eq!(node["Name"], "x", "{protocol}");
    }
}
