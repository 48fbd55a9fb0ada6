//! The local stack: a real ClickHouse 25.8 server and a real Kafka-protocol broker (Tansu) on
//! loopback, the topics and the schema, and (dev profile) the consumer, the API/dashboard and
//! demo data. `deploy/local/stack.sh` runs the `auditlog-stack` binary; the test kit and the
//! fault suite call this library. See docs/local-stack.md for every command and variable.
//!
//! ```no_run
//! use auditlog_stack::{Component, Stack};
//!
//! // A private stack: the test profile's defaults with a data dir and ports of its own.
//! let vars = [
//!     ("STACK_PROFILE", "test"),
//!     ("STACK_DATA_DIR", "/tmp/my-stack"),
//!     ("STACK_CH_HTTP_PORT", "28123"),
//! ];
//! let stack = Stack::with_vars(&vars)?;
//! stack.up()?;
//! stack.stop(Component::ClickHouse)?;
//! stack.start(Component::ClickHouse)?;
//! stack.down()?;
//! # anyhow::Ok(())
//! ```
//!
//! - [`settings`]: profiles as data (ports, components, defaults) and the `STACK_*` variables;
//! - [`process`]: PID files, the `STACK_INSTANCE` marker, signals, ports, locks;
//! - [`install`]: what a first run installs (ClickHouse, Tansu, the release `auditlog`);
//! - [`components`]: starting each component and its health check;
//! - [`cluster`]: the cluster profile's servers, macros and `remote_servers` (data);
//! - [`zookeeper`]: the cluster's ZooKeeper;
//! - [`seed`]: the dev profile's demo data.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};

pub mod cluster;
pub mod components;
pub mod http;
pub mod install;
pub mod integrity;
pub mod output;
pub mod process;
pub mod seed;
pub mod settings;
pub mod zookeeper;

pub use cluster::{ClusterPorts, CLUSTER_NAME};
pub use output::Log;
pub use settings::{
    private_cluster_vars, private_vars, Component, Ports, Profile, Settings, UnknownProfile,
    PROFILES,
};

/// The repository this crate was built from (two levels above it).
pub fn default_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// One stack: its settings and where its output goes.
#[derive(Debug, Clone)]
pub struct Stack {
    pub settings: Settings,
    pub log: Log,
}

/// How a `start` went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Started {
    /// It was running already (and is healthy).
    AlreadyRunning,
    /// Started now and healthy.
    Started,
}

/// What `up` could not make ready while the infrastructure is up (`up` exits 1 then).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct UpReport {
    pub problems: Vec<String>,
}

impl Stack {
    /// The stack the process environment describes (`STACK_ROOT` overrides the repository),
    /// printing to the terminal.
    pub fn from_env() -> Result<Self> {
        let settings = resolve::<&str, &str>(&[])?;
        let log = Log::terminal(settings.profile.name);
        Ok(Self { settings, log })
    }

    /// The stack the process environment with `vars` on top describes, its output captured
    /// ([`Stack::output`]): how the test kit describes a private stack.
    pub fn with_vars<K: AsRef<str>, V: AsRef<str>>(vars: &[(K, V)]) -> Result<Self> {
        let settings = resolve(vars)?;
        let log = Log::capture(settings.profile.name);
        Ok(Self { settings, log })
    }

    /// Everything printed so far (captured stacks only).
    pub fn output(&self) -> String {
        self.log.captured()
    }

    /// The data directory (also the `STACK_INSTANCE` marker of its processes).
    pub fn data_dir(&self) -> &Path {
        &self.settings.data_dir
    }

    /// The PID of a running component of this stack (a stale PID file is removed).
    pub fn pid(&self, c: Component) -> Option<u32> {
        process::running_pid(&self.settings.pid_file(c), &self.settings.data_dir)
    }

    /// Every process carrying this stack's marker (PID, command name), tracked or not; only
    /// those of component `c` when given.
    pub fn processes(&self, c: Option<Component>) -> Vec<(u32, String)> {
        process::instance_processes(&self.settings.data_dir, c.map(Component::name))
    }

