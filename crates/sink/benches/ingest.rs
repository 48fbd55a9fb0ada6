//! End-to-end ingestion benchmark of `auditlog consume` against ClickHouse's own Kafka table
//! engine, on a private broker + ClickHouse (`auditlog_testkit::PrivateStack`), same topic.
//!
//! ```text
//! cargo build --release -p auditlog
//! AUDITLOG_BIN=target/release/auditlog BENCH_EVENTS=200000 cargo bench -p auditlog-sink --bench ingest
//! ```
//!
//! Env: `BENCH_EVENTS` (default 1,000,000), `BENCH_PARTITIONS` (4), `BENCH_LATENCY_SECS` (30),
//! `BENCH_LATENCY_RATE` (5000 events/s), `BENCH_TIMEOUT_SECS` (per phase, 1800),
//! `BENCH_BROKER_STORAGE` (empty: the stack's broker, Tansu with sqlite storage; else a
//! Tansu storage URL such as `memory://tansu/` for a broker of the bench's own on a free port,
//! `tansu` from `PATH` or `~/.cargo/bin`), `BENCH_INFRA=cluster` (every phase into a private 2-replica cluster,
//! `auditlog_testkit::PrivateCluster`: ZooKeeper and two ClickHouse servers, one shard; the
//! database migrated with `clickhouse.cluster`, the consumer given the cluster and the second
//! server as failover; the throughput phase ends when both replicas hold N rows; no peer).
//!
//! `BENCH_CLUSTER=1`: instead, the same topic into a single server and into a 2-replica
//! cluster with ZooKeeper (`auditlog_testkit::PrivateCluster`), `BENCH_ROUNDS` (3) rounds,
//! ratios of throughput (`ingest/cluster.rs`).
//!
//! Phases: (1) pre-produce N events of about 1 KB; (2) our consumer from start until
//! `count() == N`, sampling its RSS every 100 ms; (3) the peer (Kafka engine + materialized view
//! into `events_peer`, a copy of `events`) on the same topic, fresh group, until its count is N;
//! (4) our consumer again while events are emitted at a steady rate with `time` = emit time;
//! emit-to-visible = `inserted_at - time` of each of those rows.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};
use auditlog_event::synth::{Synth, SynthConfig};
use auditlog_store::ClickHouseConfig;
use chrono::{TimeDelta, Utc};
use clickhouse::Client;
use rdkafka::config::ClientConfig;
use rdkafka::producer::{FutureProducer, FutureRecord, Producer as _};

#[path = "ingest/cluster.rs"]
mod cluster;

const MIB: f64 = 1024.0 * 1024.0;

fn env_num(name: &str, default: u64) -> Result<u64> {
    match std::env::var(name) {
        Ok(v) => v
            .parse()
            .with_context(|| format!("{name}={v:?} is not a number")),
        Err(_) => Ok(default),
    }
}

struct Settings {
    events: u64,
    partitions: i32,
    latency_secs: u64,
    latency_rate: u64,
    timeout: Duration,
}

/// What one throughput phase measured.
struct Throughput {
    secs: f64,
    peak_rss_kib: Option<u64>,
    /// CPU seconds used during the phase by: the consumer, the broker, ClickHouse.
    cpu: Cpu,
    /// What ClickHouse did with the table's parts during the phase.
    parts: Option<PartStats>,
    /// The INSERT statements into the table during the phase (ours only).
    inserts: Option<InsertStats>,
}

/// INSERT statements into `events` during a phase (`system.query_log`): their own CPU (not the
/// merges they cause) and latency, for the capacity guide (docs/capacity.md).
#[derive(clickhouse::Row, serde::Deserialize, Clone, Copy)]
struct InsertStats {
    inserts: u64,
    rows: u64,
    /// User + system CPU seconds of those statements.
    cpu: f64,
    p50_ms: f64,
    p99_ms: f64,
}

/// The table's active parts on disk (`system.parts`).
#[derive(clickhouse::Row, serde::Deserialize, Clone, Copy)]
struct DiskStats {
    rows: u64,
    parts: u64,
    bytes_on_disk: u64,
    uncompressed: u64,
}

