//! The relay's side: claim committed rows bucket by bucket, then delete what was shipped.

use auditlog_event::Prepared;

use crate::error::Error;

/// One outbox row as the relay reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxRow {
    /// Its number in its workspace's sequence (commit order, no gaps).
    pub seq: i64,
    /// The event exactly as it was written (`workspace_id`, `event_id`, `event_type`, JSON).
    pub prepared: Prepared,
}

/// An outbox database, PostgreSQL or MySQL/MariaDB, chosen by the URL's scheme.
#[derive(Debug, Clone)]
pub enum Outbox {
    /// `postgres://` or `postgresql://`.
    #[cfg(feature = "postgres")]
    Postgres(sqlx::PgPool),
    /// `mysql://` or `mariadb://`.
    #[cfg(feature = "mysql")]
    MySql(sqlx::MySqlPool),
}

impl Outbox {
    /// Connects a pool of at most `max_connections` to `url`.
    pub async fn connect(url: &str, max_connections: u32) -> Result<Self, Error> {
        let _ = (url, max_connections);
        todo!("outbox helper")
    }

    /// Runs the migration of this database kind (idempotent).
    pub async fn migrate(&self) -> Result<(), Error> {
        todo!("outbox helper")
    }

    /// Starts a claim: one transaction that locks every bucket no other relay holds (at most
    /// `max_buckets`; `SKIP LOCKED`) and reads at most `limit` of their rows in
    /// `(workspace_id, seq)` order. An empty claim has no rows (and holds nothing once dropped).
    pub async fn claim(&self, limit: usize, max_buckets: usize) -> Result<Claim, Error> {
        let _ = (limit, max_buckets);
        todo!("outbox helper")
    }

    /// Rows in the outbox now (a metric: the relay's backlog).
    pub async fn len(&self) -> Result<u64, Error> {
        todo!("outbox helper")
    }

    /// Whether this is PostgreSQL (which can `LISTEN` for [`crate::NOTIFY_CHANNEL`]).
    pub fn is_postgres(&self) -> bool {
        todo!("outbox helper")
    }
}

/// Rows claimed by one relay: the buckets stay locked until [`Claim::finish`] or drop
/// (rollback: nothing deleted, another relay or the next claim ships them again).
pub struct Claim {
    /// The rows, in `(workspace_id, seq)` order.
    pub rows: Vec<OutboxRow>,
    /// The open transaction holding the bucket locks (private: finish or drop it).
    tx: ClaimTx,
}

#[allow(dead_code)] // filled in by the outbox helper
enum ClaimTx {
    None,
    #[cfg(feature = "postgres")]
    Postgres(sqlx::Transaction<'static, sqlx::Postgres>),
    #[cfg(feature = "mysql")]
    MySql(sqlx::Transaction<'static, sqlx::MySql>),
}

impl std::fmt::Debug for Claim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Claim")
            .field("rows", &self.rows.len())
            .finish()
    }
}

impl Claim {
    /// Deletes the rows the broker acknowledged and commits, releasing the buckets.
    /// `delivered[i]` says whether `rows[i]` was acknowledged; per workspace only the
    /// acknowledged rows *before its first failure* are deleted (a later row goes out again
    /// after the failed one, so the workspace's order holds). Returns the rows deleted.
    pub async fn finish(self, delivered: &[bool]) -> Result<u64, Error> {
        let _ = (delivered, &self.tx);
        todo!("outbox helper")
    }
}
