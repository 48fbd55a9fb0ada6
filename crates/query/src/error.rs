//! Errors of reads and of the API, grouped by what the caller should do. Each maps to one
//! HTTP status and error code (see `docs/api.md`).

use auditlog_store::Class;

/// Query and API errors.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A setting is invalid; fix the configuration.
    #[error("invalid configuration: {0}")]
    Config(#[from] auditlog_settings::BadSetting),
    /// A request parameter is malformed; fix the request (400 `bad_parameter`).
    #[error("{param}: {reason}")]
    BadParameter {
        /// The parameter, as named in the request.
        param: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The cursor was tampered with, truncated, or belongs to other filters (400 `bad_cursor`).
    #[error("cursor: {0}")]
    BadCursor(&'static str),
    /// A feed cursor older than the workspace's retention: events it had still to deliver may
    /// be gone (410 `cursor_expired`).
    #[error("cursor: {0}")]
    CursorExpired(String),
    /// Missing, unknown or revoked token (401 `unauthorized`).
    #[error("missing, unknown or revoked bearer token")]
    Unauthorized,
    /// The token's expiry has passed (401 `unauthorized`).
    #[error("the bearer token expired; ask for a new one")]
    TokenExpired,
    /// The token is valid but its scope does not allow this route (403 `forbidden`).
    #[error("{0}")]
    Forbidden(String),
    /// The request body is larger than allowed (413 `payload_too_large`).
    #[error("{0}")]
    PayloadTooLarge(String),
    /// The request body's `Content-Type` is not one the route takes (415
    /// `unsupported_media_type`).
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// Nothing here for this caller (404 `not_found`).
    #[error("{0}")]
    NotFound(String),
    /// The workspace's log has no signed checkpoint yet (404 `no_checkpoint`).
    #[error("{0}")]
    NoCheckpoint(String),
    /// The event is not a leaf of the workspace's log below the checkpoint asked about
    /// (404 `not_in_log`).
    #[error("{0}")]
    NotInLog(String),
    /// Well-formed but not acceptable (422 `unprocessable`).
    #[error("{0}")]
    Unprocessable(String),
    /// ClickHouse is unreachable or overloaded; retry later (503 `unavailable`).
    #[error("clickhouse unavailable: {0}")]
    Unavailable(String),
    /// A bug or an unexpected ClickHouse answer (500 `internal`).
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    /// A malformed parameter.
    pub fn bad(param: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::BadParameter {
            param: param.into(),
            reason: reason.into(),
        }
    }

    /// A ClickHouse client error, by [`auditlog_store::classify`]: unreachable, timeouts,
    /// overload and a server going down are retryable (`Unavailable`), anything else is
    /// `Internal`.
    pub fn clickhouse(what: &str, e: clickhouse::error::Error) -> Self {
        match auditlog_store::classify(&e) {
            Class::Transient => Self::Unavailable(format!("{what}: {e}")),
            Class::BadData | Class::Permanent => Self::Internal(format!("{what}: {e}")),
        }
    }
}

impl From<auditlog_store::Error> for Error {
    fn from(e: auditlog_store::Error) -> Self {
        match e {
            auditlog_store::Error::ClickHouse { what, source } => Self::clickhouse(&what, source),
            auditlog_store::Error::Invalid { field, reason } => {
                Self::Unprocessable(format!("{field}: {reason}"))
            }
            other => Self::Internal(other.to_string()),
        }
    }
}

/// Result with the query crate's error.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn busy_and_shutting_down_servers_are_unavailable_not_internal() {
        let shutdown = "Code: 394. DB::Exception: Query was cancelled. (QUERY_WAS_CANCELLED) (version 25.8.2.1)";
        let busy = "Code: 202. DB::Exception: Too many simultaneous queries. (TOO_MANY_SIMULTANEOUS_QUERIES)";
        let bug = "Code: 47. DB::Exception: Unknown identifier: x. (UNKNOWN_IDENTIFIER)";
        for text in [shutdown, busy] {
            let e = Error::clickhouse(
                "list events",
                clickhouse::error::Error::BadResponse(text.into()),
            );
            assert!(matches!(e, Error::Unavailable(_)), "{text}: {e:?}");
        }
        let e = Error::clickhouse(
            "list events",
            clickhouse::error::Error::BadResponse(bug.into()),
        );
        assert!(matches!(e, Error::Internal(_)), "{e:?}");
    }
}