async fn insert_stats(client: &Client, table: &str, from: i64) -> Result<InsertStats> {
    client.query("SYSTEM FLUSH LOGS").execute().await?;
    Ok(client
        .query(
            "SELECT count() AS inserts, sum(written_rows) AS rows, \
             sum(ProfileEvents['UserTimeMicroseconds'] + ProfileEvents['SystemTimeMicroseconds']) / 1e6 AS cpu, \
             toFloat64(quantile(0.5)(query_duration_ms)) AS p50_ms, \
             toFloat64(quantile(0.99)(query_duration_ms)) AS p99_ms \
             FROM system.query_log \
             WHERE type = 'QueryFinish' AND query_kind = 'Insert' \
               AND has(tables, currentDatabase() || '.' || ?) \
               AND event_time_microseconds >= fromUnixTimestamp64Micro(?)",
        )
        .bind(table)
        .bind(from)
        .fetch_one()
        .await?)
}

async fn disk_stats(client: &Client, table: &str) -> Result<DiskStats> {
    Ok(client
        .query(
            "SELECT sum(rows) AS rows, count() AS parts, sum(bytes_on_disk) AS bytes_on_disk, \
             sum(data_uncompressed_bytes) AS uncompressed \
             FROM system.parts WHERE active AND database = currentDatabase() AND table = ?",
        )
        .bind(table)
        .fetch_one()
        .await?)
}

/// Parts written and merged in one table during a phase (`system.part_log`).
#[derive(clickhouse::Row, serde::Deserialize, Clone, Copy)]
struct PartStats {
    new_parts: u64,
    new_rows: u64,
    merges: u64,
    merged_rows: u64,
    /// User + system CPU seconds of those merges.
    merge_cpu: f64,
}

/// ClickHouse's clock, microseconds since the epoch (part_log is stamped with it).
async fn ch_now_micros(client: &Client) -> Result<i64> {
    Ok(client
        .query("SELECT toUnixTimestamp64Micro(now64(6))")
        .fetch_one::<i64>()
        .await?)
}

/// The part_log summary of `table` between `from` and now (microseconds, ClickHouse's clock).
async fn part_stats(client: &Client, table: &str, from: i64) -> Result<PartStats> {
    client.query("SYSTEM FLUSH LOGS").execute().await?;
    Ok(client
        .query(
            "SELECT countIf(event_type = 'NewPart') AS new_parts, \
             sumIf(rows, event_type = 'NewPart') AS new_rows, \
             countIf(event_type = 'MergeParts') AS merges, \
             sumIf(rows, event_type = 'MergeParts') AS merged_rows, \
             sumIf(ProfileEvents['UserTimeMicroseconds'] + ProfileEvents['SystemTimeMicroseconds'], \
                   event_type = 'MergeParts') / 1e6 AS merge_cpu \
             FROM system.part_log \
             WHERE database = currentDatabase() AND table = ? \
               AND event_time_microseconds >= fromUnixTimestamp64Micro(?)",
        )
        .bind(table)
        .bind(from)
        .fetch_one()
        .await?)
}

/// CPU seconds (user + system) per process during a phase; `None` when not measured.
#[derive(Default, Clone, Copy)]
struct Cpu {
    consumer: Option<f64>,
    broker: f64,
    clickhouse: f64,
    /// The second server of a cluster.
    clickhouse2: Option<f64>,
}

/// User + system CPU seconds of a process so far (`/proc/PID/stat`, 100 ticks/s).
fn cpu_secs(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the `(comm)`: state is field 3, utime 14, stime 15.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(ticks as f64 / 100.0)
}

/// CPU counters of the stack's broker and ClickHouse.
#[derive(Clone, Copy)]
struct StackPids {
    broker: u32,
    clickhouse: u32,
    clickhouse2: Option<u32>,
}

impl StackPids {
    fn snapshot(self) -> (f64, f64, Option<f64>) {
        (
            cpu_secs(self.broker).unwrap_or(f64::NAN),
            cpu_secs(self.clickhouse).unwrap_or(f64::NAN),
            self.clickhouse2.map(|p| cpu_secs(p).unwrap_or(f64::NAN)),
        )
    }

    fn since(self, start: (f64, f64, Option<f64>), consumer: Option<f64>) -> Cpu {
        let now = self.snapshot();
        Cpu {
            consumer,
            broker: now.0 - start.0,
            clickhouse: now.1 - start.1,
            clickhouse2: now.2.zip(start.2).map(|(n, s)| n - s),
        }
    }
}

/// What the bench runs on: a private single server (default) or a private cluster.
enum Infra {
    Single(auditlog_testkit::PrivateStack),
    Cluster(auditlog_testkit::PrivateCluster),
}

impl Infra {
    fn start() -> Result<Self> {
        if std::env::var("BENCH_INFRA").is_ok_and(|v| v == "cluster") {
            eprintln!("starting a private cluster (ZooKeeper, two replicas of one shard) ...");
            return Ok(Self::Cluster(
                auditlog_testkit::PrivateCluster::start().context("start private cluster")?,
            ));
        }
        eprintln!("starting a private stack ...");
        Ok(Self::Single(
            auditlog_testkit::PrivateStack::start().context("start private stack")?,
        ))
    }

