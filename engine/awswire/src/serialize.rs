//! Request serialization for the five protocols.
//!
//! Input: a model, one of its operations and parameters following the crate's value
//! conventions. Guarantees: the returned [`HttpRequest`] is what botocore would send for the
//! same call (method, percent-encoded path and query, protocol and modeled headers, body,
//! host prefix), members are written in model order (map entries in key order), `null`
//! members are treated as absent, absent top-level idempotency tokens are filled with a UUID
//! v4, and a value of the wrong JSON type is an error naming its path rather than a guess.
//! Parameters are not otherwise validated here: call [`crate::validate`] first.

use base64::Engine as _;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::{Map, Value};

use crate::model::{
    Operation, Protocol, ServiceModel, Shape, ShapeKind, ShapeRef, StructureShape, XmlNamespace,
};
use crate::time::Timestamp;
use crate::xml::Writer;
use crate::{HttpRequest, ModelError};

/// Everything except RFC 3986 unreserved characters is encoded.
const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');
/// Greedy URI labels keep their slashes.
const GREEDY: &AsciiSet = &UNRESERVED.remove(b'/');

/// Why a request could not be serialized.
#[derive(Debug, thiserror::Error)]
pub enum SerializeError {
    /// The model's protocol is not supported.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// A value has the wrong JSON type for its shape.
    #[error("{path}: expected {expected}, got {got}")]
    WrongType {
        /// Path of the value (`Filters[0].Values`).
        path: String,
        /// What the shape needs.
        expected: &'static str,
        /// The JSON type given.
        got: &'static str,
    },
    /// A URI label has no value.
    #[error("{0}: required URI label has no value")]
    MissingLabel(String),
    /// A host label is missing or holds characters not allowed in a host name.
    #[error("{name}: host label `{value}` must contain only letters, digits, hyphens and periods")]
    InvalidHostLabel {
        /// Member name.
        name: String,
        /// The value given.
        value: String,
    },
    /// The operation uses an event stream, which this crate does not implement.
    #[error("{0}: event streams are not supported")]
    EventStream(String),
}

pub(crate) fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "list",
        Value::Object(_) => "object",
    }
}

fn wrong(path: &str, expected: &'static str, v: &Value) -> SerializeError {
    SerializeError::WrongType {
        path: path.to_string(),
        expected,
        got: json_type(v),
    }
}

fn join(path: &str, member: &str) -> String {
    if path.is_empty() {
        member.to_string()
    } else {
        format!("{path}.{member}")
    }
}

/// Serializes a call into an HTTP request (see the module documentation). `params` follows
/// the crate's value conventions (API member names; timestamps as RFC 3339 strings or epoch
/// seconds; blobs as strings taken as their bytes; `"NaN"`/`"Infinity"` for special floats);
/// `null` means no parameters.
pub fn serialize(
    model: &ServiceModel,
    op: &Operation,
    params: &Value,
) -> Result<HttpRequest, SerializeError> {
    serialize_with_token(model, op, params, &mut || uuid::Uuid::new_v4().to_string())
}

/// [`serialize`], with absent idempotency tokens filled by `new_token` instead of a random
/// UUID v4 (for reproducible requests). Retries of one call must resend the same request,
/// not serialize again, or the token changes.
pub fn serialize_with_token(
    model: &ServiceModel,
    op: &Operation,
    params: &Value,
    new_token: &mut dyn FnMut() -> String,
) -> Result<HttpRequest, SerializeError> {
    let protocol = model.protocol()?;
    let empty = Value::Object(Map::new());
    let params = if params.is_null() { &empty } else { params };
    let mut params = params.clone();
    if let Some(shape) = op.input.as_ref().map(|r| model.structure(r)) {
        let Value::Object(obj) = &mut params else {
            return Err(wrong("", "object", &params));
        };
        for (name, m) in &shape.members {
            if m.traits.idempotency_token == Some(true) && obj.get(name).is_none_or(Value::is_null)
            {
                obj.insert(name.clone(), Value::String(new_token()));
            }
            if m.traits.eventstream == Some(true)
                || model.target(m).traits.eventstream == Some(true)
            {
                return Err(SerializeError::EventStream(name.clone()));
            }
        }
    }
    let ser = Ser { model, protocol };
    let mut req = match protocol {
        Protocol::Ec2 | Protocol::Query => ser.query(op, &params)?,
        Protocol::Json => ser.json_rpc(op, &params)?,
        Protocol::RestJson | Protocol::RestXml => ser.rest(op, &params)?,
    };
    req.host_prefix = host_prefix(model, op, &params)?;
    Ok(req)
}

