//! The PostgreSQL outbox: migration and the write inside the caller's transaction.

use auditlog_event::{AuditEvent, Prepared};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::error::WriteError;

/// The migration that creates the outbox tables, the buckets and the `NOTIFY` trigger
/// (idempotent: `IF NOT EXISTS` throughout). Also shipped as `migrations/postgres.sql`.
pub const MIGRATION: &str = include_str!("../migrations/postgres.sql");

/// Runs [`MIGRATION`] on `conn`.
pub async fn migrate(conn: &mut PgConnection) -> Result<(), sqlx::Error> {
    let _ = conn;
    todo!("outbox helper")
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
    let _ = (conn, events);
    todo!("outbox helper")
}
