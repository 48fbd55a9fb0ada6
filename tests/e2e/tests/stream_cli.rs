//! `auditlog stream` run as the real binary against the test stack's ClickHouse: create (plain
//! and `--json`), list, pause, resume, replay, rotate-secret and delete, and the errors that
//! name the flag. Runs in a few seconds.

use std::process::{Command, Output};

use anyhow::{ensure, Context as _, Result};
use serde_json::Value;

/// `auditlog` pointed at one fresh database.
struct Auditlog {
    database: String,
}

impl Auditlog {
    fn run(&self, args: &[&str]) -> Result<Output> {
        Command::new(auditlog_testkit::auditlog_bin())
            .args(args)
            .env(
                "AUDITLOG_CLICKHOUSE__URL",
                auditlog_testkit::clickhouse_url(),
            )
            .env("AUDITLOG_CLICKHOUSE__DATABASE", &self.database)
            .env("RUST_LOG", "warn")
            .output()
            .context("run auditlog (AUDITLOG_BIN or target/debug/auditlog)")
    }

    /// Runs `args`, which must succeed; returns stdout and stderr.
    fn ok(&self, args: &[&str]) -> Result<(String, String)> {
        let out = self.run(args)?;
        let (stdout, stderr) = (
            String::from_utf8(out.stdout)?,
            String::from_utf8_lossy(&out.stderr).into_owned(),
        );
        ensure!(
            out.status.success(),
            "auditlog {args:?}: {}\n{stdout}\n{stderr}",
            out.status
        );
        Ok((stdout, stderr))
    }

    /// Runs `args` and parses stdout as one JSON document.
    fn json(&self, args: &[&str]) -> Result<Value> {
        let (stdout, _) = self.ok(args)?;
        ensure!(stdout.trim_end().lines().count() == 1, "{stdout:?}");
        serde_json::from_str(&stdout).with_context(|| format!("not JSON: {stdout}"))
    }

    /// Runs `args`, which must fail without output; returns stderr.
    fn fails(&self, args: &[&str]) -> Result<String> {
        let out = self.run(args)?;
        ensure!(
            !out.status.success() && out.stdout.is_empty(),
            "{args:?} did not fail"
        );
        Ok(String::from_utf8_lossy(&out.stderr).into_owned())
    }

    fn streams(&self, workspace: Option<&str>) -> Result<Vec<Value>> {
        let mut args = vec!["stream", "list", "--json"];
        args.extend(workspace);
        let doc = self.json(&args)?;
        Ok(doc["streams"].as_array().context("streams")?.clone())
    }
}

#[tokio::test]
async fn streams_are_managed_from_the_command_line() -> Result<()> {
    let ch = auditlog_testkit::fresh_database("streamcli").await?;
    let cli = Auditlog {
        database: ch.database,
    };
    ensure!(cli.streams(None)?.is_empty());

    // A webhook: the id, then the secret, on stdout.
    let (stdout, stderr) = cli.ok(&[
        "stream",
        "create",
        "ws_s",
        "--webhook",
        "http://127.0.0.1:9/hook",
        "--format",
        "ocsf",
        "--filter",
        "event=key.*",
        "--filter",
        "outcome=failure",
        "--start",
        "beginning",
        "--name",
        "siem",
    ])?;
    let lines: Vec<&str> = stdout.lines().collect();
    ensure!(lines.len() == 2, "{stdout:?}");
    let (id, secret) = (lines[0].to_owned(), lines[1].to_owned());
    ensure!(
        id.starts_with("str_") && secret.starts_with("whsec_"),
        "{stdout}"
    );
    ensure!(
        stderr.contains(&id) && stderr.contains("webhook"),
        "{stderr}"
    );

    // Splunk, as JSON: the token never printed.
    let splunk = cli.json(&[
        "stream",
        "create",
        "ws_t",
        "--splunk",
        "https://splunk.example:8088",
        "--splunk-token",
        "hec-token-0123456789",
        "--index",
        "audit",
        "--json",
    ])?;
    ensure!(splunk["secret"].is_null(), "{splunk}");
    ensure!(splunk["destination"]["token"] == "****6789", "{splunk}");
    ensure!(splunk["destination"]["index"] == "audit", "{splunk}");

    let mine = cli.streams(Some("ws_s"))?;
    ensure!(mine.len() == 1, "{mine:?}");
    let s = &mine[0];
    ensure!(s["stream_id"] == id.as_str() && s["name"] == "siem" && s["format"] == "ocsf");
    ensure!(
        s["filter"] == serde_json::json!({"event": "key.*", "outcome": "failure"}),
        "{s}"
    );
    ensure!(
        !s.to_string().contains(&secret),
        "the secret is shown once: {s}"
    );
    ensure!(cli.streams(None)?.len() == 2);
    let (text, _) = cli.ok(&["stream", "list"])?;
    ensure!(
        text.starts_with("STREAM_ID\tWORKSPACE\tNAME\tDESTINATION\tFORMAT\tDESIRED\tSTATE"),
        "{text}"
    );
    ensure!(
        text.lines()
            .any(|l| l.starts_with(&id) && l.contains("\twebhook\tocsf\tactive\t")),
        "{text}"
    );

    cli.ok(&["stream", "pause", &id])?;
    ensure!(cli.streams(Some("ws_s"))?[0]["desired"] == "paused");
    cli.ok(&["stream", "resume", &id])?;
    ensure!(cli.streams(Some("ws_s"))?[0]["desired"] == "active");

    let (_, stderr) = cli.ok(&["stream", "replay", &id, "--from", "2026-01-01T00:00:00Z"])?;
    ensure!(stderr.contains("generation 1"), "{stderr}");
    ensure!(cli.streams(Some("ws_s"))?[0]["generation"] == 1);

    let (rotated, _) = cli.ok(&["stream", "rotate-secret", &id, "--keep-old-for", "1h"])?;
    let rotated = rotated.trim_end();
    ensure!(
        rotated.starts_with("whsec_") && rotated != secret,
        "{rotated}"
    );
    ensure!(
        cli.streams(Some("ws_s"))?[0]["secrets"]
            .as_array()
            .map(Vec::len)
            == Some(2)
    );

    cli.ok(&["stream", "delete", &id])?;
    cli.ok(&["stream", "delete", &id])?;
    ensure!(cli.streams(Some("ws_s"))?.is_empty());
    ensure!(cli
        .fails(&["stream", "delete", "str_nope"])?
        .contains("str_nope"));
    ensure!(cli.fails(&["stream", "pause", &id])?.contains(&id));
    Ok(())
}

