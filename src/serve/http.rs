//! The HTTP layer (hyper 1.x), shared by both modes: the app listener and the admin listener.
//!
//! It parses requests, reads bodies within `limits.max_body_bytes`, calls [`App::serve`],
//! and writes JSON responses with the `Server-Timing` header. It also records each response
//! in the metrics: the one place responses are counted.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, RETRY_AFTER};
use hyper::{Request, Response, StatusCode};
use serde_json::json;

use crate::app::App;
use crate::error::AppError;
use crate::handlers::Route;
use crate::metrics::CONTENT_TYPE as METRICS_CONTENT_TYPE;
use crate::server_timing::Mode;

pub type Body = Full<Bytes>;

/// Serves one app request.
pub async fn app_service(
    app: Arc<App>,
    req: Request<Incoming>,
) -> Result<Response<Body>, Infallible> {
    let arrival = Instant::now();
    let method = req.method().as_str().to_string();
    let path = req.uri().path().to_string();
    let route = Route::match_request(&method, &path);
    let body = match &route {
        Ok(Route::CreateOrder) => read_body(req, app.config.limits.max_body_bytes).await,
        _ => Ok(Bytes::new()),
    };
    let outcome = app.serve(route, body, arrival, &method, &path).await;
    let (status, json_body, retry_after) = match &outcome.result {
        Ok(reply) => (reply.status, reply.body.clone(), None),
        Err(e) => (e.status(), e.body(), e.retry_after()),
    };
    let mut response = json_response(status, &json_body);
    let timing = outcome.timing.server_timing(outcome.mode).to_string();
    if let Ok(v) = HeaderValue::from_str(&timing) {
        response.headers_mut().insert("server-timing", v);
    }
    if let Some(after) = retry_after {
        response
            .headers_mut()
            .insert(RETRY_AFTER, HeaderValue::from(after.as_secs().max(1)));
    }
    app.metrics.observe_request(
        outcome.mode,
        outcome.route,
        status,
        arrival.elapsed(),
        &outcome.timing,
    );
    Ok(response)
}

/// Reads a body of at most `limit` bytes: 413 past it, 400 if the body cannot be read.
async fn read_body(req: Request<Incoming>, limit: usize) -> Result<Bytes, AppError> {
    let declared = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(AppError::PayloadTooLarge(limit));
    }
    match Limited::new(req.into_body(), limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => {
            Err(AppError::PayloadTooLarge(limit))
        }
        Err(_) => Err(AppError::BadRequest(
            "could not read the request body".into(),
        )),
    }
}

fn json_response(status: u16, body: &serde_json::Value) -> Response<Body> {
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() =
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

fn error_response(e: &AppError) -> Response<Body> {
    let mut response = json_response(e.status(), &e.body());
    if let Some(after) = e.retry_after() {
        response
            .headers_mut()
            .insert(RETRY_AFTER, HeaderValue::from(after.as_secs().max(1)));
    }
    response
}

/// Serves one admin request: `/metrics`, `/healthz`, `/readyz`, `/admin/mode`.
pub async fn admin_service(
    app: Arc<App>,
    req: Request<Incoming>,
) -> Result<Response<Body>, Infallible> {
    let response = match (req.method().as_str(), req.uri().path()) {
        ("GET", "/metrics") => {
            let mut r = Response::new(Full::new(Bytes::from(app.metrics.render())));
            r.headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static(METRICS_CONTENT_TYPE));
            r
        }
        ("GET", "/healthz") => json_response(200, &json!({"status": "ok"})),
        ("GET", "/readyz") => {
            if app.ready().await {
                json_response(200, &json!({"status": "ready"}))
            } else {
                let mut r = error_response(&AppError::DbUnavailable);
                *r.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
                r
            }
        }
        ("GET", "/admin/mode") => json_response(200, &json!({"mode": app.mode()})),
        ("PUT", "/admin/mode") => match put_mode(&app, req).await {
            Ok(body) => json_response(200, &body),
            Err(e) => error_response(&e),
        },
        (_, "/metrics" | "/healthz" | "/readyz" | "/admin/mode") => {
            error_response(&AppError::MethodNotAllowed)
        }
        (_, path) => error_response(&AppError::NotFound(format!("no admin route for {path}"))),
    };
    Ok(response)
}

async fn put_mode(app: &App, req: Request<Incoming>) -> Result<serde_json::Value, AppError> {
    let token = &app.config.admin.token;
    if token.is_empty() {
        return Err(AppError::Forbidden(
            "PUT /admin/mode is disabled: set admin.token to enable it",
        ));
    }
    let presented = req
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    if !constant_time_eq(presented.as_bytes(), token.as_bytes()) {
        return Err(AppError::Unauthorized);
    }
    let body = read_body(req, 1024).await?;
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct SetMode {
        mode: Mode,
    }
    let set: SetMode = serde_json::from_slice(&body).map_err(|e| {
        AppError::BadRequest(format!("expected {{\"mode\": \"sync\"|\"async\"}}: {e}"))
    })?;
    let previous = app.set_mode(set.mode, "admin");
    Ok(json!({"mode": set.mode, "previous": previous}))
}

/// Compares secrets without an early exit, so timing does not reveal the matching prefix.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = a.len() ^ b.len();
    for i in 0..a.len().max(b.len()) {
        let x = a.get(i).copied().unwrap_or(0);
        let y = b.get(i).copied().unwrap_or(0);
        diff |= usize::from(x ^ y);
    }
    diff == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_comparison() {
        assert!(constant_time_eq(b"secret", b"secret"));
        assert!(!constant_time_eq(b"secret", b"secreT"));
        assert!(!constant_time_eq(b"secret", b"secret2"));
        assert!(!constant_time_eq(b"", b"x"));
    }
}