    /// Holds `run/stack.lock`: one command at a time works on a data directory.
    fn lock(&self) -> Result<process::Lock> {
        process::lock(
            &self.settings.run_dir().join("stack.lock"),
            Duration::from_secs(1800),
            &format!(
                "another stack.sh is working on {} and did not finish within 30 min",
                self.settings.data_dir.display()
            ),
        )
    }

    /// Starts what is not running (idempotent), creates the topics, applies the schema; with
    /// the apps also the consumer, the API and (once per data dir) the demo data.
    pub fn up(&self) -> Result<UpReport> {
        let s = &self.settings;
        let p = s.ports;
        self.log.info(s.up_banner());
        let _lock = self.lock()?;
        self.preflight_ports()?;
        for c in s.profile.infrastructure {
            self.start_infrastructure(*c)?;
        }
        self.create_topics()?;
        if s.apps {
            install::build_auditlog(s, &self.log)?;
        }
        if s.apps || s.profile.schema_without_apps {
            self.migrate()?;
        }
        let mut report = UpReport::default();
        if s.apps {
            for c in s.profile.apps {
                if let Err(problem) = self.start_app(*c)? {
                    report.problems.push(problem);
                }
            }
            if s.seed {
                report.problems.extend(self.seed()?);
            }
        }
        self.log
            .info(format!("up: done in {}s", self.log.elapsed_secs()));
        let mut summary = vec![String::new()];
        if let Some(c) = &s.cluster {
            summary.push(format!(
                "  ZooKeeper   127.0.0.1:{}  (cluster {CLUSTER_NAME}: {} shard(s))",
                c.ports.zookeeper, c.shards
            ));
        }
        for server in s.clickhouse_servers() {
            let role = server
                .replica
                .map(|r| format!(", shard {} replica {}", r.shard, r.name))
                .unwrap_or_default();
            summary.push(format!(
                "  ClickHouse  http://127.0.0.1:{}  (native 127.0.0.1:{}, database {}{role})",
                server.http, server.tcp, s.database
            ));
        }
        summary.extend([format!(
            "  Kafka       127.0.0.1:{}  (topics {} x{}, {})",
            p.kafka, s.topic, s.partitions, s.dlq_topic
        )]);
        if s.apps {
            summary.push(format!("  Dashboard   http://127.0.0.1:{}/", p.api));
            let token = read_trimmed(&s.data_dir.join("demo-token"));
            if !token.is_empty() {
                let ws = read_trimmed(&s.data_dir.join("demo-workspace"));
                summary.push(format!(
                    "  Demo token  {token}   (workspace {ws}; paste it into the dashboard)"
                ));
            }
            summary.push(format!(
                "  Admin token {}",
                s.data_dir.join("admin-token").display()
            ));
            summary.push(format!(
                "  Consumer    http://127.0.0.1:{}/metrics",
                p.consumer
            ));
            summary.push(format!(
                "  Log         http://127.0.0.1:{}/#log  (sequencer :{}, witness http://127.0.0.1:{}/log; keys in {})",
                p.api,
                s.app_port(Component::Sequencer),
                s.app_port(Component::Witness),
                s.data_dir.join("keys").display()
            ));
        }
        summary.push(format!("  Logs        {}/", s.log_dir().display()));
        summary.push(String::new());
        self.log.plain(summary.join("\n"));
        if !report.problems.is_empty() {
            self.log.warn(format!(
                "not ready: {} (see the warnings above); the infrastructure is up",
                report.problems.join(" ")
            ));
        }
        Ok(report)
    }

    /// Every port a component that is not running yet will need must be free: fail before
    /// starting anything rather than leave half a stack behind.
    fn preflight_ports(&self) -> Result<()> {
        for c in self.settings.components() {
            if self.pid(c).is_none() {
                for (port, what) in self.ports_of(c) {
                    process::require_free_port(port, &what)?;
                }
            }
        }
        Ok(())
    }

