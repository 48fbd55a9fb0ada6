//! API tokens: a random secret shown once, stored as its SHA-256 in `api_tokens`.
//!
//! - A token has a [`Scope`]: `read` tokens read one workspace (every route but
//!   `POST /v1/ingest`); `ingest` tokens only publish events. An ingest token writes one
//!   workspace, or is a *service token* ([`SERVICE_WORKSPACE`] `*` as its workspace) that writes
//!   the workspaces of its allow-list, or every workspace when the list is empty
//!   ([`Grant::may_write`]).
//! - A token may expire (`expires_at`, set at creation); an expired token is refused with
//!   [`Error::TokenExpired`], also while it is cached.
//! - Verified tokens are cached for [`crate::ApiConfig::token_cache`] (default 2 s): a
//!   revocation takes effect on this server at once and on other servers within that time.
//! - Tokens that did not verify (unknown, revoked or expired) are remembered for
//!   [`crate::ApiConfig::unknown_token_cache`] (default 5 s), so a client repeating a bad
//!   token costs at most one ClickHouse lookup per that time. A secret cannot be presented
//!   before it is created (it is 32 random bytes), and [`Tokens::create`] forgets the new
//!   token's hash anyway, so the negative cache never delays a new token on this server.
//! - The last use of a token is written to `api_token_uses` at most once per
//!   [`LAST_USED_EVERY`] per token and server, in the background: never on every request.
//!
//! Every ClickHouse lookup of a presented token counts in
//! `auditlog_api_token_lookups_total{result}` (`valid`, `unknown`, `expired`, `error`).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use chrono::{DateTime, Utc};
use clickhouse::{Client, Row};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::filter::rfc3339_ms;
use crate::{Error, Result};

/// Prefix of every secret (recognisable in logs and secret scanners).
pub const SECRET_PREFIX: &str = "alt_";
/// Longest workspace id or token name.
const MAX_LEN: usize = 256;
/// Most cached verified tokens.
const MAX_CACHED: usize = 10_000;
/// Most remembered tokens that did not verify.
const MAX_UNKNOWN: usize = 10_000;
/// A token's last use is written at most this often per server.
pub const LAST_USED_EVERY: Duration = Duration::from_secs(60);
/// Longest lifetime a token can be given (100 years).
pub const MAX_LIFETIME_DAYS: i64 = 36_500;
/// ClickHouse lookups of presented tokens, by `result`.
pub const LOOKUPS: &str = "auditlog_api_token_lookups_total";
/// The `workspace_id` of a service token (an ingest token for several or all workspaces).
pub const SERVICE_WORKSPACE: &str = "*";
/// Most workspaces on a service token's allow-list.
pub const MAX_SERVICE_WORKSPACES: usize = 1000;

/// What a token may do.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// Reads its workspace (every workspace route but `POST /v1/ingest`).
    #[default]
    Read,
    /// Publishes events (`POST /v1/ingest` only).
    Ingest,
}

impl Scope {
    /// The scope as stored and sent.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Ingest => "ingest",
        }
    }

    /// The stored text's scope; `None` for a value this version does not know (such a token is
    /// refused rather than guessed at).
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "read" => Some(Scope::Read),
            "ingest" => Some(Scope::Ingest),
            _ => None,
        }
    }
}

/// What to create: a read or ingest token for one workspace, or a service token.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TokenSpec {
    /// The workspace; `None`: a service token (scope `ingest`, written as [`SERVICE_WORKSPACE`]).
    pub workspace_id: Option<String>,
    /// What it is for (a service token's service name: required).
    pub name: String,
    /// `read` or `ingest`.
    pub scope: Scope,
    /// Service tokens: the workspaces it may write (empty: every workspace). Nothing else.
    pub workspaces: Vec<String>,
    /// When it stops working (`None`: never).
    pub expires_at: Option<DateTime<Utc>>,
}

