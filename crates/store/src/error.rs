//! Errors of the store, grouped by what the caller should do.

/// Store errors.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A setting is invalid; fix the configuration.
    #[error("invalid configuration: {0}")]
    Config(#[from] auditlog_settings::BadSetting),
    /// ClickHouse refused or could not be reached.
    #[error("clickhouse: {what}: {source}")]
    ClickHouse {
        /// What was being done.
        what: String,
        /// The client error.
        #[source]
        source: clickhouse::error::Error,
    },
    /// A value is not acceptable (for example an unknown plan).
    #[error("invalid {field}: {reason}")]
    Invalid {
        /// The parameter.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
}

impl Error {
    /// Wraps a ClickHouse client error with what was being done; a connection setting that
    /// cannot work (TLS handshake refused, unreadable file) becomes [`Error::Config`] naming it.
    pub fn clickhouse(what: impl Into<String>, source: clickhouse::error::Error) -> Self {
        if let Some(setup) = crate::tls::client_setup_error(&source, "ClickHouse") {
            return setup.into();
        }
        Self::ClickHouse {
            what: what.into(),
            source,
        }
    }
}

/// Result with the store's error.
pub type Result<T, E = Error> = std::result::Result<T, E>;
