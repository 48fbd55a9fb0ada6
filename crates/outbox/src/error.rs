//! Typed errors of the outbox.

use auditlog_event::ValidationError;

/// Why [`crate::postgres::write`] or [`crate::mysql::write`] refused or failed. Either way
/// the caller's transaction should be rolled back (or the event fixed and written again).
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// The event broke a rule (the same rules `Producer::emit` applies); nothing was written.
    #[error("invalid audit event: {0}")]
    Invalid(#[from] ValidationError),
    /// The database refused the write.
    #[error("writing the audit event into the outbox: {0}")]
    Database(#[from] sqlx::Error),
}

/// Errors of the relay's side ([`crate::Outbox`]).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A URL that is neither `postgres://` nor `mysql://` / `mariadb://`.
    #[error("outbox database URL {0:?}: must start with postgres://, postgresql://, mysql:// or mariadb://")]
    Url(String),
    /// The database failed.
    #[error("outbox database ({what}): {source}")]
    Database {
        /// What was being done.
        what: &'static str,
        /// The driver's error.
        source: sqlx::Error,
    },
    /// A stored row that cannot be shipped (a column out of range); the message names it.
    #[error("outbox row {workspace_id}/{seq}: {reason}")]
    BadRow {
        /// Its workspace.
        workspace_id: String,
        /// Its sequence number.
        seq: i64,
        /// What is wrong.
        reason: String,
    },
}

impl Error {
    /// A database error while doing `what`.
    pub fn db(what: &'static str) -> impl FnOnce(sqlx::Error) -> Self {
        move |source| Self::Database { what, source }
    }
}
