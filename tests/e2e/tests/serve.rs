//! `auditlog serve` (the binary) against a private ClickHouse frozen with SIGSTOP (it keeps
//! accepting connections and never answers): liveness stays 200, health and reads (token
//! verification included) answer 503 within their deadlines, and SIGTERM lets the request in
//! flight finish before the process exits 0. Private stack: the shared one is never stopped.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{ensure, Context as _, Result};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const ADMIN: &str = "admin-token-for-e2e-0123456789";

/// Kills the server if the test ends early.
struct Server(Option<Child>);

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Resumes a stopped process when the test ends (so the stack can be stopped).
struct Resume(u32);

impl Drop for Resume {
    fn drop(&mut self) {
        signal(self.0, "CONT");
    }
}

fn signal(pid: u32, sig: &str) {
    let _ = Command::new("kill")
        .args([&format!("-{sig}"), &pid.to_string()])
        .status();
}

/// One request on its own connection: status and body.
async fn request(
    addr: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: &str,
) -> Result<(u16, Value)> {
    let mut s = tokio::time::timeout(Duration::from_secs(2), tokio::net::TcpStream::connect(addr))
        .await??;
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Content-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(head.as_bytes()).await?;
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), s.read_to_end(&mut out)).await??;
    let text = String::from_utf8_lossy(&out);
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .with_context(|| format!("no status in {text:?}"))?;
    let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    Ok((status, serde_json::from_str(body).unwrap_or(Value::Null)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_answers_while_clickhouse_is_frozen_and_drains_on_sigterm() -> Result<()> {
    let stack = tokio::task::spawn_blocking(auditlog_testkit::PrivateStack::start).await??;
    let db = auditlog_testkit::unique_name("servefrozen");
    auditlog_testkit::migrated_database(&stack.clickhouse_url(), &db).await?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let addr = format!("127.0.0.1:{port}");
    let child = Command::new(auditlog_testkit::auditlog_bin())
        .arg("serve")
        .env("AUDITLOG_CLICKHOUSE__URL", stack.clickhouse_url())
        .env("AUDITLOG_CLICKHOUSE__DATABASE", &db)
        .env("AUDITLOG_API__LISTEN", &addr)
        .env("AUDITLOG_API__ADMIN_TOKEN", ADMIN)
        .env("AUDITLOG_API__QUERY_TIMEOUT", "3s")
        .env("AUDITLOG_API__TOKEN_CACHE", "500ms")
        .stdout(Stdio::null())
        .spawn()
        .context("spawn auditlog serve")?;
    let mut server = Server(Some(child));
    let pid = server.0.as_ref().map(Child::id).unwrap_or(0);
    let start = Instant::now();
    while request(&addr, "GET", "/health/live", None, "")
        .await
        .map(|r| r.0)
        .ok()
        != Some(200)
    {
        ensure!(
            start.elapsed() < Duration::from_secs(30),
            "serve did not start"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (st, created) = request(
        &addr,
        "POST",
        "/v1/admin/tokens",
        Some(ADMIN),
        r#"{"workspace_id":"ws_frozen"}"#,
    )
    .await?;
    ensure!(st == 201, "create token: {st} {created}");
    let token = created["token"].as_str().context("token")?.to_owned();
    let (st, body) = request(&addr, "GET", "/health", None, "").await?;
    ensure!(st == 200 && body["clickhouse"] == "ok", "{st} {body}");
    ensure!(
        request(&addr, "GET", "/v1/events", Some(&token), "")
            .await?
            .0
            == 200
    );

    let ch_pid = stack.pid("clickhouse")?;
    signal(ch_pid, "STOP");
    let _resume = Resume(ch_pid);
    // Past the token cache, so the token is verified against the frozen server.
    tokio::time::sleep(Duration::from_millis(600)).await;

    let t = Instant::now();
    let (st, _) = request(&addr, "GET", "/health/live", None, "").await?;
    ensure!(
        st == 200 && t.elapsed() < Duration::from_secs(1),
        "live: {st} {:?}",
        t.elapsed()
    );
    for path in ["/health", "/health/ready"] {
        let t = Instant::now();
        let (st, body) = request(&addr, "GET", path, None, "").await?;
        let took = t.elapsed();
        ensure!(st == 503, "{path}: {st} {body}");
        ensure!(took < Duration::from_secs(3), "{path} took {took:?}");
        ensure!(body["error"]["code"] == "unavailable", "{path}: {body}");
    }
    for (path, tok) in [("/v1/events", token.as_str()), ("/v1/admin/tokens", ADMIN)] {
        let t = Instant::now();
        let (st, body) = request(&addr, "GET", path, Some(tok), "").await?;
        let took = t.elapsed();
        ensure!(
            st == 503 && body["error"]["code"] == "unavailable",
            "{path}: {st} {body}"
        );
        ensure!(
            took >= Duration::from_millis(2900) && took < Duration::from_secs(6),
            "{path} took {took:?}"
        );
    }

    // SIGTERM with a request in flight: it is answered, then the process exits 0.
    let in_flight = tokio::spawn({
        let addr = addr.clone();
        async move { request(&addr, "GET", "/v1/admin/tokens", Some(ADMIN), "").await }
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    signal(pid, "TERM");
    let (st, body) = in_flight.await??;
    ensure!(st == 503, "in flight: {st} {body}");
    let mut child = server.0.take().context("server")?;
    let t = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait()? {
            break s;
        }
        ensure!(
            t.elapsed() < Duration::from_secs(10),
            "serve did not exit after SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    ensure!(status.success(), "serve exited with {status}");
    Ok(())
}
