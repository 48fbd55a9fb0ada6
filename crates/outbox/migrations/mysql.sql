-- auditlog transactional outbox, MySQL 8 / MariaDB 10.6+ (docs/outbox.md). Idempotent: run it
-- again after an upgrade. `auditlog relay migrate` runs it.
-- Ids compare byte for byte (utf8mb4_bin): `WS` and `ws` are different workspaces.

-- One row per workspace: the last sequence number taken. A writer's upsert locks the row
-- until its transaction ends, so one workspace's numbers follow commit order, without gaps.
CREATE TABLE IF NOT EXISTS auditlog_outbox_seq (
    workspace_id VARCHAR(256) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL PRIMARY KEY,
    last_seq     BIGINT NOT NULL
) ENGINE = InnoDB;

-- The events waiting for the relay; it deletes them once the broker acknowledged them.
-- body: the event's JSON exactly as the producer would publish it (the Kafka record value).
-- auditlog_outbox_relay: the relay's read, a bucket's rows in (workspace_id, seq) order.
CREATE TABLE IF NOT EXISTS auditlog_outbox (
    workspace_id VARCHAR(256) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    seq          BIGINT       NOT NULL,
    bucket       SMALLINT     NOT NULL,
    event_id     CHAR(36)     CHARACTER SET ascii NOT NULL,
    event_type   VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    body         LONGBLOB     NOT NULL,
    created_at   TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
    PRIMARY KEY (workspace_id, seq),
    KEY auditlog_outbox_relay (bucket, workspace_id, seq)
) ENGINE = InnoDB;

-- The 64 buckets relays lock (FOR UPDATE SKIP LOCKED) to share the work.
CREATE TABLE IF NOT EXISTS auditlog_outbox_bucket (
    bucket SMALLINT NOT NULL PRIMARY KEY
) ENGINE = InnoDB;
INSERT IGNORE INTO auditlog_outbox_bucket (bucket) VALUES
    (0), (1), (2), (3), (4), (5), (6), (7), (8), (9), (10), (11), (12), (13), (14), (15),
    (16), (17), (18), (19), (20), (21), (22), (23), (24), (25), (26), (27), (28), (29), (30), (31),
    (32), (33), (34), (35), (36), (37), (38), (39), (40), (41), (42), (43), (44), (45), (46), (47),
    (48), (49), (50), (51), (52), (53), (54), (55), (56), (57), (58), (59), (60), (61), (62), (63);
