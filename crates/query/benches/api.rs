//! Query API benchmark: 10M events across 1,000 workspaces (generated in ClickHouse with
//! `INSERT ... SELECT FROM numbers()`), then first-page and deep-page latency through the real
//! API (axum on a TCP listener, reqwest client) and the same SQL sent raw to ClickHouse's HTTP
//! interface, for both duplicate strategies (FINAL, LIMIT 1 BY), and 200 concurrent requests.
//!
//! ```text
//! STACK_PROFILE=test deploy/local/stack.sh up
//! cargo bench -p auditlog-query --bench api
//! ```
//! Environment: `BENCH_CLICKHOUSE_URL` (default the test stack, `http://127.0.0.1:18123`),
//! `BENCH_ROWS` (default 10000000), `BENCH_DATABASE` (default `bench_query_api`),
//! `BENCH_KEEP=1` keeps the database (a later run with the same row count reuses it),
//! `BENCH_ITERS` (default 300 sequential requests per measurement). `BENCH_CLUSTER=1`: the
//! same on a private 2-replica cluster with ZooKeeper (`auditlog_testkit::PrivateCluster`,
//! `clickhouse.cluster` and a failover URL set; reads through the `Distributed` table) instead
//! of `BENCH_CLICKHOUSE_URL`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};
use auditlog_query::api::serve::{serve, Limits};
use auditlog_query::api::{app, AppState};
use auditlog_query::cursor::Cursor;
use auditlog_query::filter::Order;
use auditlog_query::params::Params;
use auditlog_query::{sql, ApiConfig, Dedup, Filter};
use auditlog_store::ClickHouseConfig;
use hdrhistogram::Histogram;

const WORKSPACES: u64 = 1000;
const DAY_MS: i64 = 86_400_000;

