//! The raw query string, decoded strictly: each name and value is percent-decoded and must be
//! UTF-8 (an error names the parameter), and a parameter may appear only once.

use percent_encoding::percent_decode;

use crate::{Error, Result};

/// Longest query string accepted, in bytes.
pub const MAX_QUERY_STRING: usize = 16 * 1024;

/// Decoded `name=value` pairs, in request order, each name at most once.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Params(Vec<(String, String)>);

impl Params {
    /// Parses `a=1&b=x%20y` (`+` is a space). Invalid UTF-8, a repeated name or an over-long
    /// query string is a [`Error::BadParameter`].
    pub fn parse(raw: Option<&str>) -> Result<Self> {
        let raw = raw.unwrap_or("");
        if raw.len() > MAX_QUERY_STRING {
            return Err(Error::bad(
                "query string",
                format!("longer than {MAX_QUERY_STRING} bytes"),
            ));
        }
        let mut out: Vec<(String, String)> = Vec::new();
        for pair in raw.split('&').filter(|p| !p.is_empty()) {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let name = decode(name).map_err(|_| {
                Error::bad(
                    String::from_utf8_lossy(name.as_bytes()).into_owned(),
                    "parameter name is not valid UTF-8",
                )
            })?;
            let value = decode(value).map_err(|_| {
                Error::bad(&name, "value is not valid UTF-8 after percent-decoding")
            })?;
            if out.iter().any(|(n, _)| *n == name) {
                return Err(Error::bad(&name, "given more than once"));
            }
            out.push((name, value));
        }
        Ok(Self(out))
    }

    /// The value of `name`, if present.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Fails on the first parameter whose name is not in `allowed`.
    pub fn only(&self, allowed: &[&str]) -> Result<()> {
        match self.0.iter().find(|(n, _)| !allowed.contains(&n.as_str())) {
            Some((n, _)) if allowed.is_empty() => Err(Error::bad(
                n,
                "unknown parameter (this endpoint takes no parameters)",
            )),
            Some((n, _)) => Err(Error::bad(
                n,
                format!("unknown parameter (accepted: {})", allowed.join(", ")),
            )),
            None => Ok(()),
        }
    }
}

fn decode(s: &str) -> std::result::Result<String, std::str::Utf8Error> {
    let plus = s.replace('+', " ");
    percent_decode(plus.as_bytes())
        .decode_utf8()
        .map(|c| c.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_and_rejects_bad_utf8_and_repeats() {
        let p = Params::parse(Some("a=x%20y&b=1+2&c")).unwrap();
        assert_eq!(p.get("a"), Some("x y"));
        assert_eq!(p.get("b"), Some("1 2"));
        assert_eq!(p.get("c"), Some(""));
        let e = Params::parse(Some("q=%FF%FE")).unwrap_err().to_string();
        assert!(e.starts_with("q:"), "{e}");
        let e = Params::parse(Some("a=1&a=2")).unwrap_err().to_string();
        assert!(e.contains("more than once"), "{e}");
        let e = p.only(&["a", "b"]).unwrap_err().to_string();
        assert!(e.starts_with("c:") && e.contains("accepted: a, b"), "{e}");
        let e = p.only(&[]).unwrap_err().to_string();
        assert!(e.contains("takes no parameters"), "{e}");
    }
}
