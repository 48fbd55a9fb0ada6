//! Profiles (data: ports, components, defaults) and the settings of one stack: a profile's
//! defaults, each overridable by a `STACK_*` variable. Pure: the variables come from a lookup
//! function, so tests and the test kit resolve settings without touching the process env.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context as _, Result};

use crate::cluster::{ChServer, Cluster, ClusterPorts, CLUSTER_NAME};

/// The ClickHouse build the stack runs: the server inside this `chdb` wheel (ClickHouse 25.8).
pub const CHDB_VERSION: &str = "3.7.2";
/// The Tansu broker version `cargo install` builds.
pub const TANSU_VERSION: &str = "0.6.0";

/// One process the stack supervises.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Component {
    /// Apache ZooKeeper (cluster profile): the coordinator of the replicated tables.
    ZooKeeper,
    ClickHouse,
    /// The second ClickHouse server (cluster profile).
    ClickHouse2,
    Broker,
    Consumer,
    Api,
    /// `auditlog stream-worker` (push streams).
    StreamWorker,
    /// `auditlog witness` (cosigns the log's checkpoints).
    Witness,
    /// `auditlog sequencer` (builds the workspace logs, signs checkpoints).
    Sequencer,
}

impl Component {
    /// The name in commands, PID files and the status table.
    pub fn name(self) -> &'static str {
        match self {
            Component::ZooKeeper => "zookeeper",
            Component::ClickHouse => "clickhouse",
            Component::ClickHouse2 => "clickhouse2",
            Component::Broker => "broker",
            Component::Consumer => "consumer",
            Component::Api => "api",
            Component::StreamWorker => "stream-worker",
            Component::Witness => "witness",
            Component::Sequencer => "sequencer",
        }
    }

    /// A component by its name or an alias (`zk`, `ch`, `ch2`, `kafka`, `tansu`, `serve`).
    pub fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "zookeeper" | "zk" => Component::ZooKeeper,
            "clickhouse" | "ch" => Component::ClickHouse,
            "clickhouse2" | "ch2" => Component::ClickHouse2,
            "broker" | "kafka" | "tansu" => Component::Broker,
            "consumer" => Component::Consumer,
            "api" | "serve" => Component::Api,
            "stream-worker" | "streams" => Component::StreamWorker,
            "witness" => Component::Witness,
            "sequencer" => Component::Sequencer,
            _ => return None,
        })
    }

    /// Whether this is an `auditlog` process (started only when the stack runs the apps).
    pub fn is_app(self) -> bool {
        matches!(
            self,
            Component::Consumer
                | Component::Api
                | Component::StreamWorker
                | Component::Witness
                | Component::Sequencer
        )
    }
}

/// The ports of a stack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ports {
    pub ch_http: u16,
    pub ch_tcp: u16,
    pub kafka: u16,
    pub api: u16,
    pub consumer: u16,
}

/// A profile: the defaults of one kind of stack. Adding one is a new entry in [`PROFILES`]
/// (plus start code for components it brings).
#[derive(Debug, PartialEq, Eq)]
pub struct Profile {
    pub name: &'static str,
    pub ports: Ports,
    /// Infrastructure, in start order (stopped in reverse).
    pub infrastructure: &'static [Component],
    /// The `auditlog` processes, in start order, run when `STACK_APPS` is on.
    pub apps: &'static [Component],
    /// Default of `STACK_APPS` and `STACK_SEED`.
    pub run_apps: bool,
    /// The default binary is the release build `up` makes (dev) rather than the debug build
    /// `tests/run.sh` makes (test).
    pub release_binary: bool,
    /// `up` applies the schema (`auditlog migrate`) even without the apps (dev, test); the
    /// cluster profile without its apps is infrastructure only.
    pub schema_without_apps: bool,
    /// A cluster profile's extra ports (ZooKeeper, the second server, interserver).
    pub cluster: Option<ClusterPorts>,
}

const INFRASTRUCTURE: &[Component] = &[Component::ClickHouse, Component::Broker];
const CLUSTER_INFRASTRUCTURE: &[Component] = &[
    Component::ZooKeeper,
    Component::ClickHouse,
    Component::ClickHouse2,
    Component::Broker,
];
/// The witness starts before the sequencer, so the first checkpoints are cosigned.
const APPS: &[Component] = &[
    Component::Consumer,
    Component::Api,
    Component::StreamWorker,
    Component::Witness,
    Component::Sequencer,
];
/// The cluster profile's apps: the sequencer reads a single server's `events` only (docs/integrity.md).
const CLUSTER_APPS: &[Component] = &[Component::Consumer, Component::Api, Component::StreamWorker];