    /// The ports `c` listens on, each with its description for errors.
    pub(crate) fn ports_of(&self, c: Component) -> Vec<(u16, String)> {
        let p = self.settings.ports;
        let cluster = self.settings.cluster.map(|c| c.ports);
        match (c, cluster) {
            (Component::ZooKeeper, Some(cp)) => {
                vec![(cp.zookeeper, "ZooKeeper, STACK_ZK_PORT".into())]
            }
            (Component::ClickHouse, _) => {
                let mut ports = vec![
                    (p.ch_http, "ClickHouse HTTP, STACK_CH_HTTP_PORT".into()),
                    (p.ch_tcp, "ClickHouse native, STACK_CH_TCP_PORT".into()),
                ];
                if let Some(cp) = cluster {
                    ports.push((
                        cp.ch_interserver,
                        "ClickHouse interserver, STACK_CH_INTERSERVER_PORT".into(),
                    ));
                }
                ports
            }
            (Component::ClickHouse2, Some(cp)) => vec![
                (cp.ch2_http, "clickhouse2 HTTP, STACK_CH2_HTTP_PORT".into()),
                (cp.ch2_tcp, "clickhouse2 native, STACK_CH2_TCP_PORT".into()),
                (
                    cp.ch2_interserver,
                    "clickhouse2 interserver, STACK_CH2_INTERSERVER_PORT".into(),
                ),
            ],
            (Component::ZooKeeper | Component::ClickHouse2, None) => Vec::new(),
            (Component::Broker, _) => vec![(p.kafka, "Kafka broker, STACK_KAFKA_PORT".into())],
            (Component::Consumer, _) => {
                vec![(p.consumer, "consumer, STACK_CONSUMER_PORT".into())]
            }
            (Component::Api, _) => vec![(p.api, "api, STACK_API_PORT".into())],
            (Component::StreamWorker | Component::Witness | Component::Sequencer, _) => vec![(
                self.settings.app_port(c),
                format!("{}, STACK_CONSUMER_PORT + n", c.name()),
            )],
        }
    }

    /// Stops every process this stack started, apps first (data is kept).
    pub fn down(&self) -> Result<()> {
        let _lock = self.lock()?;
        for c in self.settings.all_components().into_iter().rev() {
            self.stop_component(c);
        }
        self.log.info(format!(
            "down: done (data kept in {})",
            self.settings.data_dir.display()
        ));
        Ok(())
    }

    /// Starts one component and waits until it is healthy. An app that does not come up is an
    /// error here (its warning says why).
    pub fn start(&self, c: Component) -> Result<Started> {
        let _lock = self.lock()?;
        if !self.settings.all_components().contains(&c) {
            bail!(
                "{} is not part of the {} profile",
                c.name(),
                self.settings.profile.name
            );
        }
        if c.is_app() {
            return match self.start_app(c)? {
                Ok(started) => Ok(started),
                Err(problem) => bail!("{problem} did not start (see the warnings above)"),
            };
        }
        self.start_infrastructure(c)
    }

    /// Starts infrastructure component `c` and waits until it is healthy.
    fn start_infrastructure(&self, c: Component) -> Result<Started> {
        match c {
            Component::ZooKeeper => self.start_zookeeper(),
            Component::ClickHouse | Component::ClickHouse2 => self.start_clickhouse(c),
            Component::Broker => self.start_broker(),
            c if c.is_app() => bail!("{} is an app", c.name()),
            _ => unreachable!("every infrastructure component is matched"),
        }
    }

    /// Stops one component: SIGTERM, SIGKILL after `STACK_STOP_TIMEOUT`.
    pub fn stop(&self, c: Component) -> Result<()> {
        let _lock = self.lock()?;
        self.stop_component(c);
        Ok(())
    }

    /// `stop` then `start`.
    pub fn restart(&self, c: Component) -> Result<Started> {
        self.stop(c)?;
        self.start(c)
    }

