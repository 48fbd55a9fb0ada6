//! The migrations' statements rewritten for a cluster.
//!
//! The migration files are written for one server (what analysts read, and what every
//! existing single-server database ran). On a cluster each statement becomes its `ON CLUSTER`
//! form, by these rules (docs/cluster.md):
//!
//! - `CREATE TABLE events`: the rows go to `events_local`, a
//!   `Replicated<Engine>('/clickhouse/tables/{database}/{shard}/events', '{replica}')`, and
//!   `events` becomes `Distributed(cluster, database, events_local, cityHash64(workspace_id))`,
//!   so a workspace lives on one shard and `FINAL` deduplicates inside it.
//! - Every other table is replicated to every server of the cluster (small tables every server
//!   reads: plans, tokens, the consumer's batch journal):
//!   `/clickhouse/tables/{database}/all/<table>`, replica `{shard}-{replica}`.
//! - `non_replicated_deduplication_window` becomes `replicated_deduplication_window`, same size.
//! - `ALTER TABLE events`: column changes go to both tables, the rest (settings, mutations,
//!   constraints, indexes) to `events_local`. Views and other tables: `ON CLUSTER` added.
//!
//! A statement of another shape is refused, so a new migration cannot silently skip this.

use crate::layout::EVENTS_LOCAL;

/// A migration statement this module has no rule for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no cluster form for the statement starting {0:?}")]
pub struct Unsupported(pub String);

/// The statements to run on cluster `cluster` (a checked name) for one single-server
/// statement of database `database`.
pub fn rewrite(stmt: &str, cluster: &str, database: &str) -> Result<Vec<String>, Unsupported> {
    let on = format!("ON CLUSTER '{cluster}'");
    let stmt = stmt.replace(
        "non_replicated_deduplication_window",
        "replicated_deduplication_window",
    );
    if let Some((name, rest)) = after(&stmt, &["CREATE", "TABLE", "IF", "NOT", "EXISTS"]) {
        return create_table(name, rest, &on, cluster, database);
    }
    if let Some((name, rest)) = after(&stmt, &["CREATE", "VIEW", "IF", "NOT", "EXISTS"]) {
        return Ok(vec![format!(
            "CREATE VIEW IF NOT EXISTS {name} {on} {rest}"
        )]);
    }
    if let Some((name, rest)) = after(&stmt, &["CREATE", "OR", "REPLACE", "VIEW"]) {
        return Ok(vec![format!("CREATE OR REPLACE VIEW {name} {on} {rest}")]);
    }
    if let Some((name, rest)) = after(&stmt, &["ALTER", "TABLE"]) {
        if name != "events" {
            return Ok(vec![format!("ALTER TABLE {name} {on} {rest}")]);
        }
        let local = format!("ALTER TABLE {EVENTS_LOCAL} {on} {rest}");
        if changes_columns(rest) {
            return Ok(vec![local, format!("ALTER TABLE events {on} {rest}")]);
        }
        return Ok(vec![local]);
    }
    Err(Unsupported(stmt.chars().take(60).collect()))
}

/// `CREATE TABLE name (...) ENGINE = X(args) ...` on the cluster.
fn create_table(
    name: &str,
    rest: &str,
    on: &str,
    cluster: &str,
    database: &str,
) -> Result<Vec<String>, Unsupported> {
    let unsupported = || Unsupported(format!("CREATE TABLE IF NOT EXISTS {name}"));
    let at = rest.find("ENGINE = ").ok_or_else(unsupported)? + "ENGINE = ".len();
    let engine_len = rest[at..]
        .find(|c: char| !c.is_ascii_alphanumeric())
        .unwrap_or(rest.len() - at);
    let engine = &rest[at..at + engine_len];
    if !engine.ends_with("MergeTree") || engine.starts_with("Replicated") {
        return Err(unsupported());
    }
    let after_engine = &rest[at + engine_len..];
    // The engine's own arguments, if any, follow the replication path and replica name.
    let (args, tail) = match after_engine.strip_prefix('(') {
        Some(inner) => {
            let close = inner.find(')').ok_or_else(unsupported)?;
            (inner[..close].trim(), &inner[close + 1..])
        }
        None => ("", after_engine),
    };
    let (table, path, replica) = if name == "events" {
        (EVENTS_LOCAL, "{shard}/events".to_owned(), "{replica}")
    } else {
        (name, format!("all/{name}"), "{shard}-{replica}")
    };
    let mut replicated =
        format!("Replicated{engine}('/clickhouse/tables/{{database}}/{path}', '{replica}'");
    if !args.is_empty() {
        replicated.push_str(", ");
        replicated.push_str(args);
    }
    replicated.push(')');
    let mut out = vec![format!(
        "CREATE TABLE IF NOT EXISTS {table} {on} {}{replicated}{tail}",
        &rest[..at]
    )];
    if name == "events" {
        out.push(format!(
            "CREATE TABLE IF NOT EXISTS events {on} AS {EVENTS_LOCAL} \
             ENGINE = Distributed('{cluster}', '{database}', '{EVENTS_LOCAL}', cityHash64(workspace_id)) \
             COMMENT 'Audit events on cluster {cluster}: reads and inserts go here; rows live in {EVENTS_LOCAL} (one shard per workspace).'"
        ));
    }
    Ok(out)
}

