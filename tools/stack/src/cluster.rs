//! The cluster profile's shape as data: its extra ports, the ClickHouse servers it runs (ports,
//! `shard` and `replica` macros) and the `remote_servers` entry every server shares. Pure: the
//! start code (`components.rs`, `zookeeper.rs`) renders these into config files.

use std::fmt::Write as _;

use crate::settings::{Component, Ports};

/// The `remote_servers` cluster the stack defines (`clickhouse.cluster` of the apps).
pub const CLUSTER_NAME: &str = "auditlog";

/// The ZooKeeper session timeout of the servers: short, so that a killed replica's session
/// (and its ephemeral nodes) ends within seconds rather than the default 30 s.
pub const ZK_SESSION_TIMEOUT_MS: u32 = 6000;

/// The ports a cluster adds to a stack's [`Ports`] (which hold the first server's HTTP and
/// native ports).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClusterPorts {
    pub zookeeper: u16,
    /// Interserver HTTP (replication fetches) of the first server.
    pub ch_interserver: u16,
    pub ch2_http: u16,
    pub ch2_tcp: u16,
    pub ch2_interserver: u16,
}

impl ClusterPorts {
    /// Each port with the `STACK_*` variable that sets it, in `env` order.
    pub fn vars(&self) -> [(&'static str, u16); 5] {
        [
            ("STACK_ZK_PORT", self.zookeeper),
            ("STACK_CH_INTERSERVER_PORT", self.ch_interserver),
            ("STACK_CH2_HTTP_PORT", self.ch2_http),
            ("STACK_CH2_TCP_PORT", self.ch2_tcp),
            ("STACK_CH2_INTERSERVER_PORT", self.ch2_interserver),
        ]
    }

    /// These ports as `port(variable, default)` decides them (each default being this port).
    pub fn resolve<E>(&self, mut port: impl FnMut(&str, u16) -> Result<u16, E>) -> Result<Self, E> {
        let mut p = [0u16; 5];
        for (slot, (name, default)) in p.iter_mut().zip(self.vars()) {
            *slot = port(name, default)?;
        }
        let [zookeeper, ch_interserver, ch2_http, ch2_tcp, ch2_interserver] = p;
        Ok(Self {
            zookeeper,
            ch_interserver,
            ch2_http,
            ch2_tcp,
            ch2_interserver,
        })
    }
}

/// A cluster stack: ZooKeeper and two ClickHouse servers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cluster {
    pub ports: ClusterPorts,
    /// 1: one shard with two replicas (default); 2: two shards with one replica each.
    pub shards: u32,
}

/// One ClickHouse server of a stack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChServer {
    /// `clickhouse` or `clickhouse2`: also its directory under the data dir and its log names.
    pub component: Component,
    pub http: u16,
    pub tcp: u16,
    /// Cluster only: interserver port and macros.
    pub replica: Option<Replica>,
}

/// Where a server sits in the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replica {
    pub interserver: u16,
    /// The `shard` macro: `01`, `02`.
    pub shard: String,
    /// The `replica` macro, unique across the cluster: `ch1`, `ch2`.
    pub name: String,
}

impl Cluster {
    /// The two servers: replicas `ch1` and `ch2` of shard `01`, or (two shards) shard `01`
    /// and `02` with one replica each.
    pub fn servers(&self, ports: &Ports) -> Vec<ChServer> {
        let p = self.ports;
        let shard = |i: u32| format!("{:02}", if self.shards >= 2 { i } else { 1 });
        vec![
            ChServer {
                component: Component::ClickHouse,
                http: ports.ch_http,
                tcp: ports.ch_tcp,
                replica: Some(Replica {
                    interserver: p.ch_interserver,
                    shard: shard(1),
                    name: "ch1".into(),
                }),
            },
            ChServer {
                component: Component::ClickHouse2,
                http: p.ch2_http,
                tcp: p.ch2_tcp,
                replica: Some(Replica {
                    interserver: p.ch2_interserver,
                    shard: shard(2),
                    name: "ch2".into(),
                }),
            },
        ]
    }
}

/// The `<shard>` elements of the `remote_servers` cluster over `servers` (grouped by their
/// `shard` macro, in order), each with `internal_replication` on: a `Distributed` insert goes
/// to one replica and the replicated table copies it.
pub fn shards_xml(servers: &[ChServer]) -> String {
    let mut shards: Vec<(&str, Vec<&ChServer>)> = Vec::new();
    for s in servers {
        let Some(r) = &s.replica else { continue };
        match shards.iter_mut().find(|(name, _)| *name == r.shard) {
            Some((_, list)) => list.push(s),
            None => shards.push((&r.shard, vec![s])),
        }
    }
    let mut out = String::new();
    for (_, replicas) in shards {
        out.push_str("            <shard>\n                <internal_replication>true</internal_replication>\n");
        for s in replicas {
            let _ = writeln!(
                out,
                "                <replica><host>127.0.0.1</host><port>{}</port></replica>",
                s.tcp
            );
        }
        out.push_str("            </shard>\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const PORTS: Ports = Ports {
        ch_http: 28123,
        ch_tcp: 29000,
        kafka: 29092,
        api: 28080,
        consumer: 28081,
    };
    const CLUSTER_PORTS: ClusterPorts = ClusterPorts {
        zookeeper: 22181,
        ch_interserver: 29009,
        ch2_http: 28124,
        ch2_tcp: 29001,
        ch2_interserver: 29010,
    };

    #[test]
    fn one_shard_has_two_replicas() {
        let c = Cluster {
            ports: CLUSTER_PORTS,
            shards: 1,
        };
        let servers = c.servers(&PORTS);
        let macros: Vec<(u16, u16, &str, &str, u16)> = servers
            .iter()
            .map(|s| {
                let r = s.replica.as_ref().unwrap();
                (
                    s.http,
                    s.tcp,
                    r.shard.as_str(),
                    r.name.as_str(),
                    r.interserver,
                )
            })
            .collect();
        assert_eq!(
            macros,
            [
                (28123, 29000, "01", "ch1", 29009),
                (28124, 29001, "01", "ch2", 29010)
            ]
        );
        assert_eq!(
            shards_xml(&servers),
            "            <shard>\n                <internal_replication>true</internal_replication>\n\
             \x20               <replica><host>127.0.0.1</host><port>29000</port></replica>\n\
             \x20               <replica><host>127.0.0.1</host><port>29001</port></replica>\n\
             \x20           </shard>\n"
        );
    }

    #[test]
    fn two_shards_have_one_replica_each() {
        let c = Cluster {
            ports: CLUSTER_PORTS,
            shards: 2,
        };
        let servers = c.servers(&PORTS);
        let shards: Vec<&str> = servers
            .iter()
            .map(|s| s.replica.as_ref().unwrap().shard.as_str())
            .collect();
        assert_eq!(shards, ["01", "02"]);
        let xml = shards_xml(&servers);
        assert_eq!(xml.matches("<shard>").count(), 2);
        assert_eq!(xml.matches("<replica>").count(), 2);
    }
}
