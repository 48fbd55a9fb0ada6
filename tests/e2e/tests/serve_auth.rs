//! The real `auditlog serve` limits failed authentications by the peer address: after the
//! burst, 429 with `Retry-After` for that address, while another address still gets 401 and
//! 200.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{bail, ensure, Context as _, Result};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// Kills the server when the test ends, however it ends.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `GET path` from the local address `source` with an optional bearer token: the status and
/// the raw response.
async fn get_from(
    source: &str,
    port: u16,
    path: &str,
    token: Option<&str>,
) -> Result<(u16, String)> {
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.bind(format!("{source}:0").parse()?)?;
    let mut s = socket.connect(([127, 0, 0, 1], port).into()).await?;
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let req = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{auth}Connection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await?;
    let mut out = String::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_string(&mut out)).await??;
    let status = out
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .with_context(|| format!("no status in {out:?}"))?;
    Ok((status, out))
}

async fn get(port: u16, path: &str, token: Option<&str>) -> Result<(u16, String)> {
    get_from("127.0.0.1", port, path, token).await
}

#[tokio::test]
async fn serve_answers_429_after_the_burst_of_failures() -> Result<()> {
    let ch = auditlog_testkit::fresh_database("serveauth").await?;
    let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let env = [
        ("AUDITLOG_CLICKHOUSE__URL", ch.url.clone()),
        ("AUDITLOG_CLICKHOUSE__DATABASE", ch.database.clone()),
        ("AUDITLOG_CLICKHOUSE__CLUSTER", ch.cluster.clone()),
        ("AUDITLOG_API__LISTEN", format!("127.0.0.1:{port}")),
        ("AUDITLOG_API__AUTH_FAILURE_BURST", "3".into()),
        ("AUDITLOG_API__AUTH_FAILURE_INTERVAL", "60s".into()),
        ("RUST_LOG", "warn".into()),
    ];
    let token = Command::new(auditlog_testkit::auditlog_bin())
        .args(["token", "create", "ws_s"])
        .envs(env.clone())
        .output()?;
    ensure!(token.status.success(), "{token:?}");
    let token = String::from_utf8(token.stdout)?.trim().to_owned();
    let _server = Server(
        Command::new(auditlog_testkit::auditlog_bin())
            .arg("serve")
            .envs(env)
            .stdout(Stdio::null())
            .spawn()
            .context("start auditlog serve")?,
    );
    let mut up = false;
    for _ in 0..100 {
        if get(port, "/health", None)
            .await
            .is_ok_and(|(st, _)| st == 200)
        {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    if !up {
        bail!("auditlog serve did not answer /health on port {port}");
    }
    let bad = format!("alt_{:0>43}", 7);
    for _ in 0..3 {
        let (st, resp) = get(port, "/v1/events", Some(&bad)).await?;
        ensure!(st == 401, "{resp}");
    }
    let (st, resp) = get(port, "/v1/events", Some(&bad)).await?;
    ensure!(st == 429, "{resp}");
    let lower = resp.to_ascii_lowercase();
    ensure!(lower.contains("\r\nretry-after: "), "{resp}");
    ensure!(resp.contains("\"too_many_requests\""), "{resp}");
    // A token never verified by this server needs ClickHouse: refused from this address too.
    let (st, resp) = get(port, "/v1/workspace", Some(&token)).await?;
    ensure!(st == 429, "{resp}");
    ensure!(get(port, "/health", None).await?.0 == 200);
    // Another client (another loopback address) still gets 401 for a bad token, 200 for a good one.
    let (st, resp) = get_from("127.0.0.2", port, "/v1/events", Some(&bad)).await?;
    ensure!(st == 401, "{resp}");
    let (st, resp) = get_from("127.0.0.2", port, "/v1/workspace", Some(&token)).await?;
    ensure!(st == 200, "{resp}");
    Ok(())
}
