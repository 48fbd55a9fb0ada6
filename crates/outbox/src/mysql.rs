//! The MySQL / MariaDB outbox: migration and the write inside the caller's transaction.

use std::collections::HashMap;

use auditlog_event::{AuditEvent, Prepared};
use sqlx::{MySql, MySqlConnection, QueryBuilder};
use uuid::Uuid;

use crate::bucket_of;
use crate::error::WriteError;
use crate::plan;

/// Rows per multi-row `INSERT` (6 placeholders each; MySQL allows 65535 per statement).
pub(crate) const ROWS_PER_STATEMENT: usize = 2000;

/// The migration that creates the outbox tables and the buckets
/// (idempotent: `IF NOT EXISTS` throughout). Also shipped as `migrations/mysql.sql`.
pub const MIGRATION: &str = include_str!("../migrations/mysql.sql");

/// Runs [`MIGRATION`] on `conn` under a named lock (`GET_LOCK`), so concurrent migrations
/// wait for each other. MySQL commits DDL at once: do not call it inside a transaction that
/// holds other changes.
pub async fn migrate(conn: &mut MySqlConnection) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT GET_LOCK('auditlog_outbox_migrate', 60)")
        .execute(&mut *conn)
        .await?;
    let done = sqlx::raw_sql(MIGRATION).execute(&mut *conn).await;
    let released = sqlx::query("SELECT RELEASE_LOCK('auditlog_outbox_migrate')")
        .execute(&mut *conn)
        .await;
    done?;
    released?;
    Ok(())
}

/// Validates `event` exactly as `Producer::emit` does and writes it into the outbox in the
/// caller's transaction (pass `&mut tx`). Returns its `event_id`. Nothing is written for an
/// invalid event ([`WriteError::Invalid`] names the field).
pub async fn write(conn: &mut MySqlConnection, event: &AuditEvent) -> Result<Uuid, WriteError> {
    let prepared = event.prepare()?;
    write_prepared(conn, std::slice::from_ref(&prepared)).await?;
    Ok(prepared.event_id)
}

/// Writes several events in one statement (all valid, or none written).
pub async fn write_all(
    conn: &mut MySqlConnection,
    events: &[AuditEvent],
) -> Result<Vec<Uuid>, WriteError> {
    let prepared = events
        .iter()
        .map(AuditEvent::prepare)
        .collect::<Result<Vec<_>, _>>()?;
    write_prepared(conn, &prepared).await?;
    Ok(prepared.iter().map(|p| p.event_id).collect())
}

/// Writes prepared events: takes the next sequence numbers of each workspace (the counter row
/// stays locked until the caller's transaction ends) and inserts the rows.
pub async fn write_prepared(
    conn: &mut MySqlConnection,
    events: &[Prepared],
) -> Result<(), sqlx::Error> {
    if events.is_empty() {
        return Ok(());
    }
    let (workspaces, counts) = plan::counts(events);
    // Locks the counter rows in sorted order (the VALUES order) until the transaction ends.
    let mut upsert =
        QueryBuilder::<MySql>::new("INSERT INTO auditlog_outbox_seq (workspace_id, last_seq) ");
    upsert.push_values(workspaces.iter().zip(&counts), |mut row, (w, n)| {
        row.push_bind(*w).push_bind(*n);
    });
    upsert.push(" ON DUPLICATE KEY UPDATE last_seq = last_seq + VALUES(last_seq)");
    upsert.build().execute(&mut *conn).await?;
    // A locking read: the rows are ours already, and it reads their newest version.
    let mut read = QueryBuilder::<MySql>::new(
        "SELECT workspace_id, last_seq FROM auditlog_outbox_seq WHERE workspace_id IN (",
    );
    let mut list = read.separated(", ");
    for w in &workspaces {
        list.push_bind(*w);
    }
    read.push(") FOR UPDATE");
    // utf8mb4_bin columns come back as VARBINARY: read bytes (we wrote UTF-8).
    let last: HashMap<String, i64> = read
        .build_query_as::<(Vec<u8>, i64)>()
        .fetch_all(&mut *conn)
        .await?
        .into_iter()
        .map(|(w, n)| (String::from_utf8_lossy(&w).into_owned(), n))
        .collect();
    let seqs = plan::assign(events, &last).ok_or_else(|| {
        sqlx::Error::Protocol("the sequence read did not return every workspace".into())
    })?;
    for (chunk, seqs) in events
        .chunks(ROWS_PER_STATEMENT)
        .zip(seqs.chunks(ROWS_PER_STATEMENT))
    {
        let mut insert = QueryBuilder::<MySql>::new(
            "INSERT INTO auditlog_outbox (workspace_id, seq, bucket, event_id, event_type, body) ",
        );
        insert.push_values(chunk.iter().zip(seqs), |mut row, (e, seq)| {
            row.push_bind(e.workspace_id.as_str())
                .push_bind(*seq)
                .push_bind(bucket_of(&e.workspace_id))
                .push_bind(e.event_id.hyphenated().to_string())
                .push_bind(e.event_type.as_str())
                .push_bind(e.json.as_slice());
        });
        insert.build().execute(&mut *conn).await?;
    }
    Ok(())
}
