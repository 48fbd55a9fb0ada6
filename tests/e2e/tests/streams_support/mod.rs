//! Shared by the stream delivery tests and the stream benchmark: a database of the test's own,
//! events seeded as the consumer writes them (explicit partitions and offsets), streams created
//! through the real `StreamStore`, real `auditlog stream-worker` processes, and checks over
//! what the testkit receiver recorded.
#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};
use auditlog_event::synth::{Synth, SynthConfig};
use auditlog_store::events::{EventRow, RowContext};
use auditlog_store::feed::FeedStart;
use auditlog_store::ClickHouseConfig;
use auditlog_streams::{Destination, Stream, StreamSpec, StreamStatus, StreamStore};
use auditlog_testkit::Received;

#[path = "../ingest_support/mod.rs"]
mod ingest_support;
/// Signals and SIGTERM-and-wait, shared with the ingest tests.
pub use ingest_support::{signal, terminate};

/// One test's world: its database, stream store and worker settings.
pub struct World {
    pub name: String,
    pub clickhouse: ClickHouseConfig,
    pub store: StreamStore,
    /// Extra `AUDITLOG_STREAMS__*` settings for workers started afterwards.
    pub env: Vec<(String, String)>,
    /// Next offset per partition of seeded rows.
    offsets: HashMap<i32, i64>,
    seed: u64,
}

impl World {
    pub async fn new(prefix: &str) -> Result<Self> {
        let clickhouse = auditlog_testkit::fresh_database(prefix).await?;
        Ok(Self {
            name: auditlog_testkit::unique_name(prefix),
            store: StreamStore::new(clickhouse.client()),
            clickhouse,
            env: Vec::new(),
            offsets: HashMap::new(),
            seed: 1,
        })
    }

    /// Sets `AUDITLOG_STREAMS__<FIELD>` for workers started afterwards.
    pub fn setting(&mut self, field: &str, value: &str) {
        self.env.push((
            format!("AUDITLOG_STREAMS__{}", field.to_uppercase()),
            value.to_owned(),
        ));
    }

    /// Inserts `n` events of `ws` into `partition` (next offsets of that partition), as the
    /// consumer writes them; returns their ids in feed order.
    pub async fn seed(&mut self, ws: &str, partition: i32, n: usize) -> Result<Vec<String>> {
        self.seed += 1;
        let mut synth = Synth::new(SynthConfig {
            seed: self.seed,
            workspaces: 1,
            ..SynthConfig::default()
        });
        let next = self.offsets.entry(partition).or_insert(0);
        let mut ids = Vec::with_capacity(n);
        let rows: Vec<EventRow> = (0..n)
            .map(|_| {
                let mut e = synth.next_event();
                e.workspace_id = ws.to_owned();
                ids.push(e.event_id.to_string());
                let ctx = RowContext {
                    partition,
                    offset: *next,
                    retention_days: 0,
                };
                *next += 1;
                EventRow::from_event(e, ctx)
            })
            .collect();
        let token = uuid_token();
        auditlog_store::events::insert(&self.clickhouse.client(), &rows, &token)
            .await
            .context("seed events")?;
        Ok(ids)
    }

    /// A webhook stream of `ws` to `url`, starting at `start`.
    pub async fn webhook(&self, ws: &str, url: &str, start: FeedStart) -> Result<Stream> {
        let spec = StreamSpec {
            workspace_id: ws.to_owned(),
            name: format!("{ws} hook"),
            destination: Destination::Webhook {
                url: url.to_owned(),
            },
            format: Default::default(),
            filter: BTreeMap::new(),
        };
        Ok(self.store.create(spec, start).await?)
    }

    /// `auditlog stream-worker` with short timings for tests (plus [`World::env`]), logging to
    /// a file named after the test. Returns the process and its `/metrics` address.
    pub fn spawn_worker(&self, tag: &str) -> Result<(Child, String)> {
        let log = self.log_path(tag);
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)?;
        let listen = free_addr()?;
        let mut cmd = Command::new(auditlog_testkit::auditlog_bin());
        cmd.arg("stream-worker")
            .env("AUDITLOG_CLICKHOUSE__URL", &self.clickhouse.url)
            .env("AUDITLOG_CLICKHOUSE__DATABASE", &self.clickhouse.database)
            .env("AUDITLOG_STREAMS__LISTEN", &listen)
            .env("AUDITLOG_STREAMS__HEARTBEAT", "300ms")
            .env("AUDITLOG_STREAMS__WORKER_EXPIRY", "2s")
            .env("AUDITLOG_STREAMS__REFRESH", "300ms")
            .env("AUDITLOG_STREAMS__REQUEST_TIMEOUT", "3s")
            .env("AUDITLOG_STREAMS__RETRY_INITIAL_BACKOFF", "100ms")
            .env("AUDITLOG_STREAMS__RETRY_MAX_BACKOFF", "1s")
            .env("AUDITLOG_STREAMS__CURSOR_FLUSH", "300ms")
            .env("AUDITLOG_STREAMS__STATUS_FLUSH", "500ms")
            .env("AUDITLOG_STREAMS__BATCH_WAIT", "50ms")
            .env("RUST_LOG", "info")
            .envs(auditlog_testkit::cluster_vars(&self.clickhouse))
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::null())
            .stderr(file);
        let child = cmd
            .spawn()
            .context("spawn auditlog stream-worker (cargo build -p auditlog first)")?;
        eprintln!(
            "worker {tag}: PID {}, metrics {listen}, log {}",
            child.id(),
            log.display()
        );
        Ok((child, listen))
    }

    pub fn log_path(&self, tag: &str) -> PathBuf {
        std::env::temp_dir().join(format!("{}_{tag}.log", self.name))
    }

    /// The stored status of `stream_id`.
    pub async fn status(&self, stream_id: &str) -> Result<Option<StreamStatus>> {
        Ok(self
            .store
            .statuses(&[stream_id.to_owned()])
            .await?
            .into_iter()
            .next())
    }
}

