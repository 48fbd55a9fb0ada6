//! The suite's own ClickHouse + broker, driven through the stack library (`auditlog_stack`) on
//! ports and a data directory of their own, so stopping ClickHouse or restarting the broker
//! never disturbs the dev or test stacks.

use std::path::PathBuf;

use anyhow::{Context as _, Result};
use auditlog_stack::{Component, Started};

/// Ports and data directory of the suite's stack.
#[derive(Debug, Clone)]
pub struct Stack {
    env: Vec<(String, String)>,
    /// ClickHouse HTTP port.
    pub ch_http_port: u16,
    /// Broker port.
    pub kafka_port: u16,
    /// Data directory (`STACK_INSTANCE` of every process the stack starts).
    dir: PathBuf,
}

/// The ports the suite uses (clear of dev 8123/9092/... and test 18123/19092/...).
pub use auditlog_stack::Ports;

impl Stack {
    /// Describes (does not start) the stack with data in `dir`.
    pub fn new(ports: Ports, dir: PathBuf) -> Self {
        let env = auditlog_stack::private_vars(&dir, &ports);
        Self {
            env,
            ch_http_port: ports.ch_http,
            kafka_port: ports.kafka,
            dir,
        }
    }

    pub fn clickhouse_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.ch_http_port)
    }

    pub fn brokers(&self) -> String {
        format!("127.0.0.1:{}", self.kafka_port)
    }

    /// The stack library's view of this stack (its output is captured, and shown on failure).
    fn stack(&self) -> Result<auditlog_stack::Stack> {
        auditlog_testkit::stack(&self.env)
    }

    /// Runs `f` on this stack; a failure carries what the stack printed.
    fn with_stack<T>(
        &self,
        what: &str,
        f: impl FnOnce(&auditlog_stack::Stack) -> Result<T>,
    ) -> Result<T> {
        let stack = self.stack()?;
        f(&stack).with_context(|| format!("stack {what}:\n{}", stack.output()))
    }

    /// `up` (ClickHouse, broker, default topics). Blocking.
    pub fn up(&self) -> Result<()> {
        self.with_stack("up", |s| s.up().map(drop))
    }

    /// `down`, then SIGKILL any process of this stack instance that the stack lost track of (a
    /// broker whose PID file was removed while it was still running). Blocking.
    pub fn down(&self) -> Result<()> {
        self.with_stack("down", auditlog_stack::Stack::down)?;
        self.kill_strays(None);
        Ok(())
    }

    /// SIGKILLs the processes carrying this instance's `STACK_INSTANCE` marker that were started
    /// as `component` (all of them when `None`), as strays the stack lost track of.
    fn kill_strays(&self, component: Option<Component>) {
        for (pid, name) in self.processes(component) {
            tracing::warn!("killing stray process {pid} ({name}) of the suite's stack");
            auditlog_testkit::sigkill(pid);
        }
    }

    /// The processes (PID, command name) carrying this instance's `STACK_INSTANCE` marker that
    /// were started as `component` (all of them when `None`).
    fn processes(&self, component: Option<Component>) -> Vec<(u32, String)> {
        match self.stack() {
            Ok(s) => s.processes(component),
            Err(_) => auditlog_testkit::stack_processes(&self.dir),
        }
    }

    /// SIGKILLs the broker: a crash, not a shutdown. (On SIGTERM Tansu 0.6.0 answers the
    /// produce requests in flight with UNKNOWN_SERVER_ERROR; librdkafka then bumps the
    /// idempotent producers' epoch, and the restarted Tansu panics on the bumped epoch in
    /// `idempotent_message_check`, tansu-storage `lite.rs:503`, at every start.)
    pub fn crash_broker(&self) {
        for (pid, name) in self.processes(Some(Component::Broker)) {
            tracing::info!("killing broker process {pid} ({name}) (SIGKILL)");
            auditlog_testkit::sigkill(pid);
        }
    }

    /// Stops COMPONENT (`clickhouse` or `broker`).
    pub async fn stop(&self, component: &str) -> Result<()> {
        let c = parse(component)?;
        self.blocking(move |s| s.with_stack("stop", |st| st.stop(c)))
            .await
    }

    /// Starts COMPONENT; returns once it is healthy.
    pub async fn start(&self, component: &str) -> Result<Started> {
        let c = parse(component)?;
        self.blocking(move |s| s.with_stack("start", |st| st.start(c)))
            .await
    }

    /// Starts COMPONENT and makes sure it is still serving 3 s later, stopping and starting it
    /// again when it died or its log shows a panic (Tansu 0.6 sometimes panics in its storage
    /// layer right after a restart under load and then answers nothing). Returns how many starts
    /// it took; fails after 5.
    pub async fn start_until_stable(&self, component: &str) -> Result<u32> {
        let log = self.dir.join("logs").join(if component == "broker" {
            "tansu.log"
        } else {
            "clickhouse.out"
        });
        let mut last_error = None;
        for attempt in 1..=5 {
            let offset = std::fs::metadata(&log).map(|m| m.len()).unwrap_or(0);
            match self.start(component).await {
                Ok(_) => {
                    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
                    let panicked = std::fs::read(&log)
                        .map(|b| {
                            let tail = &b[(offset as usize).min(b.len())..];
                            String::from_utf8_lossy(tail).contains("panicked at")
                        })
                        .unwrap_or(false);
                    if panicked {
                        tracing::warn!("{component} panicked right after starting; restarting it");
                        self.stop(component).await.ok();
                        continue;
                    }
                    // Idempotent: "already running" when it survived, a fresh start when not.
                    match self.start(component).await {
                        Ok(Started::AlreadyRunning) => return Ok(attempt),
                        Ok(Started::Started) => {
                            tracing::warn!("{component} died right after starting; started again")
                        }
                        Err(e) => last_error = Some(e),
                    }
                }
                Err(e) => {
                    tracing::warn!("starting {component} failed (attempt {attempt}): {e:#}");
                    last_error = Some(e);
                    // The stack may have lost track of a process that still holds the port.
                    self.stop(component).await.ok();
                    self.kill_strays(Component::parse(component));
                }
            }
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        }
        Err(last_error
            .unwrap_or_else(|| anyhow::anyhow!("{component} did not stay up after 5 starts")))
    }

    /// Runs `f` on a blocking thread (the stack waits for processes and ports).
    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Self) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let me = self.clone();
        tokio::task::spawn_blocking(move || f(&me)).await?
    }
}

fn parse(component: &str) -> Result<Component> {
    Component::parse(component).with_context(|| format!("unknown component '{component}'"))
}