fn env(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

/// Generates `rows` events over the last 90 days. Workspace sizes are skewed (ws_0 is the
/// largest, about 3% of all events), event types and actor types follow a long tail.
async fn generate(ch: &ClickHouseConfig, rows: u64) -> Result<()> {
    let client = ch.client();
    let have: u64 = client
        .query("SELECT count() FROM events")
        .fetch_one()
        .await
        .context("count events")?;
    // ReplacingMergeTree may collapse a handful of generated rows; 1% slack.
    if have >= rows - rows / 100 && have <= rows {
        println!("reusing {have} rows in {}", ch.database);
        return Ok(());
    }
    let layout = ch.layout();
    if have > 0 {
        let (table, on_cluster) = (layout.events_rows(), layout.on_cluster());
        client
            .query(&format!("TRUNCATE TABLE {table}{on_cluster} SYNC"))
            .execute()
            .await?;
    }
    let start = Instant::now();
    let chunk = 1_000_000u64;
    let chunks = rows.div_ceil(chunk);
    let mut done = 0;
    while done < rows {
        let n = chunk.min(rows - done);
        let sql = format!(
            "INSERT INTO events (event_id, workspace_id, bucket, event, time, inserted_at, actor_type, \
               actor_id, actor_name, actor_meta, target_types, target_ids, target_names, targets, \
               description, remote_ip, user_agent, location, request, response, outcome, \
               failure_reason, correlation_id, version, retention_days, kafka_partition, kafka_offset) \
             SELECT \
               generateUUIDv7(n) AS event_id, \
               concat('ws_', toString(toUInt32(floor({WORKSPACES} * pow((cityHash64(n, 1) % 1000000) / 1000000, 2))))) AS workspace_id, \
               if(n % 10 = 0, 'billing', 'default') AS bucket, \
               ['key.create','key.create','key.create','key.update','key.delete','key.verify_failed', \
                'api.create','api.update','permission.create','permission.delete','role.create', \
                'role.update','ratelimit.update','member.invite','workspace.update'][1 + cityHash64(n, 2) % 15] AS event, \
               fromUnixTimestamp64Milli(toInt64(toUnixTimestamp64Milli(now64(3)) - {span} + {offset} + (cityHash64(n, 3) % {slice})), 'UTC') AS time, \
               now64(3) AS inserted_at, \
               multiIf(cityHash64(n, 4) % 20 < 14, 'user', cityHash64(n, 4) % 20 < 19, 'root_key', 'system') AS actor_type, \
               concat('actor_', toString(cityHash64(n, 5) % 50)) AS actor_id, \
               concat('Actor ', toString(cityHash64(n, 5) % 50)) AS actor_name, \
               '' AS actor_meta, \
               ['key'] AS target_types, \
               [concat('key_', toString(cityHash64(n, 6) % 5000))] AS target_ids, \
               [concat('Key ', toString(cityHash64(n, 6) % 5000))] AS target_names, \
               concat('[{{\"type\":\"key\",\"id\":\"key_', toString(cityHash64(n, 6) % 5000), '\",\"name\":\"Key\"}}]') AS targets, \
               concat('Changed key key_', toString(cityHash64(n, 6) % 5000), ' in api_', toString(n % 37)) AS description, \
               concat('10.', toString(n % 255), '.', toString(cityHash64(n, 7) % 255), '.1') AS remote_ip, \
               'Mozilla/5.0 (X11; Linux x86_64) dashboard/1.0' AS user_agent, \
               '' AS location, \
               concat('{{\"name\":\"key ', toString(n), '\",\"expires\":null,\"ratelimit\":{{\"limit\":100,\"duration\":60000}},\"meta\":{{\"team\":\"payments\"}}}}') AS request, \
               concat('{{\"keyId\":\"key_', toString(n), '\",\"ok\":true}}') AS response, \
               if(cityHash64(n, 8) % 50 = 0, 'failure', 'success') AS outcome, \
               if(cityHash64(n, 8) % 50 = 0, 'permission denied', '') AS failure_reason, \
               if(n % 4 = 0, concat('req_', toString(intDiv(n, 4))), '') AS correlation_id, \
               1 AS version, 90 AS retention_days, toInt32(n % 6) AS kafka_partition, toInt64(n) AS kafka_offset \
             FROM (SELECT number + {done} AS n FROM numbers({n}))",
            span = 90 * DAY_MS,
            // Chunk k covers the k-th slice of the 90 days: rows arrive in time order, as
            // the consumer writes them, so recent events sit in recent parts.
            slice = 90 * DAY_MS / chunks as i64,
            offset = 90 * DAY_MS / chunks as i64 * (done / chunk) as i64,
        );
        client
            .query(&sql)
            .with_setting("max_execution_time", "0")
            .execute()
            .await
            .context("generate events")?;
        done += n;
        println!(
            "  generated {done} rows ({:.0} s)",
            start.elapsed().as_secs_f64()
        );
    }
    // Every workspace on Pro (90 days), written directly (no mutation needed: rows say 90).
    client
        .query(&format!(
            "INSERT INTO workspace_plans (workspace_id, plan, retention_days, updated_at) \
             SELECT concat('ws_', toString(number)), 'pro', 90, now64(3) FROM numbers({WORKSPACES})"
        ))
        .execute()
        .await?;
    println!(
        "generated {rows} rows in {:.0} s",
        start.elapsed().as_secs_f64()
    );
    settle(&client, layout.events_rows()).await
}

/// Waits (at most 10 minutes) until ClickHouse's background merges of the events table are
/// done, as they would be on a server that has been ingesting for a while.
async fn settle(client: &clickhouse::Client, table: &str) -> Result<()> {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(600) {
        // Merges are scheduled a moment after an insert: look, then look again.
        tokio::time::sleep(Duration::from_secs(5)).await;
        let merging: u64 = client
            .query("SELECT count() FROM system.merges WHERE database = currentDatabase() AND table = ?")
            .bind(table)
            .fetch_one()
            .await?;
        if merging == 0 {
            break;
        }
    }
    println!(
        "background merges settled after {:.0} s",
        start.elapsed().as_secs_f64()
    );
    Ok(())
}

struct Measure {
    api: Histogram<u64>,
    raw: Histogram<u64>,
}

fn hist() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3).unwrap_or_else(|_| unreachable!())
}

fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