fn host_prefix(
    model: &ServiceModel,
    op: &Operation,
    params: &Value,
) -> Result<Option<String>, SerializeError> {
    let Some(template) = op.endpoint.as_ref().and_then(|e| e.host_prefix.as_ref()) else {
        return Ok(None);
    };
    let mut out = template.clone();
    if let Some(r) = &op.input {
        for (name, m) in &model.structure(r).members {
            if m.traits.host_label != Some(true) {
                continue;
            }
            let value = params.get(name).and_then(Value::as_str).unwrap_or("");
            let ok = !value.is_empty()
                && value
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
            if !ok {
                return Err(SerializeError::InvalidHostLabel {
                    name: name.clone(),
                    value: value.to_string(),
                });
            }
            out = out.replace(&format!("{{{name}}}"), value);
        }
    }
    Ok(Some(out))
}

/// Parses a timestamp parameter (RFC 3339 / ISO 8601 string or epoch seconds).
pub(crate) fn input_timestamp(v: &Value) -> Option<Timestamp> {
    match v {
        Value::Number(n) => Timestamp::from_epoch_f64(n.as_f64()?),
        Value::String(s) => Timestamp::parse(s),
        _ => None,
    }
}

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s.as_bytes())
}

struct Ser<'a> {
    model: &'a ServiceModel,
    protocol: Protocol,
}

/// A string that stands for a special float (`NaN`, `Infinity`, `-Infinity`).
fn special_float(s: &str) -> bool {
    matches!(s, "NaN" | "Infinity" | "-Infinity")
}

/// The parts of a REST request that the input members fill.
#[derive(Default)]
struct RestParts {
    /// URI label values by label name.
    labels: Vec<(String, String)>,
    /// Query string parameters (after the template's literal ones).
    query: Vec<(String, String)>,
    /// Modeled headers.
    headers: Vec<(String, String)>,
    /// The body.
    body: Vec<u8>,
    /// The body's content type, unless a modeled header gives one.
    content_type: Option<&'static str>,
}

/// A `querystring` map member: its value shape, its value, its path. Its entries are added
/// after every explicitly bound query parameter.
type QueryMap<'a> = (&'a ShapeRef, &'a Value, &'a str);

