-- The tamper-evident log (docs/integrity.md): every stored event is a leaf of its workspace's
-- append-only Merkle log (RFC 9162), built by `auditlog sequencer` from the events table and
-- signed as C2SP checkpoints. Nothing here has a TTL: leaves outlive the rows they cover, so
-- a verifier can tell a row deleted by retention (on time) from a row deleted by someone.
-- Written only by the sequencer (plan_changes: by `auditlog plan set` and the admin API).

-- One row per leaf. The leaf hash is SHA-256(0x00 || JCS({"content_sha256","event_id","time_ms","v":1}))
-- where content_sha256 = SHA-256(JCS(event JSON as exported)). A re-sequenced leaf that was
-- never committed (see log_heads) is replaced by the newest sequenced_at (read with FINAL).
CREATE TABLE IF NOT EXISTS log_leaves
(
    workspace_id    String               COMMENT 'The workspace whose log it is',
    leaf_index      UInt64               COMMENT 'Position in the workspace''s log, from 0',
    event_id        UUID                 COMMENT 'The event (events.event_id)',
    time            DateTime64(3, 'UTC') COMMENT 'The event''s time (events.time); retention is judged on it',
    content_sha256  FixedString(32)      COMMENT 'SHA-256 of the RFC 8785 canonical JSON of the event',
    leaf_hash       FixedString(32)      COMMENT 'RFC 9162 leaf hash of the leaf data',
    kafka_partition Int32                COMMENT 'Where the event was read from (provenance)',
    kafka_offset    Int64                COMMENT 'Where the event was read from (provenance)',
    sequenced_at    DateTime64(3, 'UTC') COMMENT 'When the sequencer wrote this row (version)',
    INDEX idx_leaf_event_id event_id TYPE bloom_filter GRANULARITY 1,
    INDEX idx_leaf_time time TYPE minmax GRANULARITY 1
)
ENGINE = ReplacingMergeTree(sequenced_at)
ORDER BY (workspace_id, leaf_index)
COMMENT 'Leaves of every workspace log; read with FINAL.';

-- The log's interior hashes as C2SP tlog-tiles (height 8): tile (level L, index k) holds the
-- hashes of tree level 8L nodes k*256 .. k*256+width-1, concatenated (width * 32 bytes).
-- The widest version of a tile serves every tree size (append-only: narrower = prefix).
CREATE TABLE IF NOT EXISTS log_tiles
(
    workspace_id String               COMMENT 'The workspace whose log it is',
    tile_level   UInt8                COMMENT 'Tile level (tree level 8 * tile_level)',
    tile_index   UInt64               COMMENT 'Tile index within its level',
    width        UInt16               COMMENT 'Hashes in the tile (1..256)',
    hashes       String               COMMENT 'width * 32 bytes of SHA-256 hashes',
    written_at   DateTime64(3, 'UTC') COMMENT 'Version of this row'
)
ENGINE = ReplacingMergeTree(written_at)
ORDER BY (workspace_id, tile_level, tile_index)
-- A tile is up to 8 KiB: 16 per granule, so a proof's few tiles read a few 128 KiB granules
-- rather than a 10 MB one each (BENCHMARKS.md, proof latency).
SETTINGS index_granularity = 16
COMMENT 'Tiles of every workspace log; read with FINAL.';

-- Each log's committed head: leaves 0..tree_size-1 are final (never re-sequenced) once this
-- row is written. Checkpoints are signed from heads only.
CREATE TABLE IF NOT EXISTS log_heads
(
    workspace_id String               COMMENT 'The workspace whose log it is',
    tree_size    UInt64               COMMENT 'Committed leaves',
    root_hash    FixedString(32)      COMMENT 'RFC 9162 root of the first tree_size leaves',
    updated_at   DateTime64(3, 'UTC') COMMENT 'Version of this row'
)
ENGINE = ReplacingMergeTree(updated_at)
ORDER BY workspace_id
COMMENT 'Committed size and root of every workspace log; read with FINAL.';

-- Where the sequencer is in the events table: per ClickHouse shard (1 on a single server) and
-- Kafka partition, the last offset it sequenced.
CREATE TABLE IF NOT EXISTS log_positions
(
    shard           UInt32               COMMENT 'ClickHouse shard number (1 on a single server)',
    kafka_partition Int32                COMMENT 'Kafka partition',
    kafka_offset    Int64                COMMENT 'Last offset sequenced (inclusive)',
    updated_at      DateTime64(3, 'UTC') COMMENT 'Version of this row'
)
ENGINE = ReplacingMergeTree(updated_at)
ORDER BY (shard, kafka_partition)
COMMENT 'The sequencer''s read position; read with FINAL.';

-- Every signed checkpoint (C2SP signed note, signed by the log key).
CREATE TABLE IF NOT EXISTS log_checkpoints
(
    workspace_id String               COMMENT 'The workspace whose log it is',
    tree_size    UInt64               COMMENT 'Leaves covered',
    root_hash    FixedString(32)      COMMENT 'Root hash',
    signed_at    DateTime64(3, 'UTC') COMMENT 'When it was signed (its time extension line)',
    key_name     String               COMMENT 'Name of the key that signed it',
    note         String               COMMENT 'The signed note text (body, blank line, log signature line)'
)
ENGINE = ReplacingMergeTree(signed_at)
ORDER BY (workspace_id, tree_size)
COMMENT 'Signed checkpoints of every workspace log.';

-- Witness cosignatures received for checkpoints (C2SP tlog-cosignature/v1 lines).
CREATE TABLE IF NOT EXISTS log_cosignatures
(
    workspace_id   String               COMMENT 'The workspace whose log it is',
    tree_size      UInt64               COMMENT 'The checkpoint cosigned (log_checkpoints.tree_size)',
    witness        String               COMMENT 'Witness key name',
    signature_line String               COMMENT 'The cosignature line as the witness returned it',
    cosigned_at    DateTime64(3, 'UTC') COMMENT 'When it was received'
)
ENGINE = ReplacingMergeTree(cosigned_at)
ORDER BY (workspace_id, tree_size, witness)
COMMENT 'Witness cosignatures of checkpoints.';

-- The log's public keys: every key a sequencer signed with (retired keys stay, so old
-- checkpoints stay verifiable). Customers should pin keys out of band (docs/integrity.md).
CREATE TABLE IF NOT EXISTS log_keys
(
    verifier_key String               COMMENT 'Verifier key text <name>+<id>+<base64 key>',
    key_name     String               COMMENT 'Key name',
    first_used   DateTime64(3, 'UTC') COMMENT 'When a sequencer first announced it',
    last_used    DateTime64(3, 'UTC') COMMENT 'Version of this row: last announcement'
)
ENGINE = ReplacingMergeTree(last_used)
ORDER BY verifier_key
COMMENT 'Checkpoint signing keys, current and retired.';

-- Every plan change, append-only: the retention history a verifier judges deletions by.
CREATE TABLE IF NOT EXISTS plan_changes
(
    workspace_id   String               COMMENT 'The workspace',
    plan           LowCardinality(String) COMMENT 'free | pro | enterprise',
    retention_days UInt32               COMMENT 'Days kept after an event''s time; 0 = unlimited',
    changed_at     DateTime64(3, 'UTC') COMMENT 'When the change took effect'
)
ENGINE = MergeTree
ORDER BY (workspace_id, changed_at)
COMMENT 'History of workspace plans (workspace_plans keeps only the latest).';