fn report(name: &str, m: &Measure) -> String {
    let line = format!(
        "| {name} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} |",
        ms(m.api.value_at_quantile(0.5)),
        ms(m.api.value_at_quantile(0.99)),
        ms(m.raw.value_at_quantile(0.5)),
        ms(m.raw.value_at_quantile(0.99)),
        1.2 * ms(m.raw.value_at_quantile(0.99)) + 2.0,
    );
    println!("{line}");
    line
}

/// Sends `sql` to ClickHouse's HTTP interface exactly as the API would (same text, same
/// parameters, RowBinaryWithNamesAndTypes), reading the whole answer.
async fn raw(http: &reqwest::Client, ch: &ClickHouseConfig, q: &sql::Sql) -> Result<usize> {
    let mut params = q.http_params();
    params.push(("database".into(), ch.database.clone()));
    let resp = http
        .post(&ch.url)
        .query(&params)
        .body(format!("{} FORMAT RowBinaryWithNamesAndTypes", q.text))
        .send()
        .await?;
    if !resp.status().is_success() {
        bail!("raw query: {}", resp.text().await?);
    }
    Ok(resp.bytes().await?.len())
}

async fn api_get(http: &reqwest::Client, url: &str, token: &str) -> Result<serde_json::Value> {
    let resp = http.get(url).bearer_auth(token).send().await?;
    let status = resp.status();
    let body: serde_json::Value = resp.json().await?;
    if !status.is_success() {
        bail!("{url}: {status} {body}");
    }
    Ok(body)
}

