//! The dev profile's demo data, seeded once per data dir: synthetic events spread over the last
//! `STACK_SEED_DAYS` days, plans for the seeded workspaces, then a token for the busiest one
//! (so the dashboard opens on a populated audit log whose time-range picker and retention
//! notice have weeks of history to show).
//!
//! Events older than a workspace's retention are deleted by TTL as soon as they are written, so
//! the plans come first: a small recent batch (same generator seed, so the same 20 workspaces)
//! names the workspaces, each gets a plan keeping more than `STACK_SEED_DAYS`, the consumer
//! re-reads plans (`consumer.plans_refresh`, 10 s), and only then the weeks of history are
//! emitted. The second-busiest workspace is moved to Free afterwards: its history beyond 7 days
//! then expires, as on a real Free workspace.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};

use crate::{http, process, read_trimmed, Stack};

/// The plans of the four busiest demo workspaces, busiest first.
const PLANS: [&str; 4] = [
    "pro",
    "free",
    "enterprise --days 365",
    "enterprise --unlimited",
];
const PROBE: u64 = 200;

impl Stack {
    /// Seeds the demo data (once) and the demo token; returns what failed (`emit`, `plan`,
    /// `token`), each already warned about.
    pub(crate) fn seed(&self) -> Result<Vec<String>> {
        let s = &self.settings;
        let ws_file = s.data_dir.join("demo-workspace");
        let token_file = s.data_dir.join("demo-token");
        let seeded = s.data_dir.join("seeded");
        let mut problems = Vec::new();
        if !seeded.is_file() {
            self.log.info(format!(
                "seed: naming the 20 demo workspaces ({PROBE} recent synthetic events)"
            ));
            let probe = PROBE.to_string();
            if self
                .run_app(&["emit", "--synthetic", &probe, "--workspaces", "20"])?
                .is_none()
            {
                return Ok(vec!["emit".into()]);
            }
            self.log.info(format!(
                "seed: {} events visible in ClickHouse",
                self.wait_rows(PROBE)
            ));
            let mut ok = true;
            let all = self
                .ch_query(&format!(
                    "SELECT DISTINCT workspace_id FROM {}.events ORDER BY workspace_id",
                    s.database
                ))
                .unwrap_or_default();
            for ws in all.split_whitespace() {
                ok &= self.run_app(&["plan", "set", ws, "pro"])?.is_some();
            }
            if !ok {
                return Ok(vec!["plan".into()]);
            }
            self.log.info("seed: every demo workspace on Pro (90 days) for now; waiting 11 s for the consumer to read the plans");
            std::thread::sleep(Duration::from_secs(11));
            self.log.info(format!(
                "seed: emitting {} synthetic events over the last {} days across 20 workspaces",
                s.seed_events, s.seed_days
            ));
            let (events, days) = (s.seed_events.to_string(), s.seed_days.to_string());
            let emit = [
                "emit",
                "--synthetic",
                &events,
                "--workspaces",
                "20",
                "--days",
                &days,
            ];
            if self.run_app(&emit)?.is_none() {
                return Ok(vec!["emit".into()]);
            }
            self.log.info(format!(
                "seed: {} events visible in ClickHouse",
                self.wait_rows(PROBE + s.seed_events)
            ));
            let busiest = self
                .ch_query(&format!(
                    "SELECT workspace_id FROM {}.events GROUP BY workspace_id ORDER BY count() DESC, workspace_id LIMIT 4",
                    s.database
                ))
                .unwrap_or_default();
            for (i, ws) in busiest.split_whitespace().enumerate().take(PLANS.len()) {
                if i == 0 {
                    std::fs::write(&ws_file, format!("{ws}\n"))?;
                }
                let mut args = vec!["plan", "set", ws];
                args.extend(PLANS[i].split(' '));
                ok &= self.run_app(&args)?.is_some();
                self.log.info(format!("seed: plan of {ws}: {}", PLANS[i]));
            }
            if !ok {
                problems.push("plan".into());
            }
            let now = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ");
            std::fs::write(&seeded, format!("{now}\n"))?;
        } else {
            self.log.info(format!(
                "seed: demo events already seeded (remove {} to seed again)",
                seeded.display()
            ));
        }
        if read_trimmed(&ws_file).is_empty() {
            std::fs::write(&ws_file, "demo\n")?;
        }
        if read_trimmed(&token_file).is_empty() {
            let ws = read_trimmed(&ws_file);
            match self.run_app(&["token", "create", &ws, "--name", "local stack demo"])? {
                Some(out) => {
                    // `token create` prints only the secret on stdout.
                    let secret = out.lines().last().unwrap_or_default();
                    process::write_private(&token_file, &format!("{secret}\n"))?;
                    self.log
                        .info(format!("seed: created a token for workspace {ws}"));
                }
                None => problems.push("token".into()),
            }
        }
        Ok(problems)
    }

    /// Runs an `auditlog` subcommand for seeding: its stdout, or `None` (warned about, with
    /// its stderr) when it failed.
    fn run_app(&self, args: &[&str]) -> Result<Option<String>> {
        let s = &self.settings;
        let err_file = s.log_dir().join("seed.err");
        std::fs::create_dir_all(s.log_dir())?;
        let err = std::fs::File::create(&err_file)
            .with_context(|| format!("create {}", err_file.display()))?;
        let out = Command::new(&s.auditlog_bin)
            .args(args)
            .envs(self.app_env()?)
            .stdin(Stdio::null())
            .stderr(err)
            .output()
            .with_context(|| format!("run {}", s.auditlog_bin.display()))?;
        if out.status.success() {
            return Ok(Some(String::from_utf8_lossy(&out.stdout).into_owned()));
        }
        let joined = args.join(" ");
        let err_text = std::fs::read_to_string(&err_file).unwrap_or_default();
        if err_text.contains("not built yet") {
            self.log
                .warn(format!("seed: 'auditlog {joined}' is not built yet"));
        } else {
            self.log.show_logs(&[&err_file]);
            self.log.warn(format!("seed: 'auditlog {joined}' failed"));
        }
        Ok(None)
    }

    /// A query's answer from the stack's ClickHouse.
    fn ch_query(&self, sql: &str) -> Result<String> {
        http::post(
            self.settings.ports.ch_http,
            "/",
            sql,
            Duration::from_secs(10),
        )
    }

    /// Waits (`STACK_TIMEOUT` at most) until ClickHouse holds at least `want` events (the
    /// consumer landed them: the pipeline works end to end); returns the count.
    fn wait_rows(&self, want: u64) -> u64 {
        let deadline = Instant::now() + self.settings.timeout;
        let sql = format!("SELECT count() FROM {}.events", self.settings.database);
        let mut rows = 0;
        while Instant::now() < deadline {
            rows = self
                .ch_query(&sql)
                .ok()
                .and_then(|t| t.trim().parse().ok())
                .unwrap_or(0);
            if rows >= want {
                break;
            }
            std::thread::sleep(Duration::from_secs(1));
        }
        rows
    }
}
