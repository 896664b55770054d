//! botocore service models (`service-2.json`): checked whole at load, each operation and
//! shape parsed into typed values on first use.
//!
//! Input: the bytes of a botocore `service-2.json` (documentation fields are ignored).
//! Guarantees: after [`ServiceModel::from_json`] succeeds, every shape reference in the
//! model (operation inputs, outputs, errors, structure members, list members, map keys and
//! values) names a shape that exists, every list has a member, every map a key and a value,
//! every `payload` names a member, and every member reference carries its *effective*
//! serialization traits: the traits written on the reference, falling back to the traits
//! written on the target shape (the way botocore merges them). A parsed [`Shape`] says this
//! in its type: its [`ShapeKind`] carries exactly the parts of its kind (a list its member, a
//! map its key and value, a structure its members and payload). Structure members keep the
//! order in which the model lists them, so serialization is deterministic and in model order.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::sync::{LazyLock, OnceLock};

use indexmap::IndexMap;
use serde::Deserialize;
use serde_json::value::RawValue;

/// An error in a service model document.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// The document is not JSON of the expected shape (message from serde_json).
    #[error("invalid service model: {0}")]
    Json(#[from] serde_json::Error),
    /// A shape reference names a shape that the model does not define.
    #[error("invalid service model: {from} refers to undefined shape `{shape}`")]
    MissingShape {
        /// Where the reference was found (`operation Foo input`, `shape Bar member baz`).
        from: String,
        /// The shape name that is not defined.
        shape: String,
    },
    /// A shape lacks a part its type needs (a list without `member`, a map without `key` or
    /// `value`, a `payload` naming no member).
    #[error("invalid service model: shape `{shape}` {problem}")]
    InvalidShape {
        /// The shape name.
        shape: String,
        /// What is wrong.
        problem: &'static str,
    },
    /// None of the protocols the model lists is one this crate implements.
    #[error("unsupported protocol(s) {0:?}: orgop speaks ec2, query, json, rest-json and rest-xml")]
    UnsupportedProtocol(Vec<String>),
}

/// A name (operation, member, service, ...) that is not known, with the known names closest
/// to it (by Jaro-Winkler similarity, best first).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {kind} `{name}`{}", did_you_mean(.suggestions))]
pub struct UnknownName {
    /// What kind of name it is (`operation`, `member`, ...).
    pub kind: &'static str,
    /// The name as given.
    pub name: String,
    /// Known names close to it, best first (at most five).
    pub suggestions: Vec<String>,
}

fn did_you_mean(s: &[String]) -> String {
    if s.is_empty() {
        String::new()
    } else {
        format!(" (did you mean {}?)", s.join(", "))
    }
}

impl UnknownName {
    /// Builds the error, ranking `known` by similarity to `name`.
    pub fn new<'a>(
        kind: &'static str,
        name: &str,
        known: impl IntoIterator<Item = &'a str>,
    ) -> UnknownName {
        UnknownName {
            kind,
            name: name.to_string(),
            suggestions: close_matches(name, known),
        }
    }
}

/// Known names close to `name`, best first: case-insensitive equality first, then
/// Jaro-Winkler similarity of at least 0.8 (at most five results).
pub fn close_matches<'a>(name: &str, known: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let lower = name.to_ascii_lowercase();
    let mut scored: Vec<(f64, &str)> = known
        .into_iter()
        .filter_map(|k| {
            let kl = k.to_ascii_lowercase();
            let score = if kl == lower {
                2.0
            } else {
                strsim::jaro_winkler(&lower, &kl)
            };
            (score >= 0.8).then_some((score, k))
        })
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| a.1.cmp(b.1)));
    scored
        .into_iter()
        .take(5)
        .map(|(_, k)| k.to_string())
        .collect()
}

/// The wire protocols this crate implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// EC2's variant of the query protocol (`ec2`).
    Ec2,
    /// AWS query protocol (`query`): form-encoded request, XML response.
    Query,
    /// AWS JSON 1.0 / 1.1 (`json`): `X-Amz-Target` header, JSON body.
    Json,
    /// REST with JSON bodies (`rest-json`).
    RestJson,
    /// REST with XML bodies (`rest-xml`).
    RestXml,
}

impl Protocol {
    /// The protocol for a botocore protocol name, if we implement it.
    pub fn from_name(name: &str) -> Option<Protocol> {
        Some(match name {
            "ec2" => Protocol::Ec2,
            "query" => Protocol::Query,
            "json" => Protocol::Json,
            "rest-json" => Protocol::RestJson,
            "rest-xml" => Protocol::RestXml,
            _ => return None,
        })
    }

    /// The botocore name of the protocol.
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Ec2 => "ec2",
            Protocol::Query => "query",
            Protocol::Json => "json",
            Protocol::RestJson => "rest-json",
            Protocol::RestXml => "rest-xml",
        }
    }
}

