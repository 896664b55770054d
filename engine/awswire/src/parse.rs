//! Response parsing for the five protocols.
//!
//! Input: a model, the operation that was called and the HTTP response. Guarantees: a
//! success (status below 300, except a rest-xml `<Error>` document, which S3 sends with
//! status 200 when a copy fails part-way) becomes a JSON object keyed by the output shape's member names
//! (headers, status code, payload and body members all merged in, unmodeled data dropped,
//! values following the crate's conventions: RFC 3339 UTC timestamps, base64 blobs);
//! anything else becomes an [`AwsError`] with the code (namespace and URI stripped), message,
//! HTTP status, request id, and the modeled error shape's members in `data`. A body that does
//! not follow the protocol becomes an [`AwsError`] with code `ResponseParseError`, never a
//! panic.

use base64::Engine as _;
use serde_json::{Map, Value};

use crate::model::{Operation, Protocol, ServiceModel, Shape, ShapeKind, ShapeRef, StructureShape};
use crate::time::Timestamp;
use crate::xml::{Element, parse_document};
use crate::{AwsError, HttpResponse};

type PResult<T> = Result<T, String>;

/// Parses a response to `op` (see the module documentation). The result follows the
/// crate's value conventions: API member names, timestamps as RFC 3339 UTC strings, blobs
/// (a raw payload body too) as standard base64, `"NaN"`/`"Infinity"` for special floats.
#[allow(
    clippy::result_large_err,
    reason = "a service error is an ordinary outcome, returned by value as the API promises"
)]
pub fn parse(model: &ServiceModel, op: &Operation, resp: &HttpResponse) -> Result<Value, AwsError> {
    let protocol = model
        .protocol()
        .map_err(|e| AwsError::unparsable(resp.status, None, e.to_string()))?;
    let rid = request_id(protocol, resp);
    if resp.status >= 300 {
        return Err(parse_error(model, op, protocol, resp, rid));
    }
    if let Some(r) = &op.output {
        let streams = model.structure(r).members.values().any(|m| {
            m.traits.eventstream == Some(true) || model.target(m).traits.eventstream == Some(true)
        });
        if streams {
            return Err(AwsError::unparsable(
                resp.status,
                rid,
                format!("{}: event streams are not supported", op.name),
            ));
        }
    }
    if protocol == Protocol::RestXml && is_error_document(model, op, resp) {
        // S3 answers some operations (CopyObject, CompleteMultipartUpload, UploadPartCopy)
        // with 200 and an `<Error>` document when they fail mid-way.
        return Err(parse_error(model, op, protocol, resp, rid));
    }
    let p = Parser { model };
    let result = match protocol {
        Protocol::Ec2 | Protocol::Query => p.query_output(op, protocol, resp),
        Protocol::Json => p.json_output(op, resp),
        Protocol::RestJson | Protocol::RestXml => p.rest_output(op, protocol, resp),
    };
    result.map_err(|why| AwsError::unparsable(resp.status, rid, why))
}

/// A 2xx rest-xml response whose body is an `<Error>` document with a `Code`, for an
/// operation whose output is not a raw payload.
fn is_error_document(model: &ServiceModel, op: &Operation, resp: &HttpResponse) -> bool {
    let raw_payload = op.output.as_ref().is_some_and(|r| {
        model.structure(r).payload().is_some_and(|(_, p)| {
            matches!(
                model.target(p).kind,
                ShapeKind::Blob | ShapeKind::String { .. }
            )
        })
    });
    if raw_payload || resp.body.is_empty() {
        return false;
    }
    let head = &resp.body[..resp.body.len().min(512)];
    if !String::from_utf8_lossy(head).contains("<Error>") {
        return false;
    }
    parse_document(&resp.body)
        .is_ok_and(|root| root.name == "Error" && root.child("Code").is_some())
}

/// The request id of a response: from the `x-amzn-requestid` / `x-amz-request-id` headers,
/// or else from the XML body (`RequestId`, `requestId`, `RequestID`, also inside
/// `ResponseMetadata` or `Error`).
pub fn request_id(protocol: Protocol, resp: &HttpResponse) -> Option<String> {
    for h in ["x-amzn-requestid", "x-amz-request-id", "x-amzn-request-id"] {
        if let Some(v) = resp.header(h) {
            return Some(v.to_string());
        }
    }
    if matches!(
        protocol,
        Protocol::Ec2 | Protocol::Query | Protocol::RestXml
    ) && !resp.body.is_empty()
    {
        let root = parse_document(&resp.body).ok()?;
        let places = [
            Some(&root),
            root.child("ResponseMetadata"),
            root.child("Error"),
        ];
        for el in places.into_iter().flatten() {
            for n in ["RequestId", "requestId", "RequestID"] {
                if let Some(t) = el.child_text(n) {
                    return Some(t.to_string());
                }
            }
        }
    }
    None
}