impl TokenSpec {
    /// Checks the spec (the error names the field) and returns the stored workspace id and the
    /// allow-list, sorted and without repeats.
    fn checked(&self) -> Result<(String, Vec<String>)> {
        check_text("name", &self.name, false)?;
        match &self.workspace_id {
            Some(ws) => {
                check_workspace_id("workspace_id", ws)?;
                if !self.workspaces.is_empty() {
                    return Err(Error::bad(
                        "workspaces",
                        "only a service token (no workspace_id, scope ingest) has a list of workspaces",
                    ));
                }
                Ok((ws.clone(), Vec::new()))
            }
            None => {
                if self.scope != Scope::Ingest {
                    return Err(Error::bad(
                        "workspace_id",
                        "must not be empty (only ingest tokens can be service tokens without one)",
                    ));
                }
                if self.name.trim().is_empty() {
                    return Err(Error::bad(
                        "name",
                        "a service token needs a name (the service it is for)",
                    ));
                }
                if self.workspaces.len() > MAX_SERVICE_WORKSPACES {
                    return Err(Error::bad(
                        "workspaces",
                        format!("at most {MAX_SERVICE_WORKSPACES} workspaces"),
                    ));
                }
                for ws in &self.workspaces {
                    check_workspace_id("workspaces", ws)?;
                }
                let mut list = self.workspaces.clone();
                list.sort();
                list.dedup();
                Ok((SERVICE_WORKSPACE.to_owned(), list))
            }
        }
    }
}

/// What a verified token allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// Public id.
    pub token_id: String,
    /// Its scope.
    pub scope: Scope,
    /// Its workspace ([`SERVICE_WORKSPACE`] for a service token).
    pub workspace_id: String,
    /// A service token's allow-list (empty: every workspace).
    pub workspaces: Vec<String>,
}

impl Grant {
    /// Whether this token may publish events of `workspace_id` (ingest tokens only).
    pub fn may_write(&self, workspace_id: &str) -> bool {
        if self.scope != Scope::Ingest {
            return false;
        }
        if self.workspace_id == SERVICE_WORKSPACE {
            self.workspaces.is_empty() || self.workspaces.iter().any(|w| w == workspace_id)
        } else {
            self.workspace_id == workspace_id
        }
    }
}

/// A token just created: the only time the secret is visible.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct NewToken {
    /// Public id, to list and revoke.
    pub token_id: String,
    /// The bearer secret.
    pub token: String,
    /// The workspace it reads or writes; `*` for a service token.
    pub workspace_id: String,
    /// `read` or `ingest`.
    pub scope: Scope,
    /// A service token's workspaces (empty: every workspace; always empty for other tokens).
    pub workspaces: Vec<String>,
    /// RFC 3339, `null`: never expires.
    #[schema(format = DateTime, required = true)]
    pub expires_at: Option<String>,
}

/// A stored token (without secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TokenInfo {
    /// Public id.
    pub token_id: String,
    /// Workspace; `*` for a service token.
    pub workspace_id: String,
    /// Name.
    pub name: String,
    /// `read` or `ingest`.
    pub scope: Scope,
    /// A service token's workspaces (empty: every workspace; always empty for other tokens).
    pub workspaces: Vec<String>,
    /// RFC 3339.
    #[schema(format = DateTime)]
    pub created_at: String,
    /// RFC 3339, `null`: never expires.
    #[schema(format = DateTime, required = true)]
    pub expires_at: Option<String>,
    /// RFC 3339, `null` while active.
    #[schema(format = DateTime, required = true)]
    pub revoked_at: Option<String>,
    /// RFC 3339 (to within a minute), `null`: never used.
    #[schema(format = DateTime, required = true)]
    pub last_used_at: Option<String>,
}

#[derive(Debug, Row, Deserialize)]
struct TokenRow {
    token_id: String,
    workspace_id: String,
    name: String,
    scope: String,
    workspaces: Vec<String>,
    token_hash: String,
    created_ms: i64,
    revoked_ms: i64,
    expires_ms: i64,
    last_used_ms: i64,
}

impl TokenRow {
    fn info(self) -> TokenInfo {
        let at = |ms: i64| (ms != 0).then(|| rfc3339_ms(ms));
        TokenInfo {
            token_id: self.token_id,
            workspace_id: self.workspace_id,
            name: self.name,
            scope: Scope::parse(&self.scope).unwrap_or_default(),
            workspaces: self.workspaces,
            created_at: rfc3339_ms(self.created_ms),
            expires_at: at(self.expires_ms),
            revoked_at: at(self.revoked_ms),
            last_used_at: at(self.last_used_ms),
        }
    }
}

