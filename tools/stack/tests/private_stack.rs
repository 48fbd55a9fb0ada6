//! A private stack (test profile, free ports, its own data dir) brought up, stopped and started
//! component by component, and down again, through the library, against the real ClickHouse
//! and Tansu (installed on first use like any stack).

use std::time::Duration;

use auditlog_stack::{Component, Ports, Stack, Started};

fn free_ports(n: usize) -> Vec<u16> {
    let listeners: Vec<_> = (0..n)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    listeners
        .iter()
        .map(|l| l.local_addr().unwrap().port())
        .collect()
}

#[test]
fn a_private_stack_comes_up_restarts_components_and_goes_down() {
    let ports = free_ports(5);
    let dir = auditlog_stack::default_root()
        .canonicalize()
        .unwrap()
        .join(".data/private")
        .join(format!("stacktest_{}", std::process::id()));
    let ports = Ports {
        ch_http: ports[0],
        ch_tcp: ports[1],
        kafka: ports[2],
        api: ports[3],
        consumer: ports[4],
    };
    let mut vars = auditlog_stack::private_vars(&dir, &ports);
    // No schema: this test is about the processes.
    vars.push(("STACK_AUDITLOG_BIN".into(), "/nonexistent/auditlog".into()));
    let stack = Stack::with_vars(&vars).unwrap();
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let report = stack
            .up()
            .unwrap_or_else(|e| panic!("{e:#}\n{}", stack.output()));
        assert!(report.problems.is_empty());
        let (table, ok) = stack.status();
        assert!(ok, "{table}");
        assert!(table.contains("healthy"), "{table}");
        let ch = stack.pid(Component::ClickHouse).expect("clickhouse PID");
        assert!(stack
            .processes(Some(Component::ClickHouse))
            .iter()
            .any(|(pid, _)| *pid == ch));

        // A second `up` starts no duplicates.
        stack.up().unwrap();
        assert_eq!(stack.pid(Component::ClickHouse), Some(ch));

        stack.stop(Component::ClickHouse).unwrap();
        assert_eq!(stack.pid(Component::ClickHouse), None);
        let (table, ok) = stack.status();
        assert!(!ok, "{table}");
        assert!(table.contains("stopped"), "{table}");
        assert_eq!(
            stack.start(Component::ClickHouse).unwrap(),
            Started::Started
        );
        assert_eq!(
            stack.start(Component::ClickHouse).unwrap(),
            Started::AlreadyRunning
        );
        assert_eq!(stack.restart(Component::Broker).unwrap(), Started::Started);
        assert!(stack.healthy(Component::Broker));
        let out = stack.output();
        assert!(
            out.contains("topics: created audit-events (6 partitions)"),
            "{out}"
        );
        assert!(
            out.contains("schema: /nonexistent/auditlog not built"),
            "{out}"
        );
    }));
    stack.down().unwrap();
    std::thread::sleep(Duration::from_millis(100));
    let left = stack.processes(None);
    for (pid, _) in &left {
        auditlog_stack::process::sigkill(*pid);
    }
    let _ = std::fs::remove_dir_all(&dir);
    assert!(left.is_empty(), "left running after down: {left:?}");
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
}

#[test]
fn components_outside_the_profile_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().display().to_string();
    let stack = Stack::with_vars(&[("STACK_PROFILE", "test"), ("STACK_DATA_DIR", &data)]).unwrap();
    for c in [Component::ZooKeeper, Component::ClickHouse2] {
        let e = stack.start(c).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("{} is not part of the test profile", c.name())
        );
    }
    let (table, _) = stack.status();
    assert!(!table.contains("zookeeper"), "{table}");
}
