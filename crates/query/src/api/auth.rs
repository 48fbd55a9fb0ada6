//! Bearer tokens: workspace tokens (looked up by hash; a read token reads, an ingest token
//! only publishes) and the admin token (constant time), and the limit on failed
//! authentications per client.
//!
//! Every 401 a client gets costs it one unit of a token bucket ([`FailureLimiter`]: a burst of
//! `api.auth_failure_burst`, one more unit per `api.auth_failure_interval`). A client whose
//! bucket is empty is answered `429 too_many_requests` with `Retry-After` on `/v1/...` before
//! any handler runs, so it cannot make the server ask ClickHouse about more tokens; only
//! requests that need no ClickHouse to be accepted (the admin token, a workspace token this
//! server verified within `api.token_cache`) still pass, so a client sharing an address with
//! an attacker (a NAT) keeps working with a token already in use. The client is the peer
//! address (`ConnectInfo`, which `auditlog serve` provides); an app served without it (driven
//! in-process) is not limited.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::error::{error_response, ErrorCode};
use super::AppState;
use crate::tokens::{Grant, Scope};
use crate::{Error, Result};

/// Requests answered 429 because their client failed to authenticate too often.
pub const RATE_LIMITED: &str = "auditlog_api_auth_rate_limited_total";
/// Most clients whose failures are tracked; beyond, new clients share one bucket.
const MAX_CLIENTS: usize = 10_000;

/// The bearer secret of a request, if any.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// The workspace the request's token reads: a read token's; an ingest token is a 403.
pub async fn workspace(state: &AppState, headers: &HeaderMap) -> Result<String> {
    let secret = bearer(headers).ok_or(Error::Unauthorized)?;
    let grant = state.tokens.authenticate(secret).await?;
    if grant.scope != Scope::Read {
        return Err(Error::Forbidden(
            "this is an ingest token: it can only publish events (POST /v1/ingest); reads need a \
             read token"
                .into(),
        ));
    }
    Ok(grant.workspace_id)
}

/// What the request's ingest token may write; a read token is a 403.
pub async fn ingest(state: &AppState, headers: &HeaderMap) -> Result<Grant> {
    let secret = bearer(headers).ok_or(Error::Unauthorized)?;
    let grant = state.tokens.authenticate(secret).await?;
    if grant.scope != Scope::Ingest {
        return Err(Error::Forbidden(
            "this is a read token: it cannot publish events; create an ingest token \
             (`auditlog token create WS --ingest`, or scope \"ingest\" in POST /v1/admin/tokens)"
                .into(),
        ));
    }
    Ok(grant)
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

/// Middleware on the API routes: refuses `/v1/...` requests of a client over its failure
/// limit (429) and charges the client for every 401 answered.
pub async fn limit_failures(State(s): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    let Some(peer) = peer else {
        // No peer address: the app is served without `ConnectInfo` (driven in-process).
        return next.run(req).await;
    };
    let path = req.uri().path();
    if !path.starts_with("/v1/") || path.starts_with("/v1/schemas/") || !s.auth_failures.enabled() {
        return next.run(req).await;
    }
    let client = client_key(peer);
    if let Some(wait) = s.auth_failures.blocked(client, Instant::now()) {
        let known_good = admin(&s, req.headers()).is_ok()
            || bearer(req.headers()).is_some_and(|t| s.tokens.is_cached_valid(t));
        if !known_good {
            metrics::counter!(RATE_LIMITED).increment(1);
            return too_many(wait);
        }
    }
    let resp = next.run(req).await;
    if resp.status() == StatusCode::UNAUTHORIZED {
        s.auth_failures.charge(client, Instant::now());
    }
    resp
}

/// The 429 answer: the usual error body and `Retry-After` in whole seconds (at least 1).
fn too_many(wait: Duration) -> Response {
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    let secs = secs.max(1);
    let mut resp = error_response(
        ErrorCode::TooManyRequests,
        &format!(
            "too many failed authentications from this address; retry in {secs} s with a valid token"
        ),
    );
    resp.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    resp
}

/// The client a request is counted against: its IP address, an IPv6 address by its /64 (one
/// host usually has a whole /64), an IPv4-mapped IPv6 address as IPv4.
pub fn client_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
        v4 => v4,
    }
}

/// Failed authentications per client: a token bucket per client (GCRA: one instant per
/// client), in a map of at most [`MAX_CLIENTS`] entries. A client whose bucket is full again
/// is forgotten; when the map is full of clients that are not, new clients share one bucket
/// (the overflow key), so a flood from many addresses is limited as a whole.
#[derive(Debug)]
pub struct FailureLimiter {
    /// Failures allowed in a row; 0: no limit.
    burst: u32,
    /// One failure refills per interval.
    interval: Duration,
    /// Client -> the instant its bucket is full again.
    full_at: Mutex<HashMap<IpAddr, Instant>>,
}

/// The shared bucket of clients beyond [`MAX_CLIENTS`]: `100::/64`, the discard-only prefix
/// (RFC 6666), which no peer connects from.
const OVERFLOW: IpAddr = IpAddr::V6(Ipv6Addr::new(0x100, 0, 0, 0, 0, 0, 0, 0));

