//! Starting each component, its health check, the topics and the schema. ZooKeeper's start
//! is in `zookeeper.rs`; the cluster's shape (servers, macros) in `cluster.rs`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};

use crate::cluster::{shards_xml, ChServer, Cluster, CLUSTER_NAME, ZK_SESSION_TIMEOUT_MS};
use crate::settings::{Component, TANSU_VERSION};
use crate::{http, install, process, zookeeper, Stack, Started};

const HTTP_TIMEOUT: Duration = Duration::from_secs(5);

impl Stack {
    /// Whether a component answers: ZooKeeper says `imok` to `ruok`; a ClickHouse server's
    /// `/ping` says `Ok.` (on a cluster only once its ZooKeeper session is up) and its native
    /// port accepts connections; the broker accepts connections; an app's `/health` answers
    /// with a body.
    pub fn healthy(&self, c: Component) -> bool {
        let s = &self.settings;
        let p = s.ports;
        match c {
            Component::ZooKeeper => s
                .cluster
                .is_some_and(|cl| zookeeper::ruok(cl.ports.zookeeper, HTTP_TIMEOUT)),
            Component::ClickHouse | Component::ClickHouse2 => {
                s.clickhouse_server(c).is_some_and(|server| {
                    http::get(server.http, "/ping", HTTP_TIMEOUT)
                        .is_ok_and(|b| http::is_ping_ok(&b))
                        && process::port_open(server.tcp)
                })
            }
            Component::Broker => process::port_open(p.kafka),
            Component::Consumer => app_healthy(p.consumer),
            Component::Api => app_healthy(p.api),
            Component::StreamWorker | Component::Witness | Component::Sequencer => {
                app_healthy(s.app_port(c))
            }
        }
    }

    /// The log files shown when `c` fails to start.
    fn logs_of(&self, c: Component) -> Vec<PathBuf> {
        let dir = self.settings.log_dir();
        let name = c.name();
        match c {
            Component::ZooKeeper => vec![dir.join("zookeeper.log")],
            Component::ClickHouse | Component::ClickHouse2 => vec![
                dir.join(format!("{name}-server.err.log")),
                dir.join(format!("{name}.out")),
            ],
            Component::Broker => vec![dir.join("tansu.log")],
            c if c.is_app() => vec![dir.join(format!("{name}.log"))],
            _ => Vec::new(),
        }
    }

    fn show_logs_of(&self, c: Component) {
        let logs = self.logs_of(c);
        let refs: Vec<&Path> = logs.iter().map(PathBuf::as_path).collect();
        self.log.show_logs(&refs);
    }

