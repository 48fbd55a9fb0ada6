//! `auditlog stream`: create, list, pause, resume, replay, rotate the secret of, and delete a
//! workspace's push streams (docs/streams.md), directly in ClickHouse through
//! [`StreamStore`], like `auditlog token`. `auditlog stream-worker` delivers them.

use std::collections::BTreeMap;

use anyhow::{anyhow, bail, Context as _, Result};
use auditlog_query::api::streams::{infos, keep_old_for, with_secret, DEFAULT_KEEP_OLD_FOR};
use auditlog_query::Filter;
use auditlog_streams::validate::parse_start;
use auditlog_streams::{Desired, Destination, Format, StreamSpec, StreamStore};
use clap::{ArgGroup, Args, Subcommand};

use crate::config::Config;

/// Create, list, pause, resume, replay or delete push streams (webhook, Splunk HEC, Datadog,
/// S3).
#[derive(Debug, Args)]
pub struct StreamArgs {
    #[command(subcommand)]
    command: StreamCommand,
}

#[derive(Debug, Subcommand)]
enum StreamCommand {
    /// Create a stream of WORKSPACE's events to one destination. Prints the stream id on
    /// stdout and, for a webhook, its signing secret on a second line (shown only now).
    Create(Box<CreateArgs>),
    /// List streams (of one workspace, or all) with their delivery status, one per line.
    List {
        /// Only this workspace's streams.
        workspace: Option<String>,
        /// Print `{"streams":[...]}` (one JSON document, the admin API's shape).
        #[arg(long)]
        json: bool,
    },
    /// Stop delivering a stream; its cursor stays where it is.
    Pause {
        /// Stream id (`str_...`).
        stream_id: String,
    },
    /// Resume a paused stream (by hand or automatically) from its cursor.
    Resume {
        /// Stream id (`str_...`).
        stream_id: String,
    },
    /// Deliver again from a point inside retention (a new cursor generation).
    Replay {
        /// Stream id (`str_...`).
        stream_id: String,
        /// `beginning` (of retention), `now`, or an RFC 3339 time (events stored at or after it).
        #[arg(long, value_name = "beginning|now|TIME")]
        from: String,
    },
    /// Give a webhook stream a new signing secret (printed on stdout); the old one keeps
    /// signing for `--keep-old-for`.
    RotateSecret {
        /// Stream id (`str_...`).
        stream_id: String,
        /// How long the previous secret keeps signing (`24h` default, `90min`, `0s`; at most 30d).
        #[arg(long, value_name = "DURATION")]
        keep_old_for: Option<String>,
        /// Print the stream and `secret` as one JSON document (the admin API's shape).
        #[arg(long)]
        json: bool,
    },
    /// Delete a stream: the worker stops delivering it and its credentials are forgotten.
    Delete {
        /// Stream id (`str_...`).
        stream_id: String,
    },
}

/// `auditlog stream create`: exactly one destination.
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("destination").required(true).args(["webhook", "splunk", "datadog", "s3_endpoint"])))]
struct CreateArgs {
    /// Workspace whose events are delivered.
    workspace: String,
    /// A name for people.
    #[arg(long, default_value = "")]
    name: String,
    /// Webhook URL (`https://`; `http://` only on 127.0.0.1, localhost, ::1).
    #[arg(long, value_name = "URL")]
    webhook: Option<String>,
    /// Splunk HTTP Event Collector base URL (`https://splunk:8088`).
    #[arg(long, value_name = "URL", requires = "splunk_token")]
    splunk: Option<String>,
    /// The HEC token.
    #[arg(long, value_name = "TOKEN", requires = "splunk")]
    splunk_token: Option<String>,
    /// Splunk index (default: the token's).
    #[arg(long, requires = "splunk")]
    index: Option<String>,
    /// Splunk source type (default `auditlog`).
    #[arg(long, requires = "splunk")]
    sourcetype: Option<String>,
    /// Datadog logs intake URL (`https://http-intake.logs.datadoghq.com`).
    #[arg(long, value_name = "URL", requires = "api_key")]
    datadog: Option<String>,
    /// Datadog API key.
    #[arg(long, value_name = "KEY", requires = "datadog")]
    api_key: Option<String>,
    /// Datadog `service` (default `auditlog`).
    #[arg(long, requires = "datadog")]
    service: Option<String>,
    /// Datadog `ddtags` (`env:prod,team:x`).
    #[arg(long, requires = "datadog")]
    tags: Option<String>,
    /// S3-compatible endpoint URL.
    #[arg(long, value_name = "URL", requires_all = ["bucket", "region", "access_key_id", "secret_access_key"])]
    s3_endpoint: Option<String>,
    /// S3 bucket.
    #[arg(long, requires = "s3_endpoint")]
    bucket: Option<String>,
    /// S3 region (`us-east-1`).
    #[arg(long, requires = "s3_endpoint")]
    region: Option<String>,
    /// S3 access key id.
    #[arg(long, requires = "s3_endpoint")]
    access_key_id: Option<String>,
    /// S3 secret access key.
    #[arg(long, requires = "s3_endpoint")]
    secret_access_key: Option<String>,
    /// S3 key prefix (`audit/`).
    #[arg(long, default_value = "", requires = "s3_endpoint")]
    prefix: String,
    /// Events per S3 object: a time window (`60s` default, 10s to 1h).
    #[arg(long, value_name = "DURATION", requires = "s3_endpoint")]
    window: Option<String>,
    /// Path-style S3 URLs (`endpoint/bucket/key`: MinIO, moto).
    #[arg(long, requires = "s3_endpoint")]
    path_style: bool,
    /// The shape of each event.
    #[arg(long, default_value = "json", value_parser = ["json", "ocsf", "ecs"])]
    format: String,
    /// A filter parameter of `GET /v1/events`, `name=value` (repeatable): `event=key.*`,
    /// `actor_type=user`, ... (not since/until/cursor/limit/order).
    #[arg(long = "filter", value_name = "NAME=VALUE")]
    filters: Vec<String>,
    /// Where delivery starts: `beginning` (of retention), `now`, or an RFC 3339 time.
    #[arg(long, default_value = "now", value_name = "beginning|now|TIME")]
    start: String,
    /// Print the stream and `secret` as one JSON document (the admin API's shape).
    #[arg(long)]
    json: bool,
}

