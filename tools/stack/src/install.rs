//! Installation, once per machine, cached outside the repository (`STACK_CACHE_DIR`): the
//! ClickHouse server library from the `chdb` wheel on PyPI, the Tansu broker built by
//! `cargo install`, and (dev profile) the release build of `auditlog`. Every long step prints
//! a progress line at least every 30 s.

use std::io::{BufRead as _, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};

use crate::output::Log;
use crate::process;
use crate::settings::{Settings, CHDB_VERSION, TANSU_VERSION};

/// Runs `f` holding `<cache>/install.lock` (two stacks never install at once).
pub fn with_install_lock<T>(s: &Settings, f: impl FnOnce() -> Result<T>) -> Result<T> {
    let path = s.cache_dir.join("install.lock");
    let _lock = process::lock(
        &path,
        Duration::from_secs(1800),
        &format!("timed out waiting for another install ({})", path.display()),
    )?;
    f()
}

/// Makes sure the ClickHouse server library is unpacked in the cache.
pub fn install_chdb(s: &Settings, log: &Log) -> Result<()> {
    if s.chdb_lib().is_file() {
        return Ok(());
    }
    let dl = s.cache_dir.join("chdb-dl");
    std::fs::create_dir_all(&dl).with_context(|| format!("create {}", dl.display()))?;
    let wheel = match find_wheel(&dl) {
        Some(w) => w,
        None => {
            log.info(format!(
                "clickhouse: downloading the chdb {CHDB_VERSION} wheel (ClickHouse 25.8, 179 MB) from PyPI into {}",
                dl.display()
            ));
            download_wheel(&dl, log)?;
            find_wheel(&dl).with_context(|| {
                format!(
                    "the chdb {CHDB_VERSION} wheel did not download into {}",
                    dl.display()
                )
            })?
        }
    };
    let dest = s.chdb_dir();
    log.info(format!(
        "clickhouse: unpacking the server library (825 MB) into {}",
        dest.display()
    ));
    let tmp = PathBuf::from(format!("{}.tmp.{}", dest.display(), std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    unpack_server_library(&wheel, &tmp)?;
    let _ = std::fs::remove_dir_all(&dest);
    std::fs::rename(&tmp, &dest)
        .with_context(|| format!("move {} to {}", tmp.display(), dest.display()))?;
    log.info("clickhouse: library ready");
    Ok(())
}

/// The downloaded wheel in `dir`, if any.
fn find_wheel(dir: &Path) -> Option<PathBuf> {
    let prefix = format!("chdb-{CHDB_VERSION}-");
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(&prefix) && n.ends_with(".whl"))
        })
        .collect();
    found.sort();
    found.into_iter().next()
}

/// A file of a release in PyPI's JSON API (`https://pypi.org/pypi/NAME/json`).
#[derive(Debug, Clone, serde::Deserialize)]
pub struct PypiFile {
    pub filename: String,
    pub packagetype: String,
    pub url: String,
    pub size: u64,
    pub digests: Digests,
}

#[derive(Debug, Clone, serde::Deserialize)]
pub struct Digests {
    pub sha256: String,
}

#[derive(Debug, serde::Deserialize)]
struct Project {
    releases: std::collections::HashMap<String, Vec<PypiFile>>,
}

/// The manylinux x86-64 wheel of `version` in a project's description (PyPI JSON API answer;
/// the project endpoint, which mirrors and proxies serve more often than the per-version one).
pub fn pick_wheel(project_json: &str, version: &str) -> Result<PypiFile> {
    let mut project: Project =
        serde_json::from_str(project_json).context("parse PyPI's project description")?;
    project
        .releases
        .remove(version)
        .with_context(|| format!("no release {version} on PyPI"))?
        .into_iter()
        .find(|f| {
            f.packagetype == "bdist_wheel"
                && f.filename.contains("manylinux")
                && f.filename.contains("x86_64")
        })
        .context("no manylinux x86_64 wheel on PyPI")
}

