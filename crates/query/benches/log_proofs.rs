//! Log proof benchmark: inclusion proofs of random events and consistency proofs between
//! random tree sizes of one big workspace log, through the real API (axum on a TCP listener,
//! reqwest client, one request at a time). Prints p50/p99/max per kind; the issue's target is
//! p99 under 20 ms on a 10M-leaf log. Every inclusion proof is verified against the
//! checkpoint's root (`auditlog_tlog::merkle::verify_inclusion`).
//!
//! Data, synthetic but real: leaf `i` of workspace `ws_log_bench` has a deterministic event id
//! and time and the leaf hash of its leaf data (`auditlog_tlog::LeafData`); the tiles are the
//! `Appender`'s, written as the sequencer writes them (partial tiles rewritten as they widen);
//! one signed checkpoint covers every leaf. No `events` rows: proofs do not read them.
//!
//! ```text
//! STACK_PROFILE=test deploy/local/stack.sh up
//! cargo bench -p auditlog-query --bench log_proofs                              # 1M leaves
//! BENCH_LEAVES=10000000 cargo bench -p auditlog-query --bench log_proofs        # the issue's 10M
//! ```
//! Environment: `BENCH_CLICKHOUSE_URL` (default the test stack, `http://127.0.0.1:18123`),
//! `BENCH_LEAVES` (default 1000000), `BENCH_REQUESTS` (per kind, default 2000),
//! `BENCH_DATABASE` (default `bench_log_<leaves>`), `BENCH_KEEP=1` keeps the database (a later
//! run reuses it).

use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};
use auditlog_query::api::serve::{serve, Limits};
use auditlog_query::api::{app, AppState};
use auditlog_query::ApiConfig;
use auditlog_store::log::rows::{CheckpointRow, LeafRow, TileRow};
use auditlog_store::ClickHouseConfig;
use auditlog_tlog::merkle::{verify_inclusion, Hash};
use auditlog_tlog::{Appender, Checkpoint, KeyKind, LeafData, Note, Signer};
use base64::Engine as _;
use hdrhistogram::Histogram;
use rand::Rng as _;
use uuid::Uuid;

const WS: &str = "ws_log_bench";
/// Leaves per INSERT.
const CHUNK: u64 = 1_000_000;
/// Event time of leaf 0, epoch ms; leaf `i` is 10 ms later per index.
const T0: i64 = 1_767_225_600_000;

fn env(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

fn event_id(i: u64) -> Uuid {
    Uuid::from_u128(0x0190_f3b2_7c1e_7000_8000_0000_0000_0000 | u128::from(i))
}

fn leaf_data(i: u64) -> LeafData {
    use sha2::Digest as _;
    LeafData {
        event_id: event_id(i).to_string(),
        time_ms: T0 + i as i64 * 10,
        content_sha256: sha2::Sha256::digest(i.to_be_bytes()).into(),
    }
}

fn tile_rows(tiles: Vec<auditlog_tlog::Tile>, version: i64) -> Vec<TileRow> {
    tiles
        .into_iter()
        .map(|t| TileRow {
            workspace_id: WS.into(),
            tile_level: t.id.level,
            tile_index: t.id.index,
            width: t.hashes.len() as u16,
            hashes: t.to_bytes(),
            written_at: version,
        })
        .collect()
}

/// The log of `leaves` leaves with one checkpoint; returns its root (reused when present).
async fn generate(client: &clickhouse::Client, leaves: u64) -> Result<Hash> {
    let have: Option<CheckpointRow> =
        auditlog_store::log::read::latest_checkpoint(client, WS).await?;
    if let Some(cp) = have.filter(|c| c.tree_size == leaves) {
        println!("reusing the log of {leaves} leaves");
        return Ok(cp.root_hash);
    }
    for t in [
        "log_leaves",
        "log_leaves_by_event",
        "log_tiles",
        "log_checkpoints",
    ] {
        client
            .query(&format!("TRUNCATE TABLE {t}"))
            .execute()
            .await?;
    }
    let started = Instant::now();
    let mut appender = Appender::new();
    let mut version = 1_000i64;
    let mut start = 0;
    while start < leaves {
        let end = leaves.min(start + CHUNK);
        let mut ins = client
            .insert::<LeafRow>("log_leaves")
            .await?
            .with_timeouts(None, None);
        for i in start..end {
            let data = leaf_data(i);
            let hash = data.leaf_hash();
            appender.append(hash);
            ins.write(&LeafRow {
                workspace_id: WS.into(),
                leaf_index: i,
                event_id: event_id(i),
                time: data.time_ms,
                content_sha256: data.content_sha256,
                leaf_hash: hash,
                kafka_partition: 0,
                kafka_offset: i as i64,
                sequenced_at: version,
            })
            .await?;
        }
        ins.end().await.context("insert leaves")?;
        version += 1;
        let mut tiles = client.insert::<TileRow>("log_tiles").await?;
        for t in tile_rows(appender.take_changed(), version) {
            tiles.write(&t).await?;
        }
        tiles.end().await.context("insert tiles")?;
        start = end;
    }
    let root = appender.root();
    let signer = Signer::generate("bench.example.com", KeyKind::Note)?;
    let text = Checkpoint::new(&format!("bench.example.com/{WS}"), leaves, root, T0).to_text();
    let note = Note {
        signatures: vec![signer.sign_note(&text)?],
        text,
    };
    let mut ins = client.insert::<CheckpointRow>("log_checkpoints").await?;
    ins.write(&CheckpointRow {
        workspace_id: WS.into(),
        tree_size: leaves,
        root_hash: root,
        signed_at: T0,
        key_name: signer.name().into(),
        note: note.to_string(),
    })
    .await?;
    ins.end().await?;
    println!(
        "generated {leaves} leaves and their tiles in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(root)
}

fn hist() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 600_000_000, 3).unwrap_or_else(|_| unreachable!())
}

fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

fn b64d(s: &serde_json::Value) -> Result<Hash> {
    let bytes = base64::engine::general_purpose::STANDARD.decode(s.as_str().unwrap_or_default())?;
    bytes
        .try_into()
        .map_err(|_| anyhow::anyhow!("not a 32-byte hash"))
}

async fn get(http: &reqwest::Client, url: &str, token: &str) -> Result<serde_json::Value> {
    let resp = http.get(url).bearer_auth(token).send().await?;
    let status = resp.status();
    let body: serde_json::Value = resp.json().await?;
    if !status.is_success() {
        bail!("{url}: {status} {body}");
    }
    Ok(body)
}

fn report(what: &str, h: &Histogram<u64>) {
    println!(
        "{what}: {} requests, p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms{}",
        h.len(),
        ms(h.value_at_quantile(0.5)),
        ms(h.value_at_quantile(0.99)),
        ms(h.max()),
        if h.value_at_quantile(0.99) < 20_000 {
            " (target p99 < 20 ms: met)"
        } else {
            " (target p99 < 20 ms: MISSED)"
        }
    );
}

/// Where the time went: every statement the handlers ran against this database since `since`
/// (epoch s), from ClickHouse's `system.query_log`, by normalized text.
async fn statements(client: &clickhouse::Client, since: u32) -> Result<()> {
    client.query("SYSTEM FLUSH LOGS").execute().await?;
    let rows: Vec<(String, u64, f64, f64, f64)> = client
        .query(
            "SELECT substring(normalizeQuery(query), 1, 110) AS q, count(), \
             quantile(0.5)(query_duration_ms), quantile(0.99)(query_duration_ms), avg(read_rows) \
             FROM system.query_log \
             WHERE current_database = currentDatabase() AND type = 'QueryFinish' \
               AND event_time >= toDateTime(?) AND query_kind = 'Select' \
             GROUP BY q ORDER BY count() DESC LIMIT 8",
        )
        .bind(since)
        .fetch_all()
        .await?;
    println!("statements (ClickHouse query_log): count, p50 / p99 ms, rows read");
    for (q, n, p50, p99, read) in rows {
        println!("  {n:>6}  {p50:>5.1} / {p99:>5.1} ms  {read:>9.0} rows  {q}");
    }
    Ok(())
}

#[tokio::main]
async fn main() -> Result<()> {
    let leaves: u64 = env("BENCH_LEAVES", "1000000").parse()?;
    let requests: usize = env("BENCH_REQUESTS", "2000").parse()?;
    if leaves < 2 {
        bail!("BENCH_LEAVES must be at least 2");
    }
    let ch = ClickHouseConfig {
        url: env("BENCH_CLICKHOUSE_URL", "http://127.0.0.1:18123"),
        database: env("BENCH_DATABASE", &format!("bench_log_{leaves}")),
        ..ClickHouseConfig::default()
    };
    auditlog_store::migrate(&ch).await.context("migrate")?;
    let client = ch.client();
    let root = generate(&client, leaves).await?;
    // The inclusion proof's lookup by event (migration 0013), as the sequencer fills it for a
    // log sequenced before it; also for a database kept from an older run.
    let t = Instant::now();
    if auditlog_store::log::write::backfill_leaves_by_event(&client).await? {
        println!(
            "filled log_leaves_by_event in {:.1} s",
            t.elapsed().as_secs_f64()
        );
    }
    for table in ["log_leaves", "log_leaves_by_event", "log_tiles"] {
        let parts: u64 = client
            .query("SELECT count() FROM system.parts WHERE database = currentDatabase() AND table = ? AND active")
            .bind(table)
            .fetch_one()
            .await?;
        println!("{table}: {parts} active parts");
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
    let mut rng = rand::rng();
    let since: u32 = client.query("SELECT toUInt32(now())").fetch_one().await?;
    // Warm-up (connection, token cache, first reads).
    for _ in 0..20 {
        let i = rng.random_range(0..leaves);
        get(
            &http,
            &format!("{base}/v1/log/proof/inclusion?event_id={}", event_id(i)),
            &token,
        )
        .await?;
    }

    let mut incl = hist();
    for _ in 0..requests {
        let i = rng.random_range(0..leaves);
        let url = format!("{base}/v1/log/proof/inclusion?event_id={}", event_id(i));
        let t = Instant::now();
        let body = get(&http, &url, &token).await?;
        incl.record(t.elapsed().as_micros() as u64)?;
        let proof: Vec<Hash> = body["hashes"]
            .as_array()
            .map(|a| a.iter().map(b64d).collect::<Result<_>>())
            .transpose()?
            .unwrap_or_default();
        let leaf = leaf_data(i).leaf_hash();
        verify_inclusion(&leaf, i, leaves, &proof, &root)
            .with_context(|| format!("inclusion proof of leaf {i}"))?;
    }
    report(
        &format!("inclusion proof ({leaves} leaves, random events)"),
        &incl,
    );

    let mut cons = hist();
    for _ in 0..requests {
        let second = rng.random_range(1..=leaves);
        let first = rng.random_range(1..=second);
        let url = format!("{base}/v1/log/proof/consistency?first={first}&second={second}");
        let t = Instant::now();
        let body = get(&http, &url, &token).await?;
        cons.record(t.elapsed().as_micros() as u64)?;
        let n = body["hashes"].as_array().map_or(0, Vec::len);
        if first != second && n == 0 {
            bail!("{url}: an empty proof");
        }
    }
    report(
        &format!("consistency proof ({leaves} leaves, random sizes)"),
        &cons,
    );

    statements(&client, since).await?;
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
