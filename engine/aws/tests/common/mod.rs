//! A tiny HTTP/1.1 server on 127.0.0.1 for tests that need an AWS-shaped peer misbehaving
//! on purpose (throttling, 503s) and a record of when each request arrived.
#![allow(dead_code)]

use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// One request as received.
#[derive(Debug, Clone)]
pub struct Seen {
    pub at: Instant,
    pub head: String,
    pub body: Vec<u8>,
}

/// A canned answer.
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn json(status: u16, body: &str) -> Answer {
        Answer {
            status,
            headers: vec![
                ("Content-Type".into(), "application/x-amz-json-1.0".into()),
                ("x-amzn-RequestId".into(), "req-test-1".into()),
            ],
            body: body.as_bytes().to_vec(),
        }
    }
}

type Handler = dyn Fn(usize, &Seen) -> Answer + Send + Sync;

/// The server; stops accepting when dropped (its task is aborted).
pub struct TestServer {
    pub url: String,
    pub seen: Arc<Mutex<Vec<Seen>>>,
    /// TCP connections accepted.
    pub connections: Arc<std::sync::atomic::AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl TestServer {
    /// Starts answering each request with `handler(index, request)` (index from 0).
    pub async fn start(
        handler: impl Fn(usize, &Seen) -> Answer + Send + Sync + 'static,
    ) -> TestServer {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1");
        let url = format!("http://{}", listener.local_addr().unwrap());
        let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let handler: Arc<Handler> = Arc::new(handler);
        let seen2 = seen.clone();
        let connections: Arc<std::sync::atomic::AtomicUsize> = Arc::default();
        let connections2 = connections.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut sock, _)) = listener.accept().await else {
                    return;
                };
                connections2.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let seen = seen2.clone();
                let handler = handler.clone();
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    loop {
                        // Read one request head.
                        let head_end = loop {
                            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                                break i + 4;
                            }
                            let mut chunk = [0u8; 4096];
                            match sock.read(&mut chunk).await {
                                Ok(0) | Err(_) => return,
                                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                            }
                        };
                        let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
                        let len = head
                            .lines()
                            .find_map(|l| {
                                let (k, v) = l.split_once(':')?;
                                k.eq_ignore_ascii_case("content-length")
                                    .then(|| v.trim().parse::<usize>().ok())?
                            })
                            .unwrap_or(0);
                        while buf.len() < head_end + len {
                            let mut chunk = [0u8; 4096];
                            match sock.read(&mut chunk).await {
                                Ok(0) | Err(_) => return,
                                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                            }
                        }
                        let body = buf[head_end..head_end + len].to_vec();
                        buf.drain(..head_end + len);
                        let req = Seen {
                            at: Instant::now(),
                            head,
                            body,
                        };
                        let index = {
                            let mut s = seen.lock().unwrap();
                            s.push(req.clone());
                            s.len() - 1
                        };
                        let a = handler(index, &req);
                        let mut out = format!(
                            "HTTP/1.1 {} X\r\nContent-Length: {}\r\n",
                            a.status,
                            a.body.len()
                        );
                        for (k, v) in &a.headers {
                            out.push_str(&format!("{k}: {v}\r\n"));
                        }
                        out.push_str("\r\n");
                        let mut bytes = out.into_bytes();
                        bytes.extend_from_slice(&a.body);
                        if sock.write_all(&bytes).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        TestServer {
            url,
            seen,
            connections,
            task,
        }
    }

    /// A server that accepts connections and reads requests but never answers.
    pub async fn silent() -> TestServer {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1");
        let url = format!("http://{}", listener.local_addr().unwrap());
        let connections: Arc<std::sync::atomic::AtomicUsize> = Arc::default();
        let connections2 = connections.clone();
        let task = tokio::spawn(async move {
            let mut held = Vec::new();
            loop {
                let Ok((sock, _)) = listener.accept().await else {
                    return;
                };
                connections2.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                held.push(sock);
            }
        });
        TestServer {
            url,
            seen: Arc::default(),
            connections,
            task,
        }
    }

    pub fn count(&self) -> usize {
        self.seen.lock().unwrap().len()
    }

    pub fn times(&self) -> Vec<Instant> {
        self.seen.lock().unwrap().iter().map(|s| s.at).collect()
    }
}