    fn brokers(&self) -> String {
        match self {
            Self::Single(s) => s.brokers(),
            Self::Cluster(c) => c.brokers(),
        }
    }

    fn pid(&self, component: &str) -> Result<u32> {
        match self {
            Self::Single(s) => s.pid(component),
            Self::Cluster(c) => c.pid(component),
        }
    }

    /// A migrated database of this name (on a cluster: `ON CLUSTER`, with failover).
    async fn database(&self, name: &str) -> Result<ClickHouseConfig> {
        match self {
            Self::Single(s) => auditlog_testkit::migrated_database(&s.clickhouse_url(), name).await,
            Self::Cluster(c) => {
                let cfg = c.config(name);
                auditlog_store::migrate(&cfg)
                    .await
                    .context("migrate on the cluster")?;
                Ok(cfg)
            }
        }
    }

    /// The second replica's own client and its pid (cluster only).
    fn replica2(&self, ch: &ClickHouseConfig) -> Result<Option<(Client, u32)>> {
        let Self::Cluster(c) = self else {
            return Ok(None);
        };
        let cfg = ClickHouseConfig {
            url: c.clickhouse_urls()[1].clone(),
            database: ch.database.clone(),
            ..ClickHouseConfig::default()
        };
        Ok(Some((cfg.client(), c.pid("clickhouse2")?)))
    }
}

fn main() -> Result<()> {
    // `cargo bench` passes `--bench`; `cargo test --benches` / `--all-targets` does not:
    // there the benchmark (minutes, its own stack) is skipped.
    if !std::env::args().any(|a| a == "--bench") {
        eprintln!("ingest: benchmark only runs under `cargo bench`");
        return Ok(());
    }
    let settings = Settings {
        events: env_num("BENCH_EVENTS", 1_000_000)?,
        partitions: i32::try_from(env_num("BENCH_PARTITIONS", 4)?)?,
        latency_secs: env_num("BENCH_LATENCY_SECS", 30)?,
        latency_rate: env_num("BENCH_LATENCY_RATE", 5_000)?,
        timeout: Duration::from_secs(env_num("BENCH_TIMEOUT_SECS", 1800)?),
    };
    let bin = auditlog_testkit::auditlog_bin();
    if !bin.exists() {
        bail!(
            "{} missing: run `cargo build --release -p auditlog` and set AUDITLOG_BIN",
            bin.display()
        );
    }
    let stack = Infra::start()?;
    let runtime = tokio::runtime::Runtime::new()?;
    let result = if std::env::var("BENCH_CLUSTER").is_ok_and(|v| v == "1") {
        let Infra::Single(single) = &stack else {
            bail!(
                "BENCH_CLUSTER=1 compares a single server with a cluster: leave BENCH_INFRA unset"
            );
        };
        eprintln!("starting a private cluster ...");
        let cluster = auditlog_testkit::PrivateCluster::start().context("start private cluster")?;
        runtime.block_on(cluster::run(single, &cluster, &settings))
    } else {
        runtime.block_on(run(&stack, &settings))
    };
    drop(stack);
    result
}