impl CreateArgs {
    fn destination(&self) -> Result<Destination> {
        let text = |v: &Option<String>| v.clone().unwrap_or_default();
        if let Some(url) = &self.webhook {
            return Ok(Destination::Webhook { url: url.clone() });
        }
        if let Some(url) = &self.splunk {
            return Ok(Destination::SplunkHec {
                url: url.clone(),
                token: text(&self.splunk_token),
                index: self.index.clone(),
                sourcetype: self.sourcetype.clone(),
            });
        }
        if let Some(url) = &self.datadog {
            return Ok(Destination::Datadog {
                url: url.clone(),
                api_key: text(&self.api_key),
                service: self.service.clone(),
                tags: self.tags.clone(),
            });
        }
        let window_seconds = match &self.window {
            None => 60,
            Some(w) => {
                let d = humantime::parse_duration(w.trim()).map_err(|e| {
                    anyhow!("--window: {w:?} is not a duration like 60s or 5m: {e}")
                })?;
                u32::try_from(d.as_secs()).unwrap_or(u32::MAX)
            }
        };
        Ok(Destination::S3 {
            endpoint: text(&self.s3_endpoint),
            bucket: text(&self.bucket),
            region: text(&self.region),
            prefix: self.prefix.clone(),
            access_key_id: text(&self.access_key_id),
            secret_access_key: text(&self.secret_access_key),
            window_seconds,
            path_style: self.path_style,
        })
    }

    fn filter(&self) -> Result<BTreeMap<String, String>> {
        let mut out = BTreeMap::new();
        for f in &self.filters {
            let (name, value) = f
                .split_once('=')
                .ok_or_else(|| anyhow!("--filter: {f:?} is not NAME=VALUE (event=key.*)"))?;
            if out.insert(name.to_owned(), value.to_owned()).is_some() {
                bail!("--filter: {name} given twice (one value per name; `event` takes a comma-separated list)");
            }
        }
        Filter::from_pairs(&out).map_err(|e| anyhow!("--filter {e}"))?;
        Ok(out)
    }
}

/// The command-line flag of a field the store names (`destination.url` -> `--webhook`).
fn flag(field: &str, d: &Destination) -> String {
    let url_flag = match d {
        Destination::Webhook { .. } => "--webhook",
        Destination::SplunkHec { .. } => "--splunk",
        Destination::Datadog { .. } => "--datadog",
        Destination::S3 { .. } => "--s3-endpoint",
    };
    match field {
        "workspace_id" => "WORKSPACE".to_owned(),
        "destination.url" | "destination.endpoint" => url_flag.to_owned(),
        "destination.token" => "--splunk-token".to_owned(),
        "destination.window_seconds" => "--window".to_owned(),
        other => match other.strip_prefix("destination.") {
            Some(f) => format!("--{}", f.replace('_', "-")),
            None => format!("--{}", other.replace('_', "-")),
        },
    }
}

/// A store error with the field named as the flag that set it.
fn named(e: auditlog_streams::Error, d: &Destination) -> anyhow::Error {
    match e {
        auditlog_streams::Error::Invalid { field, reason } => {
            anyhow!("{}: {reason}", flag(&field, d))
        }
        other => other.into(),
    }
}