/// The `metadata` block of a service model.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Metadata {
    /// The service's main protocol (`metadata.protocol`).
    pub protocol: Option<String>,
    /// The protocols the service accepts, preferred first (`metadata.protocols`).
    #[serde(default)]
    pub protocols: Vec<String>,
    /// API version, sent as `Version` by the query protocols.
    pub api_version: Option<String>,
    /// Endpoint prefix (`ec2` in `ec2.us-east-1.amazonaws.com`).
    pub endpoint_prefix: Option<String>,
    /// SigV4 signing name, when it differs from the endpoint prefix.
    pub signing_name: Option<String>,
    /// The service id (`EC2`, `Resource Groups Tagging API`).
    pub service_id: Option<String>,
    /// Full service name.
    pub service_full_name: Option<String>,
    /// Target prefix for the JSON protocol's `X-Amz-Target` header.
    pub target_prefix: Option<String>,
    /// JSON protocol version (`1.0` or `1.1`).
    pub json_version: Option<String>,
    /// Region of the global endpoint for global services.
    pub global_endpoint: Option<String>,
    /// Signature version (`v4`, `s3v4`, ...).
    pub signature_version: Option<String>,
    /// Unique id of this model version.
    pub uid: Option<String>,
    /// XML namespace of the service (query protocols).
    pub xml_namespace: Option<String>,
    /// Auth schemes the service accepts, preferred first (`aws.auth#sigv4`).
    #[serde(default)]
    pub auth: Vec<String>,
    /// Whether a JSON service also understands query-protocol error codes.
    #[serde(default)]
    pub aws_query_compatible: Option<serde_json::Value>,
}

/// The XML namespace trait: a plain URI or a `{prefix, uri}` object.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum XmlNamespace {
    /// `"xmlNamespace": "https://..."`.
    Uri(String),
    /// `"xmlNamespace": {"prefix": "baz", "uri": "https://..."}`.
    Prefixed {
        /// Namespace prefix (`xmlns:prefix`), if any.
        #[serde(default)]
        prefix: Option<String>,
        /// Namespace URI.
        uri: String,
    },
}

/// Serialization traits that can be written on a shape or on a reference to it.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Traits {
    /// Where a member goes in a REST request/response: `uri`, `querystring`, `header`,
    /// `headers`, `statusCode` (absent: the body).
    pub location: Option<String>,
    /// Wire name of the member (element, key, header or label name).
    pub location_name: Option<String>,
    /// EC2 query name override.
    pub query_name: Option<String>,
    /// XML / query lists and maps without a wrapping element.
    pub flattened: Option<bool>,
    /// XML namespace to declare on the element.
    pub xml_namespace: Option<XmlNamespace>,
    /// The member is an XML attribute of its parent element.
    pub xml_attribute: Option<bool>,
    /// Timestamp format: `iso8601`, `rfc822` or `unixTimestamp`.
    pub timestamp_format: Option<String>,
    /// The payload is a stream of bytes.
    pub streaming: Option<bool>,
    /// The member fills a `{label}` of `endpoint.hostPrefix`.
    pub host_label: Option<bool>,
    /// A header whose value is base64-encoded JSON.
    pub jsonvalue: Option<bool>,
    /// Filled with a fresh UUID when the caller gives no value.
    pub idempotency_token: Option<bool>,
    /// An event stream (not supported by this crate).
    pub eventstream: Option<bool>,
    /// Query protocols: the element that wraps the result.
    pub result_wrapper: Option<String>,
}

impl Traits {
    fn or(&self, fallback: &Traits) -> Traits {
        Traits {
            location: self.location.clone().or_else(|| fallback.location.clone()),
            location_name: self
                .location_name
                .clone()
                .or_else(|| fallback.location_name.clone()),
            query_name: self
                .query_name
                .clone()
                .or_else(|| fallback.query_name.clone()),
            flattened: self.flattened.or(fallback.flattened),
            xml_namespace: self
                .xml_namespace
                .clone()
                .or_else(|| fallback.xml_namespace.clone()),
            xml_attribute: self.xml_attribute.or(fallback.xml_attribute),
            timestamp_format: self
                .timestamp_format
                .clone()
                .or_else(|| fallback.timestamp_format.clone()),
            streaming: self.streaming.or(fallback.streaming),
            host_label: self.host_label.or(fallback.host_label),
            jsonvalue: self.jsonvalue.or(fallback.jsonvalue),
            idempotency_token: self.idempotency_token.or(fallback.idempotency_token),
            eventstream: self.eventstream.or(fallback.eventstream),
            result_wrapper: self
                .result_wrapper
                .clone()
                .or_else(|| fallback.result_wrapper.clone()),
        }
    }

    /// Whether the list or map is flattened.
    pub fn is_flattened(&self) -> bool {
        self.flattened.unwrap_or(false)
    }
}

/// A reference to a shape (a structure member, list member, map key/value, or an
/// operation's input/output/error), with the effective traits of the reference.
#[derive(Debug, Clone, Deserialize)]
pub struct ShapeRef {
    /// Name of the target shape.
    pub shape: String,
    /// Effective traits: those on the reference, falling back to those on the shape.
    #[serde(flatten)]
    pub traits: Traits,
    /// The member is deprecated.
    #[serde(default)]
    pub deprecated: bool,
}

