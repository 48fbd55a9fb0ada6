//! The tamper-evident log end to end: events produced to the real broker, stored by `auditlog
//! consume`, sequenced and signed by `auditlog sequencer`, served by `auditlog serve`, checked
//! by `auditlog verify` online (`--api`) and offline (`--export` of the downloaded export).
//!
//! Each test has its own topic and database, events sequenced in two batches (a checkpoint of
//! exactly the first batch's size is signed in between). A clean log verifies; each tampering
//! (applied to a copy of the database, so the running sequencer never sees it; its own `auditlog
//! serve` on the copy) must be caught by both `verify --api` and `verify --export` (exit 1, the
//! failure naming the event): a payload edited, a description edited, a row deleted, a forged
//! row inserted, two rows swapped, the newest rows truncated with their leaves and
//! checkpoints, the log rolled back, the log re-signed with another key (the last three with
//! the checkpoint remembered by an earlier run, or caught by the pinned key). And no false alarm
//! after a TTL deletion (events 10 days old in a Free workspace) or after a plan change (Pro,
//! then Free, then TTL).

mod ingest_support;

use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context as _, Result};
use auditlog_store::ClickHouseConfig;
use auditlog_tlog::{KeyKind, Note, Signer};
use ingest_support::{aged_events, messages, synth, wait_mutations_of, Guard, World};
use serde_json::Value;

const WS_A: &str = "ws_integritya";
const WS_FREE: &str = "ws_integrityfree";
const WS_DOWN: &str = "ws_integritydown";
const KEY_NAME: &str = "auditlog.e2e";
/// Leaves after the first batch (a checkpoint of exactly this size is signed) and in all.
const FIRST: u64 = 200;
const ALL: u64 = 300;

/// Tables copied into a case's database (everything `serve` reads).
const TABLES: &[&str] = &[
    "events",
    "workspace_plans",
    "api_tokens",
    "log_leaves",
    "log_tiles",
    "log_heads",
    "log_positions",
    "log_checkpoints",
    "log_cosignatures",
    "log_keys",
    "plan_changes",
];

fn free_listen() -> Result<String> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    Ok(format!("127.0.0.1:{port}"))
}

