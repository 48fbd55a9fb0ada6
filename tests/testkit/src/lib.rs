//! Helpers for tests against the real local stack started by `tests/run.sh`
//! (or by hand: `STACK_PROFILE=test deploy/local/stack.sh up`), and private stacks of their own
//! ([`PrivateStack`]; [`PrivateCluster`]: ZooKeeper and two ClickHouse servers; through the
//! stack library `auditlog_stack`).
//!
//! Every test gets its own topic and database ([`unique_name`], [`create_topic`],
//! [`fresh_database`]) so tests run in parallel without seeing each other's data.
//! The stack's addresses come from `TEST_CLICKHOUSE_URL` and `TEST_KAFKA_BROKERS`, defaulting
//! to the test profile's ports. A test that cannot reach the stack fails; it is never skipped.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context as _, Result};
use auditlog_stack::{Component, Stack};
use auditlog_store::ClickHouseConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::types::RDKafkaErrorCode;

mod checksum;
mod cluster;
pub mod docs;
mod metrics;
mod private;
pub mod receiver;
mod s3;
pub mod sql;
pub mod tls;

pub use checksum::content_checksum;
pub use cluster::PrivateCluster;
pub use metrics::prometheus;
use private::OwnedStack;
pub use receiver::{Mode as ReceiverMode, Received, Receiver};
pub use s3::S3Server;
pub use sql::{MariaDbServer, PostgresServer};

/// ClickHouse HTTP URL of the test stack (`TEST_CLICKHOUSE_URL`, default `http://127.0.0.1:18123`).
pub fn clickhouse_url() -> String {
    std::env::var("TEST_CLICKHOUSE_URL").unwrap_or_else(|_| "http://127.0.0.1:18123".into())
}

/// The cluster the test ClickHouse is part of (`TEST_CLICKHOUSE_CLUSTER`, empty: one server).
/// Set it with `TEST_CLICKHOUSE_URL` to run the suites against a cluster (docs/cluster.md).
pub fn test_cluster() -> String {
    std::env::var("TEST_CLICKHOUSE_CLUSTER").unwrap_or_default()
}

/// Bootstrap brokers of the test stack (`TEST_KAFKA_BROKERS`, default `127.0.0.1:19092`).
pub fn brokers() -> String {
    std::env::var("TEST_KAFKA_BROKERS").unwrap_or_else(|_| "127.0.0.1:19092".into())
}

/// The workspace root (two levels above this crate).
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("workspace root")
}

/// Path to the `auditlog` binary: `AUDITLOG_BIN`, else `target/debug/auditlog`
/// (`tests/run.sh` builds it before the tests run).
pub fn auditlog_bin() -> PathBuf {
    std::env::var_os("AUDITLOG_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target/debug/auditlog"))
}

/// A name no other test uses: `prefix_<12 hex chars>` (valid as topic and database name).
pub fn unique_name(prefix: &str) -> String {
    let id = uuid::Uuid::new_v4().simple().to_string();
    format!("{prefix}_{}", &id[..12])
}

/// Creates a topic on the test broker with `partitions` partitions (an existing one is fine).
pub async fn create_topic(name: &str, partitions: i32) -> Result<()> {
    create_topic_on(&brokers(), name, partitions).await
}

/// Creates a topic on `brokers` with `partitions` partitions and replication factor 1
/// (an existing one is fine).
pub async fn create_topic_on(brokers: &str, name: &str, partitions: i32) -> Result<()> {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .context("admin client")?;
    let topic = NewTopic::new(name, partitions, TopicReplication::Fixed(1));
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    let results = admin
        .create_topics([&topic], &opts)
        .await
        .with_context(|| format!("create topic {name} on {brokers}"))?;
    for r in results {
        match r {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((t, code)) => bail!("create topic {t}: {code}"),
        }
    }
    Ok(())
}

/// Where a spawned `auditlog` binary reads and writes: the broker, its topics, ClickHouse and
/// the consumer group. [`AuditlogTarget::vars`] gives the matching `AUDITLOG_*` variables.
#[derive(Debug, Clone, Copy)]
pub struct AuditlogTarget<'a> {
    pub brokers: &'a str,
    pub topic: &'a str,
    pub dlq_topic: &'a str,
    pub clickhouse_url: &'a str,
    pub database: &'a str,
    pub group_id: &'a str,
}

