//! Processes: PID files, ownership, signals, ports and locks.
//!
//! Every process the stack starts carries `STACK_INSTANCE=<data dir>` in its environment: that
//! is how `down`, `stop` and a second `up` recognise their own PIDs (a recycled PID never
//! matches). Children run in a session of their own (`setsid`), outlive the command that
//! started them, and are reaped by it while it runs (the test kit's process lives on).

use std::fs::{File, OpenOptions};
use std::io;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};
use procfs::process::{ProcState, Process};
use rustix::process::{Pid, Signal};

/// The environment variable marking a stack's processes.
pub const INSTANCE_VAR: &str = "STACK_INSTANCE";
/// The environment variable naming the component a process is (`clickhouse`, `broker`, ...).
pub const COMPONENT_VAR: &str = "STACK_COMPONENT";

/// The PID in a PID file's text (`None` when it is not a PID).
pub fn parse_pid(text: &str) -> Option<u32> {
    text.trim().parse().ok().filter(|&pid| pid > 0)
}

/// Whether `pid` is alive (not a zombie) and carries `STACK_INSTANCE=<instance>`.
pub fn is_ours(pid: u32, instance: &Path) -> bool {
    let Ok(process) = Process::new(pid as i32) else {
        return false;
    };
    if !state_alive(&process) {
        return false;
    }
    process.environ().is_ok_and(|env| {
        env.get(std::ffi::OsStr::new(INSTANCE_VAR))
            .is_some_and(|v| Path::new(v) == instance)
    })
}

/// Whether `pid` is a live process (not a zombie). Once a PID is known to be ours this is the
/// check to watch it with: its environment is briefly unreadable while it execs (`setsid`
/// execs the component), and a starting component must not be taken for a dead one then.
pub fn alive(pid: u32) -> bool {
    reap();
    let Some(p) = to_pid(pid) else {
        return false;
    };
    if rustix::process::test_kill_process(p).is_err() {
        return false;
    }
    Process::new(pid as i32).is_ok_and(|process| state_alive(&process))
}

/// Whether `pid` has exited entirely, every thread of it, so that its sockets and ports are
/// released: no such process, or a zombie without live threads. A killed multithreaded process
/// (ClickHouse) shows its leader as a zombie (not [`alive`]) while its other threads are still
/// exiting and its listening sockets still accept connections.
pub fn gone(pid: u32) -> bool {
    reap();
    match Process::new(pid as i32) {
        Err(_) => true,
        Ok(process) => {
            !state_alive(&process) && process.tasks().map_or(true, |t| t.flatten().count() <= 1)
        }
    }
}

/// Waits until `pid` is [`gone`], `timeout` at most; whether it is.
pub fn wait_gone(pid: u32, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while !gone(pid) {
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    true
}

fn state_alive(process: &Process) -> bool {
    process
        .stat()
        .ok()
        .and_then(|s| s.state().ok())
        .is_some_and(|s| s != ProcState::Zombie && s != ProcState::Dead)
}

fn to_pid(pid: u32) -> Option<Pid> {
    Pid::from_raw(i32::try_from(pid).ok()?)
}

/// Sends `signal` to `pid`; a process that is already gone is no error.
pub fn signal(pid: u32, signal: Signal) {
    if let Some(p) = to_pid(pid) {
        let _ = rustix::process::kill_process(p, signal);
    }
}

/// SIGKILL to `pid` (gone already: no error).
pub fn sigkill(pid: u32) {
    signal(pid, Signal::KILL);
}

/// The PID recorded in `pid_file` when that process is still this instance's; a stale file
/// (no such process, or a recycled PID) is removed.
pub fn running_pid(pid_file: &Path, instance: &Path) -> Option<u32> {
    let text = std::fs::read_to_string(pid_file).ok()?;
    match parse_pid(&text) {
        Some(pid) if is_ours(pid, instance) => Some(pid),
        _ => {
            let _ = std::fs::remove_file(pid_file);
            None
        }
    }
}

/// The processes (PID, command name) carrying `STACK_INSTANCE=<instance>`, including those
/// whose PID file was lost; only those started as `component` when given.
pub fn instance_processes(instance: &Path, component: Option<&str>) -> Vec<(u32, String)> {
    let Ok(all) = procfs::process::all_processes() else {
        return Vec::new();
    };
    all.flatten()
        .filter(|p| is_ours(p.pid as u32, instance))
        .filter(|p| {
            component.is_none_or(|c| {
                p.environ().is_ok_and(|env| {
                    env.get(std::ffi::OsStr::new(COMPONENT_VAR))
                        .is_some_and(|v| v == c)
                })
            })
        })
        .map(|p| {
            let name = p.stat().map(|s| s.comm).unwrap_or_default();
            (p.pid as u32, name)
        })
        .collect()
}

/// Whether any process's command line contains `needle` (another `cargo install` running).
pub fn find_command(needle: &str) -> Option<u32> {
    let me = std::process::id();
    procfs::process::all_processes()
        .ok()?
        .flatten()
        .find(|p| {
            p.pid as u32 != me
                && p.cmdline()
                    .is_ok_and(|args| args.join(" ").contains(needle))
        })
        .map(|p| p.pid as u32)
}

/// Children this process started and has not reaped yet.
static CHILDREN: Mutex<Vec<Child>> = Mutex::new(Vec::new());

/// Reaps the children that exited (a long-lived caller, the test kit, must not collect zombies).
pub fn reap() {
    if let Ok(mut children) = CHILDREN.lock() {
        children.retain_mut(|c| matches!(c.try_wait(), Ok(None)));
    }
}

/// How to start one process of a stack.
#[derive(Debug)]
pub struct Spawn<'a> {
    pub program: &'a Path,
    pub args: &'a [String],
    /// Added to this process's environment.
    pub env: &'a [(&'a str, String)],
    /// Working directory (the data dir).
    pub dir: &'a Path,
    /// The `STACK_INSTANCE` marker (the data dir).
    pub instance: &'a Path,
    /// The `STACK_COMPONENT` marker.
    pub component: &'a str,
    /// stdout and stderr are appended to it.
    pub logfile: &'a Path,
    pub pid_file: &'a Path,
}

