//! One shared change ticker per process. While anyone waits, it polls ClickHouse every
//! [`POLL_INTERVAL`] for the highest offset per partition among the rows each watched workspace
//! stored in the last [`WINDOW_S`] seconds (one statement for all of them; `idx_inserted_at`
//! keeps it to recent granules), and wakes the waiters whose workspace changed. Nobody waiting:
//! no polling.
//!
//! [`Notifier::changed_since`] is exact for a reader that knows its position: it returns as
//! soon as a poll sees a row after that position, including one that became visible between
//! the reader's last page and the call. [`Notifier::changed`] compares with the first poll it
//! sees, so a change just before the call may wait for the next one; readers holding a
//! position should prefer `changed_since`.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, Once, Weak};
use std::time::Duration;

use auditlog_store::feed::FeedPosition;
use clickhouse::{Client, Row};
use serde::Deserialize;
use tokio::sync::{watch, Notify};

use super::sql;

/// How often the ticker polls while someone waits.
pub const POLL_INTERVAL: Duration = Duration::from_millis(200);
/// Rows stored this recently are looked at (longer than any batch takes to become visible).
pub const WINDOW_S: u32 = 300;
/// Deadline of one poll.
const POLL_TIMEOUT: Duration = Duration::from_secs(5);

/// Polls, by `result` (`ok`, `error`).
pub const POLLS: &str = "auditlog_feed_notifier_polls_total";

/// What one poll saw.
#[derive(Debug, Default)]
struct Snapshot {
    /// The workspaces the poll asked about.
    polled: HashSet<String>,
    /// Per workspace, partition -> highest recent offset.
    heads: HashMap<String, BTreeMap<i32, i64>>,
}

#[derive(Row, Deserialize)]
struct RecentHead {
    ws: String,
    p: i32,
    last: i64,
}

/// The shared change ticker (see the module docs).
pub struct Notifier {
    client: Client,
    me: Weak<Notifier>,
    started: Once,
    /// Workspace -> number of waiters.
    watched: Mutex<HashMap<String, usize>>,
    kick: Arc<Notify>,
    snapshot: watch::Sender<Arc<Snapshot>>,
}

impl std::fmt::Debug for Notifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Notifier").finish_non_exhaustive()
    }
}

/// Unregisters a waiter when dropped.
struct Watching<'a> {
    n: &'a Notifier,
    ws: &'a str,
}

impl Drop for Watching<'_> {
    fn drop(&mut self) {
        let mut w = self.n.watched.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(c) = w.get_mut(self.ws) {
            *c -= 1;
            if *c == 0 {
                w.remove(self.ws);
            }
        }
    }
}

impl Notifier {
    /// A notifier reading through `client` (bound to the audit database). The ticker task
    /// starts with the first wait (inside the caller's Tokio runtime).
    pub fn new(client: Client) -> Arc<Self> {
        metrics::describe_counter!(
            POLLS,
            "Polls of the feed change notifier, by result (ok, error)"
        );
        Arc::new_cyclic(|me| Self {
            client,
            me: me.clone(),
            started: Once::new(),
            watched: Mutex::new(HashMap::new()),
            kick: Arc::new(Notify::new()),
            snapshot: watch::Sender::new(Arc::new(Snapshot::default())),
        })
    }

    /// Waits until a poll (after the call) sees `ws` change, at most `timeout`; `false` when
    /// the time passed first.
    pub async fn changed(&self, ws: &str, timeout: Duration) -> bool {
        let mut baseline: Option<BTreeMap<i32, i64>> = None;
        self.wait(ws, timeout, move |heads| match &baseline {
            None => {
                baseline = Some(heads.clone());
                false
            }
            Some(b) => b != heads,
        })
        .await
    }

    /// Waits until a poll sees a row of `ws` after `after` (any row: filters are the reader's
    /// business), at most `timeout`; `false` when the time passed first.
    pub async fn changed_since(&self, ws: &str, after: &FeedPosition, timeout: Duration) -> bool {
        self.wait(ws, timeout, |heads| {
            heads.iter().any(|(&p, &o)| after.is_after(p, o))
        })
        .await
    }

    async fn wait(
        &self,
        ws: &str,
        timeout: Duration,
        mut test: impl FnMut(&BTreeMap<i32, i64>) -> bool,
    ) -> bool {
        self.start();
        let _watching = self.watch(ws);
        let mut rx = self.snapshot.subscribe();
        let empty = BTreeMap::new();
        let mut check = |snap: &Snapshot| {
            snap.polled.contains(ws) && test(snap.heads.get(ws).unwrap_or(&empty))
        };
        let current = rx.borrow_and_update().clone();
        if check(&current) {
            return true;
        }
        let waiting = async {
            while rx.changed().await.is_ok() {
                let snap = rx.borrow_and_update().clone();
                if check(&snap) {
                    return true;
                }
            }
            false
        };
        tokio::time::timeout(timeout, waiting)
            .await
            .unwrap_or(false)
    }

    fn watch<'a>(&'a self, ws: &'a str) -> Watching<'a> {
        *self
            .watched
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(ws.to_owned())
            .or_default() += 1;
        self.kick.notify_one();
        Watching { n: self, ws }
    }

    fn start(&self) {
        self.started.call_once(|| {
            tokio::spawn(tick(self.me.clone(), self.kick.clone()));
        });
    }

    fn watched(&self) -> Vec<String> {
        let w = self.watched.lock().unwrap_or_else(|e| e.into_inner());
        w.keys().cloned().collect()
    }

    async fn poll(&self, workspaces: Vec<String>) -> clickhouse::error::Result<Snapshot> {
        let stmt = sql::recent_heads(&workspaces, WINDOW_S);
        let q = super::query(&stmt, &self.client);
        let rows: Vec<RecentHead> = match tokio::time::timeout(POLL_TIMEOUT, q.fetch_all()).await {
            Ok(r) => r?,
            Err(_) => return Err(clickhouse::error::Error::TimedOut),
        };
        let mut heads: HashMap<String, BTreeMap<i32, i64>> = HashMap::new();
        for r in rows {
            heads.entry(r.ws).or_default().insert(r.p, r.last);
        }
        Ok(Snapshot {
            polled: workspaces.into_iter().collect(),
            heads,
        })
    }
}

impl Drop for Notifier {
    fn drop(&mut self) {
        // Lets an idle ticker see that the notifier is gone.
        self.kick.notify_one();
    }
}

/// The ticker: polls while someone waits, idles on `kick` otherwise, ends with the notifier.
async fn tick(me: Weak<Notifier>, kick: Arc<Notify>) {
    let mut failing = false;
    loop {
        let workspaces = match me.upgrade() {
            Some(n) => n.watched(),
            None => return,
        };
        if workspaces.is_empty() {
            kick.notified().await;
            continue;
        }
        let started = tokio::time::Instant::now();
        let Some(n) = me.upgrade() else { return };
        match n.poll(workspaces).await {
            Ok(snap) => {
                if failing {
                    tracing::info!("feed notifier polls ClickHouse again");
                    failing = false;
                }
                metrics::counter!(POLLS, "result" => "ok").increment(1);
                n.snapshot.send_replace(Arc::new(snap));
            }
            Err(e) => {
                if !failing {
                    tracing::warn!(error = %e, "feed notifier poll failed; waiters wait until it works again");
                    failing = true;
                }
                metrics::counter!(POLLS, "result" => "error").increment(1);
            }
        }
        drop(n);
        tokio::time::sleep_until(started + POLL_INTERVAL).await;
    }
}
