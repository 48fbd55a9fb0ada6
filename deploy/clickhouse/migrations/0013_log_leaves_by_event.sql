-- The leaves again, sorted by event: `GET /v1/log/proof/inclusion?event_id=` finds an event's
-- leaf by primary key instead of scanning `log_leaves` (sorted by leaf index) through its
-- `event_id` bloom filter, which read about 250,000 rows of a 10M-leaf log per request
-- (BENCHMARKS.md, proof latency). The same rows as `log_leaves`, written by the sequencer in
-- the same step, right after them (docs/integrity.md, "How the log is built"): an index, not
-- a source of truth. A row here may be a leaf re-sequenced before its commit (replaced at its
-- index by another event); the API keeps a candidate only when its `leaf_hash` is the one the
-- level-0 tile holds at its index, and falls back to the `log_leaves` scan when none is (and
-- for leaves sequenced before this migration). `index_granularity = 256`: a lookup reads about
-- 30 KB instead of an 8192-row granule. No TTL, like `log_leaves`.
CREATE TABLE IF NOT EXISTS log_leaves_by_event
(
    workspace_id    String               COMMENT 'The workspace whose log it is',
    event_id        UUID                 COMMENT 'The event (events.event_id)',
    leaf_index      UInt64               COMMENT 'Position in the workspace''s log, from 0',
    time            DateTime64(3, 'UTC') COMMENT 'The event''s time (events.time)',
    content_sha256  FixedString(32)      COMMENT 'SHA-256 of the RFC 8785 canonical JSON of the event',
    leaf_hash       FixedString(32)      COMMENT 'RFC 9162 leaf hash of the leaf data',
    kafka_partition Int32                COMMENT 'Where the event was read from (provenance)',
    kafka_offset    Int64                COMMENT 'Where the event was read from (provenance)',
    sequenced_at    DateTime64(3, 'UTC') COMMENT 'When the sequencer wrote this row (version)'
)
ENGINE = ReplacingMergeTree(sequenced_at)
ORDER BY (workspace_id, event_id, leaf_index)
SETTINGS index_granularity = 256
COMMENT 'log_leaves by event, for the inclusion proof''s lookup; candidates, checked against the tiles.';
