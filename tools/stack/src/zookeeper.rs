//! The cluster's Apache ZooKeeper (Debian's `zookeeper` package): run in the foreground under
//! the stack's supervision with a config and data dir of its own, not as the Debian service.
//! Health is the `ruok` four-letter command answered by `imok`.

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Context as _, Result};

use crate::components::write;
use crate::settings::Component;
use crate::{process, Stack, Started};

/// The server jar of Debian's ZooKeeper (package `libzookeeper-java`, which the `zookeeper`
/// package depends on); its manifest names the libraries it needs.
pub const ZOOKEEPER_JAR: &str = "/usr/share/java/zookeeper.jar";
/// An SLF4J binding: without one on the class path ZooKeeper logs nothing.
pub const SLF4J_SIMPLE_JAR: &str = "/usr/share/java/slf4j-simple.jar";
/// What to install when the jar or Java is missing.
const INSTALL_HINT: &str = "install Debian's ZooKeeper: apt-get install -y --no-install-recommends libzookeeper-java default-jre-headless (or the zookeeper package); tests/run.sh does it when run as root";

/// Whether the ZooKeeper server on 127.0.0.1:`port` answers `ruok` with `imok`.
pub fn ruok(port: u16, timeout: Duration) -> bool {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let attempt = || -> std::io::Result<String> {
        let mut s = TcpStream::connect_timeout(&addr, timeout)?;
        s.set_read_timeout(Some(timeout))?;
        s.set_write_timeout(Some(timeout))?;
        s.write_all(b"ruok")?;
        let mut answer = String::new();
        s.read_to_string(&mut answer)?;
        Ok(answer)
    };
    attempt().is_ok_and(|a| a == "imok")
}

/// `zoo.cfg.in` for the stack in `data_dir` with ZooKeeper on `port`.
pub fn render_zoo_cfg(text: &str, data_dir: &Path, port: u16) -> String {
    text.replace("@DATA_DIR@", &data_dir.display().to_string())
        .replace("@ZK_PORT@", &port.to_string())
}

/// The `java` command line running ZooKeeper with `config`: a small heap (a test coordinator
/// holds a few thousand nodes), the serial collector (fewer threads and less memory on a
/// small machine), logs on stderr with timestamps.
pub fn java_args(config: &Path) -> Vec<String> {
    [
        "-Xmx128m",
        "-XX:+UseSerialGC",
        "-Djava.net.preferIPv4Stack=true",
        "-Dorg.slf4j.simpleLogger.showDateTime=true",
        "-Dorg.slf4j.simpleLogger.dateTimeFormat=yyyy-MM-dd'T'HH:mm:ss.SSS",
        "-cp",
        &format!("{ZOOKEEPER_JAR}:{SLF4J_SIMPLE_JAR}"),
        "org.apache.zookeeper.server.ZooKeeperServerMain",
        &config.display().to_string(),
    ]
    .iter()
    .map(|a| a.to_string())
    .collect()
}

impl Stack {
    /// Starts ZooKeeper (cluster profile) and waits until it answers `ruok`.
    pub(crate) fn start_zookeeper(&self) -> Result<Started> {
        let s = &self.settings;
        let c = Component::ZooKeeper;
        let Some(cluster) = s.cluster else {
            bail!(
                "zookeeper is not part of the {} profile (STACK_PROFILE=cluster)",
                s.profile.name
            );
        };
        if self.running_already(c)? {
            return Ok(Started::AlreadyRunning);
        }
        for jar in [ZOOKEEPER_JAR, SLF4J_SIMPLE_JAR] {
            if !Path::new(jar).is_file() {
                bail!("zookeeper: {jar} not found; {INSTALL_HINT}");
            }
        }
        let java = process::which("java")
            .with_context(|| format!("zookeeper: no java on PATH; {INSTALL_HINT}"))?;
        self.require_ports(c)?;
        let dir = s.data_dir.join("zookeeper");
        std::fs::create_dir_all(dir.join("data"))
            .with_context(|| format!("create {}", dir.join("data").display()))?;
        let port = cluster.ports.zookeeper;
        let config = dir.join("zoo.cfg");
        let text = self.template("zoo.cfg.in")?;
        write(&config, &render_zoo_cfg(&text, &s.data_dir, port))?;
        self.log.info(format!(
            "zookeeper: starting Apache ZooKeeper on {port} (data {})",
            dir.display()
        ));
        let pid = self.spawn(
            c,
            &java,
            &java_args(&config),
            &[],
            &s.log_dir().join("zookeeper.log"),
        )?;
        self.wait_healthy(c, pid)?;
        self.log.info(format!("zookeeper: healthy (PID {pid})"));
        Ok(Started::Started)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_config_gets_the_data_dir_and_port() {
        let text = include_str!("../../../deploy/local/zoo.cfg.in");
        let cfg = render_zoo_cfg(text, Path::new("/d"), 22181);
        for want in [
            "dataDir=/d/zookeeper/data\n",
            "clientPort=22181\n",
            "clientPortAddress=127.0.0.1\n",
            "admin.enableServer=false\n",
            "tickTime=500\n",
            "forceSync=no\n",
        ] {
            assert!(cfg.contains(want), "{want} missing:\n{cfg}");
        }
        assert!(!cfg.contains('@'), "{cfg}");
        let args = java_args(Path::new("/d/zookeeper/zoo.cfg"));
        assert_eq!(args[0], "-Xmx128m");
        assert!(args.contains(&format!("{ZOOKEEPER_JAR}:{SLF4J_SIMPLE_JAR}")));
        assert_eq!(args.last().unwrap(), "/d/zookeeper/zoo.cfg");
    }

    #[test]
    fn ruok_needs_imok() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = std::thread::spawn(move || {
            for answer in ["imok", "nope"] {
                let (mut s, _) = listener.accept().unwrap();
                let mut req = [0u8; 4];
                s.read_exact(&mut req).unwrap();
                assert_eq!(&req, b"ruok");
                s.write_all(answer.as_bytes()).unwrap();
            }
        });
        assert!(ruok(port, Duration::from_secs(5)));
        assert!(!ruok(port, Duration::from_secs(5)));
        server.join().unwrap();
        assert!(!ruok(port, Duration::from_millis(500)));
    }
}
