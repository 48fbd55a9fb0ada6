//! Waits between delivery attempts: capped exponential backoff with full jitter (a random
//! wait between zero and `min(max, initial * 2^attempt)`), or exactly what the destination
//! asked for with `Retry-After` (capped at [`RETRY_AFTER_CAP`]).

use std::time::Duration;

use rand::Rng as _;

/// Longest `Retry-After` honoured; a destination asking for more is retried after this.
pub const RETRY_AFTER_CAP: Duration = Duration::from_secs(3600);

/// The backoff of one stream: grows with each failure, resets on success.
#[derive(Debug, Clone)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    attempt: u32,
}

impl Backoff {
    /// A backoff starting at `initial`, capped at `max`.
    pub fn new(initial: Duration, max: Duration) -> Self {
        Self {
            initial,
            max: max.max(initial),
            attempt: 0,
        }
    }

    /// The upper bound of the next wait (before jitter).
    pub fn ceiling(&self) -> Duration {
        let factor = 1u32.checked_shl(self.attempt.min(31)).unwrap_or(u32::MAX);
        self.initial.saturating_mul(factor).min(self.max)
    }

    /// The wait after a failure: `retry_after` when given (capped), else a random wait in
    /// `0..=ceiling`; the next ceiling doubles.
    pub fn next(&mut self, retry_after: Option<Duration>) -> Duration {
        let ceiling = self.ceiling();
        self.attempt = self.attempt.saturating_add(1);
        match retry_after {
            Some(d) => d.min(RETRY_AFTER_CAP),
            None => {
                let ms = ceiling.as_millis().min(u64::MAX as u128) as u64;
                Duration::from_millis(rand::rng().random_range(0..=ms))
            }
        }
    }

    /// After a success: the next failure waits from `initial` again.
    pub fn reset(&mut self) {
        self.attempt = 0;
    }

    /// Failed attempts since the last success.
    pub fn attempts(&self) -> u32 {
        self.attempt
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_to_the_cap_with_jitter_and_resets() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_secs(1));
        let ceilings: Vec<_> = (0..6)
            .map(|_| {
                let c = b.ceiling();
                let w = b.next(None);
                assert!(w <= c, "{w:?} > {c:?}");
                c.as_millis()
            })
            .collect();
        assert_eq!(ceilings, [100, 200, 400, 800, 1000, 1000]);
        assert_eq!(b.attempts(), 6);
        b.reset();
        assert_eq!(b.ceiling(), Duration::from_millis(100));
        // Full jitter: waits spread over the range, not all at the ceiling.
        let waits: Vec<_> = (0..50)
            .map(|_| {
                let mut b = Backoff::new(Duration::from_secs(1), Duration::from_secs(1));
                b.next(None)
            })
            .collect();
        assert!(waits.iter().any(|w| *w < Duration::from_millis(900)));
    }

    #[test]
    fn retry_after_is_honoured_and_capped() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_secs(1));
        assert_eq!(b.next(Some(Duration::from_secs(7))), Duration::from_secs(7));
        assert_eq!(b.next(Some(Duration::from_secs(99_999))), RETRY_AFTER_CAP);
        assert_eq!(b.attempts(), 2);
        // Huge attempt counts do not overflow.
        let mut b = Backoff::new(Duration::from_secs(1), Duration::from_secs(60));
        for _ in 0..100 {
            assert!(b.next(None) <= Duration::from_secs(60));
        }
    }
}
