//! Shared by the `ingest*` tests: a topic + dead-letter topic + database of the test's own,
//! synthetic events, producing raw bytes, running the real `auditlog consume` binary, and
//! counting rows.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};
use auditlog_event::synth::{Synth, SynthConfig};
use auditlog_event::AuditEvent;
use auditlog_store::ClickHouseConfig;
use clickhouse::Client;
use rdkafka::config::ClientConfig;
use rdkafka::message::OwnedHeaders;
use rdkafka::producer::{FutureProducer, FutureRecord};

/// One test's world.
pub struct World {
    pub name: String,
    pub brokers: String,
    pub topic: String,
    pub dlq_topic: String,
    pub clickhouse: ClickHouseConfig,
    pub group: String,
    /// Extra `AUDITLOG_*` settings for the consumer.
    pub env: Vec<(String, String)>,
}

impl World {
    /// A fresh topic with `partitions`, a one-partition dead-letter topic and a fresh database,
    /// on the shared test stack.
    pub async fn new(prefix: &str, partitions: i32) -> Result<Self> {
        let name = auditlog_testkit::unique_name(prefix);
        let database = auditlog_testkit::unique_name(prefix);
        let clickhouse_url = auditlog_testkit::clickhouse_url();
        Self::create(
            name,
            partitions,
            auditlog_testkit::brokers(),
            &clickhouse_url,
            &database,
        )
        .await
    }

    /// Like [`World::new`] on a private stack (its broker and ClickHouse).
    pub async fn on_stack(
        prefix: &str,
        partitions: i32,
        stack: &auditlog_testkit::PrivateStack,
    ) -> Result<Self> {
        let name = auditlog_testkit::unique_name(prefix);
        let database = name.clone();
        let clickhouse_url = stack.clickhouse_url();
        Self::create(
            name,
            partitions,
            stack.brokers(),
            &clickhouse_url,
            &database,
        )
        .await
    }

    /// [`World::with_clickhouse`] on the migrated `database` at `clickhouse_url`.
    async fn create(
        name: String,
        partitions: i32,
        brokers: String,
        clickhouse_url: &str,
        database: &str,
    ) -> Result<Self> {
        let clickhouse = auditlog_testkit::migrated_database(clickhouse_url, database).await?;
        Self::with_clickhouse(name, partitions, brokers, clickhouse).await
    }

    /// Creates the topics of the world `name` on `brokers` (`partitions` for the events, one for
    /// the dead letters); `clickhouse` is where its processes write (migrated or not: that is
    /// the caller's business).
    pub async fn with_clickhouse(
        name: String,
        partitions: i32,
        brokers: String,
        clickhouse: ClickHouseConfig,
    ) -> Result<Self> {
        let topic = format!("{name}_events");
        let dlq_topic = format!("{name}_dlq");
        auditlog_testkit::create_topic_on(&brokers, &topic, partitions).await?;
        auditlog_testkit::create_topic_on(&brokers, &dlq_topic, 1).await?;
        Ok(Self {
            brokers,
            group: format!("{name}_group"),
            name,
            topic,
            dlq_topic,
            clickhouse,
            env: Vec::new(),
        })
    }

    /// Sets `AUDITLOG_CONSUMER__<FIELD>` for consumers started afterwards.
    pub fn consumer_setting(&mut self, field: &str, value: &str) {
        self.env.push((
            format!("AUDITLOG_CONSUMER__{}", field.to_uppercase()),
            value.to_owned(),
        ));
    }

    pub fn client(&self) -> Client {
        self.clickhouse.client()
    }

