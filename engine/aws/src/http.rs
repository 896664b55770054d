//! The HTTP transport: hyper 1 over rustls (no OpenSSL), the same stack `aws-config` uses.
//!
//! Guarantees: connections are pooled and reused per host; a connection attempt gives up
//! after the connect timeout; connecting plus waiting for the response head gives up after
//! connect + read timeout, and reading the body after another read timeout. A body is
//! streamed into memory and refused as soon as it passes the byte limit (a `Content-Length`
//! over the limit before any of it is read), so a response never holds more than the limit.
//! Plain `http://` URLs are allowed (for emulators).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

/// Why an exchange failed before a complete response was read.
#[derive(Debug, Clone, thiserror::Error)]
pub enum TransportError {
    /// No connection could be made: the request was never sent.
    #[error("cannot connect: {0}")]
    NotConnected(String),
    /// Sending or receiving failed once connected: the server may have received the request.
    #[error("connection error: {0}")]
    Connection(String),
    /// The connect or read timeout expired.
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    /// The request could not be built (bad URL or header).
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// The response body is larger than the limit: refused from its `Content-Length`, or
    /// when the bytes read passed the limit (the rest is never read).
    #[error("the response body is larger than the limit of {limit} bytes{}", .declared.map(|d| format!(" (Content-Length: {d})")).unwrap_or_default())]
    BodyTooLarge {
        /// The limit, in bytes.
        limit: u64,
        /// The `Content-Length` the server declared, when that is what was refused.
        declared: Option<u64>,
    },
}

impl TransportError {
    /// Whether the server may have received (and acted on) the request: anything but a
    /// failed connection or a request that could not be built.
    pub fn may_have_reached_server(&self) -> bool {
        !matches!(
            self,
            TransportError::NotConnected(_) | TransportError::InvalidRequest(_)
        )
    }
}

/// Timeouts of the transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// Establishing a TCP (and TLS) connection.
    pub connect: Duration,
    /// Waiting for the response head, and then for the body.
    pub read: Duration,
    /// One call from start to end, every attempt and backoff included: a server that
    /// accepts and never answers fails the call by then (`ORGOP_CALL_TIMEOUT`, seconds,
    /// overrides the default of 60).
    pub call: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: Duration::from_secs(10),
            read: Duration::from_secs(30),
            call: Duration::from_secs(60),
        }
    }
}

/// A pooled HTTPS/HTTP client: the one every AWS call goes through, also usable for plain
/// unsigned requests (a chat webhook).
///
/// Plain `http://` endpoints (emulators, proxies) go through a client without TLS; the TLS
/// client, and the system's CA certificates it loads, are made on the first `https://`
/// request, as the AWS SDKs and urllib3 do.
#[derive(Clone)]
pub struct Transport {
    http: Client<HttpConnector, Full<Bytes>>,
    https: Arc<std::sync::OnceLock<HttpsClient>>,
    timeouts: Timeouts,
    max_body: u64,
}

type HttpsClient = Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>;

