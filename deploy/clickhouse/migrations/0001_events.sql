-- The audit log: one row per event. Analysts may query this table directly;
-- every column is documented in ARCHITECTURE.md ("Schema").
-- Reads that must not show producer duplicates use FINAL (or LIMIT 1 BY event_id).
CREATE TABLE IF NOT EXISTS events
(
    event_id        UUID                        COMMENT 'UUIDv7 idempotency key; duplicates collapse on it (ReplacingMergeTree)',
    workspace_id    String                      COMMENT 'The tenant',
    bucket          LowCardinality(String)      COMMENT 'Logical bucket; "default" for platform mutations',
    event           LowCardinality(String)      COMMENT 'Event type, resource.action (for example key.create)',
    time            DateTime64(3, 'UTC')        COMMENT 'When it happened (producer clock, ms)',
    inserted_at     DateTime64(3, 'UTC') DEFAULT now64(3) COMMENT 'When the consumer wrote the row',
    actor_type      LowCardinality(String)      COMMENT 'user | root_key | system',
    actor_id        String                      COMMENT 'Actor id',
    actor_name      String                      COMMENT 'Actor display name',
    actor_meta      String                      COMMENT 'Actor metadata, JSON object text ("" when none)',
    target_types    Array(LowCardinality(String)) COMMENT 'Targets: resource type of each, same order as target_ids',
    target_ids      Array(String)               COMMENT 'Targets: resource id of each',
    target_names    Array(String)               COMMENT 'Targets: display name of each',
    targets         String                      COMMENT 'Targets as the JSON array sent (with metadata)',
    description     String                      COMMENT 'Human-readable summary',
    remote_ip       String                      COMMENT 'Client IP ("" when unknown)',
    user_agent      String                      COMMENT 'Client user agent ("" when unknown)',
    location        String                      COMMENT 'Client location ("" when unknown)',
    request         String                      COMMENT 'Request payload, JSON text',
    response        String                      COMMENT 'Response payload, JSON text',
    outcome         LowCardinality(String)      COMMENT 'success | failure',
    failure_reason  String                      COMMENT 'Why it failed ("" on success)',
    correlation_id  String                      COMMENT 'Groups the events of one operation ("" when none)',
    version         UInt16                      COMMENT 'Wire schema version of the event',
    retention_days  UInt32                      COMMENT 'Days this row is kept after time; 0 = unlimited. Set from the workspace plan',
    kafka_partition Int32                       COMMENT 'Provenance: Kafka partition',
    kafka_offset    Int64                       COMMENT 'Provenance: Kafka offset',

    INDEX idx_event          event          TYPE set(512)              GRANULARITY 4,
    INDEX idx_actor_id       actor_id       TYPE bloom_filter(0.01)    GRANULARITY 4,
    INDEX idx_target_ids     target_ids     TYPE bloom_filter(0.01)    GRANULARITY 4,
    INDEX idx_correlation_id correlation_id TYPE bloom_filter(0.01)    GRANULARITY 4,
    INDEX idx_event_id       event_id       TYPE bloom_filter(0.01)    GRANULARITY 4
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(time)
ORDER BY (workspace_id, time, event_id)
TTL toDateTime(time) + toIntervalDay(retention_days) DELETE WHERE retention_days > 0
-- index_granularity 1024 (default 8192): the dashboard reads one page (50 rows) of one
-- workspace, newest first; smaller granules make such a read stop after fewer rows.
SETTINGS index_granularity = 1024,
         non_replicated_deduplication_window = 10000,
         merge_with_ttl_timeout = 3600
COMMENT 'Audit events, one row per event_id after merges. Retention per row by TTL.';
