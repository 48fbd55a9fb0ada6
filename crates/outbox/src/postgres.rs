//! The PostgreSQL outbox: migration and the write inside the caller's transaction.

use std::collections::HashMap;

use auditlog_event::{AuditEvent, Prepared};
use sqlx::{Connection as _, PgConnection};
use uuid::Uuid;

use crate::bucket_of;
use crate::error::WriteError;
use crate::plan;

/// The advisory lock concurrent migrations take turns on (`auditlog` in ASCII).
const MIGRATION_LOCK: i64 = 0x6175_6469_746c_6f67;

/// The migration that creates the outbox tables, the buckets and the `NOTIFY` trigger
/// (idempotent: `IF NOT EXISTS` throughout). Also shipped as `migrations/postgres.sql`.
pub const MIGRATION: &str = include_str!("../migrations/postgres.sql");

/// Runs [`MIGRATION`] on `conn`, in one transaction (a savepoint inside the caller's) under an
/// advisory lock, so concurrent migrations wait for each other.
pub async fn migrate(conn: &mut PgConnection) -> Result<(), sqlx::Error> {
    let mut tx = conn.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(MIGRATION_LOCK)
        .execute(&mut *tx)
        .await?;
    sqlx::raw_sql(MIGRATION).execute(&mut *tx).await?;
    tx.commit().await
}

/// Validates `event` exactly as `Producer::emit` does and writes it into the outbox in the
/// caller's transaction (pass `&mut tx`). Returns its `event_id`. Nothing is written for an
/// invalid event ([`WriteError::Invalid`] names the field).
pub async fn write(conn: &mut PgConnection, event: &AuditEvent) -> Result<Uuid, WriteError> {
    let prepared = event.prepare()?;
    write_prepared(conn, std::slice::from_ref(&prepared)).await?;
    Ok(prepared.event_id)
}

/// Writes several events in one statement (all valid, or none written).
pub async fn write_all(
    conn: &mut PgConnection,
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
    conn: &mut PgConnection,
    events: &[Prepared],
) -> Result<(), sqlx::Error> {
    if events.is_empty() {
        return Ok(());
    }
    let (workspaces, counts) = plan::counts(events);
    let last: HashMap<String, i64> = sqlx::query_as(
        "INSERT INTO auditlog_outbox_seq (workspace_id, last_seq) \
         SELECT w, n FROM unnest($1::text[], $2::bigint[]) AS u(w, n) ORDER BY w \
         ON CONFLICT (workspace_id) \
         DO UPDATE SET last_seq = auditlog_outbox_seq.last_seq + EXCLUDED.last_seq \
         RETURNING workspace_id, last_seq",
    )
    .bind(&workspaces)
    .bind(&counts)
    .fetch_all(&mut *conn)
    .await?
    .into_iter()
    .collect();
    let seqs = plan::assign(events, &last).ok_or_else(|| {
        sqlx::Error::Protocol("the sequence upsert did not return every workspace".into())
    })?;
    sqlx::query(
        "INSERT INTO auditlog_outbox (workspace_id, seq, bucket, event_id, event_type, body) \
         SELECT * FROM unnest($1::text[], $2::bigint[], $3::smallint[], $4::uuid[], \
                              $5::text[], $6::bytea[])",
    )
    .bind(
        events
            .iter()
            .map(|e| e.workspace_id.as_str())
            .collect::<Vec<_>>(),
    )
    .bind(&seqs)
    .bind(
        events
            .iter()
            .map(|e| bucket_of(&e.workspace_id))
            .collect::<Vec<_>>(),
    )
    .bind(events.iter().map(|e| e.event_id).collect::<Vec<_>>())
    .bind(
        events
            .iter()
            .map(|e| e.event_type.as_str())
            .collect::<Vec<_>>(),
    )
    .bind(events.iter().map(|e| e.json.as_slice()).collect::<Vec<_>>())
    .execute(&mut *conn)
    .await?;
    Ok(())
}