fn reason(status: u16) -> &'static str {
    match status {
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        409 => "Conflict",
        412 => "Precondition Failed",
        413 => "Payload Too Large",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "",
    }
}

fn strip_code(code: &str) -> String {
    let c = code.split(':').next().unwrap_or("");
    c.rsplit('#').next().unwrap_or("").trim().to_string()
}

fn parse_error(
    model: &ServiceModel,
    op: &Operation,
    protocol: Protocol,
    resp: &HttpResponse,
    rid: Option<String>,
) -> AwsError {
    let status = resp.status;
    let trimmed = String::from_utf8_lossy(&resp.body);
    let trimmed = trimmed.trim();
    let json_typed = matches!(protocol, Protocol::Json | Protocol::RestJson)
        && resp.header("x-amzn-errortype").is_some();
    if !json_typed && (trimmed.is_empty() || (status >= 500 && trimmed.starts_with("<html>"))) {
        return generic_error(status, rid);
    }
    let p = Parser { model };
    match protocol {
        Protocol::Ec2 | Protocol::Query | Protocol::RestXml => {
            let Ok(root) = parse_document(&resp.body) else {
                return generic_error(status, rid);
            };
            p.xml_error(op, protocol, resp, &root, rid)
        }
        Protocol::Json | Protocol::RestJson => p.json_error(op, protocol, resp, trimmed, rid),
    }
}

/// An error known only by its HTTP status (no body, or not one the protocol describes).
fn generic_error(status: u16, rid: Option<String>) -> AwsError {
    AwsError {
        code: status.to_string(),
        message: reason(status).to_string(),
        status,
        request_id: rid,
        data: Value::Object(Map::new()),
    }
}

