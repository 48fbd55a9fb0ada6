//! `auditlog dlq`: list and replay dead-lettered messages.
//!
//! Replay re-publishes messages to the main topic. "After a fix" means either the consumer now
//! accepts them (a new version, a raised limit: replay the original bytes), or the payload was
//! corrected by hand (`--payload FILE` with one `--offset`). Messages whose event is already
//! stored (same `event_id`) are skipped, so running a replay twice does not duplicate events.

use std::collections::HashSet;
use std::path::PathBuf;

use anyhow::{bail, Context as _, Result};
use auditlog_sink::replay::{read_all, republish, DeadLettered};
use clap::{Args, Subcommand};
use rdkafka::Message;

use crate::config::Config;

/// Inspect and replay the dead-letter topic (`kafka.dlq_topic`).
#[derive(Debug, Args)]
pub struct DlqArgs {
    #[command(subcommand)]
    command: DlqCommand,
}

#[derive(Debug, Subcommand)]
enum DlqCommand {
    /// Show dead-lettered messages: offset, reason, source, payload preview.
    List {
        /// Show at most this many (the newest).
        #[arg(long, default_value_t = 50)]
        limit: usize,
        /// Print one JSON document `{"topic","total","messages":[...]}`: per message
        /// `partition`, `offset`, `code`, `reason`, `source`, `failed_at`, `key`, `payload`
        /// (text, `null` when not UTF-8) and `payload_base64` (the exact bytes).
        #[arg(long)]
        json: bool,
    },
    /// Re-publish dead-lettered messages to the main topic.
    Replay {
        /// Every dead-lettered message.
        #[arg(long, conflicts_with_all = ["offset", "reason"])]
        all: bool,
        /// One message: its offset in the dead-letter topic (`N`, partition 0, or `P:N`).
        #[arg(long)]
        offset: Option<String>,
        /// Every message with this reason code (for example `unknown_version`).
        #[arg(long)]
        reason: Option<String>,
        /// Replace the payload with this file's contents (a corrected event); needs `--offset`.
        #[arg(long, requires = "offset")]
        payload: Option<PathBuf>,
        /// Re-publish even when the event is already stored.
        #[arg(long)]
        force: bool,
    },
}

/// Runs `dlq list` or `dlq replay`.
pub async fn run(cfg: &Config, args: DlqArgs) -> Result<()> {
    let k = &cfg.kafka;
    let all = read_all(k, &k.dlq_topic)
        .await
        .with_context(|| format!("reading {} on {}", k.dlq_topic, k.brokers))?;
    match args.command {
        DlqCommand::List { limit, json } => {
            let skip = all.len().saturating_sub(limit);
            if json {
                let messages: Vec<serde_json::Value> = all[skip..].iter().map(list_json).collect();
                let doc = serde_json::json!({
                    "topic": k.dlq_topic,
                    "total": all.len(),
                    "messages": messages,
                });
                println!("{doc}");
                return Ok(());
            }
            println!(
                "{:<12} {:<22} {:<32} PAYLOAD / REASON",
                "OFFSET", "REASON", "SOURCE"
            );
            for d in &all[skip..] {
                println!(
                    "{:<12} {:<22} {:<32} {}\n{:<68} {}",
                    format!("{}:{}", d.partition, d.offset),
                    d.code,
                    d.source,
                    d.preview(80),
                    "",
                    d.reason
                );
            }
            println!("{} dead-lettered message(s) in {}", all.len(), k.dlq_topic);
        }
        DlqCommand::Replay {
            all: every,
            offset,
            reason,
            payload,
            force,
        } => {
            let selected: Vec<DeadLettered> = if let Some(o) = &offset {
                let (p, n) = parse_offset(o)?;
                all.into_iter()
                    .filter(|d| d.partition == p && d.offset == n)
                    .collect()
            } else if let Some(r) = &reason {
                all.into_iter().filter(|d| &d.code == r).collect()
            } else if every {
                all
            } else {
                bail!("choose what to replay: --all, --offset N or --reason CODE");
            };
            if selected.is_empty() {
                bail!("no dead-lettered message matches");
            }
            let payload = match &payload {
                Some(path) => Some(
                    std::fs::read(path).with_context(|| format!("reading {}", path.display()))?,
                ),
                None => None,
            };
            let selected = if force {
                selected
            } else {
                skip_stored(cfg, selected, payload.as_deref()).await?
            };
            let n = republish(k, &k.topic, &k.dlq_topic, &selected, payload.as_deref())
                .await
                .context("re-publishing")?;
            println!("replayed {n} message(s) to {}", k.topic);
        }
    }
    Ok(())
}

/// One dead-lettered message of `dlq list --json`.
fn list_json(d: &DeadLettered) -> serde_json::Value {
    use base64::Engine as _;
    use rdkafka::message::Headers as _;
    let text = |b: Option<&[u8]>| {
        b.and_then(|b| std::str::from_utf8(b).ok())
            .map(str::to_owned)
    };
    let failed_at = d.message.headers().and_then(|h| {
        h.iter()
            .find(|h| h.key == auditlog_sink::dlq::H_AT)
            .and_then(|h| text(h.value))
    });
    let payload = d.message.payload().unwrap_or_default();
    serde_json::json!({
        "partition": d.partition,
        "offset": d.offset,
        "code": d.code,
        "reason": d.reason,
        "source": d.source,
        "failed_at": failed_at,
        "key": text(d.message.key()),
        "payload": text(Some(payload)),
        "payload_base64": base64::engine::general_purpose::STANDARD.encode(payload),
    })
}

fn parse_offset(s: &str) -> Result<(i32, i64)> {
    let (p, n) = s.split_once(':').unwrap_or(("0", s));
    Ok((
        p.parse()
            .with_context(|| format!("bad partition in {s:?}"))?,
        n.parse().with_context(|| format!("bad offset in {s:?}"))?,
    ))
}

/// Drops messages whose `event_id` is already in `events` (a replay already landed).
async fn skip_stored(
    cfg: &Config,
    items: Vec<DeadLettered>,
    payload: Option<&[u8]>,
) -> Result<Vec<DeadLettered>> {
    let id_of = |d: &DeadLettered| -> Option<String> {
        let bytes = payload.or(d.message.payload())?;
        let v: serde_json::Value = serde_json::from_slice(bytes).ok()?;
        let id = v.get("event_id")?.as_str()?;
        uuid_like(id).then(|| id.to_owned())
    };
    let ids: Vec<String> = items.iter().filter_map(id_of).collect();
    if ids.is_empty() {
        return Ok(items);
    }
    let stored: Vec<String> = cfg
        .clickhouse
        .client()
        .query("SELECT DISTINCT toString(event_id) FROM events WHERE event_id IN ?")
        .bind(&ids)
        .fetch_all()
        .await
        .context("checking which events are already stored")?;
    let stored: HashSet<String> = stored.into_iter().collect();
    let (skip, keep): (Vec<_>, Vec<_>) = items
        .into_iter()
        .partition(|d| id_of(d).is_some_and(|id| stored.contains(&id)));
    for d in &skip {
        println!(
            "skipping {}:{} ({}): its event is already stored (use --force to replay anyway)",
            d.partition, d.offset, d.code
        );
    }
    Ok(keep)
}

fn uuid_like(s: &str) -> bool {
    s.len() == 36 && s.chars().all(|c| c.is_ascii_hexdigit() || c == '-')
}
