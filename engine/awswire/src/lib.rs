//! The pure wire layer of orgop's model-driven AWS client.
//!
//! Everything here is a function of its inputs: no network, no clock (except UUIDs for
//! idempotency tokens), no async, no printing. The network layer (`orgop-aws`) loads a
//! [`ServiceModel`], calls [`validate`] and [`serialize`] to get an [`HttpRequest`], signs and
//! sends it (retries resend that same request: serializing again would change an
//! auto-filled idempotency token), and hands the [`HttpResponse`] to [`parse`], which gives
//! the result or an [`AwsError`]. [`request_id`] reads the request id of any response.
//! [`Paginator`] (`next_input`, `aggregate`) and [`Waiter`] (`evaluate`) hold the pure logic of
//! `paginators-1.json` and `waiters-2.json`; [`apply_sdk_extras`] merges botocore's
//! `*.sdk-extras.json` into a document before it is parsed.
//!
//! Correctness is defined by AWS's protocol compliance cases (`tests/protocol_tests.rs`, with
//! the cases fetched by `scripts/protocol-tests.sh`) and checked against botocore itself over
//! every operation of every service (`tests/botocore_models.rs`, opt-in).
//!
//! # Value conventions
//!
//! Parameters and results are [`serde_json::Value`]s whose member names are exactly those of
//! the API reference (the model's member names, not wire names):
//!
//! - **timestamps**: results carry RFC 3339 strings in UTC (`2014-04-29T18:30:38Z`, with a
//!   fraction only when the service sent one); parameters accept an RFC 3339 / ISO 8601
//!   string or a number of epoch seconds.
//! - **blobs**: a parameter string is taken as its UTF-8 bytes (as botocore does); results
//!   carry blobs as **standard base64 strings** (a raw payload body too).
//! - **floats**: `NaN`, `Infinity` and `-Infinity` are the strings `"NaN"`, `"Infinity"`,
//!   `"-Infinity"` both ways (JSON numbers cannot hold them).
//! - **idempotency tokens**: a top-level member marked `idempotencyToken` that is absent is
//!   filled with a fresh UUID v4 ([`serialize_with_token`] takes the generator).
//! - **documents** pass through unchanged.
//!
//! Protocols: `ec2`, `query`, `json` (1.0 and 1.1), `rest-json`, `rest-xml`. Event streams and
//! request checksums are not implemented.
//!
//! # Use
//!
//! ```
//! use orgop_awswire::{parse, serialize, validate, HttpResponse, ServiceModel};
//! use serde_json::json;
//!
//! let model = ServiceModel::from_json(br#"{
//!   "metadata": {"protocol": "json", "jsonVersion": "1.1", "targetPrefix": "Demo_20200101",
//!                "apiVersion": "2020-01-01", "endpointPrefix": "demo"},
//!   "operations": {"ListThings": {"name": "ListThings", "http": {"method": "POST", "requestUri": "/"},
//!                  "input": {"shape": "In"}, "output": {"shape": "Out"}}},
//!   "shapes": {"In": {"type": "structure", "members": {"MaxResults": {"shape": "Int"}}},
//!              "Out": {"type": "structure", "members": {"Things": {"shape": "Names"}}},
//!              "Names": {"type": "list", "member": {"shape": "Str"}},
//!              "Int": {"type": "integer", "min": 1}, "Str": {"type": "string"}}
//! }"#)?;
//! let op = model.operation("ListThings")?;
//! let params = json!({"MaxResults": 10});
//! validate(&model, op, &params).expect("valid parameters");
//! let request = serialize(&model, op, &params)?;
//! assert_eq!(request.header("X-Amz-Target"), Some("Demo_20200101.ListThings"));
//! // ... the network layer signs and sends `request`, then:
//! let response = HttpResponse { status: 200, headers: vec![], body: br#"{"Things":["a"]}"#.to_vec() };
//! assert_eq!(parse(&model, op, &response)?, json!({"Things": ["a"]}));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![deny(missing_docs)]

mod json;
mod model;
mod paginate;
mod parse;
mod serialize;
mod time;
mod validate;
mod waiter;
mod xml;

pub use json::{JsonTextError, from_json_slice, json_depth_exceeds};
pub use model::{
    EndpointTrait, ErrorTrait, FloatType, HttpBinding, HttpChecksum, IntegerType, Metadata,
    ModelError, Operation, Protocol, RetryableTrait, ServiceModel, Shape, ShapeKind, ShapeRef,
    ShapeType, StructureShape, Traits, UnknownName, XmlNamespace, apply_sdk_extras, close_matches,
};
pub use paginate::{NextPage, Paginator, PaginatorError, Paginators};
pub use parse::{parse, request_id};
pub use serialize::{SerializeError, serialize, serialize_with_token};
pub use time::Timestamp;
pub use validate::{ParamError, ParamErrorKind, validate};
pub use waiter::{Acceptor, Matcher, Waiter, WaiterError, WaiterState, Waiters};

/// The deepest nesting orgop reads in a response (XML elements; JSON arrays and objects) or
/// in JSON parameters: past it the document is refused as unparsable, never walked
/// recursively. The deepest output shape of the bundled models nests 18 levels (20 with the
/// XML protocols' wrappers), so real answers stay far below; the limit stays under
/// serde_json's own 128 so a result wrapped in a few more levels still reads back.
pub const MAX_DEPTH: usize = 100;

/// An HTTP request as the protocol serializers produce it, before endpoint resolution and
/// signing.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HttpRequest {
    /// HTTP method (`POST`, `GET`, ...).
    pub method: String,
    /// Path and query string, already percent-encoded (`/bucket/key%20name?tagging`).
    pub path_and_query: String,
    /// Prefix to put before the endpoint's host (`foo.` from `endpoint.hostPrefix`), if any.
    pub host_prefix: Option<String>,
    /// Headers the protocol requires (`Content-Type`, `X-Amz-Target`, modeled headers). The
    /// network layer adds `Host`, `Content-Length`, signing headers and `User-Agent`.
    pub headers: Vec<(String, String)>,
    /// The body bytes.
    pub body: Vec<u8>,
}

impl HttpRequest {
    /// The value of a header, by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// An HTTP response as received.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HttpResponse {
    /// HTTP status code.
    pub status: u16,
    /// Headers in received order (names in any case).
    pub headers: Vec<(String, String)>,
    /// The body bytes.
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// The value of a header, by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// An error answered by the service (or a response that could not be parsed).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{code}: {message} (HTTP {status}{})", .request_id.as_deref().map(|r| format!(", request id {r}")).unwrap_or_default())]
pub struct AwsError {
    /// The error code without namespace or URI (`InvalidVolume.NotFound`,
    /// `ThrottlingException`). When the response carried none, the HTTP status as a string;
    /// for a response this crate could not parse, `ResponseParseError`.
    pub code: String,
    /// The error message (empty when the service sent none).
    pub message: String,
    /// HTTP status code.
    pub status: u16,
    /// The request id, when the response carried one.
    pub request_id: Option<String>,
    /// Members of the modeled error shape, parsed like a result (an empty object when the
    /// error is not modeled).
    pub data: serde_json::Value,
}

impl AwsError {
    /// An error for a response that does not follow the protocol.
    pub(crate) fn unparsable(status: u16, request_id: Option<String>, why: String) -> AwsError {
        AwsError {
            code: orgop_vocab::Code::ResponseParseError.name().to_string(),
            message: why,
            status,
            request_id,
            data: serde_json::Value::Object(Default::default()),
        }
    }
}
