//! `auditlog verify` (docs/verification.md): offline and online verification of workspace
//! logs. Exit status: 0 verified, 1 verification failed, 2 usage or I/O error.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use auditlog_verify::export::{verify_export_reader, ExportOptions, Reference};
use auditlog_verify::online::{verify_online, OnlineOptions, WitnessArg};
use auditlog_verify::proofs::{check_consistency_notes, check_inclusion, parse_body};
use auditlog_verify::{checkpoint::read_note_file, Keys, Report, SignedCheckpoint};
use clap::{ArgGroup, Args};
use serde::Serialize;

/// Verify an export, a proof, two checkpoints, or a whole workspace through the API.
#[derive(Debug, Args)]
#[command(group(
    ArgGroup::new("mode")
        .required(true)
        .args(["export", "inclusion", "consistency", "api"])
))]
pub struct VerifyArgs {
    /// Check a verifiable export (`GET /v1/export?format=log`) offline; `-` reads stdin.
    #[arg(long, value_name = "FILE")]
    export: Option<PathBuf>,
    /// Check an inclusion proof (`GET /v1/log/proof/inclusion` body) against `--checkpoint`.
    #[arg(long, value_name = "PROOF.json", requires = "checkpoint")]
    inclusion: Option<PathBuf>,
    /// Check a consistency proof (`GET /v1/log/proof/consistency` body) from `--old` to `--new`.
    #[arg(long, value_name = "PROOF.json", requires_all = ["old", "new"])]
    consistency: Option<PathBuf>,
    /// Check a whole workspace through the API at this URL (with `--token`).
    #[arg(long, value_name = "URL", requires = "token")]
    api: Option<String>,
    /// The workspace token (`--api`).
    #[arg(long, env = "AUDITLOG_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// A pinned log verifier key (`<name>+<id>+<key>`, or a file holding it); repeat for the
    /// keys of a rotation.
    #[arg(long = "key", value_name = "VKEY", required = true)]
    keys: Vec<String>,
    /// A signed checkpoint (note text, or a `GET /v1/log/checkpoint` body): `--inclusion`'s
    /// checkpoint; with `--export`, an earlier trusted checkpoint the export must extend.
    #[arg(long, value_name = "FILE")]
    checkpoint: Option<PathBuf>,
    /// The older checkpoint of `--consistency`.
    #[arg(long, value_name = "CP1")]
    old: Option<PathBuf>,
    /// The newer checkpoint of `--consistency`.
    #[arg(long, value_name = "CP2")]
    new: Option<PathBuf>,
    /// With `--inclusion`: the event (its JSON) that must be the proven leaf.
    #[arg(long, value_name = "EVENT.json", requires = "inclusion")]
    event: Option<PathBuf>,
    /// With `--api`: a witness whose newest cosigned checkpoint the API's must extend (its key
    /// is the first `--witness-key`).
    #[arg(long, value_name = "URL", requires_all = ["api", "witness_keys"])]
    witness: Option<String>,
    /// A witness cosignature verifier key (or a file holding it); repeatable.
    #[arg(long = "witness-key", value_name = "WKEY")]
    witness_keys: Vec<String>,
    /// Valid witness cosignatures needed (default: 1 when `--witness-key` is given, else 0).
    #[arg(long, value_name = "N")]
    min_witnesses: Option<usize>,
    /// With `--api`: remember the newest verified checkpoint in this file and require the next
    /// run's log to extend it (rollback detection without a witness).
    #[arg(long, value_name = "FILE", requires = "api")]
    remember: Option<PathBuf>,
    /// The verifier's clock (RFC 3339; default: the system clock). An export made later is
    /// refused.
    #[arg(long, value_name = "RFC3339")]
    now: Option<String>,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
    /// Failures printed at most (the rest are counted).
    #[arg(long, value_name = "N", default_value_t = 100)]
    max_listed: usize,
    /// Timeout of each request to the API or the witness (connect, and between reads).
    #[arg(long, value_name = "DURATION", default_value = "30s")]
    timeout: humantime::Duration,
}

/// Runs the verification and prints the report; the process's exit status (0 verified,
/// 1 failed, 2 usage or I/O error, printed on stderr).
pub async fn run(args: VerifyArgs) -> i32 {
    let code = match verify(&args).await {
        Ok(report) => match print(&report, &args) {
            Ok(()) if report.ok() => 0,
            Ok(()) => 1,
            Err(e) => {
                eprintln!("error: {e:#}");
                2
            }
        },
        Err(e) => {
            eprintln!("error: {e:#}");
            2
        }
    };
    let _ = std::io::stdout().flush();
    code
}

