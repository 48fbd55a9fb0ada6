//! An audit entry is evidence, end to end through the real binaries, broker and ClickHouse:
//! payloads sent with `auditlog emit` and with the producer library are stored, listed, shown
//! and exported (NDJSON and CSV) byte for byte; `emit` reports another schema version as
//! `unknown_version`; and a backfilled event already past its retention, which ClickHouse
//! writes and keeps until a TTL merge, is never shown by the API nor by `events_retained`.

mod ingest_support;

use std::collections::HashMap;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context as _, Result};
use auditlog_event::{Actor, AuditEvent, KnownEvent, Payload, Target};
use auditlog_producer::{KafkaConfig, Producer};
use ingest_support::{Guard, World};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;

/// Payloads whose exact text a JSON round trip through numbers or maps would change (one per
/// line of the shared fixture `crates/event/tests/exact-payloads.txt`).
static PAYLOADS: std::sync::LazyLock<Vec<&'static str>> = std::sync::LazyLock::new(|| {
    include_str!("../../../crates/event/tests/exact-payloads.txt")
        .lines()
        .collect()
});

/// `(request, response)` of the `i`th event.
fn payloads(i: usize) -> (&'static str, &'static str) {
    (PAYLOADS[i], PAYLOADS[(i + 1) % PAYLOADS.len()])
}

/// An NDJSON line as a person writes it for `auditlog emit` (no id, version or time unless
/// `extra` has them).
fn line(ws: &str, correlation: &str, extra: &str, request: &str, response: &str) -> String {
    format!(
        r#"{{{extra}"workspace_id":"{ws}","event":"key.create","actor":{{"type":"user","id":"u_1","name":"Ada"}},"targets":[{{"type":"key","id":"key_1","name":"prod"}}],"description":"fidelity {correlation}","correlation_id":"{correlation}","request":{request},"response":{response}}}"#
    )
}

/// Writes `lines` to a file of the world's and runs `auditlog emit --file` on it.
fn emit_output(w: &World, tag: &str, lines: &[String]) -> Result<std::process::Output> {
    let path = std::env::temp_dir().join(format!("{}_{tag}.ndjson", w.name));
    std::fs::write(&path, lines.join("\n") + "\n")?;
    let path = path.to_string_lossy().into_owned();
    w.command(&["emit", "--file", &path])
        .output()
        .context("run auditlog emit")
}

/// A port nothing listens on right now.
fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// `auditlog serve` on a free port of its own, ready (its `/health` answers).
struct Server {
    base: String,
    _child: Guard,
}

