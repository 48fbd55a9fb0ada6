//! `auditlog-stack COMMAND`: the local stack's command line, run by `deploy/local/stack.sh`.
//! Exit codes: 0 done, 1 failed (or `status`: a required component is not healthy), 2 usage.

use std::process::ExitCode;

use auditlog_stack::{Component, Stack, UnknownProfile};

const USAGE: &str = "\
usage: deploy/local/stack.sh COMMAND

  up                      start everything (idempotent): ClickHouse, broker, topics, schema;
                          dev profile also: consumer, API/dashboard, demo token and events
  down                    stop every process this stack started (SIGTERM, then SIGKILL)
  status                  each component's PID, port and health (exit 1 if one is down)
  start COMPONENT         start one component (clickhouse, broker, consumer, api;
                          cluster profile also zookeeper, clickhouse2)
  stop COMPONENT          stop one component
  restart COMPONENT       stop then start one component
  env                     print shell exports describing this stack (for tests)

Profiles: STACK_PROFILE=dev (default; ports 8123/9000/9092/8080/8081, data .data/dev) or
STACK_PROFILE=test (18123/19000/19092/18080/18081, data .data/test, infrastructure only) or
STACK_PROFILE=cluster (ZooKeeper 22181 and two ClickHouse servers, 28123/29000 and 28124/29001,
one shard x two replicas, cluster 'auditlog'; broker 29092, API 28080, consumer 28081).
Overrides: STACK_CH_HTTP_PORT STACK_CH_TCP_PORT STACK_KAFKA_PORT STACK_API_PORT
STACK_CONSUMER_PORT STACK_DATA_DIR STACK_APPS STACK_SEED STACK_TIMEOUT STACK_STOP_TIMEOUT
STACK_ZK_PORT STACK_CH2_HTTP_PORT STACK_SHARDS ... (see docs/local-stack.md for all of them).";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let usage_error = || {
        eprintln!("{USAGE}");
        ExitCode::from(2)
    };
    match args.as_slice() {
        ["-h" | "--help" | "help"] => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        ["up" | "down" | "status" | "env"] => {}
        ["start" | "stop" | "restart", _] => {}
        _ => return usage_error(),
    }
    let stack = match Stack::from_env() {
        Ok(stack) => stack,
        Err(e) if e.downcast_ref::<UnknownProfile>().is_some() => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
        Err(e) => {
            eprintln!("stack.sh: {e:#}");
            return ExitCode::from(2);
        }
    };
    let result = match args.as_slice() {
        ["up"] => stack.up().map(|report| report.problems.is_empty()),
        ["down"] => stack.down().map(|()| true),
        ["status"] => {
            let (table, ok) = stack.status();
            println!("{table}");
            Ok(ok)
        }
        ["env"] => {
            print!("{}", stack.env_exports());
            Ok(true)
        }
        [command, name] => {
            let Some(c) = Component::parse(name) else {
                stack.log.error(format!(
                    "unknown component '{name}' (zookeeper, clickhouse, clickhouse2, broker, consumer, api)"
                ));
                return ExitCode::FAILURE;
            };
            match *command {
                "start" => stack.start(c).map(|_| true),
                "stop" => stack.stop(c).map(|()| true),
                _ => stack.restart(c).map(|_| true),
            }
        }
        _ => return usage_error(),
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            stack.log.error(format!("{e:#}"));
            ExitCode::FAILURE
        }
    }
}
