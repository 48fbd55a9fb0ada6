//! The tamper-evident log's primitives, pure (no I/O), shared by the sequencer (which builds
//! every workspace's log), the query API (which serves proofs), the witness (which cosigns)
//! and the verifier (which checks all of it, offline or online).
//!
//! - [`merkle`]: RFC 9162 (Certificate Transparency v2) hashing, tree heads, inclusion and
//!   consistency proofs and their verification, over any [`merkle::NodeReader`].
//! - [`tiles`]: the C2SP tlog-tiles geometry (tiles of height 8, 256 hashes): which tiles a
//!   proof reads, a [`tiles::TileSet`] that answers node hashes from them, and the
//!   [`tiles::Appender`] that appends leaves and says which tiles changed.
//! - [`note`]: C2SP signed notes with Ed25519 keys (`ed25519-dalek`), in Go's key formats.
//! - [`checkpoint`]: the C2SP checkpoint body (origin, size, root, extension lines).
//! - [`cosignature`]: C2SP tlog-cosignature/v1 (a witness's timestamped cosignature).
//! - [`leaf`]: an event's leaf: SHA-256 of its RFC 8785 (JCS) canonical JSON, bound with its
//!   id and time into the leaf data.
//! - [`wire`]: the JSON bodies of the log API, the verifiable export and the witness.

pub mod checkpoint;
pub mod cosignature;
pub mod error;
pub mod leaf;
pub mod merkle;
pub mod note;
pub mod tiles;
pub mod wire;

pub use checkpoint::Checkpoint;
pub use error::Error;
pub use leaf::LeafData;
pub use merkle::{Hash, Node, NodeReader};
pub use note::{KeyKind, Note, Signature, Signer, Verifier};
pub use tiles::{Appender, Tile, TileId, TileSet};

/// Results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
