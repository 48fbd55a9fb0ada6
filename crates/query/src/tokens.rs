//! Workspace API tokens: a random secret shown once, stored as its SHA-256 in `api_tokens`.
//!
//! Verified tokens are cached for [`crate::ApiConfig::token_cache`] (default 2 s): a
//! revocation takes effect on this server at once and on other servers within that time.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
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

/// A token just created: the only time the secret is visible.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewToken {
    /// Public id, to list and revoke.
    pub token_id: String,
    /// The bearer secret.
    pub token: String,
    /// The workspace it reads.
    pub workspace_id: String,
}

/// A stored token (without secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenInfo {
    /// Public id.
    pub token_id: String,
    /// Workspace.
    pub workspace_id: String,
    /// Name.
    pub name: String,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339, `null` while active.
    pub revoked_at: Option<String>,
}

#[derive(Debug, Row, Deserialize)]
struct TokenRow {
    token_id: String,
    workspace_id: String,
    name: String,
    token_hash: String,
    created_ms: i64,
    revoked_ms: i64,
}

impl TokenRow {
    fn info(self) -> TokenInfo {
        TokenInfo {
            token_id: self.token_id,
            workspace_id: self.workspace_id,
            name: self.name,
            created_at: rfc3339_ms(self.created_ms),
            revoked_at: (self.revoked_ms != 0).then(|| rfc3339_ms(self.revoked_ms)),
        }
    }
}

const SELECT: &str = "SELECT token_id, workspace_id, name, token_hash, \
     toUnixTimestamp64Milli(created_at) AS created_ms, \
     ifNull(toUnixTimestamp64Milli(revoked_at), 0) AS revoked_ms FROM api_tokens FINAL";

/// Hex SHA-256 of a secret.
pub fn hash_secret(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Checks a workspace id or name given by an admin.
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

/// Token storage and verification.
#[derive(Debug)]
pub struct Tokens {
    client: Client,
    ttl: Duration,
    cache: Mutex<HashMap<String, (String, Instant)>>,
}

impl Tokens {
    /// Tokens in the database of `client`; verified tokens cached for `ttl`.
    pub fn new(client: Client, ttl: Duration) -> Self {
        Self {
            client,
            ttl,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// Creates a token for `workspace_id`.
    pub async fn create(&self, workspace_id: &str, name: &str) -> Result<NewToken> {
        check_text("workspace_id", workspace_id, true)?;
        check_text("name", name, false)?;
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        let token = format!("{SECRET_PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes));
        let mut id = [0u8; 8];
        rand::rng().fill_bytes(&mut id);
        let token_id = format!("tok_{}", hex::encode(id));
        self.client
            .query(
                "INSERT INTO api_tokens (token_id, workspace_id, name, token_hash, created_at, \
                 revoked_at, updated_at) \
                 SELECT {id:String}, {ws:String}, {name:String}, {hash:String}, now64(3), NULL, now64(3)",
            )
            .param("id", &token_id)
            .param("ws", workspace_id)
            .param("name", name)
            .param("hash", hash_secret(&token))
            .execute()
            .await
            .map_err(|e| Error::clickhouse("create token", e))?;
        Ok(NewToken {
            token_id,
            token,
            workspace_id: workspace_id.to_owned(),
        })
    }

    /// Revokes a token (idempotent). [`Error::NotFound`] when no such token exists.
    pub async fn revoke(&self, token_id: &str) -> Result<()> {
        check_text("token_id", token_id, true)?;
        let row: Option<TokenRow> = self
            .client
            .query(&format!("{SELECT} WHERE token_id = {{id:String}}"))
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
                    "INSERT INTO api_tokens (token_id, workspace_id, name, token_hash, created_at, \
                     revoked_at, updated_at) \
                     SELECT token_id, workspace_id, name, token_hash, created_at, now64(3), \
                            now64(3) FROM api_tokens FINAL WHERE token_id = {id:String}",
                )
                .param("id", token_id)
                .execute()
                .await
                .map_err(|e| Error::clickhouse("revoke token", e))?;
        }
        self.lock().remove(&row.token_hash);
        Ok(())
    }

    /// Every token, or those of one workspace, oldest first.
    pub async fn list(&self, workspace_id: Option<&str>) -> Result<Vec<TokenInfo>> {
        let rows: Vec<TokenRow> = self
            .client
            .query(&format!(
                "{SELECT} WHERE {{ws:String}} = '' OR workspace_id = {{ws:String}} \
                 ORDER BY created_at, token_id"
            ))
            .param("ws", workspace_id.unwrap_or(""))
            .fetch_all()
            .await
            .map_err(|e| Error::clickhouse("list tokens", e))?;
        Ok(rows.into_iter().map(TokenRow::info).collect())
    }

    /// The workspace of an active token; [`Error::Unauthorized`] otherwise.
    pub async fn authenticate(&self, secret: &str) -> Result<String> {
        if !secret.starts_with(SECRET_PREFIX) || secret.len() > 128 {
            return Err(Error::Unauthorized);
        }
        let hash = hash_secret(secret);
        if let Some((ws, at)) = self.lock().get(&hash) {
            if at.elapsed() < self.ttl {
                return Ok(ws.clone());
            }
        }
        let row: Option<TokenRow> = self
            .client
            .query(&format!(
                "{SELECT} WHERE token_hash = {{hash:String}} AND revoked_at IS NULL"
            ))
            .param("hash", &hash)
            .fetch_optional()
            .await
            .map_err(|e| Error::clickhouse("verify token", e))?;
        let row = row.ok_or(Error::Unauthorized)?;
        if !self.ttl.is_zero() {
            let mut cache = self.lock();
            if cache.len() >= MAX_CACHED {
                cache.clear();
            }
            cache.insert(hash, (row.workspace_id.clone(), Instant::now()));
        }
        Ok(row.workspace_id)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (String, Instant)>> {
        self.cache.lock().unwrap_or_else(|p| p.into_inner())
    }
}
