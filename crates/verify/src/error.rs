//! Why a verification could not run (exit 2): a file or the API could not be read, or an
//! argument (a key, a proof file) is not valid. A log that does not verify is not an error but
//! a [`crate::Report`] with failures.

/// What stopped a verification before it could judge the log.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file could not be read.
    #[error("reading {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A file could not be written (`--remember`).
    #[error("writing {path}: {source}")]
    Write {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// An argument or input file that is not what it should be.
    #[error("{what}: {why}")]
    Input {
        /// What it is.
        what: String,
        /// What is wrong.
        why: String,
    },
    /// The API could not be reached or its answer read.
    #[error("{url}: {source}")]
    Http {
        /// The request.
        url: String,
        /// Why.
        #[source]
        source: reqwest::Error,
    },
    /// The API answered an error status.
    #[error("{url} answered {status}: {body}")]
    Status {
        /// The request.
        url: String,
        /// The HTTP status.
        status: u16,
        /// Its answer (cut to 500 bytes).
        body: String,
    },
    /// The witness could not be asked.
    #[error(transparent)]
    Witness(#[from] auditlog_witness::WitnessError),
}
