//! The `auditlog` processes under test: two `auditlog consume` and one `auditlog serve`, started
//! as children so the suite can SIGKILL, SIGSTOP and SIGCONT them and read their memory.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};
use auditlog_testkit::AuditlogTarget;
use tokio::process::{Child, Command};

/// Where one scenario's processes read and write.
#[derive(Debug, Clone)]
pub struct AppEnv {
    pub bin: PathBuf,
    pub brokers: String,
    pub topic: String,
    pub dlq_topic: String,
    pub clickhouse_url: String,
    pub database: String,
    pub group_id: String,
    pub admin_token: String,
    pub session_timeout_secs: u64,
    pub log_dir: PathBuf,
}

impl AppEnv {
    fn vars(&self) -> Vec<(&'static str, String)> {
        let mut vars = AuditlogTarget {
            brokers: &self.brokers,
            topic: &self.topic,
            dlq_topic: &self.dlq_topic,
            clickhouse_url: &self.clickhouse_url,
            database: &self.database,
            group_id: &self.group_id,
        }
        .vars();
        vars.extend([
            ("AUDITLOG_API__ADMIN_TOKEN", self.admin_token.clone()),
            (
                "AUDITLOG_CONSUMER__SESSION_TIMEOUT",
                format!("{}s", self.session_timeout_secs),
            ),
        ]);
        vars
    }

    fn command(&self, log_name: &str) -> Result<Command> {
        std::fs::create_dir_all(&self.log_dir)?;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_dir.join(log_name))
            .with_context(|| format!("open log {log_name}"))?;
        let mut cmd = Command::new(&self.bin);
        cmd.envs(self.vars())
            .env(
                "RUST_LOG",
                std::env::var("FAULTS_APP_LOG").unwrap_or_else(|_| "info".into()),
            )
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true);
        Ok(cmd)
    }

    /// `auditlog migrate`: the schema in this scenario's database.
    pub async fn migrate(&self) -> Result<()> {
        let out = Command::new(&self.bin)
            .envs(self.vars())
            .arg("migrate")
            .stdin(Stdio::null())
            .output()
            .await
            .context("run auditlog migrate")?;
        if !out.status.success() {
            bail!(
                "auditlog migrate failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(())
    }

    /// `auditlog token create WORKSPACE`: the secret it prints.
    pub async fn create_token(&self, workspace: &str) -> Result<String> {
        let out = Command::new(&self.bin)
            .envs(self.vars())
            .args(["token", "create", workspace])
            .stdin(Stdio::null())
            .output()
            .await
            .context("run auditlog token create")?;
        if !out.status.success() {
            bail!(
                "auditlog token create {workspace} failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let token = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if token.is_empty() {
            bail!("auditlog token create {workspace} printed nothing");
        }
        Ok(token)
    }
}

/// One `auditlog` child process with an HTTP `/health` address.
#[derive(Debug)]
pub struct App {
    pub name: String,
    subcommand: &'static str,
    listen: String,
    env: AppEnv,
    child: Option<Child>,
    pub restarts: u32,
}

impl App {
    /// A consumer with its metrics endpoint on `listen`.
    pub fn consumer(name: &str, env: &AppEnv, listen: String) -> Self {
        Self::new(name, "consume", env, listen)
    }

    /// The API on `listen`.
    pub fn api(env: &AppEnv, listen: String) -> Self {
        Self::new("api", "serve", env, listen)
    }

    fn new(name: &str, subcommand: &'static str, env: &AppEnv, listen: String) -> Self {
        Self {
            name: name.to_string(),
            subcommand,
            listen,
            env: env.clone(),
            child: None,
            restarts: 0,
        }
    }

    pub fn base_url(&self) -> String {
        format!("http://{}", self.listen)
    }

    /// Starts the process and waits until `/health` answers (any status: a consumer may report
    /// unhealthy while ClickHouse is down, and still be up).
    pub async fn start(&mut self) -> Result<()> {
        let mut cmd = self.env.command(&format!("{}.log", self.name))?;
        let var = if self.subcommand == "serve" {
            "AUDITLOG_API__LISTEN"
        } else {
            "AUDITLOG_CONSUMER__METRICS_LISTEN"
        };
        cmd.env(var, &self.listen).arg(self.subcommand);
        let child = cmd
            .spawn()
            .with_context(|| format!("spawn {} {}", self.env.bin.display(), self.subcommand))?;
        self.child = Some(child);
        self.wait_http().await
    }

    async fn wait_http(&mut self) -> Result<()> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()?;
        let url = format!("{}/health", self.base_url());
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Some(status) = child.try_wait()? {
                    self.child = None;
                    bail!(
                        "{} (auditlog {}) exited during startup with {status}; see {}",
                        self.name,
                        self.subcommand,
                        self.log_path().display()
                    );
                }
            }
            if http.get(&url).send().await.is_ok() {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("{}: no answer from {url} within 60 s", self.name);
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    pub fn log_path(&self) -> PathBuf {
        self.env.log_dir.join(format!("{}.log", self.name))
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().and_then(Child::id)
    }

    /// SIGKILL, then wait for the process to be gone.
    pub async fn kill(&mut self) -> Result<()> {
        if let Some(mut child) = self.child.take() {
            child.start_kill().ok();
            child.wait().await?;
        }
        Ok(())
    }

    /// SIGKILL and start again.
    pub async fn kill_and_restart(&mut self) -> Result<()> {
        self.kill().await?;
        self.restarts += 1;
        self.start().await
    }

    /// SIGSTOP (`pause = true`) or SIGCONT.
    pub async fn signal_pause(&self, pause: bool) -> Result<()> {
        let pid = self.pid().context("process not running")?;
        signal(pid, if pause { "STOP" } else { "CONT" }).await
    }

    /// SIGTERM, wait up to 30 s for a clean exit, then SIGKILL. Returns whether it exited by
    /// itself with status 0.
    pub async fn stop(&mut self) -> Result<bool> {
        let Some(mut child) = self.child.take() else {
            return Ok(false);
        };
        if let Some(pid) = child.id() {
            signal(pid, "CONT").await.ok();
            signal(pid, "TERM").await.ok();
        }
        match tokio::time::timeout(Duration::from_secs(30), child.wait()).await {
            Ok(status) => Ok(status?.success()),
            Err(_) => {
                child.start_kill().ok();
                child.wait().await?;
                Ok(false)
            }
        }
    }

    /// Has the process exited on its own? (Returns its status once.)
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        let child = self.child.as_mut()?;
        match child.try_wait() {
            Ok(Some(status)) => {
                self.child = None;
                Some(status)
            }
            _ => None,
        }
    }
}

async fn signal(pid: u32, sig: &str) -> Result<()> {
    let status = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .status()
        .await
        .context("run kill")?;
    if !status.success() {
        bail!("kill -{sig} {pid} failed");
    }
    Ok(())
}

/// VmRSS of a process in bytes.
pub fn rss_of(pid: u32) -> Option<u64> {
    let text =
        std::fs::read_to_string(Path::new("/proc").join(pid.to_string()).join("status")).ok()?;
    let line = text.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}
