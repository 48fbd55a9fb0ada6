//! Private PostgreSQL and MariaDB servers for the outbox's and the relay's tests: each one a
//! server of its own from the Debian packages (`postgresql`, `mariadb-server`; `tests/run.sh`
//! installs them), with its data in a temporary directory, on a free loopback port, fsync off,
//! and killed (its data deleted) on drop.
//!
//! - [`PostgresServer`]: `initdb` + `postgres` from `/usr/lib/postgresql/<newest>/bin`
//!   (`TEST_POSTGRES_BIN` overrides the directory). PostgreSQL refuses to run as root: when
//!   the tests run as root (CI) the server runs as the `postgres` user the package creates.
//!   Superuser `auditlog`, trust authentication, database `auditlog`.
//! - [`MariaDbServer`]: `mariadbd` on a data directory copied from a template made once per
//!   machine and user by `mariadb-install-db` (under `.data/cache/`; making it takes about
//!   3 s, a copy milliseconds). User `auditlog` without password, all privileges; database
//!   `auditlog`.
//!
//! Both start in about a second, block until the server accepts connections (30 s at most,
//! then an error with the tail of the server's log), can be stopped and restarted on the same
//! port with their data ([`PostgresServer::stop`], [`PostgresServer::restart`]), and create
//! more databases for tests sharing one server ([`PostgresServer::fresh_database`]).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context as _, Result};
use rustix::process::{Pid, Signal};

use crate::private::start_with_retries;
use crate::{free_ports, unique_name, workspace_root};

/// How long a server may take to accept connections.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a stopped server may take to exit before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(20);

/// A private PostgreSQL server (see the module doc). Killed, its data deleted, on drop.
#[derive(Debug)]
pub struct PostgresServer {
    daemon: Daemon,
    bin: PathBuf,
}

impl PostgresServer {
    /// Makes a cluster (`initdb`), starts `postgres` on a free loopback port and creates the
    /// database `auditlog`; returns once it accepts connections. Blocking (about 1 s).
    /// A failed start is retried on new ports (up to 3 times).
    pub fn start() -> Result<Self> {
        let bin = postgres_bin()?;
        start_with_retries("PostgresServer", || Self::try_start(&bin))
    }

