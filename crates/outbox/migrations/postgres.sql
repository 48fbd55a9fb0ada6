-- auditlog transactional outbox, PostgreSQL 14+ (docs/outbox.md). Idempotent: run it again
-- after an upgrade. `auditlog relay migrate` runs it (under an advisory lock).

-- One row per workspace: the last sequence number taken. A writer's upsert locks the row
-- until its transaction ends, so one workspace's numbers follow commit order, without gaps.
CREATE TABLE IF NOT EXISTS auditlog_outbox_seq (
    workspace_id TEXT   PRIMARY KEY,
    last_seq     BIGINT NOT NULL
);

-- The events waiting for the relay; it deletes them once the broker acknowledged them.
-- body: the event's JSON exactly as the producer would publish it (the Kafka record value).
CREATE TABLE IF NOT EXISTS auditlog_outbox (
    workspace_id TEXT        NOT NULL,
    seq          BIGINT      NOT NULL,
    bucket       SMALLINT    NOT NULL CHECK (bucket >= 0 AND bucket < 64),
    event_id     UUID        NOT NULL,
    event_type   TEXT        NOT NULL,
    body         BYTEA       NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (workspace_id, seq)
);
-- The relay's read: a bucket's rows in (workspace_id, seq) order.
CREATE INDEX IF NOT EXISTS auditlog_outbox_relay ON auditlog_outbox (bucket, workspace_id, seq);

-- The 64 buckets relays lock (FOR UPDATE SKIP LOCKED) to share the work.
CREATE TABLE IF NOT EXISTS auditlog_outbox_bucket (
    bucket SMALLINT PRIMARY KEY
);
INSERT INTO auditlog_outbox_bucket (bucket)
SELECT generate_series(0, 63) ON CONFLICT DO NOTHING;

-- Wakes the relay: one NOTIFY per inserting statement, delivered when its transaction commits
-- (none for a rollback).
CREATE OR REPLACE FUNCTION auditlog_outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('auditlog_outbox', '');
    RETURN NULL;
END
$$;
CREATE OR REPLACE TRIGGER auditlog_outbox_notify
    AFTER INSERT ON auditlog_outbox
    FOR EACH STATEMENT EXECUTE FUNCTION auditlog_outbox_notify();
