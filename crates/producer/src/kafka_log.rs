//! librdkafka's log and error callbacks, deduplicated and rate-limited.
//!
//! With a broker down, librdkafka reports every reconnect attempt of every broker thread,
//! through its log callback and its error callback: dozens of lines a second, forever, and
//! hundreds before a short-lived command gets to say what is wrong. Every Kafka client of the
//! project (the producer, the consumer, the dead-letter clients) routes both callbacks here:
//! one process-wide [`LogLimiter`] lets the same message (digits ignored, so "after 3ms" and
//! "after 7ms" are the same message) through at most once per [`WINDOW`], and the next copy
//! let through says how many were held back (`repeated`).
//!
//! Use [`LimitedLogs`] as the context of a client that needs nothing else, or call
//! [`log`] and [`error`] from a context's own `ClientContext::log` / `error`.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use rdkafka::config::RDKafkaLogLevel;
use rdkafka::error::KafkaError;
use rdkafka::producer::ProducerContext;
use rdkafka::ClientContext;

/// The same message is logged at most once per this long.
pub const WINDOW: Duration = Duration::from_secs(30);
/// Distinct messages remembered; beyond it the stalest is forgotten.
const CAPACITY: usize = 256;

/// Lets a message through at most once per window; counts the copies held back.
#[derive(Debug)]
pub struct LogLimiter {
    window: Duration,
    seen: Mutex<HashMap<String, Seen>>,
}

#[derive(Debug, Clone, Copy)]
struct Seen {
    /// When a copy was last let through.
    shown: Instant,
    /// Copies held back since.
    held: u64,
}

impl LogLimiter {
    /// A limiter letting each message through once per `window`.
    pub fn new(window: Duration) -> Self {
        Self {
            window,
            seen: Mutex::new(HashMap::new()),
        }
    }

    /// The process-wide limiter every Kafka client context uses.
    pub fn global() -> &'static LogLimiter {
        static GLOBAL: OnceLock<LogLimiter> = OnceLock::new();
        GLOBAL.get_or_init(|| LogLimiter::new(WINDOW))
    }

    /// Whether `message` may be logged at `now`: `Some(held)` with the number of copies held
    /// back since the last one let through, or `None` to drop it.
    pub fn admit(&self, message: &str, now: Instant) -> Option<u64> {
        let key = normalize(message);
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(s) = seen.get_mut(&key) {
            if now.duration_since(s.shown) < self.window {
                s.held += 1;
                return None;
            }
            let held = s.held;
            *s = Seen {
                shown: now,
                held: 0,
            };
            return Some(held);
        }
        if seen.len() >= CAPACITY {
            if let Some(stalest) = seen
                .iter()
                .min_by_key(|(_, s)| s.shown)
                .map(|(k, _)| k.clone())
            {
                seen.remove(&stalest);
            }
        }
        seen.insert(
            key,
            Seen {
                shown: now,
                held: 0,
            },
        );
        Some(0)
    }
}

/// The message with every run of digits replaced by `#` (timings, counts and ports vary
/// between copies of the same complaint), without librdkafka's own suppression note.
fn normalize(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut in_digits = false;
    for c in message.chars() {
        if c.is_ascii_digit() {
            if !in_digits {
                out.push('#');
            }
            in_digits = true;
        } else {
            out.push(c);
            in_digits = false;
        }
    }
    out.replace(", # identical error(s) suppressed", "")
}

/// `message`, plus how many copies were held back before it.
fn with_count(message: &str, held: u64) -> std::borrow::Cow<'_, str> {
    if held == 0 {
        message.into()
    } else {
        format!(
            "{message} (repeated {held} times in the last {}s)",
            WINDOW.as_secs()
        )
        .into()
    }
}