/// Starts a process detached: its own session, stdin closed, the markers and `env` added to
/// this process's environment. Writes its PID to the PID file and returns it.
pub fn spawn(sp: &Spawn<'_>) -> Result<u32> {
    let Spawn {
        program,
        args,
        env,
        dir,
        instance,
        component,
        logfile,
        pid_file,
    } = *sp;
    for d in [pid_file.parent(), logfile.parent()].into_iter().flatten() {
        std::fs::create_dir_all(d).with_context(|| format!("create {}", d.display()))?;
    }
    let log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(logfile)
        .with_context(|| format!("open {}", logfile.display()))?;
    // `setsid` execs the program without forking (a child of ours is no process-group
    // leader), so the PID is the component's own. Descriptors are close-on-exec: no lock leaks.
    let child = Command::new("setsid")
        .arg(program)
        .args(args)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .env(INSTANCE_VAR, instance)
        .env(COMPONENT_VAR, component)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .with_context(|| format!("start {} (setsid, util-linux)", program.display()))?;
    let pid = child.id();
    if let Ok(mut children) = CHILDREN.lock() {
        children.push(child);
    }
    std::fs::write(pid_file, format!("{pid}\n"))
        .with_context(|| format!("write {}", pid_file.display()))?;
    wait_marked(pid, instance);
    Ok(pid)
}

/// Waits (10 s at most) until `pid` shows the instance marker or exits: its environment is
/// unreadable while it execs, and a check right after spawning must not take a starting
/// component for a stranger.
fn wait_marked(pid: u32, instance: &Path) {
    for _ in 0..200 {
        if is_ours(pid, instance) || !alive(pid) {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Whether something accepts TCP connections on 127.0.0.1:`port`.
pub fn port_open(port: u16) -> bool {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    TcpStream::connect_timeout(&addr, Duration::from_secs(2)).is_ok()
}

/// Fails with the port named (and its holder, when `ss` can tell) when it is already taken.
pub fn require_free_port(port: u16, what: &str) -> Result<()> {
    if !port_open(port) {
        return Ok(());
    }
    let holder = Command::new("ss")
        .args(["-Hltnp", &format!("sport = :{port}")])
        .stderr(Stdio::null())
        .output()
        .ok()
        .map(|o| crate::output::head(&String::from_utf8_lossy(&o.stdout), 3))
        .unwrap_or_default();
    let holder = if holder.is_empty() {
        String::new()
    } else {
        format!(":\n{holder}")
    };
    bail!(
        "port {port} ({what}) is already in use by another process{holder}\n\
         Stop that process or choose another port (see docs/local-stack.md: STACK_*_PORT)."
    )
}

/// An exclusive `flock` on a file, held until dropped.
#[derive(Debug)]
pub struct Lock {
    _file: File,
}

/// Takes the lock on `path` (created when missing), waiting at most `wait`; `busy` names the
/// holder in the error.
pub fn lock(path: &Path, wait: Duration, busy: &str) -> Result<Lock> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    }
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .with_context(|| format!("open {}", path.display()))?;
    let deadline = Instant::now() + wait;
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(Lock { _file: file }),
            Err(std::fs::TryLockError::WouldBlock) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(200));
            }
            Err(std::fs::TryLockError::WouldBlock) => bail!("{busy}"),
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(e).with_context(|| format!("lock {}", path.display()))
            }
        }
    }
}

/// `program` found on PATH.
pub fn which(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(program))
        .find(|p| is_executable(p))
}