/// Downloads the chdb wheel from PyPI into `dir`, checking its SHA-256, with a progress line
/// every 10 % and at least every 30 s.
fn download_wheel(dir: &Path, log: &Log) -> Result<()> {
    use sha2::Digest as _;
    use std::io::Read as _;
    let client = reqwest::blocking::Client::builder()
        .connect_timeout(Duration::from_secs(60))
        .timeout(Duration::from_secs(3600))
        .build()
        .context("HTTP client")?;
    let meta_url = "https://pypi.org/pypi/chdb/json";
    let meta = client
        .get(meta_url)
        .send()
        .and_then(reqwest::blocking::Response::error_for_status)
        .and_then(reqwest::blocking::Response::text)
        .with_context(|| format!("GET {meta_url}"))?;
    let file = pick_wheel(&meta, CHDB_VERSION).context("chdb on PyPI")?;
    // Absolute on PyPI; relative to the description on some mirrors.
    let url = reqwest::Url::parse(meta_url)
        .and_then(|base| base.join(&file.url))
        .with_context(|| format!("bad wheel URL {}", file.url))?;
    let target = dir.join(&file.filename);
    let part = dir.join(format!("{}.part", file.filename));
    let mut body = client
        .get(url.clone())
        .send()
        .and_then(reqwest::blocking::Response::error_for_status)
        .with_context(|| format!("GET {url}"))?;
    let mut out =
        std::fs::File::create(&part).with_context(|| format!("create {}", part.display()))?;
    let mut sha = sha2::Sha256::new();
    let (mut done, mut shown_tenth, mut last) = (0u64, None, Instant::now());
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = body
            .read(&mut buf)
            .with_context(|| format!("download {url}"))?;
        if n == 0 {
            break;
        }
        out.write_all(&buf[..n])?;
        sha.update(&buf[..n]);
        done += n as u64;
        let pct = done * 100 / file.size.max(1);
        if shown_tenth != Some(pct / 10) || last.elapsed() >= Duration::from_secs(30) {
            shown_tenth = Some(pct / 10);
            last = Instant::now();
            log.info(format!(
                "clickhouse:   {}: {pct}% of {} MB",
                file.filename,
                file.size >> 20
            ));
        }
    }
    out.flush()?;
    if hex::encode(sha.finalize()) != file.digests.sha256.to_lowercase() {
        let _ = std::fs::remove_file(&part);
        bail!("{}: sha256 mismatch", file.filename);
    }
    std::fs::rename(&part, &target)
        .with_context(|| format!("move {} to {}", part.display(), target.display()))?;
    Ok(())
}

const SERVER_LIBRARY: &str = "chdb/_chdb.abi3.so";

/// Whether a wheel entry is part of the server: the library and the libraries beside it.
pub fn is_server_file(name: &str) -> bool {
    name == SERVER_LIBRARY || (name.starts_with("chdb.libs/") && !name.ends_with('/'))
}

/// Extracts the server library (and `chdb.libs/`) from `wheel` into `dest`.
pub fn unpack_server_library(wheel: &Path, dest: &Path) -> Result<()> {
    let file = std::fs::File::open(wheel).with_context(|| format!("open {}", wheel.display()))?;
    let mut zip = zip::ZipArchive::new(std::io::BufReader::new(file))
        .with_context(|| format!("read {}", wheel.display()))?;
    if zip.index_for_name(SERVER_LIBRARY).is_none() {
        bail!("{} has no {SERVER_LIBRARY}", wheel.display());
    }
    for i in 0..zip.len() {
        let mut entry = zip.by_index(i)?;
        let name = entry.name()?.into_owned();
        if !is_server_file(&name) {
            continue;
        }
        let rel = entry
            .enclosed_name()
            .with_context(|| format!("unsafe path {name} in the wheel"))?;
        let path = dest.join(rel);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
        }
        let mut out =
            std::fs::File::create(&path).with_context(|| format!("create {}", path.display()))?;
        std::io::copy(&mut entry, &mut out)
            .with_context(|| format!("extract {}", path.display()))?;
    }
    Ok(())
}

/// The broker binary: `STACK_TANSU_BIN`, `tansu` on PATH, else `$CARGO_HOME/bin/tansu`.
pub fn tansu_bin(s: &Settings) -> PathBuf {
    if let Some(bin) = &s.tansu_bin {
        return bin.clone();
    }
    process::which("tansu").unwrap_or_else(|| cargo_home().join("bin/tansu"))
}

