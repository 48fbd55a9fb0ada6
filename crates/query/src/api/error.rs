//! Every error as `{"error": {"code", "message"}}` with its status, and axum's own
//! extractor rejections mapped to the same shape. [`ErrorCode`] is the one list of the codes
//! the API can answer; the OpenAPI document and docs/api.md's table are generated from it.

use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use crate::Error;

/// Seconds a client should wait after a 503.
pub const RETRY_AFTER_SECS: u32 = 5;
/// Seconds a client should wait after a `429 overloaded` (the producer buffer was full).
pub const OVERLOADED_RETRY_AFTER_SECS: u32 = 1;

/// The `code` of an error body: what went wrong, one code per status it is answered with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// 400: a parameter, path segment or body is malformed.
    BadParameter,
    /// 400: the cursor is not one this listing can continue.
    BadCursor,
    /// 401: no acceptable token.
    Unauthorized,
    /// 403: the token's scope does not allow the route.
    Forbidden,
    /// 404: no such event, token or route.
    NotFound,
    /// 404: the workspace's log has no signed checkpoint yet.
    NoCheckpoint,
    /// 404: the event is not (yet) a leaf of the workspace's log.
    NotInLog,
    /// 405: the route has no such method.
    MethodNotAllowed,
    /// 410: a feed cursor older than the workspace's retention.
    CursorExpired,
    /// 413: the request body is too large.
    PayloadTooLarge,
    /// 415: the request body's content type is not accepted.
    UnsupportedMediaType,
    /// 422: well-formed but not acceptable.
    Unprocessable,
    /// 429: too many failed authentications from this client.
    TooManyRequests,
    /// 429: the producer's buffer is full (ingest).
    Overloaded,
    /// 431: the request head is too large.
    HeadersTooLarge,
    /// 500: a bug or an unexpected ClickHouse answer.
    Internal,
    /// 503: ClickHouse unavailable or not answering in time.
    Unavailable,
}

impl ErrorCode {
    /// Every code, in status order.
    pub const ALL: [ErrorCode; 17] = [
        ErrorCode::BadParameter,
        ErrorCode::BadCursor,
        ErrorCode::Unauthorized,
        ErrorCode::Forbidden,
        ErrorCode::NotFound,
        ErrorCode::NoCheckpoint,
        ErrorCode::NotInLog,
        ErrorCode::MethodNotAllowed,
        ErrorCode::CursorExpired,
        ErrorCode::PayloadTooLarge,
        ErrorCode::UnsupportedMediaType,
        ErrorCode::Unprocessable,
        ErrorCode::TooManyRequests,
        ErrorCode::Overloaded,
        ErrorCode::HeadersTooLarge,
        ErrorCode::Internal,
        ErrorCode::Unavailable,
    ];

    /// The code as sent (its serde name).
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BadParameter => "bad_parameter",
            ErrorCode::BadCursor => "bad_cursor",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::NotFound => "not_found",
            ErrorCode::NoCheckpoint => "no_checkpoint",
            ErrorCode::NotInLog => "not_in_log",
            ErrorCode::MethodNotAllowed => "method_not_allowed",
            ErrorCode::CursorExpired => "cursor_expired",
            ErrorCode::PayloadTooLarge => "payload_too_large",
            ErrorCode::UnsupportedMediaType => "unsupported_media_type",
            ErrorCode::Unprocessable => "unprocessable",
            ErrorCode::TooManyRequests => "too_many_requests",
            ErrorCode::Overloaded => "overloaded",
            ErrorCode::HeadersTooLarge => "headers_too_large",
            ErrorCode::Internal => "internal",
            ErrorCode::Unavailable => "unavailable",
        }
    }

    /// The status it is answered with.
    pub fn status(self) -> StatusCode {
        match self {
            ErrorCode::BadParameter | ErrorCode::BadCursor => StatusCode::BAD_REQUEST,
            ErrorCode::Unauthorized => StatusCode::UNAUTHORIZED,
            ErrorCode::Forbidden => StatusCode::FORBIDDEN,
            ErrorCode::NotFound | ErrorCode::NoCheckpoint | ErrorCode::NotInLog => {
                StatusCode::NOT_FOUND
            }
            ErrorCode::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ErrorCode::CursorExpired => StatusCode::GONE,
            ErrorCode::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorCode::Unprocessable => StatusCode::UNPROCESSABLE_ENTITY,
            ErrorCode::TooManyRequests | ErrorCode::Overloaded => StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::HeadersTooLarge => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// When it is answered (Markdown; the OpenAPI responses and docs/api.md's table).
    pub fn when(self) -> &'static str {
        match self {
            ErrorCode::BadParameter => "malformed parameter, path segment or body (including invalid UTF-8 after percent-decoding, wrong types, out-of-range limits, unknown or repeated parameters, bodies that are not the expected JSON)",
            ErrorCode::BadCursor => "cursor modified, truncated, from another server key, or used with other filters/order/workspace",
            ErrorCode::Unauthorized => "token missing, unknown, revoked or expired (the message says when it expired)",
            ErrorCode::Forbidden => "a valid token whose scope does not allow the route: an ingest token on a read route, a read token on `POST /v1/ingest`",
            ErrorCode::NotFound => "event, token or stream not found; unknown route",
            ErrorCode::NoCheckpoint => "`/v1/log/checkpoint`, the proofs, `/v1/log/leaves` and `GET /v1/export?format=log`: the workspace's log has no signed checkpoint yet (no event sequenced, or the sequencer has not signed one yet)",
            ErrorCode::NotInLog => "`GET /v1/log/proof/inclusion`: the event is unknown or not yet a leaf below the latest checkpoint",
            ErrorCode::MethodNotAllowed => "known route, other method (made-up methods included)",
            ErrorCode::CursorExpired => "a feed cursor issued longer ago than the workspace's retention (events it had still to deliver may be gone); start again with `start=`",
            ErrorCode::PayloadTooLarge => "`POST /v1/ingest`: a body above `api.ingest_max_body_bytes` or with more than `api.ingest_max_lines` lines; nothing was published",
            ErrorCode::UnsupportedMediaType => "`POST /v1/ingest`: a `Content-Type` other than `application/json` or `application/x-ndjson`",
            ErrorCode::Unprocessable => "well-formed but not acceptable (an invalid plan; `POST /v1/ingest`: every line rejected, the per-line results beside the error)",
            ErrorCode::TooManyRequests => "too many failed authentications from this client; `Retry-After: N` (see \"Failed authentications\")",
            ErrorCode::Overloaded => "`POST /v1/ingest`: the producer's buffer is full; the lines not sent are in `failed`, `Retry-After: 1`",
            ErrorCode::HeadersTooLarge => "more than 100 header fields, or request line plus headers above 32 KiB (above 256 fields or 64 KiB: a bare 431 and the connection closed)",
            ErrorCode::Internal => "a bug or an unexpected ClickHouse answer (the detail is logged, never sent)",
            ErrorCode::Unavailable => "ClickHouse unreachable, overloaded, or not answering within `query_timeout` (health: `health_timeout`); `POST /v1/ingest`: the broker did not acknowledge every event within `api.ingest_timeout` (those are in `failed`) or the producer is not connected; `Retry-After: 5`",
        }
    }
}