/// Whether an `ALTER TABLE` changes columns (which the `Distributed` table must mirror).
fn changes_columns(rest: &str) -> bool {
    let words: Vec<String> = rest
        .split_whitespace()
        .take(2)
        .map(str::to_ascii_uppercase)
        .collect();
    matches!(
        (
            words.first().map(String::as_str),
            words.get(1).map(String::as_str)
        ),
        (
            Some("ADD" | "DROP" | "MODIFY" | "RENAME" | "COMMENT" | "CLEAR"),
            Some("COLUMN")
        )
    )
}

/// When `stmt` starts with the keywords `words` (any whitespace, any case) and a name: the
/// name and the rest of the statement.
fn after<'a>(stmt: &'a str, words: &[&str]) -> Option<(&'a str, &'a str)> {
    let mut rest = stmt.trim_start();
    for w in words {
        let (head, tail) = rest.split_at(rest.find(char::is_whitespace)?);
        if !head.eq_ignore_ascii_case(w) {
            return None;
        }
        rest = tail.trim_start();
    }
    let end = rest
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(rest.len());
    if end == 0 {
        return None;
    }
    Some((&rest[..end], rest[end..].trim_start()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::migrate::{statements, MIGRATIONS};

    fn one(stmt: &str) -> Vec<String> {
        rewrite(stmt, "c1", "db").unwrap()
    }

    #[test]
    fn every_migration_has_a_cluster_form() {
        for m in MIGRATIONS {
            for stmt in statements(m.sql) {
                let out = rewrite(&stmt, "c1", "db").unwrap_or_else(|e| panic!("{}: {e}", m.name));
                for s in &out {
                    assert!(s.contains("ON CLUSTER 'c1'"), "{}: {s}", m.name);
                    assert!(!s.contains("non_replicated"), "{}: {s}", m.name);
                    if s.contains("MergeTree") {
                        assert!(s.contains("ENGINE = Replicated"), "{}: {s}", m.name);
                    }
                }
            }
        }
    }

    #[test]
    fn events_become_a_replicated_local_table_under_a_distributed_one() {
        let out = one(
            "CREATE TABLE IF NOT EXISTS events\n(\n  x String\n)\nENGINE = ReplacingMergeTree\n\
             ORDER BY x\nSETTINGS non_replicated_deduplication_window = 10000",
        );
        assert_eq!(out.len(), 2);
        assert!(
            out[0].starts_with(
                "CREATE TABLE IF NOT EXISTS events_local ON CLUSTER 'c1' (\n  x String\n)\n"
            ),
            "{}",
            out[0]
        );
        assert!(out[0].contains("ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{database}/{shard}/events', '{replica}')\nORDER BY x"), "{}", out[0]);
        assert!(
            out[0].contains("replicated_deduplication_window = 10000"),
            "{}",
            out[0]
        );
        assert!(out[1].contains("AS events_local ENGINE = Distributed('c1', 'db', 'events_local', cityHash64(workspace_id))"), "{}", out[1]);
    }

    #[test]
    fn small_tables_replicate_everywhere_and_keep_engine_arguments() {
        let out = one("CREATE TABLE IF NOT EXISTS plans (w String, u DateTime) ENGINE = ReplacingMergeTree(u) ORDER BY w");
        assert_eq!(out, vec!["CREATE TABLE IF NOT EXISTS plans ON CLUSTER 'c1' (w String, u DateTime) ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{database}/all/plans', '{shard}-{replica}', u) ORDER BY w"]);
    }

    #[test]
    fn alters_of_events_go_to_the_right_tables() {
        assert_eq!(
            one("ALTER TABLE events MODIFY SETTING a = 1"),
            vec!["ALTER TABLE events_local ON CLUSTER 'c1' MODIFY SETTING a = 1"]
        );
        assert_eq!(
            one("ALTER TABLE events ADD COLUMN IF NOT EXISTS y String"),
            vec![
                "ALTER TABLE events_local ON CLUSTER 'c1' ADD COLUMN IF NOT EXISTS y String",
                "ALTER TABLE events ON CLUSTER 'c1' ADD COLUMN IF NOT EXISTS y String"
            ]
        );
        assert_eq!(
            one("ALTER TABLE api_tokens ADD COLUMN z UInt8"),
            vec!["ALTER TABLE api_tokens ON CLUSTER 'c1' ADD COLUMN z UInt8"]
        );
        assert_eq!(
            one("CREATE VIEW IF NOT EXISTS v AS SELECT 1"),
            vec!["CREATE VIEW IF NOT EXISTS v ON CLUSTER 'c1' AS SELECT 1"]
        );
    }

    #[test]
    fn other_statements_are_refused() {
        assert!(rewrite("INSERT INTO events VALUES (1)", "c1", "db").is_err());
        assert!(rewrite(
            "CREATE TABLE IF NOT EXISTS t (x UInt8) ENGINE = Memory",
            "c1",
            "db"
        )
        .is_err());
    }
}
