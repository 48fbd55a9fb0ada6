-- Each workspace's plan and the retention it grants. Managed by `auditlog plan set`
-- and the admin API; read by the consumer (short cache) and by every query.
-- The newest row per workspace wins (FINAL or argMax(..., updated_at)).
CREATE TABLE IF NOT EXISTS workspace_plans
(
    workspace_id   String                  COMMENT 'The tenant',
    plan           LowCardinality(String)  COMMENT 'free | pro | enterprise',
    retention_days UInt32                  COMMENT 'Days events are kept; 0 = unlimited',
    updated_at     DateTime64(3, 'UTC')    COMMENT 'When the plan was set'
)
ENGINE = ReplacingMergeTree(updated_at)
ORDER BY workspace_id
COMMENT 'Workspace plans; latest updated_at wins.';
