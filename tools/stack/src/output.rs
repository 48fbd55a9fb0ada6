//! What the stack prints: `[stack dev   12s] message` lines (warnings and errors on stderr),
//! to the terminal or, for the test kit, into a buffer it reports on failure.

use std::io::Write as _;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// Where the lines go.
#[derive(Debug, Clone)]
enum Sink {
    /// stdout for progress, stderr for warnings, errors and log tails.
    Terminal,
    /// Everything into one buffer, in order.
    Capture(Arc<Mutex<String>>),
}

/// The stack's output, with the seconds since the command started.
#[derive(Debug, Clone)]
pub struct Log {
    profile: &'static str,
    started: Instant,
    sink: Sink,
}

impl Log {
    /// Prints to the terminal.
    pub fn terminal(profile: &'static str) -> Self {
        Self {
            profile,
            started: Instant::now(),
            sink: Sink::Terminal,
        }
    }

    /// Collects the output; [`Log::captured`] returns it.
    pub fn capture(profile: &'static str) -> Self {
        Self {
            profile,
            started: Instant::now(),
            sink: Sink::Capture(Arc::default()),
        }
    }

    /// Everything written so far (empty for a terminal log).
    pub fn captured(&self) -> String {
        match &self.sink {
            Sink::Terminal => String::new(),
            Sink::Capture(buf) => buf.lock().map(|b| b.clone()).unwrap_or_default(),
        }
    }

    /// Seconds since the command started.
    pub fn elapsed_secs(&self) -> u64 {
        self.started.elapsed().as_secs()
    }

    /// `[stack PROFILE    Ns] message` (the prefix of every line).
    pub fn line(&self, message: &str) -> String {
        format!(
            "[stack {} {:4}s] {message}",
            self.profile,
            self.elapsed_secs()
        )
    }

    /// A progress line (stdout).
    pub fn info(&self, message: impl AsRef<str>) {
        self.out(&self.line(message.as_ref()), false);
    }

    /// A warning line (stderr).
    pub fn warn(&self, message: impl AsRef<str>) {
        self.out(&self.line(&format!("WARNING: {}", message.as_ref())), true);
    }

    /// An error line (stderr), printed by the command line before it exits 1.
    pub fn error(&self, message: impl AsRef<str>) {
        self.out(&self.line(&format!("ERROR: {}", message.as_ref())), true);
    }

    /// Plain text on stdout (the `up` summary, the status table).
    pub fn plain(&self, text: impl AsRef<str>) {
        self.out(text.as_ref(), false);
    }

    /// Plain text on stderr (a command's output shown on failure).
    pub fn plain_err(&self, text: impl AsRef<str>) {
        self.out(text.as_ref(), true);
    }

    /// The last 30 lines of each given log file that exists and is not empty (stderr).
    pub fn show_logs(&self, files: &[&Path]) {
        for f in files {
            let Ok(text) = std::fs::read_to_string(f) else {
                continue;
            };
            if text.is_empty() {
                continue;
            }
            self.plain_err(format!("---- last lines of {} ----", f.display()));
            self.plain_err(tail(&text, 30));
            self.plain_err("----");
        }
    }

    fn out(&self, text: &str, err: bool) {
        match &self.sink {
            Sink::Terminal if err => {
                let _ = writeln!(std::io::stderr(), "{text}");
            }
            Sink::Terminal => {
                let mut out = std::io::stdout().lock();
                let _ = writeln!(out, "{text}");
                let _ = out.flush();
            }
            Sink::Capture(buf) => {
                if let Ok(mut b) = buf.lock() {
                    b.push_str(text);
                    b.push('\n');
                }
            }
        }
    }
}

/// The last `n` lines of `text` (without a final newline).
pub fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// The first `n` lines of `text` (without a final newline).
pub fn head(text: &str, n: usize) -> String {
    text.lines().take(n).collect::<Vec<_>>().join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_carry_profile_and_seconds() {
        let log = Log::capture("dev");
        log.info("up: done");
        log.warn("careful");
        log.error("broken");
        log.plain("  ClickHouse  http://127.0.0.1:8123");
        assert_eq!(
            log.captured(),
            "[stack dev    0s] up: done\n\
             [stack dev    0s] WARNING: careful\n\
             [stack dev    0s] ERROR: broken\n  \
             ClickHouse  http://127.0.0.1:8123\n"
        );
    }

    #[test]
    fn show_logs_prints_the_tail_of_non_empty_files() {
        let dir = tempfile::tempdir().unwrap();
        let long = dir.path().join("long.log");
        let text: String = (1..=40).map(|i| format!("line {i}\n")).collect();
        std::fs::write(&long, text).unwrap();
        let empty = dir.path().join("empty.log");
        std::fs::write(&empty, "").unwrap();
        let log = Log::capture("test");
        log.show_logs(&[&long, &empty, &dir.path().join("missing.log")]);
        let out = log.captured();
        assert!(out.starts_with(&format!(
            "---- last lines of {} ----\nline 11\n",
            long.display()
        )));
        assert!(out.ends_with("line 40\n----\n"), "{out}");
        assert!(!out.contains("empty.log"));
    }
}