/// Runs the subcommand.
pub async fn run(cfg: &Config, args: StreamArgs) -> Result<()> {
    let store = StreamStore::new(cfg.clickhouse.client());
    match args.command {
        StreamCommand::Create(a) => create(&store, *a).await,
        StreamCommand::List { workspace, json } => list(&store, workspace.as_deref(), json).await,
        StreamCommand::Pause { stream_id } => {
            set_desired(&store, &stream_id, Desired::Paused, "pause").await
        }
        StreamCommand::Resume { stream_id } => {
            set_desired(&store, &stream_id, Desired::Active, "resume").await
        }
        StreamCommand::Replay { stream_id, from } => {
            let start = parse_start("--from", &from)?;
            let c = store
                .replay(&stream_id, start)
                .await
                .with_context(|| format!("replay {stream_id}"))?;
            eprintln!(
                "{stream_id} replays from {from} (generation {})",
                c.generation
            );
            Ok(())
        }
        StreamCommand::RotateSecret {
            stream_id,
            keep_old_for: keep,
            json,
        } => {
            let keep = match keep.as_deref() {
                None => DEFAULT_KEEP_OLD_FOR,
                Some(t) => keep_old_for("--keep-old-for", t)?,
            };
            let s = store
                .rotate_secret(&stream_id, keep)
                .await
                .with_context(|| format!("rotate the secret of {stream_id}"))?;
            let shown = with_secret(&store, s).await?;
            eprintln!(
                "rotated the secret of {stream_id}; the old one keeps signing for {}",
                humantime::format_duration(keep)
            );
            if json {
                println!("{}", serde_json::to_string(&shown)?);
            } else {
                println!("{}", shown.secret.unwrap_or_default());
            }
            Ok(())
        }
        StreamCommand::Delete { stream_id } => {
            match store.get(&stream_id).await? {
                None => bail!("no stream {stream_id}"),
                Some(s) if s.desired == Desired::Deleted => {}
                Some(_) => {
                    store
                        .set_desired(&stream_id, Desired::Deleted, "")
                        .await
                        .with_context(|| format!("delete {stream_id}"))?;
                }
            }
            eprintln!("deleted {stream_id}");
            Ok(())
        }
    }
}

async fn set_desired(store: &StreamStore, id: &str, desired: Desired, verb: &str) -> Result<()> {
    store
        .set_desired(id, desired, "")
        .await
        .with_context(|| format!("{verb} {id}"))?;
    eprintln!("{verb}d {id}");
    Ok(())
}

async fn create(store: &StreamStore, a: CreateArgs) -> Result<()> {
    let destination = a.destination()?;
    let filter = a.filter()?;
    let start = parse_start("--start", &a.start)?;
    let format = Format::parse(&a.format).unwrap_or_default();
    let spec = StreamSpec {
        workspace_id: a.workspace.clone(),
        name: a.name.clone(),
        destination: destination.clone(),
        format,
        filter,
    };
    let s = store
        .create(spec, start)
        .await
        .map_err(|e| named(e, &destination))
        .with_context(|| format!("create a stream for {}", a.workspace))?;
    eprintln!(
        "created {} for workspace {} ({}, format {}, starting {})",
        s.stream_id,
        s.spec.workspace_id,
        auditlog_streams::store::destination_kind(&s.spec.destination),
        s.spec.format.as_str(),
        a.start
    );
    let shown = with_secret(store, s).await?;
    if a.json {
        println!("{}", serde_json::to_string(&shown)?);
    } else {
        println!("{}", shown.info.stream.stream_id);
        if let Some(secret) = &shown.secret {
            eprintln!("the webhook signing secret (second line) is shown only now");
            println!("{secret}");
        }
    }
    Ok(())
}

async fn list(store: &StreamStore, workspace: Option<&str>, json: bool) -> Result<()> {
    let streams = store.list(workspace).await.context("list streams")?;
    let shown = infos(store, streams).await?;
    if json {
        println!("{}", serde_json::json!({ "streams": shown }));
        return Ok(());
    }
    println!("STREAM_ID\tWORKSPACE\tNAME\tDESTINATION\tFORMAT\tDESIRED\tSTATE\tDELIVERED\tLAG_EVENTS\tLAST_ERROR");
    for i in shown {
        let s = &i.stream;
        let desired = serde_json::to_value(s.desired)?;
        let (state, delivered, lag, error) = match &i.status {
            Some(st) => (
                serde_json::to_value(st.state)?
                    .as_str()
                    .unwrap_or("-")
                    .to_owned(),
                st.delivered_events.to_string(),
                st.lag_events.to_string(),
                if st.last_error.is_empty() {
                    "-".to_owned()
                } else {
                    st.last_error.replace(['\t', '\n'], " ")
                },
            ),
            None => ("-".into(), "0".into(), "-".into(), "-".into()),
        };
        println!(
            "{}\t{}\t{}\t{}\t{}\t{}\t{state}\t{delivered}\t{lag}\t{error}",
            s.stream_id,
            s.spec.workspace_id,
            if s.spec.name.is_empty() {
                "-"
            } else {
                &s.spec.name
            },
            auditlog_streams::store::destination_kind(&s.spec.destination),
            s.spec.format.as_str(),
            desired.as_str().unwrap_or("-"),
        );
    }
    Ok(())
}