/// The body of every error answer.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = Error, example = json!({"error": {"code": "bad_parameter", "message": "limit: \"0\" is not an integer in 1..=1000"}}))]
pub struct ErrorBody {
    /// What went wrong.
    pub error: ErrorDetail,
}

/// `code` and a message for people; the message of a parameter error starts with the
/// parameter's name.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Machine-readable code.
    pub code: ErrorCode,
    /// Human-readable message.
    pub message: String,
}

impl ErrorDetail {
    /// `code` with `message`.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

impl Error {
    /// The error code (its status is [`ErrorCode::status`]).
    pub fn code(&self) -> ErrorCode {
        match self {
            Error::BadParameter { .. } => ErrorCode::BadParameter,
            Error::BadCursor(_) => ErrorCode::BadCursor,
            Error::Unauthorized | Error::TokenExpired => ErrorCode::Unauthorized,
            Error::Forbidden(_) => ErrorCode::Forbidden,
            Error::PayloadTooLarge(_) => ErrorCode::PayloadTooLarge,
            Error::UnsupportedMediaType(_) => ErrorCode::UnsupportedMediaType,
            Error::NotFound(_) => ErrorCode::NotFound,
            Error::NoCheckpoint(_) => ErrorCode::NoCheckpoint,
            Error::NotInLog(_) => ErrorCode::NotInLog,
            Error::CursorExpired(_) => ErrorCode::CursorExpired,
            Error::Unprocessable(_) => ErrorCode::Unprocessable,
            Error::Unavailable(_) => ErrorCode::Unavailable,
            Error::Config(_) | Error::Internal(_) => ErrorCode::Internal,
        }
    }
}

/// The JSON error response of `code` (its status; `Retry-After` on a 503 and a 429
/// `overloaded`, `WWW-Authenticate` on a 401).
pub fn error_response(code: ErrorCode, message: &str) -> Response {
    let status = code.status();
    let body = Json(ErrorBody {
        error: ErrorDetail::new(code, message),
    });
    let mut resp = (status, body).into_response();
    if status == StatusCode::SERVICE_UNAVAILABLE {
        resp.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECS));
    }
    if code == ErrorCode::Overloaded {
        resp.headers_mut().insert(
            header::RETRY_AFTER,
            HeaderValue::from(OVERLOADED_RETRY_AFTER_SECS),
        );
    }
    if status == StatusCode::UNAUTHORIZED {
        resp.headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    resp
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let message = match &self {
            Error::Unavailable(detail) => {
                tracing::warn!(%detail, "clickhouse unavailable");
                "the event store is unavailable; retry later".to_owned()
            }
            Error::Internal(detail)
            | Error::Config(auditlog_settings::BadSetting { reason: detail, .. }) => {
                tracing::error!(%detail, "internal error");
                "internal error".to_owned()
            }
            other => other.to_string(),
        };
        error_response(self.code(), &message)
    }
}

/// A path parameter that did not decode (for example invalid UTF-8).
pub fn path_rejection(param: &str, r: PathRejection) -> Error {
    Error::bad(param, format!("invalid path parameter: {}", r.body_text()))
}

/// A JSON body that did not parse or did not match the expected shape.
pub fn json_rejection(r: JsonRejection) -> Error {
    Error::bad("body", r.body_text())
}

/// 404 for unknown routes.
pub async fn not_found() -> Response {
    error_response(ErrorCode::NotFound, "no such route")
}

/// 405 for a known route with another method.
pub async fn method_not_allowed() -> Response {
    error_response(
        ErrorCode::MethodNotAllowed,
        "method not allowed on this route",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_sent_by_their_serde_names_and_listed_once() {
        let mut seen = std::collections::HashSet::new();
        for c in ErrorCode::ALL {
            assert_eq!(serde_json::to_value(c).unwrap(), c.as_str());
            assert!(seen.insert(c.as_str()), "{c:?} twice");
        }
        // ALL is in status order (docs/api.md's table).
        let statuses: Vec<u16> = ErrorCode::ALL.iter().map(|c| c.status().as_u16()).collect();
        assert!(statuses.windows(2).all(|w| w[0] <= w[1]), "{statuses:?}");
    }
}
