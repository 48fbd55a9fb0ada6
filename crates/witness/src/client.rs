//! The witness client (C2SP tlog-witness `add-checkpoint`), used by the sequencer, and the
//! read of a witness's newest cosigned checkpoint, used by the verifier.

use std::time::Duration;

use auditlog_tlog::{Hash, Signature, Verifier};

/// What a witness answered to `add-checkpoint`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AddResult {
    /// Cosigned: the witness's cosignature (verified against its key).
    Cosigned(Signature),
    /// 409: the witness's latest size for this origin is not the `old` size sent; retry with
    /// this size (and a proof from it).
    Conflict {
        /// The witness's latest tree size for the origin.
        witness_size: u64,
    },
}

/// A witness call that failed.
#[derive(Debug, thiserror::Error)]
pub enum WitnessError {
    /// Network, timeout.
    #[error("witness {url} unreachable: {source}")]
    Unreachable {
        /// The witness.
        url: String,
        /// Why.
        #[source]
        source: reqwest::Error,
    },
    /// The witness refused (403 unknown log or bad signature, 422 bad proof, 400...).
    #[error("witness {url} refused the checkpoint ({status}): {body}")]
    Refused {
        /// The witness.
        url: String,
        /// HTTP status.
        status: u16,
        /// Its answer.
        body: String,
    },
    /// An answer that is not a valid cosignature by the configured key.
    #[error("witness {url} answered an invalid cosignature: {source}")]
    BadCosignature {
        /// The witness.
        url: String,
        /// Why.
        #[source]
        source: auditlog_tlog::Error,
    },
}

/// One witness.
#[derive(Debug, Clone)]
pub struct WitnessClient {
    url: String,
    verifier: Verifier,
    http: reqwest::Client,
}

impl WitnessClient {
    /// A client of the witness at `url` whose cosigning key is `verifier_key`.
    pub fn new(url: &str, verifier_key: &str, timeout: Duration) -> auditlog_tlog::Result<Self> {
        todo!("{url}{verifier_key}{timeout:?}")
    }
    /// The witness's key.
    pub fn verifier(&self) -> &Verifier {
        &self.verifier
    }
    /// The witness's URL.
    pub fn url(&self) -> &str {
        &self.url
    }
    /// Send `signed_checkpoint` (a note signed by the log) with the consistency proof from
    /// `old_size` (the size the witness last cosigned for this origin; 0 for none).
    pub async fn add_checkpoint(
        &self,
        old_size: u64,
        proof: &[Hash],
        signed_checkpoint: &str,
    ) -> Result<AddResult, WitnessError> {
        todo!("{old_size}{proof:?}{signed_checkpoint}{:?}", self.http)
    }
    /// The newest checkpoint the witness cosigned for `origin` (a signed note with the log's
    /// signature and the witness's cosignature), `None` when it has none.
    pub async fn latest(&self, origin: &str) -> Result<Option<String>, WitnessError> {
        todo!("{origin}")
    }
}
