//! A real HTTP receiver for delivery tests (webhook, Splunk HEC, Datadog): listens on a free
//! loopback port, records every request (method, path, headers, body, arrival and answer
//! times, the status it answered) and answers per its [`Mode`]: `2xx` (202 or whatever
//! [`Receiver::set_ok_status`] says), a fraction of `500`s, slowly, `429` with `Retry-After`.
//! [`Receiver::down_for`] stops listening (connections refused, open ones cut) for a while,
//! then listens again on the same port.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use anyhow::{Context as _, Result};
use axum::body::Body;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::task::JoinSet;

/// How the receiver answers.
#[derive(Debug, Clone, PartialEq)]
pub enum Mode {
    /// The success status to every request.
    Ok,
    /// `500` to this fraction of requests (chosen at random), success to the others.
    FailFraction(f64),
    /// Success after this delay.
    Slow(Duration),
    /// `429` with `Retry-After: <secs>` to the next `times` requests, then success.
    TooMany {
        /// `Retry-After`, whole seconds.
        retry_after_s: u64,
        /// How many requests get it.
        times: u32,
    },
}

/// One request received.
#[derive(Debug, Clone)]
pub struct Received {
    /// `POST`, ...
    pub method: String,
    /// Path and query.
    pub path: String,
    /// Header name (lower case) -> value.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
    /// Arrival (head read, body read), epoch ms.
    pub at_ms: i64,
    /// When it was answered, epoch ms.
    pub answered_ms: i64,
    /// What it was answered.
    pub status: u16,
}

impl Received {
    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON.
    pub fn json(&self) -> Result<serde_json::Value> {
        serde_json::from_slice(&self.body).context("request body is not JSON")
    }

    /// Whether the answer was a success.
    pub fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

#[derive(Debug)]
struct State {
    mode: Mode,
    ok_status: u16,
    ok_body: String,
    received: Vec<Received>,
}

type Shared = Arc<Mutex<State>>;

/// The receiver; stops listening when dropped.
#[derive(Debug)]
pub struct Receiver {
    addr: SocketAddr,
    state: Shared,
    server: Mutex<Option<JoinSet<()>>>,
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

impl Receiver {
    /// Listens on `127.0.0.1:<free port>`, answering 200 `{}`.
    pub async fn start() -> Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .context("bind the receiver")?;
        let addr = listener.local_addr()?;
        let state = Arc::new(Mutex::new(State {
            mode: Mode::Ok,
            ok_status: 200,
            ok_body: "{}".into(),
            received: Vec::new(),
        }));
        let r = Self {
            addr,
            state,
            server: Mutex::new(None),
        };
        r.listen(listener);
        Ok(r)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn listen(&self, listener: TcpListener) {
        let mut set = JoinSet::new();
        let state = self.state.clone();
        set.spawn(async move {
            let mut conns = JoinSet::new();
            loop {
                let Ok((sock, _)) = listener.accept().await else {
                    continue;
                };
                let state = state.clone();
                conns.spawn(async move {
                    let svc = hyper::service::service_fn(move |req| handle(state.clone(), req));
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(sock), svc)
                        .await;
                });
                while conns.try_join_next().is_some() {}
            }
        });
        *self.server.lock().unwrap_or_else(PoisonError::into_inner) = Some(set);
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Answers from now on per `mode`.
    pub fn set_mode(&self, mode: Mode) {
        self.lock().mode = mode;
    }

    /// The status and body of a success (default 200 `{}`; Datadog answers 202).
    pub fn set_ok_status(&self, status: u16, body: &str) {
        let mut s = self.lock();
        s.ok_status = status;
        s.ok_body = body.to_owned();
    }

    /// Takes the requests recorded so far (they are forgotten: long benchmarks drain them).
    pub fn drain(&self) -> Vec<Received> {
        std::mem::take(&mut self.lock().received)
    }

    /// Every request so far, in arrival order.
    pub fn received(&self) -> Vec<Received> {
        self.lock().received.clone()
    }

    /// Stops listening now (new connections refused, open ones cut).
    pub fn down(&self) {
        // Dropping the JoinSet aborts the accept loop, which drops the listener and, with
        // its own JoinSet, every connection.
        self.server
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
    }

