//! A bad `[relay]` setting stops `auditlog relay` before it connects anywhere, naming the
//! field.

use std::process::Command;

use anyhow::{ensure, Result};

fn relay(env: &[(&str, &str)], args: &[&str]) -> Result<(bool, String)> {
    let out = Command::new(auditlog_testkit::auditlog_bin())
        .arg("relay")
        .args(args)
        .env("AUDITLOG_KAFKA__BROKERS", "127.0.0.1:1")
        .env("AUDITLOG_RELAY__LISTEN", "")
        .envs(env.iter().copied())
        .output()?;
    Ok((
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    ))
}

/// Settings (as `AUDITLOG_*` variables), arguments, and the field the error must name.
type Case<'a> = (&'a [(&'a str, &'a str)], &'a [&'a str], &'a str);

#[test]
fn a_bad_setting_stops_startup_naming_the_field() -> Result<()> {
    let cases: &[Case] = &[
        (&[], &[], "relay.database_url"),
        (&[], &["migrate"], "relay.database_url"),
        (
            &[("AUDITLOG_RELAY__DATABASE_URL", "sqlite:///tmp/x.db")],
            &[],
            "relay.database_url",
        ),
        (
            &[(
                "AUDITLOG_RELAY__DATABASE_URL",
                "postgres://u:hunter2@db:99999999/x",
            )],
            &[],
            "relay.database_url",
        ),
        (
            &[],
            &["--database-url", "mysql://db:port/x"],
            "relay.database_url",
        ),
        (
            &[
                ("AUDITLOG_RELAY__DATABASE_URL", "postgres://db/x"),
                ("AUDITLOG_RELAY__BATCH_ROWS", "0"),
            ],
            &[],
            "relay.batch_rows",
        ),
        (
            &[
                ("AUDITLOG_RELAY__DATABASE_URL", "postgres://db/x"),
                ("AUDITLOG_RELAY__POLL_INTERVAL", "1ms"),
            ],
            &[],
            "relay.poll_interval",
        ),
    ];
    for (env, args, field) in cases {
        let (ok, stderr) = relay(env, args)?;
        ensure!(!ok, "{env:?} {args:?}: started");
        ensure!(
            stderr.contains(field),
            "{env:?} {args:?}: {field} not named in {stderr}"
        );
        ensure!(
            !stderr.contains("hunter2"),
            "the password was printed: {stderr}"
        );
    }
    Ok(())
}
