-- The feed (`GET /v1/feed`, the stream worker) reads "rows of workspace W after Kafka offset X
-- of partition P", ordered by (kafka_partition, kafka_offset), although `events` is sorted by
-- (workspace_id, time, event_id). Within a workspace, rows are mostly in offset order along
-- time, so a granule's offset range is narrow: a minmax index on (kafka_partition,
-- kafka_offset) lets a feed read skip every granule already delivered. One index on the pair
-- (not one per column): the condition `(kafka_partition = P AND kafka_offset > X) OR
-- kafka_partition NOT IN (...)` can only exclude a granule when both ranges are known together.
-- The minmax on `inserted_at` serves the change notifier (rows stored in the last minutes) and
-- feed starts by store time (`start=<time>`). GRANULARITY 1: one range per granule (1024 rows).
-- MATERIALIZE builds them for the parts written before this migration (a background mutation).
ALTER TABLE events ADD INDEX IF NOT EXISTS idx_feed_position (kafka_partition, kafka_offset) TYPE minmax GRANULARITY 1;
ALTER TABLE events ADD INDEX IF NOT EXISTS idx_inserted_at inserted_at TYPE minmax GRANULARITY 1;
ALTER TABLE events MATERIALIZE INDEX idx_feed_position;
ALTER TABLE events MATERIALIZE INDEX idx_inserted_at;
