-- The consumer's batch journal: the offset range of every batch, recorded BEFORE the batch is
-- inserted into `events`. When a partition is consumed again (crash, rebalance, failed
-- commit), the consumer re-forms exactly these batches, so each carries the same
-- insert_deduplication_token as the first time and ClickHouse drops the repeat.
-- Not for analysts. Rows expire after 7 days (a replay older than that is far beyond the
-- deduplication window anyway).
CREATE TABLE IF NOT EXISTS sink_batches
(
    topic        String                COMMENT 'Kafka topic',
    partition    Int32                 COMMENT 'Kafka partition',
    first_offset Int64                 COMMENT 'First offset of the batch',
    last_offset  Int64                 COMMENT 'Last offset of the batch (inclusive)',
    rows         UInt32                COMMENT 'Rows in the batch (poison messages excluded)',
    recorded_at  DateTime64(3, 'UTC') DEFAULT now64(3) COMMENT 'When the range was recorded'
)
ENGINE = ReplacingMergeTree(recorded_at)
ORDER BY (topic, partition, first_offset)
TTL toDateTime(recorded_at) + INTERVAL 7 DAY
COMMENT 'Consumer batch journal (offset ranges), for deterministic re-batching after a crash.';
