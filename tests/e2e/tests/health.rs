//! The consumer's health endpoints and metrics against the real stack: a healthy consumer is
//! ready; a missing topic, a dead broker and an unreachable ClickHouse each make it not ready
//! and name the dependency; `/metrics` describes every metric and has its series from the
//! start; against a dead broker the binaries print a few lines, the actionable one first.

mod ingest_support;

use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context as _, Result};
use ingest_support::{http_get, messages, synth, terminate, Guard, World};
use serde_json::Value;

/// A local port nothing listens on (bound, then released).
fn closed_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// The process metrics both `consume` and `serve` export.
const PROCESS_METRICS: [&str; 4] = [
    "process_cpu_seconds_total",
    "process_resident_memory_bytes",
    "process_open_fds",
    "process_start_time_seconds",
];

/// `text` (a `/metrics` scrape) has `auditlog_build_info` of this version for `command`.
fn ensure_build_info(text: &str, command: &str) -> Result<()> {
    let version = format!(
        "auditlog_build_info{{version=\"{}\",command=\"{command}\"}} 1",
        env!("CARGO_PKG_VERSION")
    );
    ensure!(
        text.lines().any(|l| l == version),
        "no `{version}`:\n{text}"
    );
    Ok(())
}

/// A consumer of `w` with its health endpoints on a port of its own.
fn spawn(w: &mut World, tag: &str) -> Result<(Guard, String)> {
    let listen = format!("127.0.0.1:{}", closed_port()?);
    w.consumer_setting("metrics_listen", &listen);
    let child = w.spawn_consumer(tag)?;
    Ok((Guard(Some(child)), listen))
}

