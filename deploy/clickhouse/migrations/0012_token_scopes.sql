-- Token scopes (`POST /v1/ingest`, docs/ingest.md). A token either reads one workspace
-- (`read`, every token created before this migration) or publishes events (`ingest`). An
-- ingest token writes one workspace (`workspace_id`), or is a service token: `workspace_id` is
-- '*' and `workspaces` lists the workspaces it may write (empty = every workspace). Read tokens
-- always have an empty `workspaces`.
ALTER TABLE api_tokens
    ADD COLUMN IF NOT EXISTS scope LowCardinality(String) DEFAULT 'read'
    COMMENT 'read: reads workspace_id; ingest: publishes events (POST /v1/ingest)' AFTER name;

ALTER TABLE api_tokens
    ADD COLUMN IF NOT EXISTS workspaces Array(String) DEFAULT []
    COMMENT 'Service ingest tokens (workspace_id = ''*''): the workspaces it may write, empty = all' AFTER scope;