    fn try_start(bin: &Path) -> Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("auditlog-postgres-")
            .tempdir()
            .context("temporary directory for PostgreSQL")?;
        // Root: the server runs as `postgres`, which must own its directories.
        let user = if is_root() {
            let (uid, gid) = system_user("postgres")?;
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid))
                .context("chown the PostgreSQL directory to postgres")?;
            Some((uid, gid))
        } else {
            None
        };
        let data = dir.path().join("data");
        let log = dir.path().join("postgres.log");
        let mut initdb = Command::new(bin.join("initdb"));
        initdb
            .arg("-D")
            .arg(&data)
            .args(["-U", "auditlog", "--auth=trust", "--no-sync"])
            .args(["--no-instructions", "--no-locale", "-E", "UTF8"]);
        as_user(&mut initdb, user);
        run(&mut initdb, "initdb")?;
        let port = free_ports(1)?[0];
        let mut args: Vec<String> = vec!["-D".into(), data.display().to_string()];
        args.extend(["-p".into(), port.to_string()]);
        args.extend(["-k".into(), dir.path().display().to_string()]);
        for setting in [
            "listen_addresses=127.0.0.1",
            "fsync=off",
            "synchronous_commit=off",
            "full_page_writes=off",
            "max_connections=300",
            "shared_buffers=64MB",
            "log_min_messages=warning",
        ] {
            args.extend(["-c".into(), setting.into()]);
        }
        let daemon = Daemon {
            what: "PostgreSQL",
            program: bin.join("postgres"),
            args,
            user,
            port,
            log,
            child: Mutex::new(None),
            _dir: dir,
        };
        let server = Self {
            daemon,
            bin: bin.to_path_buf(),
        };
        server.launch()?;
        server.createdb("auditlog")?;
        Ok(server)
    }

    fn launch(&self) -> Result<()> {
        let mut child = self.daemon.child()?;
        self.daemon.spawn(&mut child)?;
        let mut ready = Command::new(self.bin.join("pg_isready"));
        ready
            .args(["-q", "-h", "127.0.0.1", "-U", "auditlog", "-d", "postgres"])
            .args(["-p", &self.daemon.port.to_string()]);
        self.daemon.wait_ready(&mut child, || quiet(&mut ready))
    }

    fn createdb(&self, name: &str) -> Result<()> {
        check_name(name)?;
        run(
            Command::new(self.bin.join("createdb"))
                .args(["-h", "127.0.0.1", "-U", "auditlog"])
                .args(["-p", &self.daemon.port.to_string(), name]),
            "createdb",
        )
    }

    /// `postgres://auditlog@127.0.0.1:PORT/auditlog`.
    pub fn url(&self) -> String {
        self.url_of("auditlog")
    }

    /// The URL of database `name` on this server.
    pub fn url_of(&self, name: &str) -> String {
        format!("postgres://auditlog@127.0.0.1:{}/{name}", self.daemon.port)
    }

    /// Creates a new database (`unique_name(prefix)`) and returns its URL.
    pub fn fresh_database(&self, prefix: &str) -> Result<String> {
        let name = unique_name(prefix);
        self.createdb(&name)?;
        Ok(self.url_of(&name))
    }

    /// Its port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.daemon.port
    }

    /// Stops the server (fast shutdown: open sessions are disconnected); its data stays.
    /// Stopping a stopped server does nothing.
    pub fn stop(&self) -> Result<()> {
        self.daemon.stop(Signal::INT)
    }

    /// Starts the server again on the same port with the same data (stopping it first if it
    /// runs); returns once it accepts connections.
    pub fn restart(&self) -> Result<()> {
        self.stop()?;
        self.launch()
    }

    /// SIGKILL to the server (a crash: the next [`PostgresServer::restart`] recovers).
    pub fn kill(&self) -> Result<()> {
        self.daemon.stop(Signal::KILL)
    }

    /// The last lines of the server's log.
    pub fn log_tail(&self) -> String {
        self.daemon.log_tail()
    }
}

impl Drop for PostgresServer {
    fn drop(&mut self) {
        // Immediate shutdown: quick, and it removes the shared memory (a SIGKILL would not).
        let _ = self.daemon.stop(Signal::QUIT);
    }
}

/// A private MariaDB server (see the module doc). Killed, its data deleted, on drop.
#[derive(Debug)]
pub struct MariaDbServer {
    daemon: Daemon,
    socket: PathBuf,
}

/// The server options of [`MariaDbServer`] (also used to make the template).
const MARIADB_OPTIONS: &[&str] = &[
    "--skip-name-resolve",
    "--innodb-log-file-size=16M",
    "--innodb-buffer-pool-size=64M",
    "--innodb-flush-log-at-trx-commit=0",
    "--innodb-doublewrite=0",
    "--sync-binlog=0",
    "--max-connections=500",
    "--character-set-server=utf8mb4",
    "--collation-server=utf8mb4_bin",
];

impl MariaDbServer {
    /// Copies the template data directory (made by `mariadb-install-db` on first use), starts
    /// `mariadbd` on a free loopback port and creates the user and database `auditlog`;
    /// returns once it accepts connections. Blocking (about 1 s).
    /// A failed start is retried on new ports (up to 3 times).
    pub fn start() -> Result<Self> {
        let template = mariadb_template()?;
        start_with_retries("MariaDbServer", || Self::try_start(&template))
    }

