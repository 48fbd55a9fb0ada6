-- Workspace API tokens. Only the SHA-256 of each secret is stored; the secret is shown once
-- at creation. Revocation writes a newer version of the row (revoked_at set); the newest
-- updated_at wins (FINAL). Managed by `auditlog token` and the admin API.
CREATE TABLE IF NOT EXISTS api_tokens
(
    token_id     String                          COMMENT 'Public id (tok_...), used to revoke',
    workspace_id String                          COMMENT 'The tenant the token reads',
    name         String                          COMMENT 'What the token is for',
    token_hash   String                          COMMENT 'Hex SHA-256 of the secret',
    created_at   DateTime64(3, 'UTC')            COMMENT 'When it was created',
    revoked_at   Nullable(DateTime64(3, 'UTC'))  COMMENT 'When it was revoked (NULL = active)',
    updated_at   DateTime64(3, 'UTC')            COMMENT 'Version of this row',
    INDEX idx_token_hash token_hash TYPE bloom_filter(0.001) GRANULARITY 1
)
ENGINE = ReplacingMergeTree(updated_at)
ORDER BY token_id
COMMENT 'API tokens (hashed); latest updated_at wins.';
