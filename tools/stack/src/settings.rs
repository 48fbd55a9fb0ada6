//! Profiles (data: ports, components, defaults) and the settings of one stack: a profile's
//! defaults, each overridable by a `STACK_*` variable. Pure: the variables come from a lookup
//! function, so tests and the test kit resolve settings without touching the process env.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, Result};

/// The ClickHouse build the stack runs: the server inside this `chdb` wheel (ClickHouse 25.8).
pub const CHDB_VERSION: &str = "3.7.2";
/// The Tansu broker version `cargo install` builds.
pub const TANSU_VERSION: &str = "0.6.0";

/// One process the stack supervises.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Component {
    ClickHouse,
    Broker,
    Consumer,
    Api,
}

impl Component {
    /// The name in commands, PID files and the status table.
    pub fn name(self) -> &'static str {
        match self {
            Component::ClickHouse => "clickhouse",
            Component::Broker => "broker",
            Component::Consumer => "consumer",
            Component::Api => "api",
        }
    }

    /// A component by its name or an alias (`ch`, `kafka`, `tansu`, `serve`).
    pub fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "clickhouse" | "ch" => Component::ClickHouse,
            "broker" | "kafka" | "tansu" => Component::Broker,
            "consumer" => Component::Consumer,
            "api" | "serve" => Component::Api,
            _ => return None,
        })
    }

    /// Whether this is an `auditlog` process (started only when the stack runs the apps).
    pub fn is_app(self) -> bool {
        matches!(self, Component::Consumer | Component::Api)
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

/// A profile: the defaults of one kind of stack. Adding one (a cluster: ZooKeeper and two
/// ClickHouse servers) is a new entry in [`PROFILES`] plus the new components' start code.
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
}

const INFRASTRUCTURE: &[Component] = &[Component::ClickHouse, Component::Broker];
const APPS: &[Component] = &[Component::Consumer, Component::Api];

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
        write!(
            f,
            "stack.sh: STACK_PROFILE must be {}, not '{}'",
            names.join(" or "),
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

    /// The ports a component listens on, as the status table shows them.
    pub fn ports_label(&self, c: Component) -> String {
        let p = self.ports;
        match c {
            Component::ClickHouse => format!("{} (native {})", p.ch_http, p.ch_tcp),
            Component::Broker => p.kafka.to_string(),
            Component::Consumer => p.consumer.to_string(),
            Component::Api => p.api.to_string(),
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
        vec![
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
        ]
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
        out
    }

    /// The `up` banner: data dir and ports.
    pub fn up_banner(&self) -> String {
        let p = self.ports;
        let mut s = format!(
            "up: data {}; ClickHouse HTTP {} native {}; broker {}",
            self.data_dir.display(),
            p.ch_http,
            p.ch_tcp,
            p.kafka
        );
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
                Component::Api
            ]
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
        assert_eq!(s.all_components().len(), 4);
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
            "stack.sh: STACK_PROFILE must be dev or test, not 'prod'"
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

    #[test]
    fn private_vars_describe_an_infrastructure_only_test_stack() {
        let ports = Ports {
            ch_http: 1,
            ch_tcp: 2,
            kafka: 3,
            api: 4,
            consumer: 5,
        };
        let map: HashMap<String, String> =
            private_vars(Path::new("/d"), &ports).into_iter().collect();
        let s = Settings::resolve(Path::new("/repo"), |k| map.get(k).cloned()).unwrap();
        assert_eq!(s.profile.name, "test");
        assert_eq!(s.ports, ports);
        assert_eq!(s.data_dir, Path::new("/d"));
        assert!(!s.apps && !s.seed);
    }

    #[test]
    fn components_parse_by_name_and_alias() {
        for c in [
            Component::ClickHouse,
            Component::Broker,
            Component::Consumer,
            Component::Api,
        ] {
            assert_eq!(Component::parse(c.name()), Some(c));
        }
        assert_eq!(Component::parse("tansu"), Some(Component::Broker));
        assert_eq!(Component::parse("serve"), Some(Component::Api));
        assert_eq!(Component::parse("zookeeper"), None);
    }
}