fn cargo_home() -> PathBuf {
    std::env::var_os("CARGO_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cargo")
        })
}

/// Whether the broker binary is there and is the expected version.
pub fn tansu_ok(s: &Settings) -> bool {
    let bin = tansu_bin(s);
    process::is_executable(&bin)
        && Command::new(&bin)
            .arg("--version")
            .stderr(Stdio::null())
            .output()
            .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains(TANSU_VERSION))
}

/// Builds the broker with `cargo install` unless the right version is installed.
pub fn install_tansu(s: &Settings, log: &Log) -> Result<()> {
    if tansu_ok(s) {
        return Ok(());
    }
    // Another cargo install of tansu already running (another stack, a bootstrap script):
    // wait for it rather than compiling twice on two cores.
    if let Some(other) = process::find_command("cargo install tansu") {
        log.info(format!(
            "broker: a Tansu build is already running (PID {other}); waiting for it"
        ));
        while process::alive(other) {
            std::thread::sleep(Duration::from_secs(15));
            log.info(format!(
                "broker: still waiting for the Tansu build (PID {other})"
            ));
        }
        if tansu_ok(s) {
            return Ok(());
        }
    }
    if process::which("cargo").is_none() {
        bail!("cargo is needed to build the Tansu broker (install Rust: https://rustup.rs)");
    }
    let full_log = s.cache_dir.join("tansu-install.log");
    log.info(format!("broker: building Tansu {TANSU_VERSION} from crates.io (once per machine: about 15 min on 2 cores, the longest step of a first run)"));
    log.info(format!("broker: cargo install tansu@{TANSU_VERSION} --locked --features dynostore,libsql (full output: {})", full_log.display()));
    let started = Instant::now();
    let status = run_with_progress(
        "broker",
        Command::new("cargo").args([
            "install",
            &format!("tansu@{TANSU_VERSION}"),
            "--locked",
            "--features",
            "dynostore,libsql",
        ]),
        &full_log,
        log,
    )?;
    if !status.success() {
        log.show_logs(&[&full_log]);
        bail!(
            "building Tansu failed (exit {})",
            status.code().unwrap_or(-1)
        );
    }
    if !tansu_ok(s) {
        bail!(
            "Tansu installed but {} --version does not report {TANSU_VERSION}",
            tansu_bin(s).display()
        );
    }
    log.info(format!(
        "broker: Tansu installed in {}s: {}",
        started.elapsed().as_secs(),
        tansu_bin(s).display()
    ));
    Ok(())
}