/// A librdkafka log line, through the global limiter, to `tracing` (target `librdkafka`).
pub fn log(level: RDKafkaLogLevel, facility: &str, message: &str) {
    let Some(held) = LogLimiter::global().admit(message, Instant::now()) else {
        return;
    };
    let message = with_count(message, held);
    match level {
        RDKafkaLogLevel::Emerg
        | RDKafkaLogLevel::Alert
        | RDKafkaLogLevel::Critical
        | RDKafkaLogLevel::Error => {
            tracing::error!(target: "librdkafka", facility, "{message}");
        }
        RDKafkaLogLevel::Warning => {
            tracing::warn!(target: "librdkafka", facility, "{message}");
        }
        RDKafkaLogLevel::Notice | RDKafkaLogLevel::Info => {
            tracing::info!(target: "librdkafka", facility, "{message}");
        }
        RDKafkaLogLevel::Debug => {
            tracing::debug!(target: "librdkafka", facility, "{message}");
        }
    }
}

/// A librdkafka client error, through the global limiter, to `tracing` as a warning: the
/// client retries by itself; what it means for the program is said by the program.
pub fn error(error: &KafkaError, reason: &str) {
    let message = format!("{error}: {reason}");
    if let Some(held) = LogLimiter::global().admit(&message, Instant::now()) {
        tracing::warn!(target: "librdkafka", "{}", with_count(&message, held));
    }
}

/// A client context that only routes librdkafka's logs and errors through the limiter
/// (for producers and consumers needing no callbacks of their own).
#[derive(Debug, Clone, Copy, Default)]
pub struct LimitedLogs;

impl ClientContext for LimitedLogs {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        log(level, fac, log_message);
    }

    fn error(&self, err: KafkaError, reason: &str) {
        error(&err, reason);
    }
}

impl ProducerContext for LimitedLogs {
    type DeliveryOpaque = ();

    fn delivery(&self, _: &rdkafka::producer::DeliveryResult<'_>, _: Self::DeliveryOpaque) {}
}

impl rdkafka::consumer::ConsumerContext for LimitedLogs {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_message_passes_once_per_window_with_the_count_held_back() {
        let l = LogLimiter::new(Duration::from_secs(10));
        let t0 = Instant::now();
        let refused = |ms| {
            format!("Connect to ipv4#127.0.0.1:9092 failed: Connection refused (after {ms}ms in state CONNECT)")
        };
        assert_eq!(l.admit(&refused(0), t0), Some(0));
        for i in 1..=5 {
            assert_eq!(l.admit(&refused(i), t0 + Duration::from_secs(i)), None);
        }
        // Another message is not held back by the first.
        assert_eq!(l.admit("1/1 brokers are down", t0), Some(0));
        assert_eq!(
            l.admit(&refused(9), t0 + Duration::from_secs(10)),
            Some(5),
            "the next copy says how many were held back"
        );
        assert_eq!(l.admit(&refused(9), t0 + Duration::from_secs(11)), None);
    }

    #[test]
    fn digits_do_not_make_a_message_new_but_words_do() {
        assert_eq!(normalize("after 12ms, 3 errors"), "after #ms, # errors");
        assert_eq!(
            normalize("refused (after 0ms in state CONNECT, 1 identical error(s) suppressed)"),
            normalize("refused (after 5ms in state CONNECT)")
        );
        assert_eq!(with_count("x", 0), "x");
        assert_eq!(with_count("x", 4), "x (repeated 4 times in the last 30s)");
        assert_ne!(normalize("connection refused"), normalize("timed out"));
    }

    #[test]
    fn memory_is_bounded() {
        let l = LogLimiter::new(Duration::from_secs(10));
        let t0 = Instant::now();
        for i in 0..(CAPACITY * 2) {
            // Letters, not digits: every message is distinct.
            let word: String = format!("{i:x}")
                .chars()
                .map(|c| (b'g' + c as u8 % 16) as char)
                .collect();
            l.admit(&word, t0 + Duration::from_millis(i as u64));
        }
        assert!(l.seen.lock().unwrap().len() <= CAPACITY);
    }
}