fn uuid_token() -> String {
    auditlog_testkit::unique_name("seed")
}

/// A free loopback `HOST:PORT` (bound and released).
pub fn free_addr() -> Result<String> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.to_string())
}

/// A webhook request's body, parsed.
#[derive(Debug, Clone)]
pub struct Hook {
    pub stream_id: String,
    pub batch_id: String,
    pub ids: Vec<String>,
    pub ok: bool,
    pub at_ms: i64,
    pub answered_ms: i64,
}

/// Every webhook request the receiver recorded, parsed, in arrival order.
pub fn hooks(received: &[Received]) -> Result<Vec<Hook>> {
    received
        .iter()
        .map(|r| {
            let v = r.json()?;
            let ids = v["events"]
                .as_array()
                .context("no events array")?
                .iter()
                .map(|e| e["event_id"].as_str().unwrap_or_default().to_owned())
                .collect();
            Ok(Hook {
                stream_id: v["stream_id"].as_str().unwrap_or_default().to_owned(),
                batch_id: v["batch_id"].as_str().unwrap_or_default().to_owned(),
                ids,
                ok: r.ok(),
                at_ms: r.at_ms,
                answered_ms: r.answered_ms,
            })
        })
        .collect()
}

/// What a stream's acknowledged requests delivered.
#[derive(Debug, Default)]
pub struct Delivered {
    /// Event ids in order of first acknowledged delivery.
    pub order: Vec<String>,
    /// Events acknowledged more than once (crash redeliveries).
    pub repeated_acks: u64,
    /// Events of acknowledged requests whose batch id the receiver had seen before (failed
    /// attempts it recorded): what the worker counts as `redelivered_events`.
    pub resent_after_failure: u64,
}

/// The acknowledged deliveries of `stream_id`.
pub fn delivered(hooks: &[Hook], stream_id: &str) -> Delivered {
    let mut d = Delivered::default();
    let mut seen = HashSet::new();
    let mut batches_seen = HashSet::new();
    for h in hooks.iter().filter(|h| h.stream_id == stream_id) {
        let before = !batches_seen.insert(h.batch_id.clone());
        if !h.ok {
            continue;
        }
        if before {
            d.resent_after_failure += h.ids.len() as u64;
        }
        for id in &h.ids {
            if seen.insert(id.clone()) {
                d.order.push(id.clone());
            } else {
                d.repeated_acks += 1;
            }
        }
    }
    d
}

/// Waits until `check` holds (polling every 100 ms); fails with `what` after `timeout`.
pub async fn wait_until<F, Fut>(timeout: Duration, what: &str, mut check: F) -> Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<bool>>,
{
    let start = Instant::now();
    loop {
        if check().await? {
            return Ok(());
        }
        if start.elapsed() > timeout {
            bail!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until the receiver acknowledged every id of `expected` for `stream_id`.
pub async fn wait_delivered(
    receiver: &auditlog_testkit::Receiver,
    stream_id: &str,
    expected: &[String],
    timeout: Duration,
) -> Result<()> {
    let want: HashSet<&String> = expected.iter().collect();
    wait_until(
        timeout,
        &format!("{} events of {stream_id}", expected.len()),
        || {
            let done = hooks(&receiver.received()).map(|got| {
                let d = delivered(&got, stream_id);
                let have: HashSet<&String> = d.order.iter().collect();
                want.iter().all(|w| have.contains(*w))
            });
            async move { done }
        },
    )
    .await
}

/// A Prometheus counter's value (summed over its label sets) from `/metrics` at `addr`.
pub async fn metric(addr: &str, name: &str) -> Result<f64> {
    let text = reqwest::get(format!("http://{addr}/metrics"))
        .await?
        .text()
        .await?;
    Ok(text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum())
}
