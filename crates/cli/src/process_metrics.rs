//! Process and build metrics for the long-running subcommands (`consume`, `serve`):
//! `process_cpu_seconds_total`, `process_resident_memory_bytes`, `process_open_fds`,
//! `process_start_time_seconds` (and the rest of what `metrics-process` reads from /proc),
//! refreshed every [`EVERY`], and `auditlog_build_info{version,command}` = 1.

use std::time::Duration;

/// Gauge, labels `version`, `command`: always 1; which build runs which subcommand.
pub const BUILD_INFO: &str = "auditlog_build_info";

/// The process metrics this module exports (what the drift test checks against).
#[cfg(test)]
pub const PROCESS: &[&str] = &[
    "process_cpu_seconds_total",
    "process_open_fds",
    "process_max_fds",
    "process_virtual_memory_bytes",
    "process_virtual_memory_max_bytes",
    "process_resident_memory_bytes",
    "process_start_time_seconds",
    "process_threads",
];

/// How often the process metrics are read.
pub const EVERY: Duration = Duration::from_secs(5);

/// Describes and records the metrics, then refreshes them every [`EVERY`] in a task of its own.
/// Call after [`crate::recorder::install`] (metrics recorded before go nowhere).
pub fn install(command: &'static str) {
    let collector = metrics_process::Collector::default();
    collector.describe();
    metrics::describe_gauge!(
        BUILD_INFO,
        "Always 1: the version of the running auditlog binary and its subcommand"
    );
    metrics::gauge!(BUILD_INFO, "version" => env!("CARGO_PKG_VERSION"), "command" => command)
        .set(1.0);
    collector.collect();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(EVERY);
        loop {
            tick.tick().await;
            collector.collect();
        }
    });
}