/// The botocore `type` of a shape ([`Shape::shape_type`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ShapeType {
    /// An object with named members.
    Structure,
    /// An ordered list.
    List,
    /// A string-keyed map.
    Map,
    /// A UTF-8 string.
    String,
    /// 32-bit integer.
    Integer,
    /// 64-bit integer.
    Long,
    /// 16-bit integer.
    Short,
    /// 8-bit integer.
    Byte,
    /// 32-bit float.
    Float,
    /// 64-bit float.
    Double,
    /// Boolean.
    Boolean,
    /// A point in time.
    Timestamp,
    /// Bytes.
    Blob,
    /// A single character.
    Character,
    /// Arbitrary precision decimal.
    #[serde(rename = "bigdecimal")]
    BigDecimal,
    /// Arbitrary precision integer.
    #[serde(rename = "biginteger")]
    BigInteger,
}

impl ShapeType {
    /// Whether the shape holds a number.
    pub fn is_number(self) -> bool {
        matches!(
            self,
            ShapeType::Integer
                | ShapeType::Long
                | ShapeType::Short
                | ShapeType::Byte
                | ShapeType::Float
                | ShapeType::Double
                | ShapeType::BigDecimal
                | ShapeType::BigInteger
        )
    }

    /// Whether the shape holds a whole number.
    pub fn is_integer(self) -> bool {
        matches!(
            self,
            ShapeType::Integer
                | ShapeType::Long
                | ShapeType::Short
                | ShapeType::Byte
                | ShapeType::BigInteger
        )
    }

    /// Whether the shape holds a floating point number.
    pub fn is_float(self) -> bool {
        matches!(
            self,
            ShapeType::Float | ShapeType::Double | ShapeType::BigDecimal
        )
    }
}

/// The `error` trait of an exception shape.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorTrait {
    /// The error code on the wire, when it differs from the shape name.
    pub code: Option<String>,
    /// HTTP status the service answers with.
    pub http_status_code: Option<u16>,
    /// Whether the caller is at fault.
    #[serde(default)]
    pub sender_fault: bool,
}

/// The `retryable` trait of an error shape.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
pub struct RetryableTrait {
    /// The error means "slow down".
    #[serde(default)]
    pub throttling: bool,
}

/// A shape definition as botocore writes it: a `type` and, flatly, every part any type may
/// have. Only read while loading; [`Shape`] is what the rest of the crate sees.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawShape {
    #[serde(rename = "type")]
    kind: ShapeType,
    #[serde(default)]
    members: IndexMap<String, ShapeRef>,
    #[serde(default)]
    required: Vec<String>,
    member: Option<Box<ShapeRef>>,
    key: Option<Box<ShapeRef>>,
    value: Option<Box<ShapeRef>>,
    #[serde(rename = "enum")]
    enum_values: Option<Vec<String>>,
    min: Option<f64>,
    max: Option<f64>,
    pattern: Option<String>,
    payload: Option<String>,
    #[serde(default)]
    exception: bool,
    error: Option<ErrorTrait>,
    retryable: Option<RetryableTrait>,
    #[serde(default)]
    document: bool,
    #[serde(default)]
    union: bool,
    #[serde(flatten)]
    traits: Traits,
}

/// A shape definition: its kind, carrying exactly the parts that kind has, and what any
/// shape may carry (constraints, error traits, its own serialization traits).
#[derive(Debug, Clone)]
pub struct Shape {
    /// What the shape is, with the parts of that kind (members, list member, map key and
    /// value, enum values).
    pub kind: ShapeKind,
    /// Minimum: length of strings/blobs/lists/maps, or value of numbers.
    pub min: Option<f64>,
    /// Maximum: length of strings/blobs/lists/maps, or value of numbers.
    pub max: Option<f64>,
    /// Regular expression strings must match (not enforced).
    pub pattern: Option<String>,
    /// The shape is an error shape.
    pub exception: bool,
    /// Error trait of an exception shape.
    pub error: Option<ErrorTrait>,
    /// Retry hint of an error shape (`{"throttling": true}`).
    pub retryable: Option<RetryableTrait>,
    /// Traits on the shape itself.
    pub traits: Traits,
}

/// The kind of a shape, with the parts that kind has: a list always has its member, a map
/// its key and value, a structure its members.
#[derive(Debug, Clone)]
pub enum ShapeKind {
    /// An object with named members (also documents and unions).
    Structure(StructureShape),
    /// An ordered list.
    List {
        /// The list member.
        member: Box<ShapeRef>,
    },
    /// A string-keyed map.
    Map {
        /// The map key.
        key: Box<ShapeRef>,
        /// The map value.
        value: Box<ShapeRef>,
    },
    /// A UTF-8 string.
    String {
        /// Allowed values (empty: any string).
        enum_values: Vec<String>,
    },
    /// A single character.
    Character,
    /// A whole number.
    Integer(IntegerType),
    /// A floating point or decimal number.
    Float(FloatType),
    /// Boolean.
    Boolean,
    /// A point in time (its wire format is a trait of the reference: `timestampFormat`).
    Timestamp,
    /// Bytes.
    Blob,
}