impl Server {
    async fn start(w: &World) -> Result<Self> {
        let listen = format!("127.0.0.1:{}", free_port()?);
        let log = std::fs::File::create(w.log_path("serve"))?;
        let child: Child = w
            .command(&["serve", "--listen", &listen])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .context("spawn auditlog serve (cargo build -p auditlog first)")?;
        let child = Guard(Some(child));
        let base = format!("http://{listen}");
        let start = Instant::now();
        loop {
            if let Ok(r) = reqwest::get(format!("{base}/health")).await {
                if r.status().is_success() {
                    return Ok(Self {
                        base,
                        _child: child,
                    });
                }
            }
            if start.elapsed() > Duration::from_secs(30) {
                bail!(
                    "auditlog serve not ready (log {})",
                    w.log_path("serve").display()
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// GET `path` with `token`; the status and the body as text.
    async fn get(&self, token: &str, path: &str) -> Result<(u16, String)> {
        let r = reqwest::Client::new()
            .get(format!("{}{path}", self.base))
            .bearer_auth(token)
            .send()
            .await?;
        Ok((r.status().as_u16(), r.text().await?))
    }
}

/// The payloads of a detail body or an NDJSON line, as the text received.
#[derive(Deserialize)]
struct Payloads<'a> {
    #[serde(borrow)]
    correlation_id: &'a str,
    #[serde(borrow)]
    request: &'a RawValue,
    #[serde(borrow)]
    response: &'a RawValue,
}

async fn wait_for_rows(w: &World, n: u64) -> Result<()> {
    w.wait_rows(n, Duration::from_secs(120)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payload_bytes_survive_emit_producer_consume_and_every_read() -> Result<()> {
    let w = World::new("fidelity", 1).await?;
    let ws = "ws_fidelity";
    // `correlation_id` -> (request, response) sent.
    let mut sent: HashMap<String, (&str, &str)> = HashMap::new();

    // Through the binary, from a file.
    let lines: Vec<String> = (0..PAYLOADS.len())
        .map(|i| {
            let (req, resp) = payloads(i);
            let c = format!("emit-{i}");
            sent.insert(c.clone(), (req, resp));
            line(ws, &c, "", req, resp)
        })
        .collect();
    let out = emit_output(&w, "payloads", &lines)?;
    ensure!(
        out.status.success(),
        "emit failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Through the producer library, payloads given as text.
    let kafka = KafkaConfig {
        brokers: w.brokers.clone(),
        topic: w.topic.clone(),
        ..KafkaConfig::default()
    };
    let producer = Producer::builder(&kafka).build().await?;
    for i in 0..PAYLOADS.len() {
        let (req, resp) = payloads(i);
        let c = format!("lib-{i}");
        let event: AuditEvent = AuditEvent::builder(ws, KnownEvent::KeyCreate)
            .actor(Actor::user("u_1", "Ada"))
            .target(Target::new("key", "key_1", "prod"))
            .description(format!("fidelity {c}"))
            .correlation_id(&c)
            .request(Payload::from_json(req)?)
            .response(Payload::from_json(resp)?)
            .build()?;
        producer.emit(&event).await?;
        sent.insert(c, (req, resp));
    }
    let report = producer.close(Duration::from_secs(10)).await?;
    ensure!(report.undelivered.is_empty(), "{report:?}");

    let _consumer = Guard(Some(w.spawn_consumer("a")?));
    wait_for_rows(&w, sent.len() as u64).await?;

    // Stored as sent.
    let stored: Vec<(String, String, String)> = w
        .client()
        .query("SELECT correlation_id, request, response FROM events")
        .fetch_all()
        .await?;
    ensure!(stored.len() == sent.len(), "{} rows", stored.len());
    for (c, req, resp) in &stored {
        ensure!(
            (req.as_str(), resp.as_str()) == sent[c],
            "{c}: stored {req} / {resp}, sent {:?}",
            sent[c]
        );
    }

    let server = Server::start(&w).await?;
    let token = w.cli(&["token", "create", ws])?.trim().to_owned();

    // The list has every event (none hidden or `null`).
    let (st, body) = server.get(&token, "/v1/events?limit=1000").await?;
    ensure!(st == 200, "list {st}: {body}");
    let list: Value = serde_json::from_str(&body)?;
    let listed = list["data"].as_array().context("data")?;
    ensure!(listed.len() == sent.len(), "listed {}", listed.len());

    // The detail of each, byte for byte.
    for e in listed {
        let id = e["event_id"].as_str().context("event_id")?;
        let (st, body) = server.get(&token, &format!("/v1/events/{id}")).await?;
        ensure!(st == 200 && body != "null", "detail {id}: {st} {body}");
        let got: Payloads = serde_json::from_str(&body).with_context(|| body.clone())?;
        ensure!(
            (got.request.get(), got.response.get()) == sent[got.correlation_id],
            "detail of {}: {body}",
            got.correlation_id
        );
    }

    // NDJSON export, byte for byte.
    let (st, body) = server.get(&token, "/v1/export?format=ndjson").await?;
    ensure!(st == 200, "ndjson {st}");
    ensure!(body.lines().count() == sent.len(), "{body}");
    for l in body.lines() {
        let got: Payloads = serde_json::from_str(l).with_context(|| l.to_owned())?;
        ensure!(
            (got.request.get(), got.response.get()) == sent[got.correlation_id],
            "ndjson line of {}: {l}",
            got.correlation_id
        );
    }

    // CSV export: raw is byte for byte; the default neutralizes only a cell that starts like
    // a formula (the bare `-0.0` payload).
    for raw in [true, false] {
        let q = if raw { "&csv_raw=true" } else { "" };
        let (st, body) = server
            .get(&token, &format!("/v1/export?format=csv{q}"))
            .await?;
        ensure!(st == 200, "csv {st}");
        let mut r = csv::Reader::from_reader(body.as_bytes());
        let header = r.headers()?.clone();
        let col = |name: &str| header.iter().position(|h| h == name).expect(name);
        let (c_col, req_col, resp_col) = (col("correlation_id"), col("request"), col("response"));
        let mut n = 0;
        for rec in r.records() {
            let rec = rec?;
            let (req, resp) = sent[&rec[c_col]];
            let shown = |p: &str| {
                if !raw && p.starts_with('-') {
                    format!("'{p}")
                } else {
                    p.to_owned()
                }
            };
            ensure!(
                (&rec[req_col], &rec[resp_col]) == (&*shown(req), &*shown(resp)),
                "csv (raw {raw}) of {}: {:?}",
                &rec[c_col],
                rec
            );
            n += 1;
        }
        ensure!(n == sent.len(), "csv rows {n}");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emit_reports_another_schema_version_as_unknown_version() -> Result<()> {
    let w = World::new("fidelity_version", 1).await?;
    let lines = vec![
        line("ws_v", "v2", r#""version":2,"#, "null", "null"),
        line("ws_v", "v_str", r#""version":"1","#, "null", "null"),
    ];
    let out = emit_output(&w, "versions", &lines)?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    ensure!(!out.status.success(), "emit accepted them: {stderr}");
    for n in [1, 2] {
        let reported = stderr
            .lines()
            .find(|l| l.starts_with(&format!("line {n}: ")))
            .with_context(|| format!("line {n} not reported: {stderr}"))?;
        ensure!(
            reported.starts_with(&format!("line {n}: version: "))
                && reported.ends_with("(unknown_version)"),
            "{reported}"
        );
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backfilled_event_past_its_retention_is_never_shown() -> Result<()> {
    let w = World::new("fidelity_backfill", 1).await?;
    // Hold TTL merges on this test's table so the row stays as the consumer wrote it (a TTL
    // merge may otherwise run within seconds, or up to `merge_with_ttl_timeout` later).
    let layout = auditlog_store::Layout::detect(&w.client())
        .await?
        .expect("migrated");
    w.client()
        .query(&layout.system_on_events("STOP TTL MERGES", &w.clickhouse.database))
        .execute()
        .await?;
    let ws = "ws_backfill"; // no plan: Free, 7 days
    let now = chrono::Utc::now().timestamp_millis();
    let old = now - 10 * 86_400_000;
    let lines = vec![
        line(ws, "old", &format!(r#""time":{old},"#), "null", "null"),
        line(ws, "fresh", "", "null", "null"),
    ];
    let out = emit_output(&w, "backfill", &lines)?;
    ensure!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let _consumer = Guard(Some(w.spawn_consumer("a")?));
    wait_for_rows(&w, 2).await?;

    let in_table = |table: &'static str| {
        let client = w.client();
        async move {
            let mut v: Vec<String> = client
                .query(&format!("SELECT correlation_id FROM {table}"))
                .fetch_all()
                .await?;
            v.sort();
            anyhow::Ok(v)
        }
    };
    // Written: in `events` until a TTL merge; not in the view.
    ensure!(in_table("events").await? == ["fresh", "old"]);
    ensure!(in_table("events_retained").await? == ["fresh"]);

    let server = Server::start(&w).await?;
    let token = w.cli(&["token", "create", ws])?.trim().to_owned();
    let (_, body) = server.get(&token, "/v1/events").await?;
    let list: Value = serde_json::from_str(&body)?;
    let listed: Vec<&str> = list["data"]
        .as_array()
        .context("data")?
        .iter()
        .filter_map(|e| e["correlation_id"].as_str())
        .collect();
    ensure!(listed == ["fresh"], "{body}");
    let old_id: String = w
        .client()
        .query("SELECT toString(event_id) FROM events WHERE correlation_id = 'old'")
        .fetch_one()
        .await?;
    let (st, body) = server.get(&token, &format!("/v1/events/{old_id}")).await?;
    ensure!(st == 404, "detail of the expired event: {st} {body}");
    for format in ["ndjson", "csv"] {
        let (_, body) = server
            .get(&token, &format!("/v1/export?format={format}"))
            .await?;
        ensure!(!body.contains(&old_id), "{format}: {body}");
    }
    let (_, body) = server.get(&token, "/v1/event-counts").await?;
    ensure!(
        serde_json::from_str::<Value>(&body)?["counts"][0]["count"] == 1,
        "{body}"
    );
    Ok(())
}
