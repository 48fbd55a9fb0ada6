//! The sequencer's errors.

use auditlog_settings::BadSetting;

/// What stops the sequencer or fails one of its steps.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A setting cannot work (the key file, the layout, an address): startup stops.
    #[error("invalid configuration: {0}")]
    Config(#[from] BadSetting),
    /// ClickHouse failed (the step is retried from the stored state).
    #[error(transparent)]
    Store(#[from] auditlog_store::Error),
    /// A log's stored tiles do not give its stored head (the tables were changed by hand, or
    /// are damaged): that log is not appended to.
    #[error("log of workspace {workspace}: {reason}")]
    Corrupt {
        /// The workspace.
        workspace: String,
        /// What does not match.
        reason: String,
    },
    /// A stored event cannot be written as JSON, so it has no leaf.
    #[error("event {event_id}: cannot compute its leaf: {source}")]
    Leaf {
        /// The event.
        event_id: String,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
    /// Signing or a proof failed (a bug: the inputs come from the sequencer itself).
    #[error("{what}: {source}")]
    Tlog {
        /// What was being done.
        what: String,
        /// Why.
        #[source]
        source: auditlog_tlog::Error,
    },
    /// The metrics endpoint could not listen.
    #[error("sequencer.listen: cannot listen on {addr}: {source}")]
    Listen {
        /// The address.
        addr: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// Results of the sequencer.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn tlog(what: impl Into<String>, source: auditlog_tlog::Error) -> Self {
        Error::Tlog {
            what: what.into(),
            source,
        }
    }
}