/// The whole-number shape types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IntegerType {
    /// 8-bit integer.
    Byte,
    /// 16-bit integer.
    Short,
    /// 32-bit integer.
    Integer,
    /// 64-bit integer.
    Long,
    /// Arbitrary precision integer.
    BigInteger,
}

/// The floating point and decimal shape types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FloatType {
    /// 32-bit float.
    Float,
    /// 64-bit float.
    Double,
    /// Arbitrary precision decimal.
    BigDecimal,
}

/// The parts of a structure shape.
#[derive(Debug, Clone, Default)]
pub struct StructureShape {
    /// Members, in model order.
    pub members: IndexMap<String, ShapeRef>,
    /// Names of required members.
    pub required: Vec<String>,
    /// Index in `members` of the member that is the whole HTTP payload (REST protocols).
    payload: Option<usize>,
    /// A document: any JSON value.
    pub document: bool,
    /// A union: exactly one member set.
    pub union: bool,
}

impl StructureShape {
    /// The member that is the whole HTTP payload (REST protocols), with its name.
    pub fn payload(&self) -> Option<(&str, &ShapeRef)> {
        let (name, r) = self.members.get_index(self.payload?)?;
        Some((name, r))
    }

    /// Whether `name` is the payload member.
    pub fn is_payload(&self, name: &str) -> bool {
        self.payload().is_some_and(|(p, _)| p == name)
    }

    /// A structure without members: what a reference to a shape of another kind reads as
    /// where a structure is needed.
    fn empty() -> &'static StructureShape {
        static EMPTY: LazyLock<StructureShape> = LazyLock::new(StructureShape::default);
        &EMPTY
    }
}

impl Shape {
    /// The botocore `type` of the shape.
    pub fn shape_type(&self) -> ShapeType {
        match &self.kind {
            ShapeKind::Structure(_) => ShapeType::Structure,
            ShapeKind::List { .. } => ShapeType::List,
            ShapeKind::Map { .. } => ShapeType::Map,
            ShapeKind::String { .. } => ShapeType::String,
            ShapeKind::Character => ShapeType::Character,
            ShapeKind::Integer(IntegerType::Byte) => ShapeType::Byte,
            ShapeKind::Integer(IntegerType::Short) => ShapeType::Short,
            ShapeKind::Integer(IntegerType::Integer) => ShapeType::Integer,
            ShapeKind::Integer(IntegerType::Long) => ShapeType::Long,
            ShapeKind::Integer(IntegerType::BigInteger) => ShapeType::BigInteger,
            ShapeKind::Float(FloatType::Float) => ShapeType::Float,
            ShapeKind::Float(FloatType::Double) => ShapeType::Double,
            ShapeKind::Float(FloatType::BigDecimal) => ShapeType::BigDecimal,
            ShapeKind::Boolean => ShapeType::Boolean,
            ShapeKind::Timestamp => ShapeType::Timestamp,
            ShapeKind::Blob => ShapeType::Blob,
        }
    }

    /// The structure parts, if the shape is a structure.
    pub fn as_structure(&self) -> Option<&StructureShape> {
        match &self.kind {
            ShapeKind::Structure(s) => Some(s),
            _ => None,
        }
    }

    /// The references the shape holds: structure members, list member, map key and value.
    fn refs_mut(&mut self) -> Vec<&mut ShapeRef> {
        match &mut self.kind {
            ShapeKind::Structure(s) => s.members.values_mut().collect(),
            ShapeKind::List { member } => vec![&mut **member],
            ShapeKind::Map { key, value } => vec![&mut **key, &mut **value],
            _ => Vec::new(),
        }
    }
}