impl AuditlogTarget<'_> {
    /// The `AUDITLOG_*` variables pointing `auditlog` at this target (for `Command::envs`).
    pub fn vars(&self) -> Vec<(&'static str, String)> {
        [
            ("AUDITLOG_KAFKA__BROKERS", self.brokers),
            ("AUDITLOG_KAFKA__TOPIC", self.topic),
            ("AUDITLOG_KAFKA__DLQ_TOPIC", self.dlq_topic),
            ("AUDITLOG_CLICKHOUSE__URL", self.clickhouse_url),
            ("AUDITLOG_CLICKHOUSE__DATABASE", self.database),
            ("AUDITLOG_CONSUMER__GROUP_ID", self.group_id),
        ]
        .into_iter()
        .map(|(k, v)| (k, v.to_owned()))
        .chain(
            Some(test_cluster())
                .filter(|c| !c.is_empty())
                .map(|c| ("AUDITLOG_CLICKHOUSE__CLUSTER", c)),
        )
        .collect()
    }
}

/// The `AUDITLOG_CLICKHOUSE__*` variables of `cfg`'s cluster settings (`cluster`,
/// `failover_urls`, `insert_quorum`) for a spawned `auditlog`; none for a single server.
/// [`AuditlogTarget::vars`] gives the URL and database.
pub fn cluster_vars(cfg: &ClickHouseConfig) -> Vec<(&'static str, String)> {
    if cfg.cluster.is_empty() {
        return Vec::new();
    }
    let failover = serde_json::Value::from(cfg.failover_urls.clone()).to_string();
    vec![
        ("AUDITLOG_CLICKHOUSE__CLUSTER", cfg.cluster.clone()),
        ("AUDITLOG_CLICKHOUSE__FAILOVER_URLS", failover),
        (
            "AUDITLOG_CLICKHOUSE__INSERT_QUORUM",
            cfg.insert_quorum.to_string(),
        ),
    ]
}

/// ClickHouse settings for a new database named after `prefix`, with every migration applied.
pub async fn fresh_database(prefix: &str) -> Result<ClickHouseConfig> {
    migrated_database(&clickhouse_url(), &unique_name(prefix)).await
}

/// ClickHouse settings for database `database` at `url`, with every migration applied
/// (the database is created when missing). With `TEST_CLICKHOUSE_CLUSTER` set (a cluster's
/// `deploy/local/stack.sh env`), on that cluster: the suites' release check on a cluster.
pub async fn migrated_database(url: &str, database: &str) -> Result<ClickHouseConfig> {
    let cfg = ClickHouseConfig {
        url: url.to_owned(),
        database: database.to_owned(),
        // The test ClickHouse may be a cluster; a private server never is.
        cluster: if url == clickhouse_url() {
            test_cluster()
        } else {
            String::new()
        },
        ..ClickHouseConfig::default()
    };
    auditlog_store::migrate(&cfg)
        .await
        .with_context(|| format!("migrate test database {} at {}", cfg.database, cfg.url))?;
    Ok(cfg)
}

/// Path of the local stack script, `deploy/local/stack.sh`.
pub fn stack_script() -> PathBuf {
    std::env::var_os("TEST_STACK_SCRIPT")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("deploy/local/stack.sh"))
}

/// The stack `env` describes on top of this process's environment (`STACK_PROFILE` defaults
/// to `test`), its output captured.
pub fn stack(env: &[(String, String)]) -> Result<Stack> {
    let mut vars = Vec::with_capacity(env.len() + 1);
    if std::env::var_os("STACK_PROFILE").is_none() {
        vars.push(("STACK_PROFILE".to_string(), "test".to_string()));
    }
    vars.extend(env.iter().cloned());
    Stack::with_vars(&vars)
}