impl Ser<'_> {
    fn shape(&self, r: &ShapeRef) -> &Shape {
        self.model.target(r)
    }

    /// A scalar as text (query strings, headers, XML text, URI labels).
    fn scalar_text(
        &self,
        r: &ShapeRef,
        v: &Value,
        default_ts: &str,
        path: &str,
    ) -> Result<String, SerializeError> {
        let kind = &self.shape(r).kind;
        Ok(match kind {
            ShapeKind::Boolean => match v {
                Value::Bool(b) => b.to_string(),
                _ => return Err(wrong(path, "boolean", v)),
            },
            ShapeKind::Integer(_) | ShapeKind::Float(_) => match v {
                Value::Number(n) => n.to_string(),
                Value::String(s) if matches!(kind, ShapeKind::Float(_)) && special_float(s) => {
                    s.clone()
                }
                _ => return Err(wrong(path, "number", v)),
            },
            ShapeKind::Timestamp => {
                let ts = input_timestamp(v).ok_or_else(|| wrong(path, "timestamp", v))?;
                let fmt = r.traits.timestamp_format.as_deref().unwrap_or(default_ts);
                ts.to_format(fmt)
            }
            ShapeKind::Blob => match v {
                Value::String(s) => b64(s),
                _ => return Err(wrong(path, "string (blob)", v)),
            },
            _ => match v {
                Value::String(s) => s.clone(),
                _ => return Err(wrong(path, "string", v)),
            },
        })
    }

    // ---------------------------------------------------------------- query / ec2

    fn query(&self, op: &Operation, params: &Value) -> Result<HttpRequest, SerializeError> {
        let mut pairs: Vec<(String, String)> = vec![
            ("Action".to_string(), op.name.clone()),
            (
                "Version".to_string(),
                self.model
                    .metadata()
                    .api_version
                    .clone()
                    .unwrap_or_default(),
            ),
        ];
        if let Some(r) = &op.input {
            self.query_struct(&mut pairs, self.model.structure(r), params, "", "")?;
        }
        let body = encode_pairs(&pairs);
        Ok(HttpRequest {
            method: op.http.method.clone(),
            path_and_query: "/".to_string(),
            host_prefix: None,
            headers: vec![(
                "Content-Type".to_string(),
                "application/x-www-form-urlencoded".to_string(),
            )],
            body: body.into_bytes(),
        })
    }

    fn query_name(&self, m: &ShapeRef, default: &str) -> String {
        if self.protocol == Protocol::Ec2 {
            // EC2 keys: `queryName`, else the capitalized `locationName` or member name.
            if let Some(q) = &m.traits.query_name {
                return q.clone();
            }
            let n = m.traits.location_name.as_deref().unwrap_or(default);
            let mut c = n.chars();
            match c.next() {
                Some(f) => f.to_uppercase().chain(c).collect(),
                None => String::new(),
            }
        } else {
            m.traits
                .location_name
                .clone()
                .unwrap_or_else(|| default.to_string())
        }
    }

    fn query_struct(
        &self,
        out: &mut Vec<(String, String)>,
        shape: &StructureShape,
        v: &Value,
        prefix: &str,
        path: &str,
    ) -> Result<(), SerializeError> {
        let Value::Object(obj) = v else {
            return Err(wrong(path, "object", v));
        };
        for (name, m) in &shape.members {
            let Some(mv) = obj.get(name).filter(|x| !x.is_null()) else {
                continue;
            };
            let key = self.query_name(m, name);
            let key = if prefix.is_empty() {
                key
            } else {
                format!("{prefix}.{key}")
            };
            self.query_value(out, m, mv, &key, &join(path, name))?;
        }
        Ok(())
    }

    fn query_value(
        &self,
        out: &mut Vec<(String, String)>,
        r: &ShapeRef,
        v: &Value,
        prefix: &str,
        path: &str,
    ) -> Result<(), SerializeError> {
        match &self.shape(r).kind {
            ShapeKind::Structure(s) => self.query_struct(out, s, v, prefix, path),
            ShapeKind::List { member } => {
                let Value::Array(items) = v else {
                    return Err(wrong(path, "list", v));
                };
                self.query_list(out, member, items, r.traits.is_flattened(), prefix, path)
            }
            ShapeKind::Map { key, value } => {
                let Value::Object(entries) = v else {
                    return Err(wrong(path, "object (map)", v));
                };
                let flat = r.traits.is_flattened();
                self.query_map(out, (key, value), entries, flat, prefix, path)
            }
            _ => {
                let text = self.scalar_text(r, v, "iso8601", path)?;
                out.push((prefix.to_string(), text));
                Ok(())
            }
        }
    }

    /// A list's items as `prefix.member.1`, `prefix.member.2`, ... (EC2: `prefix.1`; an empty
    /// list of the query protocol: `prefix=`).
    fn query_list(
        &self,
        out: &mut Vec<(String, String)>,
        member: &ShapeRef,
        items: &[Value],
        flattened: bool,
        prefix: &str,
        path: &str,
    ) -> Result<(), SerializeError> {
        let list_prefix = if self.protocol == Protocol::Ec2 {
            prefix.to_string()
        } else {
            if items.is_empty() {
                out.push((prefix.to_string(), String::new()));
                return Ok(());
            }
            if flattened {
                match &member.traits.location_name {
                    Some(n) => match prefix.rfind('.') {
                        Some(i) => format!("{}.{n}", &prefix[..i]),
                        None => n.clone(),
                    },
                    None => prefix.to_string(),
                }
            } else {
                let n = member.traits.location_name.as_deref().unwrap_or("member");
                format!("{prefix}.{n}")
            }
        };
        for (i, item) in items.iter().enumerate() {
            if item.is_null() {
                continue;
            }
            self.query_value(
                out,
                member,
                item,
                &format!("{list_prefix}.{}", i + 1),
                &format!("{path}[{i}]"),
            )?;
        }
        Ok(())
    }

    /// A map's entries as `prefix.entry.N.key` / `prefix.entry.N.value` (flattened: without
    /// `.entry`).
    fn query_map(
        &self,
        out: &mut Vec<(String, String)>,
        (key, value): (&ShapeRef, &ShapeRef),
        entries: &Map<String, Value>,
        flattened: bool,
        prefix: &str,
        path: &str,
    ) -> Result<(), SerializeError> {
        let base = if flattened {
            prefix.to_string()
        } else {
            format!("{prefix}.entry")
        };
        let kn = key.traits.location_name.as_deref().unwrap_or("key");
        let vn = value.traits.location_name.as_deref().unwrap_or("value");
        for (i, (k, item)) in entries.iter().enumerate() {
            out.push((format!("{base}.{}.{kn}", i + 1), k.clone()));
            self.query_value(
                out,
                value,
                item,
                &format!("{base}.{}.{vn}", i + 1),
                &format!("{path}.{k}"),
            )?;
        }
        Ok(())
    }

    // ---------------------------------------------------------------- json

    fn json_rpc(&self, op: &Operation, params: &Value) -> Result<HttpRequest, SerializeError> {
        let meta = self.model.metadata();
        let mut headers = Vec::new();
        if let Some(t) = &meta.target_prefix {
            headers.push(("X-Amz-Target".to_string(), format!("{t}.{}", op.name)));
        }
        headers.push((
            "Content-Type".to_string(),
            format!(
                "application/x-amz-json-{}",
                meta.json_version.as_deref().unwrap_or("1.0")
            ),
        ));
        if meta.aws_query_compatible.is_some() {
            headers.push(("x-amzn-query-mode".to_string(), "true".to_string()));
        }
        let body = match &op.input {
            Some(r) => self.json_value(r, params, "")?,
            None => Value::Object(Map::new()),
        };
        Ok(HttpRequest {
            method: op.http.method.clone(),
            path_and_query: "/".to_string(),
            host_prefix: None,
            headers,
            body: serde_json::to_vec(&body).expect("JSON values serialize"),
        })
    }

    fn json_struct_members(
        &self,
        shape: &StructureShape,
        v: &Value,
        path: &str,
        only_body: bool,
    ) -> Result<Map<String, Value>, SerializeError> {
        let Value::Object(obj) = v else {
            return Err(wrong(path, "object", v));
        };
        let mut out = Map::new();
        for (name, m) in &shape.members {
            if only_body && m.traits.location.is_some() {
                continue;
            }
            let Some(mv) = obj.get(name).filter(|x| !x.is_null()) else {
                continue;
            };
            let key = m
                .traits
                .location_name
                .clone()
                .unwrap_or_else(|| name.clone());
            out.insert(key, self.json_value(m, mv, &join(path, name))?);
        }
        Ok(out)
    }

    fn json_value(&self, r: &ShapeRef, v: &Value, path: &str) -> Result<Value, SerializeError> {
        let kind = &self.shape(r).kind;
        Ok(match kind {
            ShapeKind::Structure(s) if s.document => v.clone(),
            ShapeKind::Structure(s) => Value::Object(self.json_struct_members(s, v, path, false)?),
            ShapeKind::List { member } => {
                let Value::Array(items) = v else {
                    return Err(wrong(path, "list", v));
                };
                let mut out = Vec::with_capacity(items.len());
                for (i, item) in items.iter().enumerate() {
                    out.push(if item.is_null() {
                        Value::Null
                    } else {
                        self.json_value(member, item, &format!("{path}[{i}]"))?
                    });
                }
                Value::Array(out)
            }
            ShapeKind::Map { value, .. } => {
                let Value::Object(entries) = v else {
                    return Err(wrong(path, "object (map)", v));
                };
                let mut out = Map::new();
                for (k, item) in entries {
                    let x = if item.is_null() {
                        Value::Null
                    } else {
                        self.json_value(value, item, &format!("{path}.{k}"))?
                    };
                    out.insert(k.clone(), x);
                }
                Value::Object(out)
            }
            ShapeKind::Timestamp => {
                let ts = input_timestamp(v).ok_or_else(|| wrong(path, "timestamp", v))?;
                match r
                    .traits
                    .timestamp_format
                    .as_deref()
                    .unwrap_or("unixTimestamp")
                    .to_ascii_lowercase()
                    .as_str()
                {
                    "iso8601" => Value::String(ts.to_iso8601()),
                    "rfc822" => Value::String(ts.to_rfc822()),
                    _ => ts.to_epoch_value(),
                }
            }
            ShapeKind::Blob => match v {
                Value::String(s) => Value::String(b64(s)),
                _ => return Err(wrong(path, "string (blob)", v)),
            },
            ShapeKind::Boolean if !v.is_boolean() => return Err(wrong(path, "boolean", v)),
            ShapeKind::Integer(_) | ShapeKind::Float(_) => match v {
                Value::Number(_) => v.clone(),
                Value::String(s) if matches!(kind, ShapeKind::Float(_)) && special_float(s) => {
                    v.clone()
                }
                _ => return Err(wrong(path, "number", v)),
            },
            ShapeKind::String { .. } | ShapeKind::Character if !v.is_string() => {
                return Err(wrong(path, "string", v));
            }
            _ => v.clone(),
        })
    }

    // ---------------------------------------------------------------- rest

    fn rest(&self, op: &Operation, params: &Value) -> Result<HttpRequest, SerializeError> {
        let template = op.http.request_uri.as_str();
        let (tpath, tquery) = match template.find('?') {
            Some(i) => (&template[..i], Some(&template[i + 1..])),
            None => (template, None),
        };
        let literal_query: Vec<&str> = tquery
            .into_iter()
            .flat_map(|q| q.split('&'))
            .filter(|p| !p.is_empty())
            .map(|p| p.split('=').next().unwrap_or(""))
            .collect();
        let mut parts = RestParts::default();
        if let Some(input) = &op.input {
            let shape = self.model.structure(input);
            let Value::Object(obj) = params else {
                return Err(wrong("", "object", params));
            };
            let query_maps = self.rest_bind_located(shape, obj, &mut parts)?;
            self.rest_query_maps(query_maps, &literal_query, &mut parts.query)?;
            self.rest_payload(input, shape, obj, params, &mut parts)?;
        }
        let mut path = expand_uri_labels(tpath, &parts.labels)?;
        path.push_str(&query_string(tquery, &parts.query));
        let mut headers = parts.headers;
        if !parts.body.is_empty()
            && !headers
                .iter()
                .any(|(k, _)| k.eq_ignore_ascii_case("content-type"))
            && let Some(ct) = parts.content_type
        {
            headers.push(("Content-Type".to_string(), ct.to_string()));
        }
        Ok(HttpRequest {
            method: op.http.method.clone(),
            path_and_query: path,
            host_prefix: None,
            headers,
            body: parts.body,
        })
    }

    /// Binds the members located in the URI, the query string and headers. Returns the
    /// `querystring` maps, whose entries come after every explicitly bound parameter.
    fn rest_bind_located<'a>(
        &'a self,
        shape: &'a StructureShape,
        obj: &'a Map<String, Value>,
        parts: &mut RestParts,
    ) -> Result<Vec<QueryMap<'a>>, SerializeError> {
        let mut query_maps = Vec::new();
        for (name, m) in &shape.members {
            let Some(v) = obj.get(name).filter(|x| !x.is_null()) else {
                continue;
            };
            let wire = m
                .traits
                .location_name
                .clone()
                .unwrap_or_else(|| name.clone());
            match m.traits.location.as_deref() {
                Some("uri") => {
                    parts
                        .labels
                        .push((wire, self.scalar_text(m, v, "iso8601", name)?));
                }
                Some("querystring") => match &self.shape(m).kind {
                    ShapeKind::Map { value, .. } => query_maps.push((&**value, v, name.as_str())),
                    ShapeKind::List { member } => {
                        let Value::Array(items) = v else {
                            return Err(wrong(name, "list", v));
                        };
                        for (i, item) in items.iter().enumerate() {
                            if item.is_null() {
                                continue;
                            }
                            let path = format!("{name}[{i}]");
                            let t = self.scalar_text(member, item, "iso8601", &path)?;
                            parts.query.push((wire.clone(), t));
                        }
                    }
                    _ => parts
                        .query
                        .push((wire, self.scalar_text(m, v, "iso8601", name)?)),
                },
                Some("header") => {
                    if let Some(h) = self.header_value(m, v, name)? {
                        parts.headers.push((wire, h));
                    }
                }
                Some("headers") => {
                    let Value::Object(entries) = v else {
                        return Err(wrong(name, "object (map)", v));
                    };
                    for (k, hv) in entries {
                        let Value::String(s) = hv else {
                            return Err(wrong(&format!("{name}.{k}"), "string", hv));
                        };
                        parts.headers.push((format!("{wire}{k}"), s.clone()));
                    }
                }
                _ => {}
            }
        }
        Ok(query_maps)
    }

    /// The entries of `querystring` maps, except keys already bound explicitly (by a member
    /// or an earlier map) or written in the URI template.
    fn rest_query_maps(
        &self,
        query_maps: Vec<QueryMap<'_>>,
        literal_query: &[&str],
        query: &mut Vec<(String, String)>,
    ) -> Result<(), SerializeError> {
        for (value, v, path) in query_maps {
            let Value::Object(entries) = v else {
                return Err(wrong(path, "object (map)", v));
            };
            let bound: Vec<String> = query.iter().map(|(k, _)| k.clone()).collect();
            for (k, item) in entries {
                if bound.contains(k) || literal_query.contains(&k.as_str()) {
                    continue;
                }
                let ipath = format!("{path}.{k}");
                if let ShapeKind::List { member } = &self.shape(value).kind {
                    let Value::Array(items) = item else {
                        return Err(wrong(&ipath, "list", item));
                    };
                    for x in items {
                        query.push((k.clone(), self.scalar_text(member, x, "iso8601", &ipath)?));
                    }
                } else {
                    query.push((k.clone(), self.scalar_text(value, item, "iso8601", &ipath)?));
                }
            }
        }
        Ok(())
    }

    /// The body: the payload member (raw for a blob or string, else a JSON/XML document), or
    /// else the members without a location. rest-json sends `{}` when the input has body
    /// members but none is set, or its structure payload is absent.
    fn rest_payload(
        &self,
        input: &ShapeRef,
        shape: &StructureShape,
        obj: &Map<String, Value>,
        params: &Value,
        parts: &mut RestParts,
    ) -> Result<(), SerializeError> {
        let in_body =
            |name: &String, m: &ShapeRef| m.traits.location.is_none() && !shape.is_payload(name);
        if let Some((pname, pm)) = shape.payload() {
            let pv = obj.get(pname).filter(|x| !x.is_null());
            match &self.shape(pm).kind {
                kind @ (ShapeKind::Blob | ShapeKind::String { .. }) => {
                    if let Some(v) = pv {
                        let Value::String(s) = v else {
                            return Err(wrong(pname, "string", v));
                        };
                        parts.body = s.clone().into_bytes();
                    }
                    // Smithy's defaults for raw payloads (a modeled Content-Type header wins).
                    parts.content_type = Some(if matches!(kind, ShapeKind::Blob) {
                        "application/octet-stream"
                    } else {
                        "text/plain"
                    });
                }
                _ => {
                    if let Some(v) = pv {
                        parts.body = self.rest_body(pm, v, pname, false)?;
                    } else if self.protocol == Protocol::RestJson {
                        parts.body = b"{}".to_vec();
                    }
                    parts.content_type = Some(self.body_content_type());
                }
            }
        } else if shape
            .members
            .iter()
            .any(|(n, m)| in_body(n, m) && obj.get(n).is_some_and(|x| !x.is_null()))
        {
            parts.body = self.rest_body(input, params, "", true)?;
            parts.content_type = Some(self.body_content_type());
        } else if self.protocol == Protocol::RestJson
            && shape.members.iter().any(|(n, m)| in_body(n, m))
        {
            parts.body = b"{}".to_vec();
            parts.content_type = Some(self.body_content_type());
        }
        Ok(())
    }

    fn body_content_type(&self) -> &'static str {
        if self.protocol == Protocol::RestJson {
            "application/json"
        } else {
            "application/xml"
        }
    }

    /// The body of a REST request: the value `v` of `r` (for a structure, all its members,
    /// or only those without a location when `only_body`).
    fn rest_body(
        &self,
        r: &ShapeRef,
        v: &Value,
        path: &str,
        only_body: bool,
    ) -> Result<Vec<u8>, SerializeError> {
        if self.protocol == Protocol::RestJson {
            let body = match &self.shape(r).kind {
                ShapeKind::Structure(s) if !s.document => {
                    Value::Object(self.json_struct_members(s, v, path, only_body)?)
                }
                _ => self.json_value(r, v, path)?,
            };
            return Ok(serde_json::to_vec(&body).expect("JSON values serialize"));
        }
        let root = r
            .traits
            .location_name
            .clone()
            .unwrap_or_else(|| r.shape.clone());
        let mut w = Writer::default();
        self.xml_value(&mut w, r, v, &root, path, only_body)?;
        Ok(w.out.into_bytes())
    }

    fn header_value(
        &self,
        r: &ShapeRef,
        v: &Value,
        path: &str,
    ) -> Result<Option<String>, SerializeError> {
        if r.traits.jsonvalue == Some(true) {
            let json = serde_json::to_string(v).expect("JSON values serialize");
            return Ok(Some(b64(&json)));
        }
        match &self.shape(r).kind {
            ShapeKind::List { member } => {
                let Value::Array(items) = v else {
                    return Err(wrong(path, "list", v));
                };
                if items.is_empty() {
                    return Ok(None);
                }
                let quote = matches!(self.shape(member).kind, ShapeKind::String { .. });
                let mut parts = Vec::new();
                for (i, item) in items.iter().enumerate() {
                    if item.is_null() {
                        continue;
                    }
                    let t = self.scalar_text(member, item, "rfc822", &format!("{path}[{i}]"))?;
                    if quote && (t.contains('"') || t.contains(',')) {
                        parts.push(format!("\"{}\"", t.replace('"', "\\\"")));
                    } else {
                        parts.push(t);
                    }
                }
                Ok(Some(parts.join(", ")))
            }
            _ => Ok(Some(self.scalar_text(r, v, "rfc822", path)?)),
        }
    }

    fn ns_attr(r: &ShapeRef) -> Vec<(String, String)> {
        match &r.traits.xml_namespace {
            None => Vec::new(),
            Some(XmlNamespace::Uri(u)) => vec![("xmlns".to_string(), u.clone())],
            Some(XmlNamespace::Prefixed { prefix, uri }) => {
                let name = match prefix.as_deref().filter(|p| !p.is_empty()) {
                    Some(p) => format!("xmlns:{p}"),
                    None => "xmlns".to_string(),
                };
                vec![(name, uri.clone())]
            }
        }
    }

    fn xml_value(
        &self,
        w: &mut Writer,
        r: &ShapeRef,
        v: &Value,
        name: &str,
        path: &str,
        only_body: bool,
    ) -> Result<(), SerializeError> {
        match &self.shape(r).kind {
            ShapeKind::Structure(s) => {
                let Value::Object(obj) = v else {
                    return Err(wrong(path, "object", v));
                };
                let attrs = self.xml_attributes(r, s, obj, path)?;
                w.open(name, &attrs);
                self.xml_members(w, s, obj, path, only_body)?;
                w.close(name);
            }
            ShapeKind::List { member } => {
                let Value::Array(items) = v else {
                    return Err(wrong(path, "list", v));
                };
                if r.traits.is_flattened() {
                    for (i, item) in items.iter().enumerate() {
                        self.xml_value(w, member, item, name, &format!("{path}[{i}]"), false)?;
                    }
                } else {
                    let en = member.traits.location_name.as_deref().unwrap_or("member");
                    w.open(name, &Self::ns_attr(r));
                    for (i, item) in items.iter().enumerate() {
                        self.xml_value(w, member, item, en, &format!("{path}[{i}]"), false)?;
                    }
                    w.close(name);
                }
            }
            ShapeKind::Map { key, value } => {
                let Value::Object(entries) = v else {
                    return Err(wrong(path, "object (map)", v));
                };
                self.xml_map(w, r, (key, value), entries, name, path)?;
            }
            _ => {
                let text = self.scalar_text(r, v, "iso8601", path)?;
                w.leaf(name, &Self::ns_attr(r), &text);
            }
        }
        Ok(())
    }

    /// The attributes of a structure's element: its namespace and its `xmlAttribute` members.
    fn xml_attributes(
        &self,
        r: &ShapeRef,
        shape: &StructureShape,
        obj: &Map<String, Value>,
        path: &str,
    ) -> Result<Vec<(String, String)>, SerializeError> {
        let mut attrs = Self::ns_attr(r);
        for (mname, m) in &shape.members {
            if m.traits.xml_attribute == Some(true)
                && let Some(av) = obj.get(mname).filter(|x| !x.is_null())
            {
                let an = m
                    .traits
                    .location_name
                    .clone()
                    .unwrap_or_else(|| mname.clone());
                attrs.push((an, self.scalar_text(m, av, "iso8601", &join(path, mname))?));
            }
        }
        Ok(attrs)
    }

    /// The child elements of a structure: its members that are not attributes (nor, when
    /// `only_body`, located elsewhere in the request).
    fn xml_members(
        &self,
        w: &mut Writer,
        shape: &StructureShape,
        obj: &Map<String, Value>,
        path: &str,
        only_body: bool,
    ) -> Result<(), SerializeError> {
        for (mname, m) in &shape.members {
            if m.traits.xml_attribute == Some(true) || (only_body && m.traits.location.is_some()) {
                continue;
            }
            let Some(mv) = obj.get(mname).filter(|x| !x.is_null()) else {
                continue;
            };
            let en = m
                .traits
                .location_name
                .clone()
                .unwrap_or_else(|| mname.clone());
            self.xml_value(w, m, mv, &en, &join(path, mname), false)?;
        }
        Ok(())
    }

    /// A map as `<name><entry><key/><value/></entry>...</name>` (flattened: `<name>` per
    /// entry, without the wrapper).
    fn xml_map(
        &self,
        w: &mut Writer,
        r: &ShapeRef,
        (key, value): (&ShapeRef, &ShapeRef),
        entries: &Map<String, Value>,
        name: &str,
        path: &str,
    ) -> Result<(), SerializeError> {
        let kn = key.traits.location_name.as_deref().unwrap_or("key");
        let vn = value.traits.location_name.as_deref().unwrap_or("value");
        let flat = r.traits.is_flattened();
        if !flat {
            w.open(name, &Self::ns_attr(r));
        }
        for (k, item) in entries {
            let entry = if flat { name } else { "entry" };
            w.open(entry, &[]);
            self.xml_value(w, key, &Value::String(k.clone()), kn, path, false)?;
            self.xml_value(w, value, item, vn, &format!("{path}.{k}"), false)?;
            w.close(entry);
        }
        if !flat {
            w.close(name);
        }
        Ok(())
    }
}

