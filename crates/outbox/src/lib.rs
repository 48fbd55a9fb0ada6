//! The transactional outbox (docs/outbox.md).
//!
//! A service writes its audit event into the outbox table **inside its own transaction**,
//! next to the change it records: the event exists exactly when the change committed.
//! `auditlog relay` ([`Outbox::claim`]) ships committed rows to Kafka and deletes them once the
//! broker acknowledged them.
//!
//! ```no_run
//! # async fn run(pool: sqlx::PgPool, event: auditlog_event::AuditEvent) -> Result<(), Box<dyn std::error::Error>> {
//! let mut tx = pool.begin().await?;
//! // ... the service's own change, in `tx` ...
//! auditlog_outbox::postgres::write(&mut tx, &event).await?; // validated exactly as `emit` does
//! tx.commit().await?; // the event is now durable; the relay ships it within milliseconds
//! # Ok(()) }
//! ```
//!
//! - **Order.** Every row gets the next number of its workspace's sequence
//!   (`auditlog_outbox_seq`, one row per workspace, updated in the writer's transaction). The
//!   row lock on that counter is held until the writer commits, so one workspace's sequence
//!   numbers follow commit order, without gaps (a rollback gives its numbers back). Writers of
//!   *different* workspaces never wait for each other; writers of the same workspace wait from
//!   their outbox write to their commit (write the event last in the transaction).
//! - **Sharing between relays.** Each row carries its workspace's [`bucket_of`]; a relay
//!   locks the buckets it ships (`FOR UPDATE SKIP LOCKED` on `auditlog_outbox_bucket`), so two
//!   relays never ship one workspace at the same time, and one workspace's rows go out in
//!   sequence order.
//! - **Wake-up.** On PostgreSQL an insert trigger sends `NOTIFY auditlog_outbox` (delivered at
//!   commit), so the relay need not poll hard; MySQL has no such thing and is polled.

pub mod bucket;
pub mod claim;
pub mod error;
#[cfg(feature = "mysql")]
pub mod mysql;
mod plan;
#[cfg(feature = "postgres")]
pub mod postgres;

pub use bucket::{bucket_of, BUCKETS};
pub use claim::{Claim, Outbox, OutboxRow};
pub use error::{Error, WriteError};

/// The `NOTIFY` channel of PostgreSQL outbox inserts.
pub const NOTIFY_CHANNEL: &str = "auditlog_outbox";