/// Every profile `STACK_PROFILE` can name.
pub const PROFILES: &[Profile] = &[
    Profile {
        name: "dev",
        ports: Ports {
            ch_http: 8123,
            ch_tcp: 9000,
            kafka: 9092,
            api: 8080,
            consumer: 8081,
        },
        infrastructure: INFRASTRUCTURE,
        apps: APPS,
        run_apps: true,
        release_binary: true,
        schema_without_apps: true,
        cluster: None,
    },
    Profile {
        name: "test",
        ports: Ports {
            ch_http: 18123,
            ch_tcp: 19000,
            kafka: 19092,
            api: 18080,
            consumer: 18081,
        },
        infrastructure: INFRASTRUCTURE,
        apps: APPS,
        run_apps: false,
        release_binary: false,
        schema_without_apps: true,
        cluster: None,
    },
    Profile {
        name: "cluster",
        ports: Ports {
            ch_http: 28123,
            ch_tcp: 29000,
            kafka: 29092,
            api: 28080,
            consumer: 28081,
        },
        infrastructure: CLUSTER_INFRASTRUCTURE,
        apps: CLUSTER_APPS,
        run_apps: true,
        release_binary: true,
        schema_without_apps: false,
        cluster: Some(ClusterPorts {
            zookeeper: 22181,
            ch_interserver: 29009,
            ch2_http: 28124,
            ch2_tcp: 29001,
            ch2_interserver: 29010,
        }),
    },
];

/// A profile by name.
pub fn profile(name: &str) -> Option<&'static Profile> {
    PROFILES.iter().find(|p| p.name == name)
}

/// Everything one stack needs to know, resolved once.
#[derive(Debug, Clone)]
pub struct Settings {
    pub profile: &'static Profile,
    /// The repository (templates in `deploy/local/`, relative data dirs, `target/`).
    pub root: PathBuf,
    pub ports: Ports,
    /// ZooKeeper and the second server (cluster profile).
    pub cluster: Option<Cluster>,
    /// Absolute data directory; also the `STACK_INSTANCE` marker of every process it starts.
    pub data_dir: PathBuf,
    pub apps: bool,
    pub seed: bool,
    pub database: String,
    pub topic: String,
    pub dlq_topic: String,
    pub partitions: u32,
    pub timeout: Duration,
    pub stop_timeout: Duration,
    pub ch_memory_ratio: String,
    pub cache_dir: PathBuf,
    /// The `auditlog` binary; `bin_given` when `STACK_AUDITLOG_BIN` chose it (then `up` does
    /// not build it).
    pub auditlog_bin: PathBuf,
    pub bin_given: bool,
    pub tansu_bin: Option<PathBuf>,
    pub seed_events: u64,
    pub seed_days: u64,
}

/// A `STACK_PROFILE` naming no profile (the command line exits 2 on it).
#[derive(Debug)]
pub struct UnknownProfile(pub String);

impl std::fmt::Display for UnknownProfile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = PROFILES.iter().map(|p| p.name).collect();
        let (last, rest) = names.split_last().expect("profiles");
        write!(
            f,
            "stack.sh: STACK_PROFILE must be {} or {last}, not '{}'",
            rest.join(", "),
            self.0
        )
    }
}

impl std::error::Error for UnknownProfile {}

