//! Every error as `{"error": {"code", "message"}}` with its status, and axum's own
//! extractor rejections mapped to the same shape.

use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use crate::Error;

/// Seconds a client should wait after a 503.
pub const RETRY_AFTER_SECS: u32 = 5;

impl Error {
    /// HTTP status and error code.
    pub fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            Error::BadParameter { .. } => (StatusCode::BAD_REQUEST, "bad_parameter"),
            Error::BadCursor(_) => (StatusCode::BAD_REQUEST, "bad_cursor"),
            Error::Unauthorized | Error::TokenExpired => (StatusCode::UNAUTHORIZED, "unauthorized"),
            Error::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            Error::Unprocessable(_) => (StatusCode::UNPROCESSABLE_ENTITY, "unprocessable"),
            Error::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            Error::Config(_) | Error::Internal(_) => {
                (StatusCode::INTERNAL_SERVER_ERROR, "internal")
            }
        }
    }
}

/// The JSON error response.
pub fn error_response(status: StatusCode, code: &str, message: &str) -> Response {
    let body = Json(json!({"error": {"code": code, "message": message}}));
    let mut resp = (status, body).into_response();
    if status == StatusCode::SERVICE_UNAVAILABLE {
        resp.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECS));
    }
    if status == StatusCode::UNAUTHORIZED {
        resp.headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    resp
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
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
        error_response(status, code, &message)
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
    error_response(StatusCode::NOT_FOUND, "not_found", "no such route")
}

/// 405 for a known route with another method.
pub async fn method_not_allowed() -> Response {
    error_response(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "method not allowed on this route",
    )
}