/// `auditlog serve` on `database`, ready.
async fn serve(w: &World, database: &str, tag: &str) -> Result<(String, Guard)> {
    let listen = free_listen()?;
    let log = std::fs::File::create(w.log_path(tag))?;
    let child: Child = w
        .command(&["serve", "--listen", &listen])
        .env("AUDITLOG_CLICKHOUSE__DATABASE", database)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .context("spawn auditlog serve")?;
    let guard = Guard(Some(child));
    let base = format!("http://{listen}");
    let start = Instant::now();
    loop {
        if let Ok(r) = reqwest::get(format!("{base}/health")).await {
            if r.status().is_success() {
                return Ok((base, guard));
            }
        }
        if start.elapsed() > Duration::from_secs(30) {
            bail!("serve not ready (log {})", w.log_path(tag).display());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The run of `auditlog verify ARGS`: exit code and the JSON report.
async fn verify(w: &World, args: Vec<String>) -> Result<(i32, Value)> {
    let mut cmd = w.command(&["verify", "--json"]);
    cmd.args(&args);
    let out = tokio::task::spawn_blocking(move || cmd.output()).await??;
    let code = out.status.code().unwrap_or(-1);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let report = serde_json::from_str(stdout.trim()).unwrap_or(Value::Null);
    ensure!(
        code != 2 && report != Value::Null,
        "verify {args:?}: exit {code}\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok((code, report))
}

/// Everything the cases share.
struct Setup {
    w: World,
    key: String,
    tokens: std::collections::HashMap<&'static str, String>,
    /// Leaf index -> event id of WS_A.
    leaves: Vec<String>,
    /// The checkpoint of ALL leaves, remembered by a clean `verify --api --remember`.
    remembered: PathBuf,
    dir: tempfile::TempDir,
    /// The witness (`--witness`): its URL and cosignature verifier key.
    witness: Option<(String, String)>,
    _procs: Vec<Guard>,
}

impl Setup {
    fn api_args(&self, base: &str, ws: &str) -> Vec<String> {
        vec![
            "--api".into(),
            base.into(),
            "--token".into(),
            self.tokens[ws].clone(),
            "--key".into(),
            self.key.clone(),
        ]
    }

    /// `verify --export FILE --key KEY` with `extra` arguments.
    fn offline_args(&self, export: &Path, extra: &[&str]) -> Vec<String> {
        let mut a = vec![
            "--export".to_owned(),
            export.display().to_string(),
            "--key".to_owned(),
            self.key.clone(),
        ];
        a.extend(extra.iter().map(|e| (*e).to_owned()));
        a
    }

    /// Downloads the verifiable export of `ws` into a file.
    async fn download(&self, base: &str, ws: &str, path: &Path) -> Result<()> {
        let r = reqwest::Client::new()
            .get(format!("{base}/v1/export?format=log"))
            .bearer_auth(&self.tokens[ws])
            .send()
            .await?;
        ensure!(r.status().is_success(), "export: {}", r.status());
        std::fs::write(path, r.bytes().await?)?;
        Ok(())
    }
}

/// Waits until `ws`'s newest checkpoint covers `size` leaves.
async fn wait_checkpoint(client: &clickhouse::Client, ws: &str, size: u64) -> Result<()> {
    let start = Instant::now();
    loop {
        let got: u64 = client
            .query("SELECT max(tree_size) FROM log_checkpoints WHERE workspace_id = ?")
            .bind(ws)
            .fetch_one()
            .await?;
        if got >= size {
            ensure!(
                got == size,
                "{ws}: checkpoint of {got} leaves, {size} expected"
            );
            return Ok(());
        }
        ensure!(
            start.elapsed() < Duration::from_secs(60),
            "{ws}: checkpoint of {got} leaves after 60 s, {size} expected"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn setup() -> Result<Setup> {
    setup_with(false).await
}

/// `auditlog witness` trusting the log key, and the sequencer configured to send it every
/// checkpoint: the config file for both, the witness's URL and verifier key.
async fn start_witness(
    w: &World,
    dir: &Path,
    log_key: &str,
) -> Result<(PathBuf, String, String, Guard)> {
    let signer = Signer::generate("witness.e2e", KeyKind::Cosignature)?;
    let key_file = dir.join("witness.key");
    std::fs::write(&key_file, signer.private_key())?;
    let listen = free_listen()?;
    let url = format!("http://{listen}");
    let wkey = signer.verifier().to_string();
    let config = dir.join("auditlog.toml");
    std::fs::write(
        &config,
        format!(
            "[witness]\nlisten = \"{listen}\"\nkey_file = \"{}\"\nstate_dir = \"{}\"\n\n\
             [[witness.logs]]\norigin_prefix = \"{KEY_NAME}/\"\nverifier_key = \"{log_key}\"\n\n\
             [[sequencer.witnesses]]\nurl = \"{url}\"\nverifier_key = \"{wkey}\"\n",
            key_file.display(),
            dir.join("witness-state").display()
        ),
    )?;
    let log = std::fs::File::create(w.log_path("witness"))?;
    let guard = Guard(Some(
        w.command(&["--config", &config.display().to_string(), "witness"])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .context("spawn auditlog witness")?,
    ));
    let start = Instant::now();
    while !reqwest::get(format!("{url}/health/ready"))
        .await
        .is_ok_and(|r| r.status().is_success())
    {
        ensure!(
            start.elapsed() < Duration::from_secs(20),
            "witness not ready (log {})",
            w.log_path("witness").display()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok((config, url, wkey, guard))
}

/// Waits until the witness cosigned `ws`'s checkpoint of `size` leaves; its note.
async fn wait_witnessed(url: &str, ws: &str, size: u64) -> Result<String> {
    let start = Instant::now();
    loop {
        let r = reqwest::get(format!("{url}/checkpoint?origin={KEY_NAME}/{ws}")).await?;
        if r.status().is_success() {
            let note = r.text().await?;
            if note.lines().nth(1) == Some(size.to_string().as_str()) {
                return Ok(note);
            }
        }
        ensure!(
            start.elapsed() < Duration::from_secs(30),
            "the witness has no checkpoint of {size} leaves of {ws} after 30 s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn setup_with(with_witness: bool) -> Result<Setup> {
    let mut w = World::new("integrity", 2).await?;
    let dir = tempfile::tempdir()?;
    let signer = Signer::generate(KEY_NAME, KeyKind::Note)?;
    let key_file = dir.path().join("log.key");
    std::fs::write(&key_file, signer.private_key())?;
    let key = signer.verifier().to_string();
    w.env.extend([
        (
            "AUDITLOG_SEQUENCER__SIGNING_KEY_FILE".to_owned(),
            key_file.display().to_string(),
        ),
        ("AUDITLOG_SEQUENCER__ORIGIN_PREFIX".into(), KEY_NAME.into()),
        (
            "AUDITLOG_SEQUENCER__CHECKPOINT_INTERVAL".into(),
            "300ms".into(),
        ),
        ("AUDITLOG_SEQUENCER__POLL_INTERVAL".into(), "50ms".into()),
        ("AUDITLOG_SEQUENCER__LISTEN".into(), String::new()),
    ]);
    // WS_DOWN starts on Pro (before the consumer reads the plans).
    w.cli(&["plan", "set", WS_DOWN, "pro"])?;
    let consumer = Guard(Some(w.spawn_consumer("a")?));
    let log = std::fs::File::create(w.log_path("sequencer"))?;
    let mut procs = vec![consumer];
    let mut sequencer_args = vec!["sequencer".to_owned()];
    let mut witness = None;
    if with_witness {
        let (config, url, wkey, guard) = start_witness(&w, dir.path(), &key).await?;
        procs.push(guard);
        sequencer_args = vec![
            "--config".into(),
            config.display().to_string(),
            "sequencer".into(),
        ];
        witness = Some((url, wkey));
    }
    let args: Vec<&str> = sequencer_args.iter().map(String::as_str).collect();
    let sequencer = Guard(Some(
        w.command(&args)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .context("spawn auditlog sequencer")?,
    ));
    eprintln!("sequencer log {}", w.log_path("sequencer").display());

    // The 10-day-old rows are past Free's retention as they are stored: a TTL merge could
    // delete them before the sequencer reads them (then they are simply never logged). TTL
    // merges wait until the retention test materializes the TTL.
    let client = w.client();
    client
        .query(&format!(
            "SYSTEM STOP TTL MERGES {}.events",
            w.clickhouse.database
        ))
        .execute()
        .await?;
    // Two batches: a checkpoint of exactly FIRST leaves is signed in between.
    let mut events = synth(ALL as usize, 181, 1);
    for e in &mut events {
        e.workspace_id = WS_A.into();
    }
    let aged = aged_events(&[WS_FREE, WS_DOWN], &[10; 10], 9_000);
    w.produce(&messages(&events[..FIRST as usize])).await?;
    w.produce(&messages(&aged)).await?;
    wait_checkpoint(&client, WS_A, FIRST).await?;
    w.produce(&messages(&events[FIRST as usize..])).await?;
    for (ws, n) in [(WS_A, ALL), (WS_FREE, 10), (WS_DOWN, 10)] {
        wait_checkpoint(&client, ws, n).await?;
    }
    let leaves: Vec<String> = client
        .query(
            "SELECT toString(event_id) FROM log_leaves FINAL WHERE workspace_id = ? \
             ORDER BY leaf_index",
        )
        .bind(WS_A)
        .fetch_all()
        .await?;
    ensure!(leaves.len() as u64 == ALL, "{} leaves", leaves.len());
    let mut tokens = std::collections::HashMap::new();
    for ws in [WS_A, WS_FREE, WS_DOWN] {
        tokens.insert(ws, w.cli(&["token", "create", ws])?.trim().to_owned());
    }
    Ok(Setup {
        remembered: dir.path().join("remembered.txt"),
        w,
        key,
        tokens,
        leaves,
        dir,
        witness,
        _procs: {
            procs.push(sequencer);
            procs
        },
    })
}

/// A fresh database holding a copy of the setup's tables.
async fn copy_database(s: &Setup, tag: &str) -> Result<ClickHouseConfig> {
    let name = format!("{}_{tag}", s.w.clickhouse.database);
    let cfg = auditlog_testkit::migrated_database(&s.w.clickhouse.url, &name).await?;
    let client = cfg.client();
    for t in TABLES {
        client
            .query(&format!(
                "INSERT INTO {name}.{t} SELECT * FROM {}.{t}",
                s.w.clickhouse.database
            ))
            .execute()
            .await
            .with_context(|| format!("copy {t}"))?;
    }
    Ok(cfg)
}

/// One tampering: what it does to the copy, and the failure it must cause.
struct Case {
    name: &'static str,
    /// The failure kind both verifications must report.
    kind: &'static str,
    /// The events its failures must name (each).
    events: Vec<String>,
    /// Whether the remembered checkpoint is given (`--remember` / `--checkpoint`).
    remembered: bool,
}

async fn mutate(c: &clickhouse::Client, sql: &str, binds: &[&str]) -> Result<()> {
    let mut q = c.query(sql).with_setting("mutations_sync", "2");
    for b in binds {
        q = q.bind(*b);
    }
    q.execute().await.with_context(|| sql.to_owned())?;
    Ok(())
}

/// Applies `case` to the database of `c`.
async fn tamper(s: &Setup, case: &Case, c: &clickhouse::Client) -> Result<()> {
    let id = |i: usize| s.leaves[i].as_str();
    let name = case.name;
    match name {
        "payload_edited" => mutate(
            c,
            "ALTER TABLE events UPDATE request = '{\"edited\":true}' WHERE event_id = toUUID(?)",
            &[id(57)],
        )
        .await,
        "description_edited" => mutate(
            c,
            "ALTER TABLE events UPDATE description = 'nothing happened' WHERE event_id = toUUID(?)",
            &[id(58)],
        )
        .await,
        "row_deleted" => {
            mutate(
                c,
                "ALTER TABLE events DELETE WHERE event_id = toUUID(?)",
                &[id(59)],
            )
            .await
        }
        "forged_row" => {
            // A copy of a row with a new id, an old offset and an old insert time.
            let forged = case.events[0].as_str();
            c.query(
                "INSERT INTO events SELECT * REPLACE (toUUID(?) AS event_id, \
                 inserted_at - INTERVAL 1 HOUR AS inserted_at, 'forged' AS description) \
                 FROM events WHERE event_id = toUUID(?)",
            )
            .bind(forged)
            .bind(id(60))
            .execute()
            .await?;
            Ok(())
        }
        "rows_swapped" => {
            let (a, b) = (id(90), id(91));
            let rows: Vec<(String, String, String)> = c
                .query(
                    "SELECT toString(event_id), request, description FROM events \
                     WHERE event_id IN (toUUID(?), toUUID(?))",
                )
                .bind(a)
                .bind(b)
                .fetch_all()
                .await?;
            ensure!(rows.len() == 2, "{} rows", rows.len());
            for (from, to) in [(&rows[0], &rows[1]), (&rows[1], &rows[0])] {
                mutate(
                    c,
                    "ALTER TABLE events UPDATE request = ?, description = ? WHERE event_id = toUUID(?)",
                    &[&from.1, &from.2, &to.0],
                )
                .await?;
            }
            Ok(())
        }
        "truncated" | "rolled_back" => {
            // Back to the checkpoint of FIRST leaves: newer leaves, tiles, heads and
            // checkpoints gone (truncated: their events too).
            if name == "truncated" {
                let list: Vec<String> = s.leaves[FIRST as usize..]
                    .iter()
                    .map(|i| format!("toUUID('{i}')"))
                    .collect();
                mutate(
                    c,
                    &format!(
                        "ALTER TABLE events DELETE WHERE event_id IN ({})",
                        list.join(",")
                    ),
                    &[],
                )
                .await?;
            }
            for sql in [
                format!("ALTER TABLE log_leaves DELETE WHERE leaf_index >= {FIRST}"),
                format!("ALTER TABLE log_checkpoints DELETE WHERE tree_size > {FIRST}"),
                format!("ALTER TABLE log_cosignatures DELETE WHERE tree_size > {FIRST}"),
                format!("ALTER TABLE log_heads DELETE WHERE tree_size > {FIRST}"),
                format!("ALTER TABLE log_tiles DELETE WHERE tile_level = 0 AND tile_index * 256 >= {FIRST}"),
            ] {
                mutate(c, &sql, &[]).await?;
            }
            Ok(())
        }
        "resigned" => {
            // The newest checkpoint re-signed with another key of the same name.
            let other = Signer::generate(KEY_NAME, KeyKind::Note)?;
            let note: String = c
                .query(
                    "SELECT note FROM log_checkpoints FINAL WHERE workspace_id = ? \
                     ORDER BY tree_size DESC LIMIT 1",
                )
                .bind(WS_A)
                .fetch_one()
                .await?;
            let mut n = Note::parse(&note)?;
            n.signatures = vec![other.sign_note(&n.text)?];
            c.query(
                "INSERT INTO log_checkpoints SELECT workspace_id, tree_size, root_hash, \
                 signed_at + toIntervalMillisecond(1), key_name, ? FROM log_checkpoints FINAL \
                 WHERE workspace_id = ? ORDER BY tree_size DESC LIMIT 1",
            )
            .bind(n.to_string())
            .bind(WS_A)
            .execute()
            .await?;
            Ok(())
        }
        other => bail!("no case {other}"),
    }
}

/// Whether `report` has a failure of `kind` naming each of `events` (one, without events).
fn reported(report: &Value, kind: &str, events: &[String]) -> bool {
    let fs = report["failures"].as_array().cloned().unwrap_or_default();
    let of_kind = |e: Option<&str>| {
        fs.iter()
            .any(|f| f["kind"] == kind && e.is_none_or(|e| f["event_id"].as_str() == Some(e)))
    };
    of_kind(None) && events.iter().all(|e| of_kind(Some(e)))
}

async fn run_case(s: &Setup, case: &Case) -> Result<()> {
    let cfg = copy_database(s, case.name).await?;
    tamper(s, case, &cfg.client()).await?;
    let (base, _serve) = serve(&s.w, &cfg.database, &format!("serve_{}", case.name)).await?;
    let mut online = s.api_args(&base, WS_A);
    let export = s.dir.path().join(format!("{}.ndjson", case.name));
    s.download(&base, WS_A, &export).await?;
    let mut offline = s.offline_args(&export, &[]);
    if case.remembered {
        let copy = s.dir.path().join(format!("{}.remembered", case.name));
        std::fs::copy(&s.remembered, &copy)?;
        online.extend(["--remember".into(), copy.display().to_string()]);
        offline.extend(["--checkpoint".into(), s.remembered.display().to_string()]);
    }
    for (how, args) in [("--api", online), ("--export", offline)] {
        let (code, report) = verify(&s.w, args).await?;
        ensure!(
            code == 1 && reported(&report, case.kind, &case.events),
            "{}: verify {how} exit {code}, expected exit 1 with {} {:?}: {report:#}",
            case.name,
            case.kind,
            case.events
        );
    }
    Ok(())
}

/// The clean log through `auditlog serve` on the setup's own database: `verify --api`
/// (remembering its checkpoint in `s.remembered`) passes.
async fn verify_clean(s: &Setup) -> Result<(String, Guard)> {
    let (base, serve) = serve(&s.w, &s.w.clickhouse.database, "serve").await?;
    let mut args = s.api_args(&base, WS_A);
    args.extend(["--remember".into(), s.remembered.display().to_string()]);
    let (code, report) = verify(&s.w, args).await?;
    ensure!(code == 0, "clean log: {report:#}");
    ensure!(
        report["leaves"] == ALL && report["events"] == ALL,
        "{report:#}"
    );
    ensure!(s.remembered.exists(), "--remember wrote nothing");
    Ok((base, serve))
}

/// Tampering `name` on its own setup (and database) is caught by both verifications with a
/// failure of `kind` naming `events(setup)`.
async fn caught(
    name: &'static str,
    kind: &'static str,
    events: impl FnOnce(&Setup) -> Vec<String>,
    remembered: bool,
) -> Result<()> {
    let started = Instant::now();
    let s = setup().await?;
    if remembered {
        verify_clean(&s).await?;
    }
    let case = Case {
        name,
        kind,
        events: events(&s),
        remembered,
    };
    run_case(&s, &case).await?;
    eprintln!("{name}: caught ({:?} with the setup)", started.elapsed());
    Ok(())
}

fn leaf(i: usize) -> impl FnOnce(&Setup) -> Vec<String> {
    move |s| vec![s.leaves[i].clone()]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clean_log_verifies_and_rows_gone_by_retention_are_no_false_alarm() -> Result<()> {
    let started = Instant::now();
    let s = setup().await?;
    eprintln!("setup: {:?}", started.elapsed());
    let (base, _serve) = verify_clean(&s).await?;
    // Offline: the downloaded export, against the checkpoint remembered online.
    let export = s.dir.path().join("clean.ndjson");
    s.download(&base, WS_A, &export).await?;
    let remembered = s.remembered.display().to_string();
    let offline = s.offline_args(&export, &["--checkpoint", &remembered]);
    let (code, report) = verify(&s.w, offline).await?;
    ensure!(code == 0, "clean export: {report:#}");

    // TTL deletes the 10-day-old rows of a Free workspace, and of a workspace downgraded from
    // Pro (which kept them) to Free: both still verify.
    s.w.cli(&["plan", "set", WS_DOWN, "free"])?;
    let client = s.w.client();
    wait_mutations_of(&client, "events").await?;
    client
        .query(&format!(
            "SYSTEM START TTL MERGES {}.events",
            s.w.clickhouse.database
        ))
        .execute()
        .await?;
    mutate(&client, "ALTER TABLE events MATERIALIZE TTL", &[]).await?;
    for ws in [WS_FREE, WS_DOWN] {
        let left: u64 = client
            .query("SELECT count() FROM events WHERE workspace_id = ?")
            .bind(ws)
            .fetch_one()
            .await?;
        ensure!(left == 0, "{ws}: {left} rows left after TTL");
        let (code, report) = verify(&s.w, s.api_args(&base, ws)).await?;
        ensure!(code == 0, "{ws} after TTL: {report:#}");
        ensure!(report["expired"] == 10, "{ws}: {report:#}");
    }
    // The workspace whose rows were all kept still verifies, against its remembered checkpoint.
    let mut args = s.api_args(&base, WS_A);
    args.extend(["--remember".into(), s.remembered.display().to_string()]);
    let (code, report) = verify(&s.w, args).await?;
    ensure!(code == 0, "after TTL: {report:#}");
    eprintln!("total: {:?}", started.elapsed());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edited_payload_is_caught() -> Result<()> {
    caught("payload_edited", "content_altered", leaf(57), false).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edited_description_is_caught() -> Result<()> {
    caught("description_edited", "content_altered", leaf(58), false).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_row_is_caught() -> Result<()> {
    caught("row_deleted", "deleted_early", leaf(59), false).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_row_is_caught() -> Result<()> {
    let forged = uuid::Uuid::now_v7().to_string();
    caught("forged_row", "unlogged", |_| vec![forged], false).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_swapped_rows_are_caught() -> Result<()> {
    let both = |s: &Setup| vec![s.leaves[90].clone(), s.leaves[91].clone()];
    caught("rows_swapped", "content_altered", both, false).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_newest_rows_truncated_with_their_leaves_are_caught_by_the_remembered_checkpoint(
) -> Result<()> {
    caught("truncated", "rolled_back", |_| vec![], true).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_rolled_back_is_caught_by_the_remembered_checkpoint() -> Result<()> {
    caught("rolled_back", "rolled_back", |_| vec![], true).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_re_signed_with_another_key_is_caught_by_the_pinned_key() -> Result<()> {
    caught("resigned", "bad_signature", |_| vec![], false).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_rolled_back_is_caught_by_the_witness() -> Result<()> {
    let s = setup_with(true).await?;
    let (url, wkey) = s.witness.clone().context("witness")?;
    let note = wait_witnessed(&url, WS_A, ALL).await?;
    let witness_args = |base: &str| {
        let mut a = s.api_args(base, WS_A);
        a.extend([
            "--witness".into(),
            url.clone(),
            "--witness-key".into(),
            wkey.clone(),
        ]);
        a
    };
    // The clean log extends the witness's checkpoint.
    let (base, _serve) = serve(&s.w, &s.w.clickhouse.database, "serve").await?;
    let (code, report) = verify(&s.w, witness_args(&base)).await?;
    ensure!(code == 0, "clean log with the witness: {report:#}");
    // Rolled back to FIRST leaves on a copy: the API's checkpoint is smaller than the witness's.
    let case = Case {
        name: "rolled_back",
        kind: "rolled_back",
        events: vec![],
        remembered: false,
    };
    let cfg = copy_database(&s, "witnessed").await?;
    tamper(&s, &case, &cfg.client()).await?;
    let (base, _serve_copy) = serve(&s.w, &cfg.database, "serve_witnessed").await?;
    let (code, report) = verify(&s.w, witness_args(&base)).await?;
    ensure!(
        code == 1 && reported(&report, "rolled_back", &[]),
        "rolled back, with the witness: exit {code}: {report:#}"
    );
    // Offline: the export against the witness's cosigned checkpoint.
    let cp = s.dir.path().join("witness-checkpoint.txt");
    std::fs::write(&cp, &note)?;
    let export = s.dir.path().join("witnessed.ndjson");
    s.download(&base, WS_A, &export).await?;
    let cp = cp.display().to_string();
    let offline = s.offline_args(&export, &["--checkpoint", &cp, "--witness-key", &wkey]);
    let (code, report) = verify(&s.w, offline).await?;
    ensure!(
        code == 1 && reported(&report, "rolled_back", &[]),
        "rolled back export, against the witness's checkpoint: exit {code}: {report:#}"
    );
    Ok(())
}