/// The path of a REST URI template with its `{Label}`s (`{Label+}`: greedy, keeping slashes)
/// filled, percent-encoded.
fn expand_uri_labels(
    template: &str,
    labels: &[(String, String)],
) -> Result<String, SerializeError> {
    let mut path = String::new();
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        path.push_str(&rest[..start]);
        let end = rest[start..]
            .find('}')
            .map(|e| start + e)
            .unwrap_or(rest.len());
        let label = &rest[start + 1..end];
        let (name, greedy) = match label.strip_suffix('+') {
            Some(n) => (n, true),
            None => (label, false),
        };
        let value = labels
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .ok_or_else(|| SerializeError::MissingLabel(name.to_string()))?;
        let set = if greedy { GREEDY } else { UNRESERVED };
        path.push_str(&utf8_percent_encode(value, set).to_string());
        rest = &rest[(end + 1).min(rest.len())..];
    }
    path.push_str(rest);
    Ok(path)
}

/// `?` and the template's literal query followed by the bound parameters, or nothing.
fn query_string(literal: Option<&str>, query: &[(String, String)]) -> String {
    let mut qs: Vec<String> = Vec::new();
    if let Some(q) = literal {
        qs.extend(q.split('&').filter(|p| !p.is_empty()).map(str::to_string));
    }
    if !query.is_empty() {
        qs.push(encode_pairs(query));
    }
    if qs.is_empty() {
        String::new()
    } else {
        format!("?{}", qs.join("&"))
    }
}

/// `k=v&k=v` with RFC 3986 percent-encoding of keys and values.
fn encode_pairs(pairs: &[(String, String)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| {
            format!(
                "{}={}",
                utf8_percent_encode(k, UNRESERVED),
                utf8_percent_encode(v, UNRESERVED)
            )
        })
        .collect::<Vec<_>>()
        .join("&")
}
