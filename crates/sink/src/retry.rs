//! Retry: ClickHouse calls retried with capped exponential backoff until they succeed or an
//! interrupt (a revocation, the shutdown) asks to give up. While a call fails, consumption is
//! paused through a [`Backpressure`] hook, so a ClickHouse outage stops the reading instead of
//! growing memory.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tracing::{info, warn};

use crate::interrupt::Interrupts;
use crate::observe;
use crate::write::WriteError;
use crate::SinkConfig;

/// What a retry loop tells the rest of the consumer (the real one pauses the Kafka
/// assignment and reports to `/health`).
pub trait Backpressure: Send + Sync {
    /// Writes fail (`true`: stop reading, say ClickHouse is failing) or work again (`false`).
    fn paused(&self, paused: bool);
    /// A call failed with `error`; it will be retried.
    fn failed(&self, error: &str);
    /// Still waiting for the next attempt: the loops waiting on this one are not stuck.
    fn waiting(&self);
}

/// A retry loop was interrupted (revocation or shutdown) before the call succeeded.
#[derive(Debug)]
pub(crate) struct Interrupted;

/// Retries ClickHouse calls, consumption paused meanwhile.
#[derive(Clone)]
pub(crate) struct Retry {
    initial_backoff: Duration,
    max_backoff: Duration,
    hook: Arc<dyn Backpressure>,
    interrupts: Interrupts,
}

impl Retry {
    /// Backoff from `cfg`, giving up when one of `interrupts` is raised.
    pub fn new(cfg: &SinkConfig, hook: Arc<dyn Backpressure>, interrupts: Interrupts) -> Self {
        Self {
            initial_backoff: cfg.retry_initial_backoff,
            max_backoff: cfg.retry_max_backoff,
            hook,
            interrupts,
        }
    }

    /// Runs `f` until it succeeds or an interrupt is raised while it waits to try again.
    pub async fn run<T, F, Fut>(&self, what: &str, f: F) -> Result<T, Interrupted>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<T, WriteError>>,
    {
        let mut backoff = self.initial_backoff;
        let mut paused = false;
        loop {
            match f().await {
                Ok(v) => {
                    if paused {
                        self.set_paused(false);
                        info!(what, "ClickHouse write recovered; consumption resumed");
                    }
                    return Ok(v);
                }
                Err(e) => {
                    metrics::counter!(observe::RETRIES).increment(1);
                    self.hook.failed(&e.to_string());
                    if !paused {
                        self.set_paused(true);
                        paused = true;
                    }
                    warn!(what, error = %e, retry_in = ?backoff, "ClickHouse write failed; consumption paused");
                    let until = Instant::now() + backoff;
                    while Instant::now() < until {
                        if self.interrupts.raised() {
                            self.set_paused(false);
                            return Err(Interrupted);
                        }
                        self.hook.waiting();
                        tokio::time::sleep(Duration::from_millis(50).min(backoff)).await;
                    }
                    backoff = (backoff * 2).min(self.max_backoff);
                }
            }
        }
    }

    fn set_paused(&self, paused: bool) {
        metrics::gauge!(observe::PAUSED).set(if paused { 1.0 } else { 0.0 });
        self.hook.paused(paused);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::fakes::Hook;
    use crate::interrupt::Interrupt;

    fn retry(hook: &Arc<Hook>, interrupts: Interrupts) -> Retry {
        let cfg = SinkConfig {
            retry_initial_backoff: Duration::from_millis(10),
            retry_max_backoff: Duration::from_millis(20),
            ..SinkConfig::default()
        };
        Retry::new(&cfg, hook.clone(), interrupts)
    }

    #[tokio::test]
    async fn pauses_while_failing_and_resumes_on_success() {
        let hook = Arc::new(Hook::default());
        let calls = AtomicUsize::new(0);
        let out = retry(&hook, Interrupts::default())
            .run("t", || async {
                match calls.fetch_add(1, Ordering::SeqCst) {
                    0 | 1 => Err(WriteError::retryable("down")),
                    n => Ok(n),
                }
            })
            .await;
        assert_eq!(out.ok(), Some(2));
        assert_eq!(hook.pauses(), vec![true, false]);
        assert_eq!(hook.failures(), 2);
    }

    #[tokio::test]
    async fn an_interrupt_gives_up_and_resumes_consumption() {
        let hook = Arc::new(Hook::default());
        let revoking = Interrupt::default();
        revoking.raise();
        let out = retry(&hook, revoking.watch())
            .run("t", || async {
                Err::<(), _>(WriteError::retryable("down"))
            })
            .await;
        assert!(out.is_err());
        assert_eq!(hook.pauses(), vec![true, false]);
    }
}
