//! Rows of the log's tables (migrations `0011_log.sql`, `0013_log_leaves_by_event.sql`; column
//! docs there and in ARCHITECTURE.md "Schema"). Hashes are `FixedString(32)` (`[u8; 32]`), times epoch ms
//! (`DateTime64(3)`). Versions (`sequenced_at`, `written_at`, `updated_at`, ...) are filled by
//! the writer with the server's clock (`now64(3)` is not usable in RowBinary: the writer
//! passes its own milliseconds).

use clickhouse::Row;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// `log_leaves`, and `log_leaves_by_event` (the same columns, migration 0013).
#[derive(Debug, Clone, PartialEq, Eq, Row, Serialize, Deserialize)]
pub struct LeafRow {
    /// The workspace whose log it is.
    pub workspace_id: String,
    /// Position in the log, from 0.
    pub leaf_index: u64,
    /// The event.
    #[serde(with = "clickhouse::serde::uuid")]
    pub event_id: Uuid,
    /// The event's time, epoch ms.
    pub time: i64,
    /// SHA-256 of the event's canonical JSON.
    pub content_sha256: [u8; 32],
    /// The leaf hash.
    pub leaf_hash: [u8; 32],
    /// Provenance: Kafka partition.
    pub kafka_partition: i32,
    /// Provenance: Kafka offset.
    pub kafka_offset: i64,
    /// Version, epoch ms.
    pub sequenced_at: i64,
}

/// `log_tiles`.
#[derive(Debug, Clone, PartialEq, Eq, Row, Serialize, Deserialize)]
pub struct TileRow {
    /// The workspace whose log it is.
    pub workspace_id: String,
    /// Tile level.
    pub tile_level: u8,
    /// Tile index.
    pub tile_index: u64,
    /// Hashes in the tile.
    pub width: u16,
    /// `width * 32` bytes.
    #[serde(with = "serde_bytes_string")]
    pub hashes: Vec<u8>,
    /// Version, epoch ms.
    pub written_at: i64,
}

/// `log_heads`.
#[derive(Debug, Clone, PartialEq, Eq, Row, Serialize, Deserialize)]
pub struct HeadRow {
    /// The workspace whose log it is.
    pub workspace_id: String,
    /// Committed leaves.
    pub tree_size: u64,
    /// Root of the committed tree.
    pub root_hash: [u8; 32],
    /// Version, epoch ms.
    pub updated_at: i64,
}

/// `log_positions`.
#[derive(Debug, Clone, PartialEq, Eq, Row, Serialize, Deserialize)]
pub struct PositionRow {
    /// ClickHouse shard (1 on a single server).
    pub shard: u32,
    /// Kafka partition.
    pub kafka_partition: i32,
    /// Last offset sequenced.
    pub kafka_offset: i64,
    /// Version, epoch ms.
    pub updated_at: i64,
}

/// `log_checkpoints`.
#[derive(Debug, Clone, PartialEq, Eq, Row, Serialize, Deserialize)]
pub struct CheckpointRow {
    /// The workspace whose log it is.
    pub workspace_id: String,
    /// Leaves covered.
    pub tree_size: u64,
    /// Root hash.
    pub root_hash: [u8; 32],
    /// When it was signed, epoch ms (the note's `time` line).
    pub signed_at: i64,
    /// Name of the signing key.
    pub key_name: String,
    /// The signed note.
    pub note: String,
}

/// `log_cosignatures`.
#[derive(Debug, Clone, PartialEq, Eq, Row, Serialize, Deserialize)]
pub struct CosignatureRow {
    /// The workspace whose log it is.
    pub workspace_id: String,
    /// The checkpoint cosigned.
    pub tree_size: u64,
    /// Witness key name.
    pub witness: String,
    /// The cosignature line.
    pub signature_line: String,
    /// When it was received, epoch ms.
    pub cosigned_at: i64,
}

/// `log_keys`.
#[derive(Debug, Clone, PartialEq, Eq, Row, Serialize, Deserialize)]
pub struct KeyRow {
    /// Verifier key text.
    pub verifier_key: String,
    /// Key name.
    pub key_name: String,
    /// First announced, epoch ms.
    pub first_used: i64,
    /// Last announced (version), epoch ms.
    pub last_used: i64,
}

/// `plan_changes`.
#[derive(Debug, Clone, PartialEq, Eq, Row, Serialize, Deserialize)]
pub struct PlanChangeRow {
    /// The workspace.
    pub workspace_id: String,
    /// `free` | `pro` | `enterprise`.
    pub plan: String,
    /// Days kept; 0 = unlimited.
    pub retention_days: u32,
    /// When it took effect, epoch ms.
    pub changed_at: i64,
}

/// A `String` column holding raw bytes (ClickHouse strings are byte strings).
mod serde_bytes_string {
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(v)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Vec<u8>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("bytes")
            }
            fn visit_bytes<E>(self, v: &[u8]) -> Result<Vec<u8>, E> {
                Ok(v.to_vec())
            }
            fn visit_byte_buf<E>(self, v: Vec<u8>) -> Result<Vec<u8>, E> {
                Ok(v)
            }
            fn visit_str<E>(self, v: &str) -> Result<Vec<u8>, E> {
                Ok(v.as_bytes().to_vec())
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut a: A,
            ) -> Result<Vec<u8>, A::Error> {
                let mut out = Vec::new();
                while let Some(b) = a.next_element::<u8>()? {
                    out.push(b);
                }
                Ok(out)
            }
        }
        d.deserialize_bytes(V)
    }
}