#[tokio::test]
async fn bad_flags_are_refused_naming_them() -> Result<()> {
    let ch = auditlog_testkit::fresh_database("streamcli_bad").await?;
    let cli = Auditlog {
        database: ch.database,
    };
    let s3 = |window: &'static str| -> Vec<&'static str> {
        vec![
            "stream",
            "create",
            "ws_s",
            "--s3-endpoint",
            "http://127.0.0.1:9000",
            "--bucket",
            "audit",
            "--region",
            "us-east-1",
            "--access-key-id",
            "a",
            "--secret-access-key",
            "b",
            "--window",
            window,
        ]
    };
    let webhook = |extra: &[&'static str]| -> Vec<&'static str> {
        let mut v = vec![
            "stream",
            "create",
            "ws_s",
            "--webhook",
            "https://hooks.example.com/x",
        ];
        v.extend_from_slice(extra);
        v
    };
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec![
                "stream",
                "create",
                "ws_s",
                "--webhook",
                "http://hooks.example.com/",
            ],
            "--webhook",
        ),
        (
            vec!["stream", "create", "ws_s", "--splunk", "https://s.example"],
            "--splunk-token",
        ),
        (
            vec![
                "stream",
                "create",
                "ws_s",
                "--datadog",
                "https://d.example",
                "--api-key",
                " ",
            ],
            "--api-key",
        ),
        (vec!["stream", "create", "ws_s"], "--webhook"),
        (
            webhook(&["--datadog", "https://d.example", "--api-key", "k"]),
            "--datadog",
        ),
        (
            webhook(&["--filter", "since=2026-01-01T00:00:00Z"]),
            "--filter since",
        ),
        (webhook(&["--filter", "outcome"]), "--filter"),
        (
            webhook(&["--filter", "actor_type=robot"]),
            "--filter actor_type",
        ),
        (webhook(&["--start", "yesterday"]), "--start"),
        (webhook(&["--format", "xml"]), "--format"),
        (s3("5s"), "--window"),
        (s3("soon"), "--window"),
        (
            vec![
                "stream",
                "create",
                "ws s",
                "--webhook",
                "https://hooks.example.com/x",
            ],
            "WORKSPACE",
        ),
        (
            vec!["stream", "replay", "str_x", "--from", "last week"],
            "--from",
        ),
        (
            vec![
                "stream",
                "rotate-secret",
                "str_x",
                "--keep-old-for",
                "forever",
            ],
            "--keep-old-for",
        ),
    ];
    for (args, flag) in cases {
        let err = cli.fails(&args)?;
        ensure!(err.contains(flag), "{args:?}: {err}");
    }
    ensure!(cli.streams(None)?.is_empty(), "nothing was created");
    Ok(())
}
