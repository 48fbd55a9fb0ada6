-- auditlog transactional outbox, MySQL 8 / MariaDB 10.6+ (docs/outbox.md). Idempotent.
-- CONTRACT DRAFT: the outbox helper finalises types and indexes.
CREATE TABLE IF NOT EXISTS auditlog_outbox_seq (
    workspace_id VARCHAR(256) NOT NULL PRIMARY KEY,
    last_seq     BIGINT NOT NULL
) ENGINE = InnoDB;
CREATE TABLE IF NOT EXISTS auditlog_outbox (
    workspace_id VARCHAR(256) NOT NULL,
    seq          BIGINT       NOT NULL,
    bucket       SMALLINT     NOT NULL,
    event_id     CHAR(36)     NOT NULL,
    event_type   VARCHAR(128) NOT NULL,
    body         LONGBLOB     NOT NULL,
    created_at   TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
    PRIMARY KEY (workspace_id, seq)
) ENGINE = InnoDB;
CREATE TABLE IF NOT EXISTS auditlog_outbox_bucket (
    bucket SMALLINT NOT NULL PRIMARY KEY
) ENGINE = InnoDB;
