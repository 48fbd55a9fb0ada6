//! Shared by the `relay*` tests: a private PostgreSQL or MariaDB server holding the outbox
//! (`auditlog_testkit::sql`), writers committing (or rolling back) events into it, the real
//! `auditlog relay` binary shipping them to the test's topic (ingest_support's World), and
//! reading the topic back to check per-workspace order and count duplicates.
#![allow(dead_code)]

use std::collections::{HashMap, HashSet};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context as _, Result};
use auditlog_event::AuditEvent;
use auditlog_testkit::sql::{MariaDbServer, PostgresServer};
use rdkafka::consumer::{BaseConsumer, Consumer as _};
use rdkafka::{ClientConfig, Message as _, Offset, TopicPartitionList};
use uuid::Uuid;

use crate::ingest_support::World;

/// The outbox database's kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Postgres,
    MariaDb,
}

/// A private database server of the test's own (killed on drop).
pub enum Server {
    Postgres(PostgresServer),
    MariaDb(MariaDbServer),
}

/// A migrated outbox in a private server, and a pool of the test's writers.
pub struct Outbox {
    pub kind: Kind,
    pub url: String,
    pub server: Server,
    pool: Pool,
}

#[derive(Clone)]
enum Pool {
    Pg(sqlx::PgPool),
    My(sqlx::MySqlPool),
}

impl Outbox {
    /// Starts a server of `kind`, migrates the outbox (with `auditlog relay migrate`, as an
    /// operator would) and opens a pool of `writers` connections.
    pub async fn start(kind: Kind, world: &World, writers: u32) -> Result<Self> {
        let (server, url) = tokio::task::spawn_blocking(move || -> Result<(Server, String)> {
            Ok(match kind {
                Kind::Postgres => {
                    let s = PostgresServer::start()?;
                    let url = s.url();
                    (Server::Postgres(s), url)
                }
                Kind::MariaDb => {
                    let s = MariaDbServer::start()?;
                    let url = s.url();
                    (Server::MariaDb(s), url)
                }
            })
        })
        .await??;
        world.cli(&["relay", "migrate", "--database-url", &url])?;
        let pool = match kind {
            Kind::Postgres => Pool::Pg(
                sqlx::postgres::PgPoolOptions::new()
                    .max_connections(writers)
                    .connect(&url)
                    .await?,
            ),
            Kind::MariaDb => Pool::My(
                sqlx::mysql::MySqlPoolOptions::new()
                    .max_connections(writers)
                    .connect(&url)
                    .await?,
            ),
        };
        Ok(Self {
            kind,
            url,
            server,
            pool,
        })
    }

    /// Writes `events` in one transaction and commits it (`commit`) or rolls it back.
    pub async fn transaction(&self, events: &[AuditEvent], commit: bool) -> Result<()> {
        Self::transaction_on(&self.pool, events, commit).await
    }

    /// Rows in the outbox now.
    pub async fn rows(&self) -> Result<i64> {
        let q = "SELECT COUNT(*) FROM auditlog_outbox";
        Ok(match &self.pool {
            Pool::Pg(p) => sqlx::query_scalar(q).fetch_one(p).await?,
            Pool::My(p) => sqlx::query_scalar(q).fetch_one(p).await?,
        })
    }