/// Runs `cmd`, its output into `full_log`, and turns it into progress lines prefixed with
/// `what` (see [`Progress`]).
fn run_with_progress(
    what: &str,
    cmd: &mut Command,
    full_log: &Path,
    log: &Log,
) -> Result<std::process::ExitStatus> {
    if let Some(dir) = full_log.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut file = std::fs::File::create(full_log)
        .with_context(|| format!("create {}", full_log.display()))?;
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("run cargo")?;
    let (tx, rx) = mpsc::channel::<String>();
    let readers: Vec<_> = [
        child
            .stdout
            .take()
            .map(|o| Box::new(o) as Box<dyn std::io::Read + Send>),
        child
            .stderr
            .take()
            .map(|e| Box::new(e) as Box<dyn std::io::Read + Send>),
    ]
    .into_iter()
    .flatten()
    .map(|r| {
        let tx = tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(r).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        })
    })
    .collect();
    drop(tx);
    let started = Instant::now();
    let mut progress = Progress::default();
    loop {
        match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(line) => {
                let _ = writeln!(file, "{line}");
                for msg in progress.line(&line, started.elapsed().as_secs()) {
                    log.info(format!("{what}: {msg}"));
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                log.info(format!(
                    "{what}: {}",
                    progress.silence(started.elapsed().as_secs())
                ));
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    for r in readers {
        let _ = r.join();
    }
    Ok(child.wait()?)
}

/// Turns cargo's output into a progress line at least every 30 s (the last crates and the link
/// take minutes with no output of their own), never cargo's raw lines: only real errors
/// (`error:` / `error[E...]` lines and what follows them) are shown as they come.
#[derive(Debug, Default)]
pub struct Progress {
    compiled: u64,
    downloaded: u64,
    latest: String,
    in_error: bool,
    last_shown: u64,
}

impl Progress {
    /// The progress lines (without the `broker: ` prefix) for one line of cargo's output, at
    /// `now` seconds since the build started.
    pub fn line(&mut self, raw: &str, now: u64) -> Vec<String> {
        let line = raw.trim_start();
        if line.starts_with("error:") || line.starts_with("error[") {
            self.in_error = true;
            return vec![line.to_string()];
        }
        if line.starts_with("Downloaded ") {
            self.downloaded += 1;
            self.in_error = false;
            return Vec::new();
        }
        if let Some(rest) = line.strip_prefix("Compiling ") {
            self.in_error = false;
            let mut out = Vec::new();
            if self.compiled == 0 && self.downloaded > 0 {
                out.push(format!("downloaded {} crates; compiling", self.downloaded));
            }
            self.compiled += 1;
            self.latest = rest.split(" (").next().unwrap_or(rest).to_string();
            if now.saturating_sub(self.last_shown) >= 30 || self.compiled.is_multiple_of(50) {
                out.push(format!(
                    "build {now}s, {} crates compiled (latest: {})",
                    self.compiled, self.latest
                ));
                self.last_shown = now;
            }
            return out;
        }
        if ["Finished ", "Installed ", "Replaced "]
            .iter()
            .any(|p| line.starts_with(p))
        {
            self.in_error = false;
            return vec![line.to_string()];
        }
        if self.in_error {
            return vec![format!("  {line}")];
        }
        Vec::new()
    }

    /// The line for 30 s without output.
    pub fn silence(&mut self, now: u64) -> String {
        self.last_shown = now;
        if self.compiled == 0 {
            format!(
                "build {now}s, fetching sources ({} crates downloaded so far)",
                self.downloaded
            )
        } else {
            format!("build {now}s, {} crates compiled, still working (latest: {}; the last crates and the link take several minutes)", self.compiled, self.latest)
        }
    }
}

/// `cargo build --release -p auditlog` (dev profile, unless `STACK_AUDITLOG_BIN` names one).
pub fn build_auditlog(s: &Settings, log: &Log) -> Result<()> {
    if s.bin_given || !s.profile.release_binary {
        return Ok(());
    }
    let full_log = s.log_dir().join("auditlog-build.log");
    log.info(format!(
        "auditlog: cargo build --release -p auditlog (first build takes a few minutes; full output: {})",
        full_log.display()
    ));
    let status = run_with_progress(
        "auditlog",
        Command::new("cargo")
            .args(["build", "--release", "-p", "auditlog"])
            .current_dir(&s.root),
        &full_log,
        log,
    )?;
    if !status.success() {
        log.show_logs(&[&full_log]);
        bail!("building auditlog failed");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_manylinux_wheel_is_picked_from_pypi_json() {
        let json = r#"{"info": {}, "releases": {"3.7.1": [], "3.7.2": [
            {"filename": "chdb-3.7.2.tar.gz", "packagetype": "sdist", "url": "u0", "size": 1,
             "digests": {"sha256": "00"}},
            {"filename": "chdb-3.7.2-cp38-abi3-macosx_11_0_arm64.whl", "packagetype": "bdist_wheel",
             "url": "u1", "size": 2, "digests": {"sha256": "11"}},
            {"filename": "chdb-3.7.2-cp38-abi3-manylinux2014_x86_64.manylinux_2_17_x86_64.whl",
             "packagetype": "bdist_wheel", "url": "u2", "size": 187000000,
             "digests": {"sha256": "ab"}, "yanked": false}
        ]}}"#;
        let f = pick_wheel(json, "3.7.2").unwrap();
        assert_eq!(
            (f.url.as_str(), f.size, f.digests.sha256.as_str()),
            ("u2", 187000000, "ab")
        );
        let e = pick_wheel(json, "3.7.1").unwrap_err();
        assert!(e.to_string().contains("no manylinux x86_64 wheel"), "{e}");
        let e = pick_wheel(json, "9.9.9").unwrap_err();
        assert!(e.to_string().contains("no release 9.9.9"), "{e}");
    }

    #[test]
    fn only_the_server_files_are_unpacked() {
        let dir = tempfile::tempdir().unwrap();
        let wheel = dir.path().join("chdb-3.7.2-x.whl");
        let mut z = zip::ZipWriter::new(std::fs::File::create(&wheel).unwrap());
        let opts = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated);
        for (name, body) in [
            ("chdb/__init__.py", "py"),
            ("chdb/_chdb.abi3.so", "ELF"),
            ("chdb.libs/libstdc++.so.6", "lib"),
        ] {
            z.start_file(name, opts).unwrap();
            z.write_all(body.as_bytes()).unwrap();
        }
        z.add_directory("chdb.libs/sub/", opts).unwrap();
        z.finish().unwrap();
        let dest = dir.path().join("out");
        unpack_server_library(&wheel, &dest).unwrap();
        let read = |p: &str| std::fs::read_to_string(dest.join(p)).unwrap();
        assert_eq!(read("chdb/_chdb.abi3.so"), "ELF");
        assert_eq!(read("chdb.libs/libstdc++.so.6"), "lib");
        assert!(!dest.join("chdb/__init__.py").exists());
        assert!(!is_server_file("chdb.libs/"));

        let other = dir.path().join("other.whl");
        let mut z = zip::ZipWriter::new(std::fs::File::create(&other).unwrap());
        z.start_file("chdb/__init__.py", opts).unwrap();
        z.finish().unwrap();
        let e = unpack_server_library(&other, &dir.path().join("o2")).unwrap_err();
        assert!(e.to_string().contains("has no chdb/_chdb.abi3.so"), "{e}");
    }

    #[test]
    fn a_build_runs_with_its_output_in_a_file_and_progress_in_the_log() {
        let dir = tempfile::tempdir().unwrap();
        let full = dir.path().join("logs/build.log");
        let log = Log::capture("dev");
        let status = run_with_progress(
            "auditlog",
            Command::new("sh").args([
                "-c",
                "echo '   Compiling a v1' >&2; echo 'error: broken' >&2; echo '  --> x.rs' >&2; echo done; exit 3",
            ]),
            &full,
            &log,
        )
        .unwrap();
        assert_eq!(status.code(), Some(3));
        let out = log.captured();
        assert!(out.contains("auditlog: error: broken\n"), "{out}");
        assert!(out.contains("auditlog:   --> x.rs"), "{out}");
        let text = std::fs::read_to_string(&full).unwrap();
        for line in ["Compiling a v1", "error: broken", "done"] {
            assert!(text.contains(line), "{text}");
        }
    }

    #[test]
    fn cargo_output_becomes_progress_lines() {
        let mut p = Progress::default();
        assert_eq!(
            p.silence(30),
            "build 30s, fetching sources (0 crates downloaded so far)"
        );
        assert!(p.line("  Downloaded serde v1.0.0", 31).is_empty());
        assert!(p.line("  Downloaded tokio v1.0.0", 31).is_empty());
        assert_eq!(
            p.line("   Compiling libc v0.2.1", 32),
            ["downloaded 2 crates; compiling"]
        );
        assert_eq!(
            p.line("   Compiling serde v1.0.0 (build script)", 61),
            ["build 61s, 2 crates compiled (latest: serde v1.0.0)"]
        );
        assert!(p.line("   Compiling tokio v1.0.0", 62).is_empty());
        assert!(p.line("warning: unused", 62).is_empty());
        assert_eq!(
            p.silence(95),
            "build 95s, 3 crates compiled, still working (latest: tokio v1.0.0; the last crates and the link take several minutes)"
        );
        assert_eq!(
            p.line("error[E0425]: cannot find", 96),
            ["error[E0425]: cannot find"]
        );
        assert_eq!(p.line("  --> src/lib.rs:1:1", 96), ["  --> src/lib.rs:1:1"]);
        assert_eq!(
            p.line("    Finished `release` profile", 97),
            ["Finished `release` profile"]
        );
        assert!(p.line("  --> not an error any more", 97).is_empty());
        for i in 4..50 {
            p.line(&format!("Compiling c{i} v1"), 98);
        }
        assert_eq!(
            p.line("Compiling c50 v1", 98),
            ["build 98s, 50 crates compiled (latest: c50 v1)"]
        );
    }
}
