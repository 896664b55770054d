//! The HTTP transport: hyper 1 over rustls (no OpenSSL), the same stack `aws-config` uses.
//!
//! Guarantees: connections are pooled and reused per host; a connection attempt gives up
//! after the connect timeout; connecting plus waiting for the response head gives up after
//! connect + read timeout, and reading the body after another read timeout. Plain `http://`
//! URLs are allowed (for emulators).

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
    /// Connecting, sending or receiving failed.
    #[error("connection error: {0}")]
    Connection(String),
    /// The connect or read timeout expired.
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    /// The request could not be built (bad URL or header).
    #[error("invalid request: {0}")]
    InvalidRequest(String),
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
        }
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

    /// Sends one request and reads the whole response.
    pub async fn send(
        &self,
        req: http::Request<Vec<u8>>,
    ) -> Result<orgop_awswire::HttpResponse, TransportError> {
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
                if msg.contains("timed out") {
                    TransportError::Timeout(self.timeouts.connect)
                } else {
                    TransportError::Connection(msg)
                }
            })?;
        let (parts, body) = resp.into_parts();
        let body = tokio::time::timeout(read, body.collect())
            .await
            .map_err(|_| TransportError::Timeout(read))?
            .map_err(|e| TransportError::Connection(e.to_string()))?
            .to_bytes();
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
            body: body.to_vec(),
        })
    }
}
