//! [`PrivateCluster`]: a ClickHouse cluster of its own for a test (the stack's cluster profile,
//! infrastructure only): Apache ZooKeeper, two ClickHouse servers and a broker on free ports,
//! data in its own directory, stopped and deleted on drop.

use anyhow::Result;
use auditlog_stack::{ClusterPorts, Ports, CLUSTER_NAME};
use auditlog_store::ClickHouseConfig;

use crate::private::{self, OwnedStack};
use crate::{free_ports, unique_name, workspace_root};

/// ZooKeeper, two ClickHouse servers (cluster `auditlog`: one shard with replicas `ch1` and
/// `ch2`, or two shards of one replica each) and a broker, on free ports with data under
/// `.data/private/`, for tests of replication, failover and Keeper outages that stop, kill or
/// restart its parts. No schema: a test migrates a database of its own with
/// [`PrivateCluster::config`]. Component names: `zookeeper`, `clickhouse`, `clickhouse2`,
/// `broker`. Dropping it stops everything and deletes its data (`KEEP_PRIVATE_STACK=1` keeps it).
///
/// ```no_run
/// let cluster = auditlog_testkit::PrivateCluster::start()?;
/// let cfg = cluster.config("my_db"); // url = ch1, failover_urls = [ch2], cluster = "auditlog"
/// auditlog_testkit::sigkill(cluster.pid("clickhouse2")?);
/// cluster.start_component("clickhouse2")?;
/// # anyhow::Ok(())
/// ```
#[derive(Debug)]
pub struct PrivateCluster {
    owned: OwnedStack,
    ports: Ports,
    cluster_ports: ClusterPorts,
}

impl PrivateCluster {
    /// Starts one shard with two replicas (takes about 2-3 s with the software installed).
    /// Blocking: from async tests call it in `tokio::task::spawn_blocking`. A start that fails
    /// (a port taken in between) is retried on new ports, up to 3 times.
    pub fn start() -> Result<Self> {
        Self::start_with_shards(1)
    }

    /// Starts `shards` = 1 (one shard, two replicas) or 2 (two shards, one replica each).
    pub fn start_with_shards(shards: u32) -> Result<Self> {
        private::start_with_retries("PrivateCluster", || Self::try_start(shards))
    }

    fn try_start(shards: u32) -> Result<Self> {
        let p = free_ports(10)?;
        let ports = Ports {
            ch_http: p[0],
            ch_tcp: p[1],
            kafka: p[2],
            api: p[3],
            consumer: p[4],
        };
        let cluster_ports = ClusterPorts {
            zookeeper: p[5],
            ch_interserver: p[6],
            ch2_http: p[7],
            ch2_tcp: p[8],
            ch2_interserver: p[9],
        };
        let dir = workspace_root()
            .join(".data/private")
            .join(unique_name("cluster"));
        let mut env = auditlog_stack::private_cluster_vars(&dir, &ports, &cluster_ports);
        env.push(("STACK_SHARDS".into(), shards.to_string()));
        Ok(Self {
            owned: OwnedStack::up("PrivateCluster", env, dir)?,
            ports,
            cluster_ports,
        })
    }

    /// The HTTP URLs of the two servers: `clickhouse` (replica `ch1`) first.
    pub fn clickhouse_urls(&self) -> Vec<String> {
        [self.ports.ch_http, self.cluster_ports.ch2_http]
            .iter()
            .map(|port| format!("http://127.0.0.1:{port}"))
            .collect()
    }

    /// Bootstrap brokers.
    pub fn brokers(&self) -> String {
        format!("127.0.0.1:{}", self.ports.kafka)
    }

    /// The `remote_servers` cluster name (`auditlog`).
    pub fn cluster(&self) -> &str {
        CLUSTER_NAME
    }

    /// ZooKeeper's address (`127.0.0.1:PORT`).
    pub fn zookeeper(&self) -> String {
        format!("127.0.0.1:{}", self.cluster_ports.zookeeper)
    }

    /// ClickHouse settings for `database` on this cluster: `url` the first server,
    /// `failover_urls` the other, `cluster` set (migrate it with `auditlog_store::migrate`).
    pub fn config(&self, database: &str) -> ClickHouseConfig {
        let mut urls = self.clickhouse_urls();
        let url = urls.remove(0);
        ClickHouseConfig {
            url,
            failover_urls: urls,
            cluster: CLUSTER_NAME.into(),
            database: database.into(),
            ..ClickHouseConfig::default()
        }
    }

    private::control_methods!();
}
