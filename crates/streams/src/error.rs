//! Errors of the streams crate, grouped by what the caller should do: fix the request
//! ([`Error::Invalid`]), look for another stream ([`Error::NotFound`]), retry or give up on
//! ClickHouse ([`Error::ClickHouse`], classified by [`auditlog_store::classify`]), or report
//! a stored row that does not read back ([`Error::Corrupt`], a bug).

/// Streams errors.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A value of a stream's configuration is not acceptable; the message starts with the
    /// field (`destination.url: ...`).
    #[error("{field}: {reason}")]
    Invalid {
        /// The field, as named in the admin API's body (`destination.url`).
        field: String,
        /// What is wrong with it.
        reason: String,
    },
    /// No such stream (or it was deleted).
    #[error("no stream {0}")]
    NotFound(String),
    /// ClickHouse refused or could not be reached.
    #[error("clickhouse: {what}: {source}")]
    ClickHouse {
        /// What was being done.
        what: &'static str,
        /// The client error.
        #[source]
        source: clickhouse::error::Error,
    },
    /// A stored row does not read back (a JSON column another version wrote).
    #[error("stored {what} of {stream_id} does not read back: {reason}")]
    Corrupt {
        /// The column.
        what: &'static str,
        /// The stream.
        stream_id: String,
        /// The decoding error.
        reason: String,
    },
}

impl Error {
    /// An invalid `field`.
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::Invalid {
            field: field.into(),
            reason: reason.into(),
        }
    }

    pub(crate) fn clickhouse(what: &'static str) -> impl FnOnce(clickhouse::error::Error) -> Self {
        move |source| Self::ClickHouse { what, source }
    }
}

/// Result with the streams error.
pub type Result<T, E = Error> = std::result::Result<T, E>;