    /// Listens again on the same port.
    pub async fn up(&self) -> Result<()> {
        let mut tries = 0;
        let listener = loop {
            match TcpListener::bind(self.addr).await {
                Ok(l) => break l,
                Err(e) if tries < 50 => {
                    tries += 1;
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => return Err(e).context("re-bind the receiver"),
            }
        };
        self.listen(listener);
        Ok(())
    }

    /// Down for `period`, in the background; the returned task ends when it is up again.
    pub fn down_for(self: &Arc<Self>, period: Duration) -> tokio::task::JoinHandle<Result<()>> {
        self.down();
        let me = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(period).await;
            me.up().await
        })
    }
}

async fn handle(
    state: Shared,
    req: hyper::Request<Incoming>,
) -> Result<hyper::Response<Body>, std::convert::Infallible> {
    let at_ms = now_ms();
    let method = req.method().to_string();
    let path = req
        .uri()
        .path_and_query()
        .map_or_else(|| req.uri().path().to_owned(), |p| p.to_string());
    let headers = req
        .headers()
        .iter()
        .map(|(n, v)| (n.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
        .collect();
    let body = axum::body::to_bytes(Body::new(req.into_body()), 256 * 1024 * 1024)
        .await
        .map(|b| b.to_vec())
        .unwrap_or_default();
    let (mode, ok_status, ok_body) = {
        let mut s = state.lock().unwrap_or_else(PoisonError::into_inner);
        let mode = s.mode.clone();
        if let Mode::TooMany { times, .. } = &mut s.mode {
            *times = times.saturating_sub(1);
            if *times == 0 {
                s.mode = Mode::Ok;
            }
        }
        (mode, s.ok_status, s.ok_body.clone())
    };
    let (status, retry_after, text) = match mode {
        Mode::Ok => (ok_status, None, ok_body),
        Mode::FailFraction(f) => {
            if rand::random::<f64>() < f {
                (500, None, r#"{"error":"injected failure"}"#.to_owned())
            } else {
                (ok_status, None, ok_body)
            }
        }
        Mode::Slow(d) => {
            tokio::time::sleep(d).await;
            (ok_status, None, ok_body)
        }
        Mode::TooMany {
            retry_after_s,
            times,
        } if times > 0 => (
            429,
            Some(retry_after_s),
            r#"{"error":"slow down"}"#.to_owned(),
        ),
        Mode::TooMany { .. } => (ok_status, None, ok_body),
    };
    state
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .received
        .push(Received {
            method,
            path,
            headers,
            body,
            at_ms,
            answered_ms: now_ms(),
            status,
        });
    let mut resp = hyper::Response::builder()
        .status(status)
        .header("content-type", "application/json");
    if let Some(s) = retry_after {
        resp = resp.header("retry-after", s.to_string());
    }
    Ok(resp
        .body(Body::from(text))
        .unwrap_or_else(|_| hyper::Response::new(Body::empty())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn records_answers_per_mode_and_goes_down_and_up() {
        let r = Arc::new(Receiver::start().await.unwrap());
        let http = reqwest_like(&r.url(), b"{\"a\":1}").await.unwrap();
        assert_eq!(http, 200);
        r.set_ok_status(202, "{\"ok\":true}");
        r.set_mode(Mode::TooMany {
            retry_after_s: 3,
            times: 1,
        });
        assert_eq!(reqwest_like(&r.url(), b"x").await.unwrap(), 429);
        assert_eq!(reqwest_like(&r.url(), b"x").await.unwrap(), 202);
        let up = r.down_for(Duration::from_millis(300));
        assert!(
            reqwest_like(&r.url(), b"x").await.is_err(),
            "refused while down"
        );
        up.await.unwrap().unwrap();
        assert_eq!(reqwest_like(&r.url(), b"y").await.unwrap(), 202);
        let got = r.received();
        assert_eq!(got.len(), 4);
        assert_eq!(got[0].body, b"{\"a\":1}");
        assert_eq!(got[1].status, 429);
        assert!(got[0].header("content-length").is_some());
    }

    /// A minimal HTTP/1.1 POST over a raw socket (the kit has no HTTP client).
    async fn reqwest_like(url: &str, body: &[u8]) -> Result<u16> {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let addr = url.trim_start_matches("http://");
        let mut s = tokio::net::TcpStream::connect(addr).await?;
        let head = format!(
            "POST /hook HTTP/1.1\r\nhost: {addr}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
            body.len()
        );
        s.write_all(head.as_bytes()).await?;
        s.write_all(body).await?;
        let mut out = Vec::new();
        s.read_to_end(&mut out).await?;
        let text = String::from_utf8_lossy(&out);
        let code = text
            .split_whitespace()
            .nth(1)
            .context("no status line")?
            .parse()?;
        Ok(code)
    }
}