    /// Waits until `c` is healthy; fails with its logs when it exits or times out.
    pub(crate) fn wait_healthy(&self, c: Component, pid: u32) -> Result<()> {
        let deadline = Instant::now() + self.settings.timeout;
        let name = c.name();
        while !self.healthy(c) {
            if !process::alive(pid) {
                let _ = std::fs::remove_file(self.settings.pid_file(c));
                self.show_logs_of(c);
                bail!(
                    "{name} exited during startup (logs above; full logs in {})",
                    self.settings.log_dir().display()
                );
            }
            if Instant::now() >= deadline {
                self.show_logs_of(c);
                bail!(
                    "{name} did not become healthy within {}s (STACK_TIMEOUT); it is still running as PID {pid} (logs above)",
                    self.settings.timeout.as_secs()
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        Ok(())
    }

    /// Starts component `c` as `program args` with `env`, output into `logfile`.
    pub(crate) fn spawn(
        &self,
        c: Component,
        program: &Path,
        args: &[String],
        env: &[(&str, String)],
        logfile: &Path,
    ) -> Result<u32> {
        let s = &self.settings;
        process::spawn(&process::Spawn {
            program,
            args,
            env,
            dir: &s.data_dir,
            instance: &s.data_dir,
            component: c.name(),
            logfile,
            pid_file: &s.pid_file(c),
        })
    }

    /// Requires the ports of `c` to be free.
    pub(crate) fn require_ports(&self, c: Component) -> Result<()> {
        for (port, what) in self.ports_of(c) {
            process::require_free_port(port, &what)?;
        }
        Ok(())
    }

    /// Whether `c` runs already (then logged, and waited for until healthy).
    pub(crate) fn running_already(&self, c: Component) -> Result<bool> {
        let Some(pid) = self.pid(c) else {
            return Ok(false);
        };
        self.log
            .info(format!("{}: already running (PID {pid})", c.name()));
        self.wait_healthy(c, pid)?;
        Ok(true)
    }

    /// Starts ClickHouse server `c` (`clickhouse`, or the cluster's `clickhouse2`), installing
    /// the server library first when missing. On a cluster its `config.d/cluster.xml` adds the
    /// macros, `remote_servers`, ZooKeeper and the interserver port.
    pub(crate) fn start_clickhouse(&self, c: Component) -> Result<Started> {
        let s = &self.settings;
        let name = c.name();
        let server = s.clickhouse_server(c).with_context(|| {
            format!(
                "{name} is not a ClickHouse server of the {} profile",
                s.profile.name
            )
        })?;
        if self.running_already(c)? {
            return Ok(Started::AlreadyRunning);
        }
        install::with_install_lock(s, || install::install_chdb(s, &self.log))?;
        self.require_ports(c)?;
        let d = s.data_dir.join(name);
        for sub in CLICKHOUSE_DIRS {
            std::fs::create_dir_all(d.join(sub))
                .with_context(|| format!("create {}", d.join(sub).display()))?;
        }
        std::fs::create_dir_all(s.log_dir())?;
        let config = d.join("config.xml");
        let text = self.template("clickhouse-config.xml.in")?;
        write(
            &config,
            &render_template(&text, &s.data_dir, &server, &s.ch_memory_ratio),
        )?;
        let text = self.template("clickhouse-users.xml.in")?;
        let users = render_template(&text, &s.data_dir, &server, &s.ch_memory_ratio);
        write(&d.join("users.xml"), &users)?;
        let mut role = String::new();
        if let (Some(cluster), Some(r)) = (&s.cluster, &server.replica) {
            let text = self.template("clickhouse-cluster.xml.in")?;
            let servers = s.clickhouse_servers();
            std::fs::create_dir_all(d.join("config.d"))?;
            write(
                &d.join("config.d/cluster.xml"),
                &render_cluster_template(&text, &server, cluster, &servers),
            )?;
            role = format!(
                ", interserver {}, replica {} of shard {} of cluster {CLUSTER_NAME}",
                r.interserver, r.name, r.shard
            );
        }
        self.log.info(format!(
            "{name}: starting ClickHouse 25.8 on HTTP {}, native {}{role} (data {})",
            server.http,
            server.tcp,
            d.display()
        ));
        let script = s.local_dir().join("clickhouse_server.py");
        let pid = self.spawn(
            c,
            Path::new("python3"),
            &[
                script.display().to_string(),
                s.chdb_lib().display().to_string(),
                config.display().to_string(),
            ],
            &[("CLICKHOUSE_WATCHDOG_ENABLE", "0".into())],
            &s.log_dir().join(format!("{name}.out")),
        )?;
        self.wait_healthy(c, pid)?;
        let version =
            http::get(server.http, "/?query=SELECT%20version()", HTTP_TIMEOUT).unwrap_or_default();
        self.log.info(format!(
            "{name}: healthy (PID {pid}, version {})",
            version.trim()
        ));
        Ok(Started::Started)
    }

    /// The text of `deploy/local/TEMPLATE`.
    pub(crate) fn template(&self, template: &str) -> Result<String> {
        let path = self.settings.local_dir().join(template);
        std::fs::read_to_string(&path).with_context(|| format!("read {}", path.display()))
    }

    /// Starts the broker (building Tansu first when missing) and adds its missing index.
    pub(crate) fn start_broker(&self) -> Result<Started> {
        let s = &self.settings;
        let c = Component::Broker;
        if self.running_already(c)? {
            return Ok(Started::AlreadyRunning);
        }
        install::with_install_lock(s, || install::install_tansu(s, &self.log))?;
        self.require_ports(c)?;
        let dir = s.data_dir.join("tansu");
        std::fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
        let db = dir.join("tansu.db");
        let port = s.ports.kafka;
        self.log.info(format!(
            "broker: starting Tansu {TANSU_VERSION} on {port} (sqlite storage {})",
            db.display()
        ));
        let url = format!("tcp://127.0.0.1:{port}");
        let pid = self.spawn(
            c,
            &install::tansu_bin(s),
            &[
                "broker".into(),
                "--listener-url".into(),
                url.clone(),
                "--advertised-listener-url".into(),
                url,
                "--storage-engine".into(),
                "sqlite://tansu/tansu.db".into(),
            ],
            &[],
            &s.log_dir().join("tansu.log"),
        )?;
        self.wait_healthy(c, pid)?;
        // Tansu 0.6.0 has no index for its per-record header lookup: without this one, fetches
        // slow down with every message stored and starve the group coordinator.
        add_header_index(&db, Duration::from_secs(30)).with_context(|| {
            format!("broker: could not add the header index to {}", db.display())
        })?;
        self.log.info(format!("broker: healthy (PID {pid})"));
        Ok(Started::Started)
    }

    /// Creates the audit topic and the dead-letter topic (existing ones are fine).
    pub(crate) fn create_topics(&self) -> Result<()> {
        let s = &self.settings;
        self.create_topic(&s.topic, s.partitions)?;
        self.create_topic(&s.dlq_topic, 1)
    }

    fn create_topic(&self, name: &str, partitions: u32) -> Result<()> {
        let s = &self.settings;
        let broker = format!("tcp://127.0.0.1:{}", s.ports.kafka);
        let out = Command::new(install::tansu_bin(s))
            .args(["topic", "create", name, "--broker", &broker])
            .args(["--partitions", &partitions.to_string()])
            .stdin(Stdio::null())
            .output()
            .context("run tansu topic create")?;
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        if out.status.success() {
            self.log
                .info(format!("topics: created {name} ({partitions} partitions)"));
        } else if says_already_exists(&text) {
            self.log.info(format!("topics: {name} exists"));
        } else {
            self.log.plain_err(text.trim_end());
            bail!(
                "creating topic {name} on 127.0.0.1:{} failed",
                s.ports.kafka
            );
        }
        Ok(())
    }

    /// `auditlog migrate` against the stack's database (skipped with a warning when the binary
    /// is not built; on the test profile a failure is a warning: its tests use databases of
    /// their own).
    pub(crate) fn migrate(&self) -> Result<()> {
        let s = &self.settings;
        let bin = &s.auditlog_bin;
        if !process::is_executable(bin) {
            self.log.warn(format!("schema: {} not built; skipping 'auditlog migrate' (tests/run.sh builds it; or set STACK_AUDITLOG_BIN)", bin.display()));
            return Ok(());
        }
        let out = Command::new(bin)
            .arg("migrate")
            .envs(self.app_env()?)
            .stdin(Stdio::null())
            .output()
            .with_context(|| format!("run {} migrate", bin.display()))?;
        if out.status.success() {
            self.log.info(format!(
                "schema: auditlog migrate applied to database {}",
                s.database
            ));
            return Ok(());
        }
        self.log.plain_err(
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )
            .trim_end(),
        );
        let msg = format!(
            "auditlog migrate ({}) failed against http://127.0.0.1:{} (database {})",
            bin.display(),
            s.ports.ch_http,
            s.database
        );
        if s.profile.name == "test" {
            self.log.warn(msg);
            return Ok(());
        }
        bail!("{msg}")
    }

    /// Starts `auditlog consume` (consumer) or `auditlog serve` (api). `Ok(Err(name))`: it did
    /// not come up (warned about; `up` reports it and exits 1).
    pub(crate) fn start_app(&self, c: Component) -> Result<Result<Started, String>> {
        let s = &self.settings;
        let name = c.name();
        let (sub, port) = match c {
            Component::Consumer => ("consume", s.ports.consumer),
            Component::Api => ("serve", s.ports.api),
            Component::StreamWorker => ("stream-worker", s.app_port(c)),
            Component::Witness => ("witness", s.app_port(c)),
            Component::Sequencer => ("sequencer", s.app_port(c)),
            _ => bail!("{name} is not an auditlog process"),
        };
        if let Some(pid) = self.pid(c) {
            self.log
                .info(format!("{name}: already running (PID {pid})"));
            return Ok(Ok(Started::AlreadyRunning));
        }
        let bin = &s.auditlog_bin;
        if !process::is_executable(bin) {
            bail!(
                "{} not found (build it: cargo build --release -p auditlog)",
                bin.display()
            );
        }
        process::require_free_port(port, &format!("{name}, STACK_{}_PORT", name.to_uppercase()))?;
        let env = self.app_env()?;
        let mut args: Vec<String> = Vec::new();
        if matches!(c, Component::Witness | Component::Sequencer) {
            let config = crate::integrity::config_file(self, c)?;
            args.extend(["--config".into(), config.display().to_string()]);
        }
        if c == Component::StreamWorker {
            args.extend([
                "stream-worker".into(),
                "--listen".into(),
                format!("127.0.0.1:{port}"),
            ]);
        } else {
            args.push(sub.into());
        }
        let logfile = s.log_dir().join(format!("{name}.log"));
        self.log.info(format!(
            "{name}: starting auditlog {sub} (health http://127.0.0.1:{port}/health)"
        ));
        std::fs::create_dir_all(s.log_dir())?;
        std::fs::write(&logfile, "").with_context(|| format!("write {}", logfile.display()))?;
        let pid = self.spawn(c, bin, &args, &env, &logfile)?;
        let deadline = Instant::now() + s.timeout;
        while !app_healthy(port) {
            if !process::alive(pid) {
                let _ = std::fs::remove_file(s.pid_file(c));
                let text = std::fs::read_to_string(&logfile).unwrap_or_default();
                if text.contains("not built yet") {
                    self.log.warn(format!(
                        "{name}: 'auditlog {sub}' is not built yet; {name} not started"
                    ));
                } else {
                    self.log.show_logs(&[&logfile]);
                    self.log.warn(format!(
                        "{name}: 'auditlog {sub}' exited during startup (log above: {})",
                        logfile.display()
                    ));
                }
                return Ok(Err(name.into()));
            }
            if Instant::now() >= deadline {
                self.log.show_logs(&[&logfile]);
                self.log.warn(format!(
                    "{name}: no answer from http://127.0.0.1:{port}/health within {}s; still running as PID {pid}",
                    s.timeout.as_secs()
                ));
                return Ok(Err(name.into()));
            }
            std::thread::sleep(Duration::from_millis(300));
        }
        self.log.info(format!("{name}: healthy (PID {pid})"));
        Ok(Ok(Started::Started))
    }
}

/// The directories the ClickHouse config names, under `<data dir>/clickhouse/`.
pub const CLICKHOUSE_DIRS: &[&str] = &[
    "data",
    "tmp",
    "user_files",
    "format_schemas",
    "user_scripts",
    "user_defined",
    "access",
];

/// The index Tansu 0.6.0's SQLite schema lacks: `header (topition, offset_id)`.
const HEADER_INDEX: &str =
    "CREATE INDEX IF NOT EXISTS header_topition_offset_id ON header (topition, offset_id)";

/// Adds [`HEADER_INDEX`] to the broker's database once Tansu has created its schema (waiting
/// `wait` at most). Tansu reads each fetched record's headers with a lookup by
/// (topition, offset_id) in the `header` table, which has no index on those columns: every
/// record fetched scans every header ever written. With a few tens of thousands of messages
/// (three headers each) a fetch of 1 MB takes seconds, and because Tansu's storage serves the
/// group coordinator too, heartbeats go unanswered meanwhile: consumers time out of their group
/// again and again. With the index a lookup is a B-tree search. Safe while the broker runs and
/// to run again.
pub fn add_header_index(db: &Path, wait: Duration) -> Result<()> {
    let deadline = Instant::now() + wait;
    let mut last = "the broker has not created its schema yet".to_string();
    while Instant::now() < deadline {
        let attempt = || -> rusqlite::Result<bool> {
            let conn = rusqlite::Connection::open(db)?;
            conn.busy_timeout(Duration::from_secs(30))?;
            let has_table: bool = conn.query_row(
                "SELECT count(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = 'header'",
                [],
                |row| row.get(0),
            )?;
            if has_table {
                conn.execute(HEADER_INDEX, [])?;
            }
            Ok(has_table)
        };
        match attempt() {
            Ok(true) => return Ok(()),
            Ok(false) => {}
            Err(e) => last = e.to_string(),
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    bail!("{}: {last}", db.display())
}

/// An app's `/health` answered (successfully) with a body.
fn app_healthy(port: u16) -> bool {
    http::get(port, "/health", HTTP_TIMEOUT).is_ok_and(|b| !b.is_empty())
}

/// Whether `tansu topic create` failed because the topic exists.
pub fn says_already_exists(output: &str) -> bool {
    // `already.?exists`, case-insensitive.
    let lower = output.to_lowercase();
    lower.match_indices("already").any(|(i, w)| {
        let rest = &lower[i + w.len()..];
        rest.starts_with("exists")
            || rest
                .chars()
                .next()
                .is_some_and(|c| rest[c.len_utf8()..].starts_with("exists"))
    })
}

/// Writes `text` into `path`.
pub(crate) fn write(path: &Path, text: &str) -> Result<()> {
    std::fs::write(path, text).with_context(|| format!("write {}", path.display()))
}

/// A ClickHouse config template (`clickhouse-config.xml.in`, `clickhouse-users.xml.in`) for
/// `server` of the stack in `data_dir`: its name (directory and log names), ports and memory
/// ratio filled in.
pub fn render_template(
    text: &str,
    data_dir: &Path,
    server: &ChServer,
    memory_ratio: &str,
) -> String {
    text.replace("@DATA_DIR@", &data_dir.display().to_string())
        .replace("@NAME@", server.component.name())
        .replace("@HTTP_PORT@", &server.http.to_string())
        .replace("@TCP_PORT@", &server.tcp.to_string())
        .replace("@MEMORY_RATIO@", memory_ratio)
}

/// `clickhouse-cluster.xml.in` for `server` (a replica) of `cluster`, whose servers are
/// `servers`: macros, interserver port, the shared `remote_servers` entry and ZooKeeper.
pub fn render_cluster_template(
    text: &str,
    server: &ChServer,
    cluster: &Cluster,
    servers: &[ChServer],
) -> String {
    let (interserver, shard, replica) = server
        .replica
        .as_ref()
        .map(|r| (r.interserver.to_string(), r.shard.as_str(), r.name.as_str()))
        .unwrap_or_default();
    text.replace("@INTERSERVER_PORT@", &interserver)
        .replace("@SHARD@", shard)
        .replace("@REPLICA@", replica)
        .replace("@CLUSTER@", CLUSTER_NAME)
        .replace("@SHARDS@", &shards_xml(servers))
        .replace("@ZK_PORT@", &cluster.ports.zookeeper.to_string())
        .replace(
            "@ZK_SESSION_TIMEOUT_MS@",
            &ZK_SESSION_TIMEOUT_MS.to_string(),
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether `rendered` still holds an `@PLACEHOLDER@`.
    fn placeholder_left(rendered: &str) -> bool {
        rendered
            .match_indices('@')
            .any(|(i, _)| rendered[i + 1..].starts_with(|c: char| c.is_ascii_uppercase()))
    }

    #[test]
    fn templates_get_the_stack_values() {
        let s = crate::Settings::resolve(Path::new("/repo"), |k| match k {
            "STACK_CH_HTTP_PORT" => Some("28123".into()),
            "STACK_CH_MEMORY_RATIO" => Some("0.1".into()),
            _ => None,
        })
        .unwrap();
        let server = &s.clickhouse_servers()[0];
        let render = |text: &str| render_template(text, &s.data_dir, server, &s.ch_memory_ratio);
        assert_eq!(
            render("<p>@DATA_DIR@/@NAME@/x</p><h>@HTTP_PORT@</h><t>@TCP_PORT@</t><m>@MEMORY_RATIO@</m>@HTTP_PORT@"),
            "<p>/repo/.data/dev/clickhouse/x</p><h>28123</h><t>9000</t><m>0.1</m>28123"
        );
        let real = include_str!("../../../deploy/local/clickhouse-config.xml.in");
        let rendered = render(real);
        assert!(
            !placeholder_left(&rendered),
            "a placeholder left:\n{rendered}"
        );
        // The single server's paths are what they always were.
        assert!(rendered.contains("<path>/repo/.data/dev/clickhouse/data/</path>"));
        assert!(rendered.contains("<log>/repo/.data/dev/logs/clickhouse-server.log</log>"));
    }

    #[test]
    fn cluster_servers_get_their_own_dirs_ports_and_macros() {
        let s = crate::Settings::resolve(Path::new("/repo"), |k| match k {
            "STACK_PROFILE" => Some("cluster".into()),
            _ => None,
        })
        .unwrap();
        let cluster = s.cluster.unwrap();
        let servers = s.clickhouse_servers();
        let base = include_str!("../../../deploy/local/clickhouse-config.xml.in");
        let extra = include_str!("../../../deploy/local/clickhouse-cluster.xml.in");
        let second = &servers[1];
        let config = render_template(base, &s.data_dir, second, "0.25");
        assert!(!placeholder_left(&config), "{config}");
        assert!(config.contains("<path>/repo/.data/cluster/clickhouse2/data/</path>"));
        assert!(config.contains("<http_port>28124</http_port>"));
        assert!(config.contains("logs/clickhouse2-server.err.log"));
        let xml = render_cluster_template(extra, second, &cluster, &servers);
        assert!(!placeholder_left(&xml), "{xml}");
        for want in [
            "<interserver_http_port>29010</interserver_http_port>",
            "<interserver_http_host>127.0.0.1</interserver_http_host>",
            "<shard>01</shard>",
            "<replica>ch2</replica>",
            "<auditlog>",
            "<internal_replication>true</internal_replication>",
            "<port>29000</port></replica>",
            "<port>29001</port></replica>",
            "<port>22181</port>",
            "<session_timeout_ms>6000</session_timeout_ms>",
            "<path>/clickhouse/task_queue/ddl</path>",
            "<background_distributed_schedule_pool_size>4</background_distributed_schedule_pool_size>",
        ] {
            assert!(xml.contains(want), "{want} missing:\n{xml}");
        }
    }

    #[test]
    fn the_header_index_waits_for_the_schema_and_is_idempotent() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("tansu.db");
        let e = add_header_index(&db, Duration::from_millis(300)).unwrap_err();
        assert!(e.to_string().contains("has not created its schema"), "{e}");
        let conn = rusqlite::Connection::open(&db).unwrap();
        conn.execute(
            "CREATE TABLE header (topition INT, offset_id INT, k TEXT)",
            [],
        )
        .unwrap();
        add_header_index(&db, Duration::from_secs(5)).unwrap();
        add_header_index(&db, Duration::from_secs(5)).unwrap();
        let n: i64 = conn
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE type = 'index' AND name = 'header_topition_offset_id'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(n, 1);
    }

    #[test]
    fn topic_exists_answers_are_recognised() {
        assert!(says_already_exists("Error: TopicAlreadyExists"));
        assert!(says_already_exists("topic already exists"));
        assert!(says_already_exists("TOPIC_ALREADY_EXISTS"));
        assert!(!says_already_exists("connection refused"));
    }
}
