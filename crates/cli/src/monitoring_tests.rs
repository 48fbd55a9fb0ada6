//! deploy/monitoring/ (Prometheus alert rules, Grafana dashboard) against the code: the files
//! load, have the shape their tools expect, and name only metrics the binaries export.

use std::collections::BTreeSet;
use std::path::PathBuf;

use serde_json::Value;

fn monitoring(file: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../deploy/monitoring")
        .join(file)
}

/// Every series name the binaries export (histograms with their `_bucket`, `_sum`, `_count`).
fn exported() -> BTreeSet<String> {
    let histograms = [
        auditlog_sink::observe::BATCH_ROWS,
        auditlog_sink::observe::BATCH_BYTES,
        auditlog_sink::observe::BATCH_SECONDS,
        auditlog_producer::metrics::DELIVERY_LATENCY_SECONDS,
        auditlog_query::api::metrics::DURATION,
    ];
    let mut names: BTreeSet<String> = auditlog_sink::observe::ALL
        .iter()
        .chain(auditlog_producer::metrics::ALL)
        .chain(crate::process_metrics::PROCESS)
        .chain(&[
            crate::process_metrics::BUILD_INFO,
            auditlog_query::api::metrics::REQUESTS,
        ])
        .map(|s| (*s).to_owned())
        .collect();
    for h in histograms {
        names.insert(h.to_owned());
        for suffix in ["_bucket", "_sum", "_count"] {
            names.insert(format!("{h}{suffix}"));
        }
    }
    names
}

/// The metric names a PromQL expression uses: identifiers starting with `auditlog_` or
/// `process_` (functions, label names and keywords never do).
fn metrics_in(expr: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut word = String::new();
    let mut in_quotes = false;
    for c in expr.chars().chain(std::iter::once(' ')) {
        if c == '"' {
            in_quotes = !in_quotes;
        }
        if !in_quotes && (c.is_ascii_alphanumeric() || c == '_' || c == ':') {
            word.push(c);
            continue;
        }
        if word.starts_with("auditlog_") || word.starts_with("process_") {
            out.push(word.clone());
        }
        word.clear();
    }
    out
}

fn assert_exported(what: &str, expr: &str, exported: &BTreeSet<String>) -> usize {
    let used = metrics_in(expr);
    for m in &used {
        assert!(
            exported.contains(m),
            "{what}: {m} is not a metric the code exports (expr: {expr})"
        );
    }
    used.len()
}

#[test]
fn expressions_name_metrics_by_their_identifiers() {
    assert_eq!(
        metrics_in(r#"sum by (le) (rate(auditlog_a_bucket{route="auditlog_x"}[5m])) / process_b"#),
        vec!["auditlog_a_bucket", "process_b"]
    );
}

#[test]
fn alert_rules_are_well_formed_and_name_exported_metrics() {
    let text = std::fs::read_to_string(monitoring("alerts.yml")).expect("alerts.yml");
    let doc: Value = serde_norway::from_str(&text).expect("alerts.yml is YAML");
    let exported = exported();
    let groups = doc["groups"].as_array().expect("groups: a list");
    assert!(!groups.is_empty());
    let mut alerts = BTreeSet::new();
    for g in groups {
        let group = g["name"].as_str().expect("every group has a name");
        for r in g["rules"].as_array().expect("rules: a list") {
            let name = r["alert"].as_str().expect("every rule is an alert");
            assert!(alerts.insert(name.to_owned()), "alert {name} twice");
            let expr = r["expr"].as_str().expect("expr");
            assert!(
                assert_exported(&format!("{group}/{name}"), expr, &exported) > 0,
                "{name} uses no auditlog metric"
            );
            let severity = r["labels"]["severity"].as_str().expect("labels.severity");
            assert!(
                ["critical", "warning", "info"].contains(&severity),
                "{name}: severity {severity}"
            );
            assert!(
                r["annotations"]["summary"].is_string(),
                "{name}: annotations.summary"
            );
            if let Some(f) = r.get("for") {
                let f = f.as_str().expect("for: a duration");
                assert!(
                    f.ends_with('m') || f.ends_with('s') || f.ends_with('h'),
                    "{name}: for {f}"
                );
            }
        }
    }
    // What an operator is promised (docs/operations.md).
    for required in [
        "AuditlogConsumerLagGrowing",
        "AuditlogConsumerPaused",
        "AuditlogDeadLetters",
        "AuditlogInsertRetries",
        "AuditlogApiErrors",
        "AuditlogApiLatency",
    ] {
        assert!(alerts.contains(required), "no {required} alert");
    }
}

#[test]
fn the_dashboard_is_grafana_json_and_names_exported_metrics() {
    let text = std::fs::read_to_string(monitoring("grafana-dashboard.json")).expect("dashboard");
    let dash: Value = serde_json::from_str(&text).expect("dashboard is JSON");
    assert!(dash["uid"].is_string() && dash["title"].is_string());
    assert!(dash["schemaVersion"].is_u64());
    let exported = exported();
    let mut used = BTreeSet::new();
    let mut ids = BTreeSet::new();
    for p in dash["panels"].as_array().expect("panels") {
        let title = p["title"].as_str().expect("every panel has a title");
        assert!(
            ids.insert(p["id"].as_u64().expect("id")),
            "{title}: id twice"
        );
        assert!(p["gridPos"]["w"].is_u64(), "{title}: gridPos");
        if p["type"] == "row" {
            continue;
        }
        let targets = p["targets"].as_array().expect("targets");
        assert!(!targets.is_empty(), "{title}: no query");
        for t in targets {
            let expr = t["expr"].as_str().expect("expr");
            assert_exported(title, expr, &exported);
            used.extend(metrics_in(expr));
        }
    }
    for v in dash["templating"]["list"].as_array().expect("templating") {
        if let Some(q) = v["query"].as_str() {
            assert_exported("templating", q, &exported);
        }
    }
    // The dashboard shows the consumer's core signals and the API's.
    for m in [
        auditlog_sink::observe::LAG,
        auditlog_sink::observe::PAUSED,
        auditlog_sink::observe::DEAD_LETTERED,
        auditlog_sink::observe::RETRIES,
        auditlog_query::api::metrics::REQUESTS,
        "process_resident_memory_bytes",
    ] {
        assert!(used.contains(m), "the dashboard does not show {m}");
    }
}