    fn try_start(template: &Path) -> Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("auditlog-mariadb-")
            .tempdir()
            .context("temporary directory for MariaDB")?;
        let data = dir.path().join("data");
        copy_dir(template, &data).context("copy the MariaDB template")?;
        let socket = dir.path().join("mysqld.sock");
        let log = dir.path().join("mariadb.log");
        let port = free_ports(1)?[0];
        let mut args = vec![
            "--no-defaults".to_string(),
            format!("--datadir={}", data.display()),
            format!("--port={port}"),
            "--bind-address=127.0.0.1".into(),
            format!("--socket={}", socket.display()),
            format!("--pid-file={}", dir.path().join("mariadb.pid").display()),
            format!("--log-error={}", log.display()),
        ];
        args.extend(MARIADB_OPTIONS.iter().map(|o| o.to_string()));
        if is_root() {
            args.push("--user=root".into());
        }
        let daemon = Daemon {
            what: "MariaDB",
            program: mariadbd()?,
            args,
            user: None,
            port,
            log,
            child: Mutex::new(None),
            _dir: dir,
        };
        let server = Self { daemon, socket };
        server.launch()?;
        server.root_sql(
            "CREATE USER IF NOT EXISTS 'auditlog'@'%'; \
             GRANT ALL ON *.* TO 'auditlog'@'%' WITH GRANT OPTION; \
             CREATE DATABASE IF NOT EXISTS auditlog",
        )?;
        Ok(server)
    }

    fn launch(&self) -> Result<()> {
        let mut child = self.daemon.child()?;
        self.daemon.spawn(&mut child)?;
        let mut ping = self.root_client();
        ping.args(["-e", "SELECT 1"]);
        self.daemon.wait_ready(&mut child, || quiet(&mut ping))
    }

    /// The `mariadb` client connected to this server as root through its socket.
    fn root_client(&self) -> Command {
        let mut cmd = Command::new("mariadb");
        cmd.arg("--no-defaults")
            .arg(format!("--socket={}", self.socket.display()))
            .arg("-uroot");
        cmd
    }

    /// Runs `sql` as root.
    fn root_sql(&self, sql: &str) -> Result<()> {
        run(self.root_client().args(["-e", sql]), "mariadb (setup)")
    }

    /// `mysql://auditlog@127.0.0.1:PORT/auditlog`.
    pub fn url(&self) -> String {
        self.url_of("auditlog")
    }

    /// The URL of database `name` on this server.
    pub fn url_of(&self, name: &str) -> String {
        format!("mysql://auditlog@127.0.0.1:{}/{name}", self.daemon.port)
    }

    /// Creates a new database (`unique_name(prefix)`) and returns its URL.
    pub fn fresh_database(&self, prefix: &str) -> Result<String> {
        let name = unique_name(prefix);
        check_name(&name)?;
        self.root_sql(&format!("CREATE DATABASE `{name}`"))?;
        Ok(self.url_of(&name))
    }

    /// Its port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.daemon.port
    }

    /// Stops the server (SIGTERM: a clean shutdown); its data stays. Stopping a stopped
    /// server does nothing.
    pub fn stop(&self) -> Result<()> {
        self.daemon.stop(Signal::TERM)
    }

    /// Starts the server again on the same port with the same data (stopping it first if it
    /// runs); returns once it accepts connections.
    pub fn restart(&self) -> Result<()> {
        self.stop()?;
        self.launch()
    }

    /// SIGKILL to the server (a crash: the next [`MariaDbServer::restart`] recovers).
    pub fn kill(&self) -> Result<()> {
        self.daemon.stop(Signal::KILL)
    }

    /// The last lines of the server's log.
    pub fn log_tail(&self) -> String {
        self.daemon.log_tail()
    }
}

impl Drop for MariaDbServer {
    fn drop(&mut self) {
        let _ = self.daemon.stop(Signal::KILL);
    }
}

/// What the two servers share: one server process, started and stopped by signal, with its
/// directory (deleted on drop, after the owner stopped the process).
#[derive(Debug)]
struct Daemon {
    what: &'static str,
    program: PathBuf,
    args: Vec<String>,
    /// Uid and gid to run as (root running PostgreSQL).
    user: Option<(u32, u32)>,
    port: u16,
    log: PathBuf,
    child: Mutex<Option<Child>>,
    /// Deleted on drop (after the owner's `Drop` stopped the process).
    _dir: tempfile::TempDir,
}

