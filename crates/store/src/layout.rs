//! Where the tables live: one server, or a cluster (`clickhouse.cluster`), and the names
//! statements that change tables must use there.
//!
//! On a cluster `events` is a `Distributed` table over `events_local` (replicated per shard):
//! reads and inserts use `events` as on one server; statements that change rows or settings
//! (mutations, `MATERIALIZE TTL`, `MODIFY SETTING`) go to `events_local ON CLUSTER`.
//! [`Layout::detect`] reads the layout from the database itself, so code holding only a client
//! (plan changes in the API, the consumer, the CLI) does the right thing on either.

use clickhouse::Client;
use serde::Deserialize;

use crate::{Error, Result};

/// Name of the replicated table under the `Distributed` `events` table on a cluster.
pub const EVENTS_LOCAL: &str = "events_local";

/// One server or a named cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Layout {
    /// Plain MergeTree tables on one server.
    Single,
    /// Replicated tables created `ON CLUSTER` this `remote_servers` cluster.
    Cluster(String),
}

impl Layout {
    /// The layout for a `clickhouse.cluster` setting (empty: one server).
    pub fn configured(cluster: &str) -> Self {
        if cluster.is_empty() {
            Layout::Single
        } else {
            Layout::Cluster(cluster.to_owned())
        }
    }

    /// The layout of the client's database, from the engine of its `events` table
    /// (`Distributed('cluster', ...)` on a cluster). `None` when there is no `events` table yet.
    pub async fn detect(client: &Client) -> Result<Option<Self>> {
        #[derive(Deserialize, clickhouse::Row)]
        struct Engine {
            engine: String,
            engine_full: String,
        }
        let found: Option<Engine> = client
            .query(
                "SELECT engine, engine_full FROM system.tables \
                 WHERE database = currentDatabase() AND name = 'events'",
            )
            .fetch_optional()
            .await
            .map_err(|e| Error::clickhouse("read the events table's engine", e))?;
        Ok(found.map(|e| {
            if e.engine == "Distributed" {
                Layout::Cluster(first_quoted(&e.engine_full).unwrap_or_default())
            } else {
                Layout::Single
            }
        }))
    }

    /// The table holding the events' rows: `events`, or `events_local` on a cluster.
    pub fn events_rows(&self) -> &'static str {
        match self {
            Layout::Single => "events",
            Layout::Cluster(_) => EVENTS_LOCAL,
        }
    }

    /// `ALTER TABLE <rows table>[ ON CLUSTER ...] <rest>`: a mutation, TTL or constraint change
    /// of the events' rows (`rest` e.g. `MATERIALIZE TTL`).
    pub fn alter_events(&self, rest: &str) -> String {
        format!(
            "ALTER TABLE {}{} {rest}",
            self.events_rows(),
            self.on_cluster()
        )
    }

    /// `OPTIMIZE TABLE <rows table>[ ON CLUSTER ...] FINAL`, waiting until every replica has
    /// the merged parts (`alter_sync = 2`).
    pub fn optimize_events(&self) -> String {
        format!(
            "OPTIMIZE TABLE {}{} FINAL SETTINGS alter_sync = 2",
            self.events_rows(),
            self.on_cluster()
        )
    }

    /// `SYSTEM <command>[ ON CLUSTER ...] <database>.<rows table>` (`command` e.g.
    /// `STOP TTL MERGES`): on every server of a cluster.
    pub fn system_on_events(&self, command: &str, database: &str) -> String {
        format!(
            "SYSTEM {command}{} {database}.{}",
            self.on_cluster(),
            self.events_rows()
        )
    }

    /// ` ON CLUSTER 'name'` on a cluster, empty on one server.
    pub fn on_cluster(&self) -> String {
        match self {
            Layout::Single => String::new(),
            Layout::Cluster(name) => format!(" ON CLUSTER '{name}'"),
        }
    }
}

/// The first single-quoted argument of an engine definition (`Distributed('c', ...)` -> `c`).
fn first_quoted(engine_full: &str) -> Option<String> {
    let start = engine_full.find('\'')? + 1;
    let len = engine_full[start..].find('\'')?;
    Some(engine_full[start..start + len].to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_layout() {
        let single = Layout::configured("");
        assert_eq!(single, Layout::Single);
        assert_eq!(single.events_rows(), "events");
        assert_eq!(single.on_cluster(), "");
        let cluster = Layout::configured("auditlog");
        assert_eq!(cluster.events_rows(), "events_local");
        assert_eq!(cluster.on_cluster(), " ON CLUSTER 'auditlog'");
        assert_eq!(
            cluster.alter_events("MATERIALIZE TTL"),
            "ALTER TABLE events_local ON CLUSTER 'auditlog' MATERIALIZE TTL"
        );
        assert_eq!(
            cluster.system_on_events("STOP TTL MERGES", "db"),
            "SYSTEM STOP TTL MERGES ON CLUSTER 'auditlog' db.events_local"
        );
        assert_eq!(
            single.optimize_events(),
            "OPTIMIZE TABLE events FINAL SETTINGS alter_sync = 2"
        );
    }

    #[test]
    fn the_cluster_is_read_from_the_distributed_engine() {
        assert_eq!(
            first_quoted("Distributed('auditlog', 'db', 'events_local', cityHash64(workspace_id))")
                .as_deref(),
            Some("auditlog")
        );
        assert_eq!(first_quoted("ReplacingMergeTree"), None);
    }
}
