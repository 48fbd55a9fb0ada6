//! Shared by the cluster tests (`cluster.rs`): a private ClickHouse cluster (ZooKeeper, two
//! replicas of one shard, a broker: `auditlog_testkit::PrivateCluster`), an ingest [`World`] on
//! it, each replica's own rows (`events_local`), and `auditlog serve` pointed at the cluster.
#![allow(dead_code)]

use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context as _, Result};
use auditlog_store::ClickHouseConfig;
use auditlog_testkit::PrivateCluster;
use clickhouse::Client;

use crate::ingest_support::{Guard, World};

/// Volume of the cluster tests: `CLUSTER_EVENTS` (default 100,000) times `fraction`.
pub fn events(fraction: f64) -> usize {
    let base: f64 = std::env::var("CLUSTER_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000.0);
    ((base * fraction) as usize).max(1_000)
}

/// Starts a private cluster (blocking work off the runtime).
pub async fn start() -> Result<PrivateCluster> {
    tokio::task::spawn_blocking(PrivateCluster::start)
        .await?
        .context("start a private cluster")
}

/// A world on `cluster`: fresh topics on its broker, a fresh database, migrated (ON CLUSTER)
/// unless `migrate` is false; its `auditlog` processes get the cluster and failover settings.
pub async fn world(
    prefix: &str,
    partitions: i32,
    cluster: &PrivateCluster,
    migrate: bool,
) -> Result<World> {
    let name = auditlog_testkit::unique_name(prefix);
    let cfg = cluster.config(&name);
    if migrate {
        auditlog_store::migrate(&cfg)
            .await
            .with_context(|| format!("migrate {name} on the cluster"))?;
    }
    let vars = auditlog_testkit::cluster_vars(&cfg);
    let mut w = World::with_clickhouse(name, partitions, cluster.brokers(), cfg).await?;
    w.env
        .extend(vars.into_iter().map(|(k, v)| (k.to_owned(), v)));
    Ok(w)
}

/// A world on the single server of the shared test stack (a fresh database) whose topics are
/// on `cluster`'s broker: the same events, the same broker, one server instead of a cluster.
pub async fn single_server_world(
    prefix: &str,
    partitions: i32,
    cluster: &PrivateCluster,
) -> Result<World> {
    let name = auditlog_testkit::unique_name(prefix);
    let cfg =
        auditlog_testkit::migrated_database(&auditlog_testkit::clickhouse_url(), &name).await?;
    World::with_clickhouse(name, partitions, cluster.brokers(), cfg).await
}

/// A client of one server of the cluster (no failover: that server or an error).
pub fn server(url: &str, database: &str) -> Client {
    ClickHouseConfig {
        url: url.to_owned(),
        database: database.to_owned(),
        ..ClickHouseConfig::default()
    }
    .client()
}

/// One client per server of `cluster`, in its URL order (`ch1`, `ch2`).
pub fn servers(cluster: &PrivateCluster, database: &str) -> Vec<Client> {
    cluster
        .clickhouse_urls()
        .iter()
        .map(|u| server(u, database))
        .collect()
}

/// `SYSTEM STOP MERGES events_local` on one server: ReplacingMergeTree merges collapse
/// duplicates on their own, so a test that counts them keeps merges off.
pub async fn stop_merges(client: &Client) -> Result<()> {
    client
        .query("SYSTEM STOP MERGES events_local")
        .execute()
        .await
        .context("SYSTEM STOP MERGES events_local")
}

/// [`stop_merges`] on every server.
pub async fn stop_merges_everywhere(cluster: &PrivateCluster, database: &str) -> Result<()> {
    for c in servers(cluster, database) {
        stop_merges(&c).await?;
    }
    Ok(())
}

/// `count()` and `uniqExact(event_id)` of one server's own `events_local`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clickhouse::Row, serde::Deserialize)]
pub struct LocalCounts {
    pub rows: u64,
    pub ids: u64,
}

/// `SYSTEM SYNC REPLICA events_local LIGHTWEIGHT` (the replica has fetched every part the
/// others wrote; a plain `SYNC REPLICA` would also wait for the merges queued in Keeper, which
/// never run while [`stop_merges`] holds), then its counts.
pub async fn synced_counts(client: &Client) -> Result<LocalCounts> {
    client
        .query("SYSTEM SYNC REPLICA events_local LIGHTWEIGHT")
        .with_setting("receive_timeout", "120")
        .execute()
        .await
        .context("SYSTEM SYNC REPLICA events_local LIGHTWEIGHT")?;
    client
        .query("SELECT count() AS rows, uniqExact(event_id) AS ids FROM events_local")
        .fetch_one()
        .await
        .context("count events_local")
}

/// Every replica holds exactly `n` rows, one per event, once synced.
pub async fn ensure_replicas_hold_exactly(
    cluster: &PrivateCluster,
    database: &str,
    n: u64,
) -> Result<()> {
    let mut all = Vec::new();
    for (url, c) in cluster
        .clickhouse_urls()
        .iter()
        .zip(servers(cluster, database))
    {
        let counts = synced_counts(&c).await?;
        eprintln!("{url}: events_local {counts:?}");
        all.push((url.clone(), counts));
    }
    let want = LocalCounts { rows: n, ids: n };
    ensure!(
        all.iter().all(|(_, c)| *c == want),
        "expected {n} rows and {n} ids on every replica: {all:?}"
    );
    Ok(())
}

/// Waits until `client` counts at least `n` rows in `table`; fails after `timeout`.
pub async fn wait_count(client: &Client, table: &str, n: u64, timeout: Duration) -> Result<u64> {
    let start = Instant::now();
    loop {
        let c: u64 = client
            .query(&format!("SELECT count() FROM {table}"))
            .fetch_one()
            .await
            .unwrap_or(0);
        if c >= n {
            return Ok(c);
        }
        if start.elapsed() > timeout {
            bail!("{c} rows in {table} after {timeout:?}, expected {n}");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Stops `component` of `cluster` (blocking, on this worker thread: multi-threaded runtime).
pub fn stop(cluster: &PrivateCluster, component: &str) -> Result<()> {
    tokio::task::block_in_place(|| cluster.stop(component))
}

/// Starts `component` of `cluster` again; returns once it is healthy.
pub fn restart(cluster: &PrivateCluster, component: &str) -> Result<()> {
    tokio::task::block_in_place(|| cluster.start_component(component))
}

/// `auditlog serve` on a free port, pointed at the world's ClickHouse (the cluster with its
/// failover URLs), with an admin token and one workspace token.
pub struct Api {
    pub addr: String,
    pub token: String,
    http: reqwest::Client,
    _server: Guard,
}

const ADMIN: &str = "admin-token-for-cluster-e2e-0123";

impl Api {
    /// Starts it, waits for `/health/live`, and creates a token for `workspace`.
    pub async fn start(w: &World, workspace: &str) -> Result<Self> {
        let addr = crate::ingest_support::free_listen_addr()?;
        let log = w.log_path("serve");
        let child = w
            .command(&["serve"])
            .env("AUDITLOG_API__LISTEN", &addr)
            .env("AUDITLOG_API__ADMIN_TOKEN", ADMIN)
            .env("AUDITLOG_API__QUERY_TIMEOUT", "5s")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log)?)
            .spawn()
            .context("spawn auditlog serve")?;
        eprintln!("serve: PID {}, log {}", child.id(), log.display());
        let server = Guard(Some(child));
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()?;
        let start = Instant::now();
        loop {
            let live = http.get(format!("http://{addr}/health/live")).send().await;
            if live.is_ok_and(|r| r.status().is_success()) {
                break;
            }
            ensure!(
                start.elapsed() < Duration::from_secs(30),
                "serve did not start (log {})",
                log.display()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let resp = http
            .post(format!("http://{addr}/v1/admin/tokens"))
            .bearer_auth(ADMIN)
            .json(&serde_json::json!({ "workspace_id": workspace }))
            .send()
            .await?;
        let status = resp.status();
        let body: serde_json::Value = resp.json().await?;
        ensure!(status.as_u16() == 201, "create token: {status} {body}");
        let token = body["token"].as_str().context("token")?.to_owned();
        Ok(Self {
            addr,
            token,
            http,
            _server: server,
        })
    }

    /// `GET /v1/events?limit=50` with the workspace token: the status and the page's length.
    pub async fn list(&self) -> Result<(u16, usize)> {
        let resp = self
            .http
            .get(format!("http://{}/v1/events?limit=50", self.addr))
            .bearer_auth(&self.token)
            .send()
            .await?;
        let status = resp.status().as_u16();
        let body: serde_json::Value = resp.json().await.unwrap_or_default();
        let n = body["data"].as_array().map_or(0, Vec::len);
        Ok((status, n))
    }
}
