//! The local cluster is real: `auditlog_testkit::PrivateCluster` (the stack's cluster profile on
//! private ports) runs Apache ZooKeeper and two ClickHouse servers whose replicated tables
//! replicate through it, and its parts stop, die and come back like the real thing. Prints how
//! long the cluster took to start and the memory its processes use.

use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context as _, Result};
use auditlog_testkit::{sigkill, unique_name, PrivateCluster};

/// One statement over ClickHouse's HTTP interface; the answer's body.
async fn query(http: &reqwest::Client, url: &str, sql: &str) -> Result<String> {
    let resp = http
        .post(url)
        .body(sql.to_owned())
        .send()
        .await
        .with_context(|| format!("POST {url}: {sql}"))?;
    let status = resp.status();
    let body = resp.text().await?;
    if !status.is_success() {
        bail!("{url}: {sql}: HTTP {status}: {}", body.trim());
    }
    Ok(body)
}

/// How long replication and reconnection may take on a loaded 2-core machine (it takes
/// 0.1-5 s here).
const PATIENCE: Duration = Duration::from_secs(60);

/// Polls `sql` on `url` until it answers `want` ([`PATIENCE`] at most).
async fn wait_for(http: &reqwest::Client, url: &str, sql: &str, want: &str) -> Result<()> {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let got = query(http, url, sql)
            .await
            .unwrap_or_else(|e| e.to_string());
        if got.trim() == want {
            return Ok(());
        }
        if Instant::now() >= deadline {
            bail!("{url}: {sql} answered {got:?}, not {want:?}, after {PATIENCE:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Resident memory of `pid` in MiB (`VmRSS` of `/proc/PID/status`).
fn rss_mib(pid: u32) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .context("no VmRSS")?;
    Ok(kib / 1024)
}

#[tokio::test]
async fn a_private_cluster_replicates_and_survives_its_parts_stopping() -> Result<()> {
    let started = Instant::now();
    let cluster = tokio::task::spawn_blocking(PrivateCluster::start).await??;
    let start_secs = started.elapsed().as_secs_f64();
    let mut rss = Vec::new();
    for c in ["zookeeper", "clickhouse", "clickhouse2"] {
        rss.push((c, rss_mib(cluster.pid(c)?)?));
    }
    let total: u64 = rss.iter().map(|(_, m)| m).sum();
    println!(
        "PrivateCluster: up in {start_secs:.1} s (ZooKeeper, 2 ClickHouse servers, broker); RSS {rss:?} MiB, {total} MiB together"
    );

    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()?;
    let urls = cluster.clickhouse_urls();
    let (ch1, ch2) = (urls[0].as_str(), urls[1].as_str());
    assert_eq!(cluster.cluster(), "auditlog");
    let cfg = cluster.config("x");
    assert_eq!(
        (
            cfg.url.as_str(),
            cfg.failover_urls.as_slice(),
            cfg.cluster.as_str()
        ),
        (ch1, &[ch2.to_string()][..], "auditlog")
    );
    let (table, ok) = cluster.status();
    ensure!(ok, "not every component is healthy:\n{table}");

    // Each server knows the cluster and its own place in it.
    let shape = "SELECT shard_num, replica_num, port FROM system.clusters WHERE cluster = 'auditlog' ORDER BY replica_num FORMAT CSV";
    let answer = query(&http, ch2, shape).await?;
    assert_eq!(answer.lines().count(), 2, "{answer}");
    let macros = "SELECT groupArray(substitution) FROM (SELECT * FROM system.macros ORDER BY macro) FORMAT CSV";
    assert_eq!(query(&http, ch1, macros).await?.trim(), r#""['ch1','01']""#);
    assert_eq!(query(&http, ch2, macros).await?.trim(), r#""['ch2','01']""#);

    // ON CLUSTER DDL reaches both; a row inserted on replica 1 is read on replica 2.
    let db = unique_name("cluster_stack");
    query(
        &http,
        ch1,
        &format!("CREATE DATABASE {db} ON CLUSTER auditlog"),
    )
    .await?;
    query(
        &http,
        ch1,
        &format!(
            "CREATE TABLE {db}.r ON CLUSTER auditlog (id UInt32, what String) \
             ENGINE = ReplicatedMergeTree('/clickhouse/tables/{{database}}/{{shard}}/r', '{{replica}}') \
             ORDER BY id"
        ),
    )
    .await?;
    query(&http, ch1, &format!("INSERT INTO {db}.r VALUES (1, 'one')")).await?;
    let rows = format!("SELECT groupArray(what) FROM (SELECT what FROM {db}.r ORDER BY id)");
    wait_for(&http, ch2, &rows, "['one']").await?;

    // ZooKeeper stopped: status says so; the servers still answer /ping, but replicated
    // inserts fail (without Keeper retries: at once).
    cluster.stop("zookeeper")?;
    let (table, ok) = cluster.status();
    ensure!(!ok, "status healthy without ZooKeeper:\n{table}");
    let zk_row = table
        .lines()
        .find(|l| l.starts_with("zookeeper"))
        .context("no zookeeper row")?;
    assert!(zk_row.ends_with("stopped"), "{table}");
    assert!(table.contains("clickhouse2"), "{table}");
    assert_eq!(query(&http, ch1, "SELECT 1").await?.trim(), "1");
    let insert2 =
        format!("INSERT INTO {db}.r SETTINGS insert_keeper_max_retries = 0 VALUES (2, 'two')");
    let e = query(&http, ch1, &insert2)
        .await
        .expect_err("a replicated insert without ZooKeeper");
    assert!(
        [
            "TABLE_IS_READ_ONLY",
            "KEEPER_EXCEPTION",
            "ZooKeeper",
            "Keeper"
        ]
        .iter()
        .any(|w| e.to_string().contains(w)),
        "{e:#}"
    );

    // ZooKeeper back: inserts work again within seconds and replicate.
    let restarted = Instant::now();
    cluster.start_component("zookeeper")?;
    let deadline = Instant::now() + PATIENCE;
    while let Err(e) = query(&http, ch1, &insert2).await {
        ensure!(
            Instant::now() < deadline,
            "inserts fail {PATIENCE:?} after ZooKeeper returned: {e:#}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    println!(
        "PrivateCluster: inserts work again {:.1} s after ZooKeeper was started",
        restarted.elapsed().as_secs_f64()
    );
    wait_for(&http, ch2, &rows, "['one','two']").await?;

    // Replica 2 SIGKILLed: replica 1 keeps taking inserts; restarted, replica 2 catches up.
    sigkill(cluster.pid("clickhouse2")?);
    query(
        &http,
        ch1,
        &format!("INSERT INTO {db}.r VALUES (3, 'three')"),
    )
    .await?;
    cluster.start_component("clickhouse2")?;
    wait_for(&http, ch2, &rows, "['one','two','three']").await?;
    let (table, ok) = cluster.status();
    ensure!(ok, "not healthy after the restarts:\n{table}");
    query(
        &http,
        ch1,
        &format!("DROP DATABASE {db} ON CLUSTER auditlog SYNC"),
    )
    .await?;
    Ok(())
}

#[tokio::test]
async fn a_two_shard_private_cluster_has_one_replica_per_shard() -> Result<()> {
    let cluster = tokio::task::spawn_blocking(|| PrivateCluster::start_with_shards(2)).await??;
    let http = reqwest::Client::new();
    let urls = cluster.clickhouse_urls();
    let shards = "SELECT groupArray(shard_num) FROM system.clusters WHERE cluster = 'auditlog'";
    assert_eq!(query(&http, &urls[0], shards).await?.trim(), "[1,2]");
    let shard = "SELECT getMacro('shard')";
    assert_eq!(query(&http, &urls[0], shard).await?.trim(), "01");
    assert_eq!(query(&http, &urls[1], shard).await?.trim(), "02");
    Ok(())
}
