-- Workspace tokens may expire, and the server records when each token was last used.
-- `expires_at` is part of the token's row (set once, at creation; NULL = never expires).
-- The last use is kept in a table of its own: writing it never rewrites a token's row, so a
-- use recorded while the token is being revoked cannot bring back an older, unrevoked version
-- of the row. The API writes at most one row per token and minute per server; reads take the
-- newest (`max(used_at)`).
ALTER TABLE api_tokens
    ADD COLUMN IF NOT EXISTS expires_at Nullable(DateTime64(3, 'UTC'))
    COMMENT 'When the token stops working (NULL = never)' AFTER revoked_at;

CREATE TABLE IF NOT EXISTS api_token_uses
(
    token_id String               COMMENT 'The token (api_tokens.token_id)',
    used_at  DateTime64(3, 'UTC') COMMENT 'When a server accepted it'
)
ENGINE = ReplacingMergeTree(used_at)
ORDER BY token_id
COMMENT 'Last use of each API token (newest used_at wins); written at most once a minute per token and server.';
