//! Feed benchmark: one client follows `GET /v1/feed` with `limit=1000` from the beginning of a
//! big workspace until it is caught up, through the real API (axum on a TCP listener, reqwest
//! client), then polls at the tail. Prints events/s, pages and page latency, and the granules a
//! mid-backlog page scan reads (`EXPLAIN indexes = 1`).
//!
//! Data, generated in ClickHouse (`INSERT ... SELECT FROM numbers()`, in time order as the
//! consumer writes): workspace `ws_feed` has 9 of every 10 offsets of partition 0 (the 10th is
//! another workspace's), event times follow the offsets, and 1% of the events are late (event
//! time 5 hours earlier than their neighbours'), as a consumer backlog or a producer clock
//! behind makes them.
//!
//! ```text
//! STACK_PROFILE=test deploy/local/stack.sh up
//! cargo bench -p auditlog-query --bench feed                         # 1M events (short form)
//! BENCH_ROWS=10000000 cargo bench -p auditlog-query --bench feed     # the issue's 10M
//! ```
//! Environment: `BENCH_CLICKHOUSE_URL` (default the test stack, `http://127.0.0.1:18123`),
//! `BENCH_ROWS` (events of `ws_feed`, default 1000000), `BENCH_DATABASE` (default
//! `bench_feed_<rows>`), `BENCH_KEEP=1` keeps the database (a later run reuses it).

use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};
use auditlog_query::api::serve::{serve, Limits};
use auditlog_query::api::{app, AppState};
use auditlog_query::ApiConfig;
use auditlog_store::feed::FeedPosition;
use auditlog_store::ClickHouseConfig;
use hdrhistogram::Histogram;

const WS: &str = "ws_feed";
const LIMIT: u32 = 1000;

fn env(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

/// `rows` events of [`WS`] (and a ninth as many of another workspace), in chunks of 1M
/// offsets, each one INSERT.
async fn generate(client: &clickhouse::Client, rows: u64) -> Result<()> {
    let have: u64 = client
        .query("SELECT count() FROM events WHERE workspace_id = ?")
        .bind(WS)
        .fetch_one()
        .await?;
    if have >= rows - rows / 100 && have <= rows {
        println!("reusing {have} events of {WS}");
        return Ok(());
    }
    client.query("TRUNCATE TABLE events").execute().await?;
    let offsets = rows * 10 / 9;
    let start = Instant::now();
    let chunk = 1_000_000u64;
    let mut done = 0;
    while done < offsets {
        let n = chunk.min(offsets - done);
        let sql = format!(
            "INSERT INTO events (event_id, workspace_id, bucket, event, time, actor_type, actor_id, \
               actor_name, target_types, target_ids, target_names, targets, description, remote_ip, \
               user_agent, request, response, outcome, version, retention_days, kafka_partition, kafka_offset) \
             SELECT generateUUIDv7(n), if(n % 10 = 9, 'ws_noise', '{WS}'), 'default', \
               ['key.create','key.update','key.delete','api.create'][1 + n % 4], \
               fromUnixTimestamp64Milli(toInt64(toUnixTimestamp64Milli(now64(3)) - ({offsets} - n) * 10 \
                 - if(n % 100 = 42, 18000000, 0)), 'UTC'), \
               'user', concat('actor_', toString(n % 50)), 'Actor', ['key'], \
               [concat('key_', toString(n % 5000))], ['Key'], \
               concat('[{{\"type\":\"key\",\"id\":\"key_', toString(n % 5000), '\",\"name\":\"Key\"}}]'), \
               concat('Changed key key_', toString(n % 5000)), '10.0.0.1', 'bench/1.0', \
               concat('{{\"name\":\"key ', toString(n), '\",\"ratelimit\":{{\"limit\":100,\"duration\":60000}}}}'), \
               concat('{{\"keyId\":\"key_', toString(n), '\",\"ok\":true}}'), 'success', 1, 0, 0, toInt64(n) \
             FROM (SELECT number + {done} AS n FROM numbers({n}))"
        );
        client
            .query(&sql)
            .with_setting("max_execution_time", "0")
            .execute()
            .await
            .context("generate events")?;
        done += n;
    }
    println!(
        "generated {rows} events of {WS} in {:.0} s",
        start.elapsed().as_secs_f64()
    );
    Ok(())
}

fn hist() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 600_000_000, 3).unwrap_or_else(|_| unreachable!())
}

fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

async fn page(http: &reqwest::Client, url: &str, token: &str) -> Result<(usize, String)> {
    let resp = http.get(url).bearer_auth(token).send().await?;
    let status = resp.status();
    let body: serde_json::Value = resp.json().await?;
    if !status.is_success() {
        bail!("{url}: {status} {body}");
    }
    let n = body["data"].as_array().map_or(0, Vec::len);
    let cursor = body["next_cursor"].as_str().unwrap_or_default().to_owned();
    Ok((n, cursor))
}

#[tokio::main]
async fn main() -> Result<()> {
    let rows: u64 = env("BENCH_ROWS", "1000000").parse()?;
    let ch = ClickHouseConfig {
        url: env("BENCH_CLICKHOUSE_URL", "http://127.0.0.1:18123"),
        database: env("BENCH_DATABASE", &format!("bench_feed_{rows}")),
        ..ClickHouseConfig::default()
    };
    auditlog_store::migrate(&ch).await.context("migrate")?;
    let client = ch.client();
    generate(&client, rows).await?;
    let parts: u64 = client
        .query("SELECT count() FROM system.parts WHERE database = currentDatabase() AND table = 'events' AND active")
        .fetch_one()
        .await?;
    println!("events table: {parts} active parts");

    // A mid-backlog page scan: what the index leaves to read.
    let mid = FeedPosition {
        offsets: [(0, (rows * 10 / 9 / 2) as i64)].into(),
    };
    let scan = auditlog_query::feed::sql::scan(
        WS,
        &auditlog_query::Filter::default(),
        &mid,
        LIMIT,
        Some(4 * i64::from(LIMIT)),
    );
    let mut explain = scan.clone();
    explain.text = format!("EXPLAIN indexes = 1 {}", scan.text);
    let lines: Vec<String> = explain.query(&client).fetch_all().await?;
    for l in lines
        .iter()
        .filter(|l| l.contains("Name:") || l.contains("Granules:"))
    {
        println!("  explain: {}", l.trim());
    }

    let cfg = ApiConfig {
        admin_token: "bench-admin-token-0123456789".into(),
        ..ApiConfig::default()
    };
    let state = AppState::new(
        &cfg,
        ch.client(),
        auditlog_testkit::prometheus(auditlog_query::api::metrics::HISTOGRAM_BUCKETS),
    );
    let token = state.tokens.create(WS, "bench").await?.token;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let server = tokio::spawn(serve(
        listener,
        app(state),
        Limits::from_config(&cfg),
        std::future::pending(),
    ));
    let http = reqwest::Client::new();

    // Catch-up: from the beginning until an empty page.
    let mut lat = hist();
    let mut events = 0usize;
    let mut pages = 0usize;
    let started = Instant::now();
    let mut url = format!("{base}/v1/feed?limit={LIMIT}");
    loop {
        let t = Instant::now();
        let (n, cursor) = page(&http, &url, &token).await?;
        lat.record(t.elapsed().as_micros() as u64)?;
        events += n;
        pages += 1;
        if n == 0 {
            break;
        }
        url = format!("{base}/v1/feed?limit={LIMIT}&cursor={cursor}");
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "catch-up: {events} events in {pages} pages, {secs:.1} s = {:.0} events/s; page p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        events as f64 / secs,
        ms(lat.value_at_quantile(0.5)),
        ms(lat.value_at_quantile(0.99)),
        ms(lat.max()),
    );
    if events as u64 != rows {
        bail!("read {events} events, expected {rows}");
    }

    // At the tail: polls that find nothing new (wait=0).
    let mut tail = hist();
    for _ in 0..50 {
        let t = Instant::now();
        let (n, _) = page(&http, &url, &token).await?;
        tail.record(t.elapsed().as_micros() as u64)?;
        if n != 0 {
            bail!("new events at the tail");
        }
    }
    println!(
        "tail poll (caught up, nothing new): p50 {:.1} ms, p99 {:.1} ms",
        ms(tail.value_at_quantile(0.5)),
        ms(tail.value_at_quantile(0.99)),
    );
    server.abort();
    if env("BENCH_KEEP", "") != "1" {
        client
            .query(&format!("DROP DATABASE IF EXISTS {}", ch.database))
            .execute()
            .await?;
    }
    tokio::time::sleep(Duration::from_millis(10)).await;
    Ok(())
}