impl RawShape {
    /// The typed shape, or what part its type lacks (a list without `member`, a map without
    /// `key` or `value`, a `payload` naming no member).
    fn into_shape(self, name: &str) -> Result<Shape, ModelError> {
        let invalid = |problem| ModelError::InvalidShape {
            shape: name.to_string(),
            problem,
        };
        // Reported after a missing list member or map key/value.
        let payload = match &self.payload {
            None => Ok(None),
            Some(p) => self
                .members
                .get_index_of(p)
                .map(Some)
                .ok_or("names a `payload` that is not one of its members"),
        };
        let kind = match self.kind {
            ShapeType::Structure => ShapeKind::Structure(StructureShape {
                members: self.members,
                required: self.required,
                payload: payload.map_err(invalid)?,
                document: self.document,
                union: self.union,
            }),
            ShapeType::List => ShapeKind::List {
                member: self
                    .member
                    .ok_or_else(|| invalid("is a list without `member`"))?,
            },
            ShapeType::Map => match (self.key, self.value) {
                (Some(key), Some(value)) => ShapeKind::Map { key, value },
                _ => return Err(invalid("is a map without `key` and `value`")),
            },
            ShapeType::String => ShapeKind::String {
                enum_values: self.enum_values.unwrap_or_default(),
            },
            ShapeType::Character => ShapeKind::Character,
            ShapeType::Byte => ShapeKind::Integer(IntegerType::Byte),
            ShapeType::Short => ShapeKind::Integer(IntegerType::Short),
            ShapeType::Integer => ShapeKind::Integer(IntegerType::Integer),
            ShapeType::Long => ShapeKind::Integer(IntegerType::Long),
            ShapeType::BigInteger => ShapeKind::Integer(IntegerType::BigInteger),
            ShapeType::Float => ShapeKind::Float(FloatType::Float),
            ShapeType::Double => ShapeKind::Float(FloatType::Double),
            ShapeType::BigDecimal => ShapeKind::Float(FloatType::BigDecimal),
            ShapeType::Boolean => ShapeKind::Boolean,
            ShapeType::Timestamp => ShapeKind::Timestamp,
            ShapeType::Blob => ShapeKind::Blob,
        };
        payload.map_err(invalid)?;
        Ok(Shape {
            kind,
            min: self.min,
            max: self.max,
            pattern: self.pattern,
            exception: self.exception,
            error: self.error,
            retryable: self.retryable,
            traits: self.traits,
        })
    }
}

/// HTTP binding of an operation.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HttpBinding {
    /// HTTP method (`POST` when the model says nothing).
    #[serde(default = "default_method")]
    pub method: String,
    /// Request URI template (`/{Bucket}/{Key+}?tagging`).
    #[serde(default = "default_uri")]
    pub request_uri: String,
    /// HTTP status of a successful response.
    pub response_code: Option<u16>,
}

fn default_method() -> String {
    "POST".to_string()
}
fn default_uri() -> String {
    "/".to_string()
}

impl Default for HttpBinding {
    fn default() -> Self {
        HttpBinding {
            method: default_method(),
            request_uri: default_uri(),
            response_code: None,
        }
    }
}

/// The `endpoint` trait of an operation.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EndpointTrait {
    /// Host prefix template, with `{Label}`s filled from `hostLabel` members.
    pub host_prefix: Option<String>,
}

/// An operation of a service.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Operation {
    /// Operation name as the API reference spells it (`DescribeVolumes`).
    pub name: String,
    /// HTTP binding.
    #[serde(default)]
    pub http: HttpBinding,
    /// Input shape reference.
    pub input: Option<ShapeRef>,
    /// Output shape reference.
    pub output: Option<ShapeRef>,
    /// Modeled errors.
    #[serde(default)]
    pub errors: Vec<ShapeRef>,
    /// Host prefix trait.
    pub endpoint: Option<EndpointTrait>,
    /// The operation is deprecated.
    #[serde(default)]
    pub deprecated: bool,
    /// The operation is idempotent.
    #[serde(default)]
    pub idempotent: bool,
    /// Auth type override (`none`, `v4-unsigned-body`).
    pub authtype: Option<String>,
    /// Requests need a `Content-MD5` (or flexible checksum) header; not computed by this
    /// crate.
    #[serde(default)]
    pub http_checksum_required: bool,
    /// Flexible checksum settings (S3), not computed by this crate.
    pub http_checksum: Option<HttpChecksum>,
    /// Auth schemes the operation accepts, preferred first (`aws.auth#sigv4`, `smithy.api#noAuth`).
    #[serde(default)]
    pub auth: Vec<String>,
    /// The payload is sent unsigned (`UNSIGNED-PAYLOAD`).
    #[serde(default)]
    pub unsigned_payload: bool,
    /// The operation only reads.
    #[serde(default)]
    pub readonly: bool,
    /// Endpoint-ruleset parameters fixed by this operation (`{"UseS3ExpressControlEndpoint":
    /// {"value": true}}`).
    #[serde(default)]
    pub static_context_params: Option<serde_json::Value>,
}

/// The `httpChecksum` trait of an operation.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HttpChecksum {
    /// A request checksum must be sent.
    #[serde(default)]
    pub request_checksum_required: bool,
    /// Input member naming the checksum algorithm the caller chose.
    pub request_algorithm_member: Option<String>,
    /// Input member enabling response checksum validation.
    pub request_validation_mode_member: Option<String>,
    /// Algorithms a response checksum may use.
    #[serde(default)]
    pub response_algorithms: Vec<String>,
}

#[derive(Deserialize)]
struct RawModel<'a> {
    #[serde(default)]
    metadata: Metadata,
    #[serde(default, borrow)]
    operations: IndexMap<Cow<'a, str>, &'a RawValue>,
    #[serde(default, borrow)]
    shapes: IndexMap<Cow<'a, str>, &'a RawValue>,
}

/// A definition kept as its place in the model text and parsed, references resolved, on
/// first use.
#[derive(Debug, Clone)]
struct Lazy<T> {
    at: u32,
    len: u32,
    parsed: OnceLock<Box<T>>,
}