/// A Tansu broker of the bench's own (killed on drop).
struct OwnBroker {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl OwnBroker {
    fn start(storage: &str) -> Result<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let dir = tempfile::tempdir()?;
        let bin = which_tansu();
        let url = format!("tcp://127.0.0.1:{port}");
        let log = std::fs::File::create(dir.path().join("tansu.log"))?;
        let child = Command::new(&bin)
            .current_dir(dir.path())
            .args(["broker", "--listener-url", &url])
            .args(["--advertised-listener-url", &url])
            .args(["--storage-engine", storage])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .with_context(|| format!("spawn {}", bin.display()))?;
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > deadline {
                bail!("own Tansu broker did not listen on {port}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        eprintln!("own Tansu broker ({storage}) on port {port}");
        Ok(Self {
            child,
            port,
            _dir: dir,
        })
    }
}

impl Drop for OwnBroker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn which_tansu() -> std::path::PathBuf {
    if let Some(p) = std::env::var_os("STACK_TANSU_BIN") {
        return p.into();
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join("tansu"))
        .find(|p| p.exists())
        .unwrap_or_else(|| {
            let home = std::env::var_os("CARGO_HOME")
                .map(std::path::PathBuf::from)
                .unwrap_or_else(|| {
                    std::path::PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
                        .join(".cargo")
                });
            home.join("bin/tansu")
        })
}

async fn run(stack: &Infra, s: &Settings) -> Result<()> {
    let own_broker = match std::env::var("BENCH_BROKER_STORAGE") {
        Ok(storage) if !storage.is_empty() => Some(OwnBroker::start(&storage)?),
        _ => None,
    };
    let (brokers, broker_pid) = match &own_broker {
        Some(b) => (format!("127.0.0.1:{}", b.port), b.child.id()),
        None => (stack.brokers(), stack.pid("broker")?),
    };
    let name = auditlog_testkit::unique_name("bench");
    let topic = format!("{name}_events");
    let dlq_topic = format!("{name}_dlq");
    auditlog_testkit::create_topic_on(&brokers, &topic, s.partitions).await?;
    auditlog_testkit::create_topic_on(&brokers, &dlq_topic, 1).await?;
    let ch = stack.database(&name).await?;
    let client = ch.client();
    let replica2 = stack.replica2(&ch)?;
    let pids = StackPids {
        broker: broker_pid,
        clickhouse: stack.pid("clickhouse")?,
        clickhouse2: replica2.as_ref().map(|r| r.1),
    };
    // The table holding the rows: `events` on one server, `events_local` on a cluster.
    let local = if ch.cluster.is_empty() {
        "events"
    } else {
        "events_local"
    };
    let producer = producer(&brokers)?;

    // 1. Pre-produce N events, times in the past (so phase 4's rows are told apart by time).
    let t0 = Instant::now();
    let bytes = produce(&producer, &topic, s.events).await?;
    let mean_bytes = bytes as f64 / s.events as f64;
    eprintln!(
        "produced {} events ({:.1} MB, mean {mean_bytes:.0} B) in {:.1}s",
        s.events,
        bytes as f64 / 1e6,
        t0.elapsed().as_secs_f64()
    );

    // 2. Our consumer.
    let group = format!("{name}_sink");
    let env = ConsumerEnv {
        brokers: brokers.clone(),
        topic: topic.clone(),
        dlq_topic,
        ch: ch.clone(),
        group,
    };
    let ours = consumer_throughput(&env, &client, replica2.as_ref().map(|r| &r.0), s, pids).await?;
    eprintln!("ours: {:.1}s", ours.secs);
    let disk = disk_stats(&client, local).await.ok();

    // 3. The peer (single server only).
    let peer = if replica2.is_some() {
        None
    } else {
        match peer_throughput(&client, &brokers, &topic, s, pids).await {
            Ok(t) => Some(t),
            Err(e) => {
                eprintln!("PEER FAILED: {e:#}");
                None
            }
        }
    };
    if let Some(p) = &peer {
        eprintln!("peer: {:.1}s", p.secs);
    }
    // Stop the peer consuming (it would compete for CPU with phase 4).
    for q in [
        "DROP TABLE IF EXISTS events_peer_mv",
        "DROP TABLE IF EXISTS kq",
    ] {
        client.query(q).execute().await.context(q)?;
    }

    // 4. Latency at a steady rate, our consumer resuming from its committed offsets.
    let latency = latency_phase(&producer, &env, &client, s).await?;

    // 5. Report.
    report(s, mean_bytes, &ours, peer.as_ref(), &latency);
    capacity_report(s, &ours, disk);
    Ok(())
}

/// The producer of the pre-produced events: idempotent, acks=all, lz4.
fn producer(brokers: &str) -> Result<FutureProducer> {
    ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("compression.type", "lz4")
        .set("linger.ms", "5")
        .set("queue.buffering.max.messages", "100000")
        .create()
        .context("producer")
}

/// Sends N synthetic ~1 KB events (times a day in the past); returns the payload bytes.
async fn produce(producer: &FutureProducer, topic: &str, n: u64) -> Result<u64> {
    let mut synth = Synth::new(SynthConfig {
        seed: 1,
        workspaces: 50,
        now: Utc::now() - TimeDelta::days(1),
        spread: TimeDelta::hours(1),
        target_bytes: Some(1024),
        ..SynthConfig::default()
    });
    let mut bytes = 0u64;
    let mut pending = Vec::with_capacity(10_000);
    for _ in 0..n {
        let event = synth.next_event();
        let payload = serde_json::to_vec(&event)?;
        bytes += payload.len() as u64;
        pending.push(send(producer, topic, &event.workspace_id, payload).await?);
        if pending.len() == 10_000 {
            await_all(&mut pending).await?;
        }
    }
    await_all(&mut pending).await?;
    Ok(bytes)
}

type Delivery = rdkafka::producer::DeliveryFuture;

/// Enqueues one message, waiting while the local queue is full.
async fn send(
    producer: &FutureProducer,
    topic: &str,
    key: &str,
    payload: Vec<u8>,
) -> Result<Delivery> {
    loop {
        match producer.send_result(FutureRecord::to(topic).key(key).payload(&payload)) {
            Ok(d) => return Ok(d),
            Err((
                rdkafka::error::KafkaError::MessageProduction(
                    rdkafka::types::RDKafkaErrorCode::QueueFull,
                ),
                _,
            )) => tokio::time::sleep(Duration::from_millis(1)).await,
            Err((e, _)) => return Err(e).context("produce"),
        }
    }
}

async fn await_all(pending: &mut Vec<Delivery>) -> Result<()> {
    for d in pending.drain(..) {
        d.await
            .context("delivery canceled")?
            .map_err(|(e, _)| e)
            .context("delivery failed")?;
    }
    Ok(())
}

struct ConsumerEnv {
    brokers: String,
    topic: String,
    dlq_topic: String,
    ch: ClickHouseConfig,
    group: String,
}

impl ConsumerEnv {
    fn target(&self) -> auditlog_testkit::AuditlogTarget<'_> {
        auditlog_testkit::AuditlogTarget {
            brokers: &self.brokers,
            topic: &self.topic,
            dlq_topic: &self.dlq_topic,
            clickhouse_url: &self.ch.url,
            database: &self.ch.database,
            group_id: &self.group,
        }
    }

