//! The `auditlog` binary's list and get commands with `--json` (one JSON document on stdout),
//! token expiry from the command line, and the workspace id rule, against the test stack's
//! ClickHouse and broker.

use std::process::{Command, Output};
use std::time::Duration;

use anyhow::{ensure, Context as _, Result};
use base64::Engine as _;
use rdkafka::config::ClientConfig;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use serde_json::Value;

struct Cli {
    database: String,
    dlq_topic: String,
}

impl Cli {
    /// A fresh database; with `dlq`, a fresh dead-letter topic on the broker too.
    async fn new(prefix: &str, dlq: bool) -> Result<Self> {
        let ch = auditlog_testkit::fresh_database(prefix).await?;
        let dlq_topic = auditlog_testkit::unique_name(&format!("{prefix}_dlq"));
        if dlq {
            auditlog_testkit::create_topic(&dlq_topic, 1).await?;
        }
        Ok(Self {
            database: ch.database,
            dlq_topic,
        })
    }

    fn run(&self, args: &[&str]) -> Result<Output> {
        Command::new(auditlog_testkit::auditlog_bin())
            .args(args)
            .env(
                "AUDITLOG_CLICKHOUSE__URL",
                auditlog_testkit::clickhouse_url(),
            )
            .env("AUDITLOG_CLICKHOUSE__DATABASE", &self.database)
            .env("AUDITLOG_KAFKA__BROKERS", auditlog_testkit::brokers())
            .env("AUDITLOG_KAFKA__DLQ_TOPIC", &self.dlq_topic)
            .env("RUST_LOG", "warn")
            .output()
            .context("run auditlog (AUDITLOG_BIN or target/debug/auditlog)")
    }

    /// Runs `args`, which must succeed, and parses stdout as exactly one JSON document.
    fn json(&self, args: &[&str]) -> Result<Value> {
        let out = self.run(args)?;
        let stdout = String::from_utf8(out.stdout)?;
        ensure!(
            out.status.success(),
            "auditlog {args:?}: {}\n{stdout}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        ensure!(
            stdout.ends_with('\n') && stdout.trim_end().lines().count() == 1,
            "not one line: {stdout:?}"
        );
        serde_json::from_str(&stdout).with_context(|| format!("not JSON: {stdout}"))
    }
}

fn keys(v: &Value) -> Vec<&str> {
    let mut k: Vec<&str> = v
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    k.sort_unstable();
    k
}

#[tokio::test]
async fn token_and_plan_commands_print_json() -> Result<()> {
    let cli = Cli::new("clijson", false).await?;
    let listed = cli.json(&["token", "list", "--json"])?;
    ensure!(listed == serde_json::json!({"tokens": []}), "{listed}");

    let created = cli.json(&[
        "token",
        "create",
        "ws_j",
        "--name",
        "ci",
        "--expires-in",
        "30d",
        "--json",
    ])?;
    ensure!(
        keys(&created)
            == [
                "expires_at",
                "scope",
                "token",
                "token_id",
                "workspace_id",
                "workspaces"
            ],
        "{created}"
    );
    let expires =
        chrono::DateTime::parse_from_rfc3339(created["expires_at"].as_str().expect("set"))?;
    let hours = (expires.with_timezone(&chrono::Utc) - chrono::Utc::now()).num_hours();
    ensure!((29 * 24..=30 * 24).contains(&hours), "expires in {hours} h");
    // Without --json, only the secret is on stdout.
    let plain = cli.run(&["token", "create", "ws_j"])?;
    ensure!(plain.status.success());
    let secret = String::from_utf8(plain.stdout)?;
    ensure!(
        secret.starts_with("alt_") && secret.trim_end().lines().count() == 1,
        "{secret}"
    );

    let listed = cli.json(&["token", "list", "ws_j", "--json"])?;
    let tokens = listed["tokens"].as_array().expect("array");
    ensure!(tokens.len() == 2, "{listed}");
    for t in tokens {
        ensure!(
            keys(t)
                == [
                    "created_at",
                    "expires_at",
                    "last_used_at",
                    "name",
                    "revoked_at",
                    "scope",
                    "token_id",
                    "workspace_id",
                    "workspaces"
                ],
            "{t}"
        );
    }
    ensure!(tokens[0]["token_id"] == created["token_id"]);
    ensure!(tokens[0]["expires_at"] == created["expires_at"]);
    ensure!(tokens[0]["name"] == "ci" && tokens[1]["expires_at"].is_null());
    ensure!(tokens[0]["last_used_at"].is_null() && tokens[0]["revoked_at"].is_null());
    // The text list shows the new columns.
    let text = String::from_utf8(cli.run(&["token", "list", "ws_j"])?.stdout)?;
    ensure!(
        text.starts_with(
            "TOKEN_ID\tWORKSPACE\tSCOPE\tNAME\tCREATED_AT\tEXPIRES_AT\tLAST_USED_AT\tREVOKED_AT\n"
        ),
        "{text}"
    );
    ensure!(
        text.contains(created["expires_at"].as_str().expect("set")),
        "{text}"
    );

    // A bad duration or workspace id is refused, naming it, and creates nothing.
    for args in [
        &["token", "create", "ws_j", "--expires-in", "soon"][..],
        &["token", "create", "ws j"],
        &["token", "create", " "],
    ] {
        let out = cli.run(args)?;
        let err = String::from_utf8_lossy(&out.stderr);
        ensure!(!out.status.success() && out.stdout.is_empty(), "{args:?}");
        ensure!(
            err.contains("--expires-in") || err.contains("workspace_id"),
            "{args:?}: {err}"
        );
    }
    ensure!(
        cli.json(&["token", "list", "--json"])?["tokens"]
            .as_array()
            .map(Vec::len)
            == Some(2)
    );

    let plan = cli.json(&["plan", "get", "ws_j", "--json"])?;
    ensure!(
        plan == serde_json::json!({"workspace_id": "ws_j", "plan": "free", "retention_days": 7, "explicit": false}),
        "{plan}"
    );
    let set = cli.json(&["plan", "set", "ws_j", "enterprise", "--unlimited", "--json"])?;
    ensure!(
        set == serde_json::json!({"workspace_id": "ws_j", "plan": "enterprise", "retention_days": null, "explicit": true}),
        "{set}"
    );
    let plan = cli.json(&["plan", "get", "ws_j", "--json"])?;
    ensure!(plan == set, "{plan}");
    let out = cli.run(&["plan", "set", "ws j", "pro"])?;
    ensure!(!out.status.success());
    ensure!(String::from_utf8_lossy(&out.stderr).contains("WORKSPACE"));
    Ok(())
}

