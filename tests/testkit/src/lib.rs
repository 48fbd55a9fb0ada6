//! Helpers for tests against the real local stack started by `tests/run.sh`
//! (or by hand: `STACK_PROFILE=test deploy/local/stack.sh up`).
//!
//! Every test gets its own topic and database ([`unique_name`], [`create_topic`],
//! [`fresh_database`]) so tests run in parallel without seeing each other's data.
//! The stack's addresses come from `TEST_CLICKHOUSE_URL` and `TEST_KAFKA_BROKERS`, defaulting
//! to the test profile's ports. A test that cannot reach the stack fails; it is never skipped.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context as _, Result};
use auditlog_store::ClickHouseConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::types::RDKafkaErrorCode;

/// ClickHouse HTTP URL of the test stack (`TEST_CLICKHOUSE_URL`, default `http://127.0.0.1:18123`).
pub fn clickhouse_url() -> String {
    std::env::var("TEST_CLICKHOUSE_URL").unwrap_or_else(|_| "http://127.0.0.1:18123".into())
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
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers())
        .create()
        .context("admin client")?;
    let topic = NewTopic::new(name, partitions, TopicReplication::Fixed(1));
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    let results = admin
        .create_topics([&topic], &opts)
        .await
        .with_context(|| format!("create topic {name} on {}", brokers()))?;
    for r in results {
        match r {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((t, code)) => bail!("create topic {t}: {code}"),
        }
    }
    Ok(())
}

/// ClickHouse settings for a new database named after `prefix`, with every migration applied.
pub async fn fresh_database(prefix: &str) -> Result<ClickHouseConfig> {
    let cfg = ClickHouseConfig {
        url: clickhouse_url(),
        database: unique_name(prefix),
        ..ClickHouseConfig::default()
    };
    auditlog_store::migrate(&cfg)
        .await
        .with_context(|| format!("migrate test database {} at {}", cfg.database, cfg.url))?;
    Ok(cfg)
}
