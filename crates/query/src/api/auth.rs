//! Bearer tokens: workspace tokens (looked up by hash) and the admin token (constant time).

use axum::http::{header, HeaderMap};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::AppState;
use crate::{Error, Result};

/// The bearer secret of a request, if any.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// The workspace the request's token reads.
pub async fn workspace(state: &AppState, headers: &HeaderMap) -> Result<String> {
    let secret = bearer(headers).ok_or(Error::Unauthorized)?;
    state.tokens.authenticate(secret).await
}

/// Succeeds when the request carries the configured admin token.
pub fn admin(state: &AppState, headers: &HeaderMap) -> Result<()> {
    let expected = state.admin_hash.as_ref().ok_or(Error::Unauthorized)?;
    let given = Sha256::digest(bearer(headers).ok_or(Error::Unauthorized)?.as_bytes());
    if bool::from(given.as_slice().ct_eq(expected.as_slice())) {
        Ok(())
    } else {
        Err(Error::Unauthorized)
    }
}

/// SHA-256 of the admin token; `None` when admin endpoints are off.
pub fn admin_hash(admin_token: &str) -> Option<[u8; 32]> {
    (!admin_token.is_empty()).then(|| Sha256::digest(admin_token.as_bytes()).into())
}
