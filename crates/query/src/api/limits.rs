//! The documented request-head limits, answered with the JSON error shape (`431
//! headers_too_large`) before hyper's own, higher parser limits
//! ([`super::serve::PARSER_MAX_HEAD_BYTES`], [`super::serve::PARSER_MAX_HEADERS`]) would
//! answer a bare 431.

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;

use super::error::{error_response, ErrorCode};

/// Most header fields in a request.
pub const MAX_HEADERS: usize = 100;
/// Largest request head: request line plus header lines, as sent.
pub const MAX_HEAD_BYTES: usize = 32 * 1024;

/// Size of the head as sent on the wire (`METHOD target HTTP/1.1\r\n`, `name: value\r\n` per
/// field, and the blank line).
pub fn head_bytes(req: &Request) -> usize {
    let target = req.uri().path_and_query().map_or(1, |p| p.as_str().len());
    let line = req.method().as_str().len() + 1 + target + 1 + "HTTP/1.1".len() + 2;
    let fields: usize = req
        .headers()
        .iter()
        .map(|(n, v)| n.as_str().len() + 2 + v.len() + 2)
        .sum();
    line + fields + 2
}

/// Middleware: `431 headers_too_large` for a head beyond [`MAX_HEADERS`] or [`MAX_HEAD_BYTES`].
pub async fn check(req: Request, next: Next) -> Response {
    let fields = req.headers().len();
    if fields > MAX_HEADERS {
        return too_large(&format!(
            "headers: {fields} header fields, at most {MAX_HEADERS}"
        ));
    }
    let bytes = head_bytes(&req);
    if bytes > MAX_HEAD_BYTES {
        return too_large(&format!(
            "headers: request line and headers are {bytes} bytes, at most {MAX_HEAD_BYTES}"
        ));
    }
    next.run(req).await
}

fn too_large(message: &str) -> Response {
    error_response(ErrorCode::HeadersTooLarge, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn head_bytes_counts_the_wire_form() {
        let req = Request::builder()
            .uri("/v1/events?limit=5")
            .header("host", "x")
            .body(axum::body::Body::empty())
            .unwrap();
        let wire = "GET /v1/events?limit=5 HTTP/1.1\r\nhost: x\r\n\r\n";
        assert_eq!(head_bytes(&req), wire.len());
    }
}