impl FailureLimiter {
    /// `burst` failures in a row, then one per `interval`; `burst` 0 disables the limit.
    pub fn new(burst: u32, interval: Duration) -> Self {
        Self {
            burst,
            interval,
            full_at: Mutex::new(HashMap::new()),
        }
    }

    fn enabled(&self) -> bool {
        self.burst > 0
    }

    /// How long `client` must wait before it may fail again; `None` when it may now.
    pub fn blocked(&self, client: IpAddr, now: Instant) -> Option<Duration> {
        if !self.enabled() {
            return None;
        }
        let map = self.lock();
        let full_at = *map.get(&client).or_else(|| {
            // A client never seen while the map overflowed is counted in the shared bucket.
            (map.len() >= MAX_CLIENTS)
                .then(|| map.get(&OVERFLOW))
                .flatten()
        })?;
        // The bucket holds `burst` units; it is empty when it is full only `burst`
        // intervals from now, and one unit comes back one interval later.
        let allowed_until = now + self.interval * (self.burst - 1);
        (full_at > allowed_until).then(|| full_at - allowed_until)
    }

    /// Counts one failure of `client`.
    pub fn charge(&self, client: IpAddr, now: Instant) {
        if !self.enabled() {
            return;
        }
        let mut map = self.lock();
        let key = if map.contains_key(&client) || map.len() < MAX_CLIENTS {
            client
        } else {
            map.retain(|_, full_at| *full_at > now);
            if map.len() < MAX_CLIENTS {
                client
            } else {
                OVERFLOW
            }
        };
        let full_at = map.entry(key).or_insert(now);
        // Never more than one unit below empty: a client cannot dig itself a longer ban by
        // failing while it is refused (it is refused before a handler can answer 401).
        let cap = now + self.interval * self.burst;
        *full_at = ((*full_at).max(now) + self.interval).min(cap);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, Instant>> {
        self.full_at.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_then_one_failure_per_interval_per_client() {
        let l = FailureLimiter::new(3, Duration::from_secs(1));
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let t0 = Instant::now();
        for _ in 0..3 {
            assert_eq!(l.blocked(a, t0), None);
            l.charge(a, t0);
        }
        assert_eq!(l.blocked(a, t0), Some(Duration::from_secs(1)));
        assert_eq!(
            l.blocked(a, t0 + Duration::from_millis(400)),
            Some(Duration::from_millis(600))
        );
        assert_eq!(l.blocked(b, t0), None, "another client is not limited");
        // One interval later: one more failure allowed, then blocked again.
        let t1 = t0 + Duration::from_secs(1);
        assert_eq!(l.blocked(a, t1), None);
        l.charge(a, t1);
        assert_eq!(l.blocked(a, t1), Some(Duration::from_secs(1)));
        // Failures beyond empty do not lengthen the wait.
        l.charge(a, t1);
        l.charge(a, t1);
        assert_eq!(l.blocked(a, t1), Some(Duration::from_secs(1)));
        // After burst intervals the bucket is full: a whole burst again.
        let t2 = t1 + Duration::from_secs(3);
        for _ in 0..3 {
            assert_eq!(l.blocked(a, t2), None);
            l.charge(a, t2);
        }
        assert!(l.blocked(a, t2).is_some());
        let off = FailureLimiter::new(0, Duration::from_secs(1));
        for _ in 0..100 {
            off.charge(a, t0);
        }
        assert_eq!(off.blocked(a, t0), None);
    }

    #[test]
    fn the_map_is_bounded_and_overflow_clients_share_a_bucket() {
        let l = FailureLimiter::new(1, Duration::from_secs(60));
        let t0 = Instant::now();
        for i in 0..MAX_CLIENTS as u32 {
            l.charge(IpAddr::V4(i.into()), t0);
        }
        let late_a: IpAddr = "2001:db8::1".parse().unwrap();
        let late_b: IpAddr = "2001:db9::1".parse().unwrap();
        assert_eq!(l.blocked(late_a, t0), None);
        l.charge(late_a, t0);
        assert_eq!(l.lock().len(), MAX_CLIENTS + 1, "the overflow bucket only");
        assert!(
            l.blocked(late_b, t0).is_some(),
            "shares the overflow bucket"
        );
        // Once the tracked clients' buckets are full again they are forgotten.
        let later = t0 + Duration::from_secs(61);
        l.charge(late_b, later);
        assert!(l.lock().len() <= 2, "{}", l.lock().len());
        assert!(l.blocked(late_b, later).is_some());
        assert_eq!(l.blocked(late_a, later), None);
    }

    #[test]
    fn clients_are_addresses_and_ipv6_slash_64s() {
        let k = |s: &str| client_key(s.parse().unwrap());
        assert_eq!(k("10.1.2.3"), k("::ffff:10.1.2.3"));
        assert_eq!(k("2001:db8:1:2::1"), k("2001:db8:1:2:ffff::9"));
        assert_ne!(k("2001:db8:1:2::1"), k("2001:db8:1:3::1"));
        assert_ne!(k("10.1.2.3"), k("10.1.2.4"));
    }
}