#[tokio::main]
async fn main() -> Result<()> {
    let rows: u64 = env("BENCH_ROWS", "10000000").parse()?;
    let iters: usize = env("BENCH_ITERS", "300").parse()?;
    let database = env("BENCH_DATABASE", "bench_query_api");
    let cluster = if env("BENCH_CLUSTER", "") == "1" {
        println!("starting a private cluster ...");
        let c = tokio::task::spawn_blocking(auditlog_testkit::PrivateCluster::start).await??;
        Some(c)
    } else {
        None
    };
    let ch = match &cluster {
        Some(c) => c.config(&database),
        None => ClickHouseConfig {
            url: env("BENCH_CLICKHOUSE_URL", "http://127.0.0.1:18123"),
            database,
            ..ClickHouseConfig::default()
        },
    };
    auditlog_store::migrate(&ch).await.context("migrate")?;
    generate(&ch, rows).await?;
    let client = ch.client();
    let ws = "ws_0";
    let ws_rows: u64 = client
        .query("SELECT count() FROM events WHERE workspace_id = {ws:String}")
        .param("ws", ws)
        .fetch_one()
        .await?;
    let parts: u64 = client
        .query("SELECT count() FROM system.parts WHERE database = currentDatabase() AND table = ? AND active")
        .bind(ch.layout().events_rows())
        .fetch_one()
        .await?;
    println!("{ws}: {ws_rows} events; events table has {parts} active parts");

    let since = chrono::Utc::now().timestamp_millis() - 30 * DAY_MS;
    let query = format!("event=key.create&since={since}&limit=50");
    let filter = Filter::from_params(&Params::parse(Some(&query))?)?;
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .build()?;
    let mut table = vec![
        "| measurement | API p50 ms | API p99 ms | raw p50 ms | raw p99 ms | target API p99 (1.2 x raw + 2) |".to_owned(),
        "|---|---|---|---|---|---|".to_owned(),
    ];

    for dedup in [Dedup::LimitBy, Dedup::Final] {
        // FINAL is much slower here (see BENCHMARKS.md): fewer samples.
        let iters = if dedup == Dedup::Final {
            iters / 5
        } else {
            iters
        };
        let cfg = ApiConfig {
            dedup,
            admin_token: "bench-admin-token-0123456789".into(),
            ..ApiConfig::default()
        };
        let state = AppState::new(
            &cfg,
            ch.client(),
            auditlog_testkit::prometheus(auditlog_query::api::metrics::HISTOGRAM_BUCKETS),
        );
        let token = state.tokens.create(ws, "bench").await?.token;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let base = format!("http://{}", listener.local_addr()?);
        let limits = Limits::from_config(&cfg);
        let server = tokio::spawn(serve(listener, app(state), limits, std::future::pending()));
        let first_url = format!("{base}/v1/events?{query}");
        // Walk 200 pages deep (10,000 events in); the last row seen is the deep position.
        let mut cursor = String::new();
        let mut last = serde_json::Value::Null;
        for _ in 0..200 {
            let url = if cursor.is_empty() {
                first_url.clone()
            } else {
                format!("{first_url}&cursor={cursor}")
            };
            let page = api_get(&http, &url, &token).await?;
            last = page["data"][49].clone();
            match page["next_cursor"].as_str() {
                Some(c) => cursor = c.to_owned(),
                None => bail!("{ws} has fewer than 10,000 matching events"),
            }
        }
        let deep_url = format!("{first_url}&cursor={cursor}");
        // The same position for the raw query (the cursor itself is opaque).
        let pos = Cursor {
            order: Order::Desc,
            time_ms: chrono::DateTime::parse_from_rfc3339(last["time"].as_str().unwrap_or(""))?
                .timestamp_millis(),
            event_id: last["event_id"].as_str().unwrap_or("").parse()?,
            fingerprint: filter.fingerprint(ws),
        };
        // The statement the API runs for a full page.
        let page_sql = |after: Option<&Cursor>| {
            let page = sql::PageQuery {
                ws,
                filter: &filter,
                order: Order::Desc,
                limit: 50,
                after,
            };
            sql::list_first(&page, dedup)
        };
        let first_sql = page_sql(None);
        let deep_sql = page_sql(Some(&pos));
        for (name, url, q) in [
            ("first page", &first_url, &first_sql),
            ("page 201", &deep_url, &deep_sql),
        ] {
            let mut m = Measure {
                api: hist(),
                raw: hist(),
            };
            // Warm up, then alternate API and raw so both see the same cache state.
            for _ in 0..20 {
                api_get(&http, url, &token).await?;
                raw(&http, &ch, q).await?;
            }
            for _ in 0..iters {
                let t = Instant::now();
                api_get(&http, url, &token).await?;
                m.api.record(t.elapsed().as_micros() as u64)?;
                let t = Instant::now();
                raw(&http, &ch, q).await?;
                m.raw.record(t.elapsed().as_micros() as u64)?;
            }
            table.push(report(&format!("{name}, {dedup:?}"), &m));
        }
        // 200 concurrent requests, 5 rounds: each a first page of a random workspace's
        // key.create events over 30 days (tokens of 200 workspaces).
        if dedup == Dedup::LimitBy {
            let mut tokens = Vec::new();
            let tk = auditlog_query::tokens::Tokens::new(ch.client(), Duration::ZERO);
            for i in 0..200 {
                tokens.push(tk.create(&format!("ws_{i}"), "bench").await?.token);
            }
            let tokens = Arc::new(tokens);
            let mut lat = hist();
            let mut errors = 0usize;
            let start = Instant::now();
            for _round in 0..5 {
                let mut tasks = Vec::new();
                for i in 0..200 {
                    let http = http.clone();
                    let url = first_url.clone();
                    let tokens = tokens.clone();
                    tasks.push(tokio::spawn(async move {
                        let t = Instant::now();
                        let ok = api_get(&http, &url, &tokens[i]).await.is_ok();
                        (ok, t.elapsed().as_micros() as u64)
                    }));
                }
                for t in tasks {
                    let (ok, us) = t.await?;
                    if !ok {
                        errors += 1;
                    }
                    lat.record(us)?;
                }
            }
            let line = format!(
                "| 200 concurrent x 5 rounds (1000 requests, 200 workspaces), LimitBy | p50 {:.1} ms | p99 {:.1} ms | {:.0} req/s | errors: {errors} | |",
                ms(lat.value_at_quantile(0.5)),
                ms(lat.value_at_quantile(0.99)),
                1000.0 / start.elapsed().as_secs_f64(),
            );
            println!("{line}");
            table.push(line);
        }
        server.abort();
    }
    println!("\n{}", table.join("\n"));
    // A private cluster goes away with its data.
    if std::env::var("BENCH_KEEP").is_err() && cluster.is_none() {
        ch.server_client()
            .query(&format!("DROP DATABASE IF EXISTS `{}`", ch.database))
            .execute()
            .await?;
        println!("dropped {}", ch.database);
    }
    Ok(())
}
