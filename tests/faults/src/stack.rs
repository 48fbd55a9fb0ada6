//! The suite's own ClickHouse + broker, driven through `deploy/local/stack.sh` on ports and a
//! data directory of their own, so stopping ClickHouse or restarting the broker never disturbs
//! the dev or test stacks.

use std::path::PathBuf;

use anyhow::Result;
use auditlog_testkit::stack_command;

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
#[derive(Debug, Clone, Copy)]
pub struct Ports {
    pub ch_http: u16,
    pub ch_tcp: u16,
    pub kafka: u16,
    pub api: u16,
    pub consumer: u16,
}

impl Stack {
    /// Describes (does not start) the stack with data in `dir`.
    pub fn new(ports: Ports, dir: PathBuf) -> Self {
        let env = [
            ("STACK_PROFILE", "test".to_string()),
            ("STACK_DATA_DIR", dir.display().to_string()),
            ("STACK_CH_HTTP_PORT", ports.ch_http.to_string()),
            ("STACK_CH_TCP_PORT", ports.ch_tcp.to_string()),
            ("STACK_KAFKA_PORT", ports.kafka.to_string()),
            ("STACK_API_PORT", ports.api.to_string()),
            ("STACK_CONSUMER_PORT", ports.consumer.to_string()),
            ("STACK_APPS", "0".to_string()),
            ("STACK_SEED", "0".to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
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

    /// `stack.sh up` (ClickHouse, broker, default topics). Blocking.
    pub fn up(&self) -> Result<()> {
        stack_command(&self.env, &["up"]).map(drop)
    }

    /// `stack.sh down`, then SIGKILL any process of this stack instance that `stack.sh` lost
    /// track of (a broker whose PID file was removed while it was still running). Blocking.
    pub fn down(&self) -> Result<()> {
        stack_command(&self.env, &["down"])?;
        self.kill_strays(None);
        Ok(())
    }

    /// SIGKILLs the processes carrying this instance's `STACK_INSTANCE` marker whose command
    /// name contains `comm` (all of them when `None`), as strays `stack.sh` lost track of.
    fn kill_strays(&self, comm: Option<&str>) {
        for (pid, name) in self.processes(comm) {
            tracing::warn!("killing stray process {pid} ({name}) of the suite's stack");
            auditlog_testkit::sigkill(pid);
        }
    }

    /// The processes (PID, command name) carrying this instance's `STACK_INSTANCE` marker whose
    /// command name contains `comm` (all of them when `None`).
    fn processes(&self, comm: Option<&str>) -> Vec<(u32, String)> {
        auditlog_testkit::stack_processes(&self.dir)
            .into_iter()
            .filter(|(_, name)| comm.is_none_or(|c| name.contains(c)))
            .collect()
    }

    /// SIGKILLs the broker: a crash, not a shutdown. (On SIGTERM Tansu 0.6.0 answers the
    /// produce requests in flight with UNKNOWN_SERVER_ERROR; librdkafka then bumps the
    /// idempotent producers' epoch, and the restarted Tansu panics on the bumped epoch in
    /// `idempotent_message_check`, tansu-storage `lite.rs:503`, at every start.)
    pub fn crash_broker(&self) {
        for (pid, name) in self.processes(Some("tansu")) {
            tracing::info!("killing broker process {pid} ({name}) (SIGKILL)");
            auditlog_testkit::sigkill(pid);
        }
    }

    /// `stack.sh stop COMPONENT` (`clickhouse` or `broker`).
    pub async fn stop(&self, component: &str) -> Result<()> {
        self.run(vec!["stop".into(), component.into()])
            .await
            .map(drop)
    }

    /// `stack.sh start COMPONENT`; returns once it is healthy.
    pub async fn start(&self, component: &str) -> Result<()> {
        self.run(vec!["start".into(), component.into()])
            .await
            .map(drop)
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
                Ok(()) => {
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
                    match self.run(vec!["start".into(), component.into()]).await {
                        Ok(out) if out.contains("already running") => return Ok(attempt),
                        Ok(_) => {
                            tracing::warn!("{component} died right after starting; started again")
                        }
                        Err(e) => last_error = Some(e),
                    }
                }
                Err(e) => {
                    tracing::warn!("starting {component} failed (attempt {attempt}): {e:#}");
                    last_error = Some(e);
                    // `stack.sh` may have lost track of a process that still holds the port.
                    self.stop(component).await.ok();
                    self.kill_strays(Some(if component == "broker" {
                        "tansu"
                    } else {
                        "python"
                    }));
                }
            }
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        }
        Err(last_error
            .unwrap_or_else(|| anyhow::anyhow!("{component} did not stay up after 5 starts")))
    }

    async fn run(&self, args: Vec<String>) -> Result<String> {
        let env = self.env.clone();
        tokio::task::spawn_blocking(move || {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            stack_command(&env, &args)
        })
        .await?
    }
}