impl Daemon {
    fn child(&self) -> Result<MutexGuard<'_, Option<Child>>> {
        self.child
            .lock()
            .map_err(|_| anyhow::anyhow!("{} server state poisoned", self.what))
    }

    /// Starts the process (its output appended to the log).
    fn spawn(&self, child: &mut Option<Child>) -> Result<()> {
        ensure!(child.is_none(), "{} is running already", self.what);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .with_context(|| format!("open {}", self.log.display()))?;
        let mut cmd = Command::new(&self.program);
        cmd.args(&self.args)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        as_user(&mut cmd, self.user);
        *child = Some(
            cmd.spawn()
                .with_context(|| format!("starting {}", self.program.display()))?,
        );
        Ok(())
    }

    /// Waits until `ready()` (the server accepts connections), the process exits, or
    /// [`READY_TIMEOUT`]; the latter two are errors with the log's tail (the process killed).
    fn wait_ready(
        &self,
        child: &mut MutexGuard<'_, Option<Child>>,
        mut ready: impl FnMut() -> bool,
    ) -> Result<()> {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if ready() {
                return Ok(());
            }
            let process = child.as_mut().context("server not started")?;
            if let Some(status) = process.try_wait()? {
                **child = None;
                bail!(
                    "{} exited ({status}) before accepting connections on port {}:\n{}",
                    self.what,
                    self.port,
                    self.log_tail()
                );
            }
            if Instant::now() > deadline {
                let _ = process.kill();
                let _ = process.wait();
                **child = None;
                bail!(
                    "{} did not accept connections on port {} within {READY_TIMEOUT:?}:\n{}",
                    self.what,
                    self.port,
                    self.log_tail()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Sends `signal` and waits for the exit ([`STOP_TIMEOUT`], then SIGKILL).
    fn stop(&self, signal: Signal) -> Result<()> {
        let mut guard = self.child()?;
        let Some(mut child) = guard.take() else {
            return Ok(());
        };
        if child.try_wait()?.is_some() {
            return Ok(());
        }
        let pid = i32::try_from(child.id())
            .ok()
            .and_then(Pid::from_raw)
            .context("server PID")?;
        let _ = rustix::process::kill_process(pid, signal);
        let deadline = Instant::now() + STOP_TIMEOUT;
        while child.try_wait()?.is_none() {
            if Instant::now() > deadline {
                let _ = child.kill();
                child.wait()?;
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let tail = lines[lines.len().saturating_sub(40)..].join("\n");
        format!("--- {} ({}) ---\n{tail}", self.log.display(), self.what)
    }
}

fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// Uid and gid of a system user (from `/etc/passwd`).
fn system_user(name: &str) -> Result<(u32, u32)> {
    let passwd = std::fs::read_to_string("/etc/passwd").context("read /etc/passwd")?;
    passwd
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .find(|f| f.len() > 3 && f[0] == name)
        .and_then(|f| Some((f[2].parse().ok()?, f[3].parse().ok()?)))
        .with_context(|| {
            format!("no user {name:?} to run PostgreSQL as (root cannot; install `postgresql`)")
        })
}

fn as_user(cmd: &mut Command, user: Option<(u32, u32)>) {
    use std::os::unix::process::CommandExt as _;
    if let Some((uid, gid)) = user {
        cmd.uid(uid).gid(gid);
    }
}

/// Runs `cmd` to completion; a failure carries its output.
fn run(cmd: &mut Command, what: &str) -> Result<()> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running {what}"))?;
    ensure!(
        out.status.success(),
        "{what} failed ({}): {}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

/// Whether `cmd` succeeds (output discarded).
fn quiet(cmd: &mut Command) -> bool {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn check_name(name: &str) -> Result<()> {
    ensure!(
        !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
        "database name {name:?}: only a-z, 0-9 and _"
    );
    Ok(())
}

/// `TEST_POSTGRES_BIN`, else the newest `/usr/lib/postgresql/<version>/bin` with `initdb`.
fn postgres_bin() -> Result<PathBuf> {
    if let Some(dir) = std::env::var_os("TEST_POSTGRES_BIN") {
        return Ok(PathBuf::from(dir));
    }
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    found.sort();
    found
        .pop()
        .map(|(_, bin)| bin)
        .context("no PostgreSQL server in /usr/lib/postgresql/*/bin (apt-get install postgresql)")
}

fn mariadbd() -> Result<PathBuf> {
    ["/usr/sbin/mariadbd", "/usr/bin/mariadbd"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .context("no mariadbd in /usr/sbin or /usr/bin (apt-get install mariadb-server)")
}

/// The template data directory of this machine's MariaDB for this user, made by
/// `mariadb-install-db` the first time (into a temporary name, then renamed: concurrent test
/// processes each make one, the first rename wins).
fn mariadb_template() -> Result<PathBuf> {
    let program = mariadbd()?;
    let out = Command::new(&program)
        .arg("--version")
        .output()
        .context("mariadbd --version")?;
    let version: String = String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .skip_while(|w| *w != "Ver")
        .nth(1)
        .unwrap_or("unknown")
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    let uid = rustix::process::geteuid().as_raw();
    let name = format!("mariadb-template-{version}-uid{uid}");
    // The workspace's cache, or the temporary directory when this user cannot write there.
    let caches = [
        workspace_root().join(".data/cache"),
        std::env::temp_dir().join("auditlog-cache"),
    ];
    if let Some(found) = caches
        .iter()
        .map(|c| c.join(&name))
        .find(|t| t.join("mysql").is_dir())
    {
        return Ok(found);
    }
    let (cache, building) = caches
        .iter()
        .find_map(|c| {
            std::fs::create_dir_all(c).ok()?;
            let t = tempfile::Builder::new()
                .prefix("mariadb-template-")
                .tempdir_in(c)
                .ok()?;
            Some((c, t))
        })
        .context("no writable cache directory for the MariaDB template")?;
    let template = cache.join(&name);
    let data = building.path().join("data");
    let mut install = Command::new("mariadb-install-db");
    install
        .arg("--no-defaults")
        .arg(format!("--datadir={}", data.display()))
        .args(["--auth-root-authentication-method=normal", "--skip-test-db"])
        .args(MARIADB_OPTIONS);
    if is_root() {
        install.arg("--user=root");
    }
    run(&mut install, "mariadb-install-db")?;
    match std::fs::rename(&data, &template) {
        Ok(()) => {}
        Err(_) if template.join("mysql").is_dir() => {} // another process was first
        Err(e) => return Err(e).context("install the MariaDB template"),
    }
    Ok(template)
}

fn copy_dir(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), &target)
                .with_context(|| format!("copy {}", entry.path().display()))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postgres_starts_stops_and_restarts_with_its_data() -> Result<()> {
        let pg = PostgresServer::start()?;
        let psql = |sql: &str| -> Result<String> {
            let out = Command::new(pg.bin.join("psql"))
                .args([
                    "-X",
                    "-A",
                    "-t",
                    "-v",
                    "ON_ERROR_STOP=1",
                    &pg.url(),
                    "-c",
                    sql,
                ])
                .output()?;
            ensure!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
        };
        psql("CREATE TABLE t (x INT); INSERT INTO t VALUES (7)")?;
        pg.stop()?;
        assert!(psql("SELECT 1").is_err(), "a stopped server answered");
        pg.restart()?;
        assert_eq!(psql("SELECT x FROM t")?, "7");
        pg.kill()?;
        pg.restart()?;
        assert_eq!(psql("SELECT x FROM t")?, "7");
        let other = pg.fresh_database("other")?;
        assert!(other.starts_with(&format!(
            "postgres://auditlog@127.0.0.1:{}/other_",
            pg.port()
        )));
        Ok(())
    }

    #[test]
    fn mariadb_starts_stops_and_restarts_with_its_data() -> Result<()> {
        let db = MariaDbServer::start()?;
        let sql = |sql: &str| -> Result<String> {
            let out = Command::new("mariadb")
                .args(["--no-defaults", "-h127.0.0.1", "-uauditlog", "-N", "-B"])
                .arg(format!("-P{}", db.port()))
                .args(["auditlog", "-e", sql])
                .output()?;
            ensure!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
        };
        sql("CREATE TABLE t (x INT) ENGINE=InnoDB; INSERT INTO t VALUES (7)")?;
        db.stop()?;
        assert!(sql("SELECT 1").is_err(), "a stopped server answered");
        db.restart()?;
        assert_eq!(sql("SELECT x FROM t")?, "7");
        db.kill()?;
        db.restart()?;
        assert_eq!(sql("SELECT x FROM t")?, "7");
        let other = db.fresh_database("other")?;
        assert!(other.starts_with(&format!("mysql://auditlog@127.0.0.1:{}/other_", db.port())));
        Ok(())
    }
}