impl<T> Lazy<T> {
    fn new(text: &str, raw: &RawValue) -> Lazy<T> {
        let at = raw.get().as_ptr() as usize - text.as_ptr() as usize;
        Lazy {
            at: at as u32,
            len: raw.get().len() as u32,
            parsed: OnceLock::new(),
        }
    }

    fn text<'t>(&self, text: &'t str) -> &'t str {
        &text[self.at as usize..(self.at + self.len) as usize]
    }
}

/// A botocore service model.
///
/// Every definition is checked when the model is loaded, but only the operations and shapes
/// a caller uses are kept parsed: the text of a large model (EC2's is 1.2 MB) is several
/// times smaller than all of its shapes as typed values, and a process uses a few dozen.
#[derive(Debug, Clone)]
pub struct ServiceModel {
    metadata: Metadata,
    text: Box<str>,
    operations: IndexMap<Box<str>, Lazy<Operation>>,
    shapes: HashMap<Box<str>, Lazy<Shape>>,
    /// Names of the error shapes (`exception` or an `error` trait), sorted: the candidates of
    /// [`ServiceModel::error_shape`]'s last resort.
    error_shapes: Vec<Box<str>>,
}

impl ServiceModel {
    /// Parses a botocore `service-2.json` and checks every shape reference, list, map and
    /// payload (see the module documentation).
    pub fn from_json(bytes: &[u8]) -> Result<ServiceModel, ModelError> {
        ServiceModel::from_json_vec(bytes.to_vec())
    }

    /// [`ServiceModel::from_json`] taking the document by value, which the model keeps.
    pub fn from_json_vec(bytes: Vec<u8>) -> Result<ServiceModel, ModelError> {
        let text = match String::from_utf8(bytes) {
            Ok(t) => t.into_boxed_str(),
            Err(e) => {
                // serde_json names the position of the bad byte.
                return Err(
                    serde_json::from_slice::<serde::de::IgnoredAny>(e.as_bytes())
                        .err()
                        .map(ModelError::Json)
                        .unwrap_or(ModelError::InvalidShape {
                            shape: String::new(),
                            problem: "is not UTF-8",
                        }),
                );
            }
        };
        let raw: RawModel = serde_json::from_str(&text)?;
        let names: HashSet<&str> = raw.shapes.keys().map(|k| k.as_ref()).collect();
        let mut shapes = HashMap::with_capacity(raw.shapes.len());
        let mut error_shapes = Vec::new();
        for (name, r) in &raw.shapes {
            let raw_shape: RawShape = serde_json::from_str(r.get())?;
            let refs = check_refs(name, &raw_shape, &names);
            let shape = raw_shape.into_shape(name)?;
            refs?;
            if shape.exception || shape.error.is_some() {
                error_shapes.push(Box::from(name.as_ref()));
            }
            shapes.insert(Box::from(name.as_ref()), Lazy::new(&text, r));
        }
        error_shapes.sort_unstable();
        let mut operations = IndexMap::with_capacity(raw.operations.len());
        for (name, r) in &raw.operations {
            let op: Operation = serde_json::from_str(r.get())?;
            check_operation(name, &op, &names)?;
            operations.insert(Box::from(name.as_ref()), Lazy::new(&text, r));
        }
        Ok(ServiceModel {
            metadata: raw.metadata,
            text,
            operations,
            shapes,
            error_shapes,
        })
    }

    #[cfg(test)]
    fn parsed_shapes(&self) -> usize {
        self.shapes
            .values()
            .filter(|l| l.parsed.get().is_some())
            .count()
    }

    /// The traits written on a shape itself (what its references fall back to).
    fn own_traits(&self, name: &str) -> Traits {
        let lazy = &self.shapes[name];
        match lazy.parsed.get() {
            Some(shape) => shape.traits.clone(),
            None => serde_json::from_str(lazy.text(&self.text)).expect("checked at load"),
        }
    }

    fn resolve_ref(&self, r: &mut ShapeRef) {
        r.traits = r.traits.or(&self.own_traits(&r.shape));
    }

    fn parse_shape(&self, name: &str, lazy: &Lazy<Shape>) -> Box<Shape> {
        let mut s = serde_json::from_str::<RawShape>(lazy.text(&self.text))
            .map_err(ModelError::from)
            .and_then(|raw| raw.into_shape(name))
            .expect("checked at load");
        s.refs_mut().into_iter().for_each(|r| self.resolve_ref(r));
        Box::new(s)
    }

    fn parse_operation(&self, name: &str, lazy: &Lazy<Operation>) -> Box<Operation> {
        let mut op: Box<Operation> =
            serde_json::from_str(lazy.text(&self.text)).expect("checked at load");
        if op.name.is_empty() {
            op.name = name.to_string();
        }
        if let Some(r) = op.input.as_mut() {
            self.resolve_ref(r);
        }
        if let Some(r) = op.output.as_mut() {
            self.resolve_ref(r);
        }
        for r in op.errors.iter_mut() {
            self.resolve_ref(r);
        }
        op
    }

