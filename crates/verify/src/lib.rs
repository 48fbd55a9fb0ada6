//! `auditlog verify` (docs/verification.md): checks a workspace's tamper-evident log against
//! the log keys the customer pinned, offline or through the API, and reports every failure
//! with the leaf index, the event id and the reason.
//!
//! - [`export`]: the verifiable export (`GET /v1/export?format=log`), streamed line by line
//!   (memory: the tree's right edge, whatever the log's size): signatures, every leaf and
//!   event, retention of the rows gone, rows stored without a leaf, the root, and trusted
//!   earlier checkpoints (rollback).
//! - [`proofs`]: an inclusion proof against a signed checkpoint; a consistency proof between
//!   two.
//! - [`online`]: `verify --api`: the API's checkpoint against a witness's and a remembered one,
//!   then the export.
//! - [`checkpoint`]: pinned keys, signed checkpoints, witness cosignatures.
//! - [`retention`]: when a row may be gone.
//! - [`report`]: failures and the summary.
//!
//! ```no_run
//! use auditlog_verify::{export, Keys};
//! # fn main() -> Result<(), auditlog_verify::Error> {
//! let keys = Keys::parse(&["log.example+1a2b3c4d+AT...".to_owned()], &[])?;
//! let file = std::io::BufReader::new(std::fs::File::open("export.ndjson").unwrap());
//! let opts = export::ExportOptions {
//!     keys,
//!     min_witnesses: 0,
//!     references: Vec::new(),
//!     now_ms: 1_800_000_000_000,
//!     max_listed: 100,
//! };
//! let report = export::verify_export_reader(file, "export.ndjson", opts)?;
//! for f in &report.failures {
//!     println!("{f}");
//! }
//! println!("{}", report.summary());
//! # Ok(()) }
//! ```

pub mod checkpoint;
pub mod error;
pub mod export;
pub mod leaf;
pub mod online;
pub mod proofs;
pub mod report;
pub mod retention;

pub use checkpoint::{Keys, SignedCheckpoint};
pub use error::Error;
pub use report::{Failure, FailureKind, Report};