    /// SIGTERM, wait up to `STACK_STOP_TIMEOUT`, then SIGKILL. Only ever a PID this stack started.
    fn stop_component(&self, c: Component) {
        let name = c.name();
        let Some(pid) = self.pid(c) else {
            self.log.info(format!("{name}: not running"));
            return;
        };
        self.log
            .info(format!("{name}: stopping PID {pid} (SIGTERM)"));
        process::signal(pid, rustix::process::Signal::TERM);
        let deadline = Instant::now() + self.settings.stop_timeout;
        while process::alive(pid) {
            if Instant::now() >= deadline {
                self.log.warn(format!(
                    "{name}: PID {pid} still running after {}s; sending SIGKILL",
                    self.settings.stop_timeout.as_secs()
                ));
                process::sigkill(pid);
                std::thread::sleep(Duration::from_millis(200));
                break;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        while process::alive(pid) {
            std::thread::sleep(Duration::from_millis(100));
        }
        // Its last threads may still hold its ports for a moment: a start right after a stop
        // must find them free.
        process::wait_gone(pid, Duration::from_secs(10));
        let _ = std::fs::remove_file(self.settings.pid_file(c));
        self.log.info(format!("{name}: stopped"));
    }

    /// The status table (profile line, header, one row per component) and whether every
    /// required component is healthy.
    pub fn status(&self) -> (String, bool) {
        let s = &self.settings;
        let mut ok = true;
        let mut lines = vec![
            format!("profile {}, data {}", s.profile.name, s.data_dir.display()),
            settings::status_row("COMPONENT", "PID", "PORT", "HEALTH"),
        ];
        let required = s.components();
        for c in s.all_components() {
            let (pid, health) = match self.pid(c) {
                Some(pid) if self.healthy(c) => (pid.to_string(), "healthy"),
                Some(pid) => {
                    ok = false;
                    (pid.to_string(), "UNHEALTHY")
                }
                None => {
                    ok &= !required.contains(&c);
                    ("-".to_string(), "stopped")
                }
            };
            lines.push(settings::status_row(
                c.name(),
                &pid,
                &s.ports_label(c),
                health,
            ));
        }
        (lines.join("\n"), ok)
    }

    /// `export` lines describing this stack (`stack.sh env`).
    pub fn env_exports(&self) -> String {
        self.settings.env_exports()
    }

    /// The admin token of the API (generated on first use into `<data dir>/admin-token`).
    pub fn admin_token(&self) -> Result<String> {
        let file = self.settings.data_dir.join("admin-token");
        let token = read_trimmed(&file);
        if !token.is_empty() {
            return Ok(token);
        }
        std::fs::create_dir_all(&self.settings.data_dir)?;
        let token = format!("adm_{}", hex::encode(rand::random::<[u8; 24]>()));
        process::write_private(&file, &format!("{token}\n"))
            .with_context(|| format!("write {}", file.display()))?;
        Ok(token)
    }

    /// The environment of every `auditlog` process of this stack.
    pub fn app_env(&self) -> Result<Vec<(&'static str, String)>> {
        Ok(self.settings.app_env(&self.admin_token()?))
    }
}

/// The settings the process environment with `vars` on top describes.
fn resolve<K: AsRef<str>, V: AsRef<str>>(vars: &[(K, V)]) -> Result<Settings> {
    let lookup = |name: &str| {
        vars.iter()
            .rev()
            .find(|(k, _)| k.as_ref() == name)
            .map(|(_, v)| v.as_ref().to_string())
            .or_else(|| std::env::var(name).ok())
    };
    let root = lookup("STACK_ROOT")
        .filter(|r| !r.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(default_root);
    let root = root.canonicalize().unwrap_or(root);
    Settings::resolve(&root, lookup)
}

/// A file's content without surrounding whitespace (empty when missing).
pub(crate) fn read_trimmed(path: &Path) -> String {
    std::fs::read_to_string(path)
        .map(|t| t.trim().to_string())
        .unwrap_or_default()
}
