//! The HTTP layer (hyper 1.x), shared by both modes: the app and admin services.
//!
//! It parses requests, reads bodies within `limits.max_body_bytes`, calls [`App::serve`],
//! and writes JSON responses with the `Server-Timing` header. It also records each response
//! in the metrics: the one place responses are counted.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{
    HeaderValue, ALLOW, AUTHORIZATION, CONNECTION, CONTENT_LENGTH, CONTENT_TYPE, RETRY_AFTER,
    WWW_AUTHENTICATE,
};
use hyper::{Request, Response, StatusCode};
use serde_json::json;
use subtle::ConstantTimeEq;

use crate::api::{self, Mode};
use crate::config::BodyLimits;
use crate::observe::metrics::CONTENT_TYPE as METRICS_CONTENT_TYPE;
use crate::observe::spans;
use crate::serve::app::{self, App};
use crate::serve::error::AppError;
use crate::serve::server::Slot;

/// A whole response, or the live view's stream (admin listener).
pub(crate) type Body = crate::live::Body;

/// A request body being read, boxed.
type BodyRead = Pin<Box<dyn Future<Output = Result<Bytes, AppError>> + Send>>;

/// Serves one app request.
///
/// What hyper keeps for each request in flight is this future, so it holds only what the
/// response needs: the request itself is dropped before the future is built (a body to read
/// is first turned into its own boxed future), and the admin service's larger future is
/// boxed separately (P4, memory per waiting request).
pub(crate) fn app_service(
    app: Arc<App>,
    req: Request<Incoming>,
) -> impl Future<Output = Result<Response<Body>, Infallible>> + Send {
    let arrival = Instant::now();
    let method = req.method().as_str().to_string();
    let path = req.uri().path().to_string();
    let remote = spans::remote_parent(req.headers());
    let call = api::parse(&method, &path).map_err(app::unmatched);
    let body: Option<BodyRead> = match &call {
        Ok(c) if c.route().has_body() => {
            Some(Box::pin(read_body(req, app.config.limits.body_limits())))
        }
        _ => None,
    };
    async move {
        let body = match body {
            Some(read) => read.await,
            None => Ok(Bytes::new()),
        };
        let outcome = app.serve(call, body, arrival, &method, &path, remote).await;
        let (status, mut response) = match &outcome.result {
            Ok(reply) => (reply.status, json_response(reply.status, &reply.body)),
            Err(e) => (e.status(), error_response(e)),
        };
        let timing = outcome.timing.server_timing(outcome.mode).to_string();
        if let Ok(v) = HeaderValue::from_str(&timing) {
            response.headers_mut().insert("server-timing", v);
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
}

/// Reads a body within `limits`: 413 past its size, 408 past its deadline, 400 if the body
/// cannot be read.
async fn read_body(req: Request<Incoming>, limits: BodyLimits) -> Result<Bytes, AppError> {
    let limit = limits.max_bytes;
    let declared = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(AppError::PayloadTooLarge(limit));
    }
    let collect = Limited::new(req.into_body(), limit).collect();
    match tokio::time::timeout(limits.timeout, collect).await {
        Err(_) => Err(AppError::BodyTimeout),
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => {
            Err(AppError::PayloadTooLarge(limit))
        }
        Ok(Err(_)) => Err(AppError::BadRequest(
            "could not read the request body".into(),
        )),
    }
}

fn json_response(status: u16, body: &serde_json::Value) -> Response<Body> {
    let mut response = Response::new(Body::Left(Full::new(Bytes::from(body.to_string()))));
    *response.status_mut() =
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// The JSON error response, with the headers its status calls for: `Retry-After` on 503,
/// `Allow` on 405, `WWW-Authenticate` on 401.
fn error_response(e: &AppError) -> Response<Body> {
    let mut response = json_response(e.status(), &e.body());
    let headers = response.headers_mut();
    if let Some(after) = e.retry_after() {
        headers.insert(RETRY_AFTER, HeaderValue::from(after.as_secs().max(1)));
    }
    match e {
        AppError::MethodNotAllowed(allow) => {
            headers.insert(ALLOW, HeaderValue::from_static(allow));
        }
        AppError::Unauthorized => {
            headers.insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        AppError::BodyTimeout => {
            // The rest of the body may still trickle in: don't read it, close.
            headers.insert(CONNECTION, HeaderValue::from_static("close"));
        }
        _ => {}
    }
    response
}

/// Serves one admin request: `/metrics`, `/healthz`, `/readyz`, `/admin/mode`, `/live...`.
/// Boxed, so the app and admin connections' shared service future is sized for the app's.
pub(crate) fn admin_service(
    app: Arc<App>,
    req: Request<Incoming>,
) -> Pin<Box<dyn Future<Output = Result<Response<Body>, Infallible>> + Send>> {
    Box::pin(admin(app, req))
}

async fn admin(app: Arc<App>, req: Request<Incoming>) -> Result<Response<Body>, Infallible> {
    let response = match (req.method().as_str(), req.uri().path()) {
        ("GET", "/metrics") => {
            let mut r = Response::new(Body::Left(Full::new(Bytes::from(app.metrics.render()))));
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
        (_, p) if p == "/live" || p.starts_with("/live/") => {
            crate::live::serve(&app.live_view, &req).unwrap_or_else(|e| error_response(&e))
        }
        (_, "/metrics" | "/healthz" | "/readyz") => {
            error_response(&AppError::MethodNotAllowed("GET"))
        }
        (_, "/admin/mode") => error_response(&AppError::MethodNotAllowed("GET, PUT")),
        _ => error_response(&AppError::NotFound("no such admin route".into())),
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
        .and_then(|v| bearer(v.as_bytes()))
        .unwrap_or_default();
    if !bool::from(presented.ct_eq(token.as_bytes())) {
        return Err(AppError::Unauthorized);
    }
    let limits = BodyLimits {
        max_bytes: 1024,
        timeout: app.config.limits.body_read_timeout,
    };
    // While the body trickles in, the connection waits on its client: evictable.
    let slot = req.extensions().get::<Arc<Slot>>().cloned();
    if let Some(slot) = &slot {
        slot.waiting_on_client();
    }
    let body = read_body(req, limits).await?;
    if let Some(slot) = &slot {
        slot.working();
    }
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

/// The credentials of an `Authorization: Bearer <token>` header; the scheme is
/// case-insensitive (RFC 9110 §11.1).
fn bearer(value: &[u8]) -> Option<&[u8]> {
    let (scheme, rest) = value.split_at_checked(7)?;
    (scheme.eq_ignore_ascii_case(b"bearer ")).then(|| rest.trim_ascii())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_scheme_is_case_insensitive() {
        assert_eq!(bearer(b"Bearer s3cret"), Some(&b"s3cret"[..]));
        assert_eq!(bearer(b"bearer  s3cret "), Some(&b"s3cret"[..]));
        assert_eq!(bearer(b"BEARER s3cret"), Some(&b"s3cret"[..]));
        assert_eq!(bearer(b"Basic czNjcmV0"), None);
        assert_eq!(bearer(b"Bearer"), None);
    }
}
