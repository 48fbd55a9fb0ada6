-- auditlog transactional outbox, PostgreSQL (docs/outbox.md). Idempotent.
-- CONTRACT DRAFT: the outbox helper finalises types, indexes and the trigger.
CREATE TABLE IF NOT EXISTS auditlog_outbox_seq (
    workspace_id TEXT PRIMARY KEY,
    last_seq     BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS auditlog_outbox (
    workspace_id TEXT        NOT NULL,
    seq          BIGINT      NOT NULL,
    bucket       SMALLINT    NOT NULL,
    event_id     UUID        NOT NULL,
    event_type   TEXT        NOT NULL,
    body         BYTEA       NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (workspace_id, seq)
);
CREATE TABLE IF NOT EXISTS auditlog_outbox_bucket (
    bucket SMALLINT PRIMARY KEY
);
