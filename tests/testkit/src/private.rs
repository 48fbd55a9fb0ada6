//! What [`crate::PrivateStack`] and [`crate::PrivateCluster`] share: a stack of their own
//! (free ports, own data directory under `.data/private/`) started with the stack library,
//! its components stopped and started by name, and everything stopped and deleted on drop.

use std::path::PathBuf;

use anyhow::{bail, Context as _, Result};
use auditlog_stack::{Component, Stack};

use crate::{sigkill, stack_command};

/// The methods [`crate::PrivateStack`] and [`crate::PrivateCluster`] both offer, delegated to
/// their `owned: OwnedStack` field.
macro_rules! control_methods {
    () => {
        /// The `STACK_*` variables describing this stack (for [`crate::stack_command`], or to
        /// run `stack.sh` by hand with them).
        pub fn env(&self) -> &[(String, String)] {
            &self.owned.env
        }

        /// Its data directory (logs in `logs/`).
        pub fn data_dir(&self) -> &std::path::Path {
            &self.owned.dir
        }

        /// Stops `component` (a name of `stack.sh stop`): SIGTERM, SIGKILL after 20 s.
        pub fn stop(&self, component: &str) -> anyhow::Result<()> {
            self.owned.stop(component)
        }

        /// Starts `component`; returns once it is healthy. Data survives a stop/start.
        pub fn start_component(&self, component: &str) -> anyhow::Result<()> {
            self.owned.start_component(component)
        }

        /// PID of a running component (from the stack's PID file; for [`crate::sigkill`]).
        pub fn pid(&self, component: &str) -> anyhow::Result<u32> {
            self.owned.pid(component)
        }

        /// `stack.sh status`: the table, and whether every component is healthy.
        pub fn status(&self) -> (String, bool) {
            self.owned.stack.status()
        }
    };
}
pub(crate) use control_methods;

/// A running stack described by `env`, with data in `dir`. Dropping it stops its processes
/// (`down`, then SIGKILL to any left) and deletes its data (`KEEP_PRIVATE_STACK=1` keeps it).
#[derive(Debug)]
pub(crate) struct OwnedStack {
    pub env: Vec<(String, String)>,
    pub stack: Stack,
    pub dir: PathBuf,
    /// `PrivateStack`, `PrivateCluster`: in messages.
    what: &'static str,
}

/// Runs `attempt` (a start on new free ports) up to 3 times: the free ports are found by
/// binding and releasing them, so another process can take one in between. Each failure is
/// reported as it happens.
pub(crate) fn start_with_retries<T>(
    what: &str,
    mut attempt: impl FnMut() -> Result<T>,
) -> Result<T> {
    let mut failures = Vec::new();
    for n in 1..=3 {
        match attempt() {
            Ok(started) => return Ok(started),
            Err(e) => {
                eprintln!("{what}: start attempt {n} failed: {e:#}");
                failures.push(format!("attempt {n}: {e:#}"));
            }
        }
    }
    bail!("{what} did not start:\n{}", failures.join("\n"))
}

impl OwnedStack {
    /// `up` for the stack `env` describes; on failure the error carries the stack's output and
    /// the tails of its logs, and what started is stopped again.
    pub fn up(what: &'static str, env: Vec<(String, String)>, dir: PathBuf) -> Result<Self> {
        let owned = Self {
            stack: crate::stack(&env)?,
            env,
            dir,
            what,
        };
        if let Err(e) = owned.stack.up() {
            let e = e.context(format!("stack up:\n{}", owned.stack.output()));
            return Err(e.context(owned.log_tails()));
        }
        Ok(owned)
    }

    /// The last lines of every log of this stack (for failure reports).
    fn log_tails(&self) -> String {
        let mut out = format!("logs of {}:", self.dir.display());
        let entries = std::fs::read_dir(self.dir.join("logs"))
            .into_iter()
            .flatten();
        for entry in entries.flatten() {
            let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            let tail = lines[lines.len().saturating_sub(15)..].join("\n");
            out.push_str(&format!("\n--- {}\n{tail}", entry.path().display()));
        }
        out
    }

    /// Stops `component`: SIGTERM, SIGKILL after 20 s.
    pub fn stop(&self, component: &str) -> Result<()> {
        stack_command(&self.env, &["stop", component]).map(drop)
    }

    /// Starts `component`; returns once it is healthy.
    pub fn start_component(&self, component: &str) -> Result<()> {
        stack_command(&self.env, &["start", component]).map(drop)
    }

    /// PID of a running component (from the stack's PID file).
    pub fn pid(&self, component: &str) -> Result<u32> {
        let c = Component::parse(component)
            .with_context(|| format!("unknown component '{component}'"))?;
        self.stack.pid(c).with_context(|| {
            format!(
                "{component} is not running ({})",
                self.stack.settings.pid_file(c).display()
            )
        })
    }
}

impl Drop for OwnedStack {
    fn drop(&mut self) {
        let what = self.what;
        if let Err(e) = self.stack.down() {
            eprintln!("{what}: {e:#}");
            return;
        }
        // A component the stack lost track of (it cannot stop what it does not know) must not
        // outlive the stack: it would hold ports, memory and CPU for the rest of the run.
        for (pid, name) in self.stack.processes(None) {
            eprintln!("{what}: killing leftover process {pid} ({name})");
            sigkill(pid);
        }
        // KEEP_PRIVATE_STACK=1 keeps the data and logs (to look into a failure).
        if std::env::var_os("KEEP_PRIVATE_STACK").is_none() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}