/// Polls `/health/ready` until `want(code, body)` holds; returns the last body. Fails after
/// `timeout`, or when the consumer exits.
async fn wait_ready(
    consumer: &mut Guard,
    listen: &str,
    timeout: Duration,
    want: impl Fn(u16, &Value) -> bool,
) -> Result<Value> {
    let start = Instant::now();
    let mut last = String::from("(no answer)");
    loop {
        if let Some(status) = consumer.0.as_mut().context("consumer")?.try_wait()? {
            bail!("the consumer exited with {status}; last /health/ready: {last}");
        }
        if let Ok((code, body)) = http_get(listen, "/health/ready").await {
            let json: Value = serde_json::from_str(&body)
                .with_context(|| format!("/health/ready is not JSON: {body}"))?;
            if want(code, &json) {
                return Ok(json);
            }
            last = format!("{code} {body}");
        }
        if start.elapsed() > timeout {
            bail!("after {timeout:?}, /health/ready: {last}");
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

fn check_failed(body: &Value, check: &str) -> bool {
    body["checks"][check]["ok"] == false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_healthy_consumer_is_ready_and_its_metrics_are_described_from_the_start() -> Result<()> {
    let mut w = World::new("healthok", 2).await?;
    let (mut consumer, listen) = spawn(&mut w, "a")?;
    let ready = wait_ready(
        &mut consumer,
        &listen,
        Duration::from_secs(60),
        |code, _| code == 200,
    )
    .await?;
    for check in ["broker", "topic", "group", "partitions", "clickhouse"] {
        ensure!(ready["checks"][check]["ok"] == true, "{check}: {ready}");
    }
    ensure!(ready["status"] == "ok" && ready["ready"] == true, "{ready}");
    // `/health` is the same detailed answer; `/health/live` says the loops run.
    let (code, body) = http_get(&listen, "/health").await?;
    ensure!(
        code == 200 && body.contains("\"clickhouse\""),
        "{code} {body}"
    );
    let (code, body) = http_get(&listen, "/health/live").await?;
    ensure!(
        code == 200 && body.contains("\"live\":true"),
        "{code} {body}"
    );

    // Before any event: every metric is described, and the counters exist at zero (the lag
    // of a partition exists once librdkafka reported it, below).
    let (_, before) = http_get(&listen, "/metrics").await?;
    let lag_name = auditlog_sink::observe::LAG;
    for name in auditlog_sink::observe::ALL
        .iter()
        .filter(|n| **n != lag_name)
    {
        ensure!(
            before.contains(&format!("# HELP {name} ")),
            "no HELP for {name}:\n{before}"
        );
    }
    for zero in [
        "auditlog_sink_paused 0",
        "auditlog_sink_write_retries_total 0",
        "auditlog_sink_commit_errors_total 0",
        "auditlog_sink_group_rejoins_total 0",
        "auditlog_sink_messages_consumed_total 0",
        "auditlog_sink_dead_lettered_total{reason=\"not_json\"} 0",
        "auditlog_sink_ready 1",
    ] {
        ensure!(
            before.lines().any(|l| l == zero),
            "no `{zero}` line:\n{before}"
        );
    }
    for name in PROCESS_METRICS {
        ensure!(
            before.contains(&format!("# HELP {name} "))
                && before.lines().any(|l| l.starts_with(&format!("{name} "))),
            "no {name}:\n{before}"
        );
    }
    ensure_build_info(&before, "consume")?;

    // Lag is labelled by topic and partition (librdkafka statistics, every 5 s).
    w.produce(&messages(&synth(20, 3, 2))).await?;
    w.wait_rows(20, Duration::from_secs(60)).await?;
    let start = Instant::now();
    let lag = format!(
        "auditlog_sink_partition_lag{{topic=\"{}\",partition=\"",
        w.topic
    );
    loop {
        let (_, text) = http_get(&listen, "/metrics").await?;
        if text.lines().filter(|l| l.starts_with(&lag)).count() == 2 {
            ensure!(text.contains(&format!("# HELP {lag_name} ")), "{text}");
            ensure!(
                text.lines()
                    .any(|l| l == "auditlog_sink_messages_consumed_total 20"),
                "{text}"
            );
            break;
        }
        ensure!(
            start.elapsed() < Duration::from_secs(30),
            "no lag of both partitions:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    ensure!(terminate(consumer.0.as_mut().context("running")?)?.success());
    consumer.0 = None;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_without_partitions_is_ready_and_says_it_is_idle() -> Result<()> {
    let mut w = World::new("healthidle", 1).await?;
    let (mut a, listen_a) = spawn(&mut w, "a")?;
    wait_ready(&mut a, &listen_a, Duration::from_secs(60), |code, _| {
        code == 200
    })
    .await?;
    let (mut b, listen_b) = spawn(&mut w, "b")?;
    // After the rebalance one member holds the partition and the other is idle, both ready.
    let start = Instant::now();
    loop {
        let ra = wait_ready(&mut a, &listen_a, Duration::from_secs(60), |c, _| c == 200).await?;
        let rb = wait_ready(&mut b, &listen_b, Duration::from_secs(60), |c, _| c == 200).await?;
        let idle = |r: &Value| r["checks"]["partitions"]["idle"] == true;
        if idle(&ra) != idle(&rb) {
            let r = if idle(&ra) { &ra } else { &rb };
            let reason = r["checks"]["partitions"]["reason"].as_str().unwrap_or("");
            ensure!(
                reason.contains("idle") && reason.contains("more members than"),
                "{r}"
            );
            break;
        }
        ensure!(
            start.elapsed() < Duration::from_secs(90),
            "no idle member after 90 s: {ra} / {rb}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    for c in [&mut a, &mut b] {
        ensure!(terminate(c.0.as_mut().context("running")?)?.success());
        c.0 = None;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_topic_is_not_ready_and_says_topic() -> Result<()> {
    let mut w = World::new("healthnotopic", 1).await?;
    let missing = auditlog_testkit::unique_name("missing");
    w.env
        .push(("AUDITLOG_KAFKA__TOPIC".into(), missing.clone()));
    let (mut consumer, listen) = spawn(&mut w, "a")?;
    let body = wait_ready(
        &mut consumer,
        &listen,
        Duration::from_secs(30),
        |code, b| code == 503 && b["checks"]["broker"]["ok"] == true && check_failed(b, "topic"),
    )
    .await?;
    let reason = body["checks"]["topic"]["reason"].as_str().unwrap_or("");
    ensure!(
        reason.contains(&missing) && reason.contains("does not exist"),
        "{body}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_broker_is_not_ready_says_broker_and_is_not_logged_forever() -> Result<()> {
    let mut w = World::new("healthnobroker", 1).await?;
    let dead = format!("127.0.0.1:{}", closed_port()?);
    w.env.push(("AUDITLOG_KAFKA__BROKERS".into(), dead.clone()));
    // The default log level, as an operator runs it.
    w.env.push(("RUST_LOG".into(), "info".into()));
    let (mut consumer, listen) = spawn(&mut w, "a")?;
    let started = Instant::now();
    let body = wait_ready(
        &mut consumer,
        &listen,
        Duration::from_secs(30),
        |code, b| {
            code == 503
                && check_failed(b, "broker")
                && b["checks"]["broker"]["reason"]
                    .as_str()
                    .is_some_and(|r| r.contains("kafka.brokers"))
        },
    )
    .await?;
    let reason = body["checks"]["broker"]["reason"].as_str().unwrap_or("");
    ensure!(
        reason.contains(&dead) && reason.contains("kafka.brokers"),
        "{body}"
    );
    // Live all the same: the process runs and waits for its broker.
    let (code, live) = http_get(&listen, "/health/live").await?;
    ensure!(code == 200, "{code} {live}");
    tokio::time::sleep(Duration::from_secs(8).saturating_sub(started.elapsed())).await;
    consumer.0.as_mut().context("running")?.kill()?;
    consumer.0.as_mut().context("running")?.wait()?;
    consumer.0 = None;
    let log = std::fs::read_to_string(w.log_path("a"))?;
    let lines = log.lines().count();
    eprintln!("{lines} lines in 8 s against a dead broker:\n{log}");
    // Unlimited, librdkafka's reconnect reports came at about 45 lines a second.
    ensure!(
        lines <= 15,
        "{lines} log lines in 8 s against a dead broker:\n{log}"
    );
    ensure!(
        !log.contains('\u{1b}'),
        "colour codes in a log file:\n{log}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emit_without_a_broker_says_so_first_in_one_line() -> Result<()> {
    let w = World::new("healthemit", 1).await?;
    let dead = format!("127.0.0.1:{}", closed_port()?);
    let out = tokio::task::spawn_blocking(move || {
        w.command(&["emit", "--synthetic", "5"])
            .env("AUDITLOG_KAFKA__BROKERS", &dead)
            .env("RUST_LOG", "info")
            .output()
            .map(|o| (o, dead))
    });
    let (out, dead) = tokio::time::timeout(Duration::from_secs(60), out).await???;
    let stderr = String::from_utf8_lossy(&out.stderr);
    ensure!(
        !out.status.success(),
        "emit succeeded without a broker:\n{stderr}"
    );
    let first = stderr.lines().next().unwrap_or("");
    ensure!(
        first
            == format!(
                "error: cannot reach the Kafka broker at {dead} (kafka.brokers): connection refused"
            ),
        "first line: {first:?}\n{stderr}"
    );
    ensure!(stderr.lines().count() <= 3, "too many lines:\n{stderr}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_clickhouse_is_not_ready_and_says_clickhouse() -> Result<()> {
    let mut w = World::new("healthnoch", 1).await?;
    let dead = format!("http://127.0.0.1:{}", closed_port()?);
    w.env.push(("AUDITLOG_CLICKHOUSE__URL".into(), dead));
    let (mut consumer, listen) = spawn(&mut w, "a")?;
    let body = wait_ready(
        &mut consumer,
        &listen,
        Duration::from_secs(30),
        |code, b| {
            code == 503 && b["checks"]["broker"]["ok"] == true && check_failed(b, "clickhouse")
        },
    )
    .await?;
    ensure!(body["status"] == "starting", "{body}");
    let reason = body["checks"]["clickhouse"]["reason"]
        .as_str()
        .unwrap_or("");
    ensure!(reason.contains("clickhouse.url"), "{body}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_exports_process_and_build_metrics_too() -> Result<()> {
    let w = World::new("healthserve", 1).await?;
    let listen = format!("127.0.0.1:{}", closed_port()?);
    let child = w
        .command(&["serve"])
        .env("AUDITLOG_API__LISTEN", &listen)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .context("spawn auditlog serve")?;
    let mut server = Guard(Some(child));
    let start = Instant::now();
    let text = loop {
        if let Ok((200, text)) = http_get(&listen, "/metrics").await {
            if text.contains("process_resident_memory_bytes") {
                break text;
            }
        }
        ensure!(
            start.elapsed() < Duration::from_secs(30),
            "no process metrics from serve"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    for name in PROCESS_METRICS {
        ensure!(
            text.contains(&format!("# HELP {name} ")),
            "no HELP for {name}:\n{text}"
        );
    }
    ensure_build_info(&text, "serve")?;
    ensure!(terminate(server.0.as_mut().context("running")?)?.success());
    server.0 = None;
    Ok(())
}
