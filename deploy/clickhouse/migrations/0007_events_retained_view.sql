-- `events_retained`: `events` without the rows already past their retention. TTL deletes such a
-- row only at the next TTL merge of its part, and TTL merges of a partition are at least
-- `merge_with_ttl_timeout` (1 h) apart, so a late or backfilled event older than its retention
-- is written like any other and stays in `events` for up to an hour. Direct queries that must
-- honour retention read this view (the query API applies the workspace's current plan itself).
-- No FINAL inside. When duplicates matter, end the query with `SETTINGS final = 1` (or use
-- `LIMIT 1 BY event_id`): ClickHouse ignores `FINAL` written after a view's name.
-- A migration that adds a column to `events` recreates this view (`CREATE OR REPLACE VIEW`).
CREATE VIEW IF NOT EXISTS events_retained AS
SELECT *
FROM events
WHERE retention_days = 0 OR time > now() - toIntervalDay(retention_days);