/// Runs the stack command `ARGS` (`up`, `down`, `status`, `env`, `start|stop|restart
/// COMPONENT`, as `deploy/local/stack.sh ARGS` takes them) through the stack library, with
/// `env` added to this process's environment (`STACK_PROFILE` defaults to `test`); returns its
/// output, or fails with it. Blocking: call it from `tokio::task::spawn_blocking` in async
/// tests.
pub fn stack_command(env: &[(String, String)], args: &[&str]) -> Result<String> {
    let stack = stack(env)?;
    let component = |name: &str| {
        Component::parse(name).with_context(|| {
            format!("unknown component '{name}' (zookeeper, clickhouse, clickhouse2, broker, consumer, api)")
        })
    };
    let result: Result<()> = match args {
        ["up"] => stack.up().and_then(|report| {
            if report.problems.is_empty() {
                Ok(())
            } else {
                bail!("not ready: {}", report.problems.join(" "))
            }
        }),
        ["down"] => stack.down(),
        ["status"] => {
            let (table, ok) = stack.status();
            stack.log.plain(&table);
            if ok {
                Ok(())
            } else {
                bail!("a required component is not healthy")
            }
        }
        ["env"] => {
            stack.log.plain(stack.env_exports().trim_end());
            Ok(())
        }
        ["start", c] => component(c).and_then(|c| stack.start(c)).map(drop),
        ["stop", c] => component(c).and_then(|c| stack.stop(c)),
        ["restart", c] => component(c).and_then(|c| stack.restart(c)).map(drop),
        _ => bail!("unknown stack command {args:?}"),
    };
    let text = stack.output();
    match result {
        Ok(()) => Ok(text),
        Err(e) => bail!("stack.sh {} failed: {e:#}\n{text}", args.join(" ")),
    }
}

/// A private ClickHouse + broker of its own (free ports, own data directory under
/// `.data/private/`), started with the stack library, for tests that stop, kill or restart the
/// infrastructure without disturbing the shared test stack other tests use concurrently.
/// Dropping it stops its processes (`down`) and deletes its data.
#[derive(Debug)]
pub struct PrivateStack {
    owned: OwnedStack,
    clickhouse_port: u16,
    kafka_port: u16,
}

impl PrivateStack {
    /// Starts ClickHouse and the broker (topics and the `auditlog` schema included; takes about
    /// 2 s when the stack's software is installed). Blocking.
    ///
    /// The free ports are found by binding and releasing them, so another process can take one
    /// in between: a failed start is retried (up to 3 times) on new ports, and each failure is
    /// reported with the tail of the stack's logs before its data directory is removed.
    pub fn start() -> Result<Self> {
        private::start_with_retries("PrivateStack", Self::try_start)
    }

    fn try_start() -> Result<Self> {
        let ports = free_ports(5)?;
        let dir = workspace_root()
            .join(".data/private")
            .join(unique_name("stack"));
        let env = auditlog_stack::private_vars(
            &dir,
            &auditlog_stack::Ports {
                ch_http: ports[0],
                ch_tcp: ports[1],
                kafka: ports[2],
                api: ports[3],
                consumer: ports[4],
            },
        );
        Ok(Self {
            owned: OwnedStack::up("PrivateStack", env, dir)?,
            clickhouse_port: ports[0],
            kafka_port: ports[2],
        })
    }

    /// ClickHouse HTTP URL of this stack.
    pub fn clickhouse_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.clickhouse_port)
    }

    /// Bootstrap brokers of this stack.
    pub fn brokers(&self) -> String {
        format!("127.0.0.1:{}", self.kafka_port)
    }

    private::control_methods!();
}

/// The processes (PID, command name) started by the stack whose data directory is `dir`: those
/// carrying its `STACK_INSTANCE` marker in their environment.
pub fn stack_processes(dir: &Path) -> Vec<(u32, String)> {
    auditlog_stack::process::instance_processes(dir, None)
}

/// SIGKILL to `pid`, returning once it has exited entirely (10 s at most): its ports are free
/// then, so a restart of the component can follow at once. A process that is already gone is
/// no error.
pub fn sigkill(pid: u32) {
    auditlog_stack::process::sigkill(pid);
    auditlog_stack::process::wait_gone(pid, Duration::from_secs(10));
}

/// `n` distinct TCP ports free on 127.0.0.1 right now.
pub(crate) fn free_ports(n: usize) -> Result<Vec<u16>> {
    let listeners = (0..n)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0"))
        .collect::<std::io::Result<Vec<_>>>()
        .context("find free ports")?;
    listeners
        .iter()
        .map(|l| Ok(l.local_addr()?.port()))
        .collect()
}