    fn spawn(&self, tag: &str) -> Result<Child> {
        let log = std::env::temp_dir().join(format!("{}_{tag}.log", self.group));
        let file = std::fs::File::create(&log)?;
        eprintln!("consumer {tag}: log {}", log.display());
        Command::new(auditlog_testkit::auditlog_bin())
            .arg("consume")
            .envs(self.target().vars())
            .envs(auditlog_testkit::cluster_vars(&self.ch))
            .env("AUDITLOG_CONSUMER__METRICS_LISTEN", "")
            // ClickHouse is on this host (and the peer runs inside it): no transport
            // compression, as documented for a same-host ClickHouse.
            .env("AUDITLOG_CLICKHOUSE__COMPRESSION", "none")
            .env("RUST_LOG", "info,librdkafka=warn")
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .context("spawn auditlog consume")
    }
}

async fn count(client: &Client, sql: &str) -> Result<u64> {
    client.query(sql).fetch_one::<u64>().await.context("count")
}

/// VmRSS of a process in KiB.
fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Polls every 100 ms until `sql` counts `target`; samples `pid`'s RSS meanwhile.
async fn wait_for_count(
    client: &Client,
    sql: &str,
    target: u64,
    child: Option<&mut Child>,
    timeout: Duration,
) -> Result<Option<u64>> {
    let start = Instant::now();
    let mut peak = None;
    let mut child = child;
    let mut last_count_at = Instant::now() - Duration::from_secs(1);
    loop {
        if let Some(c) = child.as_deref_mut() {
            if let Some(status) = c.try_wait()? {
                bail!("consumer exited: {status}");
            }
            if let Some(r) = rss_kib(c.id()) {
                peak = Some(peak.map_or(r, |p: u64| p.max(r)));
            }
        }
        if last_count_at.elapsed() >= Duration::from_millis(100) {
            last_count_at = Instant::now();
            let n = count(client, sql).await?;
            if n >= target {
                return Ok(peak);
            }
            if start.elapsed() > timeout {
                bail!("timed out at {n} of {target} rows ({sql})");
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn consumer_throughput(
    env: &ConsumerEnv,
    client: &Client,
    replica2: Option<&Client>,
    s: &Settings,
    pids: StackPids,
) -> Result<Throughput> {
    let since = ch_now_micros(client).await?;
    let stack_cpu = pids.snapshot();
    let start = Instant::now();
    let mut child = env.spawn("throughput")?;
    let result = wait_for_count(
        client,
        "SELECT count() FROM events",
        s.events,
        Some(&mut child),
        s.timeout,
    )
    .await;
    let secs = start.elapsed().as_secs_f64();
    // On a cluster: until the second replica has fetched every part too.
    if let Some(r2) = replica2 {
        let sql = "SELECT count() FROM events_local";
        wait_for_count(r2, sql, s.events, None, s.timeout).await?;
        eprintln!(
            "replica 2 complete {:.1}s after replica 1",
            start.elapsed().as_secs_f64() - secs
        );
    }
    let cpu = pids.since(stack_cpu, cpu_secs(child.id()));
    stop(&mut child);
    let local = if replica2.is_some() {
        "events_local"
    } else {
        "events"
    };
    let parts = part_stats(client, local, since).await.ok();
    let inserts = insert_stats(client, "events", since).await.ok();
    Ok(Throughput {
        secs,
        peak_rss_kib: result?,
        cpu,
        parts,
        inserts,
    })
}

/// SIGTERM (graceful shutdown), then wait.
fn stop(child: &mut Child) {
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status();
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// The materialized view mapping the wire JSON to the same columns the sink writes
/// (retention: no plans exist, so every workspace is on Free, 7 days, as in the sink).
const PEER_MV: &str = "CREATE MATERIALIZED VIEW events_peer_mv TO events_peer AS
SELECT
    toUUID(JSONExtractString(raw, 'event_id')) AS event_id,
    JSONExtractString(raw, 'workspace_id') AS workspace_id,
    if(JSONHas(raw, 'bucket'), JSONExtractString(raw, 'bucket'), 'default') AS bucket,
    JSONExtractString(raw, 'event') AS event,
    parseDateTime64BestEffort(JSONExtractString(raw, 'time'), 3, 'UTC') AS time,
    JSONExtractString(raw, 'actor', 'type') AS actor_type,
    JSONExtractString(raw, 'actor', 'id') AS actor_id,
    JSONExtractString(raw, 'actor', 'name') AS actor_name,
    JSONExtractRaw(raw, 'actor', 'meta') AS actor_meta,
    arrayMap(t -> JSONExtractString(t, 'type'), JSONExtractArrayRaw(raw, 'targets')) AS target_types,
    arrayMap(t -> JSONExtractString(t, 'id'), JSONExtractArrayRaw(raw, 'targets')) AS target_ids,
    arrayMap(t -> JSONExtractString(t, 'name'), JSONExtractArrayRaw(raw, 'targets')) AS target_names,
    JSONExtractRaw(raw, 'targets') AS targets,
    JSONExtractString(raw, 'description') AS description,
    JSONExtractString(raw, 'context', 'remote_ip') AS remote_ip,
    JSONExtractString(raw, 'context', 'user_agent') AS user_agent,
    JSONExtractString(raw, 'context', 'location') AS location,
    JSONExtractRaw(raw, 'request') AS request,
    JSONExtractRaw(raw, 'response') AS response,
    JSONExtractString(raw, 'outcome', 'status') AS outcome,
    JSONExtractString(raw, 'outcome', 'reason') AS failure_reason,
    JSONExtractString(raw, 'correlation_id') AS correlation_id,
    toUInt16(JSONExtractUInt(raw, 'version')) AS version,
    toUInt32(7) AS retention_days,
    toInt32(_partition) AS kafka_partition,
    toInt64(_offset) AS kafka_offset
FROM kq";

async fn peer_throughput(
    client: &Client,
    brokers: &str,
    topic: &str,
    s: &Settings,
    pids: StackPids,
) -> Result<Throughput> {
    client
        .query("CREATE TABLE events_peer AS events")
        .execute()
        .await
        .context("create events_peer")?;
    let consumers = s.partitions.clamp(1, 2);
    let kq = format!(
        "CREATE TABLE kq (raw String) ENGINE = Kafka SETTINGS \
         kafka_broker_list = '{brokers}', kafka_topic_list = '{topic}', \
         kafka_group_name = '{topic}_peer', kafka_format = 'JSONAsString', \
         kafka_num_consumers = {consumers}, kafka_thread_per_consumer = 1, \
         kafka_flush_interval_ms = 1000"
    );
    let since = ch_now_micros(client).await?;
    let stack_cpu = pids.snapshot();
    let start = Instant::now();
    client.query(&kq).execute().await.context("create kq")?;
    client
        .query(PEER_MV)
        .execute()
        .await
        .context("create events_peer_mv")?;
    wait_for_count(
        client,
        "SELECT count() FROM events_peer",
        s.events,
        None,
        s.timeout,
    )
    .await?;
    let secs = start.elapsed().as_secs_f64();
    let cpu = pids.since(stack_cpu, None);
    let parts = part_stats(client, "events_peer", since).await.ok();
    // Same rows? Compare a checksum of every written column over both tables.
    let a = auditlog_testkit::content_checksum(client, "events", true).await?;
    let b = auditlog_testkit::content_checksum(client, "events_peer", true).await?;
    if a == b {
        eprintln!("peer rows identical to ours (checksum over all mapped columns)");
    } else {
        eprintln!("WARNING: peer rows differ from ours (checksum {a} vs {b})");
    }
    Ok(Throughput {
        secs,
        peak_rss_kib: None,
        cpu,
        parts,
        inserts: None,
    })
}

struct Latency {
    sent: u64,
    secs: f64,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
    peak_rss_kib: Option<u64>,
}

#[derive(clickhouse::Row, serde::Deserialize)]
struct Quantiles {
    p50: f64,
    p99: f64,
    max: f64,
}

async fn latency_phase(
    producer: &FutureProducer,
    env: &ConsumerEnv,
    client: &Client,
    s: &Settings,
) -> Result<Latency> {
    let mut child = env.spawn("latency")?;
    // Let the consumer join its group before the clock starts.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let phase_start = Utc::now();
    let mut synth = Synth::new(SynthConfig {
        seed: 2,
        workspaces: 50,
        target_bytes: Some(1024),
        ..SynthConfig::default()
    });
    let total = s.latency_rate * s.latency_secs;
    let per_tick = (s.latency_rate / 100).max(1);
    let mut tick = tokio::time::interval(Duration::from_millis(10));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let start = Instant::now();
    let mut sent = 0u64;
    let mut pending = Vec::new();
    let mut peak: Option<u64> = None;
    while sent < total {
        tick.tick().await;
        for _ in 0..per_tick.min(total - sent) {
            let mut event = synth.next_event();
            event.time = Utc::now();
            let payload = serde_json::to_vec(&event)?;
            pending.push(send(producer, &env.topic, &event.workspace_id, payload).await?);
            sent += 1;
        }
        if sent % s.latency_rate < per_tick {
            if let Some(r) = rss_kib(child.id()) {
                peak = Some(peak.map_or(r, |p| p.max(r)));
            }
            if let Some(status) = child.try_wait()? {
                bail!("consumer exited: {status}");
            }
        }
        if pending.len() >= 10_000 {
            // Deliveries of a second ago: already done, this does not stall the pacing.
            let old: Vec<_> = pending.drain(..5_000).collect();
            let mut old = old;
            await_all(&mut old).await?;
        }
    }
    let secs = start.elapsed().as_secs_f64();
    producer
        .flush(Duration::from_secs(30))
        .context("flush producer")?;
    await_all(&mut pending).await?;
    let since = phase_start.timestamp_millis() - 1_000;
    let visible_sql = format!(
        "SELECT count() FROM events WHERE time >= fromUnixTimestamp64Milli({since}, 'UTC')"
    );
    let waited = wait_for_count(client, &visible_sql, total, Some(&mut child), s.timeout).await;
    stop(&mut child);
    let rss_tail = waited?;
    let peak = match (peak, rss_tail) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    };
    let q: Quantiles = client
        .query(&format!(
            "SELECT toFloat64(quantileExact(0.5)(d)) AS p50, toFloat64(quantileExact(0.99)(d)) AS p99, \
             toFloat64(max(d)) AS max FROM (SELECT toUnixTimestamp64Milli(inserted_at) - \
             toUnixTimestamp64Milli(time) AS d FROM events \
             WHERE time >= fromUnixTimestamp64Milli({since}, 'UTC'))"
        ))
        .fetch_one()
        .await
        .context("latency quantiles")?;
    Ok(Latency {
        sent,
        secs,
        p50_ms: q.p50,
        p99_ms: q.p99,
        max_ms: q.max,
        peak_rss_kib: peak,
    })
}

fn report(
    s: &Settings,
    mean_bytes: f64,
    ours: &Throughput,
    peer: Option<&Throughput>,
    lat: &Latency,
) {
    let rate = |t: &Throughput| s.events as f64 / t.secs;
    let mbs = |t: &Throughput| s.events as f64 * mean_bytes / t.secs / 1e6;
    let met = |ok: bool| if ok { "met" } else { "NOT met" };
    let rss_mib = |k: Option<u64>| k.map_or(f64::NAN, |k| k as f64 * 1024.0 / MIB);
    let peak_rss = rss_mib(ours.peak_rss_kib).max(rss_mib(lat.peak_rss_kib));
    println!();
    println!(
        "N = {} events, mean {mean_bytes:.0} B, {} partitions",
        s.events, s.partitions
    );
    println!("| measurement | value | target | result |");
    println!("|---|---|---|---|");
    println!(
        "| ours: auditlog consume | {:.0} events/s ({:.1} MB/s), {:.1} s | | |",
        rate(ours),
        mbs(ours),
        ours.secs
    );
    match peer {
        Some(p) => {
            let ratio = rate(ours) / rate(p);
            println!(
                "| peer: Kafka engine + MV | {:.0} events/s ({:.1} MB/s), {:.1} s | | |",
                rate(p),
                mbs(p),
                p.secs
            );
            println!(
                "| throughput ratio ours/peer | {ratio:.2}x | >= 1.5x | {} |",
                met(ratio >= 1.5)
            );
        }
        None if ours.cpu.clickhouse2.is_some() => {
            println!("| peer: Kafka engine + MV | not run on a cluster | | |")
        }
        None => println!("| peer: Kafka engine + MV | FAILED (see stderr) | | |"),
    }
    let cpu_line = |label: &str, t: &Throughput| {
        let c = t.cpu;
        println!(
            "| CPU s during {label} | consumer {}, broker {:.1}, ClickHouse {:.1}{} (wall {:.1} s) | | |",
            c.consumer.map_or("-".to_string(), |v| format!("{v:.1}")),
            c.broker,
            c.clickhouse,
            c.clickhouse2
                .map_or(String::new(), |v| format!(" + replica 2 {v:.1}")),
            t.secs
        );
        if let Some(p) = t.parts {
            println!(
                "| ClickHouse parts during {label} | {} new ({:.0} rows each), {} merges of {} rows, {:.1} CPU s merging | | |",
                p.new_parts,
                p.new_rows as f64 / p.new_parts.max(1) as f64,
                p.merges,
                p.merged_rows,
                p.merge_cpu
            );
        }
    };
    cpu_line("ours", ours);
    if let Some(p) = peer {
        cpu_line("peer", p);
    }
    println!(
        "| emit-to-visible at {}/s for {:.1} s ({} events) | p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms | p99 < 2000 ms | {} |",
        s.latency_rate,
        lat.secs,
        lat.sent,
        lat.p50_ms,
        lat.p99_ms,
        lat.max_ms,
        met(lat.p99_ms < 2000.0)
    );
    println!(
        "| consumer peak RSS (throughput {:.1} MiB, latency {:.1} MiB) | {peak_rss:.1} MiB | < 256 MiB | {} |",
        rss_mib(ours.peak_rss_kib),
        rss_mib(lat.peak_rss_kib),
        met(peak_rss < 256.0)
    );
}

/// The per-core figures docs/capacity.md is derived from (BENCHMARKS.md, "Per-core figures").
fn capacity_report(s: &Settings, ours: &Throughput, disk: Option<DiskStats>) {
    let per_m = 1e6 / s.events as f64;
    println!();
    println!("per-core figures (ours, {} events):", s.events);
    if let Some(c) = ours.cpu.consumer {
        println!(
            "  consumer: {:.1} CPU s per 1M events = {:.0} events/s per consumer core",
            c * per_m,
            s.events as f64 / c
        );
    }
    let ch = ours.cpu.clickhouse;
    if let Some(ch2) = ours.cpu.clickhouse2 {
        println!(
            "  ClickHouse replica 2 (fetches + its own merges): {:.1} CPU s per 1M events = {:.0} events/s per core",
            ch2 * per_m,
            s.events as f64 / ch2
        );
    }
    println!(
        "  ClickHouse (whole process, inserts + merges + reads of the count): {:.1} CPU s per 1M events = {:.0} events/s per ClickHouse core",
        ch * per_m,
        s.events as f64 / ch
    );
    if let Some(i) = ours.inserts {
        println!(
            "  ClickHouse INSERT statements: {} inserts of {:.0} written rows (on a cluster: Distributed and local table both count), {:.1} CPU s per 1M events; insert latency p50 {:.0} ms, p99 {:.0} ms",
            i.inserts,
            i.rows as f64 / i.inserts.max(1) as f64,
            i.cpu * per_m,
            i.p50_ms,
            i.p99_ms
        );
    }
    if let Some(p) = ours.parts {
        println!(
            "  ClickHouse merges during the phase: {:.1} CPU s per 1M events",
            p.merge_cpu * per_m
        );
    }
    if let Some(d) = disk {
        println!(
            "  on disk: {} rows in {} parts, {:.0} B per event compressed ({:.0} B uncompressed, {:.1}x)",
            d.rows,
            d.parts,
            d.bytes_on_disk as f64 / d.rows.max(1) as f64,
            d.uncompressed as f64 / d.rows.max(1) as f64,
            d.uncompressed as f64 / d.bytes_on_disk.max(1) as f64
        );
    }
}
