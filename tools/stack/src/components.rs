//! Starting each component, its health check, the topics and the schema.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};

use crate::settings::{Component, TANSU_VERSION};
use crate::{http, install, process, Stack, Started};

const HTTP_TIMEOUT: Duration = Duration::from_secs(5);

impl Stack {
    /// Whether a component answers: ClickHouse `/ping` says `Ok.` and its native port accepts
    /// connections; the broker accepts connections; an app's `/health` answers with a body.
    pub fn healthy(&self, c: Component) -> bool {
        let p = self.settings.ports;
        match c {
            Component::ClickHouse => {
                http::get(p.ch_http, "/ping", HTTP_TIMEOUT).is_ok_and(|b| http::is_ping_ok(&b))
                    && process::port_open(p.ch_tcp)
            }
            Component::Broker => process::port_open(p.kafka),
            Component::Consumer => app_healthy(p.consumer),
            Component::Api => app_healthy(p.api),
        }
    }

    /// The log files shown when `c` fails to start.
    fn logs_of(&self, c: Component) -> Vec<PathBuf> {
        let dir = self.settings.log_dir();
        match c {
            Component::ClickHouse => vec![
                dir.join("clickhouse-server.err.log"),
                dir.join("clickhouse.out"),
            ],
            Component::Broker => vec![dir.join("tansu.log")],
            Component::Consumer | Component::Api => vec![dir.join(format!("{}.log", c.name()))],
        }
    }

    fn show_logs_of(&self, c: Component) {
        let logs = self.logs_of(c);
        let refs: Vec<&Path> = logs.iter().map(PathBuf::as_path).collect();
        self.log.show_logs(&refs);
    }

    /// Waits until `c` is healthy; fails with its logs when it exits or times out.
    fn wait_healthy(&self, c: Component, pid: u32) -> Result<()> {
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
    fn spawn(
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
    fn require_ports(&self, c: Component) -> Result<()> {
        for (port, what) in self.ports_of(c) {
            process::require_free_port(port, &what)?;
        }
        Ok(())
    }

    /// Whether `c` runs already (then logged, and waited for until healthy).
    fn running_already(&self, c: Component) -> Result<bool> {
        let Some(pid) = self.pid(c) else {
            return Ok(false);
        };
        self.log
            .info(format!("{}: already running (PID {pid})", c.name()));
        self.wait_healthy(c, pid)?;
        Ok(true)
    }

    /// Starts ClickHouse (installing the server library first when missing).
    pub(crate) fn start_clickhouse(&self) -> Result<Started> {
        let s = &self.settings;
        let c = Component::ClickHouse;
        if self.running_already(c)? {
            return Ok(Started::AlreadyRunning);
        }
        install::with_install_lock(s, || install::install_chdb(s, &self.log))?;
        self.require_ports(c)?;
        let d = s.data_dir.join("clickhouse");
        for sub in CLICKHOUSE_DIRS {
            std::fs::create_dir_all(d.join(sub))
                .with_context(|| format!("create {}", d.join(sub).display()))?;
        }
        std::fs::create_dir_all(s.log_dir())?;
        let config = d.join("config.xml");
        self.render("clickhouse-config.xml.in", &config)?;
        self.render("clickhouse-users.xml.in", &d.join("users.xml"))?;
        self.log.info(format!(
            "clickhouse: starting ClickHouse 25.8 on HTTP {}, native {} (data {})",
            s.ports.ch_http,
            s.ports.ch_tcp,
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
            &s.log_dir().join("clickhouse.out"),
        )?;
        self.wait_healthy(c, pid)?;
        let version = http::get(s.ports.ch_http, "/?query=SELECT%20version()", HTTP_TIMEOUT)
            .unwrap_or_default();
        self.log.info(format!(
            "clickhouse: healthy (PID {pid}, version {})",
            version.trim()
        ));
        Ok(Started::Started)
    }

    /// Renders `deploy/local/TEMPLATE` into `dest`, replacing the `@...@` placeholders.
    fn render(&self, template: &str, dest: &Path) -> Result<()> {
        let path = self.settings.local_dir().join(template);
        let text =
            std::fs::read_to_string(&path).with_context(|| format!("read {}", path.display()))?;
        std::fs::write(dest, render_template(&text, &self.settings))
            .with_context(|| format!("write {}", dest.display()))
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
        let logfile = s.log_dir().join(format!("{name}.log"));
        self.log.info(format!(
            "{name}: starting auditlog {sub} (health http://127.0.0.1:{port}/health)"
        ));
        std::fs::create_dir_all(s.log_dir())?;
        std::fs::write(&logfile, "").with_context(|| format!("write {}", logfile.display()))?;
        let pid = self.spawn(c, bin, &[sub.into()], &env, &logfile)?;
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

/// A ClickHouse config template with the stack's data dir, ports and memory ratio filled in.
pub fn render_template(text: &str, s: &crate::Settings) -> String {
    text.replace("@DATA_DIR@", &s.data_dir.display().to_string())
        .replace("@HTTP_PORT@", &s.ports.ch_http.to_string())
        .replace("@TCP_PORT@", &s.ports.ch_tcp.to_string())
        .replace("@MEMORY_RATIO@", &s.ch_memory_ratio)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_get_the_stack_values() {
        let s = crate::Settings::resolve(Path::new("/repo"), |k| match k {
            "STACK_CH_HTTP_PORT" => Some("28123".into()),
            "STACK_CH_MEMORY_RATIO" => Some("0.1".into()),
            _ => None,
        })
        .unwrap();
        assert_eq!(
            render_template(
                "<p>@DATA_DIR@/x</p><h>@HTTP_PORT@</h><t>@TCP_PORT@</t><m>@MEMORY_RATIO@</m>@HTTP_PORT@",
                &s
            ),
            "<p>/repo/.data/dev/x</p><h>28123</h><t>9000</t><m>0.1</m>28123"
        );
        let real = include_str!("../../../deploy/local/clickhouse-config.xml.in");
        let rendered = render_template(real, &s);
        let left = rendered
            .match_indices('@')
            .any(|(i, _)| rendered[i + 1..].starts_with(|c: char| c.is_ascii_uppercase()));
        assert!(!left, "a placeholder left:\n{rendered}");
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
