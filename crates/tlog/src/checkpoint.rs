//! The C2SP checkpoint body (<https://c2sp.org/tlog-checkpoint>):
//!
//! ```text
//! <origin>
//! <tree size, decimal>
//! <root hash, base64>
//! [extension lines]
//! ```
//!
//! Our logs write one extension line, `time <unix milliseconds>` (when it was signed). A
//! workspace's origin is `<sequencer.origin_prefix>/<workspace_id>`.

use crate::merkle::Hash;
use crate::Result;

/// A checkpoint's body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// The log's identity (first line).
    pub origin: String,
    /// Leaves in the tree.
    pub size: u64,
    /// The tree's root hash.
    pub root: Hash,
    /// Extension lines, in order, without their line breaks.
    pub extensions: Vec<String>,
}

impl Checkpoint {
    /// A checkpoint with the `time <ms>` extension.
    pub fn new(origin: &str, size: u64, root: Hash, time_ms: i64) -> Checkpoint {
        Checkpoint {
            origin: origin.to_owned(),
            size,
            root,
            extensions: vec![format!("time {time_ms}")],
        }
    }
    /// The body text (every line ends in `\n`).
    pub fn to_text(&self) -> String {
        todo!()
    }
    /// From a body text (a note's text). [`crate::Error::Malformed`] names the bad line.
    pub fn parse(text: &str) -> Result<Checkpoint> {
        todo!("{text}")
    }
    /// The `time` extension (unix milliseconds), if present.
    pub fn time_ms(&self) -> Option<i64> {
        self.extensions
            .iter()
            .find_map(|l| l.strip_prefix("time ")?.parse().ok())
    }
}
