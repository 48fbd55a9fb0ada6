//! The HTTP client every HTTP destination shares (reqwest over rustls with the Mozilla roots):
//! one connection pool for the worker, no redirects (a destination that redirects is
//! misconfigured), a per-request timeout, and the mapping of a response to a [`Failure`].

use std::time::Duration;

use crate::destination::Failure;

/// Longest response body read back for an error message.
const ERROR_BODY_LIMIT: usize = 512;

/// The worker's HTTP client.
pub fn client(timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .use_rustls_tls()
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(5)))
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!(
            "auditlog-stream-worker/",
            env!("CARGO_PKG_VERSION")
        ))
        .pool_idle_timeout(Duration::from_secs(30))
        .build()
        .unwrap_or_else(|e| panic!("the HTTP client's fixed configuration is valid: {e}"))
}

/// `Retry-After` as a duration: delta-seconds or an HTTP date.
pub fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let value = headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let ms = at.timestamp_millis() - chrono::Utc::now().timestamp_millis();
    Some(Duration::from_millis(ms.max(0) as u64))
}

/// A response: `Ok` for 2xx, otherwise a [`Failure`] naming the status and the start of the
/// body, with `Retry-After` when the destination sent one.
pub async fn check(what: &str, resp: reqwest::Response) -> Result<reqwest::Response, Failure> {
    let status = resp.status();
    if status.is_success() {
        return Ok(resp);
    }
    let after = retry_after(resp.headers());
    let body = resp.bytes().await.unwrap_or_default();
    let text = String::from_utf8_lossy(&body[..body.len().min(ERROR_BODY_LIMIT)]).into_owned();
    Err(Failure {
        reason: format!("{what} answered {status}: {}", text.trim()),
        retry_after: after,
    })
}

/// A request that did not get an answer (connect, TLS, timeout).
pub fn transport(what: &str, err: &reqwest::Error) -> Failure {
    let kind = if err.is_timeout() {
        "timed out"
    } else if err.is_connect() {
        "connection failed"
    } else {
        "request failed"
    };
    Failure {
        reason: format!("{what} {kind}: {err}"),
        retry_after: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_takes_seconds_and_dates() {
        let mut h = reqwest::header::HeaderMap::new();
        h.insert(reqwest::header::RETRY_AFTER, "7".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_secs(7)));
        let soon = (chrono::Utc::now() + chrono::Duration::seconds(30)).to_rfc2822();
        h.insert(reqwest::header::RETRY_AFTER, soon.parse().unwrap());
        let d = retry_after(&h).unwrap();
        assert!(
            d > Duration::from_secs(25) && d <= Duration::from_secs(30),
            "{d:?}"
        );
        h.insert(reqwest::header::RETRY_AFTER, "soon".parse().unwrap());
        assert_eq!(retry_after(&h), None);
    }
}
