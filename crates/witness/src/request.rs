//! The C2SP tlog-witness `add-checkpoint` request body, both ways:
//!
//! ```text
//! old <size>\n
//! <base64 hash>\n        (0 to 63 consistency proof lines)
//! \n
//! <signed checkpoint note>
//! ```

use auditlog_tlog::Hash;
use base64::Engine as _;

/// Most consistency proof lines a request may carry (C2SP tlog-witness).
pub const MAX_PROOF_LINES: usize = 63;

/// A parsed `add-checkpoint` body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddRequest {
    /// The size of the previous checkpoint the client says the witness holds.
    pub old_size: u64,
    /// The consistency proof from `old_size` to the checkpoint's size.
    pub proof: Vec<Hash>,
    /// The signed checkpoint note (unparsed).
    pub note: String,
}

/// The request body for `old_size`, `proof` and `signed_checkpoint` (a signed note).
pub fn encode(old_size: u64, proof: &[Hash], signed_checkpoint: &str) -> String {
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut body = format!("old {old_size}\n");
    for h in proof {
        body.push_str(&b64.encode(h));
        body.push('\n');
    }
    body.push('\n');
    body.push_str(signed_checkpoint);
    body
}

/// Parses a body; the error says what is malformed (answered as 400).
pub fn parse(body: &str) -> Result<AddRequest, String> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let (first, mut rest) = body
        .split_once('\n')
        .ok_or("the body has no `old <size>` line")?;
    let digits = first
        .strip_prefix("old ")
        .ok_or("the first line is not `old <size>`")?;
    let canonical = !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && (digits == "0" || !digits.starts_with('0'));
    if !canonical {
        return Err(format!(
            "`old {digits}`: the size is not a decimal without leading zeros"
        ));
    }
    let old_size: u64 = digits
        .parse()
        .map_err(|_| format!("`old {digits}`: the size is too large"))?;
    let mut proof = Vec::new();
    loop {
        let (line, after) = rest
            .split_once('\n')
            .ok_or("the body has no blank line before the checkpoint")?;
        rest = after;
        if line.is_empty() {
            break;
        }
        if proof.len() == MAX_PROOF_LINES {
            return Err(format!(
                "more than {MAX_PROOF_LINES} consistency proof lines"
            ));
        }
        let hash: Hash = b64
            .decode(line)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| format!("proof line {}: not a base64 32-byte hash", proof.len() + 1))?;
        proof.push(hash);
    }
    if rest.is_empty() {
        return Err("no checkpoint after the blank line".into());
    }
    Ok(AddRequest {
        old_size,
        proof,
        note: rest.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_body_reads_back() {
        let proof = [[1u8; 32], [2u8; 32]];
        let note = "o\n3\nAAAA\n\n— o sig\n";
        let body = encode(20, &proof, note);
        assert!(body.starts_with("old 20\nAQEB"));
        let r = parse(&body).unwrap();
        assert_eq!(r.old_size, 20);
        assert_eq!(r.proof, proof);
        assert_eq!(r.note, note);
        let empty = parse(&encode(0, &[], note)).unwrap();
        assert_eq!((empty.old_size, empty.proof.len()), (0, 0));
    }

    #[test]
    fn malformed_bodies_say_why() {
        let h = base64::engine::general_purpose::STANDARD.encode([0u8; 32]);
        let many = format!("old 1\n{}\nnote\n", format!("{h}\n").repeat(64));
        for (body, why) in [
            ("", "no `old"),
            ("old 1", "no `old"),
            ("new 1\n\nn\n", "not `old"),
            ("old 01\n\nn\n", "leading zeros"),
            ("old -1\n\nn\n", "leading zeros"),
            ("old 1 \n\nn\n", "leading zeros"),
            ("old 99999999999999999999\n\nn\n", "too large"),
            ("old 1\nAAAA\n\nn\n", "proof line 1"),
            ("old 1\n!!\n\nn\n", "proof line 1"),
            ("old 1\n", "no blank line"),
            ("old 1\n\n", "no checkpoint"),
            (many.as_str(), "more than 63"),
        ] {
            let err = parse(body).unwrap_err();
            assert!(err.contains(why), "{body:?}: {err}");
        }
    }
}