const COLUMNS: &str =
    "token_id, workspace_id, name, toString(scope) AS scope, workspaces, token_hash, \
     toUnixTimestamp64Milli(created_at) AS created_ms, \
     ifNull(toUnixTimestamp64Milli(revoked_at), 0) AS revoked_ms, \
     ifNull(toUnixTimestamp64Milli(expires_at), 0) AS expires_ms";

/// Hex SHA-256 of a secret.
pub fn hash_secret(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Checks a name or token id given by an admin.
pub fn check_text(field: &str, v: &str, required: bool) -> Result<()> {
    if required && v.is_empty() {
        return Err(Error::bad(field, "must not be empty"));
    }
    if v.len() > MAX_LEN || v.chars().any(char::is_control) {
        return Err(Error::bad(
            field,
            format!("at most {MAX_LEN} bytes, no control characters"),
        ));
    }
    Ok(())
}

/// Checks a workspace id with the rule of events (`auditlog_event::validate::check_id`): a
/// token or plan for an id no event can carry would be useless.
pub fn check_workspace_id(field: &str, v: &str) -> Result<()> {
    auditlog_event::validate::check_id(field, v)
        .map_err(|e| Error::bad(e.field, e.rule.to_string()))
}

/// The expiry of a token that lives `text` from `now` (`30d`, `12h`, `90min`: humantime).
pub fn expiry_in(field: &str, text: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>> {
    let d = humantime::parse_duration(text.trim()).map_err(|e| {
        Error::bad(
            field,
            format!("{text:?} is not a duration like 30d, 12h or 90min: {e}"),
        )
    })?;
    let d = chrono::TimeDelta::from_std(d).unwrap_or(chrono::TimeDelta::MAX);
    if d < chrono::TimeDelta::seconds(1) {
        return Err(Error::bad(field, "must be at least 1s"));
    }
    if d > chrono::TimeDelta::days(MAX_LIFETIME_DAYS) {
        return Err(Error::bad(
            field,
            format!("at most {MAX_LIFETIME_DAYS} days"),
        ));
    }
    Ok(now + d)
}

/// The expiry `text` (RFC 3339), which must be in the future and at most
/// [`MAX_LIFETIME_DAYS`] from `now`.
pub fn expiry_at(field: &str, text: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>> {
    let at = DateTime::parse_from_rfc3339(text.trim())
        .map_err(|e| Error::bad(field, format!("{text:?} is not an RFC 3339 time: {e}")))?
        .with_timezone(&Utc);
    if at <= now {
        return Err(Error::bad(field, "must be in the future"));
    }
    if at > now + chrono::TimeDelta::days(MAX_LIFETIME_DAYS) {
        return Err(Error::bad(
            field,
            format!("at most {MAX_LIFETIME_DAYS} days from now"),
        ));
    }
    Ok(at)
}

/// Why a presented token did not verify (what the negative cache remembers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refused {
    Unknown,
    Expired,
}

impl Refused {
    fn error(self) -> Error {
        match self {
            Refused::Unknown => Error::Unauthorized,
            Refused::Expired => Error::TokenExpired,
        }
    }
}

#[derive(Debug, Clone)]
struct Verified {
    grant: Grant,
    /// Epoch ms, 0 = never.
    expires_ms: i64,
    at: Instant,
}

impl Verified {
    fn expired(&self, now_ms: i64) -> bool {
        self.expires_ms != 0 && self.expires_ms <= now_ms
    }
}

#[derive(Debug, Default)]
struct Caches {
    /// Token hash -> verified token.
    valid: HashMap<String, Verified>,
    /// Token hash -> why it was refused, when.
    refused: HashMap<String, (Refused, Instant)>,
    /// Token id -> when its last use was last written.
    used: HashMap<String, Instant>,
}

/// Token storage and verification.
#[derive(Debug)]
pub struct Tokens {
    client: Client,
    ttl: Duration,
    unknown_ttl: Duration,
    caches: Mutex<Caches>,
}

impl Tokens {
    /// Tokens in the database of `client`; verified tokens cached for `ttl`, tokens that did
    /// not verify not remembered (see [`Self::remember_refused`]).
    pub fn new(client: Client, ttl: Duration) -> Self {
        Self {
            client,
            ttl,
            unknown_ttl: Duration::ZERO,
            caches: Mutex::new(Caches::default()),
        }
    }

    /// Remembers tokens that did not verify for `ttl` (`0` turns it off).
    pub fn remember_refused(mut self, ttl: Duration) -> Self {
        self.unknown_ttl = ttl;
        self
    }

    /// Creates a read token for `workspace_id` that never expires.
    pub async fn create(&self, workspace_id: &str, name: &str) -> Result<NewToken> {
        self.create_expiring(workspace_id, name, None).await
    }

    /// Creates a read token for `workspace_id`, valid until `expires_at` (`None`: forever).
    pub async fn create_expiring(
        &self,
        workspace_id: &str,
        name: &str,
        expires_at: Option<DateTime<Utc>>,
    ) -> Result<NewToken> {
        self.create_with(&TokenSpec {
            workspace_id: Some(workspace_id.to_owned()),
            name: name.to_owned(),
            expires_at,
            ..TokenSpec::default()
        })
        .await
    }

    /// Creates the token `spec` describes (checked first; the error names the field).
    pub async fn create_with(&self, spec: &TokenSpec) -> Result<NewToken> {
        let (workspace_id, workspaces) = spec.checked()?;
        let (name, expires_at) = (spec.name.as_str(), spec.expires_at);
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        let token = format!("{SECRET_PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes));
        let mut id = [0u8; 8];
        rand::rng().fill_bytes(&mut id);
        let token_id = format!("tok_{}", hex::encode(id));
        let hash = hash_secret(&token);
        let expires_ms = expires_at.map_or(0, |t| t.timestamp_millis());
        self.client
            .query(
                "INSERT INTO api_tokens (token_id, workspace_id, name, scope, workspaces, \
                 token_hash, created_at, revoked_at, expires_at, updated_at) \
                 SELECT {id:String}, {ws:String}, {name:String}, {scope:String}, \
                 {workspaces:Array(String)}, {hash:String}, now64(3), NULL, \
                 if({exp:Int64} = 0, NULL, fromUnixTimestamp64Milli({exp:Int64}, 'UTC')), now64(3)",
            )
            .param("id", &token_id)
            .param("ws", &workspace_id)
            .param("name", name)
            .param("scope", spec.scope.as_str())
            .param("workspaces", &workspaces)
            .param("hash", &hash)
            .param("exp", expires_ms)
            .execute()
            .await
            .map_err(|e| Error::clickhouse("create token", e))?;
        // Nobody can have presented this secret before, but a token made here must work here
        // at once whatever the negative cache holds.
        self.lock().refused.remove(&hash);
        Ok(NewToken {
            token_id,
            token,
            workspace_id,
            scope: spec.scope,
            workspaces,
            expires_at: (expires_ms != 0).then(|| rfc3339_ms(expires_ms)),
        })
    }

    /// Revokes a token (idempotent). [`Error::NotFound`] when no such token exists.
    pub async fn revoke(&self, token_id: &str) -> Result<()> {
        check_text("token_id", token_id, true)?;
        let row: Option<TokenRow> = self
            .client
            .query(&format!(
                "SELECT {COLUMNS}, toInt64(0) AS last_used_ms FROM api_tokens FINAL \
                 WHERE token_id = {{id:String}}"
            ))
            .param("id", token_id)
            .fetch_optional()
            .await
            .map_err(|e| Error::clickhouse("read token", e))?;
        let Some(row) = row else {
            return Err(Error::NotFound(format!("token_id: no token {token_id:?}")));
        };
        if row.revoked_ms == 0 {
            self.client
                .query(
                    "INSERT INTO api_tokens (token_id, workspace_id, name, scope, workspaces, \
                     token_hash, created_at, revoked_at, expires_at, updated_at) \
                     SELECT token_id, workspace_id, name, scope, workspaces, token_hash, \
                            created_at, now64(3), expires_at, now64(3) \
                     FROM api_tokens FINAL WHERE token_id = {id:String}",
                )
                .param("id", token_id)
                .execute()
                .await
                .map_err(|e| Error::clickhouse("revoke token", e))?;
        }
        self.lock().valid.remove(&row.token_hash);
        Ok(())
    }

    /// Every token, or those of one workspace (`*`: the service tokens), oldest first, with
    /// their last use.
    pub async fn list(&self, workspace_id: Option<&str>) -> Result<Vec<TokenInfo>> {
        let rows: Vec<TokenRow> = self
            .client
            .query(&format!(
                "SELECT t.token_id AS token_id, t.workspace_id AS workspace_id, t.name AS name, \
                 t.scope AS scope, t.workspaces AS workspaces, t.token_hash AS token_hash, t.created_ms AS created_ms, \
                 t.revoked_ms AS revoked_ms, t.expires_ms AS expires_ms, \
                 ifNull(u.used_ms, 0) AS last_used_ms FROM \
                 (SELECT {COLUMNS} FROM api_tokens FINAL \
                  WHERE {{ws:String}} = '' OR workspace_id = {{ws:String}}) AS t \
                 LEFT JOIN (SELECT token_id, \
                    toNullable(toUnixTimestamp64Milli(max(used_at))) AS used_ms \
                    FROM api_token_uses GROUP BY token_id) AS u ON u.token_id = t.token_id \
                 ORDER BY created_ms, token_id"
            ))
            .param("ws", workspace_id.unwrap_or(""))
            .fetch_all()
            .await
            .map_err(|e| Error::clickhouse("list tokens", e))?;
        Ok(rows.into_iter().map(TokenRow::info).collect())
    }

    /// Whether `secret` is a verified, unexpired token in the cache (answers without
    /// ClickHouse).
    pub fn is_cached_valid(&self, secret: &str) -> bool {
        let hash = hash_secret(secret);
        let now_ms = Utc::now().timestamp_millis();
        self.lock()
            .valid
            .get(&hash)
            .is_some_and(|v| v.at.elapsed() < self.ttl && !v.expired(now_ms))
    }

    /// What an active, unexpired token allows; [`Error::Unauthorized`] (unknown or revoked)
    /// or [`Error::TokenExpired`] otherwise. The caller checks the scope.
    pub async fn authenticate(&self, secret: &str) -> Result<Grant> {
        if !secret.starts_with(SECRET_PREFIX) || secret.len() > 128 {
            return Err(Error::Unauthorized);
        }
        let hash = hash_secret(secret);
        let now_ms = Utc::now().timestamp_millis();
        if let Some(hit) = self.cached(&hash, now_ms)? {
            self.used(&hit.grant.token_id);
            return Ok(hit.grant);
        }
        let row: Option<TokenRow> = self
            .client
            .query(&format!(
                "SELECT {COLUMNS}, toInt64(0) AS last_used_ms FROM api_tokens FINAL \
                 WHERE token_hash = {{hash:String}} AND revoked_at IS NULL"
            ))
            .param("hash", &hash)
            .fetch_optional()
            .await
            .map_err(|e| {
                metrics::counter!(LOOKUPS, "result" => "error").increment(1);
                Error::clickhouse("verify token", e)
            })?;
        // A scope this version does not know is refused like an unknown token.
        let Some((row, scope)) = row.and_then(|r| Scope::parse(&r.scope).map(|s| (r, s))) else {
            metrics::counter!(LOOKUPS, "result" => "unknown").increment(1);
            return Err(self.refuse(hash, Refused::Unknown));
        };
        let verified = Verified {
            grant: Grant {
                token_id: row.token_id,
                scope,
                workspace_id: row.workspace_id,
                workspaces: row.workspaces,
            },
            expires_ms: row.expires_ms,
            at: Instant::now(),
        };
        if verified.expired(now_ms) {
            metrics::counter!(LOOKUPS, "result" => "expired").increment(1);
            return Err(self.refuse(hash, Refused::Expired));
        }
        metrics::counter!(LOOKUPS, "result" => "valid").increment(1);
        if !self.ttl.is_zero() {
            let mut c = self.lock();
            if c.valid.len() >= MAX_CACHED {
                c.valid.clear();
            }
            c.valid.insert(hash, verified.clone());
        }
        self.used(&verified.grant.token_id);
        Ok(verified.grant)
    }

    /// The cached answer for `hash`: `Ok(Some)` verified, `Err` refused, `Ok(None)` ask
    /// ClickHouse.
    fn cached(&self, hash: &str, now_ms: i64) -> Result<Option<Verified>> {
        let mut c = self.lock();
        if let Some(v) = c.valid.get(hash) {
            if v.at.elapsed() < self.ttl {
                if !v.expired(now_ms) {
                    return Ok(Some(v.clone()));
                }
                c.valid.remove(hash);
                drop(c);
                return Err(self.refuse(hash.to_owned(), Refused::Expired));
            }
        }
        if let Some((why, at)) = c.refused.get(hash) {
            if at.elapsed() < self.unknown_ttl {
                return Err(why.error());
            }
        }
        Ok(None)
    }

    /// Remembers that `hash` was refused; the error to answer.
    fn refuse(&self, hash: String, why: Refused) -> Error {
        if !self.unknown_ttl.is_zero() {
            let mut c = self.lock();
            if c.refused.len() >= MAX_UNKNOWN {
                let ttl = self.unknown_ttl;
                c.refused.retain(|_, (_, at)| at.elapsed() < ttl);
            }
            // Still full of fresh entries (a flood of random tokens, which the failure limit
            // slows down): keep those rather than churn.
            if c.refused.len() < MAX_UNKNOWN {
                c.refused.insert(hash, (why, Instant::now()));
            }
        }
        why.error()
    }

    /// Records a use of `token_id`, writing it at most once per [`LAST_USED_EVERY`].
    fn used(&self, token_id: &str) {
        {
            let mut c = self.lock();
            if c.used
                .get(token_id)
                .is_some_and(|at| at.elapsed() < LAST_USED_EVERY)
            {
                return;
            }
            if c.used.len() >= MAX_CACHED {
                c.used.retain(|_, at| at.elapsed() < LAST_USED_EVERY);
            }
            c.used.insert(token_id.to_owned(), Instant::now());
        }
        let client = self.client.clone();
        let token_id = token_id.to_owned();
        // In the background: the request does not wait for the write, and a failed write only
        // leaves the last-use time older than it should be.
        tokio::spawn(async move {
            let r = client
                .query(
                    "INSERT INTO api_token_uses (token_id, used_at) SELECT {id:String}, now64(3)",
                )
                .param("id", &token_id)
                .execute()
                .await;
            if let Err(e) = r {
                tracing::warn!(error = %e, token_id, "could not record the token's last use");
            }
        });
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Caches> {
        self.caches.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_parses_durations_and_times_and_names_the_field() {
        let now = DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(
            expiry_in("expires_in", "30d", now).unwrap().to_rfc3339(),
            "2026-01-31T00:00:00+00:00"
        );
        assert_eq!(
            expiry_in("expires_in", "1h 30m", now).unwrap().to_rfc3339(),
            "2026-01-01T01:30:00+00:00"
        );
        for bad in ["", "soon", "0s", "36501d", "-1d"] {
            let e = expiry_in("expires_in", bad, now).unwrap_err().to_string();
            assert!(e.starts_with("expires_in: "), "{bad}: {e}");
        }
        assert_eq!(
            expiry_at("expires_at", "2026-02-01T12:00:00+01:00", now)
                .unwrap()
                .to_rfc3339(),
            "2026-02-01T11:00:00+00:00"
        );
        for bad in [
            "2025-12-31T23:59:59Z",
            "2026-01-01T00:00:00Z",
            "tomorrow",
            "2200-01-01T00:00:00Z",
        ] {
            let e = expiry_at("expires_at", bad, now).unwrap_err().to_string();
            assert!(e.starts_with("expires_at: "), "{bad}: {e}");
        }
    }

    #[test]
    fn workspace_ids_follow_the_event_rule() {
        check_workspace_id("workspace_id", "ws_1").unwrap();
        for bad in ["", " ", "a b", "tab\there", "x\u{2003}y", &"w".repeat(257)] {
            let e = check_workspace_id("workspace_id", bad)
                .unwrap_err()
                .to_string();
            assert!(e.starts_with("workspace_id: "), "{bad:?}: {e}");
        }
    }
}