    /// Waits until the outbox is empty; fails after `timeout`.
    pub async fn wait_drained(&self, timeout: Duration) -> Result<()> {
        let start = Instant::now();
        loop {
            let n = self.rows().await?;
            if n == 0 {
                return Ok(());
            }
            if start.elapsed() > timeout {
                bail!("{n} rows still in the outbox after {timeout:?}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Commits `events` from one writer per workspace, all writers at once: each commits its
    /// workspace's events in order, `per_tx` per transaction, pausing `pause` between
    /// transactions. Returns each workspace's events in commit order.
    pub async fn commit_per_workspace(
        &self,
        events: Vec<AuditEvent>,
        per_tx: usize,
        pause: Duration,
    ) -> Result<HashMap<String, Vec<Uuid>>> {
        let by_ws = by_workspace(events);
        let order = by_ws
            .iter()
            .map(|(ws, evs)| (ws.clone(), evs.iter().map(|e| e.event_id).collect()))
            .collect();
        let mut writers = tokio::task::JoinSet::new();
        for (_, evs) in by_ws {
            let this = self.writer();
            writers.spawn(async move {
                for chunk in evs.chunks(per_tx.max(1)) {
                    this.transaction(chunk, true).await?;
                    if !pause.is_zero() {
                        tokio::time::sleep(pause).await;
                    }
                }
                anyhow::Ok(())
            });
        }
        while let Some(r) = writers.join_next().await {
            r??;
        }
        Ok(order)
    }

    /// A handle writing through the same pool (for writer tasks).
    fn writer(&self) -> Writer {
        Writer(self.pool.clone())
    }
}

/// A writer task's handle on the outbox pool.
struct Writer(Pool);

impl Writer {
    async fn transaction(&self, events: &[AuditEvent], commit: bool) -> Result<()> {
        Outbox::transaction_on(&self.0, events, commit).await
    }
}

impl Outbox {
    async fn transaction_on(pool: &Pool, events: &[AuditEvent], commit: bool) -> Result<()> {
        match pool {
            Pool::Pg(pool) => {
                let mut tx = pool.begin().await?;
                auditlog_outbox::postgres::write_all(&mut tx, events).await?;
                finish(tx, commit).await
            }
            Pool::My(pool) => {
                let mut tx = pool.begin().await?;
                auditlog_outbox::mysql::write_all(&mut tx, events).await?;
                finish(tx, commit).await
            }
        }
    }
}

async fn finish<DB: sqlx::Database>(tx: sqlx::Transaction<'_, DB>, commit: bool) -> Result<()> {
    if commit {
        tx.commit().await?;
    } else {
        tx.rollback().await?;
    }
    Ok(())
}

/// Events grouped by workspace, each group in the original order.
pub fn by_workspace(events: Vec<AuditEvent>) -> HashMap<String, Vec<AuditEvent>> {
    let mut out: HashMap<String, Vec<AuditEvent>> = HashMap::new();
    for e in events {
        out.entry(e.workspace_id.clone()).or_default().push(e);
    }
    out
}

/// Every one of `n` events visible exactly once: `uniqExact(event_id)` and `count() FINAL` are
/// `n` at once; plain `count()` may be higher while re-sent duplicates (different offsets, so
/// not dropped by the insert token) wait for their merge, and is `n` after `OPTIMIZE FINAL`.
/// Returns the rows before the merge.
pub async fn assert_visible_once(world: &World, n: u64) -> Result<u64> {
    let before = world.count(false).await?;
    let (distinct, fin) = (world.distinct_ids().await?, world.count(true).await?);
    ensure!(
        distinct == n && fin == n,
        "expected {n} events: uniqExact(event_id) = {distinct}, count() FINAL = {fin}"
    );
    world
        .client()
        .query("OPTIMIZE TABLE events FINAL")
        .execute()
        .await?;
    let after = world.count(false).await?;
    ensure!(
        after == n,
        "count() = {after} after OPTIMIZE FINAL, expected {n}"
    );
    Ok(before)
}

/// `auditlog relay` settings of a test: a fast poll, metrics on `listen` (or none).
pub fn relay_env(db_url: &str, listen: &str) -> Vec<(String, String)> {
    vec![
        ("AUDITLOG_RELAY__DATABASE_URL".into(), db_url.into()),
        ("AUDITLOG_RELAY__LISTEN".into(), listen.into()),
        ("AUDITLOG_RELAY__POLL_INTERVAL".into(), "50ms".into()),
        // A broker outage surfaces (and is retried) within seconds, not 30 s.
        ("AUDITLOG_PRODUCER__DELIVERY_TIMEOUT".into(), "5s".into()),
    ]
}

/// Starts `auditlog relay` for `world`, logging to a file named after the test.
pub fn spawn_relay(world: &World, tag: &str, env: &[(String, String)]) -> Result<Child> {
    let log = world.log_path(tag);
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log)?;
    let child = world
        .command(&["relay"])
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdout(Stdio::null())
        .stderr(file)
        .spawn()
        .context("spawn auditlog relay")?;
    eprintln!("relay {tag}: PID {}, log {}", child.id(), log.display());
    Ok(child)
}

/// One record of the topic.
#[derive(Debug, Clone)]
pub struct Record {
    pub partition: i32,
    pub offset: i64,
    pub key: String,
    pub value: Vec<u8>,
    pub event_id: Uuid,
}

/// Reads `topic` from the beginning until `distinct` different event ids were seen and the
/// topic has nothing more for 2 s; fails after `timeout`. Records in (partition, offset) order.
pub fn read_topic(
    brokers: &str,
    topic: &str,
    distinct: usize,
    timeout: Duration,
) -> Result<Vec<Record>> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", auditlog_testkit::unique_name("relayread"))
        .set("enable.auto.commit", "false")
        .create()?;
    let md = consumer.fetch_metadata(Some(topic), Duration::from_secs(10))?;
    let partitions = md
        .topics()
        .first()
        .map(|t| t.partitions().len())
        .unwrap_or(0);
    ensure!(partitions > 0, "topic {topic} has no partitions");
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions as i32 {
        tpl.add_partition_offset(topic, p, Offset::Beginning)?;
    }
    consumer.assign(&tpl)?;
    let mut out = Vec::new();
    let mut ids = HashSet::new();
    let start = Instant::now();
    let mut quiet_since = Instant::now();
    loop {
        match consumer.poll(Duration::from_millis(200)) {
            Some(m) => {
                let m = m?;
                let value = m.payload().unwrap_or_default().to_vec();
                let event_id = event_id_of(&value)?;
                ids.insert(event_id);
                out.push(Record {
                    partition: m.partition(),
                    offset: m.offset(),
                    key: String::from_utf8_lossy(m.key().unwrap_or_default()).into_owned(),
                    value,
                    event_id,
                });
                quiet_since = Instant::now();
            }
            None => {
                if ids.len() >= distinct && quiet_since.elapsed() > Duration::from_secs(2) {
                    break;
                }
            }
        }
        if start.elapsed() > timeout {
            bail!(
                "{} distinct events in {topic} after {timeout:?}, expected {distinct}",
                ids.len()
            );
        }
    }
    out.sort_by_key(|r| (r.partition, r.offset));
    Ok(out)
}

fn event_id_of(value: &[u8]) -> Result<Uuid> {
    #[derive(serde::Deserialize)]
    struct Id {
        event_id: Uuid,
    }
    let id: Id = serde_json::from_slice(value).context("a record that is not an event")?;
    Ok(id.event_id)
}

/// What the topic holds compared with what was committed.
#[derive(Debug, Default)]
pub struct Audit {
    /// Records in the topic.
    pub records: usize,
    /// Records whose event appeared before (at-least-once re-sends).
    pub duplicates: usize,
}

/// Checks the topic against the commit order: every committed event is there, nothing else
/// is, every record is keyed by its workspace, each workspace's records are in one partition,
/// and the *first* occurrences of a workspace's events come in commit order.
pub fn audit_order(records: &[Record], committed: &HashMap<String, Vec<Uuid>>) -> Result<Audit> {
    let mut audit = Audit {
        records: records.len(),
        ..Audit::default()
    };
    let mut seen = HashSet::new();
    let mut first: HashMap<&str, Vec<Uuid>> = HashMap::new();
    let mut partition_of: HashMap<&str, i32> = HashMap::new();
    for r in records {
        let p = *partition_of.entry(r.key.as_str()).or_insert(r.partition);
        ensure!(
            p == r.partition,
            "workspace {} in partitions {p} and {}",
            r.key,
            r.partition
        );
        if seen.insert(r.event_id) {
            first.entry(r.key.as_str()).or_default().push(r.event_id);
        } else {
            audit.duplicates += 1;
        }
    }
    for (ws, order) in committed {
        let got = first.remove(ws.as_str()).unwrap_or_default();
        if &got != order {
            let at = got.iter().zip(order).position(|(a, b)| a != b);
            bail!(
                "workspace {ws}: {} first occurrences for {} committed events, order differs at {:?}",
                got.len(),
                order.len(),
                at
            );
        }
    }
    ensure!(
        first.is_empty(),
        "records of workspaces nobody committed to: {:?}",
        first.keys().collect::<Vec<_>>()
    );
    Ok(audit)
}

/// Waits until `GET /health` on `listen` answers `want` (200 or 503) and its body contains
/// `needle`; returns the body.
pub async fn wait_health(
    listen: &str,
    want: u16,
    needle: &str,
    timeout: Duration,
) -> Result<String> {
    let start = Instant::now();
    loop {
        let last = crate::ingest_support::http_get(listen, "/health").await;
        if let Ok((code, body)) = &last {
            if *code == want && body.contains(needle) {
                return Ok(body.clone());
            }
        }
        if start.elapsed() > timeout {
            bail!("/health on {listen} did not answer {want} with {needle:?} within {timeout:?}: {last:?}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The value of metric line `name` (labels included, as rendered) on `listen`'s `/metrics`.
pub async fn metric(listen: &str, name: &str) -> Result<f64> {
    let (_, body) = crate::ingest_support::http_get(listen, "/metrics").await?;
    body.lines()
        .find_map(|l| {
            l.strip_prefix(name)
                .filter(|rest| rest.starts_with(' '))
                .and_then(|rest| rest.trim().parse().ok())
        })
        .with_context(|| format!("no metric {name} on {listen}"))
}