impl Settings {
    /// Resolves the settings from `var` (a variable's value, `None` when unset; an empty value
    /// counts as unset, as `${VAR:-default}` does) for the repository at `root`.
    pub fn resolve(root: &Path, var: impl Fn(&str) -> Option<String>) -> Result<Self> {
        let var = |name: &str| var(name).filter(|v| !v.is_empty());
        let name = var("STACK_PROFILE").unwrap_or_else(|| "dev".into());
        let profile = profile(&name).ok_or(UnknownProfile(name))?;
        let d = profile.ports;
        let port = |name: &str, default: u16| -> Result<u16> {
            var(name).map_or(Ok(default), |v| {
                v.trim()
                    .parse()
                    .with_context(|| format!("{name}={v} is not a port"))
            })
        };
        let number = |name: &str, default: u64| -> Result<u64> {
            var(name).map_or(Ok(default), |v| {
                v.trim()
                    .parse()
                    .with_context(|| format!("{name}={v} is not a number"))
            })
        };
        let flag = |name: &str, default: bool| -> Result<bool> {
            Ok(number(name, u64::from(default))? != 0)
        };
        let text = |name: &str, default: &str| var(name).unwrap_or_else(|| default.into());
        let data_dir = absolute(
            root,
            &var("STACK_DATA_DIR").unwrap_or_else(|| format!(".data/{}", profile.name)),
        );
        let cache_dir = match var("STACK_CACHE_DIR") {
            Some(dir) => PathBuf::from(dir),
            None => var("XDG_CACHE_HOME")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from(var("HOME").unwrap_or_default()).join(".cache"))
                .join("auditlog"),
        };
        let given_bin = var("STACK_AUDITLOG_BIN");
        let auditlog_bin = match &given_bin {
            Some(bin) => PathBuf::from(bin),
            None if profile.release_binary => root.join("target/release/auditlog"),
            None => root.join("target/debug/auditlog"),
        };
        let partitions = number("STACK_PARTITIONS", 6)?;
        let cluster = match profile.cluster {
            None => None,
            Some(c) => Some(Cluster {
                ports: c.resolve(port)?,
                shards: match number("STACK_SHARDS", 1)? {
                    n @ (1 | 2) => n as u32,
                    n => bail!("STACK_SHARDS={n}: the cluster has 1 shard (two replicas) or 2 shards (one replica each)"),
                },
            }),
        };
        Ok(Self {
            profile,
            root: root.to_path_buf(),
            ports: Ports {
                ch_http: port("STACK_CH_HTTP_PORT", d.ch_http)?,
                ch_tcp: port("STACK_CH_TCP_PORT", d.ch_tcp)?,
                kafka: port("STACK_KAFKA_PORT", d.kafka)?,
                api: port("STACK_API_PORT", d.api)?,
                consumer: port("STACK_CONSUMER_PORT", d.consumer)?,
            },
            cluster,
            data_dir,
            apps: flag("STACK_APPS", profile.run_apps)?,
            seed: flag("STACK_SEED", profile.run_apps)?,
            database: text("STACK_DATABASE", "auditlog"),
            topic: text("STACK_TOPIC", "audit-events"),
            dlq_topic: text("STACK_DLQ_TOPIC", "audit-events-dlq"),
            partitions: u32::try_from(partitions).context("STACK_PARTITIONS is too large")?,
            timeout: Duration::from_secs(number("STACK_TIMEOUT", 60)?),
            stop_timeout: Duration::from_secs(number("STACK_STOP_TIMEOUT", 20)?),
            ch_memory_ratio: text("STACK_CH_MEMORY_RATIO", "0.25"),
            cache_dir,
            auditlog_bin,
            bin_given: given_bin.is_some(),
            tansu_bin: var("STACK_TANSU_BIN").map(PathBuf::from),
            seed_events: number("STACK_SEED_EVENTS", 5000)?,
            seed_days: number("STACK_SEED_DAYS", 30)?,
        })
    }

    /// The components this stack runs, in start order.
    pub fn components(&self) -> Vec<Component> {
        let mut all = self.profile.infrastructure.to_vec();
        if self.apps {
            all.extend_from_slice(self.profile.apps);
        }
        all
    }

    /// Every component the profile knows (the status table lists them all), in start order.
    pub fn all_components(&self) -> Vec<Component> {
        let mut all = self.profile.infrastructure.to_vec();
        all.extend_from_slice(self.profile.apps);
        all
    }

    /// The ClickHouse servers of this stack: one, or the cluster's two.
    pub fn clickhouse_servers(&self) -> Vec<ChServer> {
        match &self.cluster {
            Some(cluster) => cluster.servers(&self.ports),
            None => vec![ChServer {
                component: Component::ClickHouse,
                http: self.ports.ch_http,
                tcp: self.ports.ch_tcp,
                replica: None,
            }],
        }
    }

    /// The server component `c` is (`None`: not a ClickHouse server of this stack).
    pub fn clickhouse_server(&self, c: Component) -> Option<ChServer> {
        self.clickhouse_servers()
            .into_iter()
            .find(|s| s.component == c)
    }

    /// The HTTP URL of every ClickHouse server, the first server's first.
    pub fn clickhouse_urls(&self) -> Vec<String> {
        self.clickhouse_servers()
            .iter()
            .map(|s| format!("http://127.0.0.1:{}", s.http))
            .collect()
    }

    /// The ports a component listens on, as the status table shows them.
    pub fn ports_label(&self, c: Component) -> String {
        let p = self.ports;
        match c {
            Component::ZooKeeper => self
                .cluster
                .map(|c| c.ports.zookeeper.to_string())
                .unwrap_or_default(),
            Component::ClickHouse | Component::ClickHouse2 => self
                .clickhouse_server(c)
                .map(|s| format!("{} (native {})", s.http, s.tcp))
                .unwrap_or_default(),
            Component::Broker => p.kafka.to_string(),
            Component::Consumer => p.consumer.to_string(),
            Component::Api => p.api.to_string(),
            Component::StreamWorker | Component::Witness | Component::Sequencer => {
                self.app_port(c).to_string()
            }
        }
    }

    /// The port of an `auditlog` process: the consumer's and the API's are settings; the
    /// stream worker, the sequencer and the witness listen on the next ports after the
    /// consumer's (`STACK_CONSUMER_PORT` + 1, + 2, + 3: 8082, 8083, 8084 in the dev profile,
    /// their own defaults).
    pub fn app_port(&self, c: Component) -> u16 {
        let p = self.ports;
        match c {
            Component::Api => p.api,
            Component::StreamWorker => p.consumer.saturating_add(1),
            Component::Sequencer => p.consumer.saturating_add(2),
            Component::Witness => p.consumer.saturating_add(3),
            _ => p.consumer,
        }
    }

    pub fn run_dir(&self) -> PathBuf {
        self.data_dir.join("run")
    }

    pub fn log_dir(&self) -> PathBuf {
        self.data_dir.join("logs")
    }

    pub fn pid_file(&self, c: Component) -> PathBuf {
        self.run_dir().join(format!("{}.pid", c.name()))
    }

    /// The unpacked ClickHouse server library.
    pub fn chdb_dir(&self) -> PathBuf {
        self.cache_dir.join(format!("chdb-{CHDB_VERSION}"))
    }

    pub fn chdb_lib(&self) -> PathBuf {
        self.chdb_dir().join("chdb/_chdb.abi3.so")
    }

    /// `deploy/local/` (templates and the shim).
    pub fn local_dir(&self) -> PathBuf {
        self.root.join("deploy/local")
    }

    /// The `auditlog` configuration of this stack: only `AUDITLOG_<SECTION>__<FIELD>`
    /// variables the binary knows (it rejects unknown ones).
    pub fn app_env(&self, admin_token: &str) -> Vec<(&'static str, String)> {
        let p = self.ports;
        let mut env = vec![
            ("AUDITLOG_KAFKA__BROKERS", format!("127.0.0.1:{}", p.kafka)),
            ("AUDITLOG_KAFKA__TOPIC", self.topic.clone()),
            ("AUDITLOG_KAFKA__DLQ_TOPIC", self.dlq_topic.clone()),
            (
                "AUDITLOG_CLICKHOUSE__URL",
                format!("http://127.0.0.1:{}", p.ch_http),
            ),
            ("AUDITLOG_CLICKHOUSE__DATABASE", self.database.clone()),
            ("AUDITLOG_API__LISTEN", format!("127.0.0.1:{}", p.api)),
            ("AUDITLOG_API__ADMIN_TOKEN", admin_token.to_owned()),
            (
                "AUDITLOG_CONSUMER__METRICS_LISTEN",
                format!("127.0.0.1:{}", p.consumer),
            ),
        ];
        if self.cluster.is_some() {
            let failover: Vec<String> = self.clickhouse_urls().into_iter().skip(1).collect();
            env.push((
                "AUDITLOG_CLICKHOUSE__FAILOVER_URLS",
                serde_json::to_string(&failover).unwrap_or_default(),
            ));
            env.push(("AUDITLOG_CLICKHOUSE__CLUSTER", CLUSTER_NAME.into()));
        }
        env
    }

    /// Shell exports describing this stack (`stack.sh env`), for
    /// `eval "$(STACK_PROFILE=test deploy/local/stack.sh env)"`.
    pub fn env_exports(&self) -> String {
        let p = self.ports;
        let dir = self.data_dir.display();
        let mut out = String::new();
        let lines = [
            ("STACK_PROFILE", self.profile.name.to_string()),
            ("STACK_DATA_DIR", dir.to_string()),
            ("STACK_CH_HTTP_PORT", p.ch_http.to_string()),
            ("STACK_CH_TCP_PORT", p.ch_tcp.to_string()),
            ("STACK_KAFKA_PORT", p.kafka.to_string()),
            ("STACK_API_PORT", p.api.to_string()),
            ("STACK_CONSUMER_PORT", p.consumer.to_string()),
            (
                "TEST_CLICKHOUSE_URL",
                format!("http://127.0.0.1:{}", p.ch_http),
            ),
            ("TEST_KAFKA_BROKERS", format!("127.0.0.1:{}", p.kafka)),
            ("TEST_STACK_DIR", dir.to_string()),
            (
                "TEST_STACK_SCRIPT",
                self.local_dir().join("stack.sh").display().to_string(),
            ),
        ];
        for (k, v) in lines {
            let _ = writeln!(out, "export {k}={v}");
        }
        if let Some(c) = &self.cluster {
            let ports = c.ports.vars().map(|(k, v)| (k, v.to_string()));
            let lines = ports.into_iter().chain([
                ("STACK_SHARDS", c.shards.to_string()),
                ("TEST_CLICKHOUSE_URLS", self.clickhouse_urls().join(",")),
                ("TEST_CLICKHOUSE_CLUSTER", CLUSTER_NAME.to_string()),
                ("TEST_ZOOKEEPER", format!("127.0.0.1:{}", c.ports.zookeeper)),
            ]);
            for (k, v) in lines {
                let _ = writeln!(out, "export {k}={v}");
            }
        }
        out
    }

    /// The `up` banner: data dir and ports.
    pub fn up_banner(&self) -> String {
        let p = self.ports;
        let mut s = format!("up: data {}", self.data_dir.display());
        if let Some(c) = &self.cluster {
            let _ = write!(
                s,
                "; ZooKeeper {}; cluster {CLUSTER_NAME} ({} shard(s))",
                c.ports.zookeeper, c.shards
            );
        }
        for server in self.clickhouse_servers() {
            let _ = write!(s, "; ");
            if let Some(r) = &server.replica {
                let _ = write!(s, "{} ", r.name);
            }
            let _ = write!(s, "ClickHouse HTTP {} native {}", server.http, server.tcp);
        }
        let _ = write!(s, "; broker {}", p.kafka);
        if self.apps {
            let _ = write!(s, "; API {}; consumer {}", p.api, p.consumer);
        }
        s
    }
}

