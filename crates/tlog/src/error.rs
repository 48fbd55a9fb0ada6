//! Why a proof, a note, a key or a tile was refused. Every variant says what was wrong in
//! words a verifier's report can show as is.

/// An error of the log's primitives.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// Arguments out of range (an index not below the size, old size above new size...).
    #[error("out of range: {0}")]
    Range(String),
    /// A proof did not verify (wrong length, or the computed root differs).
    #[error("proof does not verify: {0}")]
    Proof(String),
    /// A node hash the computation needs is not in the tiles given.
    #[error("missing hash: {0}")]
    Missing(String),
    /// Malformed note, checkpoint, key or signature text.
    #[error("malformed {what}: {why}")]
    Malformed {
        /// What was being parsed (`note`, `checkpoint`, `verifier key`...).
        what: &'static str,
        /// What is wrong with it.
        why: String,
    },
    /// A signature that does not verify, or a key of the wrong kind.
    #[error("signature: {0}")]
    Signature(String),
    /// An event that cannot be canonicalized (not a JSON object, a number JCS cannot write).
    #[error("canonicalization: {0}")]
    Canonical(String),
}
