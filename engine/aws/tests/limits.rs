//! Bounded resources of the client against a local server that misbehaves on purpose: a
//! 2 GB body (declared by `Content-Length`, or chunked) generated on the fly is refused at
//! the byte limit while the test process stays small (its peak RSS, `VmHWM`, is read from
//! /proc/self/status; cargo-nextest runs each test in its own process); a body nested 50,000
//! deep is a parse error naming the depth limit for every protocol; a body that drips one
//! byte a second ends at the call's deadline.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use common::{Answer, TestServer};
use orgop_aws::{AwsClient, CallError, ClientOptions, Credentials, RetryPolicy, Target, Timeouts};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const TWO_GB: u64 = 2 << 30;

/// How the streaming server answers every request.
#[derive(Clone, Copy)]
enum Body {
    /// `Content-Length: n`, then `n` bytes written as fast as the client reads them.
    Declared(u64),
    /// `Transfer-Encoding: chunked`, 64 KiB chunks up to `n` bytes.
    Chunked(u64),
    /// `Content-Length: n`, then one byte every second.
    Drip(u64),
    /// `Content-Length: n` and no body (the answer to a `HEAD`).
    HeadOnly(u64),
}

/// A server answering `body` to every request, never holding more than one 64 KiB chunk.
struct StreamServer {
    url: String,
    /// Body bytes written to sockets so far.
    sent: Arc<AtomicU64>,
    /// Requests received.
    requests: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for StreamServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// 64 KiB of EC2-looking XML elements, the unit the server repeats.
fn filler() -> Vec<u8> {
    let item = b"<item><volumeId>vol-0123456789abcdef0</volumeId><size>8</size></item>";
    item.iter().copied().cycle().take(64 << 10).collect()
}

async fn stream_server(body: Body) -> StreamServer {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let sent: Arc<AtomicU64> = Arc::default();
    let requests: Arc<AtomicU64> = Arc::default();
    let (sent2, requests2) = (sent.clone(), requests.clone());
    let task = tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            let (sent, requests) = (sent2.clone(), requests2.clone());
            tokio::spawn(async move {
                // The request head (its small body, if any, is ignored: one request per
                // connection).
                let mut buf = Vec::new();
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    let mut chunk = [0u8; 4096];
                    match sock.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                requests.fetch_add(1, Ordering::SeqCst);
                let head = |extra: String| {
                    format!("HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\n{extra}\r\n").into_bytes()
                };
                let chunk = filler();
                match body {
                    Body::Declared(n) | Body::Drip(n) | Body::HeadOnly(n) => {
                        if sock
                            .write_all(&head(format!("Content-Length: {n}\r\n")))
                            .await
                            .is_err()
                        {
                            return;
                        }
                        let mut left = n;
                        while left > 0 {
                            let part = match body {
                                Body::Drip(_) => {
                                    tokio::time::sleep(Duration::from_secs(1)).await;
                                    &chunk[..1]
                                }
                                Body::HeadOnly(_) => {
                                    // Keep the connection open; nothing follows the head.
                                    tokio::time::sleep(Duration::from_secs(3600)).await;
                                    return;
                                }
                                _ => &chunk[..chunk.len().min(left as usize)],
                            };
                            if sock.write_all(part).await.is_err() {
                                return;
                            }
                            sent.fetch_add(part.len() as u64, Ordering::SeqCst);
                            left -= part.len() as u64;
                        }
                    }
                    Body::Chunked(n) => {
                        if sock
                            .write_all(&head("Transfer-Encoding: chunked\r\n".into()))
                            .await
                            .is_err()
                        {
                            return;
                        }
                        let mut left = n;
                        let mut framed = format!("{:x}\r\n", chunk.len()).into_bytes();
                        framed.extend_from_slice(&chunk);
                        framed.extend_from_slice(b"\r\n");
                        while left > 0 {
                            if sock.write_all(&framed).await.is_err() {
                                return;
                            }
                            sent.fetch_add(chunk.len() as u64, Ordering::SeqCst);
                            left = left.saturating_sub(chunk.len() as u64);
                        }
                        let _ = sock.write_all(b"0\r\n\r\n").await;
                    }
                }
            });
        }
    });
    StreamServer {
        url,
        sent,
        requests,
        task,
    }
}

async fn client(url: &str, max_response_bytes: Option<u64>, timeouts: Timeouts) -> AwsClient {
    AwsClient::from_env(ClientOptions {
        region: Some("us-east-1".into()),
        endpoint_url: Some(url.to_string()),
        credentials: Some(Credentials::new("AKIDTEST", "secret", None, None, "test")),
        retry: RetryPolicy {
            max_attempts: 3,
            base_delay: Duration::from_millis(10),
            max_backoff: Duration::from_millis(50),
        },
        timeouts,
        max_response_bytes,
        ..ClientOptions::default()
    })
    .await
}

