//! The one error type of the app, and its mapping to HTTP status, JSON body and headers.
//!
//! Internal causes are logged once where they happen and never sent to clients: a response
//! carries a stable `code` and a message written for the client.

use std::time::Duration;

use serde_json::json;

/// Everything a request can fail with.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum AppError {
    /// 400: malformed JSON, ids or parameters; the message says what is wrong.
    BadRequest(String),
    /// 401: missing or wrong bearer token.
    Unauthorized,
    /// 403: the admin endpoint is disabled (no token configured).
    Forbidden(&'static str),
    /// 404: unknown user or route.
    NotFound(String),
    /// 405: known route, wrong method; carries the `Allow` header's value.
    MethodNotAllowed(&'static str),
    /// 408: the body did not arrive within `limits.body_read_timeout`; the connection is
    /// closed.
    BodyTimeout,
    /// 413: body over `limits.max_body_bytes`.
    PayloadTooLarge(usize),
    /// 503 + Retry-After: load shed (queue full, too many in flight, shutting down).
    Overloaded(&'static str),
    /// 503 + Retry-After: MongoDB unreachable.
    DbUnavailable,
    /// 504: `limits.request_timeout` passed.
    Timeout,
    /// 500: anything else; the cause was logged.
    Internal,
}

impl AppError {
    pub(crate) fn status(&self) -> u16 {
        match self {
            AppError::BadRequest(_) => 400,
            AppError::Unauthorized => 401,
            AppError::Forbidden(_) => 403,
            AppError::NotFound(_) => 404,
            AppError::MethodNotAllowed(_) => 405,
            AppError::BodyTimeout => 408,
            AppError::PayloadTooLarge(_) => 413,
            AppError::Overloaded(_) | AppError::DbUnavailable => 503,
            AppError::Timeout => 504,
            AppError::Internal => 500,
        }
    }

    pub(crate) fn code(&self) -> &'static str {
        match self {
            AppError::BadRequest(_) => "bad_request",
            AppError::Unauthorized => "unauthorized",
            AppError::Forbidden(_) => "forbidden",
            AppError::NotFound(_) => "not_found",
            AppError::MethodNotAllowed(_) => "method_not_allowed",
            AppError::BodyTimeout => "body_timeout",
            AppError::PayloadTooLarge(_) => "payload_too_large",
            AppError::Overloaded(_) => "overloaded",
            AppError::DbUnavailable => "db_unavailable",
            AppError::Timeout => "timeout",
            AppError::Internal => "internal",
        }
    }

    pub(crate) fn message(&self) -> String {
        match self {
            AppError::BadRequest(m) | AppError::NotFound(m) => m.clone(),
            AppError::Unauthorized => "missing or invalid bearer token".into(),
            AppError::Forbidden(m) => (*m).into(),
            AppError::MethodNotAllowed(_) => "method not allowed on this route".into(),
            AppError::BodyTimeout => "the request body did not arrive in time".into(),
            AppError::PayloadTooLarge(limit) => {
                format!("request body is larger than {limit} bytes")
            }
            AppError::Overloaded(reason) => format!("server is overloaded ({reason}); retry later"),
            AppError::DbUnavailable => "the database is unavailable; retry later".into(),
            AppError::Timeout => "the request took longer than the server's timeout".into(),
            AppError::Internal => "internal error".into(),
        }
    }

    /// `Retry-After` for 503s.
    pub(crate) fn retry_after(&self) -> Option<Duration> {
        match self {
            AppError::Overloaded(_) => Some(Duration::from_secs(1)),
            AppError::DbUnavailable => Some(Duration::from_secs(2)),
            _ => None,
        }
    }

    /// The JSON body: `{"error": {"code": "...", "message": "..."}}`.
    pub(crate) fn body(&self) -> serde_json::Value {
        json!({"error": {"code": self.code(), "message": self.message()}})
    }
}

impl std::fmt::Display for AppError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.status(), self.code(), self.message())
    }
}

impl std::error::Error for AppError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_and_shape() {
        assert_eq!(AppError::BadRequest("x".into()).status(), 400);
        assert_eq!(AppError::PayloadTooLarge(10).status(), 413);
        assert_eq!(AppError::Timeout.status(), 504);
        let e = AppError::DbUnavailable;
        assert_eq!(e.status(), 503);
        assert!(e.retry_after().is_some());
        assert_eq!(e.body()["error"]["code"], "db_unavailable");
        assert!(AppError::Internal.body()["error"]["message"].is_string());
    }
}