/// The error code of a JSON error: the `x-amzn-errortype` header, else the body's `__type`,
/// `code` or `Code`.
fn json_error_code(resp: &HttpResponse, body: &Value) -> Option<String> {
    resp.header("x-amzn-errortype")
        .map(str::to_string)
        .or_else(|| {
            body.get("__type")
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .or_else(|| {
            body.get("code")
                .or_else(|| body.get("Code"))
                .and_then(Value::as_str)
                .map(str::to_string)
        })
}

struct Parser<'a> {
    model: &'a ServiceModel,
}

fn b64_normalize(text: &str) -> PResult<Value> {
    let cleaned: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(cleaned.as_bytes())
        .map_err(|e| format!("invalid base64 blob: {e}"))?;
    Ok(Value::String(
        base64::engine::general_purpose::STANDARD.encode(bytes),
    ))
}

fn float_text(text: &str) -> PResult<Value> {
    match text.trim() {
        s @ ("NaN" | "Infinity" | "-Infinity") => Ok(Value::String(s.to_string())),
        s => {
            if let Ok(i) = s.parse::<i64>() {
                return Ok(Value::from(i));
            }
            let f: f64 = s.parse().map_err(|_| format!("invalid number `{s}`"))?;
            serde_json::Number::from_f64(f)
                .map(Value::Number)
                .ok_or_else(|| format!("invalid number `{s}`"))
        }
    }
}

fn timestamp_text(text: &str) -> PResult<Value> {
    Timestamp::parse(text)
        .map(|t| Value::String(t.to_rfc3339()))
        .ok_or_else(|| format!("invalid timestamp `{text}`"))
}

impl Parser<'_> {
    fn shape(&self, r: &ShapeRef) -> &Shape {
        self.model.target(r)
    }

    /// A scalar from text (XML text, headers).
    fn scalar_from_text(&self, r: &ShapeRef, text: &str) -> PResult<Value> {
        Ok(match self.shape(r).kind {
            ShapeKind::Boolean => Value::Bool(text.trim() == "true"),
            ShapeKind::Integer(_) => {
                let t = text.trim();
                Value::from(
                    t.parse::<i64>()
                        .map_err(|_| format!("invalid integer `{t}`"))?,
                )
            }
            ShapeKind::Float(_) => float_text(text)?,
            ShapeKind::Timestamp => timestamp_text(text)?,
            ShapeKind::Blob => b64_normalize(text)?,
            _ => Value::String(text.to_string()),
        })
    }

    // ------------------------------------------------------------------ XML

    fn xml_member_name(m: &ShapeRef, shape: &Shape, name: &str) -> String {
        if let ShapeKind::List { member } = &shape.kind
            && m.traits.is_flattened()
            && let Some(n) = &member.traits.location_name
        {
            return n.clone();
        }
        m.traits
            .location_name
            .clone()
            .unwrap_or_else(|| name.to_string())
    }

    fn xml_struct(
        &self,
        shape: &StructureShape,
        el: &Element,
        skip_located: bool,
    ) -> PResult<Map<String, Value>> {
        let mut out = Map::new();
        for (name, m) in &shape.members {
            if skip_located
                && matches!(
                    m.traits.location.as_deref(),
                    Some("header" | "headers" | "statusCode")
                )
            {
                continue;
            }
            let ms = self.shape(m);
            if m.traits.xml_attribute == Some(true) {
                let an = m
                    .traits
                    .location_name
                    .clone()
                    .unwrap_or_else(|| name.clone());
                let local = an.rsplit(':').next().unwrap_or(&an).to_string();
                let found = el.attrs.iter().find(|(k, _)| *k == an).or_else(|| {
                    el.attrs.iter().find(|(k, _)| {
                        k.rsplit(':').next() == Some(&local) && !k.starts_with("xmlns")
                    })
                });
                if let Some((_, v)) = found {
                    out.insert(name.clone(), self.scalar_from_text(m, v)?);
                }
                continue;
            }
            let xn = Self::xml_member_name(m, ms, name);
            let mut nodes: Vec<&Element> = el.children_named(&xn).collect();
            if nodes.is_empty() && m.traits.is_flattened() {
                // botocore names flattened list elements after the list member; Smithy after
                // the structure member. Accept both.
                let own = m.traits.location_name.as_deref().unwrap_or(name);
                nodes = el.children_named(own).collect();
            }
            if nodes.is_empty() {
                continue;
            }
            let value = match &ms.kind {
                ShapeKind::List { member } if m.traits.is_flattened() => {
                    let mut items = Vec::new();
                    for n in nodes {
                        items.push(self.xml_value(member, n)?);
                    }
                    Value::Array(items)
                }
                ShapeKind::Map { key, value } if m.traits.is_flattened() => {
                    let mut map = Map::new();
                    for n in nodes {
                        self.xml_map_entry((key, value), n, &mut map)?;
                    }
                    Value::Object(map)
                }
                _ => self.xml_value(m, nodes[0])?,
            };
            out.insert(name.clone(), value);
        }
        if shape.union
            && out.is_empty()
            && let Some(first) = el.children.first()
        {
            return Ok(unknown_union(&first.name));
        }
        Ok(out)
    }

    fn xml_map_entry(
        &self,
        (key, value): (&ShapeRef, &ShapeRef),
        entry: &Element,
        map: &mut Map<String, Value>,
    ) -> PResult<()> {
        let kn = key.traits.location_name.as_deref().unwrap_or("key");
        let vn = value.traits.location_name.as_deref().unwrap_or("value");
        let k = entry.child_text(kn).unwrap_or("").to_string();
        let v = match entry.child(vn) {
            Some(n) => self.xml_value(value, n)?,
            None => Value::Null,
        };
        map.insert(k, v);
        Ok(())
    }

    fn xml_value(&self, r: &ShapeRef, el: &Element) -> PResult<Value> {
        Ok(match &self.shape(r).kind {
            ShapeKind::Structure(s) => Value::Object(self.xml_struct(s, el, false)?),
            ShapeKind::List { member } => {
                let mut items = Vec::new();
                for c in &el.children {
                    items.push(self.xml_value(member, c)?);
                }
                Value::Array(items)
            }
            ShapeKind::Map { key, value } => {
                let mut map = Map::new();
                for entry in &el.children {
                    self.xml_map_entry((key, value), entry, &mut map)?;
                }
                Value::Object(map)
            }
            _ => self.scalar_from_text(r, &el.text)?,
        })
    }

    // ------------------------------------------------------------------ JSON

    fn json_struct(&self, shape: &StructureShape, v: &Value, skip_located: bool) -> PResult<Value> {
        if shape.document {
            return Ok(v.clone());
        }
        let Value::Object(obj) = v else {
            return if v.is_null() {
                Ok(Value::Null)
            } else {
                Err(format!("expected an object, got {v}"))
            };
        };
        let mut out = Map::new();
        for (name, m) in &shape.members {
            if skip_located && m.traits.location.is_some() {
                continue;
            }
            let key = m.traits.location_name.as_deref().unwrap_or(name);
            if let Some(x) = obj.get(key).filter(|x| !x.is_null()) {
                out.insert(name.clone(), self.json_value(m, x)?);
            }
        }
        if shape.union {
            let tags: Vec<&String> = obj
                .iter()
                .filter(|(k, x)| !x.is_null() && k.as_str() != "__type")
                .map(|(k, _)| k)
                .collect();
            if out.is_empty() && tags.len() == 1 {
                return Ok(Value::Object(unknown_union(tags[0])));
            }
        }
        Ok(Value::Object(out))
    }

    fn json_value(&self, r: &ShapeRef, v: &Value) -> PResult<Value> {
        Ok(match &self.shape(r).kind {
            ShapeKind::Structure(s) => self.json_struct(s, v, false)?,
            ShapeKind::List { member } => {
                let Value::Array(items) = v else {
                    return Err(format!("expected a list, got {v}"));
                };
                let mut out = Vec::with_capacity(items.len());
                for x in items {
                    out.push(if x.is_null() {
                        Value::Null
                    } else {
                        self.json_value(member, x)?
                    });
                }
                Value::Array(out)
            }
            ShapeKind::Map { value, .. } => {
                let Value::Object(entries) = v else {
                    return Err(format!("expected a map, got {v}"));
                };
                let mut out = Map::new();
                for (k, x) in entries {
                    out.insert(
                        k.clone(),
                        if x.is_null() {
                            Value::Null
                        } else {
                            self.json_value(value, x)?
                        },
                    );
                }
                Value::Object(out)
            }
            ShapeKind::Timestamp => match v {
                Value::Number(n) => Value::String(
                    n.as_f64()
                        .and_then(Timestamp::from_epoch_f64)
                        .ok_or_else(|| format!("invalid timestamp {n}"))?
                        .to_rfc3339(),
                ),
                Value::String(s) => timestamp_text(s)?,
                _ => return Err(format!("invalid timestamp {v}")),
            },
            ShapeKind::Blob => match v {
                Value::String(s) => b64_normalize(s)?,
                _ => return Err(format!("invalid blob {v}")),
            },
            ShapeKind::Float(_) => match v {
                Value::String(s) => float_text(s)?,
                _ => v.clone(),
            },
            ShapeKind::Integer(_) => match v {
                Value::String(s) => Value::from(
                    s.trim()
                        .parse::<i64>()
                        .map_err(|_| format!("invalid integer {s}"))?,
                ),
                _ => v.clone(),
            },
            ShapeKind::Boolean => match v {
                Value::String(s) => Value::Bool(s.eq_ignore_ascii_case("true")),
                _ => v.clone(),
            },
            _ => v.clone(),
        })
    }

    fn json_body(resp: &HttpResponse) -> PResult<Value> {
        if resp.body.iter().all(u8::is_ascii_whitespace) {
            return Ok(Value::Object(Map::new()));
        }
        crate::json::from_json_slice(&resp.body).map_err(|e| format!("invalid JSON body: {e}"))
    }

    // ------------------------------------------------------------------ errors

    /// An error of the XML protocols: `<Error>`, inside the root or its `<Errors>`, or else
    /// the root itself holds `Code` and `Message`.
    fn xml_error(
        &self,
        op: &Operation,
        protocol: Protocol,
        resp: &HttpResponse,
        root: &Element,
        rid: Option<String>,
    ) -> AwsError {
        let status = resp.status;
        let err_el = if root.name == "Error" {
            root
        } else if let Some(e) = root.child("Error") {
            e
        } else if let Some(e) = root.child("Errors").and_then(|e| e.child("Error")) {
            e
        } else {
            root
        };
        let code = err_el.child_text("Code").unwrap_or("").to_string();
        let message = err_el
            .child_text("Message")
            .or_else(|| err_el.child_text("message"))
            .unwrap_or("")
            .to_string();
        let code = if code.is_empty() {
            status.to_string()
        } else {
            code
        };
        let mut data = Map::new();
        if let Some(shape) = self
            .model
            .error_shape(op, &code)
            .and_then(|(_, s)| s.as_structure())
        {
            if protocol == Protocol::RestXml {
                let _ = self.rest_located(shape, resp, &mut data);
            }
            if let Ok(m) = self.xml_struct(shape, err_el, true) {
                data.extend(m);
            }
        }
        AwsError {
            code,
            message,
            status,
            request_id: rid,
            data: Value::Object(data),
        }
    }

    /// An error of the JSON protocols; a body that is not a JSON object is the message. The
    /// code is `x-amzn-query-error`'s for query-compatible services; the shape is looked up by
    /// the JSON code first.
    fn json_error(
        &self,
        op: &Operation,
        protocol: Protocol,
        resp: &HttpResponse,
        trimmed: &str,
        rid: Option<String>,
    ) -> AwsError {
        let status = resp.status;
        let body: Value = match crate::json::from_json_slice(&resp.body) {
            Ok(v @ Value::Object(_)) => v,
            _ if trimmed.is_empty() => Value::Object(Map::new()),
            _ => {
                let mut m = Map::new();
                m.insert("message".into(), Value::String(trimmed.to_string()));
                Value::Object(m)
            }
        };
        let mut code = json_error_code(resp, &body)
            .map(|c| strip_code(&c))
            .filter(|c| !c.is_empty())
            .unwrap_or_else(|| status.to_string());
        let shape_code = code.clone();
        if let Some(q) = resp.header("x-amzn-query-error") {
            let parts: Vec<&str> = q.split(';').collect();
            if parts.len() == 2 && !parts[0].is_empty() {
                code = parts[0].to_string();
            }
        }
        let message = ["message", "Message", "errorMessage"]
            .iter()
            .find_map(|k| body.get(*k).and_then(Value::as_str))
            .unwrap_or("")
            .to_string();
        let mut data = Map::new();
        if let Some(shape) = self
            .model
            .error_shape(op, &shape_code)
            .or_else(|| self.model.error_shape(op, &code))
            .and_then(|(_, s)| s.as_structure())
        {
            if protocol == Protocol::RestJson {
                let _ = self.rest_located(shape, resp, &mut data);
            }
            if let Ok(Value::Object(m)) = self.json_struct(shape, &body, true) {
                data.extend(m);
            }
        }
        AwsError {
            code,
            message,
            status,
            request_id: rid,
            data: Value::Object(data),
        }
    }

    // ------------------------------------------------------------------ protocols

    fn query_output(
        &self,
        op: &Operation,
        protocol: Protocol,
        resp: &HttpResponse,
    ) -> PResult<Value> {
        let Some(r) = &op.output else {
            return Ok(Value::Object(Map::new()));
        };
        if resp.body.iter().all(u8::is_ascii_whitespace) {
            return Ok(Value::Object(Map::new()));
        }
        let root = parse_document(&resp.body)?;
        // Query results sit in `<OpResult>` inside `<OpResponse>`: botocore models name the
        // wrapper (`resultWrapper`); Smithy's awsQuery protocol implies `{Operation}Result`.
        let start = match (&r.traits.result_wrapper, protocol) {
            (Some(w), Protocol::Query) => match root.child(w) {
                Some(e) => e,
                None => return Ok(Value::Object(Map::new())),
            },
            (None, Protocol::Query) => root.child(&format!("{}Result", op.name)).unwrap_or(&root),
            _ => &root,
        };
        Ok(Value::Object(self.xml_struct(
            self.model.structure(r),
            start,
            false,
        )?))
    }

    fn json_output(&self, op: &Operation, resp: &HttpResponse) -> PResult<Value> {
        let Some(r) = &op.output else {
            return Ok(Value::Object(Map::new()));
        };
        let body = Self::json_body(resp)?;
        self.json_struct(self.model.structure(r), &body, false)
    }

    /// Members bound to headers and the status code.
    fn rest_located(
        &self,
        shape: &StructureShape,
        resp: &HttpResponse,
        out: &mut Map<String, Value>,
    ) -> PResult<()> {
        for (name, m) in &shape.members {
            match m.traits.location.as_deref() {
                Some("statusCode") => {
                    out.insert(name.clone(), Value::from(resp.status));
                }
                Some("header") => {
                    let hn = m.traits.location_name.as_deref().unwrap_or(name);
                    let Some(hv) = resp.header(hn) else { continue };
                    out.insert(name.clone(), self.header_value(m, hv)?);
                }
                Some("headers") => {
                    let prefix = m
                        .traits
                        .location_name
                        .as_deref()
                        .unwrap_or("")
                        .to_ascii_lowercase();
                    let mut map = Map::new();
                    for (k, v) in &resp.headers {
                        if k.to_ascii_lowercase().starts_with(&prefix) {
                            map.insert(k[prefix.len()..].to_string(), Value::String(v.clone()));
                        }
                    }
                    out.insert(name.clone(), Value::Object(map));
                }
                _ => {}
            }
        }
        Ok(())
    }

    fn header_value(&self, r: &ShapeRef, text: &str) -> PResult<Value> {
        if r.traits.jsonvalue == Some(true) {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(text.trim())
                .map_err(|e| format!("invalid base64 JSON header: {e}"))?;
            return crate::json::from_json_slice(&bytes)
                .map_err(|e| format!("invalid JSON header: {e}"));
        }
        match &self.shape(r).kind {
            ShapeKind::List { member } => {
                let parts = if matches!(self.shape(member).kind, ShapeKind::Timestamp)
                    && member
                        .traits
                        .timestamp_format
                        .as_deref()
                        .unwrap_or("rfc822")
                        .eq_ignore_ascii_case("rfc822")
                {
                    // HTTP dates contain a comma: split after every second one.
                    let pieces: Vec<&str> = text.split(',').map(str::trim).collect();
                    pieces.chunks(2).map(|c| c.join(", ")).collect()
                } else {
                    split_header_list(text)
                };
                let mut items = Vec::new();
                for p in parts {
                    items.push(self.scalar_from_text(member, &p)?);
                }
                Ok(Value::Array(items))
            }
            _ => self.scalar_from_text(r, text),
        }
    }

    fn rest_output(
        &self,
        op: &Operation,
        protocol: Protocol,
        resp: &HttpResponse,
    ) -> PResult<Value> {
        let mut out = Map::new();
        let Some(r) = &op.output else {
            return Ok(Value::Object(out));
        };
        let shape = self.model.structure(r);
        self.rest_located(shape, resp, &mut out)?;
        let body_empty = resp.body.is_empty();
        if let Some((pname, pm)) = shape.payload() {
            if body_empty {
                return Ok(Value::Object(out));
            }
            let v = match self.shape(pm).kind {
                ShapeKind::Blob => {
                    Value::String(base64::engine::general_purpose::STANDARD.encode(&resp.body))
                }
                ShapeKind::String { .. } => {
                    Value::String(String::from_utf8_lossy(&resp.body).into_owned())
                }
                _ if protocol == Protocol::RestJson => {
                    self.json_value(pm, &Self::json_body(resp)?)?
                }
                _ => self.xml_value(pm, &parse_document(&resp.body)?)?,
            };
            out.insert(pname.to_string(), v);
        } else if !resp.body.iter().all(u8::is_ascii_whitespace) {
            let body = if protocol == Protocol::RestJson {
                self.json_struct(shape, &Self::json_body(resp)?, true)?
            } else {
                let root = parse_document(&resp.body)?;
                let mut m = self.xml_struct(shape, &root, true)?;
                // A bare `<Member>text</Member>` document is that member (S3's
                // GetBucketLocation answers `<LocationConstraint>eu-west-1</LocationConstraint>`).
                if m.is_empty() && root.children.is_empty() {
                    for (name, mr) in &shape.members {
                        let wire = mr.traits.location_name.as_deref().unwrap_or(name);
                        if mr.traits.location.is_none() && wire == root.name {
                            m.insert(name.clone(), self.scalar_from_text(mr, &root.text)?);
                        }
                    }
                }
                Value::Object(m)
            };
            if let Value::Object(m) = body {
                out.extend(m);
            }
        }
        Ok(Value::Object(out))
    }
}

fn unknown_union(tag: &str) -> Map<String, Value> {
    let mut inner = Map::new();
    inner.insert("name".into(), Value::String(tag.to_string()));
    let mut m = Map::new();
    m.insert("SDK_UNKNOWN_MEMBER".into(), Value::Object(inner));
    m
}

/// Splits a comma-separated header list, honouring double-quoted items with `\"` escapes.
fn split_header_list(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut chars = text.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let mut item = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => {
                        if let Some(n) = chars.next() {
                            item.push(n);
                        }
                    }
                    '"' => break,
                    c => item.push(c),
                }
            }
            for c in chars.by_ref() {
                if c == ',' {
                    break;
                }
            }
            out.push(item);
        } else {
            let mut ended = true;
            for c in chars.by_ref() {
                if c == ',' {
                    ended = false;
                    break;
                }
                item.push(c);
            }
            out.push(item.trim().to_string());
            if ended {
                break;
            }
            continue;
        }
        if chars.peek().is_none() {
            break;
        }
    }
    out
}
