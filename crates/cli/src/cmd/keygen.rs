//! `auditlog keygen`: a new Ed25519 key for a log (checkpoints) or a witness (cosignatures).
//! The private key goes to `--out` (mode 0600, never over an existing file), the verifier key
//! to stdout.

use std::io::Write as _;
use std::path::PathBuf;

use anyhow::{Context as _, Result};
use auditlog_tlog::{KeyKind, Signer};
use clap::Args;

/// Generate a signing key file and print its verifier key.
#[derive(Debug, Args)]
pub struct KeygenArgs {
    /// The key's name: the log's origin prefix host (`auditlog.example.com`) or the witness's
    /// name (`witness.example.com`). No `+`, whitespace or control characters.
    #[arg(long)]
    pub name: String,
    /// File the private key is written to (created with mode 0600; an existing file is never
    /// overwritten).
    #[arg(long)]
    pub out: PathBuf,
    /// A witness's cosignature key (`[witness] key_file`) instead of a log's checkpoint key
    /// (`[sequencer]`).
    #[arg(long)]
    pub witness: bool,
}

/// Writes the key file and prints the verifier key.
pub fn run(args: KeygenArgs) -> Result<()> {
    let kind = if args.witness {
        KeyKind::Cosignature
    } else {
        KeyKind::Note
    };
    let signer = Signer::generate(&args.name, kind).context("--name")?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let shown = args.out.display();
    let mut file = options
        .open(&args.out)
        .with_context(|| format!("creating {shown} (an existing key file is never overwritten)"))?;
    file.write_all(format!("{}\n", signer.private_key()).as_bytes())
        .and_then(|()| file.sync_all())
        .with_context(|| format!("writing {shown}"))?;
    println!("{}", signer.verifier());
    let what = if args.witness {
        "witness cosignature"
    } else {
        "log"
    };
    eprintln!("{what} private key written to {shown}; the verifier key (public) is above");
    Ok(())
}