    /// The model's metadata.
    pub fn metadata(&self) -> &Metadata {
        &self.metadata
    }

    /// The protocol to speak: the first of `metadata.protocols` (or else `metadata.protocol`)
    /// that this crate implements.
    pub fn protocol(&self) -> Result<Protocol, ModelError> {
        let mut names: Vec<String> = self.metadata.protocols.clone();
        if let Some(p) = &self.metadata.protocol {
            names.push(p.clone());
        }
        names
            .iter()
            .find_map(|n| Protocol::from_name(n))
            .ok_or(ModelError::UnsupportedProtocol(names))
    }

    /// An operation by its exact name, or the close matches.
    pub fn operation(&self, name: &str) -> Result<&Operation, UnknownName> {
        match self.operations.get_key_value(name) {
            Some((key, lazy)) => Ok(lazy.parsed.get_or_init(|| self.parse_operation(key, lazy))),
            None => Err(UnknownName::new(
                "operation",
                name,
                self.operations.keys().map(|k| &**k),
            )),
        }
    }

    /// All operation names, in model order.
    pub fn operation_names(&self) -> impl Iterator<Item = &str> {
        self.operations.keys().map(|k| &**k)
    }

    /// A shape by name.
    pub fn shape(&self, name: &str) -> Option<&Shape> {
        self.shape_named(name).map(|(_, s)| s)
    }

    fn shape_named(&self, name: &str) -> Option<(&str, &Shape)> {
        let (key, lazy) = self.shapes.get_key_value(name)?;
        Some((key, lazy.parsed.get_or_init(|| self.parse_shape(key, lazy))))
    }

    /// The shape a reference points at (always present after [`ServiceModel::from_json`]).
    pub(crate) fn target(&self, r: &ShapeRef) -> &Shape {
        self.shape(&r.shape)
            .expect("references are checked at load")
    }

    /// The structure a reference points at. A shape of another kind reads as a structure
    /// without members, as the serializers and parsers have always treated it where they
    /// need a structure (an operation's input or output, an error shape); botocore's models
    /// have none.
    pub(crate) fn structure(&self, r: &ShapeRef) -> &StructureShape {
        self.target(r)
            .as_structure()
            .unwrap_or_else(|| StructureShape::empty())
    }

    /// The error shape for a wire error code: a shape of the operation's errors (or else of
    /// the whole model) whose `error.code` or name equals `code`.
    pub fn error_shape(&self, op: &Operation, code: &str) -> Option<(&str, &Shape)> {
        let is = |name: &str, s: &Shape| {
            s.error.as_ref().and_then(|e| e.code.as_deref()) == Some(code)
                || (name == code && s.error.as_ref().and_then(|e| e.code.as_deref()).is_none())
        };
        for r in &op.errors {
            if let Some((n, s)) = self.shape_named(&r.shape)
                && is(n, s)
            {
                return Some((n, s));
            }
        }
        if let Some((n, s)) = self.shape_named(code)
            && (s.exception || s.error.is_some())
        {
            return Some((n, s));
        }
        self.error_shapes
            .iter()
            .filter_map(|n| self.shape_named(n))
            .find(|(n, s)| s.exception && is(n, s))
    }
}

fn check_ref(
    r: &ShapeRef,
    names: &HashSet<&str>,
    from: impl Fn() -> String,
) -> Result<(), ModelError> {
    if names.contains(r.shape.as_str()) {
        Ok(())
    } else {
        Err(ModelError::MissingShape {
            from: from(),
            shape: r.shape.clone(),
        })
    }
}

fn check_operation(name: &str, op: &Operation, names: &HashSet<&str>) -> Result<(), ModelError> {
    if let Some(r) = &op.input {
        check_ref(r, names, || format!("operation {name} input"))?;
    }
    if let Some(r) = &op.output {
        check_ref(r, names, || format!("operation {name} output"))?;
    }
    for r in &op.errors {
        check_ref(r, names, || format!("operation {name} errors"))?;
    }
    Ok(())
}

/// Every reference a shape definition writes (whatever its type) names a defined shape.
fn check_refs(name: &str, s: &RawShape, names: &HashSet<&str>) -> Result<(), ModelError> {
    for (m, r) in &s.members {
        check_ref(r, names, || format!("shape {name} member {m}"))?;
    }
    for (what, r) in [
        ("member", s.member.as_deref()),
        ("key", s.key.as_deref()),
        ("value", s.value.as_deref()),
    ] {
        if let Some(r) = r {
            check_ref(r, names, || format!("shape {name} {what}"))?;
        }
    }
    Ok(())
}

/// A JSON tree whose objects keep their key order (member order is part of a model).
#[derive(serde::Deserialize, serde::Serialize)]
#[serde(untagged)]
enum Ordered {
    Object(IndexMap<String, Ordered>),
    Other(serde_json::Value),
}

