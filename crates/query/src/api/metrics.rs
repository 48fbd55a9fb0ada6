//! Prometheus metrics of the API, every label bounded: requests by matched route (or
//! `unmatched`), method (the standard ones, anything else `other`) and status; connections by
//! listener and close reason. The Prometheus recorder is the binary's (`auditlog serve`
//! installs it); [`AppState::new`](super::AppState::new) takes its handle.

use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;
use metrics::Unit;

/// Requests served, by `route`, `method`, `status`.
pub const REQUESTS: &str = "auditlog_api_requests_total";
/// Request latency in seconds (until the response head), by `route`, `method`, `status`.
pub const DURATION: &str = "auditlog_api_request_duration_seconds";
/// Connections open now, by `listener`.
pub const CONNECTIONS_OPEN: &str = "auditlog_api_connections_open";
/// The connection cap in effect, by `listener`.
pub const CONNECTIONS_MAX: &str = "auditlog_api_connections_max";
/// Connections accepted, by `listener`.
pub const CONNECTIONS_ACCEPTED: &str = "auditlog_api_connections_accepted_total";
/// Connections closed, by `listener` and `reason`.
pub const CONNECTIONS_CLOSED: &str = "auditlog_api_connections_closed_total";

/// `reason`: the client or the server closed it after a request (or it never sent one).
pub const CLOSED_NORMALLY: &str = "closed";
/// `reason`: idle too long (no request head started, or the client stopped reading).
pub const CLOSED_IDLE: &str = "idle_timeout";
/// `reason`: a request head started but did not complete in time.
pub const CLOSED_HEADER_TIMEOUT: &str = "header_timeout";
/// `reason`: an I/O or protocol error (a reset, a malformed or oversized head).
pub const CLOSED_ERROR: &str = "error";
const REASONS: [&str; 4] = [
    CLOSED_NORMALLY,
    CLOSED_IDLE,
    CLOSED_HEADER_TIMEOUT,
    CLOSED_ERROR,
];

const BUCKETS: &[f64] = &[
    0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0,
];

/// Histogram buckets of the API's histograms, for the recorder the binary installs.
pub const HISTOGRAM_BUCKETS: &[(&str, &[f64])] = &[(DURATION, BUCKETS)];

/// `# HELP` text of every API metric.
pub fn describe() {
    auditlog_store::failover::register_metrics();
    metrics::describe_counter!(
        REQUESTS,
        "API requests served, by matched route (or unmatched), method (other for non-standard ones) and status"
    );
    metrics::describe_histogram!(
        DURATION,
        Unit::Seconds,
        "API request latency until the response head, by route, method and status"
    );
    metrics::describe_gauge!(CONNECTIONS_OPEN, "HTTP connections open, by listener");
    metrics::describe_gauge!(
        CONNECTIONS_MAX,
        "Cap on open HTTP connections in effect (api.max_connections fitted to the descriptor limit), by listener"
    );
    metrics::describe_counter!(
        CONNECTIONS_ACCEPTED,
        "HTTP connections accepted, by listener"
    );
    metrics::describe_counter!(
        CONNECTIONS_CLOSED,
        "HTTP connections closed, by listener and reason (closed, idle_timeout, header_timeout, error)"
    );
}

/// Publishes the cap of `listener` and its connection series at zero.
pub fn connections_listener(listener: &'static str, max: usize) {
    metrics::gauge!(CONNECTIONS_MAX, "listener" => listener).set(max as f64);
    metrics::gauge!(CONNECTIONS_OPEN, "listener" => listener).increment(0.0);
    metrics::counter!(CONNECTIONS_ACCEPTED, "listener" => listener).increment(0);
    for reason in REASONS {
        metrics::counter!(CONNECTIONS_CLOSED, "listener" => listener, "reason" => reason)
            .increment(0);
    }
}

/// A connection was accepted on `listener`.
pub fn connection_opened(listener: &'static str) {
    metrics::counter!(CONNECTIONS_ACCEPTED, "listener" => listener).increment(1);
    metrics::gauge!(CONNECTIONS_OPEN, "listener" => listener).increment(1.0);
}

/// A connection of `listener` closed for `reason` (one of the `CLOSED_*`).
pub fn connection_closed(listener: &'static str, reason: &'static str) {
    metrics::gauge!(CONNECTIONS_OPEN, "listener" => listener).decrement(1.0);
    metrics::counter!(CONNECTIONS_CLOSED, "listener" => listener, "reason" => reason).increment(1);
}

/// The `method` label: a standard method's name, anything else `other`.
pub fn method_label(m: &Method) -> &'static str {
    match *m {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::OPTIONS => "OPTIONS",
        Method::CONNECT => "CONNECT",
        Method::TRACE => "TRACE",
        _ => "other",
    }
}

/// Middleware recording every request.
pub async fn track(req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let method = method_label(req.method());
    let start = Instant::now();
    let resp = next.run(req).await;
    let labels = [
        ("route", route),
        ("method", method.to_owned()),
        ("status", resp.status().as_u16().to_string()),
    ];
    metrics::counter!(REQUESTS, &labels).increment(1);
    metrics::histogram!(DURATION, &labels).record(start.elapsed().as_secs_f64());
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn made_up_methods_are_other() {
        assert_eq!(method_label(&Method::GET), "GET");
        assert_eq!(method_label(&Method::PATCH), "PATCH");
        for m in ["FOO", "get", "BREW", "X-1"] {
            assert_eq!(
                method_label(&Method::from_bytes(m.as_bytes()).unwrap()),
                "other"
            );
        }
    }
}