fn tls_config() -> rustls::ClientConfig {
    let mut roots = rustls::RootCertStore::empty();
    // Certificates that fail to load are skipped; with none at all, https fails per request
    // with a clear TLS error while plain http (emulators) still works.
    for cert in rustls_native_certs::load_native_certs().certs {
        let _ = roots.add(cert);
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("aws-lc-rs supports the default TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth()
}

fn connector(timeouts: &Timeouts) -> HttpConnector {
    let mut http = HttpConnector::new();
    http.set_connect_timeout(Some(timeouts.connect));
    http.set_nodelay(true);
    http
}

impl Transport {
    /// A transport with its own connection pools.
    pub fn new(timeouts: Timeouts) -> Transport {
        Transport {
            http: Client::builder(TokioExecutor::new())
                .pool_idle_timeout(Duration::from_secs(60))
                .build(connector(&timeouts)),
            https: Arc::new(std::sync::OnceLock::new()),
            timeouts,
            max_body: crate::client::DEFAULT_MAX_RESPONSE_BYTES,
        }
    }

    /// The same transport (sharing its pools) refusing response bodies over `max_body` bytes
    /// in [`Transport::send`] (default [`crate::DEFAULT_MAX_RESPONSE_BYTES`]).
    pub fn with_max_body(mut self, max_body: u64) -> Transport {
        self.max_body = max_body;
        self
    }

    fn https(&self) -> &HttpsClient {
        self.https.get_or_init(|| {
            let mut http = connector(&self.timeouts);
            http.enforce_http(false);
            let https = hyper_rustls::HttpsConnectorBuilder::new()
                .with_tls_config(tls_config())
                .https_or_http()
                .enable_http1()
                .wrap_connector(http);
            Client::builder(TokioExecutor::new())
                .pool_idle_timeout(Duration::from_secs(60))
                .build(https)
        })
    }

    /// Sends one request and reads the whole response, refusing a body over the transport's
    /// limit ([`Transport::with_max_body`]).
    pub async fn send(
        &self,
        req: http::Request<Vec<u8>>,
    ) -> Result<orgop_awswire::HttpResponse, TransportError> {
        self.send_limited(req, self.max_body).await
    }

    /// Sends one request and reads the whole response, refusing a body over `max_body` bytes
    /// ([`TransportError::BodyTooLarge`]): a `Content-Length` over it before reading, else as
    /// soon as the bytes received pass it. A `HEAD` response's `Content-Length` describes a
    /// body that is not sent, so it is not checked.
    pub async fn send_limited(
        &self,
        req: http::Request<Vec<u8>>,
        max_body: u64,
    ) -> Result<orgop_awswire::HttpResponse, TransportError> {
        let head = req.method() == http::Method::HEAD;
        let req = req.map(|b| Full::new(Bytes::from(b)));
        let read = self.timeouts.read;
        let response = if req.uri().scheme() == Some(&http::uri::Scheme::HTTP) {
            self.http.request(req)
        } else {
            self.https().request(req)
        };
        let resp = tokio::time::timeout(read + self.timeouts.connect, response)
            .await
            .map_err(|_| TransportError::Timeout(read))?
            .map_err(|e| {
                let mut msg = e.to_string();
                let mut src = std::error::Error::source(&e);
                while let Some(s) = src {
                    msg.push_str(": ");
                    msg.push_str(&s.to_string());
                    src = s.source();
                }
                if e.is_connect() {
                    TransportError::NotConnected(msg)
                } else if msg.contains("timed out") {
                    TransportError::Timeout(self.timeouts.connect)
                } else {
                    TransportError::Connection(msg)
                }
            })?;
        let (parts, body) = resp.into_parts();
        let declared = parts
            .headers
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.trim().parse::<u64>().ok())
            .filter(|_| !head);
        if let Some(d) = declared.filter(|d| *d > max_body) {
            // Dropping the body closes the connection; none of it is read.
            return Err(TransportError::BodyTooLarge {
                limit: max_body,
                declared: Some(d),
            });
        }
        let body = tokio::time::timeout(read, read_body(body, declared, max_body))
            .await
            .map_err(|_| TransportError::Timeout(read))??;
        let headers = parts
            .headers
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        Ok(orgop_awswire::HttpResponse {
            status: parts.status.as_u16(),
            headers,
            body,
        })
    }
}

/// Reads a body frame by frame into one buffer (sized from `declared`, which is within the
/// limit), failing as soon as it would pass `max_body` bytes.
async fn read_body<B>(
    mut body: B,
    declared: Option<u64>,
    max_body: u64,
) -> Result<Vec<u8>, TransportError>
where
    B: BodyExt<Data = Bytes> + Unpin,
    B::Error: std::fmt::Display,
{
    let capacity = declared.unwrap_or(0).min(max_body);
    let mut buf = Vec::with_capacity(usize::try_from(capacity).unwrap_or(0));
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| TransportError::Connection(e.to_string()))?;
        let Ok(data) = frame.into_data() else {
            continue; // trailers
        };
        if (buf.len() + data.len()) as u64 > max_body {
            return Err(TransportError::BodyTooLarge {
                limit: max_body,
                declared: None,
            });
        }
        buf.extend_from_slice(&data);
    }
    Ok(buf)
}
