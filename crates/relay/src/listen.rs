//! Wake-ups: PostgreSQL `NOTIFY auditlog_outbox` (sent by the insert trigger, delivered at
//! commit) through a `LISTEN` connection of its own, which reconnects after errors. MySQL has
//! no such thing: the relay polls every `relay.poll_interval` (also PostgreSQL's safety net, for
//! a notification lost while the listener reconnects).

use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::PgListener;
use tokio::sync::Notify;

use crate::backoff::Backoff;
use crate::health::Health;
use crate::metrics as m;

/// Something may be waiting in the outbox.
#[derive(Debug, Default)]
pub struct Wake {
    notify: Notify,
}

impl Wake {
    /// Wakes the relay (or its next wait, if it is busy now).
    pub fn wake(&self) {
        self.notify.notify_one();
    }

    /// Waits for a wake-up or `poll` (whichever comes first).
    pub async fn wait(&self, poll: Duration) {
        let _ = tokio::time::timeout(poll, self.notify.notified()).await;
    }
}

/// Listens on `channel` through `pool` until the task is aborted, waking `wake` on every
/// notification (and after every reconnection: notifications may have been missed).
pub fn spawn(
    pool: sqlx::PgPool,
    channel: &'static str,
    wake: Arc<Wake>,
    health: Arc<Health>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(10));
        loop {
            match listen(&pool, channel, &wake, &health, &mut backoff).await {
                Ok(()) => return,
                Err(e) => {
                    m::failed("listen");
                    health.listener(Some(e.to_string()));
                    let delay = backoff.next_delay();
                    tracing::warn!(error = %e, retry_in = ?delay, "outbox LISTEN connection failed");
                    tokio::time::sleep(delay).await;
                }
            }
        }
    })
}

async fn listen(
    pool: &sqlx::PgPool,
    channel: &str,
    wake: &Wake,
    health: &Health,
    backoff: &mut Backoff,
) -> Result<(), sqlx::Error> {
    let mut listener = PgListener::connect_with(pool).await?;
    // `recv` reconnects by itself; a lost connection is reported through `try_recv`'s None.
    listener.ignore_pool_close_event(true);
    listener.listen(channel).await?;
    tracing::debug!(channel, "listening for outbox notifications");
    health.listener(None);
    backoff.reset();
    wake.wake();
    loop {
        match listener.try_recv().await? {
            Some(_) => wake.wake(),
            None => {
                // The connection was lost and is re-established on the next call: whatever was
                // notified meanwhile is lost, so look now.
                tracing::debug!("outbox LISTEN connection lost; reconnecting");
                wake.wake();
            }
        }
    }
}
