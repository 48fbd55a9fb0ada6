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
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;

use crate::{Error, Result};

fn malformed(why: String) -> Error {
    Error::Malformed {
        what: "checkpoint",
        why,
    }
}

/// A tree size: decimal digits, no sign, no leading zero (except `0` itself), fits in u64.
fn parse_size(line: &str) -> Result<u64> {
    let bad = |why: &str| malformed(format!("line 2 {line:?}: {why}"));
    if line.is_empty() || !line.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad("not a decimal tree size"));
    }
    if line.len() > 1 && line.starts_with('0') {
        return Err(bad("leading zero"));
    }
    line.parse().map_err(|_| bad("too large"))
}

/// A root hash: standard padded base64 of 32 bytes.
fn parse_root(line: &str) -> Result<Hash> {
    let raw = B64
        .decode(line)
        .map_err(|e| malformed(format!("line 3 {line:?}: not base64: {e}")))?;
    raw.try_into().map_err(|raw: Vec<u8>| {
        malformed(format!("line 3: root hash has {} bytes, not 32", raw.len()))
    })
}

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
        let mut out = format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            B64.encode(self.root)
        );
        for e in &self.extensions {
            out.push_str(e);
            out.push('\n');
        }
        out
    }
    /// From a body text (a note's text). [`crate::Error::Malformed`] names the bad line.
    pub fn parse(text: &str) -> Result<Checkpoint> {
        let body = text
            .strip_suffix('\n')
            .ok_or_else(|| malformed("does not end in a line break".into()))?;
        let mut lines = body.split('\n');
        let origin = lines.next().unwrap_or_default();
        if origin.is_empty() {
            return Err(malformed("line 1: empty origin".into()));
        }
        let size = parse_size(
            lines
                .next()
                .ok_or_else(|| malformed("no tree size line".into()))?,
        )?;
        let root = parse_root(
            lines
                .next()
                .ok_or_else(|| malformed("no root hash line".into()))?,
        )?;
        let extensions: Vec<String> = lines.map(str::to_owned).collect();
        if let Some(i) = extensions.iter().position(String::is_empty) {
            return Err(malformed(format!("line {}: empty extension line", i + 4)));
        }
        Ok(Checkpoint {
            origin: origin.to_owned(),
            size,
            root,
            extensions,
        })
    }
    /// The `time` extension (unix milliseconds), if present.
    pub fn time_ms(&self) -> Option<i64> {
        self.extensions
            .iter()
            .find_map(|l| l.strip_prefix("time ")?.parse().ok())
    }
}
