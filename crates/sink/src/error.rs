//! Errors of the consumer, grouped by what the caller should do.

/// Consumer errors.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A setting is invalid (or a `[kafka]` password file unreadable); fix the configuration.
    #[error("invalid configuration: {0}")]
    Config(#[from] auditlog_settings::BadSetting),
    /// Kafka refused or could not be reached (creating clients, subscribing, producing to the
    /// dead-letter topic).
    #[error("kafka: {what}: {source}")]
    Kafka {
        /// What was being done.
        what: String,
        /// The client error.
        #[source]
        source: rdkafka::error::KafkaError,
    },
    /// ClickHouse failed in a way retrying did not fix (or retrying was not possible).
    #[error("clickhouse: {what}: {source}")]
    ClickHouse {
        /// What was being done.
        what: String,
        /// The client error.
        #[source]
        source: clickhouse::error::Error,
    },
    /// The store (plans, migrations) failed.
    #[error(transparent)]
    Store(#[from] auditlog_store::Error),
    /// The metrics endpoint could not listen.
    #[error("metrics endpoint on {addr}: {source}")]
    Listen {
        /// The address.
        addr: String,
        /// The socket error.
        #[source]
        source: std::io::Error,
    },
    /// The pipeline cannot run here (for example on a single-threaded runtime).
    #[error("{0}")]
    Runtime(String),
}

impl Error {
    /// Wraps a Kafka error with what was being done.
    pub fn kafka(what: impl Into<String>, source: rdkafka::error::KafkaError) -> Self {
        Self::Kafka {
            what: what.into(),
            source,
        }
    }

    /// Wraps a ClickHouse error with what was being done.
    pub fn clickhouse(what: impl Into<String>, source: clickhouse::error::Error) -> Self {
        Self::ClickHouse {
            what: what.into(),
            source,
        }
    }
}

/// Result with the consumer's error.
pub type Result<T, E = Error> = std::result::Result<T, E>;