#[tokio::test]
async fn dlq_list_prints_json_with_the_exact_payload() -> Result<()> {
    let cli = Cli::new("clidlq", true).await?;
    let empty = cli.json(&["dlq", "list", "--json"])?;
    ensure!(
        empty == serde_json::json!({"topic": cli.dlq_topic, "total": 0, "messages": []}),
        "{empty}"
    );
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", auditlog_testkit::brokers())
        .create()?;
    let dead: [(&str, &[u8]); 3] = [
        ("not_json", b"{this is not json"),
        ("invalid_utf8", b"{\"a\": \"\xff\xfe\"}"),
        ("invalid_field", b"{\"version\":1}"),
    ];
    for (i, (code, payload)) in dead.iter().enumerate() {
        let offset = (100 + i).to_string();
        let headers = OwnedHeaders::new()
            .insert(Header {
                key: auditlog_sink::dlq::H_CODE,
                value: Some(*code),
            })
            .insert(Header {
                key: auditlog_sink::dlq::H_MESSAGE,
                value: Some("why it failed"),
            })
            .insert(Header {
                key: auditlog_sink::dlq::H_TOPIC,
                value: Some("audit-events"),
            })
            .insert(Header {
                key: auditlog_sink::dlq::H_PARTITION,
                value: Some("3"),
            })
            .insert(Header {
                key: auditlog_sink::dlq::H_OFFSET,
                value: Some(offset.as_str()),
            })
            .insert(Header {
                key: auditlog_sink::dlq::H_AT,
                value: Some("2026-01-02T03:04:05.678Z"),
            });
        let key = format!("key-{i}");
        producer
            .send(
                FutureRecord::to(&cli.dlq_topic)
                    .key(key.as_bytes())
                    .payload(*payload)
                    .headers(headers),
                Duration::from_secs(10),
            )
            .await
            .map_err(|(e, _)| e)?;
    }
    let doc = cli.json(&["dlq", "list", "--json"])?;
    ensure!(keys(&doc) == ["messages", "topic", "total"], "{doc}");
    ensure!(
        doc["total"] == 3 && doc["topic"] == cli.dlq_topic.as_str(),
        "{doc}"
    );
    let messages = doc["messages"].as_array().expect("array");
    ensure!(messages.len() == 3, "{doc}");
    for (i, (m, (code, payload))) in messages.iter().zip(dead.iter()).enumerate() {
        ensure!(
            keys(m)
                == [
                    "code",
                    "failed_at",
                    "key",
                    "offset",
                    "partition",
                    "payload",
                    "payload_base64",
                    "reason",
                    "source"
                ],
            "{m}"
        );
        ensure!(m["code"] == *code && m["reason"] == "why it failed", "{m}");
        ensure!(m["partition"] == 0 && m["offset"] == i as u64, "{m}");
        ensure!(m["source"] == format!("audit-events/3/{}", 100 + i), "{m}");
        ensure!(m["failed_at"] == "2026-01-02T03:04:05.678Z", "{m}");
        ensure!(m["key"] == format!("key-{i}"), "{m}");
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(m["payload_base64"].as_str().expect("string"))?;
        ensure!(bytes == *payload, "{m}: payload bytes differ");
        match std::str::from_utf8(payload) {
            Ok(text) => ensure!(m["payload"] == text, "{m}"),
            Err(_) => ensure!(m["payload"].is_null(), "{m}"),
        }
    }
    // --limit keeps the newest; total still counts the whole topic.
    let last = cli.json(&["dlq", "list", "--limit", "1", "--json"])?;
    ensure!(last["total"] == 3, "{last}");
    ensure!(
        last["messages"].as_array().map(Vec::len) == Some(1),
        "{last}"
    );
    ensure!(last["messages"][0]["code"] == "invalid_field", "{last}");
    Ok(())
}