    /// Where this world's `auditlog` processes read and write.
    fn target(&self) -> auditlog_testkit::AuditlogTarget<'_> {
        auditlog_testkit::AuditlogTarget {
            brokers: &self.brokers,
            topic: &self.topic,
            dlq_topic: &self.dlq_topic,
            clickhouse_url: &self.clickhouse.url,
            database: &self.clickhouse.database,
            group_id: &self.group,
        }
    }

    /// `auditlog ARGS` with this world's configuration.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(auditlog_testkit::auditlog_bin());
        cmd.args(args)
            .envs(self.target().vars())
            .env("AUDITLOG_CONSUMER__METRICS_LISTEN", "")
            .env("AUDITLOG_CONSUMER__SESSION_TIMEOUT", "6s")
            .env("AUDITLOG_CONSUMER__BATCH_MAX_WAIT", "300ms")
            .env("RUST_LOG", "info,librdkafka=warn")
            .envs(self.env.iter().map(|(k, v)| (k, v)));
        cmd
    }

    /// Runs `auditlog ARGS` to completion; returns stdout, fails with the output on error.
    pub fn cli(&self, args: &[&str]) -> Result<String> {
        let out = self.command(args).output().context("run auditlog")?;
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        if !out.status.success() {
            bail!(
                "auditlog {} failed: {}\n{text}\n{}",
                args.join(" "),
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(text)
    }

    /// Starts `auditlog consume`, logging to a file named after the test (printed on start).
    pub fn spawn_consumer(&self, tag: &str) -> Result<Child> {
        let log = self.log_path(tag);
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)?;
        let child = self
            .command(&["consume"])
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .context("spawn auditlog consume (cargo build -p auditlog first)")?;
        eprintln!("consumer {tag}: PID {}, log {}", child.id(), log.display());
        Ok(child)
    }

    pub fn log_path(&self, tag: &str) -> PathBuf {
        std::env::temp_dir().join(format!("{}_{tag}.log", self.name))
    }

    /// Produces `(key, payload)` pairs (all sent, then all acknowledged).
    pub async fn produce(&self, messages: &[(String, Vec<u8>)]) -> Result<()> {
        produce_to(&self.brokers, &self.topic, messages).await
    }

    /// `SELECT count()` (with `FINAL` or not).
    pub async fn count(&self, final_: bool) -> Result<u64> {
        let q = if final_ {
            "SELECT count() FROM events FINAL"
        } else {
            "SELECT count() FROM events"
        };
        Ok(self.client().query(q).fetch_one().await?)
    }

    /// Number of distinct event ids.
    pub async fn distinct_ids(&self) -> Result<u64> {
        Ok(self
            .client()
            .query("SELECT uniqExact(event_id) FROM events")
            .fetch_one()
            .await?)
    }

    /// Waits until `count()` (no FINAL) reaches `n`; fails after `timeout`.
    pub async fn wait_rows(&self, n: u64, timeout: Duration) -> Result<()> {
        let start = Instant::now();
        loop {
            let c = self.count(false).await.unwrap_or(0);
            if c >= n {
                return Ok(());
            }
            if start.elapsed() > timeout {
                bail!(
                    "{c} rows after {timeout:?}, expected {n} (logs: {})",
                    std::env::temp_dir().join(&self.name).display()
                );
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// Asserts exactly `n` rows, `n` distinct ids, and `n` rows with FINAL.
    pub async fn assert_exactly(&self, n: u64) -> Result<()> {
        let (plain, distinct, fin) = (
            self.count(false).await?,
            self.distinct_ids().await?,
            self.count(true).await?,
        );
        anyhow::ensure!(
            plain == n && distinct == n && fin == n,
            "expected {n} rows: count() = {plain}, uniqExact(event_id) = {distinct}, count() FINAL = {fin}"
        );
        Ok(())
    }
}

/// Produces `(key, payload)` pairs to `topic`.
pub async fn produce_to(brokers: &str, topic: &str, messages: &[(String, Vec<u8>)]) -> Result<()> {
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("acks", "all")
        .set("enable.idempotence", "true")
        .set("linger.ms", "5")
        .set("queue.buffering.max.messages", "1000000")
        .set("queue.buffering.max.kbytes", "1048576")
        .create()?;
    // `send_result` enqueues at once (`send` is lazy: awaiting one future at a time would
    // produce one message per linger period).
    for chunk in messages.chunks(20_000) {
        let mut acks = Vec::with_capacity(chunk.len());
        for (k, v) in chunk {
            let record = FutureRecord::to(topic)
                .key(k.as_bytes())
                .payload(v.as_slice())
                .headers(OwnedHeaders::new());
            let ack = producer
                .send_result(record)
                .map_err(|(e, _)| e)
                .context("enqueue")?;
            acks.push(ack);
        }
        for ack in acks {
            ack.await
                .context("producer dropped")?
                .map_err(|(e, _)| e)
                .context("produce")?;
        }
    }
    Ok(())
}

/// `n` synthetic events (seeded), spread over `workspaces` workspaces.
pub fn synth(n: usize, seed: u64, workspaces: usize) -> Vec<AuditEvent> {
    let mut s = Synth::new(SynthConfig {
        seed,
        workspaces,
        ..SynthConfig::default()
    });
    (0..n).map(|_| s.next_event()).collect()
}

/// Events as `(workspace key, JSON bytes)` messages.
pub fn messages(events: &[AuditEvent]) -> Vec<(String, Vec<u8>)> {
    events
        .iter()
        .map(|e| (e.workspace_id.clone(), e.to_json_bytes()))
        .collect()
}

/// Sends SIGTERM and waits (up to 60 s) for the exit status.
pub fn terminate(child: &mut Child) -> Result<std::process::ExitStatus> {
    signal(child.id(), "TERM")?;
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(status);
        }
        if start.elapsed() > Duration::from_secs(60) {
            child.kill()?;
            bail!(
                "consumer PID {} did not exit within 60 s of SIGTERM",
                child.id()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Sends a signal (`TERM`, `KILL`, ...) to a process.
pub fn signal(pid: u32, sig: &str) -> Result<()> {
    let st = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .status()?;
    anyhow::ensure!(st.success(), "kill -{sig} {pid} failed");
    Ok(())
}

/// Resident memory of a process in KiB (`VmRSS`).
pub fn rss_kib(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// Kills the child if the test fails before stopping it.
pub struct Guard(pub Option<Child>);

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(c) = self.0.as_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// `GET path` on `addr`: (status code, body).
pub async fn http_get(addr: &str, path: &str) -> Result<(u16, String)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::time::timeout(Duration::from_secs(2), tokio::net::TcpStream::connect(addr))
        .await??;
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes())
        .await?;
    let mut out = String::new();
    tokio::time::timeout(Duration::from_secs(5), s.read_to_string(&mut out)).await??;
    let (head, body) = out.split_once("\r\n\r\n").context("no HTTP header end")?;
    let code = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .context("no status code")?;
    Ok((code, body.to_owned()))
}

impl World {
    /// Produces `messages` in the background, `slice` at a time with `pause` between slices.
    pub fn produce_in_background(
        &self,
        messages: Vec<(String, Vec<u8>)>,
        slice: usize,
        pause: Duration,
    ) -> tokio::task::JoinHandle<Result<()>> {
        let (brokers, topic) = (self.brokers.clone(), self.topic.clone());
        tokio::spawn(async move {
            for part in messages.chunks(slice.max(1)) {
                produce_to(&brokers, &topic, part).await?;
                tokio::time::sleep(pause).await;
            }
            Ok(())
        })
    }

    /// Starts a consumer `rounds` times; each incarnation first waits out the group rejoin
    /// (until it stores rows), then runs a random while (0.1 to 2.5 s) and is SIGKILLed.
    pub async fn kill_consumers_at_random_moments(&self, rounds: usize) -> Result<()> {
        use rand::Rng as _;
        for round in 0..rounds {
            let mut c = Guard(Some(self.spawn_consumer(&format!("k{round}"))?));
            let before = self.count(false).await.unwrap_or(0);
            for _ in 0..600 {
                if self.count(false).await.unwrap_or(0) > before {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            let pause = rand::rng().random_range(100..2500);
            tokio::time::sleep(Duration::from_millis(pause)).await;
            if let Some(child) = c.0.as_mut() {
                child.kill()?; // SIGKILL
                child.wait()?;
            }
            c.0 = None;
            eprintln!(
                "round {round}: killed with {} rows stored",
                self.count(false).await?
            );
        }
        Ok(())
    }
}

impl World {
    /// Runs one last consumer until every one of the `n` events is stored, waits for anything
    /// still replaying, asserts exactly `n` rows and stops it (SIGTERM, clean exit).
    pub async fn final_consumer_stores_exactly(&self, n: u64) -> Result<()> {
        let mut last = Guard(Some(self.spawn_consumer("final")?));
        self.wait_rows(n, Duration::from_secs(300)).await?;
        tokio::time::sleep(Duration::from_secs(3)).await;
        self.assert_exactly(n).await?;
        let status = terminate(last.0.as_mut().context("running")?)?;
        last.0 = None;
        anyhow::ensure!(status.success(), "final consumer exited with {status}");
        Ok(())
    }
}

/// `127.0.0.1:<a free port>`, e.g. for the consumer's `metrics_listen`.
pub fn free_listen_addr() -> Result<String> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    Ok(format!("127.0.0.1:{port}"))
}

/// What [`watch_outage`] saw of a consumer while a dependency was down.
#[derive(Debug, Default, Clone, Copy)]
pub struct Outage {
    /// Highest `VmRSS` sampled, KiB.
    pub max_rss_kib: u64,
    /// `/health` answered `degraded` at least once.
    pub saw_degraded: bool,
}

/// Watches a running consumer for `duration` while something it depends on is down: samples
/// its RSS and its `/health` on `listen` (its `metrics_listen`) every 500 ms; fails if it exits.
pub async fn watch_outage(
    consumer: &mut Guard,
    listen: &str,
    duration: Duration,
) -> Result<Outage> {
    let child = consumer.0.as_mut().context("consumer not running")?;
    let pid = child.id();
    let start = Instant::now();
    let mut seen = Outage::default();
    while start.elapsed() < duration {
        seen.max_rss_kib = seen.max_rss_kib.max(rss_kib(pid).unwrap_or(0));
        anyhow::ensure!(
            child.try_wait()?.is_none(),
            "consumer exited during the outage"
        );
        if let Ok((_, body)) = http_get(listen, "/health").await {
            seen.saw_degraded |= body.contains("degraded");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    Ok(seen)
}

impl Outage {
    /// What two watches saw together.
    pub fn and(self, later: Outage) -> Outage {
        Outage {
            max_rss_kib: self.max_rss_kib.max(later.max_rss_kib),
            saw_degraded: self.saw_degraded || later.saw_degraded,
        }
    }

    /// The consumer paused as it should: `/health` said degraded, its metrics on `listen`
    /// count write retries, and its RSS (this outage's and `pid`'s now) stayed under 256 MiB.
    pub async fn ensure_paused_and_bounded(&self, listen: &str, pid: u32) -> Result<()> {
        let max_rss = self.max_rss_kib.max(rss_kib(pid).unwrap_or(0));
        let (_, metrics) = http_get(listen, "/metrics").await?;
        anyhow::ensure!(
            metrics.contains("auditlog_sink_write_retries_total"),
            "no retries recorded:\n{metrics}"
        );
        anyhow::ensure!(
            self.saw_degraded,
            "/health never reported degraded during the outage"
        );
        eprintln!("consumer max RSS during the run: {} MiB", max_rss / 1024);
        anyhow::ensure!(max_rss < 256 * 1024, "consumer RSS {max_rss} KiB");
        Ok(())
    }
}

/// One event per `(workspace, age in days)`, each `days` old (seeded from `seed` upwards).
pub fn aged_events(workspaces: &[&str], days: &[i64], seed: u64) -> Vec<AuditEvent> {
    let mut out = Vec::new();
    for (i, ws) in workspaces.iter().enumerate() {
        for (j, d) in days.iter().enumerate() {
            let mut e = synth(1, seed + (i * days.len() + j) as u64, 1).remove(0);
            e.workspace_id = (*ws).into();
            e.time = auditlog_event::time_format::truncate_to_millis(
                chrono::Utc::now() - chrono::TimeDelta::days(*d),
            );
            out.push(e);
        }
    }
    out
}

/// The distinct `retention_days` of workspace `ws` in `table`.
pub async fn retention_in(client: &Client, table: &str, ws: &str) -> Result<Vec<u32>> {
    Ok(client
        .query(&format!(
            "SELECT DISTINCT retention_days FROM {table} WHERE workspace_id = ? ORDER BY 1"
        ))
        .bind(ws)
        .fetch_all()
        .await?)
}

/// The ages in days of workspace `ws`'s rows in `table`, ascending.
pub async fn ages_in(client: &Client, table: &str, ws: &str) -> Result<Vec<i64>> {
    Ok(client
        .query(&format!(
            "SELECT toInt64(round(dateDiff('hour', time, now64(3)) / 24)) AS d FROM {table} \
             WHERE workspace_id = ? ORDER BY d"
        ))
        .bind(ws)
        .fetch_all()
        .await?)
}

/// Waits (up to 60 s) until no mutation of `table` in the client's database is pending.
pub async fn wait_mutations_of(client: &Client, table: &str) -> Result<()> {
    for _ in 0..240 {
        let pending: u64 = client
            .query("SELECT count() FROM system.mutations WHERE database = currentDatabase() AND table = ? AND NOT is_done")
            .bind(table)
            .fetch_one()
            .await?;
        if pending == 0 {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    bail!("mutations of {table} still running after 60 s")
}
