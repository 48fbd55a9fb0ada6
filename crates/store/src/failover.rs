//! Connection failover over several ClickHouse URLs (`clickhouse.url` and
//! `clickhouse.failover_urls`, replicas of one cluster).
//!
//! Failover happens where connections are made, under the HTTP client's pool: every request
//! of every caller goes through it, with no wrapper around `clickhouse::Client`. A new
//! connection goes to the server that accepted the last one (sticky: no flapping back and
//! forth); when that one refuses or does not answer within [`CONNECT_TIMEOUT`], it is marked
//! down for [`DOWN_FOR`] and the next URL in the configured order is tried. When every server
//! is down, each is still tried (a server marked down may be back) and the last error is
//! returned, which the callers' retries handle as for a single server.
//!
//! A request already sent on a connection to a server that dies fails (the consumer retries
//! its batch with the same deduplication token; the API answers that request 503); the next
//! connection goes elsewhere.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use http::Uri;
use tracing::warn;

/// How long one connection attempt may take before the next URL is tried.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a server that failed to connect is tried only after the others.
pub const DOWN_FOR: Duration = Duration::from_secs(5);

/// Counter: times new connections moved to another server.
pub const FAILOVERS: &str = "auditlog_clickhouse_failovers_total";

/// Describes the failover counter to the installed recorder and creates it at zero (the
/// consumer and the API call this with their own metrics).
pub fn register_metrics() {
    metrics::describe_counter!(
        FAILOVERS,
        "Times new ClickHouse connections moved to another server (clickhouse.failover_urls)"
    );
    metrics::counter!(FAILOVERS).absolute(0);
}

/// The servers and which one is in use.
#[derive(Debug)]
pub struct Backends {
    uris: Vec<Uri>,
    current: AtomicUsize,
    down_until: Mutex<Vec<Option<Instant>>>,
}

impl Backends {
    /// `uris` in their configured order (at least one).
    pub fn new(uris: Vec<Uri>) -> Self {
        assert!(!uris.is_empty(), "at least one ClickHouse URL");
        let n = uris.len();
        Self {
            uris,
            current: AtomicUsize::new(0),
            down_until: Mutex::new(vec![None; n]),
        }
    }

    /// The order to try now: the server in use first, then the others in configured order,
    /// those marked down last.
    pub fn order(&self, now: Instant) -> Vec<usize> {
        let n = self.uris.len();
        let first = self.current.load(Ordering::Relaxed) % n;
        let down = self.down_until.lock().unwrap_or_else(|e| e.into_inner());
        let is_down = |i: usize| down[i].is_some_and(|until| until > now);
        let mut order: Vec<usize> = std::iter::once(first)
            .chain((0..n).filter(|&i| i != first))
            .collect();
        order.sort_by_key(|&i| is_down(i));
        order
    }

    /// The URI of server `i`.
    pub fn uri(&self, i: usize) -> &Uri {
        &self.uris[i]
    }

    /// Server `i` accepted a connection: it is the one in use.
    pub fn connected(&self, i: usize) {
        let before = self.current.swap(i, Ordering::Relaxed);
        self.down_until.lock().unwrap_or_else(|e| e.into_inner())[i] = None;
        if before != i {
            metrics::counter!(FAILOVERS).increment(1);
            warn!(url = %self.uris[i], "ClickHouse connections now go to this server");
        }
    }

    /// Server `i` failed to connect at `now`.
    pub fn failed(&self, i: usize, now: Instant, error: &str) {
        self.down_until.lock().unwrap_or_else(|e| e.into_inner())[i] = Some(now + DOWN_FOR);
        if self.uris.len() > 1 {
            warn!(url = %self.uris[i], error, "cannot connect to ClickHouse; trying the next URL");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn backends(n: usize) -> Backends {
        Backends::new(
            (0..n)
                .map(|i| format!("http://ch{i}:8123").parse().unwrap())
                .collect(),
        )
    }

    #[test]
    fn the_server_in_use_is_tried_first_and_down_ones_last() {
        let b = backends(3);
        let t = Instant::now();
        assert_eq!(b.order(t), vec![0, 1, 2]);
        b.failed(0, t, "refused");
        assert_eq!(b.order(t), vec![1, 2, 0]);
        b.connected(1);
        assert_eq!(b.order(t), vec![1, 2, 0]);
        // Sticky: once on server 1, server 0 coming back does not move connections back.
        let later = t + DOWN_FOR + Duration::from_millis(1);
        assert_eq!(b.order(later), vec![1, 0, 2]);
        b.failed(1, later, "refused");
        b.failed(0, later, "refused");
        assert_eq!(b.order(later), vec![2, 1, 0]);
    }
}
