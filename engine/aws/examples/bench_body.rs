//! What streaming a response body under a byte limit costs: `Transport::send` (frames read
//! into one buffer, the limit checked per frame) against the read it replaced (hyper's
//! `collect()`, then `to_bytes()` and `to_vec()`), on the same local server in the same run,
//! interleaved. Bodies come with a `Content-Length`, or chunked in 64 KiB chunks.
//!
//! Usage: bench_body [ITERATIONS]; prints one line per size and framing: the median wall
//! time of each read and their ratio.

use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use orgop_aws::{Timeouts, Transport};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// Serves `GET /<bytes>` (`/c<bytes>`: chunked) on keep-alive connections.
async fn server() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let unit = Bytes::from(vec![b'x'; 64 << 10]);
        loop {
            let (mut sock, _) = listener.accept().await.unwrap();
            let unit = unit.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                loop {
                    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                        let mut chunk = [0u8; 4096];
                        match sock.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    let head = String::from_utf8_lossy(&buf).to_string();
                    buf.clear();
                    let path = head.split_whitespace().nth(1).unwrap_or("/0");
                    let chunked = path.starts_with("/c");
                    let n: usize = path.trim_start_matches(['/', 'c']).parse().unwrap_or(0);
                    let mut out = Vec::with_capacity(n + 1024);
                    if chunked {
                        out.extend_from_slice(
                            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
                        );
                        let mut left = n;
                        while left > 0 {
                            let part = left.min(unit.len());
                            out.extend_from_slice(format!("{part:x}\r\n").as_bytes());
                            out.extend_from_slice(&unit[..part]);
                            out.extend_from_slice(b"\r\n");
                            left -= part;
                        }
                        out.extend_from_slice(b"0\r\n\r\n");
                    } else {
                        out.extend_from_slice(
                            format!("HTTP/1.1 200 OK\r\nContent-Length: {n}\r\n\r\n").as_bytes(),
                        );
                        let mut left = n;
                        while left > 0 {
                            let part = left.min(unit.len());
                            out.extend_from_slice(&unit[..part]);
                            left -= part;
                        }
                    }
                    if sock.write_all(&out).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    url
}

fn request(url: &str, path: &str) -> http::Request<Vec<u8>> {
    http::Request::get(format!("{url}{path}"))
        .body(Vec::new())
        .unwrap()
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let iterations: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(30);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let url = server().await;
        let transport = Transport::new(Timeouts::default()).with_max_body(1 << 30);
        let old: Client<HttpConnector, Full<Bytes>> =
            Client::builder(TokioExecutor::new()).build(HttpConnector::new());
        for chunked in [false, true] {
            for size in [64usize << 10, 1 << 20, 16 << 20] {
                let path = format!("/{}{size}", if chunked { "c" } else { "" });
                let (mut new_t, mut old_t) = (Vec::new(), Vec::new());
                for _ in 0..iterations {
                    let t = Instant::now();
                    let r = transport.send(request(&url, &path)).await.unwrap();
                    assert_eq!(r.body.len(), size);
                    new_t.push(t.elapsed());

                    let t = Instant::now();
                    let req = request(&url, &path).map(|b| Full::new(Bytes::from(b)));
                    let resp = old.request(req).await.unwrap();
                    let body = resp.into_body().collect().await.unwrap().to_bytes();
                    let body = body.to_vec();
                    assert_eq!(body.len(), size);
                    old_t.push(t.elapsed());
                }
                let (n, o) = (median(new_t), median(old_t));
                println!(
                    "{:>8} KiB {:<14} streamed+limited {:>9.3} ms   collect+copies {:>9.3} ms   ratio {:.2}",
                    size >> 10,
                    if chunked { "chunked" } else { "content-length" },
                    n.as_secs_f64() * 1e3,
                    o.as_secs_f64() * 1e3,
                    n.as_secs_f64() / o.as_secs_f64()
                );
            }
        }
    });
}