fn merge_ordered(base: &mut IndexMap<String, Ordered>, extra: IndexMap<String, Ordered>) {
    for (k, v) in extra {
        match (base.get_mut(&k), v) {
            (Some(Ordered::Object(b)), Ordered::Object(e)) => merge_ordered(b, e),
            (_, v) => {
                base.insert(k, v);
            }
        }
    }
}

/// Applies a botocore `*.sdk-extras.json` document (`{"version": 1.0, "merge": {...}}`) to a
/// `service-2.json`, `paginators-1.json` or `waiters-2.json` document, the way botocore's
/// loader does: objects are merged recursively, anything else is replaced. Key order is kept,
/// so members added to a structure come after its existing ones. Some services need their
/// extras to behave like botocore (S3's `Expires` header is a timestamp, RDS's
/// `SourceRegion`).
pub fn apply_sdk_extras(document: &[u8], extras: &[u8]) -> Result<Vec<u8>, serde_json::Error> {
    let mut base: IndexMap<String, Ordered> = serde_json::from_slice(document)?;
    let mut extras: IndexMap<String, Ordered> = serde_json::from_slice(extras)?;
    if let Some(Ordered::Object(merge)) = extras.shift_remove("merge") {
        merge_ordered(&mut base, merge);
    }
    serde_json::to_vec(&base)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sdk_extras_merge_keeps_member_order() {
        let doc = br#"{"metadata":{"protocol":"query"},"operations":{},
            "shapes":{"S":{"type":"structure","members":{"B":{"shape":"T"},"A":{"shape":"T"}}},
                      "T":{"type":"string"},"E":{"type":"string"}}}"#;
        let extras = br#"{"version":1.0,"merge":{"shapes":{
            "S":{"members":{"C":{"shape":"T"}}},"E":{"type":"timestamp"}}}}"#;
        let merged = apply_sdk_extras(doc, extras).unwrap();
        let m = ServiceModel::from_json(&merged).unwrap();
        let s = m.shape("S").unwrap().as_structure().unwrap();
        let names: Vec<&String> = s.members.keys().collect();
        assert_eq!(names, ["B", "A", "C"]);
        assert_eq!(m.shape("E").unwrap().shape_type(), ShapeType::Timestamp);
    }

    #[test]
    fn shapes_are_checked_at_load_and_parsed_on_use() {
        let doc = br#"{"metadata":{"protocol":"json"},
            "operations":{"Op":{"name":"Op","input":{"shape":"In"}}},
            "shapes":{"In":{"type":"structure","members":{"A":{"shape":"Str","locationName":"a"},"B":{"shape":"Ts"}}},
                      "Str":{"type":"string"},"Ts":{"type":"timestamp","timestampFormat":"iso8601"},
                      "Unused":{"type":"structure","members":{"X":{"shape":"Str"}}}}}"#;
        let m = ServiceModel::from_json(doc).unwrap();
        assert_eq!(m.parsed_shapes(), 0);
        let op = m.operation("Op").unwrap();
        assert_eq!(op.name, "Op");
        let input = m.structure(op.input.as_ref().unwrap());
        assert_eq!(m.parsed_shapes(), 1);
        // A member's effective traits: its own, else its target's, without parsing the target.
        assert_eq!(
            input.members["A"].traits.location_name.as_deref(),
            Some("a")
        );
        assert_eq!(
            input.members["B"].traits.timestamp_format.as_deref(),
            Some("iso8601")
        );
        assert_eq!(m.parsed_shapes(), 1);

        // A broken shape that no operation uses is still an error at load.
        let broken = br#"{"metadata":{"protocol":"json"},"operations":{},
            "shapes":{"S":{"type":"structure","members":{"X":{"shape":"Gone"}}},
                      "L":{"type":"list","member":{"shape":"S"}}}}"#;
        let err = ServiceModel::from_json(broken).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid service model: shape S member X refers to undefined shape `Gone`"
        );
        let err = ServiceModel::from_json(br#"{"shapes":{"L":{"type":"list"}}}"#).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid service model: shape `L` is a list without `member`"
        );
    }

    #[test]
    fn protocol_choice_and_missing_shapes() {
        let m = ServiceModel::from_json(
            br#"{"metadata":{"protocol":"smithy-rpc-v2-cbor","protocols":["smithy-rpc-v2-cbor","json","query"]},"shapes":{}}"#,
        )
        .unwrap();
        assert_eq!(m.protocol().unwrap(), Protocol::Json);
        let m = ServiceModel::from_json(
            br#"{"metadata":{"protocol":"smithy-rpc-v2-cbor"},"shapes":{}}"#,
        )
        .unwrap();
        assert!(matches!(
            m.protocol(),
            Err(ModelError::UnsupportedProtocol(_))
        ));
        let err = ServiceModel::from_json(
            br#"{"metadata":{"protocol":"json"},"operations":{"Op":{"name":"Op","input":{"shape":"Nope"}}},"shapes":{}}"#,
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid service model: operation Op input refers to undefined shape `Nope`"
        );
    }
}