fn timeouts() -> Timeouts {
    Timeouts {
        connect: Duration::from_secs(2),
        read: Duration::from_secs(60),
        call: Duration::from_secs(120),
    }
}

/// The process's peak resident set so far, in bytes (`VmHWM`).
fn peak_rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in kB");
    kb * 1024
}

const PEAK_LIMIT: u64 = 64 << 20;

async fn describe_volumes(c: &AwsClient) -> Result<serde_json::Value, CallError> {
    c.call(
        &Target::own("us-east-1"),
        "ec2",
        "DescribeVolumes",
        json!({}),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_2gb_body_declared_by_content_length_is_refused_before_it_is_read() {
    let server = stream_server(Body::Declared(TWO_GB)).await;
    // The default limit: the declared length alone is refused.
    let c = client(&server.url, None, timeouts()).await;
    let started = std::time::Instant::now();
    let err = describe_volumes(&c).await.unwrap_err();
    let took = started.elapsed();
    match &err {
        CallError::ResponseTooLarge {
            limit,
            declared,
            setting,
            ..
        } => {
            assert_eq!(*limit, orgop_aws::DEFAULT_MAX_RESPONSE_BYTES);
            assert_eq!(*declared, Some(TWO_GB));
            assert_eq!(*setting, "ORGOP_MAX_RESPONSE_BYTES");
        }
        other => panic!("expected ResponseTooLarge, got {other}"),
    }
    assert_eq!(err.code(), "ResponseTooLarge");
    let msg = err.to_string();
    assert!(
        msg.contains("67108864 bytes (64.0 MiB)") && msg.contains("ORGOP_MAX_RESPONSE_BYTES"),
        "{msg}"
    );
    assert!(took < Duration::from_secs(5), "{took:?}");
    assert_eq!(
        server.requests.load(Ordering::SeqCst),
        1,
        "the same answer would come again: not retried"
    );
    // What the server managed to write went into socket buffers, not into the client.
    let peak = peak_rss();
    eprintln!(
        "peak RSS {:.1} MiB; server wrote {:.1} MiB of the 2 GiB",
        peak as f64 / 1048576.0,
        server.sent.load(Ordering::SeqCst) as f64 / 1048576.0
    );
    assert!(peak < PEAK_LIMIT, "peak RSS {peak} bytes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_2gb_chunked_body_is_refused_as_soon_as_it_passes_the_limit() {
    let server = stream_server(Body::Chunked(TWO_GB)).await;
    let limit = 16 << 20;
    let c = client(&server.url, Some(limit), timeouts()).await;
    let started = std::time::Instant::now();
    let err = describe_volumes(&c).await.unwrap_err();
    let took = started.elapsed();
    assert!(
        matches!(
            &err,
            CallError::ResponseTooLarge {
                limit: 16777216,
                declared: None,
                ..
            }
        ),
        "{err}"
    );
    assert!(
        err.to_string().contains("16777216 bytes (16.0 MiB)"),
        "{err}"
    );
    assert_eq!(server.requests.load(Ordering::SeqCst), 1);
    let sent = server.sent.load(Ordering::SeqCst);
    let peak = peak_rss();
    eprintln!(
        "peak RSS {:.1} MiB; server wrote {:.1} MiB in {took:?}",
        peak as f64 / 1048576.0,
        sent as f64 / 1048576.0
    );
    assert!(
        sent < limit + (16 << 20),
        "streaming stopped near the limit: {sent}"
    );
    assert!(peak < PEAK_LIMIT, "peak RSS {peak} bytes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_within_the_limit_is_read_whole() {
    // 1 MiB of volumes, chunked and declared, under a 2 MiB limit.
    for body in [Body::Chunked(1 << 20), Body::Declared(1 << 20)] {
        let server = stream_server(body).await;
        let c = client(&server.url, Some(2 << 20), timeouts()).await;
        // The filler is not a whole document: a parse error proves the body was read.
        let err = describe_volumes(&c).await.unwrap_err();
        assert_eq!(err.code(), "ResponseParseError", "{err}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn objects_have_their_own_limit_and_a_head_answer_is_not_a_body() {
    let server = stream_server(Body::Declared(TWO_GB)).await;
    let c = AwsClient::from_env(ClientOptions {
        region: Some("us-east-1".into()),
        endpoint_url: Some(server.url.clone()),
        credentials: Some(Credentials::new("AKIDTEST", "secret", None, None, "test")),
        timeouts: timeouts(),
        ..ClientOptions::default()
    })
    .await;
    let err = c
        .get_object("results", "run/results.jsonl")
        .await
        .unwrap_err();
    match &err {
        CallError::ResponseTooLarge { limit, setting, .. } => {
            assert_eq!(*limit, orgop_aws::DEFAULT_MAX_OBJECT_BYTES);
            assert_eq!(*setting, "ORGOP_MAX_OBJECT_BYTES");
        }
        other => panic!("expected ResponseTooLarge, got {other}"),
    }
    assert!(err.to_string().contains("ORGOP_MAX_OBJECT_BYTES"), "{err}");
    // HeadObject's Content-Length is the object's size, with no body: not refused.
    let server = stream_server(Body::HeadOnly(5 << 30)).await;
    let c = client(&server.url, None, timeouts()).await;
    let out = c
        .call(
            &Target::own("us-east-1"),
            "s3",
            "HeadObject",
            json!({"Bucket": "results", "Key": "big"}),
        )
        .await
        .expect("a HEAD answer has no body to refuse");
    assert_eq!(out["ContentLength"], json!(5u64 << 30));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_dripping_one_byte_a_second_ends_at_the_call_deadline() {
    let server = stream_server(Body::Drip(1000)).await;
    let c = client(
        &server.url,
        None,
        Timeouts {
            connect: Duration::from_secs(2),
            read: Duration::from_secs(30),
            call: Duration::from_millis(2500),
        },
    )
    .await;
    let started = std::time::Instant::now();
    let err = describe_volumes(&c).await.unwrap_err();
    let took = started.elapsed();
    assert!(matches!(err, CallError::Deadline { .. }), "{err}");
    assert!(took >= Duration::from_millis(2500), "{took:?}");
    assert!(took < Duration::from_secs(6), "{took:?}");
    assert!(server.sent.load(Ordering::SeqCst) <= 3);
}

/// `<Child>` 50,000 deep between `open` and `close` (~350 KB).
fn deep_xml(open: &str, close: &str) -> Vec<u8> {
    let mut s = String::from(open);
    s.push_str(&"<item>".repeat(50_000));
    s.push_str(&"</item>".repeat(50_000));
    s.push_str(close);
    s.into_bytes()
}

#[tokio::test]
async fn responses_nested_50000_deep_are_parse_errors_naming_the_limit() {
    let cases: [(&str, &str, serde_json::Value, Vec<u8>); 5] = [
        (
            "ec2",
            "DescribeVolumes",
            json!({}),
            deep_xml(
                "<DescribeVolumesResponse><volumeSet>",
                "</volumeSet></DescribeVolumesResponse>",
            ),
        ),
        (
            "sns",
            "ListTopics",
            json!({}),
            deep_xml(
                "<ListTopicsResponse><ListTopicsResult><Topics>",
                "</Topics></ListTopicsResult></ListTopicsResponse>",
            ),
        ),
        (
            "s3",
            "ListBuckets",
            json!({}),
            deep_xml(
                "<ListAllMyBucketsResult><Buckets>",
                "</Buckets></ListAllMyBucketsResult>",
            ),
        ),
        (
            "dynamodb",
            "ListTables",
            json!({}),
            ("{\"TableNames\":".to_string() + &"[".repeat(50_000) + &"]".repeat(50_000) + "}")
                .into_bytes(),
        ),
        (
            "lambda",
            "ListFunctions",
            json!({}),
            ("{\"Functions\":".to_string() + &"[".repeat(50_000) + &"]".repeat(50_000) + "}")
                .into_bytes(),
        ),
    ];
    for (service, operation, params, body) in cases {
        assert!(body.len() >= 100_000, "{service}: {} bytes", body.len());
        let server = TestServer::start(move |_, _| Answer {
            status: 200,
            headers: vec![],
            body: body.clone(),
        })
        .await;
        let c = client(&server.url, None, timeouts()).await;
        let err = c
            .call(&Target::own("us-east-1"), service, operation, params)
            .await
            .unwrap_err();
        assert_eq!(err.code(), "ResponseParseError", "{service}: {err}");
        assert!(
            err.to_string()
                .contains(&format!("deeper than {} levels", orgop_aws::MAX_DEPTH)),
            "{service}: {err}"
        );
        assert_eq!(server.count(), 1, "{service}: not retried");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_object_within_its_limit_is_held_once_as_received() {
    // 24 MiB: as base64 in a parsed result, then decoded, it would peak past 64 MB.
    let size = 24u64 << 20;
    let server = stream_server(Body::Declared(size)).await;
    let c = AwsClient::from_env(ClientOptions {
        region: Some("us-east-1".into()),
        endpoint_url: Some(server.url.clone()),
        credentials: Some(Credentials::new("AKIDTEST", "secret", None, None, "test")),
        timeouts: timeouts(),
        max_object_bytes: Some(32 << 20),
        ..ClientOptions::default()
    })
    .await;
    let body = c.get_object("results", "run/results.jsonl").await.unwrap();
    assert_eq!(body.len() as u64, size);
    let unit = filler();
    assert_eq!(&body[..unit.len()], &unit[..]);
    let peak = peak_rss();
    eprintln!("peak RSS {:.1} MiB", peak as f64 / 1048576.0);
    assert!(peak < PEAK_LIMIT, "peak RSS {peak} bytes");
}
