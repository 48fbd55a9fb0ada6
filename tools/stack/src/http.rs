//! Health checks and ClickHouse queries over loopback HTTP: one HTTP/1.0 request per
//! connection (the answer ends when the server closes it), with a deadline. Blocking and
//! runtime-free, so the test kit can call it from any thread, async or not. A status of 400
//! or more counts as a failure (as `curl -f` did).

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use anyhow::{bail, Context as _, Result};

/// An HTTP answer.
#[derive(Debug, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub body: String,
}

/// `GET http://127.0.0.1:PORT/PATH`; the body of a successful answer.
pub fn get(port: u16, path: &str, timeout: Duration) -> Result<String> {
    request(port, "GET", path, "", timeout)
}

/// `POST http://127.0.0.1:PORT/PATH` with `body`; the body of a successful answer.
pub fn post(port: u16, path: &str, body: &str, timeout: Duration) -> Result<String> {
    request(port, "POST", path, body, timeout)
}

fn request(port: u16, method: &str, path: &str, body: &str, timeout: Duration) -> Result<String> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut s = TcpStream::connect_timeout(&addr, timeout)
        .with_context(|| format!("connect to 127.0.0.1:{port}"))?;
    s.set_read_timeout(Some(timeout))?;
    s.set_write_timeout(Some(timeout))?;
    let req = format!(
        "{method} {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes())?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)
        .with_context(|| format!("read the answer of 127.0.0.1:{port}{path}"))?;
    let r = parse_response(&raw)?;
    if r.status >= 400 {
        bail!(
            "127.0.0.1:{port}{path}: HTTP {}: {}",
            r.status,
            r.body.trim()
        );
    }
    Ok(r.body)
}

/// Parses a whole HTTP/1.x answer (status line, headers, a plain or chunked body).
pub fn parse_response(raw: &[u8]) -> Result<Response> {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .context("no end of headers in the answer")?;
    let head = String::from_utf8_lossy(&raw[..split]);
    let body = &raw[split + 4..];
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let mut parts = status_line.splitn(3, ' ');
    let (Some(version), Some(code)) = (parts.next(), parts.next()) else {
        bail!("bad status line {status_line:?}");
    };
    if !version.starts_with("HTTP/1.") {
        bail!("bad status line {status_line:?}");
    }
    let status = code
        .parse()
        .with_context(|| format!("bad status line {status_line:?}"))?;
    let chunked = lines.any(|l| {
        l.split_once(':').is_some_and(|(k, v)| {
            k.trim().eq_ignore_ascii_case("transfer-encoding")
                && v.trim().eq_ignore_ascii_case("chunked")
        })
    });
    let body = if chunked {
        dechunk(body)?
    } else {
        body.to_vec()
    };
    Ok(Response {
        status,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

fn dechunk(mut rest: &[u8]) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let eol = rest
            .windows(2)
            .position(|w| w == b"\r\n")
            .context("truncated chunked body")?;
        let size_text = String::from_utf8_lossy(&rest[..eol]);
        let size_text = size_text.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_text, 16)
            .with_context(|| format!("bad chunk size {size_text:?}"))?;
        rest = &rest[eol + 2..];
        if size == 0 {
            return Ok(out);
        }
        if rest.len() < size {
            bail!("truncated chunked body");
        }
        out.extend_from_slice(&rest[..size]);
        rest = rest.get(size + 2..).unwrap_or_default();
    }
}

/// ClickHouse's `/ping` answer means healthy.
pub fn is_ping_ok(body: &str) -> bool {
    body.trim_end_matches('\n') == "Ok."
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_and_chunked_answers_parse() {
        let r =
            parse_response(b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nOk.\n").unwrap();
        assert_eq!(
            r,
            Response {
                status: 200,
                body: "Ok.\n".into()
            }
        );
        let r = parse_response(
            b"HTTP/1.1 503 Service Unavailable\r\ntransfer-encoding: Chunked\r\n\r\n\
              5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\n\r\n",
        )
        .unwrap();
        assert_eq!((r.status, r.body.as_str()), (503, "hello, world"));
        assert!(parse_response(b"HTTP/1.1 200 OK\r\n").is_err());
        assert!(parse_response(b"SSH-2.0-OpenSSH\r\n\r\n").is_err());
        assert!(
            parse_response(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nff\r\nab")
                .is_err()
        );
    }

    #[test]
    fn ping_is_ok_only_for_clickhouse_answer() {
        assert!(is_ping_ok("Ok.\n"));
        assert!(is_ping_ok("Ok."));
        assert!(!is_ping_ok(""));
        assert!(!is_ping_ok("Ok.\nmore"));
    }

    #[test]
    fn requests_reach_a_loopback_server_and_fail_on_errors() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = std::thread::spawn(move || {
            for answer in [
                "HTTP/1.0 200 OK\r\n\r\n{\"status\":\"ok\"}",
                "HTTP/1.0 500 Oops\r\n\r\nbroken",
            ] {
                let (mut s, _) = listener.accept().unwrap();
                let mut req = String::new();
                let mut buf = [0u8; 1024];
                while !(req.starts_with("GET /health ") && req.ends_with("\r\n\r\n")
                    || req.ends_with("\r\n\r\nSELECT 1"))
                {
                    let n = s.read(&mut buf).unwrap();
                    assert!(n > 0, "request cut short: {req:?}");
                    req.push_str(&String::from_utf8_lossy(&buf[..n]));
                }
                s.write_all(answer.as_bytes()).unwrap();
            }
        });
        assert_eq!(
            get(port, "/health", Duration::from_secs(5)).unwrap(),
            "{\"status\":\"ok\"}"
        );
        let e = post(port, "/", "SELECT 1", Duration::from_secs(5)).unwrap_err();
        assert!(e.to_string().contains("HTTP 500: broken"), "{e}");
        server.join().unwrap();
    }
}
