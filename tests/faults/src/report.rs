//! The summary: one table row per scenario, the faults with their recovery times, the first
//! problems, and `RELIABILITY.md`.

use std::fmt::Write as _;

use crate::scenario::ScenarioResult;

fn mib(b: u64) -> String {
    format!("{:.0} MiB", b as f64 / 1_048_576.0)
}

/// The Markdown report (also printed).
pub fn render(results: &[ScenarioResult], command: &str, context: &str) -> String {
    let mut s = String::new();
    let passed = results.iter().filter(|r| r.passed()).count();
    let _ = writeln!(s, "Command: `{command}`\n");
    let _ = writeln!(s, "{context}\n");
    let _ = writeln!(s, "### Events per scenario\n");
    let _ = writeln!(
        s,
        "| scenario | seed | result | produced | acknowledged | stored | duplicated | lost | dead-lettered | p50 latency | p99 latency | peak consumer RSS | peak API RSS | API requests (bad) |"
    );
    let _ = writeln!(
        s,
        "|---|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|"
    );
    for r in results {
        let a = &r.accounting;
        let dl = r.dlq.as_ref().map_or("-".to_string(), |d| {
            format!("{}/{}", d.found, r.poison_published)
        });
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} ms | {} ms | {} | {} | {} ({}) |",
            r.name,
            r.seed,
            if r.passed() { "PASS" } else { "FAIL" },
            a.produced,
            a.acked,
            a.stored,
            a.duplicated,
            a.lost,
            dl,
            r.p50_ms,
            r.p99_ms,
            mib(r.consumer_peak_rss),
            mib(r.api_peak_rss),
            r.api.requests,
            r.api.bad
        );
    }
    let _ = writeln!(s, "\n### Faults and recovery\n");
    let _ = writeln!(s, "| scenario | fault | at | lasted | recovery |");
    let _ = writeln!(s, "|---|---|--:|--:|--:|");
    for r in results {
        for f in &r.faults {
            let _ = writeln!(
                s,
                "| {} | {} | {:.1} s | {:.1} s | {} |",
                r.name,
                f.label,
                f.start,
                f.end - f.start,
                f.recovery_secs
                    .map_or("never".to_string(), |x| format!("{x} s"))
            );
        }
    }
    let _ = writeln!(s, "\n### Details\n");
    for r in results {
        let a = &r.accounting;
        let _ = writeln!(
            s,
            "- **{}** ({:.0} s wall, drained in {:.1} s): rows {} without FINAL / {} with FINAL, distinct ids {} / {}; \
             failed emits {} (of which stored {}); API {} ok, {} 503-with-Retry-After during outages, p99 {} ms.",
            r.name,
            r.wall_secs,
            r.drain_secs,
            a.rows_raw,
            a.rows_final,
            a.distinct_raw,
            a.distinct_final,
            a.failed_emits,
            a.stored_unacked,
            r.api.ok,
            r.api.unavailable_ok,
            r.api.p99_ms
        );
        if let Some(d) = &r.dlq {
            for (kind, reason) in &d.reasons {
                let reason: String = reason.chars().take(140).collect();
                let _ = writeln!(
                    s,
                    "  - dead-lettered `{kind}`: {}",
                    reason.replace('|', "/")
                );
            }
        }
        for m in &r.memory {
            let _ = writeln!(
                s,
                "  - memory {}: first third {} , last third {}, peak {} -> {}",
                m.name,
                mib(m.first_third_mean),
                mib(m.last_third_mean),
                mib(m.peak),
                if m.bounded { "bounded" } else { "GROWING" }
            );
        }
        for f in &r.failures {
            let _ = writeln!(s, "  - FAILURE: {f}");
        }
    }
    let _ = writeln!(s, "\n{passed} passed, {} failed", results.len() - passed);
    s
}