async fn verify(a: &VerifyArgs) -> Result<Report> {
    let keys = Keys::parse(&key_texts(&a.keys)?, &key_texts(&a.witness_keys)?)?;
    let min_witnesses = a
        .min_witnesses
        .unwrap_or(usize::from(!a.witness_keys.is_empty()));
    let now_ms = match &a.now {
        Some(t) => chrono::DateTime::parse_from_rfc3339(t)
            .with_context(|| format!("--now {t:?} is not RFC 3339"))?
            .timestamp_millis(),
        None => chrono::Utc::now().timestamp_millis(),
    };
    if let Some(url) = &a.api {
        let witness = match &a.witness {
            Some(w) => Some(WitnessArg {
                url: w.clone(),
                key: key_texts(&a.witness_keys)?.remove(0),
            }),
            None => None,
        };
        let opts = OnlineOptions {
            api_url: url.clone(),
            token: a.token.clone().unwrap_or_default(),
            keys,
            witness,
            min_witnesses,
            remember: a.remember.clone(),
            now_ms,
            max_listed: a.max_listed,
            timeout: a.timeout.into(),
        };
        return Ok(verify_online(&opts).await?);
    }
    if let Some(path) = &a.export {
        let mut references = Vec::new();
        let mut pre = Report::new(a.max_listed);
        if let Some(cp) = &a.checkpoint {
            let source = format!("the checkpoint in {}", cp.display());
            match SignedCheckpoint::verified(&read_note_file(cp)?, &keys, &source) {
                Ok(checkpoint) => references.push(Reference { source, checkpoint }),
                Err(f) => pre.fail(f),
            }
        }
        let opts = ExportOptions {
            keys,
            min_witnesses,
            references,
            now_ms,
            max_listed: a.max_listed,
        };
        let report = if path == Path::new("-") {
            verify_export_reader(std::io::stdin().lock(), "stdin", opts)?
        } else {
            let file =
                std::fs::File::open(path).with_context(|| format!("reading {}", path.display()))?;
            verify_export_reader(
                std::io::BufReader::new(file),
                &path.display().to_string(),
                opts,
            )?
        };
        pre.absorb(report);
        return Ok(pre);
    }
    if let (Some(proof), Some(cp)) = (&a.inclusion, &a.checkpoint) {
        let body = parse_body(&read(proof)?, &proof.display().to_string())?;
        let event = a.event.as_deref().map(read).transpose()?;
        return Ok(check_inclusion(
            &body,
            &read_note_file(cp)?,
            &keys,
            event.as_deref(),
        ));
    }
    if let (Some(proof), Some(old), Some(new)) = (&a.consistency, &a.old, &a.new) {
        let body = parse_body(&read(proof)?, &proof.display().to_string())?;
        return Ok(check_consistency_notes(
            &body,
            &read_note_file(old)?,
            &read_note_file(new)?,
            &keys,
        ));
    }
    anyhow::bail!("nothing to verify: give --export, --inclusion, --consistency or --api")
}

fn read(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}

/// Key arguments: a key text, or the path of a file holding one.
fn key_texts(args: &[String]) -> Result<Vec<String>> {
    args.iter()
        .map(|a| {
            let p = Path::new(a);
            if p.is_file() {
                Ok(read(p)?.trim().to_owned())
            } else {
                Ok(a.trim().to_owned())
            }
        })
        .collect()
}

#[derive(Serialize)]
struct JsonReport<'a> {
    verified: bool,
    summary: String,
    #[serde(flatten)]
    report: &'a Report,
}

fn print(r: &Report, a: &VerifyArgs) -> Result<()> {
    let mut out = std::io::stdout().lock();
    if a.json {
        let j = JsonReport {
            verified: r.ok(),
            summary: r.summary(),
            report: r,
        };
        serde_json::to_writer(&mut out, &j)?;
        writeln!(out)?;
        return Ok(());
    }
    for f in r.failures.iter().take(a.max_listed) {
        writeln!(out, "FAIL {f}")?;
    }
    let listed = r.failures.len().min(a.max_listed) as u64;
    if r.failure_count > listed {
        writeln!(out, "... and {} more failure(s)", r.failure_count - listed)?;
    }
    writeln!(out, "{}", r.summary())?;
    Ok(())
}
