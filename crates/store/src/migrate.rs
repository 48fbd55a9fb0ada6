//! Versioned, idempotent schema migrations.
//!
//! The SQL lives in `deploy/clickhouse/migrations/NNNN_name.sql` and is embedded in the
//! binary. Applied versions are recorded in `schema_migrations`; each file is itself written
//! to be re-runnable (`IF NOT EXISTS`), so a crash between applying and recording is harmless.

use clickhouse::Client;
use tracing::info;

use auditlog_settings::BadSetting;

use crate::layout::Layout;
use crate::{on_cluster, ClickHouseConfig, Error, Result};

/// One embedded migration.
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    /// Version, the file's number.
    pub version: u32,
    /// The file's name.
    pub name: &'static str,
    /// Its SQL: one or more statements separated by `;` at the end of a line.
    pub sql: &'static str,
}

macro_rules! migration {
    ($version:literal, $name:literal) => {
        Migration {
            version: $version,
            name: $name,
            sql: include_str!(concat!("../../../deploy/clickhouse/migrations/", $name)),
        }
    };
}

/// Every migration, in order.
pub const MIGRATIONS: &[Migration] = &[
    migration!(1, "0001_events.sql"),
    migration!(2, "0002_workspace_plans.sql"),
    migration!(3, "0003_api_tokens.sql"),
    migration!(4, "0004_sink_batches.sql"),
    migration!(5, "0005_events_merge_old_partitions.sql"),
    migration!(6, "0006_events_compact_parts.sql"),
    migration!(7, "0007_events_retained_view.sql"),
    migration!(8, "0008_api_token_expiry_and_use.sql"),
    migration!(9, "0009_events_feed_index.sql"),
    migration!(10, "0010_streams.sql"),
    migration!(11, "0011_log.sql"),
    migration!(12, "0012_token_scopes.sql"),
    migration!(13, "0013_log_leaves_by_event.sql"),
];

/// Splits a migration file into statements (on `;` at the end of a line), dropping comments.
pub fn statements(sql: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    for line in sql.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with("--") || trimmed.is_empty() {
            continue;
        }
        cur.push_str(line);
        cur.push('\n');
        if trimmed.ends_with(';') {
            let stmt = cur.trim().trim_end_matches(';').trim().to_owned();
            if !stmt.is_empty() {
                out.push(stmt);
            }
            cur.clear();
        }
    }
    if !cur.trim().is_empty() {
        out.push(cur.trim().to_owned());
    }
    out
}

/// The migrations' own table (created before any migration runs).
const SCHEMA_MIGRATIONS: &str = "CREATE TABLE IF NOT EXISTS schema_migrations (\
       version UInt32, name String, applied_at DateTime64(3, 'UTC') DEFAULT now64(3)\
     ) ENGINE = ReplacingMergeTree ORDER BY version";

/// Creates the database if needed and applies every migration not yet recorded.
/// Returns the versions applied by this call.
///
/// With `clickhouse.cluster` set, every statement runs `ON CLUSTER` in its replicated form
/// ([`crate::on_cluster`]); the cluster must exist in the server's `remote_servers`, and a
/// database created for the other layout is refused (naming `clickhouse.cluster`).
pub async fn migrate(cfg: &ClickHouseConfig) -> Result<Vec<u32>> {
    cfg.validate()?;
    let layout = cfg.layout();
    let server = cfg.server_client();
    if let Layout::Cluster(name) = &layout {
        check_cluster(&server, name).await?;
    }
    server
        .query(&format!(
            "CREATE DATABASE IF NOT EXISTS `{}`{}",
            cfg.database,
            layout.on_cluster()
        ))
        .execute()
        .await
        .map_err(|e| Error::clickhouse("create database", e))?;
    let client = cfg.client();
    if let Some(found) = Layout::detect(&client).await? {
        check_same_layout(&found, &layout, &cfg.database)?;
    }
    for stmt in render(SCHEMA_MIGRATIONS, &layout, &cfg.database)? {
        client
            .query(&stmt)
            .execute()
            .await
            .map_err(|e| Error::clickhouse("create schema_migrations", e))?;
    }
    let done: Vec<u32> = client
        .query("SELECT DISTINCT version FROM schema_migrations ORDER BY version")
        .fetch_all()
        .await
        .map_err(|e| Error::clickhouse("read schema_migrations", e))?;
    let mut applied = Vec::new();
    for m in MIGRATIONS.iter().filter(|m| !done.contains(&m.version)) {
        apply(&client, m, &layout, &cfg.database).await?;
        applied.push(m.version);
    }
    Ok(applied)
}

/// The statements of one migration statement for `layout`.
pub fn render(stmt: &str, layout: &Layout, database: &str) -> Result<Vec<String>> {
    match layout {
        Layout::Single => Ok(vec![stmt.to_owned()]),
        Layout::Cluster(cluster) => {
            on_cluster::rewrite(stmt, cluster, database).map_err(|e| Error::Invalid {
                field: "migration",
                reason: e.to_string(),
            })
        }
    }
}

/// The cluster is one the server knows.
async fn check_cluster(server: &Client, name: &str) -> Result<()> {
    let hosts: u64 = server
        .query("SELECT count() FROM system.clusters WHERE cluster = ?")
        .bind(name)
        .fetch_one()
        .await
        .map_err(|e| Error::clickhouse("read system.clusters", e))?;
    if hosts == 0 {
        return Err(BadSetting::new(
            "clickhouse.cluster",
            format!("the server has no cluster {name:?} in its remote_servers configuration"),
        )
        .into());
    }
    Ok(())
}

/// A database keeps the layout it was created with.
pub(crate) fn check_same_layout(found: &Layout, wanted: &Layout, database: &str) -> Result<()> {
    if found == wanted {
        return Ok(());
    }
    let was = match found {
        Layout::Single => "for a single server (clickhouse.cluster empty)".to_owned(),
        Layout::Cluster(c) => format!("on cluster {c:?}"),
    };
    Err(BadSetting::new(
        "clickhouse.cluster",
        format!(
            "database {database:?} was created {was}; set clickhouse.cluster to match it \
             (moving a database between layouts is a copy, see docs/cluster.md)"
        ),
    )
    .into())
}

async fn apply(client: &Client, m: &Migration, layout: &Layout, database: &str) -> Result<()> {
    info!(version = m.version, name = m.name, "applying migration");
    for stmt in statements(m.sql) {
        for stmt in render(&stmt, layout, database)? {
            client
                .query(&stmt)
                .execute()
                .await
                .map_err(|e| Error::clickhouse(m.name, e))?;
        }
    }
    client
        .query("INSERT INTO schema_migrations (version, name) VALUES (?, ?)")
        .bind(m.version)
        .bind(m.name)
        .execute()
        .await
        .map_err(|e| Error::clickhouse("record migration", e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_are_numbered_in_order_and_parse() {
        for (i, m) in MIGRATIONS.iter().enumerate() {
            assert_eq!(m.version as usize, i + 1, "{}", m.name);
            assert!(
                m.name.starts_with(&format!("{:04}_", m.version)),
                "{}",
                m.name
            );
            assert!(!statements(m.sql).is_empty(), "{} has no statement", m.name);
        }
    }

    #[test]
    fn statements_split_on_line_end_semicolons_and_skip_comments() {
        let s = statements("-- c\nCREATE TABLE a (x String COMMENT 'a;b');\n\nSELECT 1;\n");
        assert_eq!(
            s,
            vec!["CREATE TABLE a (x String COMMENT 'a;b')", "SELECT 1"]
        );
    }
}