/// Whether `path` is an executable file.
pub fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Writes `text` to `path` readable by its owner only (secrets: tokens).
pub fn write_private(path: &Path, text: &str) -> io::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut f = OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sleeper(instance: &Path) -> Child {
        let child = Command::new("sleep")
            .arg("30")
            .env(INSTANCE_VAR, instance)
            .spawn()
            .unwrap();
        wait_marked(child.id(), instance);
        child
    }

    #[test]
    fn pid_files_hold_one_positive_number() {
        assert_eq!(parse_pid("1234\n"), Some(1234));
        assert_eq!(parse_pid(" 7 "), Some(7));
        assert_eq!(parse_pid(""), None);
        assert_eq!(parse_pid("0"), None);
        assert_eq!(parse_pid("12ab"), None);
        assert_eq!(parse_pid("-5"), None);
    }

    #[test]
    fn ownership_follows_the_instance_marker_and_ends_with_the_process() {
        let dir = tempfile::tempdir().unwrap();
        let mut child = sleeper(dir.path());
        let pid = child.id();
        assert!(is_ours(pid, dir.path()));
        assert!(!is_ours(pid, Path::new("/elsewhere")));
        assert!(alive(pid));
        assert!(!gone(pid));
        assert!(instance_processes(dir.path(), None)
            .iter()
            .any(|(p, name)| *p == pid && name == "sleep"));
        sigkill(pid);
        // A zombie (killed, not reaped yet) is neither alive nor ours.
        let deadline = Instant::now() + Duration::from_secs(5);
        while alive(pid) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(!alive(pid));
        assert!(!is_ours(pid, dir.path()));
        child.wait().unwrap();
        assert!(gone(pid) && wait_gone(pid, Duration::from_secs(1)));
        assert!(!is_ours(std::process::id(), dir.path()));
    }

    #[test]
    fn running_pid_removes_stale_files() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("x.pid");
        let mut child = sleeper(dir.path());
        std::fs::write(&file, format!("{}\n", child.id())).unwrap();
        assert_eq!(running_pid(&file, dir.path()), Some(child.id()));
        // Someone else's PID (this test process has no marker): stale.
        std::fs::write(&file, format!("{}\n", std::process::id())).unwrap();
        assert_eq!(running_pid(&file, dir.path()), None);
        assert!(!file.exists());
        std::fs::write(&file, "garbage").unwrap();
        assert_eq!(running_pid(&file, dir.path()), None);
        assert!(!file.exists());
        assert_eq!(running_pid(&file, dir.path()), None);
        child.kill().unwrap();
        child.wait().unwrap();
    }

    #[test]
    fn spawned_processes_are_detached_marked_and_logged() {
        let dir = tempfile::tempdir().unwrap();
        let pid_file = dir.path().join("run/echo.pid");
        let logfile = dir.path().join("logs/echo.log");
        let args = [
            "-c".to_string(),
            "echo \"hi $GREETING $STACK_INSTANCE\"; sleep 30".to_string(),
        ];
        let pid = spawn(&Spawn {
            program: Path::new("sh"),
            args: &args,
            env: &[("GREETING", "there".into())],
            dir: dir.path(),
            instance: dir.path(),
            component: "echo",
            logfile: &logfile,
            pid_file: &pid_file,
        })
        .unwrap();
        assert_eq!(
            parse_pid(&std::fs::read_to_string(&pid_file).unwrap()),
            Some(pid)
        );
        let deadline = Instant::now() + Duration::from_secs(5);
        while std::fs::read_to_string(&logfile)
            .unwrap_or_default()
            .is_empty()
        {
            assert!(Instant::now() < deadline, "no output");
            std::thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(
            std::fs::read_to_string(&logfile).unwrap(),
            format!("hi there {}\n", dir.path().display())
        );
        assert_eq!(running_pid(&pid_file, dir.path()), Some(pid));
        let pids: Vec<u32> = instance_processes(dir.path(), Some("echo"))
            .into_iter()
            .map(|(p, _)| p)
            .collect();
        // sh and the sleep it forked (which inherited the markers).
        assert_eq!(pids.len(), 2);
        assert!(pids.contains(&pid));
        assert!(instance_processes(dir.path(), Some("other")).is_empty());
        let sid = Process::new(pid as i32).unwrap().stat().unwrap().session;
        assert_eq!(sid, pid as i32, "own session");
        for p in pids {
            sigkill(p);
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while alive(pid) {
            assert!(Instant::now() < deadline, "still alive");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    #[test]
    fn a_lock_is_exclusive_until_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run/stack.lock");
        // Waits of a few seconds where the lock must be had: a child another test forks holds a
        // copy of the descriptor (and so the lock) until it execs.
        let held = lock(&path, Duration::from_secs(5), "busy").unwrap();
        let e = lock(&path, Duration::from_millis(300), "another run holds it").unwrap_err();
        assert_eq!(e.to_string(), "another run holds it");
        drop(held);
        lock(&path, Duration::from_secs(5), "busy").unwrap();
    }

    #[test]
    fn a_taken_port_is_named() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        assert!(port_open(port));
        let e = require_free_port(port, "ClickHouse HTTP, STACK_CH_HTTP_PORT").unwrap_err();
        assert!(
            e.to_string().starts_with(&format!(
                "port {port} (ClickHouse HTTP, STACK_CH_HTTP_PORT) is already in use"
            )),
            "{e}"
        );
        drop(listener);
        require_free_port(port, "x").unwrap();
    }
}