/// `path` made absolute against `root` (as the script did: no normalisation).
fn absolute(root: &Path, path: &str) -> PathBuf {
    let p = Path::new(path);
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        root.join(p)
    }
}

/// The variables describing an infrastructure-only stack of the test profile with data in
/// `data_dir` on `ports` (the test kit's private stacks, the fault suite's stack).
pub fn private_vars(data_dir: &Path, ports: &Ports) -> Vec<(String, String)> {
    [
        ("STACK_PROFILE", "test".to_string()),
        ("STACK_DATA_DIR", data_dir.display().to_string()),
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
    .collect()
}

/// The variables describing an infrastructure-only stack of the cluster profile (ZooKeeper, two
/// ClickHouse servers, the broker) with data in `data_dir` on `ports` and `cluster` (the test
/// kit's `PrivateCluster`).
pub fn private_cluster_vars(
    data_dir: &Path,
    ports: &Ports,
    cluster: &ClusterPorts,
) -> Vec<(String, String)> {
    let mut vars = private_vars(data_dir, ports);
    for (k, v) in &mut vars {
        if k == "STACK_PROFILE" {
            *v = "cluster".into();
        }
    }
    vars.extend(cluster.vars().map(|(k, v)| (k.to_string(), v.to_string())));
    vars
}

/// One line of the status table: `printf '%-11s %-8s %-22s %s'`.
pub fn status_row(component: &str, pid: &str, ports: &str, health: &str) -> String {
    format!("{component:<11} {pid:<8} {ports:<22} {health}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn resolve(vars: &[(&str, &str)]) -> Result<Settings> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Settings::resolve(Path::new("/repo"), |k| map.get(k).cloned())
    }

    #[test]
    fn dev_is_the_default_profile_with_the_apps() {
        let s = resolve(&[("HOME", "/home/u")]).unwrap();
        assert_eq!(s.profile.name, "dev");
        assert_eq!(
            s.ports,
            Ports {
                ch_http: 8123,
                ch_tcp: 9000,
                kafka: 9092,
                api: 8080,
                consumer: 8081
            }
        );
        assert_eq!(s.data_dir, Path::new("/repo/.data/dev"));
        assert!(s.apps && s.seed && !s.bin_given);
        assert_eq!(s.auditlog_bin, Path::new("/repo/target/release/auditlog"));
        assert_eq!(s.cache_dir, Path::new("/home/u/.cache/auditlog"));
        assert_eq!(
            s.chdb_lib(),
            Path::new("/home/u/.cache/auditlog/chdb-3.7.2/chdb/_chdb.abi3.so")
        );
        assert_eq!(
            s.components(),
            [
                Component::ClickHouse,
                Component::Broker,
                Component::Consumer,
                Component::Api,
                Component::StreamWorker,
                Component::Witness,
                Component::Sequencer
            ]
        );
        assert_eq!(
            [
                Component::StreamWorker,
                Component::Witness,
                Component::Sequencer
            ]
            .map(|c| s.app_port(c)),
            [8082, 8084, 8083]
        );
    }

    #[test]
    fn test_profile_runs_infrastructure_only_on_its_ports() {
        let s = resolve(&[("STACK_PROFILE", "test")]).unwrap();
        assert_eq!(
            (
                s.ports.ch_http,
                s.ports.ch_tcp,
                s.ports.kafka,
                s.ports.api,
                s.ports.consumer
            ),
            (18123, 19000, 19092, 18080, 18081)
        );
        assert_eq!(s.data_dir, Path::new("/repo/.data/test"));
        assert!(!s.apps && !s.seed);
        assert_eq!(s.auditlog_bin, Path::new("/repo/target/debug/auditlog"));
        assert_eq!(s.components(), [Component::ClickHouse, Component::Broker]);
        assert_eq!(s.all_components().len(), 7);
    }

    #[test]
    fn variables_override_the_profile() {
        let s = resolve(&[
            ("STACK_PROFILE", "test"),
            ("STACK_DATA_DIR", ".data/private/x"),
            ("STACK_CH_HTTP_PORT", "26123"),
            ("STACK_KAFKA_PORT", "27092"),
            ("STACK_APPS", "1"),
            ("STACK_SEED", "0"),
            ("STACK_AUDITLOG_BIN", "/bin/auditlog"),
            ("STACK_TIMEOUT", "5"),
            ("STACK_CACHE_DIR", "/c"),
            ("STACK_TOPIC", ""),
        ])
        .unwrap();
        assert_eq!(s.data_dir, Path::new("/repo/.data/private/x"));
        assert_eq!((s.ports.ch_http, s.ports.kafka), (26123, 27092));
        assert!(s.apps && !s.seed && s.bin_given);
        assert_eq!(s.timeout, Duration::from_secs(5));
        assert_eq!(s.cache_dir, Path::new("/c/"));
        // An empty variable counts as unset.
        assert_eq!(s.topic, "audit-events");
        let abs = resolve(&[("STACK_DATA_DIR", "/tmp/d")]).unwrap();
        assert_eq!(abs.data_dir, Path::new("/tmp/d"));
    }

    #[test]
    fn bad_values_are_errors_naming_the_variable() {
        let e = resolve(&[("STACK_PROFILE", "prod")]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "stack.sh: STACK_PROFILE must be dev, test or cluster, not 'prod'"
        );
        assert!(e.downcast_ref::<UnknownProfile>().is_some());
        let e = resolve(&[("STACK_KAFKA_PORT", "90921")]).unwrap_err();
        assert!(e.to_string().contains("STACK_KAFKA_PORT=90921"), "{e}");
        let e = resolve(&[("STACK_APPS", "yes")]).unwrap_err();
        assert!(e.to_string().contains("STACK_APPS"), "{e}");
    }

    #[test]
    fn env_exports_are_evalable_lines() {
        let s = resolve(&[("STACK_PROFILE", "test"), ("STACK_DATA_DIR", "/d")]).unwrap();
        assert_eq!(
            s.env_exports(),
            "export STACK_PROFILE=test\n\
             export STACK_DATA_DIR=/d\n\
             export STACK_CH_HTTP_PORT=18123\n\
             export STACK_CH_TCP_PORT=19000\n\
             export STACK_KAFKA_PORT=19092\n\
             export STACK_API_PORT=18080\n\
             export STACK_CONSUMER_PORT=18081\n\
             export TEST_CLICKHOUSE_URL=http://127.0.0.1:18123\n\
             export TEST_KAFKA_BROKERS=127.0.0.1:19092\n\
             export TEST_STACK_DIR=/d\n\
             export TEST_STACK_SCRIPT=/repo/deploy/local/stack.sh\n"
        );
    }

    #[test]
    fn app_env_points_auditlog_at_the_stack() {
        let s = resolve(&[]).unwrap();
        let env = s.app_env("adm_x");
        assert!(env.contains(&("AUDITLOG_KAFKA__BROKERS", "127.0.0.1:9092".into())));
        assert!(env.contains(&("AUDITLOG_API__ADMIN_TOKEN", "adm_x".into())));
        assert!(env.iter().all(|(k, _)| k.starts_with("AUDITLOG_")));
    }

    #[test]
    fn status_rows_and_labels_keep_the_table_layout() {
        let s = resolve(&[]).unwrap();
        assert_eq!(
            status_row(
                "clickhouse",
                "123",
                &s.ports_label(Component::ClickHouse),
                "healthy"
            ),
            "clickhouse  123      8123 (native 9000)     healthy"
        );
        assert_eq!(
            status_row("COMPONENT", "PID", "PORT", "HEALTH"),
            "COMPONENT   PID      PORT                   HEALTH"
        );
        assert_eq!(
            s.up_banner(),
            "up: data /repo/.data/dev; ClickHouse HTTP 8123 native 9000; broker 9092; API 8080; consumer 8081"
        );
    }

    /// Ports of a private stack in the tests of `private_vars` and `private_cluster_vars`.
    const PRIVATE_PORTS: Ports = Ports {
        ch_http: 1,
        ch_tcp: 2,
        kafka: 3,
        api: 4,
        consumer: 5,
    };

    /// The settings `vars` describe (and nothing else).
    fn resolve_only(vars: Vec<(String, String)>) -> Settings {
        let map: HashMap<String, String> = vars.into_iter().collect();
        Settings::resolve(Path::new("/repo"), |k| map.get(k).cloned()).unwrap()
    }

    #[test]
    fn private_vars_describe_an_infrastructure_only_test_stack() {
        let ports = PRIVATE_PORTS;
        let s = resolve_only(private_vars(Path::new("/d"), &ports));
        assert_eq!(s.profile.name, "test");
        assert_eq!(s.ports, ports);
        assert_eq!(s.data_dir, Path::new("/d"));
        assert!(!s.apps && !s.seed);
    }

    #[test]
    fn components_parse_by_name_and_alias() {
        for c in [
            Component::ZooKeeper,
            Component::ClickHouse,
            Component::ClickHouse2,
            Component::Broker,
            Component::Consumer,
            Component::Api,
            Component::StreamWorker,
            Component::Witness,
            Component::Sequencer,
        ] {
            assert_eq!(Component::parse(c.name()), Some(c));
        }
        assert_eq!(Component::parse("tansu"), Some(Component::Broker));
        assert_eq!(Component::parse("serve"), Some(Component::Api));
        assert_eq!(Component::parse("zk"), Some(Component::ZooKeeper));
        assert_eq!(Component::parse("ch2"), Some(Component::ClickHouse2));
        assert_eq!(Component::parse("keeper"), None);
    }

    #[test]
    fn the_cluster_profile_runs_zookeeper_two_servers_and_the_apps() {
        let s = resolve(&[("STACK_PROFILE", "cluster")]).unwrap();
        assert_eq!(
            s.ports,
            Ports {
                ch_http: 28123,
                ch_tcp: 29000,
                kafka: 29092,
                api: 28080,
                consumer: 28081
            }
        );
        let c = s.cluster.unwrap();
        assert_eq!(
            c.ports,
            ClusterPorts {
                zookeeper: 22181,
                ch_interserver: 29009,
                ch2_http: 28124,
                ch2_tcp: 29001,
                ch2_interserver: 29010,
            }
        );
        assert_eq!(c.shards, 1);
        assert_eq!(s.data_dir, Path::new("/repo/.data/cluster"));
        assert!(s.apps && s.seed);
        assert_eq!(
            s.components(),
            [
                Component::ZooKeeper,
                Component::ClickHouse,
                Component::ClickHouse2,
                Component::Broker,
                Component::Consumer,
                Component::Api,
                Component::StreamWorker
            ]
        );
        assert_eq!(
            s.clickhouse_urls(),
            ["http://127.0.0.1:28123", "http://127.0.0.1:28124"]
        );
        assert_eq!(s.ports_label(Component::ZooKeeper), "22181");
        assert_eq!(
            s.ports_label(Component::ClickHouse2),
            "28124 (native 29001)"
        );
        let env = s.app_env("adm_x");
        assert!(env.contains(&("AUDITLOG_CLICKHOUSE__URL", "http://127.0.0.1:28123".into())));
        assert!(env.contains(&(
            "AUDITLOG_CLICKHOUSE__FAILOVER_URLS",
            r#"["http://127.0.0.1:28124"]"#.into()
        )));
        assert!(env.contains(&("AUDITLOG_CLICKHOUSE__CLUSTER", "auditlog".into())));
        // None of the cluster's variables reach a single-server stack's apps.
        let dev = resolve(&[]).unwrap();
        assert!(dev.cluster.is_none());
        assert!(dev
            .app_env("adm_x")
            .iter()
            .all(|(k, _)| !k.contains("CLUSTER") && !k.contains("FAILOVER")));
        assert_eq!(dev.clickhouse_urls(), ["http://127.0.0.1:8123"]);
        let infra = resolve(&[("STACK_PROFILE", "cluster"), ("STACK_APPS", "0")]).unwrap();
        assert_eq!(infra.components().len(), 4);
        assert!(!infra.profile.schema_without_apps);
    }

    #[test]
    fn the_cluster_env_adds_the_servers_and_the_cluster_name() {
        let s = resolve(&[
            ("STACK_PROFILE", "cluster"),
            ("STACK_DATA_DIR", "/d"),
            ("STACK_CH2_HTTP_PORT", "30124"),
            ("STACK_SHARDS", "2"),
        ])
        .unwrap();
        // The usual exports (of the cluster's ports), then the cluster's own.
        let env = s.env_exports();
        let (usual, extra) = env.split_at(env.find("export STACK_ZK_PORT=").unwrap());
        assert!(
            usual.starts_with("export STACK_PROFILE=cluster\n"),
            "{usual}"
        );
        assert!(usual.contains("export TEST_CLICKHOUSE_URL=http://127.0.0.1:28123\n"));
        assert!(usual.contains("export TEST_KAFKA_BROKERS=127.0.0.1:29092\n"));
        assert_eq!(usual.lines().count(), 11);
        assert_eq!(
            extra,
            "export STACK_ZK_PORT=22181\n\
             export STACK_CH_INTERSERVER_PORT=29009\n\
             export STACK_CH2_HTTP_PORT=30124\n\
             export STACK_CH2_TCP_PORT=29001\n\
             export STACK_CH2_INTERSERVER_PORT=29010\n\
             export STACK_SHARDS=2\n\
             export TEST_CLICKHOUSE_URLS=http://127.0.0.1:28123,http://127.0.0.1:30124\n\
             export TEST_CLICKHOUSE_CLUSTER=auditlog\n\
             export TEST_ZOOKEEPER=127.0.0.1:22181\n"
        );
        assert_eq!(
            s.up_banner(),
            "up: data /d; ZooKeeper 22181; cluster auditlog (2 shard(s)); ch1 ClickHouse HTTP 28123 native 29000; ch2 ClickHouse HTTP 30124 native 29001; broker 29092; API 28080; consumer 28081"
        );
        let e = resolve(&[("STACK_PROFILE", "cluster"), ("STACK_SHARDS", "3")]).unwrap_err();
        assert!(e.to_string().contains("STACK_SHARDS=3"), "{e}");
        // STACK_SHARDS means nothing to a single-server profile.
        assert!(resolve(&[("STACK_SHARDS", "3")]).unwrap().cluster.is_none());
    }

    #[test]
    fn private_cluster_vars_describe_an_infrastructure_only_cluster() {
        let ports = PRIVATE_PORTS;
        let cluster = ClusterPorts {
            zookeeper: 6,
            ch_interserver: 7,
            ch2_http: 8,
            ch2_tcp: 9,
            ch2_interserver: 10,
        };
        let s = resolve_only(private_cluster_vars(Path::new("/d"), &ports, &cluster));
        assert_eq!(s.profile.name, "cluster");
        assert_eq!(s.ports, ports);
        assert_eq!(s.cluster.unwrap().ports, cluster);
        assert_eq!(s.data_dir, Path::new("/d"));
        assert!(!s.apps && !s.seed);
        assert_eq!(
            s.components(),
            [
                Component::ZooKeeper,
                Component::ClickHouse,
                Component::ClickHouse2,
                Component::Broker
            ]
        );
    }
}
