-- Streams: a workspace's push destinations (webhook, Splunk HEC, Datadog, S3) and what the
-- stream worker (`auditlog stream-worker`) records about them. Managed by `auditlog stream`
-- and the admin API (docs/streams.md). Every table is small (one row per stream or worker
-- after merges); each change writes a newer version of a row, read with FINAL or argMax.
--
-- `streams.destination` and `streams.secrets` hold the destination's credentials and the
-- webhook signing secrets IN CLEAR (the worker must send them): grant SELECT on this table
-- only to the worker and the API. Deleting a stream writes a version without credentials.
CREATE TABLE IF NOT EXISTS streams
(
    stream_id     String                  COMMENT 'Public id (str_...)',
    workspace_id  String                  COMMENT 'The tenant whose events are delivered',
    name          String                  COMMENT 'A name for people',
    destination   String                  COMMENT 'JSON: {"type": "webhook" | "splunk_hec" | "datadog" | "s3", ...} with credentials (in clear)',
    format        LowCardinality(String)  COMMENT 'json | ocsf | ecs: the shape of each delivered event',
    filter        String                  COMMENT 'JSON object: the list endpoint''s filter parameters (name -> value)',
    desired       LowCardinality(String)  COMMENT 'active | paused | deleted: what the workspace wants',
    paused_reason String                  COMMENT 'Why it is paused ('''' = not paused, or paused by hand without a reason)',
    secrets       String                  COMMENT 'JSON array of webhook signing secrets, current first (in clear; [] for other destinations)',
    created_at    DateTime64(3, 'UTC')    COMMENT 'When the stream was created',
    updated_at    DateTime64(3, 'UTC')    COMMENT 'Version of this row'
)
ENGINE = ReplacingMergeTree(updated_at)
ORDER BY stream_id
COMMENT 'Stream configurations; latest updated_at wins (FINAL).';

-- Where each stream's delivery is: the feed position last acknowledged by the destination.
-- A replay writes a row of the next generation; the newest row is the one with the highest
-- (generation, updated_at), so a worker still writing an older generation never undoes a replay.
CREATE TABLE IF NOT EXISTS stream_cursors
(
    stream_id  String               COMMENT 'The stream (streams.stream_id)',
    generation UInt64               COMMENT 'Replay generation: 0 at creation, +1 per replay',
    position   String               COMMENT 'JSON {"offsets": {partition: last offset delivered}}; '''' = nothing delivered in this generation yet',
    start      String               COMMENT 'JSON: where this generation starts ({"from": "beginning" | "now" | "time", "time_ms"})',
    updated_at DateTime64(3, 'UTC') COMMENT 'When the worker (or a replay) wrote it'
)
ENGINE = ReplacingMergeTree(updated_at)
ORDER BY (stream_id, generation)
COMMENT 'Stream delivery cursors; newest = argMax by (generation, updated_at).';

-- Delivery figures per stream, written by the worker that owns it every few seconds (one
-- insert for all its streams). What the API and the dashboard show a workspace.
CREATE TABLE IF NOT EXISTS stream_status
(
    stream_id          String                          COMMENT 'The stream (streams.stream_id)',
    state              LowCardinality(String)          COMMENT 'active | failing | paused',
    last_error         String                          COMMENT 'Last delivery error ('''' = none yet)',
    last_error_at      Nullable(DateTime64(3, 'UTC'))  COMMENT 'When it happened',
    failing_since      Nullable(DateTime64(3, 'UTC'))  COMMENT 'Failing without a success since (NULL = not failing)',
    delivered_events   UInt64                          COMMENT 'Events acknowledged by the destination',
    delivered_batches  UInt64                          COMMENT 'Batches acknowledged',
    failed_attempts    UInt64                          COMMENT 'Failed delivery attempts',
    redelivered_events UInt64                          COMMENT 'Events sent again after an unacknowledged attempt (at-least-once duplicates)',
    lag_events         UInt64                          COMMENT 'Visible events not yet acknowledged',
    lag_seconds        Float64                         COMMENT 'Age of the oldest visible event not yet acknowledged (0 = caught up)',
    worker_id          String                          COMMENT 'The worker that reported it',
    updated_at         DateTime64(3, 'UTC')            COMMENT 'When it was reported'
)
ENGINE = ReplacingMergeTree(updated_at)
ORDER BY stream_id
COMMENT 'Stream delivery status per stream; latest updated_at wins (FINAL).';

-- Stream worker membership: every worker writes a heartbeat (server clock) every few
-- seconds; live = a heartbeat within streams.worker_expiry. Streams are shared among the live
-- workers by rendezvous hashing (docs/delivery.md). Rows expire after a day.
CREATE TABLE IF NOT EXISTS stream_workers
(
    worker_id    String               COMMENT 'A worker process (host and a random suffix)',
    heartbeat_at DateTime64(3, 'UTC') COMMENT 'Its latest heartbeat (ClickHouse now64(3))'
)
ENGINE = ReplacingMergeTree(heartbeat_at)
ORDER BY worker_id
TTL toDateTime(heartbeat_at) + INTERVAL 1 DAY
COMMENT 'Stream worker heartbeats (membership); latest heartbeat_at wins.';
