//! HTTP ingest through the real binaries: `auditlog token create WS --ingest`, `auditlog serve`
//! (`POST /v1/ingest`) and `auditlog consume`. Events sent over HTTP are stored once, byte
//! for byte, also when the same batch is sent twice; an oversize body is a 413 before it is
//! read; the TypeScript and Go examples (`examples/ingest`) run against the server; and with
//! the broker stopped (a private stack) ingest answers 503 without reporting anything accepted
//! that was not stored, then recovers.

mod ingest_support;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context as _, Result};
use ingest_support::{free_listen_addr, Guard, World};
use serde_json::{json, Value};
use uuid::Uuid;

const ADMIN: &str = "admin-token-for-e2e-0123456789";

/// Exact payload texts (a JSON round trip would change them).
static PAYLOADS: std::sync::LazyLock<Vec<&'static str>> = std::sync::LazyLock::new(|| {
    include_str!("../../../crates/event/tests/exact-payloads.txt")
        .lines()
        .collect()
});

/// `auditlog serve` of the world, ingest ready (its producer connected).
struct Server {
    base: String,
    _child: Guard,
}

impl Server {
    async fn start(w: &World, env: &[(&str, &str)], ingest_token: &str) -> Result<Self> {
        let listen = free_listen_addr()?;
        let log = std::fs::File::create(w.log_path("serve"))?;
        let child = w
            .command(&["serve", "--listen", &listen])
            .env("AUDITLOG_API__ADMIN_TOKEN", ADMIN)
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .context("spawn auditlog serve")?;
        let s = Self {
            base: format!("http://{listen}"),
            _child: Guard(Some(child)),
        };
        // Ready when ingest stops answering 503 (the producer connects in the background): an
        // empty body is then a 400.
        let start = Instant::now();
        loop {
            if let Ok((400, _, _)) = s.post(ingest_token, "application/x-ndjson", "").await {
                return Ok(s);
            }
            if start.elapsed() > Duration::from_secs(60) {
                bail!("ingest not ready (log {})", w.log_path("serve").display());
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn post(
        &self,
        token: &str,
        content_type: &str,
        body: &str,
    ) -> Result<(u16, reqwest::header::HeaderMap, Value)> {
        let r = reqwest::Client::new()
            .post(format!("{}/v1/ingest", self.base))
            .bearer_auth(token)
            .header("content-type", content_type)
            .body(body.to_owned())
            .send()
            .await?;
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let v = r.json().await.unwrap_or(Value::Null);
        Ok((status, headers, v))
    }

    async fn get(&self, token: &str, path: &str) -> Result<Value> {
        let r = reqwest::Client::new()
            .get(format!("{}{path}", self.base))
            .bearer_auth(token)
            .send()
            .await?;
        ensure!(r.status() == 200, "GET {path}: {}", r.status());
        Ok(r.json().await?)
    }
}

/// An event line of `ws` with its own id and payloads given as text.
fn line(ws: &str, id: Uuid, tag: &str, request: &str, response: &str) -> String {
    format!(
        r#"{{"event_id":"{id}","workspace_id":"{ws}","event":"key.create","actor":{{"type":"user","id":"u_1"}},"targets":[{{"type":"key","id":"key_1"}}],"description":"http {tag}","correlation_id":"{tag}","request":{request},"response":{response}}}"#
    )
}

fn accepted_lines(v: &Value) -> Vec<u64> {
    v["accepted"]
        .as_array()
        .map(|a| a.iter().filter_map(|r| r["line"].as_u64()).collect())
        .unwrap_or_default()
}

/// Waits until the event `id` is listed by the API (the consumer stored it).
async fn wait_visible(server: &Server, read: &str, id: &str) -> Result<()> {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(120) {
        let r = reqwest::Client::new()
            .get(format!("{}/v1/events/{id}", server.base))
            .bearer_auth(read)
            .send()
            .await?;
        if r.status() == 200 {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    bail!("event {id} not visible after 120 s")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_ingest_stores_each_event_once_byte_for_byte_and_the_examples_work() -> Result<()> {
    let mut w = World::new("httpingest", 2).await?;
    w.consumer_setting("batch_max_wait", "200ms");
    let ws = "ws_http";
    // The CLI: an ingest token, a read token, a service token; `--service` needs `--ingest`.
    let ingest = w
        .cli(&["token", "create", ws, "--ingest"])?
        .trim()
        .to_owned();
    let read = w.cli(&["token", "create", ws])?.trim().to_owned();
    let service: Value = serde_json::from_str(&w.cli(&[
        "token",
        "create",
        "--ingest",
        "--service",
        "billing",
        "--workspaces",
        &format!("{ws},ws_other"),
        "--json",
    ])?)?;
    ensure!(
        service["workspace_id"] == "*" && service["workspaces"] == json!([ws, "ws_other"]),
        "{service}"
    );
    ensure!(
        w.cli(&["token", "create", "--service", "billing"]).is_err(),
        "--service without --ingest must fail"
    );
    let list: Value = serde_json::from_str(&w.cli(&["token", "list", ws, "--json"])?)?;
    let scopes: Vec<&str> = list["tokens"]
        .as_array()
        .context("tokens")?
        .iter()
        .filter_map(|t| t["scope"].as_str())
        .collect();
    ensure!(scopes == ["ingest", "read"], "{list}");
    let text = w.cli(&["token", "list"])?;
    ensure!(
        text.starts_with("TOKEN_ID\tWORKSPACE\tSCOPE\t")
            && text.contains("ws_http,ws_other\tingest\tbilling"),
        "{text}"
    );

    let server = Server::start(
        &w,
        &[("AUDITLOG_API__INGEST_MAX_BODY_BYTES", "65536")],
        &ingest,
    )
    .await?;
    let _consumer = Guard(Some(w.spawn_consumer("http")?));

    // A batch of exact payloads and one bad line, sent twice (a client retrying).
    let ids: Vec<Uuid> = (0..PAYLOADS.len()).map(|_| Uuid::now_v7()).collect();
    let mut lines: Vec<String> = (0..PAYLOADS.len())
        .map(|i| {
            let resp = PAYLOADS[(i + 1) % PAYLOADS.len()];
            line(ws, ids[i], &format!("p{i}"), PAYLOADS[i], resp)
        })
        .collect();
    lines.insert(
        1,
        r#"{"workspace_id":"ws_http","event":"key.create"}"#.to_owned(),
    );
    let body = lines.join("\n") + "\n";
    let want: Vec<u64> = (1..=lines.len() as u64).filter(|l| *l != 2).collect();
    for attempt in 0..2 {
        let (st, _, v) = server.post(&ingest, "application/x-ndjson", &body).await?;
        ensure!(st == 200, "attempt {attempt}: {st} {v}");
        ensure!(accepted_lines(&v) == want, "{v}");
        ensure!(
            v["rejected"][0]["line"] == 2 && v["rejected"][0]["field"] == "actor",
            "{v}"
        );
    }
    // The service token writes the same workspace; a later event in the same partition (same
    // workspace key) shows both batches were consumed.
    let sentinel = Uuid::now_v7();
    let service_token = service["token"].as_str().context("token")?;
    let (st, _, v) = server
        .post(
            service_token,
            "application/json",
            &line(ws, sentinel, "sentinel", "{}", "{}"),
        )
        .await?;
    ensure!(st == 200, "{st} {v}");
    wait_visible(&server, &read, &sentinel.to_string()).await?;

    // One visible row per event, the payloads byte for byte.
    let listed = server.get(&read, "/v1/events?limit=1000").await?;
    let listed = listed["data"].as_array().context("data")?;
    ensure!(
        listed.len() == PAYLOADS.len() + 1,
        "listed {}",
        listed.len()
    );
    // (Both copies are stored, with the times the server filled in; reads show one per
    // event_id.)
    let n = (PAYLOADS.len() + 1) as u64;
    ensure!(w.distinct_ids().await? == n, "expected {n} distinct ids");
    for (i, id) in ids.iter().enumerate() {
        let (req, resp): (String, String) = w
            .client()
            .query("SELECT request, response FROM events FINAL WHERE event_id = ?")
            .bind(id.to_string())
            .fetch_one()
            .await?;
        ensure!(req == PAYLOADS[i], "request of {i}: {req}");
        ensure!(
            resp == PAYLOADS[(i + 1) % PAYLOADS.len()],
            "response of {i}: {resp}"
        );
    }

    // Above the body limit with a Content-Length: 413 without reading it.
    let big = "x".repeat(70_000);
    let (st, _, v) = server.post(&ingest, "application/x-ndjson", &big).await?;
    ensure!(
        st == 413 && v["error"]["code"] == "payload_too_large",
        "{st} {v}"
    );
    // The read token cannot ingest, the ingest token cannot read.
    let (st, _, v) = server.post(&read, "application/json", "{}").await?;
    ensure!(st == 403, "{st} {v}");
    let r = reqwest::Client::new()
        .get(format!("{}/v1/events", server.base))
        .bearer_auth(&ingest)
        .send()
        .await?;
    ensure!(r.status() == 403, "{}", r.status());

    // The examples, against this server.
    let examples = auditlog_testkit::workspace_root().join("examples/ingest");
    let out = Command::new("node")
        .arg(examples.join("ingest.mjs"))
        .env("AUDITLOG_URL", &server.base)
        .env("AUDITLOG_TOKEN", &ingest)
        .env("AUDITLOG_WORKSPACE", ws)
        .output()
        .context("run node (Node 20)")?;
    ensure!(out.status.success(), "node: {out:?}");
    let ts: Value = serde_json::from_slice(&out.stdout)?;
    let bin = std::env::temp_dir().join(format!("{}_ingest_go", w.name));
    let built = Command::new("go")
        .args(["build", "-o"])
        .arg(&bin)
        .arg(".")
        .current_dir(&examples)
        .output()
        .context("run go build (golang-go)")?;
    ensure!(built.status.success(), "go build: {built:?}");
    let out = Command::new(&bin)
        .env("AUDITLOG_URL", &server.base)
        .env("AUDITLOG_TOKEN", service_token)
        .env("AUDITLOG_WORKSPACE", ws)
        .output()?;
    let _ = std::fs::remove_file(&bin);
    ensure!(out.status.success(), "go example: {out:?}");
    let go: Value = serde_json::from_slice(&out.stdout)?;
    for (name, v) in [("ts", &ts), ("go", &go)] {
        ensure!(v["status"] == 200, "{name}: {v}");
        let accepted = v["accepted"].as_array().context("accepted")?;
        ensure!(accepted.len() == 2, "{name}: {v}");
        for a in accepted {
            wait_visible(&server, &read, a["event_id"].as_str().context("id")?).await?;
        }
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_down_is_a_503_and_nothing_unacknowledged_is_reported_accepted() -> Result<()> {
    let stack = tokio::task::spawn_blocking(auditlog_testkit::PrivateStack::start).await??;
    let w = World::on_stack("httpdown", 1, &stack).await?;
    let ws = "ws_down";
    let ingest = w
        .cli(&["token", "create", ws, "--ingest"])?
        .trim()
        .to_owned();
    let read = w.cli(&["token", "create", ws])?.trim().to_owned();
    let env = [
        ("AUDITLOG_API__INGEST_TIMEOUT", "4s"),
        ("AUDITLOG_PRODUCER__DELIVERY_TIMEOUT", "3s"),
    ];
    let server = Server::start(&w, &env, &ingest).await?;
    let _consumer = Guard(Some(w.spawn_consumer("down")?));
    let batch = |ids: &[Uuid]| -> String {
        ids.iter()
            .map(|id| line(ws, *id, "down", "{}", "{}") + "\n")
            .collect()
    };
    let before: Vec<Uuid> = (0..2).map(|_| Uuid::now_v7()).collect();
    let (st, _, v) = server
        .post(&ingest, "application/x-ndjson", &batch(&before))
        .await?;
    ensure!(st == 200 && accepted_lines(&v) == [1, 2], "{st} {v}");

    stack.stop("broker")?;
    let during: Vec<Uuid> = (0..3).map(|_| Uuid::now_v7()).collect();
    let started = Instant::now();
    let (st, headers, v) = server
        .post(&ingest, "application/x-ndjson", &batch(&during))
        .await?;
    ensure!(st == 503, "{st} {v}");
    ensure!(
        started.elapsed() < Duration::from_secs(15),
        "{:?}",
        started.elapsed()
    );
    ensure!(headers.get("retry-after").is_some(), "{headers:?}");
    ensure!(v["error"]["code"] == "unavailable", "{v}");
    ensure!(v["accepted"] == json!([]), "nothing was acknowledged: {v}");
    let failed: Vec<(u64, String)> = v["failed"]
        .as_array()
        .context("failed")?
        .iter()
        .map(|f| {
            (
                f["line"].as_u64().unwrap_or(0),
                f["event_id"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    let expected: Vec<(u64, String)> = during
        .iter()
        .enumerate()
        .map(|(i, id)| (i as u64 + 1, id.to_string()))
        .collect();
    ensure!(failed == expected, "{v}");

    // The broker back. What was acknowledged is stored; what was not, is not.
    stack.start_component("broker")?;
    for id in &before {
        wait_visible(&server, &read, &id.to_string()).await?;
    }
    ensure!(
        w.distinct_ids().await? == 2,
        "only the acknowledged events are stored"
    );
    // The client retries the same lines until they are acknowledged. (A producer whose events
    // timed out while the broker was down keeps failing against the restarted Tansu broker, so
    // the retry goes to a new server process: see the report.)
    drop(server);
    let server = Server::start(&w, &env, &ingest).await?;
    let start = Instant::now();
    loop {
        let (st, _, v) = server
            .post(&ingest, "application/x-ndjson", &batch(&during))
            .await?;
        if st == 200 {
            ensure!(accepted_lines(&v) == [1, 2, 3], "{v}");
            break;
        }
        ensure!(st == 503 || st == 429, "{st} {v}");
        ensure!(
            start.elapsed() < Duration::from_secs(90),
            "no recovery: {v}"
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    // Everything acknowledged is stored, once.
    for id in before.iter().chain(&during) {
        wait_visible(&server, &read, &id.to_string()).await?;
    }
    let fin: u64 = w
        .client()
        .query("SELECT count() FROM events FINAL")
        .fetch_one()
        .await?;
    ensure!(fin == 5 && w.distinct_ids().await? == 5, "FINAL {fin}");
    Ok(())
}
